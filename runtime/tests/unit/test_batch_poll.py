"""The batch subscriber's poll: one long `getmany`, no sleep after an empty one (see consuming._poll_batch)."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from faststream.kafka.subscriber.usecase import BatchSubscriber
from komponent_runtime import consuming


class _Consumer:
    def __init__(self, batches: dict[str, list[str]]) -> None:
        self.batches = batches
        self.calls: list[tuple[int, int | None]] = []

    async def getmany(self, *, timeout_ms: int, max_records: int | None) -> dict[str, list[str]]:
        self.calls.append((timeout_ms, max_records))
        return self.batches


class _Subscriber:
    batch_timeout_ms = 500
    max_records = 100


async def test_the_runtime_replaces_faststreams_batch_poll() -> None:
    assert BatchSubscriber.get_msg is consuming._poll_batch


async def test_empty_poll_returns_at_once_without_sleeping(monkeypatch: pytest.MonkeyPatch) -> None:
    async def no_sleep(*_: Any) -> None:
        raise AssertionError("an empty poll must not sleep")

    monkeypatch.setattr(anyio, "sleep", no_sleep)
    consumer = _Consumer({})
    assert await consuming._poll_batch(_Subscriber(), consumer) == ()  # type: ignore[arg-type]
    assert consumer.calls == [(500, 100)]


async def test_records_of_every_partition_come_back_in_one_tuple() -> None:
    consumer = _Consumer({"p0": ["a", "b"], "p1": ["c"]})
    assert await consuming._poll_batch(_Subscriber(), consumer) == ("a", "b", "c")  # type: ignore[arg-type]
