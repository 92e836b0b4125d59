"""§7.6 items 32-35: reminders under renteloven, public-buyer defaults."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from komponent_billing.domain.reminders import (
    COMPENSATION_OERE,
    PUBLIC_BUYER_DEFAULTS,
    DeliveryStatus,
    ReceivableState,
    ReferenceRate,
    ReminderPolicy,
    SentReminder,
    decide_reminder,
    late_interest_oere,
    next_reminder_date,
)

DUE = date(2026, 5, 20)


def _state(**kw: object) -> ReceivableState:
    values: dict[str, object] = {
        "invoice_number": "2026-000123",
        "due_date": DUE,
        "outstanding_oere": 687_500,
        "delivery": DeliveryStatus.DELIVERED,
    }
    values.update(kw)
    return ReceivableState(**values)  # type: ignore[arg-type]


def test_no_reminder_before_or_on_the_due_date_or_within_grace() -> None:
    for today in (DUE - timedelta(days=5), DUE, DUE + timedelta(days=2)):
        assert decide_reminder(_state(), today) is None
    first = decide_reminder(_state(), DUE + timedelta(days=3))
    assert first is not None and first.sequence == 1


@pytest.mark.parametrize(
    "status", [DeliveryStatus.REJECTED, DeliveryStatus.UNDELIVERABLE, DeliveryStatus.PENDING]
)
def test_no_reminder_for_invoices_not_delivered(status: DeliveryStatus) -> None:
    assert decide_reminder(_state(delivery=status), DUE + timedelta(days=60)) is None


def test_no_reminder_for_paid_invoices() -> None:
    assert decide_reminder(_state(outstanding_oere=0), DUE + timedelta(days=60)) is None


def test_public_defaults_charge_nothing_and_stop_after_three() -> None:
    r1 = DUE + timedelta(days=3)
    decision = decide_reminder(_state(), r1)
    assert decision is not None and decision.total_claim_extra_oere == 0
    sent: tuple[SentReminder, ...] = (SentReminder(r1),)
    assert decide_reminder(_state(reminders=sent), r1 + timedelta(days=9)) is None  # < 10 days apart
    second = decide_reminder(_state(reminders=sent), r1 + timedelta(days=10))
    assert second is not None and second.sequence == 2 and not second.warn_debt_collection
    sent += (SentReminder(r1 + timedelta(days=10)),)
    third = decide_reminder(_state(reminders=sent), r1 + timedelta(days=20))
    assert third is not None and third.sequence == 3 and third.warn_debt_collection
    sent += (SentReminder(r1 + timedelta(days=20)),)
    assert next_reminder_date(_state(reminders=sent)) is None


def test_spacing_below_ten_days_cannot_be_configured() -> None:
    with pytest.raises(ValueError):
        ReminderPolicy(days_between=9)
    with pytest.raises(ValueError):
        ReminderPolicy(fee_oere=10_001)  # more than 100 kr


def test_fees_when_enabled_capped_and_none_on_later_letters_when_disputed() -> None:
    policy = ReminderPolicy(fees_enabled=True, fee_oere=10_000, max_reminders=5)
    r1 = DUE + timedelta(days=3)
    first = decide_reminder(_state(), r1, policy)
    assert first is not None and first.fee_oere == 10_000
    three_fees = tuple(SentReminder(r1 + timedelta(days=10 * i), fee_oere=10_000) for i in range(3))
    fourth = decide_reminder(_state(reminders=three_fees), r1 + timedelta(days=30), policy)
    assert fourth is not None and fourth.fee_oere == 0  # at most three fee-bearing letters
    disputed = decide_reminder(
        _state(disputed=True, reminders=three_fees[:1]), r1 + timedelta(days=10), policy
    )
    assert disputed is not None and disputed.fee_oere == 0


def test_compensation_310_kr_at_most_once() -> None:
    policy = ReminderPolicy(compensation_enabled=True)
    r1 = DUE + timedelta(days=3)
    first = decide_reminder(_state(), r1, policy)
    assert first is not None and first.compensation_oere == COMPENSATION_OERE == 31_000
    again = decide_reminder(
        _state(reminders=(SentReminder(r1, compensation_oere=31_000),)), r1 + timedelta(days=10), policy
    )
    assert again is not None and again.compensation_oere == 0


def test_interest_splits_at_the_1_july_rate_change() -> None:
    rates = (ReferenceRate(date(2026, 1, 1), 175), ReferenceRate(date(2026, 7, 1), 200))
    # 20 May → 1 Jul: 42 days at 9.75 %; 1 Jul → 31 Jul: 30 days at 10.00 %.
    expected_numerator = 687_500 * (42 * 975 + 30 * 1000)
    expected = (expected_numerator * 2 + 10_000 * 365) // (2 * 10_000 * 365)
    assert late_interest_oere(687_500, DUE, date(2026, 7, 31), rates) == expected
    single_rate = late_interest_oere(687_500, DUE, date(2026, 7, 31), rates[:1])
    assert single_rate < expected
    assert late_interest_oere(687_500, DUE, DUE, rates) == 0


def test_interest_needs_a_rate_in_force_on_the_due_date() -> None:
    with pytest.raises(ValueError):
        late_interest_oere(100, DUE, date(2026, 6, 1), (ReferenceRate(date(2026, 7, 1), 200),))


def test_interest_is_off_by_default_and_on_by_configuration() -> None:
    today = DUE + timedelta(days=3)
    assert PUBLIC_BUYER_DEFAULTS.interest_enabled is False
    decision = decide_reminder(_state(), today)
    assert decision is not None and decision.interest_oere == 0
    policy = ReminderPolicy(interest_enabled=True, reference_rates=(ReferenceRate(date(2026, 1, 1), 175),))
    with_interest = decide_reminder(_state(), today, policy)
    assert with_interest is not None and with_interest.interest_oere > 0
