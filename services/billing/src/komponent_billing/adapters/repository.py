"""asyncpg queries for billing's tables. Every function runs on the caller's connection, inside the
caller's transaction: the service layer owns the transaction boundary."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from typing import Any
from uuid import UUID

from asyncpg import Record
from komponent_contracts.events import Buyer, CourseSnapshot, Participant
from komponent_runtime.database import Connection

from ..domain.documents import DocumentKind
from .artefacts import Artefacts

# -- projections ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CourseRow:
    course_id: UUID
    snapshot: CourseSnapshot | None
    cancelled: bool
    invoice_run_at: datetime | None


@dataclass(frozen=True, slots=True)
class RegistrationRow:
    registration_id: UUID
    course_id: UUID
    status: str
    binding: bool
    participant: Participant
    buyer: Buyer
    # W3C trace context of the event that made the registration billable (empty when not known).
    trace_headers: dict[str, str] = field(default_factory=dict)


async def lock_course(conn: Connection, course_id: UUID) -> CourseRow:
    """The course row, locked for this transaction; created empty when the course is not known yet.

    Every use case that may issue or credit for a course takes this lock first, so the invoice run, late
    confirmations and cancellations of one course never interleave (and never double-bill)."""
    return (await lock_courses(conn, [course_id]))[course_id]


async def lock_courses(conn: Connection, course_ids: Iterable[UUID]) -> dict[UUID, CourseRow]:
    """`lock_course` for several courses in one round trip, locked in id order. (A batch that also locks
    courses one event at a time can still deadlock with another; PostgreSQL ends one of the two, and the
    consumer retries its batch.)"""
    # The no-op update takes the row lock (and creates the row when it is new).
    rows = await conn.fetch(
        "INSERT INTO billing_course (course_id) SELECT DISTINCT unnest($1::uuid[]) ORDER BY 1"
        " ON CONFLICT (course_id) DO UPDATE SET course_id = EXCLUDED.course_id"
        " RETURNING course_id, snapshot::text AS snapshot, cancelled, invoice_run_at",
        list(course_ids),
    )
    return {
        row["course_id"]: CourseRow(
            row["course_id"],
            _course_snapshot(row["snapshot"]) if row["snapshot"] else None,
            row["cancelled"],
            row["invoice_run_at"],
        )
        for row in rows
    }


@lru_cache(maxsize=64)
def _course_snapshot(document: str) -> CourseSnapshot:
    # Every event of a course locks its row and would parse the same (large) snapshot again; the parsed
    # model is immutable, so one parse per snapshot version is enough.
    return CourseSnapshot.model_validate_json(document)


async def save_course_snapshot(conn: Connection, snapshot: CourseSnapshot) -> None:
    await conn.execute(
        "UPDATE billing_course SET snapshot = $2::jsonb, updated_at = now(),"
        " cancelled = cancelled OR $3 WHERE course_id = $1",
        snapshot.course_id,
        snapshot.model_dump_json(),
        snapshot.status == "cancelled",
    )


async def mark_course_cancelled(conn: Connection, course_id: UUID) -> None:
    await conn.execute(
        "UPDATE billing_course SET cancelled = true, updated_at = now() WHERE course_id = $1", course_id
    )


async def mark_invoice_run(conn: Connection, course_id: UUID, at: datetime) -> None:
    await conn.execute(
        "UPDATE billing_course SET invoice_run_at = coalesce(invoice_run_at, $2), updated_at = now()"
        " WHERE course_id = $1",
        course_id,
        at,
    )


async def upsert_registration(conn: Connection, registration: RegistrationRow) -> None:
    await upsert_registrations(conn, [registration])


async def upsert_registrations(conn: Connection, registrations: Sequence[RegistrationRow]) -> None:
    """Store the registrations (as a confirmation or promotion leaves them), in one statement. At most one
    per registration id (a row cannot be changed twice by one INSERT ... ON CONFLICT)."""
    if not registrations:
        return
    await conn.execute(
        "INSERT INTO billing_registration"
        " (registration_id, course_id, status, binding, participant, buyer, traceparent, tracestate)"
        " SELECT r, c, s, b, p::jsonb, y::jsonb, tp, ts FROM unnest($1::uuid[], $2::uuid[], $3::text[],"
        " $4::bool[], $5::text[], $6::text[], $7::text[], $8::text[]) AS u(r, c, s, b, p, y, tp, ts)"
        " ON CONFLICT (registration_id) DO UPDATE SET status = excluded.status, binding = excluded.binding,"
        " participant = excluded.participant, buyer = excluded.buyer,"
        " traceparent = excluded.traceparent, tracestate = excluded.tracestate, updated_at = now()",
        [r.registration_id for r in registrations],
        [r.course_id for r in registrations],
        [r.status for r in registrations],
        [r.binding for r in registrations],
        [r.participant.model_dump_json() for r in registrations],
        [r.buyer.model_dump_json() for r in registrations],
        [r.trace_headers.get("traceparent") for r in registrations],
        [r.trace_headers.get("tracestate") for r in registrations],
    )


async def set_registration_binding(conn: Connection, registration_id: UUID) -> None:
    await conn.execute(
        "UPDATE billing_registration SET binding = true, updated_at = now() WHERE registration_id = $1",
        registration_id,
    )


async def cancel_registration(conn: Connection, registration_id: UUID) -> None:
    await conn.execute(
        "UPDATE billing_registration SET status = 'cancelled', updated_at = now() WHERE registration_id = $1",
        registration_id,
    )


async def substitute(conn: Connection, registration_id: UUID, participant: Participant, buyer: Buyer) -> None:
    await conn.execute(
        "UPDATE billing_registration SET participant = $2::jsonb, buyer = $3::jsonb, updated_at = now()"
        " WHERE registration_id = $1",
        registration_id,
        participant.model_dump_json(),
        buyer.model_dump_json(),
    )


async def confirmed_registrations(conn: Connection, course_id: UUID) -> list[RegistrationRow]:
    rows = await conn.fetch(
        "SELECT registration_id, course_id, status, binding, participant, buyer, traceparent, tracestate"
        " FROM billing_registration WHERE course_id = $1 AND status = 'confirmed' ORDER BY registration_id",
        course_id,
    )
    return [
        RegistrationRow(
            r["registration_id"],
            r["course_id"],
            r["status"],
            r["binding"],
            Participant.model_validate_json(r["participant"]),
            Buyer.model_validate_json(r["buyer"]),
            {k: r[k] for k in ("traceparent", "tracestate") if r[k]},
        )
        for r in rows
    ]


# -- numbering --------------------------------------------------------------------------------------------


async def lock_number_counter(conn: Connection, series_key: str) -> int | None:
    """The series' last issued sequence (None: unused), with its row locked until commit/rollback."""
    await conn.execute(
        "INSERT INTO document_number_counter (series_key, last_issued) VALUES ($1, 0) ON CONFLICT DO NOTHING",
        series_key,
    )
    last: int = await conn.fetchval(
        "SELECT last_issued FROM document_number_counter WHERE series_key = $1 FOR UPDATE", series_key
    )
    return last or None


