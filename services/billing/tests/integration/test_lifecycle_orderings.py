"""Lifecycle cases that depend on the order events arrive across topics, in-process on real PostgreSQL.

The course, calendar and registration topics are not ordered with each other, so each input that can make
an invoice due re-checks the course under its lock."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import pytest
from komponent_contracts.examples import buyer

pytestmark = pytest.mark.infra


async def _documents(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    return await pool.fetch(
        "SELECT kind, number, registration_id, snapshot, pdf, peppol_xml FROM billing_document ORDER BY number"
    )


async def test_invoice_due_before_the_course_snapshot_invoices_when_the_snapshot_arrives(
    billing_pool: asyncpg.Pool, apply: Any, seed: Any
) -> None:
    registration = uuid.uuid4()
    await apply(seed.confirmed(registration), seed.invoice_due())
    assert await _documents(billing_pool) == []  # nothing to describe the course with yet
    await apply(seed.published())
    (invoice,) = await _documents(billing_pool)
    assert invoice["registration_id"] == registration


async def test_nothing_is_invoiced_before_the_run_or_for_a_cancelled_course(
    billing_pool: asyncpg.Pool, apply: Any, seed: Any
) -> None:
    await apply(seed.published(), seed.confirmed(uuid.uuid4()), seed.became_binding(uuid.uuid4()))
    assert await _documents(billing_pool) == []
    await apply(seed.course_cancelled(), seed.invoice_due())
    assert await _documents(billing_pool) == []


async def test_later_buyer_changes_never_touch_an_issued_invoice(
    billing_pool: asyncpg.Pool, apply: Any, seed: Any
) -> None:
    registration = uuid.uuid4()
    await apply(seed.published(), seed.confirmed(registration), seed.invoice_due())
    (before,) = await _documents(billing_pool)
    changed = buyer().model_copy(update={"order_number": "PO-NEW-1"})
    # A repeated confirmation with other buyer data (a profile edit upstream) updates the projection only.
    await apply(seed.confirmed(registration, payer=changed))
    (after,) = await _documents(billing_pool)
    assert dict(after) == dict(before)
    assert b"PO-2023-0042" in bytes(after["peppol_xml"]) and b"PO-NEW-1" not in bytes(after["peppol_xml"])


async def _end_state(pool: asyncpg.Pool, course_id: uuid.UUID, roles: dict[uuid.UUID, str]) -> Any:
    """The course's registrations (status, buyer's order number) and invoiced registrations, by role."""
    rows = await pool.fetch(
        "SELECT registration_id, status, buyer->>'order_number' AS order_number FROM billing_registration"
        " WHERE course_id = $1",
        course_id,
    )
    invoiced = await pool.fetch(
        "SELECT registration_id FROM billing_document WHERE kind = 'invoice' AND registration_id = ANY($1)",
        [r["registration_id"] for r in rows],
    )
    return (
        {roles[r["registration_id"]]: (r["status"], r["order_number"]) for r in rows},
        sorted(roles[r["registration_id"]] for r in invoiced),
    )


async def test_a_gathered_batch_ends_as_its_events_one_by_one(
    billing_pool: asyncpg.Pool, apply: Any, apply_batch: Any, seed: Any, make_other_buyer: Any
) -> None:
    """One batch: confirmations for a course before its invoice run (stored together, the last event per
    registration winning), a cancellation between them, and confirmations for a course past its run
    (invoiced at once). The same events one by one for twin courses end the same way."""
    changed = make_other_buyer().model_copy(update={"order_number": "PO-LATER-7"})
    ends = []
    for applied_as_batch in (True, False):
        early, late = type(seed)(), type(seed)()
        ids = {name: uuid.uuid4() for name in ("a", "b", "c", "d", "e")}
        await apply(early.published(), late.published(), late.invoice_due())
        events = [
            early.confirmed(ids["a"]),
            early.confirmed(ids["b"], binding=False),
            late.confirmed(ids["d"]),
            early.confirmed(ids["a"], payer=changed),  # the same registration again: the last one wins
            early.confirmed(ids["c"], promoted=True),
            early.cancelled(ids["b"], binding=False),  # ends the first run of confirmations
            late.confirmed(ids["e"], promoted=True),
        ]
        if applied_as_batch:
            await apply_batch(*events)
        else:
            await apply(*events)
        roles = {v: k for k, v in ids.items()}
        ends.append(
            (
                await _end_state(billing_pool, early.course_id, roles),
                await _end_state(billing_pool, late.course_id, roles),
            )
        )
    assert ends[0] == ends[1]
    (early_end, late_end) = ends[0]
    assert early_end == (
        {
            "a": ("confirmed", "PO-LATER-7"),
            "b": ("cancelled", "PO-2023-0042"),
            "c": ("confirmed", "PO-2023-0042"),
        },
        [],
    )
    assert late_end == ({"d": ("confirmed", "PO-2023-0042"), "e": ("confirmed", "PO-2023-0042")}, ["d", "e"])
