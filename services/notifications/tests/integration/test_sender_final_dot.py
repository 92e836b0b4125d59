"""The sender on the real stack (PostgreSQL ledger, aiosmtpd): at most one message is ever accepted by SMTP
and not yet recorded, while all pool connections send; and the one-statement record of an accepted email
writes what the general path writes."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import importlib.util
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from komponent_contracts import CloudEvent
from komponent_contracts import events as ev
from komponent_contracts.examples import course
from komponent_notifications.adapters import repository as repo
from komponent_notifications.adapters import sent_verdict
from komponent_notifications.adapters.smtp_pool import SmtpPool
from komponent_notifications.app import MIGRATIONS, build_sender
from komponent_notifications.service_layer.planning import PlannedEmail
from komponent_notifications.service_layer.sender import _RelayWake
from komponent_notifications.settings import NotificationSettings
from komponent_runtime import outbox
from komponent_runtime.clock import SystemClock
from komponent_runtime.database import migrate
from komponent_runtime.settings import DatabaseSettings
from komponent_runtime.testing import free_port, wait_until

pytestmark = pytest.mark.infra


def confirmations(n: int) -> list[PlannedEmail]:
    """The benchmark's sample confirmations (one definition of the sample data for both)."""
    path = Path(__file__).parents[2] / "bench" / "email_bench.py"
    spec = importlib.util.spec_from_file_location("email_bench", path)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    planned: list[PlannedEmail] = bench.planned_confirmations(n)
    return planned


class LedgerWatchingServer:
    """At each final dot (handle_DATA, before the 250), asks the ledger whether every message this server
    accepted earlier already has its verdict committed. `unrecorded_at_dot` lists the counts it saw."""

    def __init__(self, database: str) -> None:
        self.database = database
        self.conn: asyncpg.Connection | None = None
        self.accepted: list[str] = []
        self.unrecorded_at_dot: list[int] = []
        self.open: set[int] = set()
        self.open_most = 0
        self.lock = threading.Lock()

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        with self.lock:
            self.open.add(id(session))
            self.open_most = max(self.open_most, len(self.open))
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.conn is None:
            self.conn = await asyncpg.connect(DatabaseSettings().dsn(self.database))
        assert isinstance(envelope.original_content, bytes)
        message_id = str(message_from_bytes(envelope.original_content, policy=policy.default)["Message-ID"])
        unrecorded = await self.conn.fetchval(
            "SELECT count(*) FROM send_ledger WHERE message_id = ANY($1::text[]) AND status <> 'sent'",
            self.accepted,
        )
        with self.lock:
            self.unrecorded_at_dot.append(unrecorded)
            self.accepted.append(message_id)
            self.open.discard(id(session))
        return "250 2.0.0 Ok: queued"


