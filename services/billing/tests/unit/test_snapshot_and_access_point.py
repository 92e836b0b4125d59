"""The immutable JSON snapshot and the folder access point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from komponent_billing.adapters.access_point import AccessPoint, FolderAccessPoint
from komponent_billing.adapters.document_snapshot import render_snapshot, snapshot_sha256
from komponent_billing.adapters.einvoice_validation import EInvoiceFormat
from komponent_billing.adapters.peppol_bis import render_peppol
from komponent_billing.domain.documents import CreditNote, Invoice


def test_snapshot_is_canonical_json_with_integer_oere(seed_invoice: Invoice) -> None:
    raw = render_snapshot(seed_invoice)
    assert raw == render_snapshot(seed_invoice)
    body = json.loads(raw)["document"]
    assert body["kind"] == "invoice"
    assert body["number"] == "2023-000123"
    assert body["due_date"] == "2023-05-05"
    assert body["totals"]["total_incl_vat_oere"] == 687_500
    assert body["buyer"]["ean"] == "5798000123458"
    assert body["lines"][0]["participant_name"] == "Mette Æbelø Sørensen"
    assert len(snapshot_sha256(raw)) == 64


def test_credit_note_snapshot_carries_the_reference(seed_credit_note: CreditNote) -> None:
    body = json.loads(render_snapshot(seed_credit_note))["document"]
    assert body["kind"] == "credit_note"
    assert body["credited_invoice"]["number"] == "2023-000123"
    assert body["credited_invoice"]["issue_date"] == "2023-04-05"


def test_folder_access_point_writes_once_and_is_idempotent(tmp_path: Path, seed_invoice: Invoice) -> None:
    access_point: AccessPoint = FolderAccessPoint(tmp_path)
    xml = render_peppol(seed_invoice)
    first = access_point.submit(
        document_number=seed_invoice.number,
        receiver_ean=seed_invoice.buyer.ean,
        fmt=EInvoiceFormat.PEPPOL_BIS3,
        xml=xml,
    )
    again = access_point.submit(
        document_number=seed_invoice.number,
        receiver_ean=seed_invoice.buyer.ean,
        fmt=EInvoiceFormat.PEPPOL_BIS3,
        xml=xml,
    )
    assert first == again
    assert Path(first.location).read_bytes() == xml
    assert Path(first.location) == tmp_path / "5798000123458" / "2023-000123.peppol-bis-3.xml"


def test_folder_access_point_refuses_a_different_document_under_a_used_number(
    tmp_path: Path, seed_invoice: Invoice
) -> None:
    access_point = FolderAccessPoint(tmp_path)
    access_point.submit(
        document_number="2023-000123", receiver_ean="5798000123458", fmt=EInvoiceFormat.OIOUBL21, xml=b"<a/>"
    )
    with pytest.raises(FileExistsError):
        access_point.submit(
            document_number="2023-000123",
            receiver_ean="5798000123458",
            fmt=EInvoiceFormat.OIOUBL21,
            xml=b"<b/>",
        )
    with pytest.raises(ValueError):
        access_point.submit(
            document_number="../x", receiver_ean="5798000123458", fmt=EInvoiceFormat.OIOUBL21, xml=b""
        )
