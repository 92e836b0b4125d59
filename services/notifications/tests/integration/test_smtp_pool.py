"""The SMTP pool against a real SMTP server (aiosmtpd on 127.0.0.1), counting connections server-side."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from komponent_notifications.adapters.mime import MailIdentity, MimeComposer
from komponent_notifications.adapters.rendering import EmailRenderer
from komponent_notifications.adapters.smtp_pool import SmtpPool, SmtpSettings
from komponent_notifications.domain.emails import Email, EmailKind
from komponent_notifications.domain.ledger import SendLedgerKey
from komponent_notifications.domain.smtp_replies import DeliveryOutcome, RetryPolicy

GREYLISTED = "greylisted@kommune.dk"
UNKNOWN = "findes.ikke@kommune.dk"
DATA_TEMPFAIL = "Midlertidig fejl"


class ScriptedRelay:
    """Accepts mail, except: greylists an address once (451), rejects an unknown one (550)."""

    def __init__(self) -> None:
        self.delivered: list[Envelope] = []
        self._greylisted_once: set[str] = set()
        self._data_failed_once = False
        self._lock = threading.Lock()

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if address == UNKNOWN:
            return "550 5.1.1 <findes.ikke@kommune.dk>: Recipient address rejected: User unknown"
        if address == GREYLISTED and address not in self._greylisted_once:
            self._greylisted_once.add(address)
            return "451 4.7.1 Greylisted, please try again later"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.content if isinstance(envelope.content, bytes) else b""
        if DATA_TEMPFAIL.encode() in content and not self._data_failed_once:
            self._data_failed_once = True
            return "451 4.3.0 Queue file write error"
        with self._lock:
            self.delivered.append(envelope)
        return "250 2.0.0 Ok: queued as 7F3A"


class CountingController(Controller):
    """aiosmtpd calls factory() once per accepted TCP connection: that is our connection counter."""

    def __init__(self, handler: ScriptedRelay, port: int) -> None:
        super().__init__(handler, hostname="127.0.0.1", port=port)
        self.connections = 0

    def factory(self) -> SMTP:
        self.connections += 1
        return super().factory()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def relay() -> Iterator[tuple[CountingController, ScriptedRelay]]:
    handler = ScriptedRelay()
    controller = CountingController(handler, free_port())
    controller.start()
    # start() itself opens one probe connection to see the server is up; count only ours.
    controller.connections = 0
    try:
        yield controller, handler
    finally:
        controller.stop()


class RecordedSleeps:
    """Stands in for asyncio.sleep: the backoff is asserted from the requested delays, never from time."""

    def __init__(self) -> None:
        self.requested: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.requested.append(seconds)


POLICY = RetryPolicy(
    max_attempts=3, base_delay=timedelta(seconds=2), factor=4, max_delay=timedelta(minutes=1)
)


def message(to: str, subject: str = "Bekræftelse af tilmelding") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Komponent <kurser@komponent.dk>"
    msg["To"] = to
    msg["Subject"] = subject
    msg.set_content("Kære Søren\n\nDu har fået en plads på kurset i Roskilde.\n")
    return msg


def pool_for(controller: CountingController, sleeps: RecordedSleeps, **settings: object) -> SmtpPool:
    return SmtpPool(
        SmtpSettings(host="127.0.0.1", port=controller.port, **settings),  # type: ignore[arg-type]
        retry_policy=POLICY,
        sleep=sleeps,
        jitter=lambda: 0.0,
    )


async def test_sequential_sends_reuse_one_connection(relay: tuple[CountingController, ScriptedRelay]) -> None:
    controller, handler = relay
    async with pool_for(controller, RecordedSleeps(), pool_size=3) as pool:
        results = [await pool.deliver(message(f"deltager{n}@kommune.dk")) for n in range(10)]
    assert all(r.outcome is DeliveryOutcome.ACCEPTED for r in results)
    assert results[0].code == 250
    assert "queued as 7F3A" in results[0].reply
    assert len(handler.delivered) == 10
    assert controller.connections == 1
    assert pool.connections_opened == 1


async def test_concurrent_sends_never_open_more_connections_than_the_pool_size(
    relay: tuple[CountingController, ScriptedRelay],
) -> None:
    controller, handler = relay
    async with pool_for(controller, RecordedSleeps(), pool_size=3) as pool:
        results = await asyncio.gather(*(pool.deliver(message(f"d{n}@kommune.dk")) for n in range(30)))
    assert all(r.accepted for r in results)
    assert len(handler.delivered) == 30
    assert 1 <= controller.connections <= 3


async def test_connection_is_recycled_after_the_per_connection_message_cap(
    relay: tuple[CountingController, ScriptedRelay],
) -> None:
    controller, handler = relay
    async with pool_for(controller, RecordedSleeps(), pool_size=1, max_messages_per_connection=4) as pool:
        for n in range(10):
            assert (await pool.deliver(message(f"d{n}@kommune.dk"))).accepted
    assert controller.connections == 3  # 4 + 4 + 2
    assert len(handler.delivered) == 10


async def test_greylisting_451_is_retried_with_backoff_and_then_delivered(
    relay: tuple[CountingController, ScriptedRelay],
) -> None:
    controller, handler = relay
    sleeps = RecordedSleeps()
    async with pool_for(controller, sleeps) as pool:
        result = await pool.deliver(message(GREYLISTED))
    assert result.outcome is DeliveryOutcome.ACCEPTED
    assert result.attempts == 2
    assert sleeps.requested == [2.0]
    assert [e.rcpt_tos for e in handler.delivered] == [[GREYLISTED]]
    assert controller.connections == 1  # the 4xx left the connection usable (RSET), no reconnect


async def test_451_after_data_is_retried_too(relay: tuple[CountingController, ScriptedRelay]) -> None:
    controller, handler = relay
    sleeps = RecordedSleeps()
    async with pool_for(controller, sleeps) as pool:
        result = await pool.deliver(message("d@kommune.dk", subject=DATA_TEMPFAIL))
    assert result.accepted and result.attempts == 2
    assert len(handler.delivered) == 1


async def test_550_is_permanent_not_retried_and_the_reply_is_kept(
    relay: tuple[CountingController, ScriptedRelay],
) -> None:
    controller, handler = relay
    sleeps = RecordedSleeps()
    async with pool_for(controller, sleeps) as pool:
        rejected = await pool.deliver(message(UNKNOWN))
        after = await pool.deliver(message("d@kommune.dk"))
    assert rejected.outcome is DeliveryOutcome.PERMANENT
    assert rejected.code == 550
    assert rejected.attempts == 1
    assert "User unknown" in rejected.reply
    assert sleeps.requested == []
    assert after.accepted
    assert [e.rcpt_tos for e in handler.delivered] == [["d@kommune.dk"]]
    assert controller.connections == 1


async def test_transient_failures_give_up_after_the_policy_bound() -> None:
    # Nothing listens on this port: every attempt is refused.
    sleeps = RecordedSleeps()
    pool = SmtpPool(
        SmtpSettings(host="127.0.0.1", port=free_port(), timeout_seconds=5),
        retry_policy=POLICY,
        sleep=sleeps,
        jitter=lambda: 0.0,
    )
    async with pool:
        result = await pool.deliver(message("d@kommune.dk"))
    assert result.outcome is DeliveryOutcome.TRANSIENT
    assert result.code is None
    assert result.attempts == 3
    assert sleeps.requested == [2.0, 8.0]
    assert result.reply


async def test_pool_reconnects_after_the_server_restarts() -> None:
    handler = ScriptedRelay()
    port = free_port()
    first = CountingController(handler, port)
    first.start()
    sleeps = RecordedSleeps()
    pool = SmtpPool(
        SmtpSettings(host="127.0.0.1", port=port), retry_policy=POLICY, sleep=sleeps, jitter=lambda: 0.0
    )
    try:
        assert (await pool.deliver(message("før@kommune.dk"))).accepted
    finally:
        first.stop()
    second = CountingController(handler, port)
    second.start()
    second.connections = 0
    try:
        async with pool:
            result = await pool.deliver(message("efter@kommune.dk"))
    finally:
        second.stop()
    assert result.accepted
    assert second.connections == 1
    assert pool.connections_opened == 2
    assert [e.rcpt_tos for e in handler.delivered] == [["før@kommune.dk"], ["efter@kommune.dk"]]


async def test_a_composed_invoice_arrives_intact_over_smtp(
    relay: tuple[CountingController, ScriptedRelay], emails: dict[EmailKind, Email], now: datetime
) -> None:
    controller, handler = relay
    invoice = emails[EmailKind.INVOICE]
    composer = MimeComposer(
        MailIdentity(
            from_address="kurser@komponent.dk", from_name="Komponent", message_id_domain="komponent.dk"
        ),
        EmailRenderer(),
    )
    async with pool_for(controller, RecordedSleeps()) as pool:
        result = await pool.deliver(composer.compose(invoice, now=now))
    assert result.accepted
    [envelope] = handler.delivered
    assert envelope.rcpt_tos == ["faktura@aeroe.dk"]
    assert isinstance(envelope.original_content, bytes)
    received = message_from_bytes(envelope.original_content, policy=policy.default)
    assert isinstance(received, EmailMessage)
    assert received["Message-ID"] == SendLedgerKey.for_email(invoice).message_id("komponent.dk")
    body = received.get_body(("plain",))
    assert body is not None and "Kære Åse Bødker" in body.get_content()
    [pdf] = [p for p in received.iter_attachments() if p.get_content_type() == "application/pdf"]
    assert pdf.get_payload(decode=True) == invoice.pdf.content  # type: ignore[union-attr]
