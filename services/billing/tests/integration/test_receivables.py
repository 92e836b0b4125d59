"""Payments, delivery and the reminder run on real PostgreSQL, with the clock moved by the test.

Reminder policy for public buyers (billing-dk.md §7.4): only delivered, unpaid, overdue invoices; the
first three days after the due date; then at least ten days apart; at most three; no fees by default.
"""

from __future__ import annotations

import itertools
import json
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from komponent_billing.adapters.access_point import Delivery, FolderAccessPoint
from komponent_billing.adapters.einvoice_validation import EInvoiceFormat
from komponent_billing.service_layer.issuing import BillingContext
from komponent_billing.service_layer.receivables import (
    InvalidPayment,
    deliver_pending,
    register_payment,
    send_due_reminders,
)
from komponent_runtime.clock import ManualClock

pytestmark = pytest.mark.infra


async def _invoice_one(apply: Any, seed: Any, pool: asyncpg.Pool) -> dict[str, Any]:
    await apply(seed.published(), seed.confirmed(uuid.uuid4()), seed.invoice_due())
    row = await pool.fetchrow("SELECT number, document_id, due_date, issue_date FROM billing_document")
    assert row is not None
    return dict(row)


async def _outbox(pool: asyncpg.Pool, ce_type: str) -> list[dict[str, Any]]:
    rows = await pool.fetch("SELECT headers, value FROM outbox ORDER BY id")
    return [json.loads(r["value"]) for r in rows if json.loads(r["headers"])["ce_type"] == ce_type]


async def _pay(pool: asyncpg.Pool, ctx: BillingContext, number: str, amount: int, **kw: Any) -> int:
    async with pool.acquire() as conn, conn.transaction():
        result = await register_payment(
            conn, ctx, number=number, amount_ore=amount, paid_on=date(2023, 4, 20), **kw
        )
    return result.outstanding_ore


async def test_payments_reduce_what_is_outstanding_and_are_idempotent(
    billing_pool: asyncpg.Pool, ctx: BillingContext, apply: Any, seed: Any
) -> None:
    invoice = await _invoice_one(apply, seed, billing_pool)
    number = invoice["number"]
    for bad in (0, -1, 687_501):
        with pytest.raises(InvalidPayment):
            await _pay(billing_pool, ctx, number, bad)
    payment_id = uuid.uuid4()
    assert await _pay(billing_pool, ctx, number, 87_500, payment_id=payment_id) == 600_000
    assert await _pay(billing_pool, ctx, number, 87_500, payment_id=payment_id) == 600_000  # a retry
    assert await _pay(billing_pool, ctx, number, 600_000) == 0
    with pytest.raises(InvalidPayment):
        await _pay(billing_pool, ctx, number, 1)
    events = await _outbox(billing_pool, "dk.komponent.billing.payment-registered.v1")
    assert [e["amount_ore"] for e in events] == [87_500, 600_000]
    assert {e["document_number"] for e in events} == {number}


async def test_delivery_hands_each_document_to_the_access_point_once_and_survives_refusals(
    billing_pool: asyncpg.Pool, apply: Any, seed: Any, tmp_path: Path
) -> None:
    invoice = await _invoice_one(apply, seed, billing_pool)

    class Refusing:
        def submit(self, **_: Any) -> Delivery:
            raise ConnectionError("access point away")

    assert await deliver_pending(billing_pool, Refusing()) == 0
    row = await billing_pool.fetchrow("SELECT status, attempts, last_error FROM document_delivery")
    assert row is not None and row["status"] == "pending" and row["attempts"] == 1
    assert "access point away" in row["last_error"]
    await billing_pool.execute("UPDATE document_delivery SET next_attempt_at = now()")  # skip the backoff

    folder = FolderAccessPoint(tmp_path)
    assert await deliver_pending(billing_pool, folder) == 1
    assert await deliver_pending(billing_pool, folder) == 0
    stored = await billing_pool.fetchval("SELECT peppol_xml FROM billing_document")
    assert (
        tmp_path / "5798000012349" / f"{invoice['number']}.{EInvoiceFormat.PEPPOL_BIS3.value}.xml"
    ).read_bytes() == bytes(stored)
    assert await billing_pool.fetchval("SELECT status FROM document_delivery") == "delivered"


async def test_reminders_follow_the_public_buyer_policy_as_the_clock_moves(
    billing_pool: asyncpg.Pool, ctx: BillingContext, clock: ManualClock, apply: Any, seed: Any, tmp_path: Path
) -> None:
    invoice = await _invoice_one(apply, seed, billing_pool)
    due: date = invoice["due_date"]
    assert due == invoice["issue_date"] + timedelta(days=30)

    def move_to(day: date) -> None:
        clock.set(clock.now().replace(year=day.year, month=day.month, day=day.day))

    move_to(due + timedelta(days=5))
    assert await send_due_reminders(billing_pool, ctx) == 0  # not delivered yet: no reminder clock
    await deliver_pending(billing_pool, FolderAccessPoint(tmp_path))

    move_to(due)
    assert await send_due_reminders(billing_pool, ctx) == 0  # not overdue
    move_to(due + timedelta(days=2))
    assert await send_due_reminders(billing_pool, ctx) == 0  # R1 waits three days
    move_to(due + timedelta(days=3))
    assert await send_due_reminders(billing_pool, ctx) == 1
    assert await send_due_reminders(billing_pool, ctx) == 0  # once
    move_to(due + timedelta(days=12))
    assert await send_due_reminders(billing_pool, ctx) == 0  # R2 ≥ 10 days after R1
    await _pay(billing_pool, ctx, invoice["number"], 87_500)
    move_to(due + timedelta(days=13))
    assert await send_due_reminders(billing_pool, ctx) == 1
    move_to(due + timedelta(days=23))
    assert await send_due_reminders(billing_pool, ctx) == 1
    move_to(due + timedelta(days=60))
    assert await send_due_reminders(billing_pool, ctx) == 0  # at most three

    reminders = await _outbox(billing_pool, "dk.komponent.billing.payment-reminder-due.v1")
    assert [r["reminder_number"] for r in reminders] == [1, 2, 3]
    assert [r["outstanding_ore"] for r in reminders] == [687_500, 600_000, 600_000]
    assert all(r["fee_ore"] == 0 for r in reminders)  # no fees for public buyers by default
    assert {r["original_due_date"] for r in reminders} == {due.isoformat()}
    sent_on = [
        r["sent_on"]
        for r in await billing_pool.fetch("SELECT sent_on FROM payment_reminder ORDER BY sequence")
    ]
    assert [b - a for a, b in itertools.pairwise(sent_on)] == [timedelta(days=10)] * 2


async def test_no_reminder_for_paid_or_credited_invoices(
    billing_pool: asyncpg.Pool, ctx: BillingContext, clock: ManualClock, apply: Any, seed: Any, tmp_path: Path
) -> None:
    paid = await _invoice_one(apply, seed, billing_pool)
    await _pay(billing_pool, ctx, paid["number"], 687_500)
    other = uuid.uuid4()
    await apply(seed.confirmed(other))  # invoiced at once: the run already happened
    await apply(seed.course_cancelled())  # both invoices credited... the paid one too
    await deliver_pending(billing_pool, FolderAccessPoint(tmp_path))
    clock.set(clock.now() + timedelta(days=90))
    assert await send_due_reminders(billing_pool, ctx) == 0
    assert (
        await billing_pool.fetchval("SELECT count(*) FROM billing_document WHERE kind = 'credit_note'") == 2
    )
