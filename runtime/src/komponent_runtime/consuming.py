"""Consuming events exactly once in effect, with bounded retries and a dead-letter topic.

For each record: parse the CloudEvent (a malformed one goes to `<topic>.dlq` with the reason, and the
partition moves on); then, in ONE database transaction, record it in the inbox and run the handler, which
changes domain state and writes outgoing events to the outbox. The offset is committed only after that
transaction (FastStream's default would commit first and lose the message on a crash), and lazily: at most
once per `commit_interval_ms` and whenever the consumer goes idle (see `OffsetCommits`).

Errors: infrastructure that is away (PostgreSQL, network) is retried with capped backoff and, when it stays
away, the record is handed back to Kafka (not committed) to be tried again; any other failure is tried a
few times and then dead-lettered with the error, so one bad record never blocks its partition.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import chain
from typing import Any, Generic, TypeVar
from uuid import UUID

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import IllegalStateError, KafkaError
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.subscriber.usecase import BatchSubscriber
from faststream.message import StreamMessage
from komponent_contracts import EVENT_TYPES, CloudEvent, Event, InvalidEvent, parse
from komponent_contracts.topics import dead_letter_topic
from opentelemetry import propagate, trace

from komponent_runtime import inbox, kafka_fetching, metrics
from komponent_runtime.database import Connection
from komponent_runtime.telemetry import continuing_trace
from komponent_runtime.transient import TRANSIENT_ERRORS

log = logging.getLogger(__name__)
tracer = trace.get_tracer("komponent_runtime.consuming")


class PermanentError(Exception):
    """Raised by a handler for an event that can never be applied: it goes to the dead-letter topic."""


@dataclass(frozen=True)
class Delivery:
    """One event as delivered, with where it came from and the trace context its effects continue."""

    event: CloudEvent[Event]
    topic: str
    partition: int
    offset: int
    trace_headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Connection, Delivery], Awaitable[None]]
BatchHandler = Callable[[Connection, Sequence[Delivery]], Awaitable[None]]
Prepared = TypeVar("Prepared")


@dataclass(frozen=True)
class PreparedBatchHandler(Generic[Prepared]):
    """A batch handler in two steps. `prepare` turns one delivery into what `apply` needs without touching
    the database, so for a batch of `OVERLAP_FROM` or more the consumer runs it while the batch's inbox
    insert is in flight: PostgreSQL records the batch while Python decodes it, instead of in turn. `apply`
    gets the prepared first deliveries, in partition order. (For handlers whose per-delivery decoding is a
    large part of their work.)"""

    prepare: Callable[[Delivery], Prepared]
    apply: Callable[[Connection, Sequence[Prepared]], Awaitable[None]]


AnyBatchHandler = BatchHandler | PreparedBatchHandler[Any]


@dataclass
class RetryPolicy:
    transient_attempts: int = 8
    other_attempts: int = 3
    first_backoff: float = 0.1
    max_backoff: float = 5.0

    def backoff(self, attempt: int) -> float:
        return min(self.first_backoff * 2.0 ** (attempt - 1), self.max_backoff)


class DeadLetters:
    """Publishes a record that can't be processed to `<topic>.dlq` with headers saying why."""

    def __init__(self, broker: KafkaBroker, consumer_group: str) -> None:
        self._broker = broker
        self._group = consumer_group
        self.count = 0

    async def send(self, record: ConsumerRecord, reason: str, detail: str) -> None:
        headers = {name: raw.decode(errors="replace") for name, raw in record.headers or ()}
        headers.update(
            {
                "dlq_reason": reason,
                "dlq_detail": detail[:2000],
                "dlq_source_topic": record.topic,
                "dlq_source_partition": str(record.partition),
                "dlq_source_offset": str(record.offset),
                "dlq_consumer_group": self._group,
                "dlq_failed_at": datetime.now(UTC).isoformat(),
            }
        )
        await self._broker.publish(
            record.value or b"", dead_letter_topic(record.topic), key=record.key, headers=headers
        )
        self.count += 1
        metrics.dead_letters.add(1, {"group": self._group, "reason": reason})
        log.warning(
            "record dead-lettered",
            extra={
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
                "reason": reason,
            },
        )


def _record_headers(record: ConsumerRecord) -> dict[str, str]:
    return {name: raw.decode(errors="replace") for name, raw in record.headers or ()}


