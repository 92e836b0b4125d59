"""Hypothesis-generated garbage on every consumed topic of the running platform.

For each topic (course, course-calendar, registration-intake, registration, billing), all keyed by one
course id so they share one partition: random bytes, truncated valid JSON, valid JSON with wrong types,
valid payloads with unknown or `.v2` types, missing/invalid CloudEvents headers, values of about 1 MB.
Then one valid event on the same key. Every garbage record must land in `<topic>.dlq` once per consumer
group responsible for it, with a `dlq_reason`: the groups that handle its type when the `ce_type` header
names a known type (the others skip such a record unparsed), every group of the topic otherwise. Every
group must commit past the valid event without dead-lettering it (so no consumer crashed and no
partition is blocked); the services stay healthy.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from komponent_contracts import CloudEvent, Event, examples, topics
from komponent_contracts.events.billing import InvoiceIssued
from komponent_contracts.events.course import CoursePublished, CourseSeatsChanged, DeadlinePassed
from komponent_contracts.events.registration import RegistrationReceived
from komponent_contracts.topics import dead_letter_topic
from komponent_runtime.testing import ADMIN_HEADERS, headers_of, kafka_bootstrap, read_topic, wait_until
from support.platform import Platform

from .conftest import assert_healthy

pytestmark = pytest.mark.infra

EXAMPLES_PER_TOPIC = 30
HUGE = 1_000_000  # bytes: close to Kafka's default 1 MiB record limit, leaving room for the DLQ headers
CASE_HEADER = "hostile_case"

GROUPS = {
    topics.COURSE: {
        "registration.course-projection",
        "billing.course-projection",
        "notifications.course-projection",
    },
    topics.COURSE_CALENDAR: {
        "registration.deadlines",
        "billing.invoice-run",
        "notifications.course-reminders",
    },
    topics.REGISTRATION_INTAKE: {"registration.allocation"},
    topics.REGISTRATION: {
        "catalogue.seats-taken",
        "billing.registrations",
        "notifications.registration-emails",
    },
    topics.BILLING: {"notifications.billing-emails"},
}


# Of GROUPS, the ones that handle the type of the topic's valid event (below): garbage carrying that type
# in its `ce_type` header is theirs alone to dead-letter.
HANDLE_VALID_TYPE = {
    topics.COURSE: GROUPS[topics.COURSE],
    topics.COURSE_CALENDAR: {"registration.deadlines"},
    topics.REGISTRATION_INTAKE: {"registration.allocation"},
    topics.REGISTRATION: {"catalogue.seats-taken"},
    topics.BILLING: {"notifications.billing-emails"},
}


@dataclass(frozen=True)
class Raw:
    case: str
    kind: str
    value: bytes | None
    headers: dict[str, bytes]


def valid_events(course_id: uuid.UUID) -> dict[str, Event]:
    """One valid event per topic, all about `course_id` (a fresh course, so nothing else touches it)."""
    snapshot = examples.course().model_copy(
        update={"course_id": course_id, "registration_deadline": datetime.now(UTC) + timedelta(days=30)}
    )
    starts = datetime.now(UTC) + timedelta(days=60)
    return {
        topics.COURSE: CoursePublished(course_id=course_id, course=snapshot, occurred_at=datetime.now(UTC)),
        topics.COURSE_CALENDAR: DeadlinePassed(
            course_id=course_id, due_at=starts, fired_at=starts, lateness_seconds=0.0
        ),
        topics.REGISTRATION_INTAKE: RegistrationReceived(
            registration_id=uuid.uuid4(),
            course_id=course_id,
            received_at=datetime.now(UTC),
            participant=examples.participant(),
            buyer=examples.buyer(),
            terms_version="2026-01",
        ),
        topics.REGISTRATION: CourseSeatsChanged(
            course_id=course_id,
            capacity=30,
            seats_taken=1,
            waiting_list_length=0,
            version=1,
            occurred_at=datetime.now(UTC),
        ),
        topics.BILLING: examples.invoice_issued().model_copy(
            update={"course_id": course_id, "document_id": uuid.uuid4(), "billing_email": "fuzz@roskilde.dk"}
        ),
    }


def _headers(ce: CloudEvent[Event]) -> dict[str, bytes]:
    return {k: v.encode() for k, v in ce.headers().items()}


_WRONG = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
    st.text(max_size=40),
)


def garbage(event: Event) -> st.SearchStrategy[Raw]:
    ce = CloudEvent(data=event, source="/hostile")
    good_value = ce.value()
    good = json.loads(good_value)
    case = st.builds(lambda: uuid.uuid4().hex)

    def with_case(kind: str, value: bytes | None, headers: dict[str, bytes]) -> st.SearchStrategy[Raw]:
        return case.map(lambda c: Raw(c, kind, value, {**headers, CASE_HEADER: c.encode()}))

    fresh_headers = st.builds(lambda: _headers(CloudEvent(data=event, source="/hostile")))
    random_bytes = st.tuples(st.binary(max_size=2000), st.booleans()).flatmap(
        lambda vb: fresh_headers.flatmap(lambda h: with_case("random_bytes", vb[0], h if vb[1] else {}))
    )
    truncated = st.tuples(st.integers(0, len(good_value) - 1), fresh_headers).flatmap(
        lambda th: with_case("truncated_json", good_value[: th[0]], th[1])
    )
    wrong_type = (
        st.tuples(st.sampled_from(sorted(good)), _WRONG, fresh_headers)
        .filter(lambda t: type(t[1]) is not type(good[t[0]]))
        .flatmap(lambda t: with_case("wrong_type", json.dumps({**good, t[0]: t[1]}).encode(), t[2]))
    )
    unknown_type = st.tuples(
        st.one_of(
            st.just(event.ce_type.removesuffix(".v1") + ".v2"),
            st.just(event.ce_type.removesuffix(".v1")),
            st.text(min_size=1, max_size=60).filter(lambda t: t not in {event.ce_type}),
        ),
        fresh_headers,
    ).flatmap(
        lambda th: with_case(
            "unknown_type", good_value, {**th[1], "ce_type": th[0].encode("utf-8", "replace")}
        )
    )
    broken_headers = st.tuples(
        st.sets(st.sampled_from(["ce_specversion", "ce_id", "ce_type", "ce_source"]), min_size=1),
        st.sampled_from(["drop", "empty", "bad"]),
        fresh_headers,
    ).flatmap(lambda t: with_case("broken_headers", good_value, _break(t[2], t[0], t[1])))
    huge = st.tuples(
        st.integers(HUGE // 2, HUGE), st.sampled_from(["field", "bytes", "array"]), fresh_headers
    ).flatmap(lambda t: with_case("huge", _huge(good, t[0], t[1]), t[2]))
    null_value = fresh_headers.flatmap(lambda h: with_case("null_value", None, h))
    return st.one_of(random_bytes, truncated, wrong_type, unknown_type, broken_headers, huge, null_value)


def _break(headers: dict[str, bytes], names: set[str], how: str) -> dict[str, bytes]:
    out = dict(headers)
    for name in names:
        if how == "drop":
            out.pop(name, None)
        elif how == "empty":
            out[name] = b""
        else:
            out[name] = {
                "ce_specversion": b"0.3",
                "ce_id": b"not-a-uuid",
                "ce_type": b"\xff\xfe",
                "ce_source": b"",
            }[name]
    return out


def _huge(good: dict[str, Any], size: int, how: str) -> bytes:
    if how == "bytes":
        return b"\x00\xff" * (size // 2)
    if how == "array":
        return json.dumps({**good, "course_id": [1] * (size // 3)}).encode()
    # A valid-looking event whose id field is a huge string: a schema violation, not a huge valid event.
    return json.dumps({**good, "course_id": "x" * size}).encode()


def generate(event: Event) -> list[Raw]:
    records: list[Raw] = []

    @settings(
        max_examples=EXAMPLES_PER_TOPIC,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(garbage(event))
    def collect(raw: Raw) -> None:
        records.append(raw)

    collect()
    # Hypothesis may replay an example: each case once.
    unique = {r.case: r for r in records}
    return list(unique.values())


async def _committed_past(admin: AIOKafkaAdminClient, group: str, tp: TopicPartition, offset: int) -> bool:
    offsets = await admin.list_consumer_group_offsets(group, partitions=[tp])
    meta = offsets.get(tp)
    return meta is not None and meta.offset > offset


async def test_every_consumer_dead_letters_garbage_and_moves_on(platform: Platform) -> None:
    course_id = uuid.uuid4()
    events = valid_events(course_id)
    key = str(course_id).encode()
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_bootstrap(),
        acks="all",
        enable_idempotence=True,
        max_request_size=2 * 1024 * 1024,
    )
    await producer.start()
    sent: dict[str, tuple[list[Raw], CloudEvent[Event], TopicPartition, int]] = {}
    try:
        for family, event in events.items():
            topic = platform.topic_prefix + family
            records = generate(event)
            for raw in records:
                await producer.send_and_wait(topic, raw.value, key=key, headers=list(raw.headers.items()))
            ce = CloudEvent(data=event, source="/hostile")
            meta = await producer.send_and_wait(
                topic, ce.value(), key=key, headers=list(_headers(ce).items())
            )
            sent[family] = (records, ce, TopicPartition(topic, meta.partition), meta.offset)
    finally:
        await producer.stop()

    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap())
    await admin.start()
    counts: dict[str, dict[str, int]] = {}
    try:
        for family, (records, ce, tp, offset) in sent.items():
            groups = {platform.topic_prefix + g for g in GROUPS[family]}
            handlers = {platform.topic_prefix + g for g in HANDLE_VALID_TYPE[family]}

            def responsible(
                raw: Raw, ce: CloudEvent[Event] = ce, groups: set[str] = groups, handlers: set[str] = handlers
            ) -> set[str]:
                return handlers if raw.headers.get("ce_type") == ce.type.encode() else groups

            for group in groups:
                await wait_until(
                    lambda g=group, tp=tp, o=offset: _committed_past(admin, g, tp, o),
                    timeout=120,
                    what=f"{group} to commit past the valid event on {tp}",
                )
            expected = sum(len(responsible(r)) for r in records)
            dlq = await read_topic(dead_letter_topic(tp.topic), expect=expected, timeout=60)
            by_case: dict[str, set[str]] = {}
            for record in dlq:
                h = headers_of(record)
                assert h.get("dlq_reason"), f"dead letter without a reason: {h}"
                assert h.get("ce_id") != str(ce.id), f"the valid event was dead-lettered on {family}: {h}"
                by_case.setdefault(h.get(CASE_HEADER, "?"), set()).add(h["dlq_consumer_group"])
            wrong = {
                f"{r.kind}:{r.case[:8]}": sorted(responsible(r) ^ by_case.get(r.case, set()))
                for r in records
                if by_case.get(r.case, set()) != responsible(r)
            }
            assert not wrong, f"{family}: garbage not dead-lettered by exactly its groups: {wrong}"
            assert len(dlq) == expected, f"{family}: {len(dlq)} dead letters, expected {expected}"
            kinds: dict[str, int] = {}
            for r in records:
                kinds[r.kind] = kinds.get(r.kind, 0) + 1
            counts[family] = kinds
    finally:
        await admin.close()
    print(f"\ngarbage per topic, all dead-lettered by the groups responsible: {json.dumps(counts)}")

    # The valid course event was applied after the garbage: registration knows the course, and the intake
    # registration behind it was allocated.
    registration = platform.url("registration")
    received = events[topics.REGISTRATION_INTAKE]
    assert isinstance(received, RegistrationReceived)
    async with httpx.AsyncClient(timeout=10) as client:

        async def known() -> bool:
            answer = await client.get(
                f"{registration}/courses/{course_id}/registrations", headers=ADMIN_HEADERS
            )
            return answer.status_code == 200

        await wait_until(known, what="registration applied the valid CoursePublished after the garbage")

        async def allocated() -> bool:
            answer = await client.get(f"{registration}/registrations/{received.registration_id}")
            return answer.status_code == 200

        await wait_until(
            allocated, what="registration applied the valid RegistrationReceived after the garbage"
        )
    await assert_healthy(platform)


__all__ = ["InvoiceIssued"]
