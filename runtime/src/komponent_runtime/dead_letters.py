"""Operator's tool for dead-letter topics: list, inspect and replay records after a fix.

    python -m komponent_runtime.dead_letters list   [--topic T.dlq]
    python -m komponent_runtime.dead_letters show   --topic T.dlq --partition P --offset O
    python -m komponent_runtime.dead_letters replay --topic T.dlq [--partition P --offset O]

`replay` republishes each record to the topic it came from, with its original key and headers (the
`dlq_*` ones removed), so it keeps its `ce_id`: a consumer that already applied it drops it. Progress is
committed in the consumer group `dead-letters.replay`, so replaying again does not resend what was
replayed before. `list` shows ids and reasons only; `show` prints the payload (may hold personal data).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from komponent_runtime.broker import client_options
from komponent_runtime.settings import KafkaSettings

REPLAY_GROUP = "dead-letters.replay"


def _opts(bootstrap: str) -> dict[str, Any]:
    """Client options with the deployment's security settings (SASL/TLS) for this bootstrap address."""
    settings = KafkaSettings()
    settings.bootstrap_servers = bootstrap
    return client_options(settings)


@dataclass(frozen=True)
class DeadLetter:
    topic: str
    partition: int
    offset: int
    headers: dict[str, str]
    key: bytes | None
    value: bytes | None

    @classmethod
    def of(cls, record: ConsumerRecord) -> DeadLetter:
        headers = {k: v.decode(errors="replace") for k, v in record.headers or ()}
        return cls(record.topic, record.partition, record.offset, headers, record.key, record.value)

    def summary(self) -> dict[str, object]:
        h = self.headers
        return {
            "dlq": f"{self.topic}/{self.partition}@{self.offset}",
            "reason": h.get("dlq_reason"),
            "detail": h.get("dlq_detail"),
            "ce_type": h.get("ce_type"),
            "ce_id": h.get("ce_id"),
            "source": f"{h.get('dlq_source_topic')}/{h.get('dlq_source_partition')}@{h.get('dlq_source_offset')}",
            "consumer_group": h.get("dlq_consumer_group"),
            "failed_at": h.get("dlq_failed_at"),
        }

    def original_headers(self) -> list[tuple[str, bytes]]:
        return [(k, v.encode()) for k, v in self.headers.items() if not k.startswith("dlq_")]


async def dead_letter_topics(bootstrap: str) -> list[str]:
    admin = AIOKafkaAdminClient(**_opts(bootstrap))
    await admin.start()
    try:
        return sorted(t for t in await admin.list_topics() if t.endswith(".dlq"))
    finally:
        await admin.close()


async def _partitions(bootstrap: str, topic: str) -> list[int]:
    admin = AIOKafkaAdminClient(**_opts(bootstrap))
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
        return sorted(p["partition"] for d in described for p in d["partitions"])
    finally:
        await admin.close()


async def read_all(bootstrap: str, topic: str, *, group: str | None = None) -> list[DeadLetter]:
    """Every record from the group's committed position (or the beginning) to the current end."""
    consumer = AIOKafkaConsumer(
        **_opts(bootstrap), group_id=group, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in await _partitions(bootstrap, topic)]
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        for tp in partitions:
            committed = await consumer.committed(tp) if group else None
            if committed is None:
                await consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, committed)
        letters: list[DeadLetter] = []
        remaining = {tp for tp in partitions if await consumer.position(tp) < ends[tp]}
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=1000)
            for tp, records in batch.items():
                letters += [DeadLetter.of(r) for r in records]
                if records and records[-1].offset + 1 >= ends[tp]:
                    remaining.discard(tp)
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
        return letters
    finally:
        await consumer.stop()


async def replay(bootstrap: str, topic: str, *, only: tuple[int, int] | None = None) -> list[DeadLetter]:
    """Republish not-yet-replayed records of `topic` (or just one) to their source; return what was sent."""
    letters = await read_all(bootstrap, topic, group=REPLAY_GROUP)
    if only is not None:
        letters = [d for d in letters if (d.partition, d.offset) == only]
    producer = AIOKafkaProducer(**_opts(bootstrap), acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for letter in letters:
            source = letter.headers.get("dlq_source_topic") or topic.removesuffix(".dlq")
            await producer.send_and_wait(
                source, letter.value, key=letter.key, headers=letter.original_headers()
            )
    finally:
        await producer.stop()
    if letters and only is None:
        await _commit_replayed(bootstrap, letters)
    return letters


async def _commit_replayed(bootstrap: str, letters: list[DeadLetter]) -> None:
    consumer = AIOKafkaConsumer(**_opts(bootstrap), group_id=REPLAY_GROUP, enable_auto_commit=False)
    await consumer.start()
    try:
        last: dict[TopicPartition, int] = {}
        for d in letters:
            tp = TopicPartition(d.topic, d.partition)
            last[tp] = max(last.get(tp, -1), d.offset)
        consumer.assign(list(last))
        await consumer.commit({tp: offset + 1 for tp, offset in last.items()})
    finally:
        await consumer.stop()


async def _main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m komponent_runtime.dead_letters", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    listing = sub.add_parser("list", help="dead letters with their reasons (no payloads)")
    listing.add_argument("--topic")
    show = sub.add_parser("show", help="one dead letter with headers and payload")
    replaying = sub.add_parser("replay", help="republish to the source topic after a fix")
    for p in (show, replaying):
        p.add_argument("--topic", required=True)
        p.add_argument("--partition", type=int)
        p.add_argument("--offset", type=int)
    args = parser.parse_args(argv)
    bootstrap = KafkaSettings().bootstrap_servers

    if args.command == "list":
        for topic in [args.topic] if args.topic else await dead_letter_topics(bootstrap):
            for letter in await read_all(bootstrap, topic):
                print(json.dumps(letter.summary(), ensure_ascii=False))
        return 0
    if args.command == "show":
        for letter in await read_all(bootstrap, args.topic):
            if (letter.partition, letter.offset) == (args.partition, args.offset):
                print(
                    json.dumps(
                        {
                            **letter.summary(),
                            "headers": letter.headers,
                            "value": (letter.value or b"").decode(errors="replace"),
                        },
                        indent=2,
                        ensure_ascii=False,
                    )
                )
                return 0
        print("no such dead letter", file=sys.stderr)
        return 1
    only = (args.partition, args.offset) if args.offset is not None else None
    sent = await replay(bootstrap, args.topic, only=only)
    print(f"replayed {len(sent)} record(s) from {args.topic}")
    return 0


def main() -> None:
    sys.exit(asyncio.run(_main(sys.argv[1:])))


if __name__ == "__main__":
    main()