class EventConsumer:
    """Wires one handler (single events) or batch handler to a topic under the group `<service>.<purpose>`."""

    def __init__(
        self,
        broker: KafkaBroker,
        pool: asyncpg.Pool,
        *,
        service: str,
        purpose: str,
        topic: str,
        event_types: set[str] | None = None,
        retry: RetryPolicy | None = None,
        group_prefix: str = "",
        fetch_max_wait_ms: int = 500,
        fetch_min_bytes: int = 1,
        commit_interval_ms: int = 1000,
    ) -> None:
        self.broker = broker
        self.pool = pool
        self.group = f"{group_prefix}{service}.{purpose}"
        self.topic = topic
        self.event_types = event_types
        self.retry = retry or RetryPolicy()
        self.fetch_max_wait_ms = fetch_max_wait_ms
        self.fetch_min_bytes = fetch_min_bytes
        self.commits = OffsetCommits(commit_interval_ms / 1000, self.group)
        self.dead_letters = DeadLetters(broker, self.group)
        self.applied = 0
        self.duplicates = 0

    def _count_applied(self, n: int) -> None:
        self.applied += n
        metrics.events_applied.add(n, {"group": self.group})

    def _count_duplicates(self, n: int) -> None:
        if n:
            self.duplicates += n
            metrics.events_duplicate.add(n, {"group": self.group})

    # -- wiring -----------------------------------------------------------------------------------------

    def handle_each(self, handler: Handler, *, max_records: int = 500, idle_poll_ms: int = 500) -> None:
        """Events one at a time in partition order, each with its own span and trace context, but fetched
        in batches and applied in ONE transaction per fetch (offsets are committed lazily, see
        OffsetCommits): a PostgreSQL commit per event costs more than most handlers do. `max_records`
        covers what a fetch brings at moderate load, so a busy partition is not left with a remainder.
        An event that keeps failing is found by replaying the fetch one event per transaction (see
        `_process_batch`), so only it is dead-lettered.
        """

        async def apply_in_order(conn: Connection, deliveries: Sequence[Delivery]) -> None:
            for delivery in deliveries:
                # The handler's outbox rows continue this event's trace, not the batch's.
                with continuing_trace(delivery.trace_headers):
                    await handler(conn, delivery)

        self.handle_batches(apply_in_order, max_records=max_records, idle_poll_ms=idle_poll_ms)

    def handle_batches(
        self, handler: AnyBatchHandler, *, max_records: int = 500, idle_poll_ms: int = 500
    ) -> None:
        """Each fetch is handed over as soon as it arrives (whatever its size up to `max_records`); an idle
        consumer waits in one long poll of `idle_poll_ms` (see `_poll_batch`)."""

        subscriber = self.broker.subscriber(
            self.topic,
            group_id=self.group,
            auto_offset_reset="earliest",
            # Offsets are ours to commit (OffsetCommits): after the batch's transaction, lazily.
            ack_policy=AckPolicy.MANUAL,
            batch=True,
            max_records=max_records,
            batch_timeout_ms=idle_poll_ms,
            fetch_max_wait_ms=self.fetch_max_wait_ms,
            fetch_min_bytes=self.fetch_min_bytes,
            decoder=_raw_body,
        )
        _commits_of[subscriber] = self.commits

        @subscriber
        async def consume(records: tuple[ConsumerRecord, ...]) -> None:
            consumer = subscriber.consumer
            try:
                await self._process_batch(list(records), handler)
            except BaseException:
                # Not applied (infrastructure away for good, or shutting down): fetch it again. Whatever
                # rewinding runs into must not replace the error (or the cancellation) being raised.
                if consumer is not None:
                    try:
                        rewind(consumer, records)
                    except Exception:
                        # The position is past a batch that was not applied: never commit again in this
                        # process, so a restart replays from the last commit (the inbox drops repeats).
                        self.commits.hold()
                        log.exception(
                            "could not rewind a failed batch; offsets held", extra={"group": self.group}
                        )
                raise
            if consumer is not None:
                await self.commits.processed(consumer)

    # -- processing -------------------------------------------------------------------------------------

    def _for_others(self, record: ConsumerRecord) -> bool:
        """The record names a known event type this consumer does not handle: skip it unparsed. A family
        topic carries many types; parsing (and validating) each only to drop it was most of what some
        consumers did. Its own consumers judge it; an unknown or unreadable type is still parsed here and
        dead-lettered with the reason."""
        if self.event_types is None:
            return False
        named = None
        for name, raw in record.headers or ():
            if name == "ce_type":
                named = raw  # the last one counts, as in `parse`
        if named is None:
            return False
        try:
            ce_type = named.decode()
        except UnicodeDecodeError:
            return False
        return ce_type in EVENT_TYPES and ce_type not in self.event_types

    async def _parse(self, record: ConsumerRecord) -> CloudEvent[Event] | None:
        if self._for_others(record):
            return None
        try:
            event = parse(record.headers or (), record.value)
        except InvalidEvent as exc:
            await self.dead_letters.send(record, exc.reason, exc.detail)
            return None
        if self.event_types is not None and event.type not in self.event_types:
            return None  # a family topic carries other types; this consumer has no business with them
        return event

    async def _process_batch(self, records: list[ConsumerRecord], handler: AnyBatchHandler) -> None:
        deliveries: list[Delivery] = []
        # Each delivery with its own record: records dead-lettered at parse or of other types have no
        # delivery, so the two lists do not line up by position.
        delivered_records: list[ConsumerRecord] = []
        spans = []
        for record in records:
            event = await self._parse(record)
            if event is None:
                continue
            # A batch has no single parent: each event gets its own span continuing its own trace.
            span = tracer.start_span(
                f"{record.topic} process",
                context=propagate.extract(_record_headers(record)),
                kind=trace.SpanKind.CONSUMER,
                attributes={
                    "messaging.system": "kafka",
                    "messaging.operation.type": "process",
                    "messaging.destination.name": record.topic,
                    "messaging.destination.partition.id": str(record.partition),
                    "messaging.kafka.offset": record.offset,
                    "messaging.consumer.group.name": self.group,
                    "cloudevents.event_id": str(event.id),
                    "cloudevents.event_type": event.type,
                },
            )
            spans.append(span)
            carrier: dict[str, str] = {}
            propagate.inject(carrier, context=trace.set_span_in_context(span))
            deliveries.append(Delivery(event, record.topic, record.partition, record.offset, carrier))
            delivered_records.append(record)
        if not deliveries:
            return

        async def apply() -> None:
            async with self.pool.acquire() as conn, conn.transaction():
                applied = await apply_first_deliveries(conn, self.group, deliveries, handler)
                self._count_duplicates(len(deliveries) - applied)
                self._count_applied(applied)

        try:
            await self._with_retries(apply, delivered_records, isolate=True)
        except _IsolateBatch:
            # Something in the batch keeps failing: apply one by one so only the culprit is dead-lettered.
            for delivery, record in zip(deliveries, delivered_records, strict=True):
                await self._apply_single_of_batch(delivery, record, handler)
        finally:
            for span in spans:
                span.end()

    async def _apply_single_of_batch(
        self, delivery: Delivery, record: ConsumerRecord, handler: AnyBatchHandler
    ) -> None:
        async def apply() -> None:
            async with self.pool.acquire() as conn, conn.transaction():
                if not await inbox.first_delivery(conn, self.group, delivery.event.id):
                    self._count_duplicates(1)
                    return
                if isinstance(handler, PreparedBatchHandler):
                    await handler.apply(conn, [handler.prepare(delivery)])
                else:
                    await handler(conn, [delivery])
                self._count_applied(1)

        await self._with_retries(apply, [record])

    async def _with_retries(
        self, apply: Callable[[], Awaitable[None]], records: list[ConsumerRecord], *, isolate: bool = False
    ) -> None:
        transient = other = 0
        while True:
            try:
                await apply()
                return
            except asyncio.CancelledError:
                raise
            except PermanentError as exc:
                if isolate and len(records) > 1:
                    raise _IsolateBatch from exc
                await self.dead_letters.send(records[0], "rejected_by_handler", str(exc))
                return
            except TRANSIENT_ERRORS as exc:
                transient += 1
                if transient >= self.retry.transient_attempts:
                    log.error(
                        "infrastructure still away; handing the record back to Kafka",
                        extra={"group": self.group},
                    )
                    raise
                log.warning(
                    "transient error, retrying", extra={"group": self.group, "error": type(exc).__name__}
                )
                await asyncio.sleep(self.retry.backoff(transient))
            except Exception as exc:
                other += 1
                if other >= self.retry.other_attempts:
                    if isolate and len(records) > 1:
                        raise _IsolateBatch from exc
                    log.exception("handler failed; dead-lettering", extra={"group": self.group})
                    await self.dead_letters.send(records[0], "handler_error", f"{type(exc).__name__}: {exc}")
                    return
                await asyncio.sleep(self.retry.backoff(other))


