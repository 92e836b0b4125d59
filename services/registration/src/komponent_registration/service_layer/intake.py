"""HTTP intake use cases: turn a request into an event on the intake topic, through the outbox.

Nothing is allocated here. The request is stamped, given its id and written to the outbox; the allocator
applies it in the course's partition order, the only order that decides who gets a seat.

`Idempotency-Key` (pretix semantics, see README):
- first call: an `in_progress` row is committed first, so a concurrent call with the same key can see it
  and get 409 + Retry-After instead of waiting on a lock; then ONE transaction writes the outbox row and
  stores the answer (`done`);
- repeat with the same key and the same request: the stored answer is replayed;
- same key, different request: 422 (the client reused a key by mistake; nothing is stored);
- a key left `in_progress` by a process that died is taken over after `STALE_AFTER`.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from uuid import UUID

import asyncpg
from komponent_contracts import CloudEvent, Event
from komponent_contracts import events as contract
from komponent_runtime import outbox
from komponent_runtime.clock import Clock
from komponent_runtime.database import Connection

from komponent_registration.adapters import repository

SOURCE = "/registration/http"
STALE_AFTER = timedelta(seconds=30)
RETRY_AFTER_SECONDS = 1
PUBLIC_SCOPE = "public"  # the intake is public: no caller identity to scope keys by; the hash covers the path
# Answers that may change on retry (pretix: 409/429/503; ours also 404 while a registration is not yet
# allocated) are not stored, so a retry with the same key is a first call.
_NOT_STORED = {404, 409, 429, 503}


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def request_hash(method: str, path: str, body: dict[str, Any]) -> str:
    """What makes two requests "the same" for an idempotency key: method, path and the JSON body."""
    canonical = json.dumps([method, path, body], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


Work = Callable[[Connection], Awaitable[Answer]]


async def idempotent(pool: asyncpg.Pool, scope: str, key: str | None, fingerprint: str, work: Work) -> Answer:
    if key is None:
        async with pool.acquire() as conn, conn.transaction():
            return await work(conn)
    async with pool.acquire() as conn:
        claimed = await conn.fetchval(
            "INSERT INTO idempotency_keys (scope, key, request_hash, status) VALUES ($1, $2, $3, 'in_progress')"
            " ON CONFLICT (scope, key) DO UPDATE SET request_hash = EXCLUDED.request_hash, created_at = now()"
            "   WHERE idempotency_keys.status = 'in_progress'"
            f"   AND idempotency_keys.created_at < now() - interval '{int(STALE_AFTER.total_seconds())} seconds'"
            "   AND idempotency_keys.request_hash = EXCLUDED.request_hash"
            " RETURNING true",
            scope,
            key,
            fingerprint,
        )
        if not claimed:
            row = await conn.fetchrow(
                "SELECT request_hash, status, response_status, response FROM idempotency_keys"
                " WHERE scope = $1 AND key = $2",
                scope,
                key,
            )
            if (
                row is None
            ):  # removed between our insert and select: the first call failed; let the client retry
                return _busy()
            if row["request_hash"] != fingerprint:
                return Answer(
                    422,
                    {
                        "errors": [
                            {
                                "field": "Idempotency-Key",
                                "rule": "idempotency_key_reused",
                                "message": "this key was used for a different request",
                            }
                        ]
                    },
                )
            if row["status"] == "done":
                return Answer(
                    row["response_status"], json.loads(row["response"]), {"Idempotent-Replayed": "true"}
                )
            return _busy()
        try:
            async with conn.transaction():
                answer = await work(conn)
                if answer.status in _NOT_STORED:
                    await conn.execute(
                        "DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2", scope, key
                    )
                    return answer
                await conn.execute(
                    "UPDATE idempotency_keys SET status = 'done', response_status = $3, response = $4::jsonb,"
                    " completed_at = now() WHERE scope = $1 AND key = $2",
                    scope,
                    key,
                    answer.status,
                    json.dumps(answer.body),
                )
            return answer
        except BaseException:
            # Nothing was written: free the key so the client's retry is treated as a first call.
            await conn.execute(
                "DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND status = 'in_progress'",
                scope,
                key,
            )
            raise


def _busy() -> Answer:
    return Answer(
        409,
        {
            "errors": [
                {
                    "field": "Idempotency-Key",
                    "rule": "in_progress",
                    "message": "a request with this key is in progress",
                }
            ]
        },
        {"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


async def _publish(conn: Connection, event: Event) -> None:
    await outbox.enqueue(conn, [CloudEvent(event, source=SOURCE)])


async def register(
    pool: asyncpg.Pool,
    clock: Clock,
    course_id: UUID,
    participant: contract.Participant,
    buyer: contract.Buyer,
    terms_version: str,
    *,
    key: str | None,
    fingerprint: str,
) -> Answer:
    async def work(conn: Connection) -> Answer:
        registration_id = uuid.uuid4()
        await _publish(
            conn,
            contract.RegistrationReceived(
                registration_id=registration_id,
                course_id=course_id,
                received_at=clock.now(),
                participant=participant,
                buyer=buyer,
                terms_version=terms_version,
            ),
        )
        return _accepted(registration_id)

    return await idempotent(pool, PUBLIC_SCOPE, key, fingerprint, work)


async def cancel(
    pool: asyncpg.Pool, clock: Clock, registration_id: UUID, *, key: str | None, fingerprint: str
) -> Answer:
    async def work(conn: Connection) -> Answer:
        course_id = await repository.course_of_registration(conn, registration_id)
        if course_id is None:
            return _unknown(registration_id)
        await _publish(
            conn,
            contract.RegistrationCancellationRequested(
                registration_id=registration_id, course_id=course_id, requested_at=clock.now()
            ),
        )
        return _accepted(registration_id)

    return await idempotent(pool, PUBLIC_SCOPE, key, fingerprint, work)


async def substitute(
    pool: asyncpg.Pool,
    clock: Clock,
    registration_id: UUID,
    new_participant: contract.Participant,
    new_buyer: contract.Buyer | None,
    *,
    key: str | None,
    fingerprint: str,
) -> Answer:
    async def work(conn: Connection) -> Answer:
        course_id = await repository.course_of_registration(conn, registration_id)
        if course_id is None:
            return _unknown(registration_id)
        await _publish(
            conn,
            contract.SubstitutionRequested(
                registration_id=registration_id,
                course_id=course_id,
                requested_at=clock.now(),
                new_participant=new_participant,
                new_buyer=new_buyer,
            ),
        )
        return _accepted(registration_id)

    return await idempotent(pool, PUBLIC_SCOPE, key, fingerprint, work)


def _accepted(registration_id: UUID) -> Answer:
    url = f"/registrations/{registration_id}"
    return Answer(202, {"registration_id": str(registration_id), "status_url": url}, {"Location": url})


def _unknown(registration_id: UUID) -> Answer:
    # Unknown, or not yet allocated (the allocator has not seen it): the request can be retried later.
    return Answer(
        404,
        {"errors": [{"field": "registration_id", "rule": "not_found", "message": "unknown registration"}]},
    )
