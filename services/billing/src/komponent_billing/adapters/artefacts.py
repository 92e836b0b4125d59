"""Everything stored for an issued document, rendered and validated in one place.

The issuing transaction calls :meth:`OfficialArtefacts.render` after the number is allocated: Peppol BIS 3.0
XML, OIOUBL 2.1 XML, the Danish PDF and the JSON snapshot. Both XML documents are checked against the
official rules; any fatal finding raises :class:`EInvoiceRejected`, the transaction rolls back and the
number is not consumed. So every stored document is sendable in either format.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..domain.documents import Document
from .document_snapshot import render_snapshot, snapshot_sha256
from .einvoice_validation import EInvoiceFormat, EInvoiceRejected, EInvoiceValidator
from .oioubl import render_oioubl
from .pdf_document import render_pdf
from .peppol_bis import render_peppol


@dataclass(frozen=True, slots=True)
class Artefacts:
    peppol_xml: bytes
    oioubl_xml: bytes
    pdf: bytes
    snapshot: bytes

    @property
    def snapshot_sha256(self) -> str:
        return snapshot_sha256(self.snapshot)


class OfficialArtefacts:
    """Renders all four artefacts and refuses any document the official rules call fatal."""

    def __init__(
        self,
        validator: EInvoiceValidator,
        *,
        peppol: Callable[[Document], bytes] = render_peppol,
        oioubl: Callable[[Document], bytes] = render_oioubl,
    ) -> None:
        self.validator = validator
        self._render_peppol = peppol
        self._render_oioubl = oioubl

    def render(self, document: Document) -> Artefacts:
        peppol = self._render_peppol(document)
        oioubl = self._render_oioubl(document)
        try:
            self.validator.ensure_sendable(peppol, EInvoiceFormat.PEPPOL_BIS3)
            self.validator.ensure_sendable(oioubl, EInvoiceFormat.OIOUBL21)
        except EInvoiceRejected as rejected:
            # Imported here: the service layer's exception, raised by its port's implementation.
            from ..service_layer.ports import DocumentRejected

            raise DocumentRejected(f"document {document.number}: {rejected}") from rejected
        return Artefacts(peppol, oioubl, render_pdf(document), render_snapshot(document))
