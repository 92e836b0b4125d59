"""Issue #8 part 2: the fault suite. Real processes on loopback, SIGKILL and restart, under sustained load.

While registrations arrive over HTTP (registration service) and as RegistrationReceived records produced
straight to the intake topic, over 20 courses with small capacities (waiting lists form), with some
cancellations, the suite kills with SIGKILL and restarts, in turn: the catalogue, registration, billing and
notifications processes (each process also runs its service's outbox relay, so each of those kills also
kills a relay mid-flight), the Kafka broker (`kafka.sh kill9`, `start`) and PostgreSQL (`postgres.sh kill9`,
`start`). Kafka and PostgreSQL are the suite's private stack (tests/faults/conftest.py), never the shared one.

Half of the courses have their invoice timer overdue at publication (InvoiceDue fires at once); the other
half have it due at staggered moments during the load, so timers fire across the faults.

Afterwards, against a reference model that replays the intake partitions (first occurrence of each
registration/cancellation in partition order, FCFS + waiting list + promotion on a freed seat):
- no course overbooked;
- every accepted registration confirmed or waitlisted exactly once (distinct outcome event ids) and as the
  model says (FCFS), none lost;
- every ever-confirmed registration has exactly one confirmation email (confirmed or promoted) at the SMTP
  server; duplicate emails (same Message-ID twice) are counted and must not exceed the number of kills that
  could explain them: kills of notifications, one of which may fall between SMTP acceptance and the ledger.
  A PostgreSQL kill explains none: the sender records the accepted verdicts a crash lost again, instead of
  sending their emails again (komponent_notifications.service_layer.verdict_connection);
- every invoice issued once (one per ever-confirmed registration of an invoiced course), gapless numbers;
- every timer fired once (one distinct event id per course and timer kind on the calendar topic).

The counts are printed as a table and saved to var/test-artifacts/fault-suite.json.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import re
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from komponent_catalogue.adapters.seed_page import load_course_page
from komponent_catalogue.domain.course import Schedule, Session
from komponent_catalogue.domain.wall_clock import COPENHAGEN
from komponent_catalogue.load_seed import create_request
from komponent_contracts import CloudEvent, topics
from komponent_contracts.envelope import parse
from komponent_contracts.events.registration import RegistrationReceived
from komponent_contracts.events.values import Participant
from komponent_contracts.examples import buyer
from komponent_notifications.service_layer.verdict_connection import RECORDED_AGAIN
from komponent_runtime.metrics import consumer_lag
from komponent_runtime.testing import (
    ADMIN_HEADERS,
    REPO_ROOT,
    ServiceProcess,
    isolated_topics,
    kafka_bootstrap,
    wait_until,
)
from support.fault_platform import FaultPlatform, start_fault_platform
from support.platform import SEED_PAGE
from support.private_stack import PrivateStack

pytestmark = [pytest.mark.infra, pytest.mark.faults]

COURSES = 20
HTTP_WORKERS = 3
HTTP_PAUSE = 0.4  # per worker between registrations: ~6/s over HTTP
KAFKA_PAUSE = 0.35  # ~3/s produced straight to the intake topic
CANCEL_PAUSE = 0.8
WARMUP = 8.0
BEFORE_KILL = 3.0
DOWN = 1.5
AFTER_RESTART = 3.0
FAULTS = ("catalogue", "registration", "billing", "notifications", "kafka", "postgres")
# The notifications sender re-sends a row whose verdict a kill lost once its lease runs out (120 s by
# default): a shorter lease lets those duplicates arrive, and be counted, within the run.
LEASE_SECONDS = 30
# Answers that ask for the same request again. Not 500: PostgreSQL or the network being away is a 503 with
# Retry-After (komponent_runtime.http), so a 500 is a bug and counted as a client error.
RETRY_STATUSES = (409, 429, 502, 503, 504)
SETTLE_SECONDS = 150
SETTLE_GROUPS = (
    "billing.course-projection",
    "billing.registrations",
    "billing.invoice-run",
    "notifications.registration-emails",
    "notifications.billing-emails",
)
ARTIFACT = REPO_ROOT / "var" / "test-artifacts" / "fault-suite.json"


# ---------------------------------------------------------------------------------------------- bookkeeping


@dataclass
class Accepted:
    registration_id: str
    course_id: str
    via: str  # http | kafka
    phase: str
    email: str
    billing_email: str


@dataclass
class Run:
    phase: str = "baseline"
    windows: list[tuple[str, float, float]] = field(default_factory=list)  # (phase, start, end) wall clock
    accepted: dict[str, Accepted] = field(default_factory=dict)
    cancels: dict[str, str] = field(default_factory=dict)  # registration id -> phase when accepted
    kills: Counter[str] = field(default_factory=Counter)
    recovery: dict[str, float] = field(default_factory=dict)  # kill -> ready again, seconds
    unaccepted: int = 0  # gave up on (never acknowledged); not counted as accepted
    stop: bool = False
    last_kill: float = 0.0  # wall clock
    errors: list[str] = field(default_factory=list)

    def enter(self, phase: str) -> None:
        now = time.time()
        if self.windows:
            last = self.windows[-1]
            self.windows[-1] = (last[0], last[1], now)
        self.windows.append((phase, now, float("inf")))
        self.phase = phase

    def phase_at(self, wall: float) -> str:
        for phase, start, end in self.windows:
            if start <= wall < end:
                return phase
        return self.windows[-1][0] if self.windows else "baseline"


def _person(n: str) -> tuple[dict[str, Any], dict[str, Any], str, str]:
    email = f"deltager-{n}@faults.kommune.dk"
    billing = f"faktura-{n}@faults.kommune.dk"
    participant = {"name": f"Deltager {n}", "email": email, "job_title": "Konsulent"}
    b = buyer().model_dump(mode="json")
    b["billing_email"] = billing
    return participant, b, email, billing


# ------------------------------------------------------------------------------------------------- courses


def _course_body(course_id: uuid.UUID, capacity: int, starts_at: datetime) -> dict[str, Any]:
    course = load_course_page(SEED_PAGE, course_id=course_id)
    start = starts_at.astimezone(COPENHAGEN).replace(microsecond=0)
    sessions = (
        Session(start, start + timedelta(minutes=30)),
        Session(start + timedelta(days=1), start + timedelta(days=1, minutes=30)),
    )
    dates = {s.starts_at.date() for s in sessions} | {s.ends_at.date() for s in sessions}
    deadline = (start - timedelta(days=3)).replace(hour=23, minute=59, second=0)
    course = replace(
        course,
        capacity=capacity,
        schedule=Schedule(sessions=sessions, registration_deadline=deadline),
        details=replace(course.details, duration_days=len(dates)),
    )
    return create_request(course)


async def _create_courses(client: httpx.AsyncClient, platform: FaultPlatform) -> dict[str, int]:
    """20 published courses; the first half has InvoiceDue overdue, the second half due during the load."""
    now = datetime.now(UTC)
    capacities: dict[str, int] = {}
    for i in range(COURSES):
        course_id = uuid.uuid4()
        capacity = 2 + i % 5
        if i < COURSES // 2:
            starts_at = now + timedelta(days=10)  # invoice lead 28 days: overdue at once
        else:
            # InvoiceDue = start - 28 days on the Copenhagen wall clock: due 25 s .. ~100 s into the load.
            starts_at = now + timedelta(days=28, seconds=25 + (i - COURSES // 2) * 9)
        base = platform.url("catalogue")
        answer = await client.put(
            f"{base}/admin/courses/{course_id}",
            json=_course_body(course_id, capacity, starts_at),
            headers=ADMIN_HEADERS,
        )
        assert answer.status_code == 201, answer.text
        answer = await client.post(f"{base}/admin/courses/{course_id}/publish", headers=ADMIN_HEADERS)
        assert answer.status_code == 200, answer.text
        capacities[str(course_id)] = capacity

    async def all_known() -> bool:
        for course_id in capacities:
            got = await client.get(
                f"{platform.url('registration')}/courses/{course_id}/registrations", headers=ADMIN_HEADERS
            )
            if got.status_code != 200:
                return False
        return True

    await wait_until(all_known, timeout=60, interval=0.3, what="registration knows all courses")
    return capacities


# ---------------------------------------------------------------------------------------------------- load


async def _http_worker(run: Run, platform: FaultPlatform, courses: list[str], seed: int) -> None:
    rng = random.Random(seed)
    async with httpx.AsyncClient(timeout=5) as client:
        while not run.stop:
            course_id = rng.choice(courses)
            n = uuid.uuid4().hex[:12]
            participant, b, email, billing = _person(n)
            phase = run.phase
            key = str(uuid.uuid4())
            body = {"participant": participant, "buyer": b, "terms_version": "2026-01"}
            give_up = time.monotonic() + 90
            while time.monotonic() < give_up:
                try:
                    answer = await client.post(
                        f"{platform.url('registration')}/courses/{course_id}/registrations",
                        json=body,
                        headers={"Idempotency-Key": key},
                    )
                except httpx.HTTPError:
                    await asyncio.sleep(0.3)
                    continue
                if answer.status_code == 202:
                    rid = answer.json()["registration_id"]
                    run.accepted[rid] = Accepted(rid, course_id, "http", phase, email, billing)
                    break
                if answer.status_code in RETRY_STATUSES:
                    await asyncio.sleep(0.3)
                    continue
                run.errors.append(f"HTTP registration answered {answer.status_code}: {answer.text[:200]}")
                break
            else:
                run.unaccepted += 1
            await asyncio.sleep(HTTP_PAUSE)


async def _kafka_worker(run: Run, topic_prefix: str, courses: list[str], seed: int) -> None:
    """RegistrationReceived produced like another Komponent system would: idempotent producer, acks=all; on
    a failure the SAME event (same ce_id, same registration id) is sent again until acknowledged."""
    rng = random.Random(seed)
    topic = topic_prefix + topics.REGISTRATION_INTAKE
    producer: AIOKafkaProducer | None = None
    from komponent_runtime.testing import kafka_bootstrap

    try:
        while not run.stop:
            course_id = rng.choice(courses)
            n = uuid.uuid4().hex[:12]
            participant, _b, email, billing = _person(n)
            phase = run.phase
            rid = uuid.uuid4()
            ce = CloudEvent(
                RegistrationReceived(
                    registration_id=rid,
                    course_id=uuid.UUID(course_id),
                    received_at=datetime.now(UTC),
                    participant=Participant(**participant),
                    buyer=buyer().model_copy(update={"billing_email": billing}),
                    terms_version="2026-01",
                ),
                source="/tests/faults",
            )
            give_up = time.monotonic() + 90
            while time.monotonic() < give_up:
                try:
                    if producer is None:
                        producer = AIOKafkaProducer(
                            bootstrap_servers=kafka_bootstrap(),
                            acks="all",
                            enable_idempotence=True,
                            request_timeout_ms=5000,
                        )
                        await asyncio.wait_for(producer.start(), 10)
                    await asyncio.wait_for(
                        producer.send_and_wait(
                            topic,
                            ce.value(),
                            key=ce.key,
                            headers=[(k, v.encode()) for k, v in ce.headers().items()],
                        ),
                        10,
                    )
                    run.accepted[str(rid)] = Accepted(str(rid), course_id, "kafka", phase, email, billing)
                    break
                except Exception:  # broker away: a new producer, the same event again
                    if producer is not None:
                        try:
                            await asyncio.wait_for(producer.stop(), 5)
                        except Exception:
                            pass
                        producer = None
                    await asyncio.sleep(0.5)
            else:
                run.unaccepted += 1
            await asyncio.sleep(KAFKA_PAUSE)
    finally:
        if producer is not None:
            await producer.stop()


async def _cancel_worker(run: Run, platform: FaultPlatform, seed: int) -> None:
    """Cancels about one registration in ten, alternating confirmed (frees a seat: promotion) and waitlisted."""
    rng = random.Random(seed)
    want_confirmed = True
    async with httpx.AsyncClient(timeout=5) as client:
        while not run.stop:
            await asyncio.sleep(CANCEL_PAUSE)
            candidates = [r for r in run.accepted if r not in run.cancels]
            if not candidates:
                continue
            for rid in rng.sample(candidates, min(8, len(candidates))):
                try:
                    status = await client.get(f"{platform.url('registration')}/registrations/{rid}")
                except httpx.HTTPError:
                    break
                if status.status_code != 200:
                    continue
                state = status.json()["status"]
                if state == ("confirmed" if want_confirmed else "waitlisted"):
                    break
            else:
                continue
            phase, key = run.phase, str(uuid.uuid4())
            give_up = time.monotonic() + 90
            while time.monotonic() < give_up and not run.stop:
                try:
                    answer = await client.post(
                        f"{platform.url('registration')}/registrations/{rid}/cancellation",
                        headers={"Idempotency-Key": key},
                    )
                except httpx.HTTPError:
                    await asyncio.sleep(0.3)
                    continue
                if answer.status_code == 202:
                    run.cancels[rid] = phase
                    want_confirmed = not want_confirmed
                    break
                if answer.status_code in RETRY_STATUSES:
                    await asyncio.sleep(0.3)
                    continue
                run.errors.append(f"cancellation answered {answer.status_code}: {answer.text[:200]}")
                break


async def _faults(run: Run, platform: FaultPlatform, stack: PrivateStack) -> None:
    await asyncio.sleep(WARMUP)
    for fault in FAULTS:
        run.enter(fault)
        await asyncio.sleep(BEFORE_KILL)
        killed_at = time.monotonic()
        run.last_kill = time.time()
        if fault in platform.services:
            platform.services[fault].kill()
            run.kills[fault] += 1
            await asyncio.sleep(DOWN)
            platform.services[fault].start()
            await platform.services[fault].wait_ready(timeout=120)
        else:
            await asyncio.to_thread(stack.kafka if fault == "kafka" else stack.postgres, "kill9")
            run.kills[fault] += 1
            await asyncio.sleep(DOWN)
            await asyncio.to_thread(stack.kafka if fault == "kafka" else stack.postgres, "start")
            await platform.wait_all_ready(timeout=120)
        run.recovery[fault] = round(time.monotonic() - killed_at, 1)
        await asyncio.sleep(AFTER_RESTART)
    run.enter("after")
    await asyncio.sleep(4)


# ---------------------------------------------------------------------------------------------- read back


async def _read_all(topic: str) -> list[Any]:
    """Every record of a topic, from the beginning to the end offsets at the time of the call."""
    from komponent_runtime.testing import kafka_bootstrap

    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka_bootstrap(),
        enable_auto_commit=False,
        group_id=None,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        if not parts:
            await consumer._client.force_metadata_update()
            parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        records: list[Any] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            positions = {tp: await consumer.position(tp) for tp in parts}
            if all(positions[tp] >= ends[tp] for tp in parts):
                break
            batch = await consumer.getmany(timeout_ms=300)
            for recs in batch.values():
                records.extend(recs)
        return records
    finally:
        await consumer.stop()


def _event(record: Any) -> CloudEvent[Any] | None:
    try:
        return parse(record.headers or (), record.value)
    except Exception:
        return None


@dataclass
class Model:
    """The reference: FCFS per course in partition order, waiting list, promotion of the head on a freed seat."""

    status: dict[str, str] = field(default_factory=dict)  # registration -> confirmed/waitlisted/cancelled
    first_outcome: dict[str, str] = field(default_factory=dict)
    ever_confirmed: set[str] = field(default_factory=set)
    promoted: set[str] = field(default_factory=set)


def _replay(intake: list[Any], capacities: dict[str, int]) -> Model:
    model = Model()
    per_partition: dict[int, list[Any]] = defaultdict(list)
    for record in intake:
        per_partition[record.partition].append(record)
    seen_ids: set[str] = set()
    seats: Counter[str] = Counter()
    waiting: dict[str, list[str]] = defaultdict(list)
    for part in per_partition.values():
        for record in sorted(part, key=lambda r: r.offset):
            ce = _event(record)
            if ce is None or str(ce.id) in seen_ids:
                continue
            seen_ids.add(str(ce.id))
            data = ce.data
            course = str(data.course_id)
            rid = str(data.registration_id)
            if course not in capacities:
                continue
            if ce.type == RegistrationReceived.ce_type:
                if rid in model.status:
                    continue  # the same registration again (re-sent under another ce_id)
                if seats[course] < capacities[course] and not waiting[course]:
                    seats[course] += 1
                    model.status[rid] = model.first_outcome[rid] = "confirmed"
                    model.ever_confirmed.add(rid)
                else:
                    waiting[course].append(rid)
                    model.status[rid] = model.first_outcome[rid] = "waitlisted"
            elif ce.type.endswith("cancellation-requested.v1"):
                state = model.status.get(rid)
                if state == "confirmed":
                    seats[course] -= 1
                    model.status[rid] = "cancelled"
                    while waiting[course] and seats[course] < capacities[course]:
                        head = waiting[course].pop(0)
                        seats[course] += 1
                        model.status[head] = "confirmed"
                        model.ever_confirmed.add(head)
                        model.promoted.add(head)
                elif state == "waitlisted":
                    waiting[course].remove(rid)
                    model.status[rid] = "cancelled"
    return model


async def _billing_view(database: str, registrations: list[str]) -> list[dict[str, Any]]:
    """Billing's projection of registrations that should have an invoice but have none."""
    import asyncpg
    from komponent_runtime.settings import DatabaseSettings

    if not registrations:
        return []
    conn = await asyncpg.connect(DatabaseSettings().dsn(database), timeout=10)
    try:
        rows = await conn.fetch(
            "SELECT r.id::text AS registration_id, br.status, br.binding, br.updated_at::text AS updated_at,"
            " bc.invoice_run_at::text AS invoice_run_at, bc.cancelled, bc.course_id IS NOT NULL AS course_known"
            " FROM unnest($1::uuid[]) AS r(id)"
            " LEFT JOIN billing_registration br ON br.registration_id = r.id"
            " LEFT JOIN billing_course bc ON bc.course_id = br.course_id",
            registrations,
        )
    finally:
        await conn.close()
    return [dict(r) for r in rows]


