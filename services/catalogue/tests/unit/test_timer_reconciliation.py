"""Reconciling stored timers with the course after publish, reschedule, lead change and cancel."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from komponent_catalogue.domain.course import Course, Schedule, Session
from komponent_catalogue.domain.operations import cancel, reschedule, update_course
from komponent_catalogue.domain.timers import (
    Timer,
    TimerKind,
    TimerMove,
    TimerPlan,
    TimerRecord,
    derive_timers,
    reconcile_timers,
)

CPH = ZoneInfo("Europe/Copenhagen")
MakeCourse = Callable[..., Course]
K = TimerKind


def stored_pending(course: Course) -> list[TimerRecord]:
    return [TimerRecord(t) for t in derive_timers(course)]


def fire(records: list[TimerRecord], kind: TimerKind, late: timedelta = timedelta(0)) -> list[TimerRecord]:
    return [
        TimerRecord(r.timer, fired_at=r.timer.due_at + late) if r.timer.kind == kind and r.pending else r
        for r in records
    ]


def apply(plan: TimerPlan, records: Iterable[TimerRecord]) -> list[TimerRecord]:
    """What the repository does with a plan (see the SQL comments in 0001)."""
    removed = {t.event_id for t in plan.remove} | {m.old.event_id for m in plan.move}
    kept = [r for r in records if r.timer.event_id not in removed]
    return kept + [TimerRecord(m.new) for m in plan.move] + [TimerRecord(t) for t in plan.add]


def shifted(course: Course, days: int) -> Schedule:
    delta = timedelta(days=days)
    return Schedule(
        sessions=tuple(Session(s.starts_at + delta, s.ends_at + delta) for s in course.schedule.sessions),
        registration_deadline=course.schedule.registration_deadline + delta,
    )


def kinds(timers: Iterable[Timer]) -> set[TimerKind]:
    return {t.kind for t in timers}


def test_publishing_adds_every_timer(make_course: MakeCourse) -> None:
    course = make_course()
    plan = reconcile_timers([], derive_timers(course))
    assert plan.add == derive_timers(course)
    assert (plan.move, plan.remove, plan.keep) == ((), (), ())


def test_nothing_changed_means_an_empty_plan(make_course: MakeCourse) -> None:
    course = make_course()
    plan = reconcile_timers(stored_pending(course), derive_timers(course))
    assert plan.is_empty
    assert plan.keep == derive_timers(course)


def test_reschedule_moves_every_pending_timer(make_course: MakeCourse) -> None:
    course = make_course()
    moved = reschedule(course, shifted(course, 7))
    plan = reconcile_timers(stored_pending(course), derive_timers(moved))
    assert plan.add == plan.remove == ()
    assert plan.move == tuple(
        TimerMove(old, new) for old, new in zip(derive_timers(course), derive_timers(moved), strict=True)
    )
    assert all(m.new.due_at - m.old.due_at == timedelta(days=7) for m in plan.move)


def test_changing_reminder_lead_moves_only_the_reminder(make_course: MakeCourse) -> None:
    course = make_course()
    updated = update_course(course, reminder_lead_days=2)
    plan = reconcile_timers(stored_pending(course), derive_timers(updated))
    assert [m.new.kind for m in plan.move] == [K.COURSE_REMINDER_DUE]
    assert kinds(plan.keep) == {K.DEADLINE_PASSED, K.INVOICE_DUE}


def test_a_fired_timer_is_never_fired_again_for_the_same_due_time(make_course: MakeCourse) -> None:
    # The deadline has passed; the course is then moved by a few hours on the same days,
    # keeping its deadline. The fired DeadlinePassed must stay fired, not be re-added.
    course = make_course()
    records = fire(stored_pending(course), K.DEADLINE_PASSED)
    later_same_day = Schedule(
        sessions=(Session(course.schedule.starts_at + timedelta(hours=1), course.schedule.ends_at),),
        registration_deadline=course.schedule.registration_deadline,
    )
    plan = reconcile_timers(records, derive_timers(reschedule(course, later_same_day)))
    assert K.DEADLINE_PASSED in kinds(plan.keep)
    assert K.DEADLINE_PASSED not in kinds(plan.add) | {m.new.kind for m in plan.move}
    assert kinds(m.new for m in plan.move) == {K.INVOICE_DUE, K.COURSE_REMINDER_DUE}


def test_fired_timers_are_history_and_a_new_due_time_is_a_new_timer(make_course: MakeCourse) -> None:
    # Deadline fired, then the course moves a week: a DeadlinePassed for the new deadline is added
    # (with a new event id) and the fired one is neither moved nor removed.
    course = make_course()
    records = fire(stored_pending(course), K.DEADLINE_PASSED)
    fired_deadline = next(r.timer for r in records if not r.pending)
    plan = reconcile_timers(records, derive_timers(reschedule(course, shifted(course, 7))))
    assert [t.kind for t in plan.add] == [K.DEADLINE_PASSED]
    assert plan.add[0].event_id != fired_deadline.event_id
    assert fired_deadline not in plan.remove
    assert fired_deadline not in [m.old for m in plan.move]


def test_cancel_removes_pending_timers_and_leaves_fired_ones(make_course: MakeCourse) -> None:
    course = make_course()
    records = fire(stored_pending(course), K.DEADLINE_PASSED)
    plan = reconcile_timers(records, derive_timers(cancel(course)))
    assert kinds(plan.remove) == {K.INVOICE_DUE, K.COURSE_REMINDER_DUE}
    assert (plan.add, plan.move, plan.keep) == ((), (), ())


def test_applying_a_plan_then_reconciling_again_is_a_no_op(make_course: MakeCourse) -> None:
    course = make_course()
    records = fire(stored_pending(course), K.DEADLINE_PASSED, late=timedelta(hours=5))
    moved = reschedule(course, shifted(course, 14))
    after = apply(reconcile_timers(records, derive_timers(moved)), records)
    assert reconcile_timers(after, derive_timers(moved)).is_empty
    assert len([r for r in after if r.pending]) == 3
    assert len([r for r in after if not r.pending]) == 1


def test_moving_back_to_the_original_time_after_a_fire_does_not_refire(make_course: MakeCourse) -> None:
    course = make_course()
    records = fire(stored_pending(course), K.DEADLINE_PASSED)
    there = reschedule(course, shifted(course, 7))
    records = apply(reconcile_timers(records, derive_timers(there)), records)
    back = reschedule(there, shifted(there, -7))
    plan = reconcile_timers(records, derive_timers(back))
    # The week-later DeadlinePassed (pending) is removed; the original one already fired and is kept.
    assert [t.kind for t in plan.remove] == [K.DEADLINE_PASSED]
    assert K.DEADLINE_PASSED in kinds(plan.keep)
    assert K.DEADLINE_PASSED not in kinds(plan.add)


def test_a_due_time_already_past_is_still_planned_so_it_fires_late(make_course: MakeCourse) -> None:
    course = make_course()
    now = datetime(2026, 4, 20, tzinfo=UTC)  # after deadline and invoice run, before the reminder
    plan = reconcile_timers([], derive_timers(course))
    assert {t.kind for t in plan.add if t.due_at <= now} == {K.DEADLINE_PASSED, K.INVOICE_DUE}
