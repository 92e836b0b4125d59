"""The email sender while PostgreSQL is SIGKILLed under it (the private stack's server, a real crash and
crash recovery): no email is sent twice, and verdicts the crash lost are written again.

Emails are planned at a steady rate while the sender runs in this process against a real SMTP server. The
database is killed a few times, each time just after the sender recorded an accepted verdict: it commits
those without waiting for the WAL flush, so a kill right then loses them. Before, each lost verdict was an
email sent again once its lease ran out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import runpy

import asyncpg
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from komponent_contracts.examples import course
from komponent_notifications.adapters import repository as repo
from komponent_notifications.adapters.smtp_pool import SmtpPool
from komponent_notifications.app import MIGRATIONS, build_sender
from komponent_notifications.service_layer.planning import PlannedEmail
from komponent_notifications.service_layer.sender import EmailSender
from komponent_notifications.service_layer.verdict_connection import RECORDED_AGAIN
from komponent_notifications.settings import NotificationSettings
from komponent_runtime.clock import SystemClock
from komponent_runtime.database import migrate
from komponent_runtime.settings import DatabaseSettings
from komponent_runtime.testing import REPO_ROOT, create_database, free_port, wait_until
from support.private_stack import PrivateStack

pytestmark = [pytest.mark.infra, pytest.mark.faults]

EMAILS = 240
KILLS = 3
LEASE_SECONDS = 3.0


class MessageIds:
    """An SMTP server on 127.0.0.1 keeping the Message-ID of every message it accepts."""

    def __init__(self) -> None:
        self.received: list[str] = []
        self.controller = Controller(self, hostname="127.0.0.1", port=free_port())

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        found = re.search(rb"^Message-ID: *(\S+)", raw, re.MULTILINE | re.IGNORECASE)
        self.received.append(found.group(1).decode() if found else "")
        return "250 2.0.0 Ok: queued"


class NoDocuments:
    async def pdf(self, pdf_url: str) -> bytes:
        raise AssertionError("confirmations only")


def confirmations(n: int) -> list[PlannedEmail]:
    """The email benchmark's sample confirmations (one definition of the sample data)."""
    bench = runpy.run_path(str(REPO_ROOT / "services" / "notifications" / "bench" / "email_bench.py"))
    planned: list[PlannedEmail] = bench["planned_confirmations"](n)
    return planned


async def plan_steadily(dsn: str, planned: list[PlannedEmail], domain: str) -> None:
    """Five emails every 50 ms, each group retried until PostgreSQL takes it."""
    for i in range(0, len(planned), 5):
        while True:
            try:
                conn = await asyncpg.connect(dsn, timeout=2)
                try:
                    await repo.add_to_ledger(conn, planned[i : i + 5], domain)
                finally:
                    await conn.close()
                break
            # InternalClientError: a statement sent as the server died, before asyncpg saw the socket close.
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError):
                await asyncio.sleep(0.2)
        await asyncio.sleep(0.05)


async def kill_just_after_a_verdict(stack: PrivateStack, sender: EmailSender) -> None:
    sent_before = sender.stats.sent

    async def recorded_one() -> bool:
        return sender.stats.sent > sent_before

    await wait_until(recorded_one, timeout=30, interval=0.001, what="an accepted verdict recorded")
    await asyncio.to_thread(stack.postgres, "kill9")
    await asyncio.sleep(0.5)
    await asyncio.to_thread(stack.postgres, "start")


async def test_postgresql_killed_under_the_sender_sends_no_email_twice(
    fault_stack: PrivateStack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="komponent_notifications.service_layer.verdict_connection")
    database = await create_database("senderkill")
    dsn = DatabaseSettings().dsn(database)
    sink = MessageIds()
    sink.controller.start()
    settings = NotificationSettings(
        smtp_host="127.0.0.1",
        smtp_port=sink.controller.port,
        notify_lease_seconds=LEASE_SECONDS,
        notify_poll_seconds=0.1,
    )
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=8)
    assert pool is not None
    async with pool.acquire() as conn:
        await migrate(conn, MIGRATIONS)
        await repo.save_course(conn, course())
    smtp = SmtpPool(settings.smtp())
    sender = build_sender(settings, pool, smtp, NoDocuments(), SystemClock())
    planned = confirmations(EMAILS)
    try:
        async with smtp:
            running = asyncio.create_task(sender.run())
            planning = asyncio.create_task(plan_steadily(dsn, planned, settings.message_id_domain))
            try:
                for _ in range(KILLS):
                    await kill_just_after_a_verdict(fault_stack, sender)
                    await asyncio.sleep(1.0)
                await planning

                async def all_sent() -> bool:
                    with contextlib.suppress(
                        OSError, asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError
                    ):
                        return bool(
                            await pool.fetchval(
                                "SELECT count(*) = $1 FROM send_ledger WHERE status = 'sent'", EMAILS
                            )
                        )
                    return False

                await wait_until(all_sent, timeout=120, what="every planned email sent")
                await asyncio.sleep(LEASE_SECONDS + 1.0)  # a lost verdict's lease runs out: it would go again
            finally:
                running.cancel()
                planning.cancel()
                await asyncio.gather(running, planning, return_exceptions=True)
        received = list(sink.received)
        rewritten = sum(
            int(getattr(r, "written", 0)) for r in caplog.records if r.getMessage() == RECORDED_AGAIN
        )
        print(f"\n{KILLS} kills: {len(received)} emails received, {rewritten} lost verdicts written again")
        twice = [m for m in set(received) if received.count(m) > 1]
        rows = await pool.fetch(
            "SELECT message_id, attempts, outcomes FROM send_ledger WHERE message_id = ANY($1::text[])", twice
        )
        assert len(received) == len(set(received)) == EMAILS, [dict(r) for r in rows]  # each email once
        assert rewritten >= 1  # the kills did lose verdicts (each used to be a duplicate)
    finally:
        sink.controller.stop()
        await pool.close()
