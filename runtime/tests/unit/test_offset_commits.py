"""Lazy offset commits (consuming.OffsetCommits): at most once per interval, always when the consumer goes
idle, never for a batch that was not applied (its partition is rewound instead)."""

from __future__ import annotations

from typing import Any

import pytest
from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError
from komponent_runtime import consuming
from komponent_runtime.consuming import OffsetCommits, rewind


class _Consumer:
    def __init__(self, batches: dict[str, list[str]] | None = None, fail_commits: int = 0) -> None:
        self.batches = batches or {}
        self.commits = 0
        self.fail_commits = fail_commits
        self.seeks: list[tuple[TopicPartition, int]] = []
        self.revoked: set[TopicPartition] = set()

    async def commit(self) -> None:
        if self.fail_commits:
            self.fail_commits -= 1
            raise CommitFailedError("rebalance in progress")
        self.commits += 1

    async def getmany(self, *, timeout_ms: int, max_records: int | None) -> dict[str, list[str]]:
        return self.batches

    def seek(self, tp: TopicPartition, offset: int) -> None:
        if tp in self.revoked:
            raise IllegalStateError("No current assignment for partition")
        self.seeks.append((tp, offset))


def _record(partition: int, offset: int) -> ConsumerRecord[Any, Any]:
    return ConsumerRecord("t", partition, offset, 0, 0, None, b"", None, 0, 0, [])


class _Clock:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = 1000.0
        monkeypatch.setattr(consuming.time, "monotonic", lambda: self.now)


async def test_batches_within_the_interval_share_one_commit(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = _Clock(monkeypatch)
    commits, consumer = OffsetCommits(1.0, "g"), _Consumer()
    for _ in range(5):
        clock.now += 0.1
        await commits.processed(consumer)  # type: ignore[arg-type]
    assert consumer.commits == 0 and commits.pending
    clock.now += 0.6
    await commits.processed(consumer)  # type: ignore[arg-type]
    assert consumer.commits == 1 and not commits.pending


async def test_flush_commits_only_what_was_applied_since_the_last_commit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _Clock(monkeypatch)
    commits, consumer = OffsetCommits(1.0, "g"), _Consumer()
    await commits.flush(consumer)  # type: ignore[arg-type]
    assert consumer.commits == 0
    await commits.processed(consumer)  # type: ignore[arg-type]
    await commits.flush(consumer)  # type: ignore[arg-type]
    await commits.flush(consumer)  # type: ignore[arg-type]
    assert consumer.commits == 1


async def test_a_refused_commit_stays_pending_and_is_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    _Clock(monkeypatch)
    commits, consumer = OffsetCommits(1.0, "g"), _Consumer(fail_commits=1)
    await commits.processed(consumer)  # type: ignore[arg-type]
    await commits.flush(consumer)  # type: ignore[arg-type]
    assert consumer.commits == 0 and commits.pending
    await commits.flush(consumer)  # type: ignore[arg-type]
    assert consumer.commits == 1 and not commits.pending


async def test_zero_interval_commits_every_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    _Clock(monkeypatch)
    commits, consumer = OffsetCommits(0.0, "g"), _Consumer()
    for _ in range(3):
        await commits.processed(consumer)  # type: ignore[arg-type]
    assert consumer.commits == 3


class _Subscriber:
    batch_timeout_ms = 500
    max_records = 100


async def test_an_empty_poll_commits_what_is_pending_and_a_busy_one_does_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _Clock(monkeypatch)
    subscriber, commits = _Subscriber(), OffsetCommits(60.0, "g")
    consuming._commits_of[subscriber] = commits
    busy, idle = _Consumer({"p0": ["a"]}), _Consumer({})
    await commits.processed(busy)  # type: ignore[arg-type]
    assert await consuming._poll_batch(subscriber, busy) == ("a",)  # type: ignore[arg-type]
    assert busy.commits == 0 and commits.pending
    assert await consuming._poll_batch(subscriber, idle) == ()  # type: ignore[arg-type]
    assert idle.commits == 1 and not commits.pending


def test_rewind_moves_each_partition_back_to_its_earliest_record() -> None:
    consumer = _Consumer()
    rewind(consumer, [_record(0, 7), _record(1, 3), _record(0, 5), _record(1, 4)])  # type: ignore[arg-type]
    assert sorted(consumer.seeks) == [(TopicPartition("t", 0), 5), (TopicPartition("t", 1), 3)]


def test_rewind_skips_a_partition_revoked_meanwhile() -> None:
    consumer = _Consumer()
    consumer.revoked.add(TopicPartition("t", 1))
    rewind(consumer, [_record(0, 2), _record(1, 9)])  # type: ignore[arg-type]
    assert consumer.seeks == [(TopicPartition("t", 0), 2)]


async def test_held_commits_never_commit_again(monkeypatch: pytest.MonkeyPatch) -> None:
    _Clock(monkeypatch)
    commits, consumer = OffsetCommits(0.0, "g"), _Consumer()
    commits.hold()
    await commits.processed(consumer)  # type: ignore[arg-type]
    await commits.flush(consumer)  # type: ignore[arg-type]
    assert consumer.commits == 0