# From this many deliveries a PreparedBatchHandler's decoding runs beside the inbox insert; below, the task
# and the extra turns of the event loop that takes cost more than the overlap saves.
OVERLAP_FROM = 64


async def apply_first_deliveries(
    conn: Connection, group: str, deliveries: Sequence[Delivery], handler: AnyBatchHandler
) -> int:
    """Inside the caller's transaction: record the batch in the inbox and hand the handler the events this
    group sees for the first time; return how many that was. (The batch consumer's core, public so the
    allocation benchmark measures exactly this step.)"""
    event_ids = [d.event.id for d in deliveries]
    if isinstance(handler, PreparedBatchHandler) and len(deliveries) < OVERLAP_FROM:
        fresh_ids = await inbox.first_deliveries(conn, group, event_ids)
        prepared = [handler.prepare(d) for d in deliveries]
    elif isinstance(handler, PreparedBatchHandler):
        recording = asyncio.ensure_future(inbox.first_deliveries(conn, group, event_ids))
        await asyncio.sleep(0)  # the task sends the insert; PostgreSQL works on it from here
        try:
            prepared = [handler.prepare(d) for d in deliveries]
        except BaseException:
            # The connection must be idle before the caller rolls back.
            await asyncio.gather(recording, return_exceptions=True)
            raise
        fresh_ids = await recording
    else:
        fresh_ids = await inbox.first_deliveries(conn, group, event_ids)
        prepared = list(deliveries)
    # The same event twice within one batch: keep the first, in its own place (the order of first
    # deliveries is the partition order a batch handler relies on).
    seen: set[UUID] = set()
    unique = []
    for event_id, item in zip(event_ids, prepared, strict=True):
        if event_id in fresh_ids and event_id not in seen:
            seen.add(event_id)
            unique.append(item)
    if unique:
        if isinstance(handler, PreparedBatchHandler):
            await handler.apply(conn, unique)
        else:
            await handler(conn, unique)
    return len(unique)


