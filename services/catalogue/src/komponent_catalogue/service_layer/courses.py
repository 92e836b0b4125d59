"""Course use cases. Each runs in ONE transaction: lock the course, apply the domain operation, save,
bring its timers in line with the new state, and write the resulting events to the outbox."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg
from komponent_runtime import outbox
from komponent_runtime.clock import Clock
from komponent_runtime.database import Connection

from komponent_catalogue.adapters import repository
from komponent_catalogue.domain import operations
from komponent_catalogue.domain.course import Course, CourseDetails, CourseStatus, Schedule
from komponent_catalogue.domain.timers import derive_timers, reconcile_timers
from komponent_catalogue.domain.wall_clock import to_utc
from komponent_catalogue.service_layer.events import course_events, envelope


class CourseNotFound(Exception):
    def __init__(self, course_id: UUID) -> None:
        super().__init__(f"course {course_id} not found")
        self.course_id = course_id


class CourseExists(Exception):
    def __init__(self, course_id: UUID) -> None:
        super().__init__(f"course {course_id} exists already")
        self.course_id = course_id


@dataclass(frozen=True)
class CourseView:
    """A course as the API shows it: with the seats-taken projection and the deadline judged now."""

    course: Course
    seats_taken: int
    deadline_passed: bool

    @property
    def seats_left(self) -> int:
        return max(self.course.capacity - self.seats_taken, 0)


Operation = Callable[[Course, int], Course]  # (course, seats taken) -> changed course


class Courses:
    def __init__(self, pool: asyncpg.Pool, clock: Clock) -> None:
        self._pool = pool
        self._clock = clock

    # -- commands -------------------------------------------------------------------------------------

    async def add(self, draft: Course) -> CourseView:
        """Store a new draft (built and validated by `operations.create_course`)."""
        async with self._pool.acquire() as conn, conn.transaction():
            if not await repository.add(conn, draft):
                raise CourseExists(draft.course_id)
            return await self._view(conn, draft)

    async def update(
        self,
        course_id: UUID,
        *,
        details: CourseDetails | None = None,
        invoice_lead_days: int | None = None,
        reminder_lead_days: int | None = None,
    ) -> CourseView:
        return await self._change(
            course_id,
            lambda course, seats: operations.update_course(
                course,
                details=details,
                invoice_lead_days=invoice_lead_days,
                reminder_lead_days=reminder_lead_days,
                seats_taken=seats,
            ),
        )

    async def publish(self, course_id: UUID) -> CourseView:
        return await self._change(course_id, operations.publish)

    async def reschedule(self, course_id: UUID, schedule: Schedule) -> CourseView:
        return await self._change(
            course_id, lambda course, seats: operations.reschedule(course, schedule, seats)
        )

    async def change_capacity(self, course_id: UUID, capacity: int) -> CourseView:
        return await self._change(
            course_id, lambda course, seats: operations.change_capacity(course, capacity, seats)
        )

    async def cancel(self, course_id: UUID, reason: str = "") -> CourseView:
        return await self._change(course_id, lambda course, _seats: operations.cancel(course), reason=reason)

    async def _change(self, course_id: UUID, operation: Operation, *, reason: str = "") -> CourseView:
        async with self._pool.acquire() as conn, conn.transaction():
            before = await repository.get(conn, course_id, for_update=True)
            if before is None:
                raise CourseNotFound(course_id)
            after = operation(before, await repository.seats_taken(conn, course_id))
            now = self._clock.now()
            events = course_events(before, after, now, reason)  # refuses a course the contract can't carry
            await repository.save(conn, after)
            plan = reconcile_timers(await repository.timers(conn, course_id), derive_timers(after))
            await repository.apply_timer_plan(conn, plan)
            await outbox.enqueue(conn, envelope(events, now))
            return await self._view(conn, after)

    # -- queries --------------------------------------------------------------------------------------

    async def get(self, course_id: UUID, *, published_only: bool = False) -> CourseView:
        async with self._pool.acquire() as conn:
            course = await repository.get(conn, course_id)
            if course is None or (published_only and course.status is not CourseStatus.PUBLISHED):
                raise CourseNotFound(course_id)
            return await self._view(conn, course)

    async def upcoming(
        self, *, text: str | None = None, city: str | None = None, limit: int = 50, offset: int = 0
    ) -> list[CourseView]:
        now = self._clock.now()
        async with self._pool.acquire() as conn:
            courses = await repository.list_published(
                conn, starting_after=now, text=text, city=city, limit=limit, offset=offset
            )
            seats = await repository.seats_taken_of(conn, [c.course_id for c in courses])
        return [CourseView(c, seats.get(c.course_id, 0), self._deadline_passed(c, now)) for c in courses]

    async def _view(self, conn: Connection, course: Course) -> CourseView:
        seats = await repository.seats_taken(conn, course.course_id)
        return CourseView(course, seats, self._deadline_passed(course, self._clock.now()))

    @staticmethod
    def _deadline_passed(course: Course, now: datetime) -> bool:
        return to_utc(now) >= to_utc(course.schedule.registration_deadline)
