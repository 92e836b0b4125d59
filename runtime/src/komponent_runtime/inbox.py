"""Consumer inbox: the record of which events a consumer has applied, keyed on the CloudEvents id.

Called inside the handler's transaction: the inbox row, the domain change and the outbox rows commit
together, so an event redelivered by Kafka (at-least-once) finds its row and changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from komponent_runtime.database import Connection


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
