"""An immutable JSON snapshot of an issued document, kept 5 years beside its XML and PDF.

Canonical JSON (sorted keys, no whitespace variance, amounts as integer øre, dates ISO) so the same
document always gives the same bytes, and a SHA-256 of those bytes can be stored as its fingerprint.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from datetime import date
from enum import Enum
from typing import Any

from ..domain.documents import (
    CreditNote,
    DeliveryPeriod,
    Document,
    DocumentKind,
    Invoice,
    InvoiceLine,
    InvoiceReference,
    PaymentTerms,
)
from ..domain.money import VatCategory, VatRate
from ..domain.parties import BuyerSnapshot, PostalAddress, SellerConfig

SNAPSHOT_SCHEMA_VERSION = 1


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def snapshot_dict(document: Document) -> dict[str, Any]:
    body = _plain(document)
    body["kind"] = document.kind.value
    body["uuid"] = document.uuid
    body["totals"].update(
        vat_total_oere=document.totals.vat_total_oere,
        total_excl_vat_oere=document.totals.total_excl_vat_oere,
        total_incl_vat_oere=document.totals.total_incl_vat_oere,
    )
    return {"schema_version": SNAPSHOT_SCHEMA_VERSION, "document": body}


def render_snapshot(document: Document) -> bytes:
    return json.dumps(
        snapshot_dict(document), ensure_ascii=False, sort_keys=True, separators=(",", ":")
    ).encode()


def snapshot_sha256(snapshot: bytes) -> str:
    return hashlib.sha256(snapshot).hexdigest()


def load_snapshot(snapshot: bytes) -> Document:
    """The issued document back from its snapshot: a credit note copies exactly what was invoiced."""
    body = json.loads(snapshot)["document"]

    def address(raw: dict[str, Any]) -> PostalAddress:
        return PostalAddress(**raw)

    seller = SellerConfig(**{**body["seller"], "address": address(body["seller"]["address"])})
    buyer = BuyerSnapshot(**{**body["buyer"], "address": address(body["buyer"]["address"])})
    lines = tuple(
        InvoiceLine(
            **{
                **raw,
                "vat": VatRate(VatCategory(raw["vat"]["category"]), raw["vat"]["rate_bp"]),
            }
        )
        for raw in body["lines"]
    )
    common: dict[str, Any] = {
        "number": body["number"],
        "issue_date": date.fromisoformat(body["issue_date"]),
        "seller": seller,
        "buyer": buyer,
        "lines": lines,
        "delivery": DeliveryPeriod(
            date.fromisoformat(body["delivery"]["start"]), date.fromisoformat(body["delivery"]["end"])
        ),
        "registration_id": body["registration_id"],
        "course_id": body["course_id"],
        "note": body["note"],
    }
    if body["kind"] == DocumentKind.INVOICE.value:
        return Invoice(
            **common,
            due_date=date.fromisoformat(body["due_date"]),
            payment_terms=PaymentTerms(body["payment_terms"]["days"]),
        )
    ref = body["credited_invoice"]
    return CreditNote(
        **common,
        credited_invoice=InvoiceReference(ref["number"], date.fromisoformat(ref["issue_date"]), ref["uuid"]),
        reason=body["reason"],
    )
