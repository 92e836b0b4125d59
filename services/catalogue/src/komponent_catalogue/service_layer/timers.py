"""Firing due timers: claim, emit through the outbox, mark fired — in ONE transaction.

Exactly one effect downstream, whatever happens:
- two schedulers: the claim locks rows with SKIP LOCKED, so each due row is taken by one of them; the
  other sees it fired (or skips it) and moves on;
- a crash before commit: neither the outbox row nor `fired_at` exists, the row is still pending and
  fires on the next run, with the same deterministic event id;
- a crash of the relay after publishing but before marking the outbox row: the record is published
  again with the same `ce_id` (the timer's event id) and consumers' inboxes drop the repeat.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg
from komponent_contracts import CloudEvent, Event
from komponent_contracts.events import CourseReminderDue, DeadlinePassed, InvoiceDue
from komponent_runtime import outbox
from komponent_runtime.clock import Clock
from komponent_runtime.metrics import meter
from komponent_runtime.transient import TRANSIENT_ERRORS

from komponent_catalogue.adapters import repository
from komponent_catalogue.adapters.repository import DueTimer
from komponent_catalogue.domain.timers import Timer, TimerKind, lateness
from komponent_catalogue.service_layer.events import SOURCE

log = logging.getLogger(__name__)
timer_lateness = meter.create_histogram(
    "komponent_timer_lateness_seconds",
    unit="s",
    description="how long after its due time a timer fired, by kind",
)


@dataclass(frozen=True)
class FiredTimer:
    timer: Timer
    fired_at: datetime
    lateness: timedelta


async def fire_due_timers(pool: asyncpg.Pool, now: datetime, *, limit: int = 100) -> list[FiredTimer]:
    """Fire up to `limit` timers due at `now` (one transaction); return what was fired."""
    async with pool.acquire() as conn, conn.transaction():
        due = await repository.claim_due_timers(conn, now, limit)
        if not due:
            return []
        await outbox.enqueue(conn, [timer_event(d, now) for d in due])
        await repository.mark_fired(conn, [d.timer_id for d in due], now)
    fired = [FiredTimer(d.timer, now, lateness(d.timer.due_at, now)) for d in due]
    for f in fired:
        timer_lateness.record(f.lateness.total_seconds(), {"kind": f.timer.kind.value})
        log.info(
            "timer fired",
            extra={
                "course_id": str(f.timer.course_id),
                "kind": f.timer.kind.value,
                "due_at": f.timer.due_at.isoformat(),
                "lateness_seconds": f.lateness.total_seconds(),
                "event_id": str(f.timer.event_id),
            },
        )
    return fired


def timer_event(due: DueTimer, fired_at: datetime) -> CloudEvent[Event]:
    timer = due.timer
    common = {
        "course_id": timer.course_id,
        "due_at": timer.due_at,
        "fired_at": fired_at,
        "lateness_seconds": lateness(timer.due_at, fired_at).total_seconds(),
    }
    data: Event
    if timer.kind is TimerKind.DEADLINE_PASSED:
        data = DeadlinePassed(**common)
    elif timer.kind is TimerKind.INVOICE_DUE:
        data = InvoiceDue(**common, course_starts_at=due.course_starts_at)
    else:
        data = CourseReminderDue(**common, course_starts_at=due.course_starts_at)
    # ce_id = the timer's deterministic id: a second emission of this due time is a duplicate downstream.
    return CloudEvent(data=data, source=SOURCE, id=timer.event_id, time=fired_at)


class TimerScheduler:
    """The background loop: fire whatever is due by the clock, then sleep at most `interval` seconds."""

    def __init__(self, pool: asyncpg.Pool, clock: Clock, *, interval: float = 1.0, batch: int = 100) -> None:
        self._pool = pool
        self._clock = clock
        self._interval = interval
        self._batch = batch

    async def run(self) -> None:
        backoff = self._interval
        while True:
            try:
                while (
                    len(await fire_due_timers(self._pool, self._clock.now(), limit=self._batch))
                    == self._batch
                ):
                    pass  # a full batch: more may be due, don't sleep
                backoff = self._interval
            except asyncio.CancelledError:
                raise
            except TRANSIENT_ERRORS as exc:
                log.warning("timer run interrupted, retrying", extra={"error": type(exc).__name__})
                backoff = min(backoff * 2, 30.0)
            except Exception:
                log.exception("timer run failed, retrying")
                backoff = min(backoff * 2, 30.0)
            await asyncio.sleep(backoff)
