"""The allocator's outbox rows, built and written for a whole batch at once.

A rush answers every registration with a `RegistrationConfirmed` or `RegistrationWaitlisted` that carries
the participant (and buyer). Building a contract model and a `CloudEvent` per answer, dumping the model and
the headers to JSON, cost more than anything else in the batch. Here those two outcomes are spliced from
the participant's and buyer's JSON, serialised once per registration (the stored form reuses the same
bytes), and the headers from a template per event type and course. The rows are exactly what the runtime's
`outbox.row_values` gives for the same events (tests/unit/test_outbox_rows.py holds the two together);
every other event goes through `row_values` itself.

Many rows go in by COPY (a third of the cost of the runtime's INSERT … unnest per row), then the relay's
wake-up; a few by the runtime's INSERT, wake-up included (`COPY_FROM_ROWS`); inside the caller's transaction.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from komponent_contracts import CloudEvent, Event, topics
from komponent_contracts import events as contract
from komponent_contracts.envelope import CONTENT_TYPE, SPEC_VERSION
from komponent_runtime import outbox
from komponent_runtime.database import COPY_FROM_ROWS, Connection
from komponent_runtime.settings import topic_name
from pydantic_core import to_json

_COLUMNS = [column.strip() for column in outbox.OUTBOX_COLUMNS.split(",")]
_ID_MARK = "@ce_id@"


def serialise(model: contract.Participant | contract.Buyer) -> bytes:
    """A participant's or buyer's JSON as it appears inside an event's value (pydantic's own form; the
    model's own serializer, without `to_json`'s type inference)."""
    return model.__pydantic_serializer__.to_json(model)


class _Course:
    """What every row about one course shares: its Kafka key, its id as JSON, the headers per type."""

    __slots__ = ("headers", "json", "key", "subject")

    def __init__(self, subject: str) -> None:
        self.subject = subject
        self.key = subject.encode()
        self.json = f'"{subject}"'.encode()
        self.headers: dict[str, tuple[str, str]] = {}


class OutboxRows:
    """Rows for one batch's events; every event of the batch carries the same `ce_time` (`time`)."""

    def __init__(self, source: str, time: datetime) -> None:
        self.source = source
        self.time = time
        self._ce_time = time.isoformat()
        self._topic = topic_name(topics.REGISTRATION)
        self._courses: dict[UUID, _Course] = {}

    def _course(self, course_id: UUID) -> _Course:
        course = self._courses.get(course_id)
        if course is None:
            course = self._courses[course_id] = _Course(str(course_id))
        return course

    def _template(self, course: _Course, ce_type: str) -> tuple[str, str]:
        """The headers' JSON (as `json.dumps(CloudEvent.headers())` writes it) around the event id."""
        template = course.headers.get(ce_type)
        if template is None:
            text = json.dumps(
                {
                    "ce_specversion": SPEC_VERSION,
                    "ce_id": _ID_MARK,
                    "ce_type": ce_type,
                    "ce_source": self.source,
                    "ce_time": self._ce_time,
                    "ce_subject": course.subject,
                    "content-type": CONTENT_TYPE,
                }
            )
            head, _, tail = text.partition(_ID_MARK)
            template = course.headers[ce_type] = (head, tail)
        return template

    def _row(
        self, event_id: UUID, ce_type: str, course: _Course, value: bytes, trace: dict[str, str]
    ) -> outbox.OutboxRow:
        head, tail = self._template(course, ce_type)
        return (
            event_id,
            self._topic,
            course.key,
            f"{head}{event_id}{tail}",
            value,
            trace.get("traceparent"),
            trace.get("tracestate"),
        )

    def _start(self, registration_id: UUID, course: _Course, at: datetime) -> bytes:
        """The value's first three fields (every outcome starts with them)."""
        return b'{"registration_id":"%s","course_id":%s,"occurred_at":%s' % (
            str(registration_id).encode(),
            course.json,
            to_json(at),
        )

    def confirmed(
        self,
        event_id: UUID,
        registration_id: UUID,
        course_id: UUID,
        at: datetime,
        participant: bytes,
        buyer: bytes,
        binding: bool,
        trace: dict[str, str],
    ) -> outbox.OutboxRow:
        """`RegistrationConfirmed`; `participant` and `buyer` as `serialise` gives them."""
        course = self._course(course_id)
        value = b'%s,"participant":%s,"buyer":%s,"binding":%s}' % (
            self._start(registration_id, course, at),
            participant,
            buyer,
            b"true" if binding else b"false",
        )
        return self._row(event_id, contract.RegistrationConfirmed.ce_type, course, value, trace)

    def waitlisted(
        self,
        event_id: UUID,
        registration_id: UUID,
        course_id: UUID,
        at: datetime,
        participant: bytes,
        position: int,
        trace: dict[str, str],
    ) -> outbox.OutboxRow:
        """`RegistrationWaitlisted`; `participant` as `serialise` gives it."""
        if position < 1:
            raise ValueError("a waiting-list position starts at 1")  # the contract's own bound
        course = self._course(course_id)
        value = b'%s,"participant":%s,"position":%d}' % (
            self._start(registration_id, course, at),
            participant,
            position,
        )
        return self._row(event_id, contract.RegistrationWaitlisted.ce_type, course, value, trace)

    def event(self, event: Event, event_id: UUID, trace: dict[str, str]) -> outbox.OutboxRow:
        """Any other event, through the runtime's own row definition."""
        return outbox.row_values(CloudEvent(event, source=self.source, id=event_id, time=self.time), trace)


async def insert(conn: Connection, rows: Sequence[outbox.OutboxRow]) -> None:
    """Insert the rows in order (their ids are the relay's publishing order) and wake the relay (at
    commit): a few rows with the runtime's one statement, many by COPY."""
    if not rows:
        return
    if len(rows) < COPY_FROM_ROWS:
        await outbox.insert_rows(conn, rows)
        return
    await conn.copy_records_to_table("outbox", records=rows, columns=_COLUMNS)
    await conn.execute("SELECT pg_notify($1, '')", outbox.NOTIFY_CHANNEL)
