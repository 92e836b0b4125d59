"""asyncpg access to notifications' tables: projections and the send ledger. Every function runs on the
caller's connection, inside the caller's transaction (the consumer's inbox transaction, or the sender's)."""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from uuid import UUID

from komponent_contracts import events as ev
from komponent_runtime.database import Connection, array_params

from ..service_layer.planning import PlannedEmail, RegistrationView
from ..service_layer.projection import ProjectedRegistration

# -- courses ----------------------------------------------------------------------------------------------


async def save_course(conn: Connection, course: ev.CourseSnapshot) -> None:
    await conn.execute(
        "INSERT INTO course_projection (course_id, snapshot, revision) VALUES ($1, $2::jsonb, 0)"
        " ON CONFLICT (course_id) DO UPDATE SET snapshot = EXCLUDED.snapshot,"
        " revision = course_projection.revision + 1, updated_at = now()",
        course.course_id,
        course.model_dump_json(),
    )


async def cancel_course(conn: Connection, course_id: UUID, reason: str) -> None:
    # The cancellation may overtake the course's publication (other topic): nothing to mark then, and
    # the course-cancelled emails take their reason from here when it is known.
    await conn.execute(
        "UPDATE course_projection SET cancelled = true, cancel_reason = $2, revision = revision + 1,"
        " updated_at = now() WHERE course_id = $1",
        course_id,
        reason,
    )


@dataclass(frozen=True)
class KnownCourse:
    snapshot: ev.CourseSnapshot
    revision: int
    cancel_reason: str


@lru_cache(maxsize=512)
def _snapshot(stored: str) -> ev.CourseSnapshot:
    # Every sender round reads the courses of its emails; the stored JSON changes only with a new revision,
    # and parsing (validating) a whole course snapshot cost more than composing the email. Frozen model:
    # sharing one instance is safe.
    return ev.CourseSnapshot.model_validate_json(stored)


# -- registrations ----------------------------------------------------------------------------------------


def _view(row: Any) -> RegistrationView:
    return RegistrationView(
        registration_id=row["registration_id"],
        course_id=row["course_id"],
        participant=ev.Participant.model_validate_json(row["participant"]),
        buyer=ev.Buyer.model_validate_json(row["buyer"]) if row["buyer"] else None,
        binding=row["binding"],
    )


async def confirmed_registrations(conn: Connection, course_id: UUID) -> list[RegistrationView]:
    rows = await conn.fetch(
        "SELECT registration_id, course_id, participant, buyer, binding FROM registration_projection"
        " WHERE course_id = $1 AND status = 'confirmed' ORDER BY updated_at, registration_id",
        course_id,
    )
    return [_view(r) for r in rows]


async def projected_registrations(
    conn: Connection, registration_ids: Collection[UUID]
) -> dict[UUID, ProjectedRegistration]:
    rows = await conn.fetch(
        "SELECT registration_id, course_id, status, participant, buyer, binding FROM registration_projection"
        " WHERE registration_id = ANY($1::uuid[])",
        list(registration_ids),
    )
    return {r["registration_id"]: ProjectedRegistration(r["status"], _view(r)) for r in rows}


async def save_registrations(conn: Connection, rows: Sequence[ProjectedRegistration]) -> None:
    """Upsert whole rows, in one statement."""
    if rows:
        await conn.execute(_save_registrations_sql(1), *_projection_columns(rows))


def _save_registrations_sql(first: int) -> str:
    return (
        "INSERT INTO registration_projection (registration_id, course_id, status, participant, buyer, binding)"
        " SELECT r, c, s, p::jsonb, b::jsonb, bi"
        f" FROM unnest({array_params(first, ('uuid', 'uuid', 'text', 'text', 'text', 'bool'))})"
        " AS t(r, c, s, p, b, bi)"
        " ON CONFLICT (registration_id) DO UPDATE SET status = EXCLUDED.status,"
        " participant = EXCLUDED.participant, buyer = EXCLUDED.buyer, binding = EXCLUDED.binding,"
        " updated_at = now()"
    )


def _projection_columns(rows: Sequence[ProjectedRegistration]) -> list[list[Any]]:
    return [
        [r.view.registration_id for r in rows],
        [r.view.course_id for r in rows],
        [r.status for r in rows],
        [r.view.participant.model_dump_json() for r in rows],
        [r.view.buyer.model_dump_json() if r.view.buyer else None for r in rows],
        [r.view.binding for r in rows],
    ]


async def participant_names(conn: Connection, registration_ids: Sequence[UUID]) -> list[str]:
    rows = await conn.fetch(
        "SELECT participant->>'name' AS name FROM registration_projection"
        " WHERE registration_id = ANY($1::uuid[]) AND participant ? 'name' ORDER BY name",
        list(registration_ids),
    )
    return [r["name"] for r in rows]


