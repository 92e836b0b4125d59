"""HTTP intake use cases: turn a request into an event on the intake topic, through the outbox.

Nothing is allocated here. The request is stamped, given its id and written to the outbox; the allocator
applies it in the course's partition order, the only order that decides who gets a seat.

`Idempotency-Key` (pretix semantics, see README):
- first call: an `in_progress` row is committed first, so a concurrent call with the same key can see it
  and get 409 + Retry-After instead of waiting on a lock; then ONE statement writes the outbox row and
  stores the answer (`done`): two round trips per request. A registration reads nothing, so its first call
  is ONE statement (key, answer and event together): there is no moment in which it is in progress, and a
  concurrent repeat waits for that statement and gets the stored answer;
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

from komponent_registration.adapters import idempotency_keys, repository

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


# A use case's work: it may read, and returns the answer and the event to publish (if any); it writes
# nothing itself, so the event and the stored answer can be written in one statement.
Work = Callable[[Connection], Awaitable[tuple[Answer, Event | None]]]


async def idempotent(
    pool: asyncpg.Pool, scope: str, key: str | None, fingerprint: str, work: Work, *, reads: bool = True
) -> Answer:
    """Run `work` at most once per key. `reads=False`: the work reads nothing, so it can run before the
    key is claimed and a first call is answered in one statement."""
    async with pool.acquire() as conn:
        if key is None:
            answer, event = await work(conn)
            if event is not None:
                await outbox.enqueue(conn, [CloudEvent(event, source=SOURCE)])  # one statement: atomic
            return answer
        if not reads:
            answer, event = await work(conn)
            if (
                event is not None
                and answer.status not in _NOT_STORED
                and await idempotency_keys.answer_first_call(
                    conn,
                    scope,
                    key,
                    fingerprint,
                    answer.status,
                    answer.body,
                    CloudEvent(event, source=SOURCE),
                )
            ):
                return answer
            # The key was seen before (nothing written): a repeat, answered below like any other.
        if not await idempotency_keys.claim(conn, scope, key, fingerprint, STALE_AFTER):
            row = await idempotency_keys.stored(conn, scope, key)
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
            answer, event = await work(conn)
            if answer.status in _NOT_STORED:
                await idempotency_keys.forget(conn, scope, key)
                return answer
            published = CloudEvent(event, source=SOURCE) if event is not None else None
            if not await idempotency_keys.complete(conn, scope, key, answer.status, answer.body, published):
                return _busy()  # the key's row vanished: nothing was written, a retry is a first call
            return answer
        except BaseException:
            # Nothing was written: free the key so the client's retry is treated as a first call.
            await idempotency_keys.forget(conn, scope, key, only_in_progress=True)
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
    async def work(conn: Connection) -> tuple[Answer, Event | None]:
        registration_id = uuid.uuid4()
        received = contract.RegistrationReceived(
            registration_id=registration_id,
            course_id=course_id,
            received_at=clock.now(),
            participant=participant,
            buyer=buyer,
            terms_version=terms_version,
        )
        return _accepted(registration_id), received

    return await idempotent(pool, PUBLIC_SCOPE, key, fingerprint, work, reads=False)


async def cancel(
    pool: asyncpg.Pool, clock: Clock, registration_id: UUID, *, key: str | None, fingerprint: str
) -> Answer:
    async def work(conn: Connection) -> tuple[Answer, Event | None]:
        course_id = await repository.course_of_registration(conn, registration_id)
        if course_id is None:
            return _unknown(registration_id), None
        requested = contract.RegistrationCancellationRequested(
            registration_id=registration_id, course_id=course_id, requested_at=clock.now()
        )
        return _accepted(registration_id), requested

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
    async def work(conn: Connection) -> tuple[Answer, Event | None]:
        course_id = await repository.course_of_registration(conn, registration_id)
        if course_id is None:
            return _unknown(registration_id), None
        requested = contract.SubstitutionRequested(
            registration_id=registration_id,
            course_id=course_id,
            requested_at=clock.now(),
            new_participant=new_participant,
            new_buyer=new_buyer,
        )
        return _accepted(registration_id), requested

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
