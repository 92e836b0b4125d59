"""The issue's "done when", on real PostgreSQL and real Kafka, with the clock moved (nothing sleeps):
a course created through the API produces CoursePublished, and exactly one DeadlinePassed, InvoiceDue
and CourseReminderDue per course reach Kafka with CloudEvents headers."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest
from komponent_catalogue.domain.timers import TimerKind, timer_event_id
from komponent_contracts import topics
from komponent_runtime.broker import broker_publisher, make_broker
from komponent_runtime.outbox import OutboxRelay
from komponent_runtime.settings import KafkaSettings
from komponent_runtime.testing import headers_of, isolated_topics, read_topic

pytestmark = pytest.mark.infra
CPH = ZoneInfo("Europe/Copenhagen")
TYPES = {
    "dk.komponent.course.deadline-passed.v1": TimerKind.DEADLINE_PASSED,
    "dk.komponent.course.invoice-due.v1": TimerKind.INVOICE_DUE,
    "dk.komponent.course.reminder-due.v1": TimerKind.COURSE_REMINDER_DUE,
}


async def test_created_course_is_published_and_each_timer_reaches_kafka_once(
    catalogue: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix = await isolated_topics()
    monkeypatch.setenv("KAFKA_TOPIC_PREFIX", prefix)
    starts = [datetime(2026, 5, 6, 9, tzinfo=CPH), datetime(2026, 11, 4, 11, 30, tzinfo=CPH)]
    course_ids = [await catalogue.create(catalogue.body(s)) for s in starts]

    broker = make_broker(KafkaSettings(), client_id="catalogue-test")
    await broker.start()
    try:
        relay = OutboxRelay(catalogue.pool, broker_publisher(broker))
        assert await relay.publish_pending() == 2
        published = await read_topic(prefix + topics.COURSE, expect=2)
        assert sorted(headers_of(r)["ce_subject"] for r in published) == sorted(map(str, course_ids))
        assert {headers_of(r)["ce_type"] for r in published} == {"dk.komponent.course.published.v1"}
        assert sorted(r.key for r in published) == sorted(str(c).encode() for c in course_ids)

        # Move the clock past every timer of both courses, in steps, as the loop would see it.
        for moment in (
            datetime(2026, 4, 1, tzinfo=UTC),
            datetime(2026, 6, 1, tzinfo=UTC),
            datetime(2027, 1, 1, tzinfo=UTC),
        ):
            await catalogue.fire(moment)
            await catalogue.fire(moment)  # a second run at the same moment fires nothing
        assert await relay.publish_pending() == 6
    finally:
        await broker.stop()

    records = await read_topic(prefix + topics.COURSE_CALENDAR, expect=6)
    assert len(records) == 6
    per_course = Counter((headers_of(r)["ce_subject"], headers_of(r)["ce_type"]) for r in records)
    assert set(per_course.values()) == {1} and len(per_course) == 6
    for record in records:
        h = headers_of(record)
        assert h["ce_specversion"] == "1.0" and h["content-type"] == "application/json"
        assert h["ce_source"] == "/komponent/catalogue" and h["ce_time"]
        assert record.key == h["ce_subject"].encode()
        due_at = datetime.fromisoformat(json.loads(record.value)["due_at"])
        assert h["ce_id"] == str(timer_event_id(UUID(h["ce_subject"]), TYPES[h["ce_type"]], due_at))
        assert due_at < datetime.fromisoformat(h["ce_time"]) + timedelta(seconds=1)
