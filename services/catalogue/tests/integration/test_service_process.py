"""The catalogue as real OS processes on real PostgreSQL and Kafka.

- Timers exactly once in effect with two scheduler processes on one database, one of them SIGKILLed
  mid-run and restarted: every timer fires once in the database, and whatever reaches Kafka twice (the
  relay's publish -> mark window, recreated for 20 events) carries the same ce_id, so an inbox consumer
  applies each once.
- Seats left follows registration's CourseSeatsChanged, keeping the highest version.
- `load_seed` creates and publishes the demo course through the admin API, idempotently.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest
from komponent_catalogue.adapters.seed_page import DEMO_COURSE_ID
from komponent_contracts import CloudEvent, Event, topics
from komponent_contracts.events import CourseSeatsChanged
from komponent_runtime import inbox
from komponent_runtime.database import migrate
from komponent_runtime.settings import DatabaseSettings
from komponent_runtime.testing import (
    ADMIN_HEADERS,
    REPO_ROOT,
    ServiceProcess,
    create_database,
    headers_of,
    isolated_topics,
    produce,
    read_topic,
    wait_until,
)

pytestmark = pytest.mark.infra
CPH = ZoneInfo("Europe/Copenhagen")
SEED_PAGE = Path(REPO_ROOT).parent / "shared" / "seed" / "course-page.da.txt"
COURSES = 100


@pytest.fixture
def processes() -> Iterator[list[ServiceProcess]]:
    started: list[ServiceProcess] = []
    yield started
    for p in started:
        p.stop()


async def _count(pool: asyncpg.Pool, sql: str) -> int:
    return int(await pool.fetchval(sql))


async def test_timers_fire_once_with_two_scheduler_processes_and_a_kill_mid_run(
    catalogue: Any, database: str, processes: list[ServiceProcess], monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix = await isolated_topics()
    monkeypatch.setenv("KAFKA_TOPIC_PREFIX", prefix)
    # Courses whose three timers are all overdue by the real clock: start in 3 days, deadline passed,
    # invoice run and reminder in the past. Published while no scheduler runs (as after downtime).
    start = datetime.combine((datetime.now(CPH) + timedelta(days=3)).date(), time(9), tzinfo=CPH)
    deadline = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    ids = [await catalogue.create(catalogue.body(start, deadline=deadline)) for _ in range(COURSES)]
    total = 3 * COURSES
    assert await _count(catalogue.pool, "SELECT count(*) FROM course_timers WHERE fired_at IS NULL") == total

    # One timer per transaction so the run is long enough for the kill to land inside it.
    slow = {"CATALOGUE_TIMER_BATCH_SIZE": "1"}
    doomed = ServiceProcess("catalogue", database=database, topic_prefix=prefix, env=slow)
    other = ServiceProcess("catalogue", database=database, topic_prefix=prefix, env=slow)
    processes += [doomed, other]
    fired = "SELECT count(*) FROM course_timers WHERE fired_at IS NOT NULL"

    async def some_fired() -> bool:
        return await _count(catalogue.pool, fired) >= 10

    await wait_until(some_fired, timeout=60, what="the schedulers to start firing")
    doomed.kill()
    fired_at_kill = await _count(catalogue.pool, fired)
    assert fired_at_kill < total, "the kill must land mid-run"
    processes.append(ServiceProcess("catalogue", database=database, topic_prefix=prefix))

    async def all_fired_and_published() -> bool:
        pending = await _count(catalogue.pool, "SELECT count(*) FROM course_timers WHERE fired_at IS NULL")
        unpublished = await _count(catalogue.pool, "SELECT count(*) FROM outbox")
        return pending == 0 and unpublished == 0

    await wait_until(all_fired_and_published, timeout=120, what="every timer fired and published")
    timer_ids = {str(r["event_id"]) for r in await catalogue.pool.fetch("SELECT event_id FROM course_timers")}
    assert len(timer_ids) == total
    first_reading = await read_topic(prefix + topics.COURSE_CALENDAR, expect=total, timeout=60)

    # The relay's own crash window (published to Kafka, killed before deleting; the runtime's tests hit it
    # with a deterministic SIGKILL) leaves published rows in the outbox. Recreate that state for 20 timer
    # events from their records: the running relay publishes them again, as a restarted one would.
    await catalogue.pool.executemany(
        "INSERT INTO outbox (event_id, topic, kafka_key, headers, value) VALUES ($1, $2, $3, $4::jsonb, $5)",
        [
            (UUID(headers_of(r)["ce_id"]), r.topic, r.key, json.dumps(headers_of(r)), r.value)
            for r in first_reading[:20]
        ],
    )
    await wait_until(all_fired_and_published, timeout=60, what="the left-behind rows published again")

    # Kafka: at least once. Every repeat is the same event with the same ce_id, and each timer (course and
    # kind) has one event id: it fired once.
    records = await read_topic(prefix + topics.COURSE_CALENDAR, expect=len(first_reading) + 20, timeout=60)
    assert len(records) == len(first_reading) + 20
    ids_on_topic = [headers_of(r)["ce_id"] for r in records]
    assert set(ids_on_topic) == timer_ids
    by_course_and_kind: dict[tuple[str, str], set[str]] = defaultdict(set)
    for r in records:
        h = headers_of(r)
        by_course_and_kind[(h["ce_subject"], h["ce_type"])].add(h["ce_id"])
    assert len(by_course_and_kind) == total and all(len(v) == 1 for v in by_course_and_kind.values())
    assert {UUID(subject) for subject, _ in by_course_and_kind} == set(ids)

    # Downstream: an inbox applies each timer exactly once however many copies arrived.
    downstream = await asyncpg.connect(DatabaseSettings().dsn(await create_database("downstream")))
    try:
        with tempfile.TemporaryDirectory() as empty:
            await migrate(downstream, Path(empty))
        applied = 0
        for r in records:
            async with downstream.transaction():
                applied += await inbox.first_delivery(
                    downstream, "billing.timers", UUID(headers_of(r)["ce_id"])
                )
        assert applied == total
    finally:
        await downstream.close()
    print(f"kill landed after {fired_at_kill}/{total} timers; {len(records) - total} duplicate(s) on Kafka")


async def test_seats_left_follows_registration_and_keeps_the_highest_version(
    catalogue: Any, database: str, processes: list[ServiceProcess], monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix = await isolated_topics()
    monkeypatch.setenv("KAFKA_TOPIC_PREFIX", prefix)
    start = datetime.combine((datetime.now(CPH) + timedelta(days=90)).date(), time(9), tzinfo=CPH)
    course_id = await catalogue.create(catalogue.body(start))

    def seats(taken: int, version: int) -> CloudEvent[Event]:
        data = CourseSeatsChanged(
            course_id=course_id,
            capacity=30,
            seats_taken=taken,
            waiting_list_length=0,
            version=version,
            occurred_at=datetime.now(UTC),
        )
        return CloudEvent(data=data, source="/komponent/registration")

    newest = seats(12, 3)
    # Out of order (3 before 2) and a duplicate delivery of the newest.
    await produce(prefix + topics.REGISTRATION, [seats(5, 1), newest, seats(8, 2), newest])
    service = ServiceProcess("catalogue", database=database, topic_prefix=prefix)
    processes.append(service)
    await service.wait_ready()
    async with httpx.AsyncClient(base_url=service.url) as client:

        async def projected() -> bool:
            shown = (await client.get(f"/courses/{course_id}")).json()
            return bool(shown["seats_taken"] == 12)

        await wait_until(projected, what="seats taken from registration's events")
        shown = (await client.get(f"/courses/{course_id}")).json()
        assert (shown["seats_left"], shown["registration_deadline_passed"]) == (18, False)
        listed = (await client.get("/courses")).json()
        assert [(c["course_id"], c["seats_available"]) for c in listed] == [(str(course_id), 18)]
        refused = await client.post(
            f"/admin/courses/{course_id}/capacity", json={"capacity": 11}, headers=ADMIN_HEADERS
        )
        assert refused.status_code == 422
        assert refused.json()["errors"][0]["rule"] == "capacity_below_seats_taken"
    row = await catalogue.pool.fetchrow(
        "SELECT version, seats_taken FROM course_seats_taken WHERE course_id = $1", course_id
    )
    assert (row["version"], row["seats_taken"]) == (3, 12)


async def test_load_seed_creates_and_publishes_the_demo_course_once(
    database: str, processes: list[ServiceProcess], pool: asyncpg.Pool
) -> None:
    prefix = await isolated_topics()
    service = ServiceProcess("catalogue", database=database, topic_prefix=prefix)
    processes.append(service)
    await service.wait_ready()
    env = {"CATALOGUE_URL": service.url, "PATH": "/usr/bin:/bin"}

    def load_seed() -> str:
        command = [sys.executable, "-m", "komponent_catalogue.load_seed", str(SEED_PAGE)]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=True).stdout

    outputs = [await asyncio.to_thread(load_seed) for _ in range(2)]
    for out in outputs:
        assert str(DEMO_COURSE_ID) in out and f"{service.url}/courses/{DEMO_COURSE_ID}" in out
    async with httpx.AsyncClient(base_url=service.url) as client:
        shown = (await client.get(f"/courses/{DEMO_COURSE_ID}")).json()
        listed = (await client.get("/courses")).json()
    assert shown["status"] == "published"
    assert shown["details"]["title"] == "Nye typer af udfordringer i samfundet kræver nye typer af løsninger"
    assert datetime.fromisoformat(shown["starts_at"]) > datetime.now(UTC) + timedelta(weeks=8)
    assert [c["course_id"] for c in listed] == [str(DEMO_COURSE_ID)]
    published = await read_topic(prefix + topics.COURSE, expect=1)
    assert [headers_of(r)["ce_type"] for r in published] == ["dk.komponent.course.published.v1"]
    assert await pool.fetchval("SELECT count(*) FROM course_timers WHERE fired_at IS NULL") == 3
