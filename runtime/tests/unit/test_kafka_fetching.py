"""The fetcher patch: a short wait while fetched records wait to be consumed, the configured long poll
otherwise (see komponent_runtime.kafka_fetching)."""

from __future__ import annotations

from typing import Any

import pytest
from aiokafka.consumer.fetcher import Fetcher
from komponent_runtime import consuming, kafka_fetching  # noqa: F401 - consuming installs the patch


class _Fetcher:
    def __init__(self, wait_ms: int) -> None:
        self._fetch_max_wait_ms = wait_ms
        self._records: dict[str, object] = {}


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    seen: list[int] = []

    def original(self: Any, assignment: Any) -> str:
        seen.append(self._fetch_max_wait_ms)
        return "actions"

    monkeypatch.setattr(kafka_fetching, "_original", original)
    return seen


def test_the_runtime_installs_the_patch() -> None:
    assert Fetcher._get_actions_per_node is kafka_fetching._get_actions_per_node


def test_idle_fetches_long_poll_and_busy_ones_wait_briefly(waits: list[int]) -> None:
    fetcher = _Fetcher(500)
    assert kafka_fetching._get_actions_per_node(fetcher, None) == "actions"
    fetcher._records["tp0"] = object()  # fetched, not yet consumed
    kafka_fetching._get_actions_per_node(fetcher, None)
    fetcher._records.clear()
    kafka_fetching._get_actions_per_node(fetcher, None)
    assert waits == [500, kafka_fetching.BUSY_WAIT_MS, 500]


def test_a_configured_wait_shorter_than_the_cap_is_kept(waits: list[int]) -> None:
    fetcher = _Fetcher(3)
    fetcher._records["tp0"] = object()
    kafka_fetching._get_actions_per_node(fetcher, None)
    assert waits == [3]