async def _ledger_state(database: str) -> dict[str, Any]:
    """Notifications' send ledger, read directly, to tell a slow sender from a stopped one."""
    import asyncpg
    from komponent_runtime.settings import DatabaseSettings

    conn = await asyncpg.connect(DatabaseSettings().dsn(database), timeout=10)
    try:
        row = await conn.fetchrow(
            "SELECT count(*) FILTER (WHERE status = 'sent') AS sent,"
            " count(*) FILTER (WHERE status = 'failed') AS failed,"
            " count(*) FILTER (WHERE status = 'pending') AS pending,"
            " count(*) FILTER (WHERE status = 'pending' AND next_attempt_at <= now()"
            "   AND (claimed_until IS NULL OR claimed_until <= now())) AS pending_due_unclaimed,"
            " count(*) FILTER (WHERE attempts > outcomes) AS attempts_over_outcomes,"
            " max(sent_at) AS last_sent_at"
            " FROM send_ledger"
        )
        kinds = await conn.fetch(
            "SELECT kind, status, count(*) AS n, max(last_reply) AS reply FROM send_ledger"
            " WHERE status <> 'sent' GROUP BY kind, status ORDER BY kind, status"
        )
    finally:
        await conn.close()
    assert row is not None
    return {
        **{k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in dict(row).items()},
        "not_sent_by_kind": [dict(k) for k in kinds],
    }