@pytest.fixture
def ledger_watch(database: str) -> Iterator[tuple[Controller, LedgerWatchingServer]]:
    server = LedgerWatchingServer(database)
    controller = Controller(server, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller, server
    finally:
        if server.conn is not None:
            asyncio.run_coroutine_threadsafe(server.conn.close(), controller.loop).result(timeout=10)
        controller.stop()


class NoDocuments:
    async def pdf(self, pdf_url: str) -> bytes:
        raise AssertionError("confirmations only")


async def test_the_service_default_never_has_two_messages_accepted_and_unrecorded(
    pool: asyncpg.Pool, ledger_watch: tuple[Controller, LedgerWatchingServer]
) -> None:
    controller, server = ledger_watch
    settings = NotificationSettings(smtp_host="127.0.0.1", smtp_port=controller.port)  # defaults otherwise
    planned = confirmations(80)
    async with pool.acquire() as conn:
        await migrate(conn, MIGRATIONS)
        await repo.save_course(conn, course())
        await repo.add_to_ledger(conn, planned, settings.message_id_domain)
    config = settings.sender()
    assert config.lanes == settings.smtp_pool_size == 4
    smtp = SmtpPool(settings.smtp())
    sender = build_sender(settings, pool, smtp, NoDocuments(), SystemClock())
    async with smtp:
        while await sender.send_due():
            pass
        await sender.close()

    assert sender.stats.sent == len(server.accepted) == 80
    assert server.open_most >= 2  # transactions on several connections were in progress at once ...
    assert max(server.unrecorded_at_dot) == 0  # ... yet no final dot ever found an earlier one unrecorded
    rows = await pool.fetch("SELECT status, attempts, outcomes FROM send_ledger")
    assert {(r["status"], r["attempts"], r["outcomes"]) for r in rows} == {("sent", 1, 1)}
    sent_events = await pool.fetchval(
        "SELECT count(*) FROM outbox WHERE headers->>'ce_type' = $1", ev.EmailSent.ce_type
    )
    assert sent_events == 80


async def test_a_round_wakes_the_outbox_relay_once_for_all_the_emails_it_recorded(
    pool: asyncpg.Pool, database: str, ledger_watch: tuple[Controller, LedgerWatchingServer]
) -> None:
    controller, server = ledger_watch
    settings = NotificationSettings(smtp_host="127.0.0.1", smtp_port=controller.port, notify_batch_size=10)
    async with pool.acquire() as conn:
        await migrate(conn, MIGRATIONS)
        await repo.save_course(conn, course())
        await repo.add_to_ledger(conn, confirmations(25), settings.message_id_domain)
    wake_ups: list[str] = []
    listener = await asyncpg.connect(DatabaseSettings().dsn(database))
    await listener.add_listener(outbox.NOTIFY_CHANNEL, lambda *note: wake_ups.append(note[2]))
    smtp = SmtpPool(settings.smtp())
    sender = build_sender(settings, pool, smtp, NoDocuments(), SystemClock())
    rounds = 0
    try:
        async with smtp:
            while await sender.send_due():
                rounds += 1
            await sender.close()

        async def woken_per_round() -> bool:
            return len(wake_ups) >= rounds

        await wait_until(woken_per_round, what="the relay's wake-ups")
        # Notifications of one session arrive in commit order: had a record woken the relay, its wake-up
        # would be here before the round's.
        assert rounds == 3 and len(wake_ups) == rounds
    finally:
        await listener.close()
    assert sender.stats.sent == len(server.accepted) == 25
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM outbox WHERE headers->>'ce_type' = $1",
            ev.EmailSent.ce_type,
        )
        == 25
    )


async def test_a_round_whose_last_verdict_is_a_retry_still_wakes_the_relay_for_its_sent_emails(
    pool: asyncpg.Pool, database: str, ledger_watch: tuple[Controller, LedgerWatchingServer]
) -> None:
    controller, server = ledger_watch
    settings = NotificationSettings(
        smtp_host="127.0.0.1", smtp_port=controller.port, smtp_pool_size=1, notify_lanes=1
    )
    *sent, waiting = confirmations(3)
    async with pool.acquire() as conn:
        await migrate(conn, MIGRATIONS)
        await repo.save_course(conn, course())
        # The last row's course is not projected: its verdict (retry later) is the round's last, one lane.
        await repo.add_to_ledger(conn, [*sent, dataclasses.replace(waiting, course_id=uuid.uuid4())], "k.dk")
    wake_ups: list[str] = []
    listener = await asyncpg.connect(DatabaseSettings().dsn(database))
    await listener.add_listener(outbox.NOTIFY_CHANNEL, lambda *note: wake_ups.append(note[2]))
    smtp = SmtpPool(settings.smtp())
    sender = build_sender(settings, pool, smtp, NoDocuments(), SystemClock())
    try:
        async with smtp:
            assert await sender.send_due() == 3
            await sender.close()

        async def woken() -> bool:
            return len(wake_ups) == 1

        await wait_until(woken, what="the relay's wake-up")
    finally:
        await listener.close()
    assert sender.stats.sent == len(server.accepted) == 2 and sender.stats.rescheduled == 1
    assert wake_ups == [outbox.NOTIFY_CHANNEL]


