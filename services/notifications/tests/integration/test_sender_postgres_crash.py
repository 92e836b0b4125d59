"""The sender when PostgreSQL loses accepted verdicts (real PostgreSQL, real SMTP server): it records them
again instead of sending the emails again.

An accepted verdict is committed without waiting for the WAL flush, so a PostgreSQL crash can lose it: the
row is left as its claim left it (pending, one attempt, no outcome, leased) and the verdict's EmailSent is
gone from the outbox, while every session ends. The first test leaves the database in exactly that state by
hand, so the loss happens every time; the second ends every session between the SMTP server's 250 and the
verdict's statement. The fault suite kills PostgreSQL itself under load.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from komponent_contracts import events as ev
from komponent_contracts.examples import course
from komponent_notifications.adapters import repository as repo
from komponent_notifications.adapters.mime import ComposedEmail
from komponent_notifications.adapters.smtp_pool import RecordVerdict, SendResult, SmtpPool
from komponent_notifications.app import MIGRATIONS, build_sender
from komponent_notifications.service_layer.planning import PlannedEmail
from komponent_notifications.service_layer.sender import EmailSender
from komponent_notifications.settings import NotificationSettings
from komponent_runtime.clock import SystemClock
from komponent_runtime.database import migrate
from komponent_runtime.settings import DatabaseSettings
from komponent_runtime.testing import wait_until

from .conftest import MailSink
from .test_sender_final_dot import NoDocuments, confirmations

pytestmark = pytest.mark.infra

LEASE_SECONDS = 1.0


@contextlib.asynccontextmanager
async def closing(sender: EmailSender) -> AsyncIterator[EmailSender]:
    """The sender's own connection goes back to the pool however the test ends (or the pool never closes)."""
    try:
        yield sender
    finally:
        await sender.close()


def settings_for(sink: MailSink) -> NotificationSettings:
    return NotificationSettings(
        smtp_host="127.0.0.1",
        smtp_port=sink.port,
        notify_lease_seconds=LEASE_SECONDS,
        notify_poll_seconds=0.1,
        notify_retry_base_seconds=0.1,
        smtp_pool_size=1,
    )


async def end_every_other_session(conn: asyncpg.Connection) -> None:
    """What a PostgreSQL crash does to the sender's connections (and everyone else's)."""
    await conn.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )


async def ledger_of(pool: asyncpg.Pool, settings: NotificationSettings, planned: list[PlannedEmail]) -> None:
    """The notifications schema, the sample course and `planned` in the send ledger."""
    async with pool.acquire() as conn:
        await migrate(conn, MIGRATIONS)
        await repo.save_course(conn, course())
        await repo.add_to_ledger(conn, planned, settings.message_id_domain)


async def email_sent_ids(pool: asyncpg.Pool) -> list[Any]:
    rows = await pool.fetch(
        "SELECT event_id FROM outbox WHERE headers->>'ce_type' = $1 ORDER BY event_id", ev.EmailSent.ce_type
    )
    return [r["event_id"] for r in rows]


async def test_verdicts_postgresql_lost_are_recorded_again_and_the_emails_not_sent_again(
    pool: asyncpg.Pool, mail_sink: MailSink
) -> None:
    mail_sink.start()
    settings = settings_for(mail_sink)
    await ledger_of(pool, settings, confirmations(3))
    smtp = SmtpPool(settings.smtp())
    sender = build_sender(settings, pool, smtp, NoDocuments(), SystemClock())
    async with smtp, closing(sender):
        assert await sender.send_due() == 3
        assert sender.unflushed_verdicts == 3  # recorded without waiting for the flush
        announced = await email_sent_ids(pool)
        assert len(announced) == 3

        # The crash: the last two verdicts never reached the disk, and every session ends.
        lost_rows = (await pool.fetch("SELECT id, email_id FROM send_ledger ORDER BY id"))[1:]
        lost = [r["id"] for r in lost_rows]
        lost_events = [
            r["event_id"]
            for r in await pool.fetch("SELECT event_id, value FROM outbox")
            if json.loads(r["value"])["email_id"] in {str(row["email_id"]) for row in lost_rows}
        ]
        assert len(lost_events) == 2
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "UPDATE send_ledger SET status = 'pending', outcomes = outcomes - 1, sent_at = NULL,"
                " last_code = NULL, last_reply = NULL,"
                " claimed_until = now() + make_interval(secs => $2) WHERE id = ANY($1::bigint[])",
                lost,
                LEASE_SECONDS,
            )
            await conn.execute("DELETE FROM outbox WHERE event_id = ANY($1::uuid[])", lost_events)
        async with pool.acquire() as conn:
            await end_every_other_session(conn)
        await asyncio.sleep(LEASE_SECONDS + 0.5)  # their leases have run out: a claim would take them

        while await sender.send_due():
            pass

    received = [m.message_id for m in mail_sink.snapshot()]
    assert len(received) == len(set(received)) == 3  # nothing sent twice
    ledger = await pool.fetch("SELECT status, attempts, outcomes FROM send_ledger ORDER BY id")
    assert [tuple(r) for r in ledger] == [("sent", 1, 1)] * 3
    assert await email_sent_ids(pool) == announced  # the same EmailSent events, each once
    assert sender.stats.sent == 3


