"""Delivery over SMTP through a small pool of long-lived aiosmtplib connections.

Why a pool: a TCP + (START)TLS + EHLO + AUTH handshake per message costs more than the message itself and
relays rate-limit new connections; a few warm connections reused LIFO (so the idle ones age out) keep
throughput up without opening one connection per message.

Each send ends in a verdict the service layer can record (EmailSent/EmailFailed): accepted, transient or
permanent, with the server's own reply text for the email log. Reading the verdict is domain policy
(`domain.smtp_replies`); this module only maps aiosmtplib's replies and exceptions onto it.

The final-dot gate (the one place that splits an SMTP transaction). A server accepts a message when it
reads the final "<CRLF>.<CRLF>" of DATA; a crash between that moment and the ledger recording the verdict
sends the message again later. To promise at most one such duplicate per crash while every connection is
busy, a send given a `record` callback runs MAIL, RCPT, DATA and writes the whole body concurrently with
the other connections, then waits at the gate: only the gate's holder has its final dot written, reads the
reply and awaits `record(verdict)`, and only then is the next connection's dot written. (A send that finds
the gate free takes it with one write of body and dot together: one send syscall fewer.) So at any moment
at most one message is accepted by SMTP and not yet recorded. If `record` fails (or the holder is
cancelled) that message may be accepted and unrecorded, so the sends waiting at the gate are withheld
(`FinalDotWithheld`: their connections are dropped before the dot, and servers discard such a message), and
so is every send that had begun by then and reaches the gate later (its caller's round is being torn down,
and its verdict would have nowhere to go). Sends begun after the failure pass as usual.

aiosmtplib 5 has no API for this split: `SMTP.data()` writes body and terminator in one go
(`SMTPProtocol.execute_data_command`). We use its public pieces in the order `sendmail` uses them:
`execute_command()` for MAIL FROM (with SIZE when offered), RCPT TO and DATA, then `protocol.write()` for
the dot-stuffed body and, at the gate, for the terminator, and `protocol.read_response()` for the verdict.
The pool lends a connection to one send at a time, so no other command can interleave.
"""

from __future__ import annotations

import asyncio
import enum
import random
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import partial

import aiosmtplib

from ..domain.smtp_replies import DeliveryOutcome, RetryPolicy, classify_connection_failure, classify_reply
from . import rfc5322
from .mime import ComposedEmail

_ACCEPTED = 250
_WILL_FORWARD = 251
_START_INPUT = 354
_LINE_ENDINGS = re.compile(rb"\r\n|\r|\n")
_LEADING_DOT = re.compile(rb"(?m)^\.")

# In-process retries hold a consumer's partition while they wait, so they stay short (1 s, 4 s); longer
# outages belong to the durable retry schedule the wiring keeps in the send ledger (domain RetryPolicy
# defaults: minutes, not seconds).
IN_PROCESS_RETRY = RetryPolicy(
    max_attempts=3, base_delay=timedelta(seconds=1), factor=4, max_delay=timedelta(seconds=10)
)


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    host: str
    port: int
    username: str = ""
    password: str = ""
    use_tls: bool = False  # implicit TLS (port 465)
    start_tls: bool | None = None  # None: STARTTLS when the server offers it
    timeout_seconds: float = 30.0
    pool_size: int = 4
    # Relays may cap messages per connection (Exchange's receive connectors: 20 by default, others 100). A
    # server past its cap answers MAIL with 421 or closes the connection; the pool then sends the message on
    # a fresh connection at once (nothing of it was sent). Recycling at the cap saves that round trip, but
    # every recycle costs a TCP, TLS, EHLO and AUTH handshake: 1,000 keeps that to one per 1,000 messages.
    max_messages_per_connection: int = 1000
    # A connection idle this long may have been dropped by the server's idle timeout; probe it with NOOP
    # before trusting it with a message.
    probe_after_idle_seconds: float = 30.0
    envelope_from: str = ""  # bounce address; empty: the From header


@dataclass(frozen=True, slots=True)
class SendResult:
    outcome: DeliveryOutcome
    code: int | None  # None when no reply arrived (connection refused, reset, timed out)
    reply: str
    attempts: int = 1

    @property
    def accepted(self) -> bool:
        return self.outcome is DeliveryOutcome.ACCEPTED


