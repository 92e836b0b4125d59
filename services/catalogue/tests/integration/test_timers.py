"""Durable timers on a real PostgreSQL, driven by a clock the tests move (nothing sleeps).

Each test is named after the invariant it protects. `fire_due_timers(now)` is exactly what the
service's background loop calls with its clock's `now`.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from komponent_catalogue.domain.timers import TimerKind, timer_event_id
from komponent_catalogue.service_layer.timers import fire_due_timers
from komponent_contracts.events import CourseReminderDue, DeadlinePassed, InvoiceDue
from komponent_runtime import outbox
from komponent_runtime.settings import DatabaseSettings
from komponent_runtime.testing import ADMIN_HEADERS, metric_points, metric_reader, wait_until

pytestmark = pytest.mark.infra
CPH = ZoneInfo("Europe/Copenhagen")
SECOND = timedelta(seconds=1)
START = datetime(2026, 5, 6, 9, tzinfo=CPH)  # Wednesday 09:00 CEST = 07:00 UTC
# Deadline 23:59 CEST four weeks before; invoice run 28 days before at 09:00; reminder 7 days before.
DUE = {
    "deadline_passed": datetime(2026, 4, 8, 21, 59, tzinfo=UTC),
    "invoice_due": datetime(2026, 4, 8, 7, 0, tzinfo=UTC),
    "course_reminder_due": datetime(2026, 4, 29, 7, 0, tzinfo=UTC),
}


def calendar(events: list[Any]) -> list[Any]:
    return [e for e in events if e.topic == "komponent.course-calendar.v1"]


async def test_publishing_schedules_three_timers_and_each_fires_once_at_its_due_time(catalogue: Any) -> None:
    course_id = await catalogue.create(catalogue.body(START))
    assert {r["kind"]: r["due_at"] for r in await catalogue.timers(course_id)} == DUE

    for kind, due_at in sorted(DUE.items(), key=lambda item: item[1]):
        assert await catalogue.fire(due_at - SECOND) == [], f"{kind} must not fire early"
        fired = await catalogue.fire(due_at)
        assert [(f.timer.kind.value, f.lateness) for f in fired] == [(kind, timedelta(0))]
        assert await catalogue.fire(due_at) == [], f"{kind} must not fire twice"
    assert await catalogue.fire(DUE["course_reminder_due"] + timedelta(days=60)) == []

    events = calendar(await catalogue.events())
    assert [type(e.data) for e in events] == [InvoiceDue, DeadlinePassed, CourseReminderDue]
    for event in events:
        kinds: dict[type, str] = {
            InvoiceDue: "invoice_due",
            DeadlinePassed: "deadline_passed",
            CourseReminderDue: "course_reminder_due",
        }
        kind = TimerKind(kinds[type(event.data)])
        assert event.id == timer_event_id(course_id, kind, DUE[kind.value])  # the deterministic ce_id
        assert event.data.due_at == DUE[kind.value] and event.data.lateness_seconds == 0
        assert event.time == event.data.fired_at and event.source == "/komponent/catalogue"
        assert event.subject == str(course_id)
        if not isinstance(event.data, DeadlinePassed):
            assert event.data.course_starts_at == START
    assert all(r["status"] == "fired" for r in await catalogue.timers(course_id))


async def test_after_downtime_overdue_timers_fire_once_late_and_say_how_late(catalogue: Any) -> None:
    course_id = await catalogue.create(catalogue.body(START))
    back_up = DUE["course_reminder_due"] + timedelta(hours=3, seconds=30)  # down across all three
    fired = await catalogue.fire(back_up)
    assert sorted((f.timer.kind.value, f.lateness) for f in fired) == sorted(
        (kind, back_up - due_at) for kind, due_at in DUE.items()
    )
    assert await catalogue.fire(back_up + timedelta(days=2)) == []
    events = calendar(await catalogue.events())
    assert len(events) == 3
    assert {e.data.lateness_seconds for e in events} == {(back_up - d).total_seconds() for d in DUE.values()}
    stored = {r["kind"]: r["lateness_seconds"] for r in await catalogue.timers(course_id)}
    assert stored == {kind: (back_up - d).total_seconds() for kind, d in DUE.items()}


async def test_fired_timers_record_their_lateness_by_kind(catalogue: Any) -> None:
    metric_reader()  # installs the in-memory reader before the first timer fires in this process

    def recorded() -> dict[str, tuple[int, float]]:
        points = metric_points("komponent_timer_lateness_seconds")
        return {attrs["kind"]: (point.count, point.sum) for attrs, point in points}

    before = recorded()
    await catalogue.create(catalogue.body(START))
    back_up = DUE["course_reminder_due"] + timedelta(hours=1)
    assert len(await catalogue.fire(back_up)) == 3
    after = recorded()
    for kind, due_at in DUE.items():
        count, total = before.get(kind, (0, 0.0))
        assert after[kind] == (count + 1, total + (back_up - due_at).total_seconds())


async def test_rescheduling_moves_pending_timers_and_never_refires_a_fired_one(catalogue: Any) -> None:
    course_id = await catalogue.create(catalogue.body(START))
    await catalogue.fire(DUE["deadline_passed"])  # deadline and invoice run fired
    url = f"/admin/courses/{course_id}/reschedule"
    week_later = catalogue.body(START + timedelta(days=7))["schedule"]
    assert (
        await catalogue.client.post(url, json={"schedule": week_later}, headers=ADMIN_HEADERS)
    ).status_code == 200

    rows = await catalogue.timers(course_id)
    fired = {(r["kind"], r["due_at"]) for r in rows if r["status"] == "fired"}
    pending = {(r["kind"], r["due_at"]) for r in rows if r["status"] == "pending"}
    assert fired == {("deadline_passed", DUE["deadline_passed"]), ("invoice_due", DUE["invoice_due"])}
    assert pending == {
        ("deadline_passed", DUE["deadline_passed"] + timedelta(days=7)),
        ("invoice_due", DUE["invoice_due"] + timedelta(days=7)),
        ("course_reminder_due", DUE["course_reminder_due"] + timedelta(days=7)),  # moved, not duplicated
    }
    # Moving back to the original dates: the fired timers are not fired again for the same due time.
    original = catalogue.body(START)["schedule"]
    assert (
        await catalogue.client.post(url, json={"schedule": original}, headers=ADMIN_HEADERS)
    ).status_code == 200
    assert {(r["kind"], r["status"]) for r in await catalogue.timers(course_id)} == {
        ("deadline_passed", "fired"),
        ("invoice_due", "fired"),
        ("course_reminder_due", "pending"),
    }
    fired_later = await catalogue.fire(DUE["course_reminder_due"] + timedelta(days=30))
    assert [f.timer.kind.value for f in fired_later] == ["course_reminder_due"]
    assert len(calendar(await catalogue.events())) == 3


async def test_cancelling_removes_pending_timers_and_keeps_the_fired_record(catalogue: Any) -> None:
    course_id = await catalogue.create(catalogue.body(START))
    await catalogue.fire(DUE["invoice_due"])
    cancel = await catalogue.client.post(f"/admin/courses/{course_id}/cancel", json={}, headers=ADMIN_HEADERS)
    assert cancel.status_code == 200
    assert [(r["kind"], r["status"]) for r in await catalogue.timers(course_id)] == [("invoice_due", "fired")]
    assert await catalogue.fire(DUE["course_reminder_due"] + timedelta(days=30)) == []


async def test_changing_lead_days_moves_only_the_affected_timer(catalogue: Any) -> None:
    course_id = await catalogue.create(catalogue.body(START))
    patch = await catalogue.client.patch(
        f"/admin/courses/{course_id}",
        json={"invoice_lead_days": 21, "reminder_lead_days": 7},
        headers=ADMIN_HEADERS,
    )
    assert patch.status_code == 200
    due = {r["kind"]: r["due_at"] for r in await catalogue.timers(course_id)}
    assert due == {**DUE, "invoice_due": datetime(2026, 4, 15, 7, tzinfo=UTC)}


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        # Autumn: start Wednesday 4 Nov 2026 09:00 CET (08:00 UTC), after summer time ended on 25 Oct.
        (
            datetime(2026, 11, 4, 9, tzinfo=CPH),
            {
                "deadline_passed": datetime(2026, 10, 7, 21, 59, tzinfo=UTC),  # 23:59 CEST
                "invoice_due": datetime(2026, 10, 7, 7, 0, tzinfo=UTC),  # 09:00 CEST, not 08:00
                "course_reminder_due": datetime(2026, 10, 28, 8, 0, tzinfo=UTC),  # 09:00 CET
            },
        ),
        # Spring: start Wednesday 22 Apr 2026 09:00 CEST (07:00 UTC), summer time began on 29 Mar.
        (
            datetime(2026, 4, 22, 9, tzinfo=CPH),
            {
                "deadline_passed": datetime(2026, 3, 25, 22, 59, tzinfo=UTC),  # 23:59 CET
                "invoice_due": datetime(2026, 3, 25, 8, 0, tzinfo=UTC),  # 09:00 CET, not 07:00
                "course_reminder_due": datetime(2026, 4, 15, 7, 0, tzinfo=UTC),
            },
        ),
    ],
    ids=["autumn", "spring"],
)
async def test_timers_keep_the_copenhagen_wall_clock_across_dst(
    catalogue: Any, start: datetime, expected: dict[str, datetime]
) -> None:
    course_id = await catalogue.create(catalogue.body(start))
    assert {r["kind"]: r["due_at"] for r in await catalogue.timers(course_id)} == expected
    for kind, due_at in sorted(expected.items(), key=lambda item: item[1]):
        assert [f.timer.kind.value for f in await catalogue.fire(due_at - SECOND)] == []
        assert [f.timer.kind.value for f in await catalogue.fire(due_at)] == [kind]


async def test_deadline_on_the_changeover_nights_fires_at_the_right_instant(catalogue: Any) -> None:
    # 23:59 on the last Sunday of October is 22:59 UTC (CET); on the last Sunday of March 21:59 UTC (CEST).
    for deadline, due_utc in [
        (datetime(2026, 10, 25, 23, 59, tzinfo=CPH), datetime(2026, 10, 25, 22, 59, tzinfo=UTC)),
        (datetime(2026, 3, 29, 23, 59, tzinfo=CPH), datetime(2026, 3, 29, 21, 59, tzinfo=UTC)),
    ]:
        start = datetime.combine(
            deadline.date() + timedelta(days=31), datetime.min.time(), tzinfo=CPH
        ).replace(hour=9)
        course_id = await catalogue.create(catalogue.body(start, deadline=deadline))
        deadline_rows = [r for r in await catalogue.timers(course_id) if r["kind"] == "deadline_passed"]
        assert [r["due_at"] for r in deadline_rows] == [due_utc]
        fired = await catalogue.fire(due_utc - SECOND)
        assert course_id not in {
            f.timer.course_id for f in fired if f.timer.kind is TimerKind.DEADLINE_PASSED
        }
        fired = await catalogue.fire(due_utc)
        assert (course_id, TimerKind.DEADLINE_PASSED) in {(f.timer.course_id, f.timer.kind) for f in fired}


async def test_two_concurrent_schedulers_fire_each_timer_exactly_once(catalogue: Any, database: str) -> None:
    ids = [await catalogue.create(catalogue.body(START + timedelta(days=i % 5))) for i in range(40)]
    now = DUE["course_reminder_due"] + timedelta(days=10)
    pools = [
        await asyncpg.create_pool(DatabaseSettings().dsn(database), min_size=1, max_size=2) for _ in range(2)
    ]
    try:
        go = asyncio.Event()

        async def scheduler(pool: asyncpg.Pool) -> list[Any]:
            fired: list[Any] = []
            await go.wait()
            while batch := await fire_due_timers(pool, now, limit=3):  # small batches: maximal interleaving
                fired += batch
            return fired

        tasks = [asyncio.create_task(scheduler(p)) for p in pools]
        go.set()
        first, second = await asyncio.gather(*tasks)
    finally:
        for p in pools:
            await p.close()

    all_fired = [(f.timer.course_id, f.timer.kind) for f in first + second]
    assert len(all_fired) == len(set(all_fired)) == 3 * len(ids)
    events = calendar(await catalogue.events())
    assert len(events) == len({e.id for e in events}) == 3 * len(ids)
    assert {(UUID(e.subject), type(e.data)) for e in events} == {
        (c, t) for c in ids for t in (DeadlinePassed, InvoiceDue, CourseReminderDue)
    }


async def test_a_crash_before_commit_leaves_the_timer_pending_and_it_fires_once_later(catalogue: Any) -> None:
    course_id = await catalogue.create(catalogue.body(START))
    from komponent_catalogue.adapters import repository
    from komponent_catalogue.service_layer.timers import timer_event

    # The emit (outbox insert) and the mark are one transaction: dying between them loses both.
    with pytest.raises(RuntimeError):
        async with catalogue.pool.acquire() as conn, conn.transaction():
            due = await repository.claim_due_timers(conn, DUE["invoice_due"], 10)
            await outbox.enqueue(conn, [timer_event(d, DUE["invoice_due"]) for d in due])
            raise RuntimeError("process died before marking the timer fired")
    assert calendar(await catalogue.events()) == []
    assert {r["status"] for r in await catalogue.timers(course_id)} == {"pending"}
    assert [f.timer.kind for f in await catalogue.fire(DUE["invoice_due"])] == [TimerKind.INVOICE_DUE]
    assert [f.timer.kind for f in await catalogue.fire(DUE["invoice_due"])] == []
    assert len(calendar(await catalogue.events())) == 1


async def test_a_reschedule_waits_for_a_scheduler_holding_the_timer_and_sees_it_fired(
    catalogue: Any, database: str
) -> None:
    course_id = await catalogue.create(catalogue.body(START))
    from komponent_catalogue.adapters import repository

    scheduler = await asyncpg.connect(DatabaseSettings().dsn(database))
    try:
        tx = scheduler.transaction()
        await tx.start()
        due = await repository.claim_due_timers(scheduler, DUE["invoice_due"], 10)
        assert [d.timer.kind for d in due] == [TimerKind.INVOICE_DUE]
        week_later = catalogue.body(START + timedelta(days=7))["schedule"]
        moving = asyncio.create_task(
            catalogue.client.post(
                f"/admin/courses/{course_id}/reschedule", json={"schedule": week_later}, headers=ADMIN_HEADERS
            )
        )

        async def reschedule_blocked() -> bool:
            waiting = await catalogue.pool.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock'"
            )
            return bool(waiting)

        await wait_until(reschedule_blocked, what="the reschedule waiting for the scheduler's row lock")
        assert not moving.done()
        await repository.mark_fired(scheduler, [d.timer_id for d in due], DUE["invoice_due"])
        await tx.commit()
        assert (await moving).status_code == 200
    finally:
        await scheduler.close()
    rows = [
        (r["kind"], r["due_at"], r["status"])
        for r in await catalogue.timers(course_id)
        if r["kind"] == "invoice_due"
    ]
    assert rows == [
        ("invoice_due", DUE["invoice_due"], "fired"),
        ("invoice_due", DUE["invoice_due"] + timedelta(days=7), "pending"),
    ]
