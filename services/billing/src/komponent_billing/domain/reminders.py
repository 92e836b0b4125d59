"""Payment reminders (rykkere) under renteloven, with defaults for public buyers (billing-dk.md §4, §7.4).

Defaults: no fee, no compensation, no interest; at most three reminders, at least 10 days apart, and only
for an invoice that was delivered (not rejected or undeliverable), is unpaid and is past its due date.
Fees (≤ 100 kr, §9 b), the 310 kr compensation (§9 a) and interest (reference rate + 8 pp, §5) are
switched on by configuration.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import Enum

from .money import round_half_away_from_zero

MAX_REMINDER_FEE_OERE = 10_000  # renteloven §9 b: at most 100 kr per letter
MAX_FEE_BEARING_REMINDERS = 3
MIN_DAYS_BETWEEN_REMINDERS = 10
COMPENSATION_OERE = 31_000  # renteloven §9 a stk. 3


class DeliveryStatus(Enum):
    PENDING = "pending"
    DELIVERED = "delivered"
    REJECTED = "rejected"
    UNDELIVERABLE = "undeliverable"


@dataclass(frozen=True, slots=True)
class ReferenceRate:
    """Nationalbankens udlånsrente as fixed on 1 January or 1 July."""

    effective_from: date
    rate_bp: int


@dataclass(frozen=True, slots=True)
class ReminderPolicy:
    first_after_days: int = 3
    days_between: int = MIN_DAYS_BETWEEN_REMINDERS
    max_reminders: int = 3
    fees_enabled: bool = False
    fee_oere: int = MAX_REMINDER_FEE_OERE
    compensation_enabled: bool = False
    interest_enabled: bool = False
    interest_surcharge_bp: int = 800  # + 8 percentage points
    reference_rates: tuple[ReferenceRate, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.days_between < MIN_DAYS_BETWEEN_REMINDERS:
            raise ValueError("reminders must be at least 10 days apart")
        if not 0 <= self.fee_oere <= MAX_REMINDER_FEE_OERE:
            raise ValueError("a reminder fee is at most 100 kr")
        if self.max_reminders < 1:
            raise ValueError("max_reminders must be positive")


PUBLIC_BUYER_DEFAULTS = ReminderPolicy()


@dataclass(frozen=True, slots=True)
class SentReminder:
    sent_on: date
    fee_oere: int = 0
    compensation_oere: int = 0


@dataclass(frozen=True, slots=True)
class ReceivableState:
    """An issued invoice seen from the reminder clock."""

    invoice_number: str
    due_date: date
    outstanding_oere: int
    delivery: DeliveryStatus
    disputed: bool = False
    reminders: tuple[SentReminder, ...] = ()


@dataclass(frozen=True, slots=True)
class ReminderDecision:
    sequence: int  # 1, 2 or 3
    fee_oere: int
    compensation_oere: int
    interest_oere: int
    warn_debt_collection: bool  # the last letter must warn about further costs

    @property
    def total_claim_extra_oere(self) -> int:
        return self.fee_oere + self.compensation_oere + self.interest_oere


def next_reminder_date(state: ReceivableState, policy: ReminderPolicy = PUBLIC_BUYER_DEFAULTS) -> date | None:
    """When the next reminder may go out, or None when none ever will."""
    if state.outstanding_oere <= 0 or state.delivery is not DeliveryStatus.DELIVERED:
        return None
    if len(state.reminders) >= policy.max_reminders:
        return None
    if not state.reminders:
        return state.due_date + timedelta(days=policy.first_after_days)
    return state.reminders[-1].sent_on + timedelta(days=policy.days_between)


def decide_reminder(
    state: ReceivableState, today: date, policy: ReminderPolicy = PUBLIC_BUYER_DEFAULTS
) -> ReminderDecision | None:
    """The reminder to send today, if one is due."""
    earliest = next_reminder_date(state, policy)
    if earliest is None or today < earliest or today <= state.due_date:
        return None
    sequence = len(state.reminders) + 1
    fee = 0
    fee_bearing_so_far = sum(1 for r in state.reminders if r.fee_oere > 0)
    # No fee on a 2nd/3rd letter about a disputed claim; never more than three fee-bearing letters.
    if policy.fees_enabled and fee_bearing_so_far < MAX_FEE_BEARING_REMINDERS:
        if not (state.disputed and sequence > 1):
            fee = policy.fee_oere
    compensation = 0
    if policy.compensation_enabled and not any(r.compensation_oere for r in state.reminders):
        compensation = COMPENSATION_OERE
    interest = 0
    if policy.interest_enabled:
        interest = late_interest_oere(
            state.outstanding_oere,
            state.due_date,
            today,
            policy.reference_rates,
            policy.interest_surcharge_bp,
        )
    return ReminderDecision(
        sequence=sequence,
        fee_oere=fee,
        compensation_oere=compensation,
        interest_oere=interest,
        warn_debt_collection=sequence == policy.max_reminders,
    )


def late_interest_oere(
    principal_oere: int,
    due_date: date,
    until: date,
    reference_rates: tuple[ReferenceRate, ...],
    surcharge_bp: int = 800,
) -> int:
    """Simple daily interest from the due date (renteloven §3) to ``until``, days/365.

    The period is split wherever the reference rate changes (1 January / 1 July), each part at its own
    rate + surcharge; the sum is rounded once, half away from zero.
    """
    if until <= due_date or principal_oere <= 0:
        return 0
    rates = sorted(reference_rates, key=lambda r: r.effective_from)
    if not rates or rates[0].effective_from > due_date:
        raise ValueError("no reference rate in force on the due date")
    day_basis_points = 0  # Σ days × annual rate in basis points
    for i, rate in enumerate(rates):
        start = max(rate.effective_from, due_date)
        end = min(rates[i + 1].effective_from, until) if i + 1 < len(rates) else until
        if end > start:
            day_basis_points += (end - start).days * (rate.rate_bp + surcharge_bp)
    return round_half_away_from_zero(principal_oere * day_basis_points, 10_000 * 365)
