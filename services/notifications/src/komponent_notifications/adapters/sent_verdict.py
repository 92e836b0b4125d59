"""Recording one accepted email in ONE statement: its ledger row marked sent and its EmailSent enqueued.

This runs inside the SMTP pool's final-dot gate (`adapters.smtp_pool`), where every round trip is time in
which no other connection may finish its message. The general path (`repository.mark_sent` plus
`komponent_runtime.outbox.enqueue_traced` in a transaction) takes five round trips (BEGIN, UPDATE, INSERT,
NOTIFY, COMMIT); one statement is atomic on its own (its implicit transaction) and takes one.

The outbox row's columns and values come from the runtime (`outbox.OUTBOX_COLUMNS`, `outbox.row_values`),
so it is stored exactly as `enqueue_traced` stores it (a test compares the two rows). Unlike `enqueue_traced`
it NOTIFYs the relay only when asked (`wake_relay`): a NOTIFY per email woke the relay per email (a SELECT, a
Kafka request and an UPDATE for one row each time), so the sender asks only with its round's last verdict.
`set_config('synchronous_commit', 'off', true)` is SET LOCAL for this statement's transaction: the commit
does not wait for the WAL flush (`service_layer.verdict_connection` covers what a PostgreSQL crash loses).
It writes only a pending row, so recording a verdict again after such a crash leaves one that survived alone.
"""

from __future__ import annotations

from typing import Any

from komponent_contracts import CloudEvent, Event
from komponent_runtime import outbox
from komponent_runtime.database import Connection

_RECORD_SENT = f"""
WITH sent AS (
    UPDATE send_ledger SET status = 'sent', sent_at = now(), outcomes = outcomes + 1,
        last_code = $2, last_reply = $3, claimed_until = NULL
    WHERE id = $1 AND status = 'pending'
    RETURNING id
), announced AS (
    INSERT INTO outbox ({outbox.OUTBOX_COLUMNS})
    SELECT $4, $5, $6, $7::jsonb, $8, $9, $10 FROM sent
    RETURNING id
)
SELECT set_config('synchronous_commit', 'off', true), CASE WHEN $12 THEN pg_notify($11, '') END
FROM announced
"""


async def record_sent(
    conn: Connection,
    ledger_id: int,
    code: int | None,
    reply: str,
    event: CloudEvent[Event],
    trace: dict[str, str],
    *,
    wake_relay: bool,
) -> bool:
    """Mark the ledger row sent and enqueue `event` (and NOTIFY the outbox relay at commit if
    `wake_relay`); False if there is no such pending row (nothing written)."""
    row: Any = await conn.fetchrow(
        _RECORD_SENT,
        ledger_id,
        code,
        reply,
        *outbox.row_values(event, trace),
        outbox.NOTIFY_CHANNEL,
        wake_relay,
    )
    return row is not None