async def _raw_body(message: StreamMessage[Any]) -> Any:
    """Hand the handler aiokafka's record(s) as they came: no JSON decoding by FastStream (records are
    parsed, and dead-lettered, by `parse` above) and no dependency injection (the broker is built with
    `apply_types=False`), which would cost a thread hop per message."""
    return message.raw_message


class _IsolateBatch(Exception):
    pass


class OffsetCommits:
    """Commits a consumer's position at most once per `interval` seconds, and when it goes idle.

    Committing after every fetched batch cost a round trip to the broker per batch in every consumer (and
    held the next fetch back while it waited), which at moderate load is a batch per event. Committing
    later is safe because the inbox, not the offset, decides what was applied: after a crash or a
    rebalance the records since the last commit are delivered again and dropped as duplicates. A commit
    covers only batches already applied: the consumer's position moves past a batch when it is handed
    out, and the next batch is fetched only after this one's transaction committed."""

    def __init__(self, interval: float, group: str) -> None:
        self.interval = interval
        self.group = group
        self.pending = False
        self.held = False
        self._last = time.monotonic()

    def hold(self) -> None:
        """Never commit again (the position can no longer be trusted to cover only applied batches)."""
        self.held = True

    async def processed(self, consumer: AIOKafkaConsumer) -> None:
        """A batch was applied; commit if the last commit is `interval` old."""
        self.pending = True
        if time.monotonic() - self._last >= self.interval:
            await self.flush(consumer)

    async def flush(self, consumer: AIOKafkaConsumer) -> None:
        """Commit the position now if anything was applied since the last commit."""
        if not self.pending or self.held:
            return
        self.pending = False
        self._last = time.monotonic()
        try:
            await consumer.commit()
        except KafkaError as exc:
            # E.g. a rebalance in progress: the records are applied and will be committed by the next
            # flush, or replayed to whoever owns the partition now and dropped by its inbox.
            self.pending = True
            log.info("offset commit deferred", extra={"group": self.group, "error": type(exc).__name__})


def rewind(consumer: AIOKafkaConsumer, records: Sequence[ConsumerRecord]) -> None:
    """Move each partition of `records` back to its earliest record, so the batch is fetched again and no
    later commit passes it."""
    earliest: dict[TopicPartition, int] = {}
    for record in records:
        tp = TopicPartition(record.topic, record.partition)
        earliest[tp] = min(record.offset, earliest.get(tp, record.offset))
    for tp, offset in earliest.items():
        with contextlib.suppress(IllegalStateError):  # the partition was revoked meanwhile
            consumer.seek(tp, offset)


# Each batch subscriber's OffsetCommits, so the poll can flush them when the consumer goes idle.
_commits_of: weakref.WeakKeyDictionary[Any, OffsetCommits] = weakref.WeakKeyDictionary()


async def _poll_batch(self: BatchSubscriber, consumer: Any) -> tuple[ConsumerRecord, ...]:
    """FastStream's batch subscriber (0.7) sleeps `batch_timeout_ms` after every empty poll, on top of the
    poll's own wait. With a short timeout an idle consumer spins (poll + sleep a hundred times a second, in
    every service: most of the platform's idle CPU); with a long one a record arriving during the sleep
    waits it out. aiokafka's `getmany` already returns the moment records arrive, so one long poll and no
    sleep is both cheap when idle and prompt when not. An empty poll means the consumer went idle: what it
    applied since its last offset commit is committed then (see OffsetCommits)."""
    batches = await consumer.getmany(timeout_ms=self.batch_timeout_ms, max_records=self.max_records)
    if not batches and (commits := _commits_of.get(self)) is not None:
        await commits.flush(consumer)
    return tuple(chain.from_iterable(batches.values()))


BatchSubscriber.get_msg = _poll_batch  # type: ignore[method-assign]
kafka_fetching.install()
