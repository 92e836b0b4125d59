"""Delivery over SMTP through a small pool of long-lived aiosmtplib connections.

Why a pool: a TCP + (START)TLS + EHLO + AUTH handshake per message costs more than the message itself and
relays rate-limit new connections; a few warm connections reused LIFO (so the idle ones age out) keep
throughput up without opening one connection per message.

Each send ends in a verdict the service layer can record (EmailSent/EmailFailed): accepted, transient or
permanent, with the server's own reply text for the email log. Reading the verdict is domain policy
(`domain.smtp_replies`); this module only maps aiosmtplib's exceptions onto it.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from email.message import Message

import aiosmtplib

from ..domain.smtp_replies import DeliveryOutcome, RetryPolicy, classify_connection_failure, classify_reply

_ACCEPTED = 250

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
    # Exchange and many relays cap messages per connection (often 100); recycling before the cap avoids a
    # needless 4xx in the middle of a batch.
    max_messages_per_connection: int = 100
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

    async def __aenter__(self) -> SmtpPool:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def deliver(self, message: Message) -> SendResult:
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

    async def send_once(self, message: Message) -> SendResult:
        if self._closed:
            raise RuntimeError("SMTP pool is closed")
        slot = await self._slots.get()
        keep: _Connection | None = None
        try:
            try:
                connection = await self._ready(slot)
            except (aiosmtplib.SMTPException, OSError) as exc:
                # Not the message's fault (server away, TLS or AUTH trouble): it never got a verdict.
                return SendResult(classify_connection_failure(), _code_of(exc), _reply_of(exc))
            try:
                result, usable = await self._send_on(connection, message)
            except BaseException:
                # Cancelled mid-transaction: the protocol state is unknown, so the connection goes too.
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
        self.connections_opened += 1
        return _Connection(client, last_used=self._monotonic())

    async def _send_on(self, connection: _Connection, message: Message) -> tuple[SendResult, bool]:
        """One SMTP transaction. Returns the verdict and whether the connection may be reused."""
        try:
            _, reply = await connection.client.send_message(
                message, sender=self._settings.envelope_from or None
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            # We address one recipient per message, so the first refusal is the verdict.
            refused = exc.recipients[0]
            outcome = classify_reply(refused.code, during_rcpt=True)
            return SendResult(outcome, refused.code, refused.message), True
        except aiosmtplib.SMTPNotSupported as exc:
            # E.g. an address needs SMTPUTF8 the relay lacks: resending cannot change that.
            return SendResult(DeliveryOutcome.PERMANENT, None, str(exc)), True
        except aiosmtplib.SMTPResponseException as exc:
            # aiosmtplib has sent RSET already; 421 means the server is closing the channel.
            return SendResult(classify_reply(exc.code), exc.code, exc.message), exc.code != 421
        except (aiosmtplib.SMTPException, OSError) as exc:
            # Disconnect or timeout mid-transaction. If it happened after the final "." the server may
            # have accepted it; a retry then duplicates, which the ledger-derived Message-ID makes visible.
            return SendResult(classify_connection_failure(), None, _reply_of(exc)), False
        connection.messages_sent += 1
        connection.last_used = self._monotonic()
        return SendResult(DeliveryOutcome.ACCEPTED, _ACCEPTED, reply), True


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


async def _discard(connection: _Connection) -> None:
    # No QUIT on a connection already in doubt: it could block for the full timeout.
    connection.client.close()