RecordVerdict = Callable[[SendResult], Awaitable[None]]


class _ClosedBeforeMail(Exception):
    """A reused connection turned out closed when MAIL was sent (421, or the server had hung up): nothing of
    the message was sent, so it goes out on a fresh connection."""


class FinalDotWithheld(Exception):
    """The message was not sent: an earlier verdict could not be recorded, so this one's final dot was
    withheld (its connection was dropped mid-DATA, so the server discards it)."""


# What writing a final dot gave: None (written), or the verdict (it could not be written: not accepted)
# and whether the connection may be reused.
_Unsent = tuple[SendResult, bool] | None


class _Busy(enum.Enum):
    BUSY = "busy"


BUSY = _Busy.BUSY  # the gate is held by another send


class _FinalDotGate:
    """Lets one send at a time from its final dot to its recorded verdict; see the module docstring.

    The holder hands over by writing the next waiter's final dot itself, at once, before waking it: the
    next message is on its way to the server while this event loop still finishes other work, instead of
    one loop iteration later (composing the next email can take that long)."""

    def __init__(self) -> None:
        self._held = False
        self._waiting: deque[tuple[asyncio.Future[_Unsent], Callable[[], _Unsent]]] = deque()
        self._jammed = False
        # Bumped by every failed leave. A send takes the epoch when it begins and may write its final dot
        # only in that epoch: one still in MAIL/RCPT/DATA when a verdict was lost is withheld at the gate,
        # though the gate opened again once its waiters were withheld.
        self.epoch = 0

    def try_enter(self, write_dot: Callable[[], _Unsent], epoch: int) -> _Unsent | _Busy:
        """Hold the gate and run `write_dot()` at once if nobody holds it; BUSY (nothing run) otherwise.
        Raises FinalDotWithheld for a send begun before the last failure (`epoch` is what it took)."""
        if epoch != self.epoch:
            raise FinalDotWithheld("an earlier verdict was not recorded")
        if self._held:
            return BUSY
        self._held = True
        try:
            return write_dot()
        except BaseException:
            self.leave(failed=True)
            raise

    async def enter(self, write_dot: Callable[[], _Unsent], epoch: int) -> _Unsent:
        """Returns once this send holds the gate and `write_dot()` has run (None: the dot is written; a
        verdict: it could not be, nothing was accepted). Raises FinalDotWithheld when jammed or when the
        send began before the last failure."""
        at_once = self.try_enter(write_dot, epoch)
        if at_once is not BUSY:
            return at_once
        entered: asyncio.Future[_Unsent] = asyncio.get_running_loop().create_future()
        waiter = (entered, write_dot)
        self._waiting.append(waiter)
        try:
            return await entered
        except asyncio.CancelledError:
            if waiter in self._waiting:
                self._waiting.remove(waiter)
            elif entered.done() and not entered.cancelled() and entered.exception() is None:
                # Handed the gate (its dot may be out) and cancelled before reading the reply: in doubt.
                self.leave(failed=True)
            raise

    def leave(self, *, failed: bool) -> None:
        """`failed`: the holder's message may be accepted and unrecorded, so no one else may add a second:
        every waiter is withheld, and the gate opens again once nobody waits (to sends begun from now on)."""
        if failed:
            self.epoch += 1
        self._jammed = self._jammed or failed
        while self._waiting:
            entered, write_dot = self._waiting.popleft()
            if entered.done():  # cancelled meanwhile
                continue
            if self._jammed:
                entered.set_exception(FinalDotWithheld("an earlier verdict was not recorded"))
                continue
            try:
                unsent = write_dot()
            except Exception as exc:  # not expected; whether that dot left is unknown: hold no one else
                entered.set_exception(exc)
                self._jammed = True
                continue
            entered.set_result(unsent)
            return
        self._held = False
        self._jammed = False


@dataclass(slots=True)
class _Connection:
    client: aiosmtplib.SMTP
    messages_sent: int = 0
    last_used: float = 0.0