async def test_the_sender_claims_again_at_once_for_emails_queued_behind_their_recipients_first(
    pool: asyncpg.Pool, ledger_watch: tuple[Controller, LedgerWatchingServer]
) -> None:
    """A round that was not full waits for a NOTIFY or the poll, except when a claimed recipient has more
    pending: with no NOTIFY coming and a poll of an hour, all of one recipient's emails still go out."""
    controller, server = ledger_watch
    settings = NotificationSettings(
        smtp_host="127.0.0.1", smtp_port=controller.port, notify_poll_seconds=3600
    )
    first, *queued, other = confirmations(4)
    planned = [first, *(dataclasses.replace(p, recipient=first.recipient) for p in queued), other]
    async with pool.acquire() as conn:
        await migrate(conn, MIGRATIONS)
        await repo.save_course(conn, course())
        await repo.add_to_ledger(conn, planned, settings.message_id_domain)  # no NOTIFY
    smtp = SmtpPool(settings.smtp())
    sender = build_sender(settings, pool, smtp, NoDocuments(), SystemClock())
    async with smtp:
        running = asyncio.create_task(sender.run())

        async def all_sent() -> bool:
            return sender.stats.sent == 4

        try:
            await wait_until(all_sent, what="every queued email sent without a NOTIFY or a poll")
        finally:
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running
    assert len(server.accepted) == 4


def test_only_the_last_verdict_of_a_round_with_sent_emails_wakes_the_relay() -> None:
    wake = _RelayWake(3)
    assert [wake.verdict(accepted=True), wake.verdict(accepted=False), wake.verdict(accepted=False)] == [
        False,
        False,
        True,
    ]
    nothing_sent = _RelayWake(2)
    assert [nothing_sent.verdict(accepted=False), nothing_sent.verdict(accepted=False)] == [False, False]
    alone = _RelayWake(1)
    assert alone.verdict(accepted=True)


async def test_recording_an_accepted_email_in_one_statement_writes_what_the_general_path_writes(
    pool: asyncpg.Pool,
) -> None:
    planned = confirmations(2)
    async with pool.acquire() as conn:
        await migrate(conn, MIGRATIONS)
        await repo.add_to_ledger(conn, planned, "komponent.dk")
        one, two = [r["id"] for r in await conn.fetch("SELECT id FROM send_ledger ORDER BY id")]
        trace = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}

        def sent_event() -> CloudEvent[Any]:
            data = ev.EmailSent(
                email_id=uuid.uuid4(),
                course_id=course().course_id,
                kind="registration_confirmed",
                caused_by_event_id=uuid.uuid4(),
                occurred_at=datetime.now(UTC),
                smtp_reply="2.0.0 Ok: queued as 7F3A",
            )
            return CloudEvent(data=data, source="/notifications")

        event = sent_event()
        assert await sent_verdict.record_sent(
            conn, one, 250, "2.0.0 Ok: queued as 7F3A", event, trace, wake_relay=True
        )
        async with conn.transaction():
            await repo.mark_sent(conn, [(two, 250, "2.0.0 Ok: queued as 7F3A")])
            await outbox.enqueue_traced(conn, [(event, trace)])
        # The statement's SET LOCAL does not outlive it.
        assert await conn.fetchval("SHOW synchronous_commit") == "on"
        assert not await sent_verdict.record_sent(conn, 10**9, 250, "x", sent_event(), {}, wake_relay=False)
        # Recording it again (after a PostgreSQL crash, in doubt whether it survived) leaves it alone.
        assert not await sent_verdict.record_sent(conn, one, 250, "again", sent_event(), {}, wake_relay=False)

        columns = "event_id, topic, kafka_key, headers, value, traceparent, tracestate"
        fast, general = await conn.fetch(f"SELECT {columns} FROM outbox ORDER BY id")
        assert dict(fast) == dict(general)
        assert fast["event_id"] == event.id and fast["traceparent"] == trace["traceparent"]
        ledger = await conn.fetch(
            "SELECT status, outcomes, last_code, last_reply, claimed_until, sent_at IS NOT NULL AS stamped"
            " FROM send_ledger ORDER BY id"
        )
        assert dict(ledger[0]) == dict(ledger[1])
        assert ledger[0]["status"] == "sent" and ledger[0]["outcomes"] == 1