async def advance_number_counter(conn: Connection, series_key: str, sequence: int) -> None:
    await conn.execute(
        "UPDATE document_number_counter SET last_issued = $2 WHERE series_key = $1", series_key, sequence
    )


# -- documents --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredDocument:
    document_id: UUID
    kind: DocumentKind
    number: str
    registration_id: UUID
    credited: bool  # an invoice for which a credit note exists
    snapshot: bytes


_DOCUMENT_COLUMNS = (
    "d.document_id, d.kind, d.number, d.registration_id, d.snapshot,"
    " EXISTS (SELECT 1 FROM billing_document c WHERE c.credits_document_id = d.document_id) AS credited"
)


def _stored(r: Record) -> StoredDocument:
    return StoredDocument(
        r["document_id"],
        DocumentKind(r["kind"]),
        r["number"],
        r["registration_id"],
        r["credited"],
        bytes(r["snapshot"]),
    )


async def invoices_of_registration(conn: Connection, registration_id: UUID) -> list[StoredDocument]:
    rows = await conn.fetch(
        f"SELECT {_DOCUMENT_COLUMNS} FROM billing_document d"
        " WHERE d.registration_id = $1 AND d.kind = 'invoice' ORDER BY d.issued_at, d.number",
        registration_id,
    )
    return [_stored(r) for r in rows]


