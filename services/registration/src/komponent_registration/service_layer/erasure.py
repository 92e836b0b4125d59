"""Erasure on request: anonymise every registration of one participant and tell the other services.

One transaction: the registrations are anonymised, the published outbox rows that carried their data are
deleted, and one `ParticipantDataErased` per course (ids only) is enqueued. Notifications and billing
anonymise their own copies when it arrives; billing's issued documents stay as bookkeeping law requires.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

import asyncpg
from komponent_contracts import CloudEvent
from komponent_contracts import events as contract
from komponent_runtime import outbox
from komponent_runtime.clock import Clock

from komponent_registration.adapters import repository
from komponent_registration.domain import erasure

SOURCE = "/registration/admin"


class ErasurePending(Exception):
    """Events about these registrations are still waiting in the outbox; erase once they are published."""


@dataclass(frozen=True)
class Erasure:
    erased_at: datetime
    registrations: dict[UUID, list[UUID]] = field(default_factory=dict)  # course → registrations


async def erase_participant(pool: asyncpg.Pool, clock: Clock, email: str) -> Erasure:
    """Anonymise the participant's registrations (any status, any course). An unknown address erases
    nothing and is not an error: a second request for the same person finds nothing left."""
    now = clock.now()
    async with pool.acquire() as conn, conn.transaction():
        rows = await repository.registrations_of_participant(conn, erasure.normalise_email(email))
        if not rows:
            return Erasure(now)
        ids = [str(r["registration_id"]) for r in rows]
        if await outbox.unpublished_mentioning(conn, ids):
            raise ErasurePending
        await repository.anonymise_registrations(
            conn,
            [
                (
                    r["registration_id"],
                    erasure.anonymised_email(r["registration_id"]),
                    erasure.anonymised_details(r["registration_id"], json.loads(r["details"])),
                )
                for r in rows
            ],
            now,
        )
        await outbox.forget_published(conn, ids)
        by_course: dict[UUID, list[UUID]] = defaultdict(list)
        for r in rows:
            by_course[r["course_id"]].append(r["registration_id"])
        await outbox.enqueue(
            conn,
            [
                CloudEvent(
                    contract.ParticipantDataErased(
                        course_id=course_id, registration_ids=registration_ids, erased_at=now
                    ),
                    source=SOURCE,
                )
                for course_id, registration_ids in by_course.items()
            ],
        )
    return Erasure(now, dict(by_course))