def _emails(platform: FaultPlatform) -> list[tuple[EmailMessage, float]]:
    import email as email_lib
    import email.policy

    out = []
    for path in sorted(platform.smtp.maildir.glob("*.eml")):
        try:
            message = email_lib.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        except OSError:
            continue
        out.append((message, path.stat().st_mtime))
    return out


def _verdicts_recorded_again(notifications: ServiceProcess) -> int:
    """Accepted emails whose verdicts PostgreSQL lost (or never got) and the sender wrote again on a new
    connection, over all of notifications' lives: each one an email that used to be sent twice."""
    written = 0
    for line in notifications.log_path.read_text(errors="replace").splitlines():
        if RECORDED_AGAIN in line:
            with contextlib.suppress(ValueError, KeyError):
                written += int(json.loads(line)["written"])
    return written


# --------------------------------------------------------------------------------------------------- test


@pytest.fixture
async def platform(fault_stack: PrivateStack, tmp_path: Path) -> AsyncIterator[FaultPlatform]:
    prefix = await isolated_topics()
    started = await start_fault_platform(
        tmp_path, prefix, {"NOTIFY_LEASE_SECONDS": str(LEASE_SECONDS), "SMTP_TIMEOUT_SECONDS": "10"}
    )
    yield started
    started.stop()


