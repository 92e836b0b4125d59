"""The sender's own database connection, and the accepted emails it remembers until their verdicts are on disk.

An accepted verdict is committed without waiting for the WAL flush (`adapters.sent_verdict`, inside the
final-dot gate, where a flush per email was the sender's slowest step). A PostgreSQL crash can therefore lose
the verdicts of the last moment. Their rows stay claimed, and once the lease ran out they were sent again: a
duplicate the participant sees, although this process saw the SMTP server accept each message.

So the sender claims and records accepted verdicts on one connection it keeps, and remembers every accepted
verdict until a later commit on that connection waited for the flush. The claim is that commit when it claims
rows: it runs with the server's `synchronous_commit = on`, and a commit that changed nothing writes no WAL
and flushes nothing. PostgreSQL flushes WAL in order, so the flush covers every earlier commit of the session.

If the connection is lost first, the next one begins by recording the remembered verdicts again. A crash
ends every session, and so does anything else that cost us the connection. A verdict that survived finds
its row no longer pending and is left alone. A lost one is written again with the same EmailSent event, so
a consumer that already saw the event drops the repeat. A verdict whose statement failed (PostgreSQL went
away between the SMTP server's 250 and the record) is remembered the same way.

Not covered: this process dying between the SMTP server's 250 and the record. The final-dot gate keeps that
to one message at a time, sent again after the lease and counted as a possible duplicate.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from komponent_contracts import CloudEvent, Event
from komponent_runtime.database import Connection, is_open

from ..adapters import sent_verdict

log = logging.getLogger(__name__)
RECORDED_AGAIN = "accepted verdicts recorded again on a new connection"


@dataclass
class AcceptedVerdict:
    """What recording one accepted email writes, kept so it can be written again."""

    ledger_id: int
    code: int | None
    reply: str
    event: CloudEvent[Event]
    trace: dict[str, str]
    kind: str
    recorded: bool = field(default=False)  # a statement of ours wrote it (counted in the sender's figures)


class VerdictConnection:
    """One pooled connection held across rounds, and the accepted verdicts not yet known to be flushed."""

    def __init__(self, pool: asyncpg.Pool, on_recorded: Callable[[AcceptedVerdict], None]) -> None:
        self._pool = pool
        self._on_recorded = on_recorded
        self._conn: Any = None
        self._unflushed: dict[int, AcceptedVerdict] = {}

    @property
    def unflushed(self) -> int:
        return len(self._unflushed)

    async def current(self) -> Connection:
        """The held connection; a new one if it was lost, after recording the remembered verdicts on it."""
        if not is_open(self._conn):
            await self.drop()
            self._conn = await self._pool.acquire()
            try:
                await self._record_again(self._conn)
            except BaseException:
                await self.drop()
                raise
        conn: Connection = self._conn
        return conn

    def remember(self, verdict: AcceptedVerdict) -> None:
        """Before its statement is sent: from here on the verdict outlives a failure of that statement."""
        self._unflushed[verdict.ledger_id] = verdict

    def flushed(self) -> None:
        """A commit on the held connection waited for the WAL flush: every verdict recorded before is safe."""
        self._unflushed.clear()

    async def drop(self) -> None:
        """Give the connection back (after an error it may be broken or mid-statement); the next `current()`
        takes another and records the remembered verdicts again (a verdict that survived is left alone)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await self._pool.release(conn)

    async def _record_again(self, conn: Connection) -> None:
        remembered = list(self._unflushed.values())
        written = 0
        for i, verdict in enumerate(remembered):
            wrote = await sent_verdict.record_sent(
                conn,
                verdict.ledger_id,
                verdict.code,
                verdict.reply,
                verdict.event,
                verdict.trace,
                wake_relay=i == len(remembered) - 1,
            )
            if wrote:
                written += 1
            if wrote and not verdict.recorded:
                verdict.recorded = True
                self._on_recorded(verdict)
        if remembered:
            # `written`: verdicts PostgreSQL had lost (or never got), each an email not sent twice.
            log.warning(RECORDED_AGAIN, extra={"remembered": len(remembered), "written": written})
