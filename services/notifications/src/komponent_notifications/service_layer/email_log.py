"""The email log: what was sent to whom and when, and resending one email."""

from __future__ import annotations

import json
import uuid
from typing import Any
from uuid import UUID

import asyncpg
from komponent_runtime.telemetry import current_trace_headers

from ..adapters import repository as repo
from ..domain.emails import EmailKind
from ..domain.ledger import normalise_address
from .planning import PlannedEmail


class UnknownEmail(Exception):
    pass


async def find(
    pool: asyncpg.Pool,
    *,
    course_id: UUID | None = None,
    registration_id: UUID | None = None,
    recipient: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    async with pool.acquire() as conn:
        rows = await repo.find_emails(
            conn,
            course_id=course_id,
            registration_id=registration_id,
            recipient=normalise_address(recipient) if recipient else None,
            limit=limit,
        )
    return [entry(r) for r in rows]


async def get(pool: asyncpg.Pool, email_id: UUID) -> dict[str, Any]:
    async with pool.acquire() as conn:
        row = await repo.email(conn, email_id)
    if row is None:
        raise UnknownEmail(str(email_id))
    return entry(row)


async def resend(pool: asyncpg.Pool, email_id: UUID, message_id_domain: str) -> dict[str, Any]:
    """A new ledger row with the original's data, linked to it. Its key carries a fresh request id, so it
    is a new message (new Message-ID) that the sender delivers like any other."""
    async with pool.acquire() as conn, conn.transaction():
        original = await repo.email(conn, email_id)
        if original is None:
            raise UnknownEmail(str(email_id))
        planned = PlannedEmail(
            event_id=uuid.uuid4(),
            kind=EmailKind(original["kind"]),
            recipient=original["recipient"],
            course_id=original["course_id"],
            registration_id=original["registration_id"],
            render_data=_json(original["render_data"]),
            document_number=original["document_number"],
            caused_by=original["caused_by"],
        )
        await repo.add_to_ledger(
            conn,
            [planned],
            message_id_domain,
            resend_of=original["id"],
            trace_headers=current_trace_headers(),
        )
        row = await repo.email(conn, planned.key.message_uuid)
    return entry(row)


def entry(row: Any) -> dict[str, Any]:
    return {
        "email_id": str(row["email_id"]),
        "kind": row["kind"],
        "recipient": row["recipient"],
        "course_id": str(row["course_id"]),
        "registration_id": str(row["registration_id"]) if row["registration_id"] else None,
        "document_number": row["document_number"],
        "caused_by_event_id": str(row["caused_by"]),
        "message_id": row["message_id"],
        "status": row["status"],
        "attempts": row["attempts"],
        "possible_duplicates": max(row["attempts"] - row["outcomes"], 0),
        "last_code": row["last_code"],
        "last_reply": row["last_reply"],
        "created_at": row["created_at"].isoformat(),
        "sent_at": row["sent_at"].isoformat() if row["sent_at"] else None,
        "failed_at": row["failed_at"].isoformat() if row["failed_at"] else None,
        "next_attempt_at": row["next_attempt_at"].isoformat() if row["status"] == "pending" else None,
        "resend_of": row["resend_of"],
    }


def _json(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else json.loads(value)
