"""The immutable JSON snapshot and the folder access point."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from komponent_billing.adapters.access_point import AccessPoint, FolderAccessPoint
from komponent_billing.adapters.document_snapshot import render_snapshot, snapshot_sha256
from komponent_billing.adapters.einvoice_dispatch import send_einvoice
from komponent_billing.adapters.einvoice_validation import EInvoiceFormat, EInvoiceRejected, EInvoiceValidator
from komponent_billing.adapters.peppol_bis import render_peppol
from komponent_billing.domain.documents import CreditNote, Invoice, cancellation_fee_line


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


def test_send_einvoice_validates_then_hands_off(
    tmp_path: Path, seed_invoice: Invoice, validator: EInvoiceValidator
) -> None:
    sent = send_einvoice(seed_invoice, validator=validator, access_point=FolderAccessPoint(tmp_path))
    assert sent.report.is_sendable
    assert Path(sent.delivery.location).read_bytes() == sent.xml


def test_send_einvoice_never_hands_off_an_invalid_document(
    tmp_path: Path, seed_invoice: Invoice, validator: EInvoiceValidator
) -> None:
    broken = dataclasses.replace(seed_invoice.buyer)
    object.__setattr__(broken, "ean", "5798000123459")  # bypass the domain check to reach the official rule
    invoice = dataclasses.replace(seed_invoice, buyer=broken)
    with pytest.raises(EInvoiceRejected) as rejected:
        send_einvoice(invoice, validator=validator, access_point=FolderAccessPoint(tmp_path))
    assert "PEPPOL-COMMON-R040" in rejected.value.report.rule_ids()
    assert list(tmp_path.iterdir()) == []


def test_cancellation_fee_invoice_is_valid(
    seed_invoice: Invoice, validator: EInvoiceValidator, make_invoice: Callable[..., Invoice]
) -> None:
    fee = cancellation_fee_line(seed_invoice.lines[0], 50)
    assert fee.unit_price_oere == 275_000
    fee_invoice = make_invoice(fee, number="2023-000124")
    assert fee_invoice.totals.total_incl_vat_oere == 343_750
    assert validator.validate(render_peppol(fee_invoice), EInvoiceFormat.PEPPOL_BIS3).fatal == ()


def test_snapshot_loads_back_into_the_same_document(
    seed_invoice: Invoice, seed_credit_note: CreditNote
) -> None:
    from komponent_billing.adapters.document_snapshot import load_snapshot, render_snapshot

    for document in (seed_invoice, seed_credit_note):
        loaded = load_snapshot(render_snapshot(document))
        assert loaded == document
        assert render_snapshot(loaded) == render_snapshot(document)