# -- billing documents ------------------------------------------------------------------------------------


async def save_invoice(conn: Connection, invoice: ev.InvoiceIssued) -> None:
    await conn.execute(
        "INSERT INTO billing_document_projection (document_id, document_number, course_id, document)"
        " VALUES ($1, $2, $3, $4::jsonb) ON CONFLICT (document_id) DO NOTHING",
        invoice.document_id,
        invoice.document_number,
        invoice.course_id,
        invoice.model_dump_json(),
    )


async def invoice(conn: Connection, document_id: UUID) -> ev.InvoiceIssued | None:
    raw = await conn.fetchval(
        "SELECT document FROM billing_document_projection WHERE document_id = $1", document_id
    )
    return ev.InvoiceIssued.model_validate_json(raw) if raw else None


# -- send ledger ------------------------------------------------------------------------------------------


async def add_to_ledger(
    conn: Connection,
    planned: Sequence[PlannedEmail],
    message_id_domain: str,
    resend_of: int | None = None,
    trace_headers: dict[str, str] | None = None,
) -> list[int]:
    """Insert pending rows; a row already planned for the same key is left alone. Returns new row ids.

    `trace_headers` (W3C) of the planning event are kept so the SMTP send joins its trace."""
    trace = trace_headers or {}
    return await add_to_ledger_traced(conn, [(p, trace) for p in planned], message_id_domain, resend_of)


async def add_to_ledger_traced(
    conn: Connection,
    planned: Sequence[tuple[PlannedEmail, dict[str, str]]],
    message_id_domain: str,
    resend_of: int | None = None,
    *,
    notify_channel: str | None = None,
) -> list[int]:
    """`add_to_ledger` for emails of several events, each with its own trace context, in ONE statement.
    Rows are inserted in the given order, so ledger ids (the per-recipient send order) follow it.

    `notify_channel`: NOTIFY it (delivered at commit) when a row was added, in the same statement: a
    round trip fewer per consumed batch than a separate NOTIFY."""
    if not planned:
        return []
    row = await conn.fetchrow(
        f"WITH added AS ({_ledger_insert_sql(1)}) {_ADDED_AND_WOKEN.format(channel=14)}",
        *_ledger_columns(planned, message_id_domain, resend_of),
        notify_channel,
    )
    ids: list[int] = row["ids"] if row is not None and row["ids"] else []
    return ids


async def save_registrations_and_plan(
    conn: Connection,
    rows: Sequence[ProjectedRegistration],
    planned: Sequence[tuple[PlannedEmail, dict[str, str]]],
    message_id_domain: str,
    *,
    notify_channel: str,
) -> list[int]:
    """`save_registrations` and `add_to_ledger_traced` in ONE statement (a consumed batch's writes): a
    round trip fewer per batch. Returns the ids of the ledger rows added."""
    if not rows:
        return await add_to_ledger_traced(conn, planned, message_id_domain, notify_channel=notify_channel)
    if not planned:
        await save_registrations(conn, rows)
        return []
    row = await conn.fetchrow(
        f"WITH saved AS ({_save_registrations_sql(1)}), added AS ({_ledger_insert_sql(7)})"
        f" {_ADDED_AND_WOKEN.format(channel=20)}",
        *_projection_columns(rows),
        *_ledger_columns(planned, message_id_domain, None),
        notify_channel,
    )
    ids: list[int] = row["ids"] if row is not None and row["ids"] else []
    return ids


def _ledger_insert_sql(first: int) -> str:
    """The ledger INSERT of `add_to_ledger_traced`, its 13 parameters (`_ledger_columns`: twelve arrays,
    then `resend_of`) numbered from `$first`."""
    return (
        "INSERT INTO send_ledger (email_id, event_id, recipient, kind, caused_by, course_id,"
        " registration_id, document_number, render_data, message_id, resend_of, traceparent, tracestate)"
        f" SELECT e, ev, r, k, cb, c, reg, doc, rd::jsonb, m, ${first + 12}::bigint, tp, ts"
        f" FROM unnest({array_params(first, _LEDGER_TYPES)}) WITH ORDINALITY"
        " AS t(e, ev, r, k, cb, c, reg, doc, rd, m, tp, ts, n) ORDER BY n"
        " ON CONFLICT (event_id, recipient, kind) DO NOTHING RETURNING id"
    )


_LEDGER_TYPES = (
    "uuid",
    "uuid",
    "text",
    "text",
    "uuid",
    "uuid",
    "uuid",
    "text",
    "text",
    "text",
    "text",
    "text",
)


