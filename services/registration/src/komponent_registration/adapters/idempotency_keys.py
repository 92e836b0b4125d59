"""asyncpg access to the `idempotency_keys` table (the HTTP intake's Idempotency-Key store).

`complete` writes the request's event to the outbox and stores the answer in ONE statement: atomic on its
own, so the intake's write needs no BEGIN and COMMIT around it (two round trips of a request's five).
`answer_first_call` does the same for a key not seen before, claiming it in that statement too.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import asyncpg
from komponent_contracts import CloudEvent, Event
from komponent_runtime import outbox
from komponent_runtime.database import Connection
from komponent_runtime.telemetry import current_trace_headers


async def claim(conn: Connection, scope: str, key: str, fingerprint: str, stale_after: timedelta) -> bool:
    """Insert the key `in_progress` (committed at once, so a concurrent call sees it); or take over a key
    left `in_progress` longer than `stale_after` by the same request. False: the key is someone else's.

    Committed without waiting for the WAL flush: a claim lost in a crash only makes the client's retry a
    first call, and `complete` (durable) flushes the log past this claim before anything is answered."""
    claimed = await conn.fetchval(
        "WITH claimed AS ("
        "  INSERT INTO idempotency_keys (scope, key, request_hash, status) VALUES ($1, $2, $3, 'in_progress')"
        "  ON CONFLICT (scope, key) DO UPDATE SET request_hash = EXCLUDED.request_hash, created_at = now()"
        "    WHERE idempotency_keys.status = 'in_progress'"
        "    AND idempotency_keys.created_at < now() - make_interval(secs => $4)"
        "    AND idempotency_keys.request_hash = EXCLUDED.request_hash"
        "  RETURNING true AS ok"
        ") SELECT ok, set_config('synchronous_commit', 'off', true) FROM claimed",
        scope,
        key,
        fingerprint,
        stale_after.total_seconds(),
    )
    return bool(claimed)


async def stored(conn: Connection, scope: str, key: str) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        "SELECT request_hash, status, response_status, response FROM idempotency_keys"
        " WHERE scope = $1 AND key = $2",
        scope,
        key,
    )
    return row


async def forget(conn: Connection, scope: str, key: str, *, only_in_progress: bool = False) -> None:
    await conn.execute(
        "DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2"
        + (" AND status = 'in_progress'" if only_in_progress else ""),
        scope,
        key,
    )


def _and_enqueue(key_write: str, first: int) -> str:
    """`key_write` and, only when it wrote the key's row, the event's outbox row and the relay's wake-up
    (at commit): one statement. The row's values and the channel are parameters `$first` onwards."""
    # In OUTBOX_COLUMNS order; the headers (fourth) arrive as JSON text.
    row = ", ".join(f"${first + i}" + ("::jsonb" if i == 3 else "") for i in range(7))
    channel = f"${first + 7}"
    return (
        f"WITH done AS ({key_write} RETURNING 1),"
        f" announced AS (INSERT INTO outbox ({outbox.OUTBOX_COLUMNS}) SELECT {row} FROM done RETURNING 1)"
        f" SELECT pg_notify({channel}, '') FROM announced"
    )


_COMPLETE_WITH_EVENT = _and_enqueue(
    "UPDATE idempotency_keys SET status = 'done', response_status = $3, response = $4::jsonb,"
    " completed_at = now() WHERE scope = $1 AND key = $2",
    first=5,
)

_FIRST_CALL = _and_enqueue(
    "INSERT INTO idempotency_keys (scope, key, request_hash, status, response_status, response, completed_at)"
    " VALUES ($1, $2, $3, 'done', $4, $5::jsonb, now()) ON CONFLICT (scope, key) DO NOTHING",
    first=6,
)

_COMPLETE = """
UPDATE idempotency_keys SET status = 'done', response_status = $3, response = $4::jsonb, completed_at = now()
WHERE scope = $1 AND key = $2 RETURNING 1
"""


async def complete(
    conn: Connection, scope: str, key: str, status: int, body: dict[str, Any], event: CloudEvent[Event] | None
) -> bool:
    """Store the answer for the key and, with it, enqueue `event` (in the current trace context). False if
    the key's row is gone (nothing written)."""
    if event is None:
        return await conn.fetchval(_COMPLETE, scope, key, status, json.dumps(body)) is not None
    row = await conn.fetchrow(
        _COMPLETE_WITH_EVENT,
        scope,
        key,
        status,
        json.dumps(body),
        *outbox.row_values(event, current_trace_headers()),
        outbox.NOTIFY_CHANNEL,
    )
    return row is not None


async def answer_first_call(
    conn: Connection,
    scope: str,
    key: str,
    fingerprint: str,
    status: int,
    body: dict[str, Any],
    event: CloudEvent[Event],
) -> bool:
    """A key not seen before: store it `done` with the answer and enqueue `event` (in the current trace
    context), in one statement. False if the key exists (nothing written; a concurrent first call with the
    key waits for this one's commit and then finds it)."""
    row = await conn.fetchrow(
        _FIRST_CALL,
        scope,
        key,
        fingerprint,
        status,
        json.dumps(body),
        *outbox.row_values(event, current_trace_headers()),
        outbox.NOTIFY_CHANNEL,
    )
    return row is not None