async def invoices_of_course(conn: Connection, course_id: UUID) -> list[StoredDocument]:
    rows = await conn.fetch(
        f"SELECT {_DOCUMENT_COLUMNS} FROM billing_document d"
        " WHERE d.course_id = $1 AND d.kind = 'invoice' ORDER BY d.issued_at, d.number",
        course_id,
    )
    return [_stored(r) for r in rows]


async def invoice_by_number(conn: Connection, number: str) -> StoredDocument | None:
    row = await conn.fetchrow(
        f"SELECT {_DOCUMENT_COLUMNS} FROM billing_document d WHERE d.number = $1 AND d.kind = 'invoice'",
        number,
    )
    return _stored(row) if row else None


@dataclass(frozen=True, slots=True)
class NewDocument:
    document_id: UUID
    kind: DocumentKind
    number: str
    series_key: str
    sequence: int
    course_id: UUID
    registration_id: UUID
    issue_date: date
    due_date: date | None
    issued_at: datetime
    buyer_ean: str
    total_excl_vat_ore: int
    vat_ore: int
    total_incl_vat_ore: int
    credits_document_id: UUID | None
    replaces_document_id: UUID | None
    reason: str | None
    artefacts: Artefacts


async def insert_document(conn: Connection, doc: NewDocument, *, delivery_format: str) -> None:
    """Store the issued document (write-once) and queue its hand-off to the access point."""
    a = doc.artefacts
    await conn.execute(
        "INSERT INTO billing_document (document_id, kind, number, series_key, sequence, course_id,"
        " registration_id, issue_date, due_date, issued_at, buyer_ean, total_excl_vat_ore, vat_ore,"
        " total_incl_vat_ore, credits_document_id, replaces_document_id, reason, peppol_xml, oioubl_xml,"
        " pdf, snapshot, snapshot_sha256)"
        " VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21,$22)",
        doc.document_id,
        doc.kind.value,
        doc.number,
        doc.series_key,
        doc.sequence,
        doc.course_id,
        doc.registration_id,
        doc.issue_date,
        doc.due_date,
        doc.issued_at,
        doc.buyer_ean,
        doc.total_excl_vat_ore,
        doc.vat_ore,
        doc.total_incl_vat_ore,
        doc.credits_document_id,
        doc.replaces_document_id,
        doc.reason,
        a.peppol_xml,
        a.oioubl_xml,
        a.pdf,
        a.snapshot,
        a.snapshot_sha256,
    )
    await conn.execute(
        "INSERT INTO document_delivery (document_id, format) VALUES ($1, $2)",
        doc.document_id,
        delivery_format,
    )


async def registration_people(conn: Connection, registration_ids: Sequence[UUID]) -> list[Record]:
    return list(
        await conn.fetch(
            "SELECT registration_id, participant, buyer FROM billing_registration"
            " WHERE registration_id = ANY($1::uuid[]) FOR UPDATE",
            list(registration_ids),
        )
    )


async def replace_registration_people(conn: Connection, rows: Sequence[tuple[UUID, Any, Any]]) -> None:
    await conn.executemany(
        "UPDATE billing_registration SET participant = $2::jsonb, buyer = $3::jsonb, updated_at = now()"
        " WHERE registration_id = $1",
        [(rid, json.dumps(p), json.dumps(b)) for rid, p, b in rows],
    )
