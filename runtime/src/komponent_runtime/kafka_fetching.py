"""A patch to aiokafka's fetcher (0.14): no long poll while fetched records wait to be consumed.

aiokafka keeps one fetch in flight per broker and leaves out of it the partitions whose fetched records
are not consumed yet. With one busy partition (a hot course) and quiet others, the fetch sent right after
the busy partition's records arrived asks for the quiet ones only and long-polls `fetch_max_wait_ms`; the
busy partition, consumed meanwhile, can be fetched again only when that poll ends. Every batch of a busy
partition waited out a long poll (up to 500 ms by default), which is why consumers had to poll idle topics
ten times a second instead.

Here, while any fetched records wait, the fetch's wait is capped at `BUSY_WAIT_MS`: the busy partition's
next fetch is at most that late, and an idle consumer still long-polls (cheap). Cost: while a batch is
handled, a fetch every `BUSY_WAIT_MS` for the quiet partitions.
"""

from __future__ import annotations

from typing import Any

from aiokafka.consumer.fetcher import Fetcher

BUSY_WAIT_MS = 10

_original = Fetcher._get_actions_per_node


def _get_actions_per_node(self: Any, assignment: Any) -> Any:
    configured: int = self.__dict__.setdefault("_komponent_configured_wait_ms", self._fetch_max_wait_ms)
    self._fetch_max_wait_ms = min(configured, BUSY_WAIT_MS) if self._records else configured
    return _original(self, assignment)


def install() -> None:
    Fetcher._get_actions_per_node = _get_actions_per_node
