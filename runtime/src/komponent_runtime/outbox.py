"""Transactional outbox: events are written in the domain transaction and published afterwards.

`enqueue` runs inside the caller's transaction, so an event exists exactly when the change that caused it
was committed. The relay publishes rows in id order with an idempotent producer and deletes them once
Kafka has acknowledged them: the table holds only what is still to be published. A relay killed after
publishing but before deleting publishes the row again; consumers drop the repeat by its `ce_id`. One
relay per database publishes at a time (an advisory lock), which keeps per-key order even when several
replicas run; the others wait as hot standbys.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Sequence
from typing import Protocol
from uuid import UUID

import asyncpg
from komponent_contracts import CloudEvent, Event
from opentelemetry import propagate, trace

from komponent_runtime.database import Connection, array_params, columns, holds_session_state, is_open
from komponent_runtime.settings import topic_name
from komponent_runtime.telemetry import current_trace_headers

log = logging.getLogger(__name__)
_tracer = trace.get_tracer("komponent_runtime.outbox")
NOTIFY_CHANNEL = "outbox"
_RELAY_LOCK = 7_146_202
# How long a round's rows may wait for the next round to delete them before they are deleted on their own.
DELETE_ALONE_AFTER_SECONDS = 0.05
# The relay vacuums the outbox after deleting this many rows. Each round's query walks the primary key from
# its lowest entry, over every deleted row's entry until a vacuum removes them; autovacuum looks at a table
# at most once a minute (autovacuum_naptime), and in a minute of load the walk grew from 0.3 to 0.9 ms per
# round. Vacuuming a table this small takes about a millisecond.
VACUUM_AFTER_DELETED_ROWS = 2000


async def enqueue(
    conn: Connection,
    events: Sequence[CloudEvent[Event]],
    *,
    trace_headers: dict[str, str] | None = None,
    topic: str | None = None,
) -> None:
    """Add events to the outbox inside the caller's transaction.

    The trace context stored with them is the current one unless `trace_headers` names another (a batch
    consumer passes each event's own). `topic` overrides the event family's topic (replays, tests).
    """
    if not events:
        return
    if trace_headers is None:
        trace_headers = current_trace_headers()
    await enqueue_traced(conn, [(e, trace_headers) for e in events], topic=topic)


_MENTIONS = "EXISTS (SELECT 1 FROM unnest($1::bytea[]) AS n(needle) WHERE position(n.needle IN value) > 0)"


async def unpublished_mentioning(conn: Connection, needles: Sequence[str]) -> int:
    """How many rows still in the outbox carry any of `needles` (e.g. registration ids) in their payload.

    Published rows are deleted, so these are the ones Kafka has not (or only just) acknowledged."""
    count: int = await conn.fetchval(
        f"SELECT count(*) FROM outbox WHERE {_MENTIONS}", [n.encode() for n in needles]
    )
    return count


# What an outbox row holds, in column order; `row_values` gives them for one event. A statement that
# writes outbox rows together with something else (see notifications' sent_verdict) uses both, so there
# is one definition of how an event is stored for the relay.
OUTBOX_COLUMNS = "event_id, topic, kafka_key, headers, value, traceparent, tracestate"
OutboxRow = tuple[UUID, str, bytes, str, bytes, str | None, str | None]


def row_values(event: CloudEvent[Event], trace: dict[str, str], topic: str | None = None) -> OutboxRow:
    return (
        event.id,
        topic or topic_name(event.topic),
        event.key,
        json.dumps(event.headers()),
        event.value(),
        trace.get("traceparent"),
        trace.get("tracestate"),
    )


async def enqueue_traced(
    conn: Connection,
    items: Sequence[tuple[CloudEvent[Event], dict[str, str]]],
    *,
    topic: str | None = None,
) -> None:
    """Like `enqueue`, but each event with its own trace context, in one round trip.

    A batch consumer's effects continue many traces at once (one per delivery); writing them with one
    statement instead of one per delivery keeps the batch transaction short."""
    if items:
        await insert_rows(conn, [row_values(e, trace, topic) for e, trace in items])


async def insert_rows(conn: Connection, rows: Sequence[OutboxRow]) -> None:
    """Rows as `row_values` gives them, and the relay's wake-up, in ONE statement: arrays in, rows inserted
    in the given order (ids are the relay's publishing order), then NOTIFY (delivered at commit)."""
    if not rows:
        return
    await conn.execute(
        f"WITH added AS ({insert_rows_statement(1)} RETURNING 1) SELECT pg_notify($8, '')",
        *columns(rows),
        NOTIFY_CHANNEL,
    )


def insert_rows_statement(first: int) -> str:
    """The INSERT of `insert_rows`, its seven array parameters (`database.columns` of the rows) numbered from `$first`: for
    a statement that writes outbox rows together with its own changes (a data-modifying CTE). Such a
    statement wakes the relay itself (`pg_notify(NOTIFY_CHANNEL, '')`)."""
    return (
        f"INSERT INTO outbox ({OUTBOX_COLUMNS}) SELECT e, t, k, h::jsonb, v, tp, ts"
        f" FROM unnest({array_params(first, _OUTBOX_TYPES)})"
        " WITH ORDINALITY AS r(e, t, k, h, v, tp, ts, n) ORDER BY n"
    )


_OUTBOX_TYPES = ("uuid", "text", "bytea", "text", "bytea", "text", "text")


class Publisher(Protocol):
    async def __call__(
        self, topic: str, key: bytes, value: bytes, headers: dict[str, str]
    ) -> asyncio.Future[object]:
        """Hand one record to the producer; the returned future resolves when the broker acknowledged it."""
        ...


class OutboxRelay:
    def __init__(
        self,
        pool: asyncpg.Pool,
        publish: Publisher,
        *,
        batch_size: int = 500,
        poll_seconds: float = 1.0,
    ) -> None:
        self._pool = pool
        self._publish = publish
        self._batch_size = batch_size
        self._poll_seconds = poll_seconds
        self._wake = asyncio.Event()
        # Published, not yet deleted: the next round's query deletes them (see `_publish_round`).
        self._published_ids: list[int] = []
        self._deleted_since_vacuum = 0
        self.published = 0

    async def run(self) -> None:
        """Publish forever: wake on NOTIFY, fall back to polling, back off while Kafka or PG is away."""
        backoff = 0.1
        while True:
            try:
                async with self._pool.acquire() as lock_conn:
                    await self._lead(lock_conn)
            except asyncio.CancelledError:
                raise
            except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("outbox relay interrupted, retrying", extra={"error": type(exc).__name__})
            except Exception:
                log.exception("outbox relay failed, retrying")
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)

    async def _lead(self, conn: Connection) -> None:
        # Session-level lock: held while this connection lives; released if the process dies.
        holds_session_state(conn)
        while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", _RELAY_LOCK):  # noqa: ASYNC110
            await asyncio.sleep(self._poll_seconds)  # another process holds the lead
        await conn.add_listener(NOTIFY_CHANNEL, self._on_notify)
        try:
            while True:
                if not is_open(conn):
                    # The lock went with its connection: another relay may lead by now. Publishing on
                    # would interleave with it (per-key order), so start over and wait for the lock.
                    raise ConnectionError("relay lock connection lost")
                self._wake.clear()
                full = await self._publish_round() == self._batch_size
                if self._deleted_since_vacuum >= VACUUM_AFTER_DELETED_ROWS:
                    await self.vacuum()
                if full:
                    continue  # more waiting: don't sleep
                # Under load the next wake-up comes within milliseconds and its round deletes these rows;
                # when none comes, they are deleted on their own.
                if self._published_ids and not await self._woken_within(DELETE_ALONE_AFTER_SECONDS):
                    await self._delete_published()
                if not self._wake.is_set():
                    await self._woken_within(self._poll_seconds)
        finally:
            with contextlib.suppress(Exception):
                await self._delete_published()  # else the next leader publishes them again (harmless)
            with contextlib.suppress(Exception):
                await conn.remove_listener(NOTIFY_CHANNEL, self._on_notify)
                await conn.execute("SELECT pg_advisory_unlock($1)", _RELAY_LOCK)

    async def _woken_within(self, seconds: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)
        return self._wake.is_set()

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    async def publish_pending(self) -> int:
        """Publish one batch of rows and delete them; return how many there were."""
        published = await self._publish_round()
        await self._delete_published()
        return published

    async def _publish_round(self) -> int:
        """Publish one batch of rows; return how many. The rows stay in the table until the next round's
        query or `_delete_published` deletes them.

        One statement per round: it deletes the previous round's rows and selects the next ones (skipping
        the rows it deletes, which its snapshot still shows). No transaction around it: only the holder of
        the relay lock publishes, so nothing competes for the rows, and a crash between publishing and
        deleting re-publishes them either way (consumers drop the repeats)."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                f"WITH gone AS ({_DELETE_PUBLISHED.format(ids='$2')})"
                " SELECT id, topic, kafka_key, headers, value, traceparent, tracestate FROM outbox"
                " WHERE id <> ALL($2::bigint[]) ORDER BY id LIMIT $1",
                self._batch_size,
                self._published_ids,
            )
            self._deleted_since_vacuum += len(self._published_ids)
            self._published_ids = []
            if not rows:
                return 0
            futures, spans = [], []
            for row in rows:
                headers = json.loads(row["headers"])
                # A PRODUCER span per record, child of the context stored with the row; its id travels in
                # the record's traceparent, so the consumer's span continues the same trace.
                stored = {k: row[k] for k in ("traceparent", "tracestate") if row[k]}
                span = _tracer.start_span(
                    f"{row['topic']} publish",
                    context=propagate.extract(stored),
                    kind=trace.SpanKind.PRODUCER,
                    attributes={
                        "messaging.system": "kafka",
                        "messaging.operation.type": "publish",
                        "messaging.destination.name": row["topic"],
                        "cloudevents.event_id": headers.get("ce_id", ""),
                        "cloudevents.event_type": headers.get("ce_type", ""),
                    },
                )
                spans.append(span)
                propagate.inject(headers, context=trace.set_span_in_context(span))
                futures.append(await self._publish(row["topic"], row["kafka_key"], row["value"], headers))
            try:
                await asyncio.gather(*futures)
            finally:
                for span in spans:
                    span.end()
        self._published_ids = [r["id"] for r in rows]
        self.published += len(rows)
        return len(rows)

    async def _delete_published(self) -> None:
        if not self._published_ids:
            return
        async with self._pool.acquire() as conn:
            await conn.execute(_DELETE_PUBLISHED.format(ids="$1"), self._published_ids)
        self._deleted_since_vacuum += len(self._published_ids)
        self._published_ids = []

    async def vacuum(self) -> None:
        """Remove the deleted rows' entries (see VACUUM_AFTER_DELETED_ROWS). SKIP_LOCKED: never waits for
        another vacuum of the table; a role that does not own the table only gets a warning."""
        async with self._pool.acquire() as conn:
            await conn.execute("VACUUM (SKIP_LOCKED) outbox")
        self._deleted_since_vacuum = 0


# Deleting published rows is not worth a WAL flush: if a crash loses the delete, the rows are published
# again and consumers drop the repeats by id, so the relay's next round need not wait for the disk. The
# setting is made in the filter, so it is made whenever a row is deleted, even when the statement selects no
# new rows (a CTE that nothing reads would never run). SET LOCAL: it ends with the statement's transaction.
_DELETE_PUBLISHED = (
    "DELETE FROM outbox WHERE id = ANY({ids}::bigint[])"
    " AND set_config('synchronous_commit', 'off', true) IS NOT NULL"
)


async def backlog(conn: Connection) -> tuple[int, float]:
    """Rows waiting to be published and the age in seconds of the oldest one (for metrics and readiness).

    A round's rows stay until the next round deletes them (at most `DELETE_ALONE_AFTER_SECONDS` when the
    relay falls idle), so a few just-published rows may count too."""
    row = await conn.fetchrow(
        "SELECT count(*) AS n, coalesce(extract(epoch FROM now() - min(created_at)), 0) AS age FROM outbox"
    )
    assert row is not None
    return int(row["n"]), float(row["age"])