# The ids added, and the sender's wake-up (delivered at commit) when there are any; `channel` is the
# number of the parameter naming the channel (none: no wake-up).
_ADDED_AND_WOKEN = (
    "SELECT array_agg(id ORDER BY id) AS ids,"
    " CASE WHEN count(*) > 0 AND ${channel}::text IS NOT NULL THEN pg_notify(${channel}, '') END AS woken"
    " FROM added"
)


def _ledger_columns(
    planned: Sequence[tuple[PlannedEmail, dict[str, str]]], message_id_domain: str, resend_of: int | None
) -> list[Any]:
    return [
        [p.key.message_uuid for p, _ in planned],
        [p.event_id for p, _ in planned],
        [p.key.recipient for p, _ in planned],
        [p.kind.value for p, _ in planned],
        [p.caused_by or p.event_id for p, _ in planned],
        [p.course_id for p, _ in planned],
        [p.registration_id for p, _ in planned],
        [p.document_number for p, _ in planned],
        [json.dumps(p.render_data) for p, _ in planned],
        [p.key.message_id(message_id_domain) for p, _ in planned],
        [t.get("traceparent") for _, t in planned],
        [t.get("tracestate") for _, t in planned],
        resend_of,
    ]


LEDGER_COLUMNS = (
    "id, email_id, event_id, recipient, kind, caused_by, course_id, registration_id, document_number,"
    " render_data, message_id, status, attempts, outcomes, next_attempt_at, last_code, last_reply,"
    " resend_of, created_at, sent_at, failed_at, traceparent, tracestate"
)


@dataclass(frozen=True)
class Claimed:
    rows: list[Any]  # in ledger order
    courses: dict[UUID, KnownCourse]  # the projected courses of the rows; a missing one is not projected yet
    queued_behind: bool  # some claimed recipient has a later pending email, due once this one is done


async def claim_due(conn: Connection, limit: int, lease_seconds: float) -> Claimed:
    """Claim up to `limit` due rows: only the oldest pending row of each recipient, so a recipient's
    emails go out in ledger order even across retries, replicas and crashes. The claim counts an attempt
    and leases the row; the lease expiring is what hands a crashed sender's rows to the next claim.

    The projected courses of the rows come with them from the same statement (a round trip fewer per
    round), each course's snapshot once, on its first row; so does whether a claimed recipient has another
    pending email queued behind (a probe of the pending index per row), which only a next claim can take."""
    rows = await conn.fetch(
        f"""
        WITH heads AS (
            SELECT DISTINCT ON (recipient) id FROM send_ledger
            WHERE status = 'pending' ORDER BY recipient, id
        ), due AS (
            SELECT l.id FROM send_ledger l JOIN heads h ON h.id = l.id
            WHERE l.next_attempt_at <= now() AND (l.claimed_until IS NULL OR l.claimed_until < now())
            ORDER BY l.id LIMIT $1 FOR UPDATE OF l SKIP LOCKED
        ), claimed AS (
            UPDATE send_ledger s SET attempts = s.attempts + 1,
                claimed_until = now() + make_interval(secs => $2)
            FROM due WHERE s.id = due.id
            RETURNING {", ".join("s." + c.strip() for c in LEDGER_COLUMNS.split(","))}
        )
        SELECT claimed.*, c.revision AS course_revision, c.cancel_reason AS course_cancel_reason,
            CASE WHEN row_number() OVER (PARTITION BY claimed.course_id ORDER BY claimed.id) = 1
                THEN c.snapshot END AS course_snapshot,
            EXISTS (SELECT 1 FROM send_ledger p WHERE p.status = 'pending' AND p.recipient = claimed.recipient
                AND p.id > claimed.id) AS queued_behind
        FROM claimed LEFT JOIN course_projection c ON c.course_id = claimed.course_id
        ORDER BY claimed.id
        """,
        limit,
        lease_seconds,
    )
    courses = {
        r["course_id"]: KnownCourse(
            _snapshot(r["course_snapshot"]), r["course_revision"], r["course_cancel_reason"]
        )
        for r in rows
        if r["course_snapshot"] is not None
    }
    return Claimed(list(rows), courses, any(r["queued_behind"] for r in rows))


async def mark_sent(conn: Connection, results: Sequence[tuple[int, int | None, str]]) -> None:
    await conn.executemany(
        "UPDATE send_ledger SET status = 'sent', sent_at = now(), outcomes = outcomes + 1,"
        " last_code = $2, last_reply = $3, claimed_until = NULL WHERE id = $1",
        results,
    )


