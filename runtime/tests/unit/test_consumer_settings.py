"""How `Runtime.consumer` sets up fetching: prompt consumers answer a record at once and long-poll when
idle; gathering consumers (nobody waits on them) let records collect into larger batches; offsets are
committed at the configured interval. All from KAFKA_* settings."""

from __future__ import annotations

from pathlib import Path

import pytest
from komponent_runtime.clock import SystemClock
from komponent_runtime.service import Runtime
from komponent_runtime.settings import HttpSettings


@pytest.fixture(autouse=True)
def _defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "KAFKA_TOPIC_PREFIX",
        "KAFKA_FETCH_MAX_WAIT_MS",
        "KAFKA_GATHER_MAX_WAIT_MS",
        "KAFKA_GATHER_MIN_BYTES",
        "KAFKA_COMMIT_INTERVAL_MS",
    ):
        monkeypatch.delenv(name, raising=False)


def _runtime() -> Runtime:
    return Runtime("svc", None, None, SystemClock(), HttpSettings(), Path("."))  # type: ignore[arg-type]


def test_a_prompt_consumer_takes_a_record_as_soon_as_it_is_there() -> None:
    consumer = _runtime().consumer("purpose", "komponent.registration.v1")
    assert consumer.group == "svc.purpose"
    assert (consumer.fetch_min_bytes, consumer.fetch_max_wait_ms) == (1, 500)
    assert consumer.commits.interval == 1.0


def test_a_gathering_consumer_lets_records_collect(monkeypatch: pytest.MonkeyPatch) -> None:
    assert (lambda c: (c.fetch_min_bytes, c.fetch_max_wait_ms))(
        _runtime().consumer("seats", "komponent.registration.v1", gather=True)
    ) == (64 * 1024, 250)
    monkeypatch.setenv("KAFKA_GATHER_MAX_WAIT_MS", "1000")
    monkeypatch.setenv("KAFKA_GATHER_MIN_BYTES", "4096")
    monkeypatch.setenv("KAFKA_COMMIT_INTERVAL_MS", "250")
    consumer = _runtime().consumer("seats", "komponent.registration.v1", gather=True)
    assert (consumer.fetch_min_bytes, consumer.fetch_max_wait_ms) == (4096, 1000)
    assert consumer.commits.interval == 0.25
