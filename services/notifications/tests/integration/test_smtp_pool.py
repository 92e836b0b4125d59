"""The SMTP pool against a real SMTP server (aiosmtpd on 127.0.0.1), counting connections server-side."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from komponent_notifications.adapters.mime import ComposedEmail, MailIdentity, MimeComposer
from komponent_notifications.adapters.rendering import EmailRenderer
from komponent_notifications.adapters.smtp_pool import FinalDotWithheld, SendResult, SmtpPool, SmtpSettings
from komponent_notifications.domain.emails import Email, EmailKind
from komponent_notifications.domain.ledger import SendLedgerKey
from komponent_notifications.domain.smtp_replies import DeliveryOutcome, RetryPolicy
from komponent_runtime.testing import wait_until

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


@contextlib.contextmanager
def serving(handler: ScriptedRelay) -> Iterator[CountingController]:
    """An SMTP server on a free port for the block, counting only the connections made in it."""
    controller = CountingController(handler, free_port())
    controller.start()
    # start() itself opens one probe connection to see the server is up; count only ours.
    controller.connections = 0
    try:
        yield controller
    finally:
        controller.stop()


@pytest.fixture
def relay() -> Iterator[tuple[CountingController, ScriptedRelay]]:
    handler = ScriptedRelay()
    with serving(handler) as controller:
        yield controller, handler


class RecordedSleeps:
    """Stands in for asyncio.sleep: the backoff is asserted from the requested delays, never from time."""

    def __init__(self) -> None:
        self.requested: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.requested.append(seconds)


POLICY = RetryPolicy(
    max_attempts=3, base_delay=timedelta(seconds=2), factor=4, max_delay=timedelta(minutes=1)
)


def message(to: str, subject: str = "Bekræftelse af tilmelding") -> ComposedEmail:
    msg = EmailMessage()
    msg["From"] = "Komponent <kurser@komponent.dk>"
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{uuid.uuid4()}@komponent.dk>"
    msg.set_content("Kære Søren\n\nDu har fået en plads på kurset i Roskilde.\n")
    return ComposedEmail("kurser@komponent.dk", (to,), msg.as_bytes(policy=policy.SMTP), msg["Message-ID"])


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


class CappedRelay(ScriptedRelay):
    """A relay with a per-connection message cap, past which it answers MAIL with 421 (Exchange's way) or,
    with `hang_up`, closes the connection without a reply."""

    def __init__(self, cap: int, *, hang_up: bool = False) -> None:
        super().__init__()
        self.cap = cap
        self.hang_up = hang_up
        # Messages accepted per connection, keyed by the session itself: kept alive here, a closed
        # connection's session can never hand its count to a new one (as an id() reused after GC could).
        self.accepted_on: dict[Session, int] = {}

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, mail_options: list[str]
    ) -> str:
        if self.accepted_on.get(session, 0) >= self.cap:
            if self.hang_up:
                assert server.transport is not None
                server.transport.close()
            return "421 4.3.2 Too many messages on this connection, closing"
        envelope.mail_from = address
        return "250 2.1.0 Ok"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        reply = await super().handle_DATA(server, session, envelope)
        self.accepted_on[session] = self.accepted_on.get(session, 0) + 1
        return reply


@pytest.fixture(params=["421", "hang-up"])
def capped(request: pytest.FixtureRequest) -> Iterator[tuple[CountingController, CappedRelay]]:
    handler = CappedRelay(3, hang_up=request.param == "hang-up")
    with serving(handler) as controller:
        yield controller, handler


async def test_a_connection_closed_at_mail_sends_the_message_on_a_fresh_one_at_once(
    capped: tuple[CountingController, CappedRelay],
) -> None:
    """A server's own cap, below ours: each message it turns away at MAIL goes out on a new connection in
    the same attempt: no transient verdict, no backoff, nothing sent twice."""
    controller, handler = capped
    sleeps = RecordedSleeps()
    async with pool_for(controller, sleeps, pool_size=1) as pool:
        results = [await pool.deliver(message(f"d{n}@kommune.dk")) for n in range(10)]
    assert all(r.accepted and r.attempts == 1 for r in results)
    assert sleeps.requested == []
    assert [e.rcpt_tos for e in handler.delivered] == [[f"d{n}@kommune.dk"] for n in range(10)]
    assert controller.connections == 4  # 3 + 3 + 3 + 1
    assert pool.connections_opened == 4


async def test_the_verdict_of_a_message_moved_to_a_fresh_connection_is_recorded_once(
    capped: tuple[CountingController, CappedRelay],
) -> None:
    controller, handler = capped
    recorded: list[SendResult] = []

    async def record(result: SendResult) -> None:
        recorded.append(result)

    async with pool_for(controller, RecordedSleeps(), pool_size=1) as pool:
        for n in range(4):
            assert (await pool.send_once(message(f"d{n}@kommune.dk"), record)).accepted
    assert [r.accepted for r in recorded] == [True] * 4
    assert len(handler.delivered) == 4
    assert controller.connections == 2


async def test_a_fresh_connection_turned_away_at_mail_is_a_verdict_not_a_loop() -> None:
    """A server that refuses every MAIL with 421: each attempt opens one connection and gets a transient
    verdict; the retry policy, not the pool, decides how often to try."""
    handler = CappedRelay(0)
    sleeps = RecordedSleeps()
    with serving(handler) as controller:
        async with pool_for(controller, sleeps, pool_size=1) as pool:
            result = await pool.deliver(message("d@kommune.dk"))
    assert result.outcome is DeliveryOutcome.TRANSIENT
    assert result.code == 421
    assert result.attempts == 3
    assert controller.connections == 3
    assert handler.delivered == []


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
        assert (await pool.deliver(message("foer@kommune.dk"))).accepted
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
    assert [e.rcpt_tos for e in handler.delivered] == [["foer@kommune.dk"], ["efter@kommune.dk"]]


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


# --- the wire bytes and the final-dot gate ----------------------------------------------------------------


def raw_message(to: str, body_lines: list[bytes]) -> ComposedEmail:
    data = (
        b"From: kurser@komponent.dk\r\nTo: " + to.encode() + b"\r\nSubject: Prikker\r\n"
        b"Message-ID: <prikker@komponent.dk>\r\n\r\n" + b"".join(line + b"\r\n" for line in body_lines)
    )
    return ComposedEmail("kurser@komponent.dk", (to,), data, "<prikker@komponent.dk>")


async def test_lines_starting_with_a_dot_arrive_intact(
    relay: tuple[CountingController, ScriptedRelay],
) -> None:
    controller, handler = relay
    body = [b".", b".hidden", b"..two", b"text", b". after", b"."]
    async with pool_for(controller, RecordedSleeps()) as pool:
        result = await pool.deliver(raw_message("d@kommune.dk", body))
    assert result.accepted
    [envelope] = handler.delivered
    assert isinstance(envelope.original_content, bytes)
    assert envelope.original_content.split(b"\r\n\r\n", 1)[1] == b"".join(line + b"\r\n" for line in body)


async def test_through_the_gate_bodies_arrive_intact_whether_the_gate_is_free_or_held(
    relay: tuple[CountingController, ScriptedRelay],
) -> None:
    """A send that finds the gate free writes body and final dot together; one that finds it held writes
    its body at once and only its dot at the gate. Both bodies arrive intact (dot-stuffed lines too), and
    the second is not accepted before the first's verdict is recorded."""
    controller, handler = relay
    body = [b".", b".hidden", b"..two", b"text", b". after", b"."]
    release = asyncio.Event()
    recorded: list[str] = []

    def record_as(name: str, wait: asyncio.Event | None = None) -> Any:
        async def record(result: SendResult) -> None:
            if wait is not None:
                await wait.wait()
            recorded.append(name)

        return record

    async with pool_for(controller, RecordedSleeps(), pool_size=2) as pool:
        alone = await pool.send_once(raw_message("alone@kommune.dk", body), record_as("alone"))
        first = await holding_the_gate(
            pool, raw_message("first@kommune.dk", body), record_as("first", release)
        )
        second = asyncio.create_task(
            pool.send_once(raw_message("second@kommune.dk", body), record_as("second"))
        )

        async def second_waits() -> bool:
            return len(pool._gate._waiting) == 1

        await wait_until(second_waits, what="the second send waiting at the gate")
        # The first is accepted (its reply is read before its record runs), the second not yet.
        assert [e.rcpt_tos for e in handler.delivered] == [["alone@kommune.dk"], ["first@kommune.dk"]]
        release.set()
        results = [alone, await first, await second]
    assert all(r.accepted for r in results)
    assert recorded == ["alone", "first", "second"]
    assert [e.rcpt_tos for e in handler.delivered][2] == ["second@kommune.dk"]
    for envelope in handler.delivered:
        assert isinstance(envelope.original_content, bytes)
        assert envelope.original_content.split(b"\r\n\r\n", 1)[1] == b"".join(line + b"\r\n" for line in body)


@pytest.mark.parametrize(
    "to",
    [
        "søren@kommune.dk",
        "a@kommune.dk>\r\nRCPT TO:<b@kommune.dk",
        "a@kommune.dk> <b@kommune.dk",
        "a b@kommune.dk",
    ],
)
async def test_an_address_that_is_not_a_plain_addr_spec_is_refused_and_nothing_is_sent(
    relay: tuple[CountingController, ScriptedRelay], to: str
) -> None:
    controller, handler = relay
    async with pool_for(controller, RecordedSleeps()) as pool:
        refused = await pool.deliver(raw_message(to, [b"x"]))
        after = await pool.deliver(message("d@kommune.dk"))
    assert refused.outcome is DeliveryOutcome.PERMANENT and refused.attempts == 1
    assert after.accepted
    assert [e.rcpt_tos for e in handler.delivered] == [["d@kommune.dk"]]
    assert controller.connections == 1  # the connection stayed usable (RSET)


class OverlapWatch:
    """Server side: a message is accepted in handle_DATA (the final dot has arrived). The client's record
    callback marks it recorded. `worst` is the most messages ever accepted and not yet recorded;
    `open_most` the most transactions (RCPT accepted, final dot not yet) in progress at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.unrecorded: set[str] = set()
        self.worst = 0
        self.open: set[int] = set()
        self.open_most = 0
        self.delivered: list[str] = []
        self.slow: set[str] = set()  # recipients whose message the server takes a while to accept
        self.slow_rcpt: set[str] = set()  # recipients the server takes a while to accept at RCPT
        self.recipients: list[str] = []

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        with self.lock:
            self.open.add(id(session))
            self.open_most = max(self.open_most, len(self.open))
        if address in self.slow_rcpt:
            await asyncio.sleep(0.3)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.original_content, bytes)
        message_id = message_from_bytes(envelope.original_content, policy=policy.default)["Message-ID"]
        await asyncio.sleep(0.5 if set(envelope.rcpt_tos) & self.slow else 0.002)  # lets the lanes pile up
        with self.lock:
            self.open.discard(id(session))
            self.unrecorded.add(message_id)
            self.worst = max(self.worst, len(self.unrecorded))
            self.delivered.append(message_id)
            self.recipients += envelope.rcpt_tos
        return "250 2.0.0 Ok: queued"

    def recorded(self, message_id: str) -> None:
        with self.lock:
            self.unrecorded.discard(message_id)


@pytest.fixture
def watched() -> Iterator[tuple[Controller, OverlapWatch]]:
    watch = OverlapWatch()
    controller = Controller(watch, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller, watch
    finally:
        controller.stop()


async def test_final_dot_gate_keeps_at_most_one_message_accepted_and_unrecorded_with_every_connection_busy(
    watched: tuple[Controller, OverlapWatch],
) -> None:
    controller, watch = watched
    recorded: list[SendResult] = []

    async def send(pool: SmtpPool, n: int) -> SendResult:
        composed = message(f"d{n}@kommune.dk")

        async def record(result: SendResult) -> None:
            await asyncio.sleep(0.003)  # a slow commit: while it runs, the others must not finish theirs
            watch.recorded(composed.message_id)
            recorded.append(result)

        return await pool.send_once(composed, record)

    async with SmtpPool(SmtpSettings(host="127.0.0.1", port=controller.port, pool_size=4)) as pool:
        results = await asyncio.gather(*(send(pool, n) for n in range(40)))
    assert all(r.accepted for r in results) and len(recorded) == 40 and len(watch.delivered) == 40
    assert watch.open_most == 4  # the four connections ran their transactions concurrently ...
    assert watch.worst == 1  # ... yet never two messages accepted and unrecorded


async def test_without_the_gate_the_same_load_does_overlap(watched: tuple[Controller, OverlapWatch]) -> None:
    """The control for the test above: it can see an overlap when there is one."""
    controller, watch = watched

    async def send(pool: SmtpPool, n: int) -> None:
        composed = message(f"d{n}@kommune.dk")
        result = await pool.send_once(composed)  # no record callback: no gate
        await asyncio.sleep(0.003)
        watch.recorded(composed.message_id)
        assert result.accepted

    async with SmtpPool(SmtpSettings(host="127.0.0.1", port=controller.port, pool_size=4)) as pool:
        await asyncio.gather(*(send(pool, n) for n in range(40)))
    assert watch.worst > 1


class LostVerdict:
    """A record callback that holds the gate until `release` and then fails, as a database gone away does."""

    def __init__(self) -> None:
        self.in_gate = asyncio.Event()
        self.release = asyncio.Event()

    async def record(self, result: SendResult) -> None:
        self.in_gate.set()
        await self.release.wait()
        raise ConnectionResetError("the database went away")


async def fine(result: SendResult) -> None:
    pass


async def test_a_verdict_that_cannot_be_recorded_withholds_the_waiting_final_dots(
    watched: tuple[Controller, OverlapWatch],
) -> None:
    controller, watch = watched
    lost = LostVerdict()

    async with SmtpPool(SmtpSettings(host="127.0.0.1", port=controller.port, pool_size=4)) as pool:
        first = asyncio.create_task(pool.send_once(message("first@kommune.dk"), lost.record))
        await lost.in_gate.wait()
        waiting = [asyncio.create_task(pool.send_once(message(f"w{n}@kommune.dk"), fine)) for n in range(3)]
        await three_waiting(pool)
        lost.release.set()
        with pytest.raises(ConnectionResetError):
            await first
        for task in waiting:
            with pytest.raises(FinalDotWithheld):
                await task
        assert len(watch.delivered) == 1  # only the message whose verdict was lost; none after it

        # Nobody waits any more: the gate is open again.
        assert (await pool.send_once(message("later@kommune.dk"), fine)).accepted
    assert len(watch.delivered) == 2


async def test_a_send_still_before_the_gate_when_a_verdict_is_lost_is_withheld_when_it_gets_there(
    watched: tuple[Controller, OverlapWatch],
) -> None:
    """The lost verdict's waiters are withheld and the gate opens again; a send that was still in RCPT then
    (its round is being torn down) must not write its final dot when it reaches the gate. Its message
    would be accepted with nobody left to record it: sent again after the lease, a duplicate."""
    controller, watch = watched
    watch.slow_rcpt.add("late@kommune.dk")
    lost = LostVerdict()

    async with SmtpPool(SmtpSettings(host="127.0.0.1", port=controller.port, pool_size=4)) as pool:
        first = asyncio.create_task(pool.send_once(message("first@kommune.dk"), lost.record))
        await lost.in_gate.wait()
        late = asyncio.create_task(pool.send_once(message("late@kommune.dk"), fine))
        await asyncio.sleep(0.05)  # in RCPT, nowhere near the gate
        lost.release.set()
        with pytest.raises(ConnectionResetError):
            await first
        assert not pool._gate._waiting  # nobody waited: the gate is open again ...
        with pytest.raises(FinalDotWithheld):
            await late  # ... but not to a send begun before the failure
        assert (await pool.send_once(message("after@kommune.dk"), fine)).accepted  # begun after: goes out
    assert watch.recipients == ["first@kommune.dk", "after@kommune.dk"]


async def test_a_send_cancelled_while_waiting_at_the_gate_leaves_the_others_alone(
    watched: tuple[Controller, OverlapWatch],
) -> None:
    controller, watch = watched
    watch.slow.add("first@kommune.dk")

    async with SmtpPool(SmtpSettings(host="127.0.0.1", port=controller.port, pool_size=4)) as pool:
        first = await holding_the_gate(pool, message("first@kommune.dk"), fine)
        waiting = [asyncio.create_task(pool.send_once(message(f"w{n}@kommune.dk"), fine)) for n in range(3)]
        await three_waiting(pool)
        waiting[1].cancel()
        assert (await first).accepted
        assert (await waiting[0]).accepted and (await waiting[2]).accepted
        with pytest.raises(asyncio.CancelledError):
            await waiting[1]
        assert (await pool.send_once(message("later@kommune.dk"), fine)).accepted
    assert sorted(watch.recipients) == sorted(
        ["first@kommune.dk", "w0@kommune.dk", "w2@kommune.dk", "later@kommune.dk"]
    )


async def holding_the_gate(pool: SmtpPool, composed: ComposedEmail, record: Any) -> asyncio.Task[SendResult]:
    send = asyncio.create_task(pool.send_once(composed, record))

    async def held() -> bool:
        return pool._gate._held

    await wait_until(held, what="the first send at the final-dot gate")
    return send


async def three_waiting(pool: SmtpPool) -> None:
    async def waiting() -> bool:
        return len(pool._gate._waiting) == 3

    await wait_until(waiting, what="three sends waiting at the final-dot gate")


async def test_a_holder_cancelled_before_its_reply_withholds_the_waiting_final_dots(
    watched: tuple[Controller, OverlapWatch],
) -> None:
    controller, watch = watched
    watch.slow.add("first@kommune.dk")
    recorded: list[SendResult] = []

    async def record(result: SendResult) -> None:
        recorded.append(result)

    async with SmtpPool(SmtpSettings(host="127.0.0.1", port=controller.port, pool_size=4)) as pool:
        first = await holding_the_gate(pool, message("first@kommune.dk"), record)
        waiting = [asyncio.create_task(pool.send_once(message(f"w{n}@kommune.dk"), record)) for n in range(3)]
        await three_waiting(pool)
        first.cancel()  # its final dot is out, its reply not in: in doubt, and not recorded
        with pytest.raises(asyncio.CancelledError):
            await first
        for task in waiting:
            with pytest.raises(FinalDotWithheld):
                await task
        assert recorded == []
        assert (await pool.send_once(message("later@kommune.dk"), record)).accepted
    await asyncio.sleep(0.6)  # let the server finish with the in-doubt message
    assert set(watch.recipients) <= {"first@kommune.dk", "later@kommune.dk"}  # none of the withheld
    assert "later@kommune.dk" in watch.recipients
    assert len(recorded) == 1


def test_aiosmtplib_still_has_the_reply_flag_the_gate_arms() -> None:
    # smtp_pool._write_dot arms SMTPProtocol._response_pending before writing another send's dot, as
    # aiosmtplib's own commands do; an upgrade that drops the flag must be looked at.
    from aiosmtplib.protocol import SMTPProtocol

    assert SMTPProtocol(asyncio.new_event_loop())._response_pending is False