async def test_a_verdict_recorded_again_after_the_flush_is_left_alone_and_the_memory_emptied(
    pool: asyncpg.Pool, mail_sink: MailSink
) -> None:
    """The connection is lost after the verdicts reached the disk: recording them again changes nothing.
    A later claim that claims rows flushes, and the sender forgets what it remembered."""
    mail_sink.start()
    settings = settings_for(mail_sink)
    first, second = confirmations(2)
    await ledger_of(pool, settings, [first])
    smtp = SmtpPool(settings.smtp())
    sender = build_sender(settings, pool, smtp, NoDocuments(), SystemClock())
    async with smtp, closing(sender):
        assert await sender.send_due() == 1
        async with pool.acquire() as conn:
            # A commit that waits for the flush: WAL is flushed in order, so the first verdict is on disk.
            await repo.add_to_ledger(conn, [second], settings.message_id_domain)
            await end_every_other_session(conn)
        await asyncio.sleep(0.2)
        assert await sender.send_due() == 1  # recorded the first again (no change), then claimed the second
        assert sender.unflushed_verdicts == 1  # the second's; the claim flushed the first
    ledger = await pool.fetch("SELECT status, attempts, outcomes FROM send_ledger ORDER BY id")
    assert [tuple(r) for r in ledger] == [("sent", 1, 1)] * 2
    assert len(await email_sent_ids(pool)) == 2
    assert sender.stats.sent == 2 and len(mail_sink.snapshot()) == 2


class SessionsEndAtFirstVerdict:
    """The real SMTP pool, except that PostgreSQL ends every session just after the first 250, before the
    sender's statement recording it."""

    def __init__(self, smtp: SmtpPool, dsn: str) -> None:
        self.smtp = smtp
        self.dsn = dsn
        self.ended = False

    async def send_once(self, message: ComposedEmail, record: RecordVerdict | None = None) -> SendResult:
        async def record_after_the_end(result: SendResult) -> None:
            if not self.ended:
                self.ended = True
                conn = await asyncpg.connect(self.dsn)
                try:
                    await end_every_other_session(conn)
                finally:
                    await conn.close()
            assert record is not None
            await record(result)

        return await self.smtp.send_once(message, record_after_the_end)


async def test_an_accepted_email_whose_verdict_could_not_be_written_is_recorded_not_sent_again(
    pool: asyncpg.Pool, database: str, mail_sink: MailSink
) -> None:
    mail_sink.start()
    settings = settings_for(mail_sink)
    await ledger_of(pool, settings, confirmations(3))
    smtp = SmtpPool(settings.smtp())
    transport = SessionsEndAtFirstVerdict(smtp, DatabaseSettings().dsn(database))
    sender = build_sender(settings, pool, transport, NoDocuments(), SystemClock())  # type: ignore[arg-type]
    async with smtp, closing(sender):
        running = asyncio.create_task(sender.run())
        try:

            async def all_recorded() -> bool:
                # This read may get a pooled connection whose session was just ended, as the sender may.
                with contextlib.suppress(
                    asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError, OSError
                ):
                    sql = "SELECT count(*) = 3 FROM send_ledger WHERE status = 'sent'"
                    return bool(await pool.fetchval(sql))
                return False

            await wait_until(all_recorded, what="every email recorded as sent")
            await asyncio.sleep(LEASE_SECONDS + 1.0)  # a lease that ran out would have been claimed again
        finally:
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running
    assert transport.ended
    received = [m.message_id for m in mail_sink.snapshot()]
    assert len(received) == len(set(received)) == 3
    first = await pool.fetchrow("SELECT attempts, outcomes FROM send_ledger ORDER BY id LIMIT 1")
    assert tuple(first) == (1, 1)  # accepted once, recorded once: not claimed again
    assert len(await email_sent_ids(pool)) == 3
    assert sender.stats.sent == 3
