"""Erasure on request: anonymise every registration of one participant and tell the other services.

One transaction: the registrations are anonymised and one `ParticipantDataErased` per course (ids only)
is enqueued. It waits (`ErasurePending`) while events about them are still in the outbox; published rows
are deleted by the relay, so none is left to scrub. Notifications and billing
anonymise their own copies when it arrives; billing's issued documents stay as bookkeeping law requires.

Registrations the person handed over to a colleague name the colleague now, and stay as they are; the
record of who left them is deleted, and one `FormerParticipantDataErased`
per course names the substitutions, so notifications can scrub the person from the emails about them.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

import asyncpg
from komponent_contracts import CloudEvent, Event
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
    handed_over: dict[UUID, list[UUID]] = field(default_factory=dict)  # course → registrations left


async def erase_participant(pool: asyncpg.Pool, clock: Clock, email: str) -> Erasure:
    """Anonymise the participant's registrations (any status, any course). An unknown address erases
    nothing and is not an error: a second request for the same person finds nothing left."""
    now = clock.now()
    address = erasure.normalise_email(email)
    async with pool.acquire() as conn, conn.transaction():
        rows = await repository.registrations_of_participant(conn, address)
        left = await repository.take_handed_over_by(conn, address)
        if not rows and not left:
            return Erasure(now)
        ids = [str(r["registration_id"]) for r in [*rows, *left]]
        if await outbox.unpublished_mentioning(conn, ids):
            raise ErasurePending  # rolls back: the record of what they left stays for the retry
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
        by_course: dict[UUID, list[UUID]] = defaultdict(list)
        for r in rows:
            by_course[r["course_id"]].append(r["registration_id"])
        left_by_course: dict[UUID, list[contract.HandedOver]] = defaultdict(list)
        for r in left:
            left_by_course[r["course_id"]].append(
                contract.HandedOver(
                    registration_id=r["registration_id"], substitution_event_id=r["substitution_event_id"]
                )
            )
        erased: list[Event] = [
            contract.ParticipantDataErased(
                course_id=course_id, registration_ids=registration_ids, erased_at=now
            )
            for course_id, registration_ids in by_course.items()
        ]
        erased += [
            contract.FormerParticipantDataErased(course_id=course_id, handed_over=handed_over, erased_at=now)
            for course_id, handed_over in left_by_course.items()
        ]
        await outbox.enqueue(conn, [CloudEvent(e, source=SOURCE) for e in erased])
    return Erasure(
        now,
        dict(by_course),
        {course: [h.registration_id for h in handed] for course, handed in left_by_course.items()},
    )
