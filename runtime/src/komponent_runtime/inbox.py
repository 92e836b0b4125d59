"""Consumer inbox: the record of which events a consumer has applied, keyed on the CloudEvents id.

Called inside the handler's transaction: the inbox row, the domain change and the outbox rows commit
together, so an event redelivered by Kafka (at-least-once) finds its row and changes nothing.

The record is kept `SERVICE_INBOX_KEEP_SECONDS` (30 days) and then forgotten (`prune`), so the table holds
recent traffic instead of every event ever applied. A repeat comes soon after the first delivery: from the
last committed offset after a crash or rebalance (seconds), or when an outbox relay publishes again the rows
it published but had not marked before it died (when it restarts). Thirty days is far beyond both. Reading
a topic again from further back than that (resetting a group's offsets) applies those events again: that is
a rebuild, and starts from an empty projection and inbox.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from uuid import UUID

import asyncpg

from komponent_runtime.database import Connection

log = logging.getLogger(__name__)


async def first_delivery(conn: Connection, consumer: str, event_id: UUID) -> bool:
    """Record the event as applied by `consumer`; False when it already was (a duplicate)."""
    inserted = await conn.fetchval(
        "INSERT INTO inbox (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING true",
        consumer,
        event_id,
    )
    return bool(inserted)


async def first_deliveries(conn: Connection, consumer: str, event_ids: Sequence[UUID]) -> set[UUID]:
    """Batch form: the ids among `event_ids` that this consumer had not applied before."""
    rows = await conn.fetch(
        "INSERT INTO inbox (consumer, event_id) SELECT $1, unnest($2::uuid[]) ON CONFLICT DO NOTHING RETURNING event_id",
        consumer,
        list(dict.fromkeys(event_ids)),
    )
    return {r["event_id"] for r in rows}


async def prune(pool: asyncpg.Pool, keep_seconds: float, *, batch: int = 10_000) -> int:
    """Forget the events applied more than `keep_seconds` ago, `batch` rows per statement (each its own
    short transaction, so consumers' inserts never wait behind one long delete); return how many.
    Replicas may prune at the same time: each skips the rows another is deleting."""
    forgotten = 0
    while True:
        async with pool.acquire() as conn:
            n: int = await conn.fetchval(
                "WITH gone AS (DELETE FROM inbox WHERE (event_id, consumer) IN (SELECT event_id, consumer"
                "   FROM inbox WHERE applied_at < now() - make_interval(secs => $1) LIMIT $2"
                "   FOR UPDATE SKIP LOCKED) RETURNING 1) SELECT count(*) FROM gone",
                keep_seconds,
                batch,
            )
        forgotten += n
        if n < batch:
            return forgotten


async def prune_forever(pool: asyncpg.Pool, keep_seconds: float, every_seconds: float) -> None:
    """`prune` every `every_seconds`, starting with the first period. PostgreSQL away is logged and tried
    again next period; anything else ends the loop for `serve`'s supervisor to log and restart."""
    while True:
        await asyncio.sleep(every_seconds)
        try:
            forgotten = await prune(pool, keep_seconds)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("inbox pruning failed; trying again later", extra={"error": type(exc).__name__})
            continue
        if forgotten:
            log.info("inbox pruned", extra={"forgotten": forgotten})
