"""§7.6 items 13-18: which documents each registration event calls for."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from komponent_billing.domain.lifecycle import (
    CancellationPolicy,
    CreditReason,
    IssueCreditNote,
    IssuedInvoice,
    IssueInvoice,
    needs_invoice,
    on_course_cancelled,
    on_invoice_correction,
    on_participant_substituted,
    on_registration_cancelled,
)
from komponent_billing.domain.parties import BuyerSnapshot


@pytest.fixture
def issued(make_buyer: Callable[..., BuyerSnapshot]) -> IssuedInvoice:
    return IssuedInvoice("2026-000123", make_buyer())


def test_cancel_before_deadline_without_invoice_issues_nothing() -> None:
    assert on_registration_cancelled((), was_binding=False) == ()


def test_free_cancellation_after_invoicing_credits_in_full(issued: IssuedInvoice) -> None:
    assert on_registration_cancelled((issued,), was_binding=False) == (
        IssueCreditNote("2026-000123", CreditReason.FREE_CANCELLATION),
    )


def test_binding_cancellation_keeps_the_invoice_by_default(issued: IssuedInvoice) -> None:
    assert on_registration_cancelled((issued,), was_binding=True) == ()


def test_graded_fee_policy_credits_in_full_and_reinvoices_the_fee(issued: IssuedInvoice) -> None:
    actions = on_registration_cancelled((issued,), was_binding=True, policy=CancellationPolicy(50))
    assert actions == (
        IssueCreditNote("2026-000123", CreditReason.CANCELLATION_FEE),
        IssueInvoice(issued.buyer, replaces="2026-000123", fee_percent=50),
    )
    full_refund = on_registration_cancelled((issued,), was_binding=True, policy=CancellationPolicy(0))
    assert full_refund == (IssueCreditNote("2026-000123", CreditReason.CANCELLATION_FEE),)


def test_course_cancelled_credits_every_open_invoice(make_buyer: Callable[..., BuyerSnapshot]) -> None:
    invoices = (
        IssuedInvoice("2026-000001", make_buyer()),
        IssuedInvoice("2026-000002", make_buyer(ean="5790001330552")),
        IssuedInvoice("2026-000003", make_buyer(), credited=True),
    )
    assert on_course_cancelled(invoices) == (
        IssueCreditNote("2026-000001", CreditReason.COURSE_CANCELLED),
        IssueCreditNote("2026-000002", CreditReason.COURSE_CANCELLED),
    )


def test_substitution_with_same_routing_data_issues_nothing(
    issued: IssuedInvoice, make_buyer: Callable[..., BuyerSnapshot]
) -> None:
    colleague_same_unit = make_buyer(billing_contact_name="Bo Ørsted", billing_contact_email="bo@x.example")
    assert on_participant_substituted((issued,), colleague_same_unit) == ()


@pytest.mark.parametrize(
    "change",
    [
        {"ean": "5790001330552"},
        {"person_reference": "Bo Ørsted"},
        {"account_string": "9.99"},
        {"order_number": "PO-2"},
    ],
)
def test_substitution_with_other_routing_data_credits_and_reinvoices_linked(
    issued: IssuedInvoice, make_buyer: Callable[..., BuyerSnapshot], change: dict[str, str]
) -> None:
    new_buyer = make_buyer(**change)
    assert on_participant_substituted((issued,), new_buyer) == (
        IssueCreditNote("2026-000123", CreditReason.BUYER_CHANGED),
        IssueInvoice(new_buyer, replaces="2026-000123"),
    )


def test_correction_credits_the_original_then_issues_a_new_invoice(
    issued: IssuedInvoice, make_buyer: Callable[..., BuyerSnapshot]
) -> None:
    corrected = make_buyer(ean="5790001330552")
    credit, invoice = on_invoice_correction(issued, corrected)
    assert credit == IssueCreditNote("2026-000123", CreditReason.CORRECTION)
    assert invoice == IssueInvoice(corrected, replaces="2026-000123")


def test_a_credited_invoice_is_never_corrected_again(make_buyer: Callable[..., BuyerSnapshot]) -> None:
    with pytest.raises(ValueError):
        on_invoice_correction(IssuedInvoice("2026-000123", make_buyer(), credited=True), make_buyer())


def test_invoice_run_bills_each_binding_registration_exactly_once(issued: IssuedInvoice) -> None:
    assert needs_invoice(is_binding=True, invoices=(), course_cancelled=False)
    assert not needs_invoice(is_binding=True, invoices=(issued,), course_cancelled=False)  # re-run: no-op
    assert not needs_invoice(is_binding=False, invoices=(), course_cancelled=False)  # before the deadline
    assert not needs_invoice(is_binding=True, invoices=(), course_cancelled=True)
    replaced = IssuedInvoice(issued.number, issued.buyer, credited=True)
    assert needs_invoice(is_binding=True, invoices=(replaced,), course_cancelled=False)


def test_due_for_invoice_only_after_the_run_once_and_not_for_cancelled_or_free_courses(
    make_buyer: Callable[..., BuyerSnapshot],
) -> None:
    from komponent_billing.domain.lifecycle import IssuedInvoice, due_for_invoice

    base = {"confirmed": True, "invoice_run_reached": True, "course_cancelled": False, "price_oere": 550_000}
    assert due_for_invoice(**base, invoices=())  # type: ignore[arg-type]
    assert not due_for_invoice(**{**base, "invoice_run_reached": False}, invoices=())  # type: ignore[arg-type]
    assert not due_for_invoice(**{**base, "confirmed": False}, invoices=())  # type: ignore[arg-type]
    assert not due_for_invoice(**{**base, "course_cancelled": True}, invoices=())  # type: ignore[arg-type]
    assert not due_for_invoice(**{**base, "price_oere": 0}, invoices=())  # type: ignore[arg-type]
    credited = (IssuedInvoice("2026-000001", make_buyer(), credited=True),)
    assert not due_for_invoice(**base, invoices=credited)  # type: ignore[arg-type]
