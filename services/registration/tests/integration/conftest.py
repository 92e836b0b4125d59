"""The registration service as a real OS process on the real Kafka and PostgreSQL.

Test modules cannot import from here (importlib mode), so what they need comes as the `stack` fixture: a
fresh database and topic prefix, service processes (stopped at the end), and helpers to publish course
facts and registrations and to read what the service answered.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from komponent_contracts import CloudEvent, Event, parse, topics
from komponent_contracts.events import (
    CourseCancelled,
    CoursePublished,
    CourseSession,
    CourseUpdated,
    DeadlinePassed,
    Participant,
    RegistrationReceived,
)
from komponent_contracts.examples import buyer, course
from komponent_runtime.settings import DatabaseSettings
from komponent_runtime.testing import (
    ServiceProcess,
    create_database,
    isolated_topics,
    kafka_bootstrap,
    produce_many,
    wait_until,
)


def participant(i: int) -> Participant:
    return Participant(name=f"Deltager {i}", email=f"deltager{i}@kommune.dk", job_title="Konsulent")


@dataclass
class Stack:
    prefix: str
    database: str
    pool: asyncpg.Pool
    processes: list[ServiceProcess] = field(default_factory=list)

    # -- processes ----------------------------------------------------------------------------------

    async def start(self, **env: str) -> ServiceProcess:
        process = ServiceProcess(
            "registration",
            database=self.database,
            topic_prefix=self.prefix,
            env={"OTEL_SDK_DISABLED": "true", **env},
        )
        self.processes.append(process)
        await process.wait_ready()
        return process

    @property
    def url(self) -> str:
        return next(p for p in self.processes if p.proc.poll() is None).url

    def http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=10)

    # -- topics -------------------------------------------------------------------------------------

    def topic(self, base: str) -> str:
        return self.prefix + base

    async def produce(self, events: Sequence[CloudEvent[Event]]) -> None:
        """Publish in order into this stack's topics, fast (see komponent_runtime.testing.produce_many)."""
        await produce_many(events, prefix=self.prefix)

    async def outcomes(
        self,
        course_id: UUID,
        *,
        until: int | None = None,
        timeout: float = 60.0,
        topic: str = topics.REGISTRATION,
    ) -> list[CloudEvent[Event]]:
        """Every event on `topic` (the service's answers by default) about `course_id`: once `until` of
        them arrived (plus a short linger so that an unexpected extra one is seen too), or with no `until`,
        everything up to the topic's end as it is now. Repeats of a ce_id are kept."""
        name = self.topic(topic)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=kafka_bootstrap(), enable_auto_commit=False, group_id=None
        )
        await consumer.start()
        found: list[CloudEvent[Event]] = []
        key = str(course_id).encode()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout

        async def read(timeout_ms: int) -> None:
            batch = await consumer.getmany(timeout_ms=timeout_ms, max_records=5000)
            found.extend(parse(r.headers, r.value) for part in batch.values() for r in part if r.key == key)

        try:
            count = next(t.partitions for t in topics.EVENT_TOPICS if t.name == topic)
            partitions = [TopicPartition(name, p) for p in range(count)]
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            if until is None:
                ends = await consumer.end_offsets(partitions)
                while loop.time() < deadline and any(
                    [await consumer.position(tp) < end for tp, end in ends.items()]
                ):
                    await read(200)
                return found
            while len(found) < until and loop.time() < deadline:
                await read(200)
            await read(500)
        finally:
            await consumer.stop()
        return found

    # -- course facts -------------------------------------------------------------------------------

    async def publish_course(
        self,
        capacity: int,
        *,
        starts_in: timedelta = timedelta(days=60),
        deadline_in: timedelta = timedelta(days=30),
    ) -> UUID:
        """A new course from the contracts' example, with a new id and dates relative to now."""
        course_id = uuid.uuid4()
        await self.produce(
            [
                CloudEvent(
                    CoursePublished(
                        course_id=course_id,
                        course=self.snapshot(course_id, capacity, starts_in, deadline_in),
                        occurred_at=datetime.now(UTC),
                    ),
                    source="/test/catalogue",
                )
            ]
        )
        await wait_until(lambda: self.course_known(course_id), what="course projected")
        return course_id

    def snapshot(
        self,
        course_id: UUID,
        capacity: int,
        starts_in: timedelta,
        deadline_in: timedelta,
        status: str = "published",
    ) -> Any:
        now = datetime.now(UTC)
        return course().model_copy(
            update={
                "course_id": course_id,
                "capacity": capacity,
                "status": status,
                "sessions": (
                    CourseSession(starts_at=now + starts_in, ends_at=now + starts_in + timedelta(hours=7)),
                ),
                "registration_deadline": now + deadline_in,
            }
        )

    async def update_course(self, course_id: UUID, capacity: int, **kwargs: timedelta) -> None:
        snapshot = self.snapshot(
            course_id,
            capacity,
            kwargs.get("starts_in", timedelta(days=60)),
            kwargs.get("deadline_in", timedelta(days=30)),
        )
        await self.produce(
            [
                CloudEvent(
                    CourseUpdated(
                        course_id=course_id,
                        course=snapshot,
                        changed=("capacity",),
                        occurred_at=datetime.now(UTC),
                    ),
                    source="/test/catalogue",
                )
            ]
        )

    async def cancel_course(self, course_id: UUID) -> None:
        await self.produce(
            [
                CloudEvent(
                    CourseCancelled(course_id=course_id, reason="test", occurred_at=datetime.now(UTC)),
                    source="/test/catalogue",
                )
            ]
        )

    async def pass_deadline(self, course_id: UUID, due_at: datetime) -> None:
        now = datetime.now(UTC)
        await self.produce(
            [
                CloudEvent(
                    DeadlinePassed(
                        course_id=course_id,
                        due_at=due_at,
                        fired_at=now,
                        lateness_seconds=max(0.0, (now - due_at).total_seconds()),
                    ),
                    source="/test/calendar",
                )
            ]
        )

    # -- registrations ------------------------------------------------------------------------------

    @staticmethod
    def registration(course_id: UUID, i: int) -> CloudEvent[RegistrationReceived]:
        return CloudEvent(
            RegistrationReceived(
                registration_id=uuid.uuid4(),
                course_id=course_id,
                received_at=datetime.now(UTC),
                participant=participant(i),
                buyer=buyer(),
                terms_version="2026-01",
            ),
            source="/test/intake",
        )

    # -- database -----------------------------------------------------------------------------------

    async def course_known(self, course_id: UUID) -> bool:
        return bool(await self.pool.fetchval("SELECT true FROM course_seats WHERE course_id = $1", course_id))

    async def count(self, course_id: UUID) -> int:
        """Registrations of the course that the allocator has written (confirmed, waitlisted or cancelled)."""
        return int(
            await self.pool.fetchval("SELECT count(*) FROM registrations WHERE course_id = $1", course_id)
        )

    async def rows(self, course_id: UUID) -> list[asyncpg.Record]:
        return list(
            await self.pool.fetch(
                "SELECT registration_id, status, binding, queue_number, source_offset FROM registrations"
                " WHERE course_id = $1 ORDER BY source_offset",
                course_id,
            )
        )

    async def outbox_drained(self) -> bool:
        return not await self.pool.fetchval("SELECT count(*) FROM outbox")

    async def status(self, registration_id: UUID) -> dict[str, Any] | None:
        async with self.http() as client:
            response = await client.get(f"/registrations/{registration_id}")
        return response.json() if response.status_code == 200 else None


@pytest.fixture
async def stack() -> AsyncIterator[Stack]:
    prefix = await isolated_topics()
    database = await create_database("registration")
    pool = await asyncpg.create_pool(DatabaseSettings().dsn(database), min_size=1, max_size=4)
    assert pool is not None
    s = Stack(prefix, database, pool)
    try:
        yield s
    finally:
        for process in s.processes:
            process.stop()
        await pool.close()
