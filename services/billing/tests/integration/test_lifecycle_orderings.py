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