async def mark_failed(conn: Connection, results: Sequence[tuple[int, int | None, str]]) -> None:
    await conn.executemany(
        "UPDATE send_ledger SET status = 'failed', failed_at = now(), outcomes = outcomes + 1,"
        " last_code = $2, last_reply = $3, claimed_until = NULL WHERE id = $1",
        results,
    )


async def reschedule(conn: Connection, results: Sequence[tuple[int, int | None, str, float]]) -> None:
    """(id, code, reply, seconds to wait): the database clock decides when, as it does for the claim."""
    await conn.executemany(
        "UPDATE send_ledger SET outcomes = outcomes + 1, last_code = $2, last_reply = $3,"
        " next_attempt_at = now() + make_interval(secs => $4), claimed_until = NULL WHERE id = $1",
        results,
    )


async def find_emails(
    conn: Connection,
    *,
    course_id: UUID | None,
    registration_id: UUID | None,
    recipient: str | None,
    limit: int,
) -> list[Any]:
    return await conn.fetch(
        f"SELECT {LEDGER_COLUMNS} FROM send_ledger"
        " WHERE ($1::uuid IS NULL OR course_id = $1) AND ($2::uuid IS NULL OR registration_id = $2)"
        " AND ($3::text IS NULL OR recipient = $3) ORDER BY id DESC LIMIT $4",
        course_id,
        registration_id,
        recipient,
        limit,
    )


async def email(conn: Connection, email_id: UUID) -> Any:
    return await conn.fetchrow(f"SELECT {LEDGER_COLUMNS} FROM send_ledger WHERE email_id = $1", email_id)


# -- erasure ----------------------------------------------------------------------------------------------


async def projected_people(conn: Connection, registration_ids: Sequence[UUID]) -> list[Any]:
    return list(
        await conn.fetch(
            "SELECT registration_id, participant, buyer FROM registration_projection"
            " WHERE registration_id = ANY($1::uuid[]) FOR UPDATE",
            list(registration_ids),
        )
    )


async def told_of_substitution(conn: Connection, handed_over: Sequence[tuple[UUID, UUID]]) -> list[Any]:
    """Recipient and render data of the `substituted_out` emails of these (registration, ParticipantSubstituted
    event) pairs: the people the substitutions replaced. Resends of one email repeat one recipient."""
    return list(
        await conn.fetch(
            "SELECT DISTINCT l.registration_id, l.caused_by, l.recipient, l.render_data FROM send_ledger l"
            " JOIN unnest($1::uuid[], $2::uuid[]) AS h(registration_id, event_id)"
            "   ON l.registration_id = h.registration_id AND l.caused_by = h.event_id"
            " WHERE l.kind = 'substituted_out'",
            [r for r, _ in handed_over],
            [e for _, e in handed_over],
        )
    )


async def replace_people(conn: Connection, rows: Sequence[tuple[UUID, Any, Any]]) -> None:
    await conn.executemany(
        "UPDATE registration_projection SET participant = $2::jsonb, buyer = $3::jsonb, updated_at = now()"
        " WHERE registration_id = $1",
        [(rid, json.dumps(p), None if b is None else json.dumps(b)) for rid, p, b in rows],
    )


async def course_ledger(conn: Connection, course_id: UUID) -> list[Any]:
    return list(
        await conn.fetch(
            "SELECT id, email_id, caused_by, registration_id, recipient, render_data, last_reply, status"
            " FROM send_ledger"
            " WHERE course_id = $1 ORDER BY id FOR UPDATE",
            course_id,
        )
    )


async def replace_ledger_rows(
    conn: Connection, rows: Sequence[tuple[int, str, Any, str | None, bool]]
) -> None:
    """(id, recipient, render_data, last_reply, cancel): `cancel` turns a pending row into a failed one."""
    await conn.executemany(
        "UPDATE send_ledger SET recipient = $2, render_data = $3::jsonb, last_reply = $4,"
        " status = CASE WHEN $5 AND status = 'pending' THEN 'failed' ELSE status END,"
        " failed_at = CASE WHEN $5 AND status = 'pending' THEN now() ELSE failed_at END"
        " WHERE id = $1",
        [(i, r, json.dumps(d), lr, c) for i, r, d, lr, c in rows],
    )


async def course_documents(conn: Connection, course_id: UUID) -> list[Any]:
    return list(
        await conn.fetch(
            "SELECT document_id, document FROM billing_document_projection WHERE course_id = $1 FOR UPDATE",
            course_id,
        )
    )


async def replace_documents(conn: Connection, rows: Sequence[tuple[UUID, Any]]) -> None:
    await conn.executemany(
        "UPDATE billing_document_projection SET document = $2::jsonb WHERE document_id = $1",
        [(d, json.dumps(doc)) for d, doc in rows],
    )
