"""Render → validate → hand off. The one path by which an e-invoice leaves the service.

Validation is not optional here: a fatal finding raises :class:`EInvoiceRejected` before the access point
is touched, so an invalid document is never sent (the number stays used; it is corrected by a credit note).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..domain.documents import Document
from .access_point import AccessPoint, Delivery
from .einvoice_validation import EInvoiceFormat, EInvoiceValidator, ValidationReport
from .oioubl import render_oioubl
from .peppol_bis import render_peppol

RENDERERS: dict[EInvoiceFormat, Callable[[Document], bytes]] = {
    EInvoiceFormat.PEPPOL_BIS3: render_peppol,
    EInvoiceFormat.OIOUBL21: render_oioubl,
}


@dataclass(frozen=True, slots=True)
class SentEInvoice:
    xml: bytes
    report: ValidationReport
    delivery: Delivery


def send_einvoice(
    document: Document,
    *,
    validator: EInvoiceValidator,
    access_point: AccessPoint,
    fmt: EInvoiceFormat = EInvoiceFormat.PEPPOL_BIS3,
) -> SentEInvoice:
    xml = RENDERERS[fmt](document)
    report = validator.ensure_sendable(xml, fmt)
    delivery = access_point.submit(
        document_number=document.number, receiver_ean=document.buyer.ean, fmt=fmt, xml=xml
    )
    return SentEInvoice(xml, report, delivery)
