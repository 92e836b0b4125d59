"""Garbage in the same fetched batch as an event the handler rejects: the runtime's batch consumer must
dead-letter the rejected event itself (not its neighbour) and apply the others.

Regression: `_process_batch` paired the parsed deliveries with the raw records by position, but garbage
(dead-lettered at parse) and events of other types drop out of the deliveries only, so when a batch was
re-applied one event at a time the wrong record went to the DLQ and the culprit was silently skipped.
Uses the runtime's own test service (runtime/tests/integration/support/effect_service.py) as a process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import asyncpg
import pytest
from komponent_contracts import CloudEvent
from komponent_contracts.events import RegistrationReceived
from komponent_contracts.examples import all_examples
from komponent_contracts.topics import dead_letter_topic
from komponent_runtime.testing import REPO_ROOT, create_topics, headers_of, produce, read_topic, wait_until

pytestmark = pytest.mark.infra

SERVICE = REPO_ROOT / "runtime/tests/integration/support/effect_service.py"


def registration(course_id: uuid.UUID) -> CloudEvent[RegistrationReceived]:
    template = next(e for e in all_examples() if isinstance(e, RegistrationReceived))
    data = template.model_copy(update={"registration_id": uuid.uuid4(), "course_id": course_id})
    return CloudEvent(data=data, source="/hostile")


@pytest.mark.parametrize("handler", ["batch", "prepared"])
async def test_batch_dead_letters_the_culprit_not_its_neighbour(
    pool: asyncpg.Pool,
    database: str,
    unique_topic,  # type: ignore[no-untyped-def]
    handler: str,
) -> None:
    """`prepared`: the handler is a PreparedBatchHandler whose prepare step (run while the inbox insert is
    in flight) rejects the culprit."""
    topic, out = unique_topic("in"), unique_topic("out")
    await create_topics(topic, out, partitions=1)
    course, rejected_course = uuid.uuid4(), uuid.uuid4()
    first, culprit, last = registration(course), registration(rejected_course), registration(course)
    garbage = (first.key, b"\x00garbage", {"content-type": "application/json"})
    await produce(topic, [], extra=[garbage])
    await produce(topic, [first, culprit, last])  # all fetched in one batch with the garbage before them
    proc = subprocess.Popen(  # noqa: ASYNC220 - a real process, started once
        [sys.executable, str(SERVICE), "--db", database, "--topic", topic, "--out-topic", out, "--batch"]
        + (["--prepared"] if handler == "prepared" else []),
        env={**os.environ, "REJECT_COURSE": str(rejected_course)},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        dead = await read_topic(dead_letter_topic(topic), expect=2)

        async def applied() -> bool:
            return bool(await pool.fetchval("SELECT count(*) = 2 FROM effects"))

        await wait_until(applied, what="the two good events applied")
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    by_reason = {headers_of(r)["dlq_reason"]: headers_of(r) for r in dead}
    assert set(by_reason) == {"missing_header", "rejected_by_handler"}, by_reason
    assert by_reason["rejected_by_handler"]["ce_id"] == str(culprit.id), "the wrong record was dead-lettered"
    applied_ids = {r["event_id"] for r in await pool.fetch("SELECT event_id FROM effects")}
    assert applied_ids == {first.id, last.id}