async def test_no_loss_no_duplicate_no_overbooking_across_kills(
    platform: FaultPlatform, fault_stack: PrivateStack
) -> None:
    started = time.monotonic()
    async with httpx.AsyncClient(timeout=10) as client:
        capacities = await _create_courses(client, platform)
    courses = sorted(capacities)
    run = Run()
    run.enter("baseline")
    load = [
        *(asyncio.create_task(_http_worker(run, platform, courses, seed)) for seed in range(HTTP_WORKERS)),
        asyncio.create_task(_kafka_worker(run, platform.topic_prefix, courses, 99)),
        asyncio.create_task(_cancel_worker(run, platform, 7)),
    ]
    try:
        await _faults(run, platform, fault_stack)
    finally:
        run.stop = True
        await asyncio.gather(*load, return_exceptions=True)
    run.windows[-1] = (run.windows[-1][0], run.windows[-1][1], float("inf"))
    load_seconds = time.monotonic() - started

    # ------------------------------------------------------------------ settle: every effect arrived
    reg_url = platform.url("registration")
    admin: dict[str, dict[str, Any]] = {}

    async with httpx.AsyncClient(timeout=10) as client:

        async def allocated() -> bool:
            admin.clear()
            for course_id in courses:
                got = await client.get(f"{reg_url}/courses/{course_id}/registrations", headers=ADMIN_HEADERS)
                if got.status_code != 200:
                    return False
                admin[course_id] = got.json()
            rows = {r["registration_id"]: r for c in admin.values() for r in c["registrations"]}
            return all(rid in rows for rid in run.accepted) and all(
                rows.get(rid, {}).get("status") == "cancelled" for rid in run.cancels
            )

        try:
            await wait_until(allocated, timeout=90, interval=1, what="every accepted request applied")
        except AssertionError:
            pass  # reported below as lost registrations / cancellations

        intake = await _read_all(platform.topic_prefix + topics.REGISTRATION_INTAKE)
        model = _replay(intake, capacities)
        invoiced_courses_expected = set(courses)

        async def documents() -> list[dict[str, Any]]:
            docs: list[dict[str, Any]] = []
            for course_id in courses:
                got = await client.get(
                    f"{platform.url('billing')}/courses/{course_id}/documents", headers=ADMIN_HEADERS
                )
                assert got.status_code == 200, got.text
                docs.extend({**d, "course_id": course_id} for d in got.json())
            return docs

        expected_invoices = len(model.ever_confirmed)
        expected_emails = (
            len(model.first_outcome)
            + len(model.promoted)
            + sum(1 for s in model.status.values() if s == "cancelled")
        )
        last: list[int] = [-1, -1]

        async def settled() -> bool:
            docs = await documents()
            emails = len(list(platform.smtp.maildir.glob("*.eml")))
            invoices = sum(1 for d in docs if d["kind"] == "invoice")
            stable = last == [len(docs), emails]
            last[:] = [len(docs), emails]
            # Duplicates of a killed send appear only when its lease runs out: count after that.
            lease_over = time.time() > run.last_kill + LEASE_SECONDS + 5
            if not (stable and lease_over and invoices >= expected_invoices and emails >= expected_emails):
                return False
            # Every consumer of billing and notifications has caught up (no backlog left to apply).
            lag = await consumer_lag(kafka_bootstrap(), [platform.topic_prefix + g for g in SETTLE_GROUPS])
            return sum(lag.values()) == 0

        try:
            await wait_until(settled, timeout=SETTLE_SECONDS, interval=2, what="invoices and emails settled")
        except AssertionError:
            pass  # the counts below say what is missing
        docs = await documents()

    ledger = await _ledger_state(platform.services["notifications"].database)
    registration_records = await _read_all(platform.topic_prefix + topics.REGISTRATION)
    calendar_records = await _read_all(platform.topic_prefix + topics.COURSE_CALENDAR)
    emails = _emails(platform)

    # ------------------------------------------------------------------------------------- evaluate
    rows = {r["registration_id"]: r for c in admin.values() for r in c["registrations"]}
    rows_course = {r["registration_id"]: cid for cid, c in admin.items() for r in c["registrations"]}

    outcome_ids: dict[str, set[str]] = defaultdict(set)  # registration -> distinct Confirmed/Waitlisted ids
    first_event: dict[str, str] = {}
    for record in sorted(registration_records, key=lambda r: (r.partition, r.offset)):
        ce = _event(record)
        if ce is None:
            continue
        kind = ce.type.rsplit(".", 2)[-2]
        if kind in ("confirmed", "waitlisted"):
            rid = str(ce.data.registration_id)
            outcome_ids[rid].add(str(ce.id))
            first_event.setdefault(rid, kind)

    overbooked = {
        cid
        for cid, c in admin.items()
        if c["seats_taken"] > c["capacity"]
        or sum(1 for r in c["registrations"] if r["status"] == "confirmed") > c["capacity"]
    }

    per_registration_phase = {rid: a.phase for rid, a in run.accepted.items()}
    lost = {rid for rid in run.accepted if rid not in rows or rid not in model.first_outcome}
    lost_cancels = {rid for rid in run.cancels if rows.get(rid, {}).get("status") != "cancelled"}
    fcfs = {
        rid
        for rid in run.accepted
        if rid in rows
        and rid in model.status
        and (rows[rid]["status"] != model.status[rid] or first_event.get(rid) != model.first_outcome[rid])
    }
    duplicate_confirmations = {rid for rid, ids in outcome_ids.items() if len(ids) > 1}

    # Emails: per participant address the kinds received; duplicates = the same Message-ID more than once.
    by_message_id: dict[str, list[float]] = defaultdict(list)
    participant_kinds: dict[str, Counter[str]] = defaultdict(Counter)
    billing_kinds: dict[str, Counter[str]] = defaultdict(Counter)
    for message, mtime in emails:
        by_message_id[str(message["Message-ID"])].append(mtime)
        to = str(message["To"]).lower()
        kind = str(message["X-Komponent-Email-Kind"])
        address = re.search(r"[\w.+-]+@faults\.kommune\.dk", to)
        if address is None:
            continue
        if address.group(0).startswith("deltager-"):
            participant_kinds[address.group(0)][kind] += 1
        else:
            billing_kinds[address.group(0)][kind] += 1
    # Each extra copy is charged to the window of the FIRST copy: the kill that lost its verdict.
    duplicate_email_times = [min(times) for times in by_message_id.values() for _ in times[1:]]
    confirmation_kinds = ("registration_confirmed", "promoted_from_waiting_list")
    missing_confirmation_email = set()
    extra_confirmation_email = set()
    for rid in model.ever_confirmed:
        if rid not in run.accepted:
            continue
        got = sum(participant_kinds[run.accepted[rid].email][k] for k in confirmation_kinds)
        if got == 0:
            missing_confirmation_email.add(rid)
    distinct_confirmation_mail = {
        addr: len(
            {
                str(m["Message-ID"])
                for m, _ in emails
                if addr in str(m["To"]).lower() and str(m["X-Komponent-Email-Kind"]) in confirmation_kinds
            }
        )
        for addr in {run.accepted[rid].email for rid in model.ever_confirmed if rid in run.accepted}
    }
    extra_confirmation_email = {a for a, n in distinct_confirmation_mail.items() if n > 1}

    # Invoices: one original invoice per ever-confirmed registration; gapless numbers per series.
    invoices = [d for d in docs if d["kind"] == "invoice"]
    credit_notes = [d for d in docs if d["kind"] != "invoice"]
    invoices_per_registration = Counter(
        d["registration_id"] for d in invoices if d.get("replaces_number") is None
    )
    duplicate_invoices = {rid for rid, n in invoices_per_registration.items() if n > 1}
    missing_invoices = {
        rid
        for rid in model.ever_confirmed
        if rid in run.accepted
        and invoices_per_registration.get(rid, 0) == 0
        and model.status.get(rid) == "confirmed"
    }
    invoice_diagnosis = await _billing_view(
        platform.services["billing"].database, sorted(missing_invoices)[:20]
    )
    invoices_for_never_confirmed = {
        str(d["registration_id"]) for d in invoices if str(d["registration_id"]) not in model.ever_confirmed
    }

    def gaps(numbers: list[str]) -> int:
        seq = sorted(int(n.rsplit("-", 1)[-1]) for n in numbers)
        if not seq:
            return 0
        return (seq[-1] - seq[0] + 1 - len(set(seq))) + (seq[0] - 1) + (len(seq) - len(set(seq)))

    invoice_gaps = gaps([d["number"] for d in invoices])
    credit_gaps = gaps([d["number"] for d in credit_notes])

    timer_ids: dict[tuple[str, str], set[str]] = defaultdict(set)
    timer_records: Counter[tuple[str, str]] = Counter()
    for record in calendar_records:
        ce = _event(record)
        if ce is None:
            continue
        key = (str(ce.data.course_id), ce.type)
        timer_ids[key].add(str(ce.id))
        timer_records[key] += 1
    timers_twice = {k for k, ids in timer_ids.items() if len(ids) > 1}
    invoice_due_type = next((t for _, t in timer_ids if "invoice-due" in t or "invoice_due" in t), None)
    invoice_timers_fired = {c for c, t in timer_ids if t == invoice_due_type}

    # ------------------------------------------------------------------------------------- the table
    phases = ["baseline", *FAULTS, "after"]
    explaining_kills = run.kills["notifications"]
    table: list[dict[str, Any]] = []
    for phase in phases:
        mine = {rid for rid, p in per_registration_phase.items() if p == phase}
        table.append(
            {
                "fault": phase,
                "kills": run.kills.get(phase, 0),
                "down_s": run.recovery.get(phase, ""),
                "accepted": len(mine),
                "confirmed": sum(1 for r in mine if model.first_outcome.get(r) == "confirmed"),
                "waitlisted": sum(1 for r in mine if model.first_outcome.get(r) == "waitlisted"),
                "promoted": len(mine & model.promoted),
                "cancels": sum(1 for p in run.cancels.values() if p == phase),
                "fcfs_violations": len(mine & fcfs),
                "lost": len(mine & lost),
                "lost_cancels": sum(1 for r, p in run.cancels.items() if p == phase and r in lost_cancels),
                "dup_confirmations": len(mine & duplicate_confirmations),
                "dup_emails": sum(1 for t in duplicate_email_times if run.phase_at(t) == phase),
                "missing_conf_emails": len(mine & missing_confirmation_email),
                "invoices": sum(
                    1 for d in invoices if per_registration_phase.get(str(d["registration_id"])) == phase
                ),
                "dup_invoices": len(mine & duplicate_invoices),
                "missing_invoices": len(mine & missing_invoices),
            }
        )
    totals = {
        "fault": "TOTAL",
        **{k: sum(row[k] for row in table) for k in table[0] if k not in ("fault", "down_s")},
        "down_s": "",
    }
    table.append(totals)
    summary = {
        "overbooked_courses": len(overbooked),
        "invoice_number_gaps": invoice_gaps,
        "credit_note_number_gaps": credit_gaps,
        "invoices": len(invoices),
        "credit_notes": len(credit_notes),
        "invoices_for_never_confirmed": len(invoices_for_never_confirmed),
        "timers_fired_twice": len(timers_twice),
        "invoice_due_timers_fired": len(invoice_timers_fired),
        "timer_records_redelivered_same_id": sum(timer_records.values())
        - sum(len(v) for v in timer_ids.values()),
        "duplicate_emails": len(duplicate_email_times),
        "lost_email_verdicts_recorded_again": _verdicts_recorded_again(platform.services["notifications"]),
        "kills_that_could_explain_duplicate_emails": explaining_kills,
        "registrations_with_two_distinct_confirmation_emails": len(extra_confirmation_email),
        "emails": len(emails),
        "invoice_and_credit_note_emails": sum(
            n for kinds in billing_kinds.values() for k, n in kinds.items() if k in ("invoice", "credit_note")
        ),
        "invoice_and_credit_note_documents": len(docs),
        "notifications_ledger": ledger,
        "billing_view_of_uninvoiced_confirmed": invoice_diagnosis,
        "unaccepted_requests_given_up": run.unaccepted,
        "load_and_faults_seconds": round(load_seconds, 1),
        "client_errors": run.errors[:10],
    }
    _print_and_save(table, summary)

    # ------------------------------------------------------------------------------------- invariants
    assert not run.errors, run.errors[:5]
    assert not overbooked, f"overbooked courses: {sorted(overbooked)}"
    assert not lost, f"lost registrations: {sorted(lost)[:10]}"
    assert not lost_cancels, f"lost cancellations: {sorted(lost_cancels)[:10]}"
    assert not fcfs, (
        f"FCFS violations: {[(r, rows[r]['status'], model.status[r]) for r in sorted(fcfs)[:10]]}"
    )
    assert not duplicate_confirmations, f"duplicate outcomes: {sorted(duplicate_confirmations)[:10]}"
    assert not missing_confirmation_email, (
        f"missing confirmation emails: {sorted(missing_confirmation_email)[:10]}"
    )
    assert len(duplicate_email_times) <= explaining_kills, (
        f"{len(duplicate_email_times)} duplicate emails, only {explaining_kills} kills could explain them"
    )
    assert not duplicate_invoices, f"registrations invoiced twice: {sorted(duplicate_invoices)[:10]}"
    assert not missing_invoices, (
        f"confirmed registrations without an invoice: {sorted(missing_invoices)[:10]}"
    )
    assert not invoices_for_never_confirmed, sorted(invoices_for_never_confirmed)[:10]
    assert invoice_gaps == 0 and credit_gaps == 0, (invoice_gaps, credit_gaps)
    assert not timers_twice, sorted(timers_twice)
    assert invoice_timers_fired == invoiced_courses_expected, (
        f"InvoiceDue fired for {len(invoice_timers_fired)} of {len(invoiced_courses_expected)} courses"
    )
    assert rows_course  # the admin API answered


def _print_and_save(table: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    columns = list(table[0])
    widths = {c: max(len(c), *(len(str(row[c])) for row in table)) for c in columns}
    lines = [
        " | ".join(c.ljust(widths[c]) for c in columns),
        "-+-".join("-" * widths[c] for c in columns),
        *(" | ".join(str(row[c]).ljust(widths[c]) for c in columns) for row in table),
    ]
    print("\nFault suite (issue #8): per fault window")
    print("\n".join(lines))
    print("summary:", json.dumps(summary, indent=2, default=str))
    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    ARTIFACT.write_text(
        json.dumps(
            {"per_fault": table, "summary": summary, "at": datetime.now(UTC).isoformat()},
            indent=2,
            default=str,
        ),
        encoding="utf-8",
    )