class SmtpPool:
    def __init__(
        self,
        settings: SmtpSettings,
        *,
        retry_policy: RetryPolicy | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        jitter: Callable[[], float] = random.random,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if settings.pool_size < 1:
            raise ValueError("pool_size must be at least 1")
        self._settings = settings
        self._retry = retry_policy or IN_PROCESS_RETRY
        self._sleep = sleep
        self._jitter = jitter
        self._monotonic = monotonic
        # One slot per allowed connection; None is a slot with no open connection yet. LIFO hands out the
        # most recently used connection first, so spare ones go idle and are the ones to be recycled.
        self._slots: asyncio.LifoQueue[_Connection | None] = asyncio.LifoQueue()
        for _ in range(settings.pool_size):
            self._slots.put_nowait(None)
        self.connections_opened = 0  # exposed for metrics and tests
        self._closed = False
        self._gate = _FinalDotGate()

    async def __aenter__(self) -> SmtpPool:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def deliver(self, message: ComposedEmail) -> SendResult:
        """Send with bounded in-process retries of transient failures.

        The in-process retries cover short blips (greylisting, a relay restart). What is still transient
        after the last attempt is returned as such; the wiring decides whether to reschedule it durably.
        """
        attempt = 1
        while True:
            result = await self.send_once(message)
            result = SendResult(result.outcome, result.code, result.reply, attempt)
            if not self._retry.should_retry(result.outcome, attempt):
                return result
            attempt += 1
            await self._sleep(self._retry.delay_before(attempt, self._jitter()).total_seconds())

    async def send_once(self, message: ComposedEmail, record: RecordVerdict | None = None) -> SendResult:
        """One attempt. With `record`, the verdict is passed to it exactly once before this returns; when
        the final dot was written, inside the final-dot gate (see the module docstring). Raises
        FinalDotWithheld (message not sent) after another send's `record` failed."""
        if self._closed:
            raise RuntimeError("SMTP pool is closed")
        epoch = self._gate.epoch  # taken before any wait: a failure from here on withholds this send
        slot = await self._slots.get()
        keep: _Connection | None = None
        try:
            try:
                connection = await self._ready(slot)
            except (aiosmtplib.SMTPException, OSError) as exc:
                # Not the message's fault (server away, TLS or AUTH trouble): it never got a verdict.
                result = SendResult(classify_connection_failure(), _code_of(exc), _reply_of(exc))
                if record is not None:
                    await record(result)
                return result
            try:
                try:
                    result, usable = await self._transaction(connection, message, record, epoch)
                except _ClosedBeforeMail:
                    await _discard(connection)
                    try:
                        connection = await self._connect()
                    except (aiosmtplib.SMTPException, OSError) as exc:
                        result = SendResult(classify_connection_failure(), _code_of(exc), _reply_of(exc))
                        if record is not None:
                            await record(result)
                        return result
                    # A fresh connection has sent nothing, so a second closure is a verdict, not a retry.
                    result, usable = await self._transaction(connection, message, record, epoch)
            except BaseException:
                # Cancelled or withheld mid-transaction: the protocol state is unknown, so the connection goes.
                await _discard(connection)
                raise
            keep = connection if usable else None
            if keep is None:
                await _discard(connection)
            return result
        finally:
            self._slots.put_nowait(keep)

    async def close(self) -> None:
        """QUIT every open connection; sends in flight keep their slot until they finish."""
        self._closed = True
        while not self._slots.empty():
            slot = self._slots.get_nowait()
            if slot is not None:
                await _quit(slot)

    async def _ready(self, slot: _Connection | None) -> _Connection:
        if slot is not None and slot.client.is_connected:
            if slot.messages_sent >= self._settings.max_messages_per_connection:
                await _quit(slot)
            elif self._monotonic() - slot.last_used < self._settings.probe_after_idle_seconds:
                return slot
            else:
                try:
                    await slot.client.noop()
                    return slot
                except (aiosmtplib.SMTPException, OSError):
                    await _discard(slot)
        elif slot is not None:
            await _discard(slot)
        return await self._connect()

    async def _connect(self) -> _Connection:
        s = self._settings
        client = aiosmtplib.SMTP(
            hostname=s.host,
            port=s.port,
            use_tls=s.use_tls,
            start_tls=s.start_tls,
            timeout=s.timeout_seconds,
            username=s.username or None,
            password=s.password or None,
        )
        await client.connect()
        if client.is_ehlo_or_helo_needed:  # what aiosmtplib's mail() would do first (we send MAIL ourselves)
            try:
                await client.ehlo()
            except aiosmtplib.SMTPHeloError:
                await client.helo()
        self.connections_opened += 1
        return _Connection(client, last_used=self._monotonic())

    async def _transaction(
        self, connection: _Connection, message: ComposedEmail, record: RecordVerdict | None, epoch: int
    ) -> tuple[SendResult, bool]:
        """One SMTP transaction. Returns the verdict and whether the connection may be reused."""
        body = await self._up_to_final_dot(connection, message)
        if isinstance(body, tuple):  # refused: nothing was accepted
            if record is not None:
                await record(body[0])
            return body
        if record is None:
            failed = _write_dot(connection, body)
            result, usable = failed if failed else await self._final_reply(connection)
        else:
            # Nobody at the gate: body and final dot in one write (one send and one server wake-up fewer
            # per message), holding the gate from that write on, as always from the dot on. Held: the body
            # goes out now, while the holder finishes, and only the dot waits for the gate.
            unsent = self._gate.try_enter(partial(_write_dot, connection, body), epoch)
            if unsent is BUSY:
                unsent = _write(connection, body)
                if unsent is not None:  # the body could not be written: nothing was accepted
                    await record(unsent[0])
                    return unsent
                unsent = await self._gate.enter(partial(_write_dot, connection, b""), epoch)
            try:
                result, usable = unsent if unsent else await self._final_reply(connection)
                await record(result)
            except BaseException:
                self._gate.leave(failed=True)
                raise
            self._gate.leave(failed=False)
        if usable and not result.accepted:
            await _reset(connection)  # as aiosmtplib's sendmail does after an error reply
        return result, usable

    async def _up_to_final_dot(
        self, connection: _Connection, message: ComposedEmail
    ) -> tuple[SendResult, bool] | bytes:
        """MAIL, RCPT and DATA. The body (dot-stuffed, without its terminator) to write next; else the
        verdict (nothing was accepted) and whether the connection may be reused."""
        client = connection.client
        data = _normalised(message.data)
        try:
            # MAIL and RCPT as aiosmtplib's mail()/rcpt() send them, minus their email.utils address parsing
            # (a tenth of a message's CPU): our addresses are plain addr-specs, checked here, so quoting
            # is just the angle brackets. SIZE (RFC 1870) as sendmail sends it: CRLF octets, unstuffed.
            sender = _envelope_address(self._settings.envelope_from or message.envelope_from)
            size = [b"SIZE=%d" % len(data)] if client.supports_extension("size") else []
            try:
                reply = await client.execute_command(b"MAIL", b"FROM:" + sender, *size)
            except aiosmtplib.SMTPServerDisconnected:
                if connection.messages_sent:
                    raise _ClosedBeforeMail from None
                raise
            if reply.code == 421 and connection.messages_sent:
                raise _ClosedBeforeMail
            if reply.code != _ACCEPTED:
                raise aiosmtplib.SMTPSenderRefused(reply.code, reply.message, sender.decode())
            for recipient in message.recipients:
                reply = await client.execute_command(b"RCPT", b"TO:" + _envelope_address(recipient))
                if reply.code not in (_ACCEPTED, _WILL_FORWARD):
                    raise aiosmtplib.SMTPRecipientRefused(reply.code, reply.message, recipient)
            start = await client.execute_command(b"DATA")
            if start.code != _START_INPUT:
                raise aiosmtplib.SMTPDataError(start.code, start.message)
        except aiosmtplib.SMTPRecipientRefused as exc:
            # We address one recipient per message, so the first refusal is the verdict.
            outcome = classify_reply(exc.code, during_rcpt=True)
            return await self._refused(connection, SendResult(outcome, exc.code, exc.message), True)
        except aiosmtplib.SMTPResponseException as exc:
            # 421: the server is closing the channel (aiosmtplib has closed it already).
            usable = exc.code != 421
            return await self._refused(
                connection, SendResult(classify_reply(exc.code), exc.code, exc.message), usable
            )
        except ValueError as exc:
            # An address aiosmtplib will not put in a command (non-ASCII, control characters): resending
            # cannot change that. Raised before anything was written for it.
            return await self._refused(
                connection, SendResult(DeliveryOutcome.PERMANENT, None, str(exc)), True
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            # Disconnect or timeout before the final dot: the message cannot have been accepted.
            return SendResult(classify_connection_failure(), None, _reply_of(exc)), False
        # Dot-stuffing (RFC 5321 §4.5.2), as aiosmtplib does; our composer never starts a line with ".".
        return _LEADING_DOT.sub(b"..", data) if b"\n." in data or data[:1] == b"." else data

    async def _refused(
        self, connection: _Connection, result: SendResult, usable: bool
    ) -> tuple[SendResult, bool]:
        if usable:
            await _reset(connection)
        return result, usable and connection.client.is_connected

    async def _final_reply(self, connection: _Connection) -> tuple[SendResult, bool]:
        """Read the verdict on the message whose final dot was written."""
        try:
            protocol = connection.client.protocol
            if protocol is None:
                raise aiosmtplib.SMTPServerDisconnected("Connection lost")
            reply = await protocol.read_response(timeout=self._settings.timeout_seconds)
        except (aiosmtplib.SMTPException, OSError) as exc:
            # Disconnect or timeout after the final dot: the server may have accepted it. Transient, so it
            # is sent again, a possible duplicate the ledger-derived Message-ID makes recognisable.
            connection.client.close()
            return SendResult(classify_connection_failure(), None, _reply_of(exc)), False
        if reply.code == _ACCEPTED:
            connection.messages_sent += 1
            connection.last_used = self._monotonic()
            return SendResult(DeliveryOutcome.ACCEPTED, _ACCEPTED, reply.message), True
        if reply.code == 421:
            connection.client.close()
        return SendResult(classify_reply(reply.code), reply.code, reply.message), reply.code != 421


def _write_dot(connection: _Connection, body: bytes) -> _Unsent:
    """Write what is left of the body and the final "." (the moment the server may accept the message).
    None: written; else the verdict (not accepted: the dot never left) and that the connection is gone."""
    return _write(connection, body + b".\r\n", reply_expected=True)


def _write(connection: _Connection, data: bytes, *, reply_expected: bool = False) -> _Unsent:
    protocol = connection.client.protocol
    try:
        if protocol is None:
            raise aiosmtplib.SMTPServerDisconnected("Connection lost")
        if reply_expected:
            # Armed before the write, as aiosmtplib's own commands do, so the reply cannot arrive unclaimed
            # when another task (the gate's previous holder) writes this dot. (The selector loop runs the
            # woken waiter before any reply could be read anyway; this does not rely on that.)
            protocol._response_pending = True
        protocol.write(data)
    except (aiosmtplib.SMTPException, OSError) as exc:
        return SendResult(classify_connection_failure(), None, _reply_of(exc)), False
    return None


def _normalised(data: bytes) -> bytes:
    """CRLF line ends and a final CRLF, as DATA requires (the composer writes them so already)."""
    crlf = data.count(b"\r\n")
    if data.count(b"\r") != crlf or data.count(b"\n") != crlf:
        data = _LINE_ENDINGS.sub(b"\r\n", data)
    return data if data.endswith(b"\r\n") else data + b"\r\n"


def _envelope_address(address: str) -> bytes:
    """`<addr>` for MAIL FROM / RCPT TO. ValueError (nothing is sent) for anything but a plain ASCII
    addr-spec, so no address can smuggle a command or a second recipient."""
    return b"<" + rfc5322.addr_spec(address).encode("ascii") + b">"


def _code_of(exc: BaseException) -> int | None:
    return exc.code if isinstance(exc, aiosmtplib.SMTPResponseException) else None


def _reply_of(exc: BaseException) -> str:
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return exc.message
    return f"{type(exc).__name__}: {exc}"


async def _quit(connection: _Connection) -> None:
    try:
        await connection.client.quit()
    except (aiosmtplib.SMTPException, OSError):
        connection.client.close()


async def _reset(connection: _Connection) -> None:
    try:
        await connection.client.rset()
    except (aiosmtplib.SMTPException, OSError):
        connection.client.close()


async def _discard(connection: _Connection) -> None:
    # No QUIT on a connection already in doubt: it could block for the full timeout.
    connection.client.close()
