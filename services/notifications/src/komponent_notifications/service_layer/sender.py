"""The sender loop: drain the send ledger through the SMTP pool.

One round: claim due rows (one per recipient, oldest first; the claim counts the attempt and leases the
row in its own short transaction), build and compose each email ahead of the SMTP lanes, and send on all
pool connections at once. Nothing is held open while SMTP talks.

At most one duplicate per crash of this process, with every connection busy: a crash between SMTP
acceptance and the recorded verdict leaves the row claimed, so the lease runs out and it is sent again. The
pool's final-dot gate (`adapters.smtp_pool`) lets only one connection at a time go from its final "." to its
recorded verdict, and an accepted verdict is recorded right there in one statement (`adapters.sent_verdict`),
so at any moment at most one message is accepted and unrecorded. Every other verdict (refusals, no course or
PDF yet, unreachable server: nothing was accepted) is group-committed outside the gate. A re-sent message is
visible as attempts > outcomes and carries the same Message-ID.

No duplicate when PostgreSQL crashes instead: claims and accepted verdicts go over one connection the sender
keeps, which remembers each accepted verdict until it is on disk and records it again if it was lost
(`verdict_connection`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

import asyncpg
from komponent_contracts import CloudEvent
from komponent_contracts import events as ev
from komponent_runtime import outbox
from komponent_runtime.clock import Clock
from komponent_runtime.metrics import meter
from komponent_runtime.transient import TRANSIENT_ERRORS
from komponent_runtime.wakeup import Wakeup, notify
from opentelemetry import propagate, trace

from ..adapters import contract_mapping as mapping
from ..adapters import repository as repo
from ..adapters import sent_verdict
from ..adapters.billing_documents import DocumentSource, DocumentUnavailable
from ..adapters.mime import ComposedEmail, MimeComposer
from ..adapters.smtp_pool import FinalDotWithheld, RecordVerdict, SendResult
from ..domain.course import ContactPerson, CourseSnapshot
from ..domain.emails import EmailKind, PdfDocument
from ..domain.smtp_replies import DeliveryOutcome, RetryPolicy
from .building import NEEDS_PDF, build_email, stored_event
from .verdict_connection import AcceptedVerdict, VerdictConnection

_tracer = trace.get_tracer("komponent_notifications.sender")
# Consumers NOTIFY this channel when they plan emails, so the sender starts at once instead of at its
# next poll.
LEDGER_CHANNEL = "send_ledger"

log = logging.getLogger(__name__)
emails_sent = meter.create_counter("komponent_emails_sent", description="emails accepted by SMTP, by kind")
emails_failed = meter.create_counter(
    "komponent_emails_failed", description="emails given up (permanent reply or retries spent), by kind"
)

# The email contract names kinds from the platform's point of view; ours are named after the email.
CONTRACT_KIND: dict[EmailKind, str] = {
    EmailKind.REGISTRATION_CONFIRMED: "registration_confirmed",
    EmailKind.WAITLISTED: "registration_waitlisted",
    EmailKind.PROMOTED_FROM_WAITING_LIST: "registration_promoted",
    EmailKind.BECAME_BINDING: "registration_binding",
    EmailKind.CANCELLATION_RECEIPT: "registration_cancelled",
    EmailKind.SUBSTITUTED_OUT: "participant_substituted",
    EmailKind.SUBSTITUTED_IN: "participant_substituted",
    EmailKind.COURSE_CANCELLED: "course_cancelled",
    EmailKind.INVOICE: "invoice",
    EmailKind.CREDIT_NOTE: "credit_note",
    EmailKind.PAYMENT_REMINDER: "payment_reminder",
    EmailKind.COURSE_REMINDER: "course_reminder",
}

# A transient failure is retried for about three days (like an MTA's queue lifetime), then reported.
DURABLE_RETRY = RetryPolicy(
    max_attempts=300, base_delay=timedelta(seconds=2), factor=2, max_delay=timedelta(minutes=15)
)


class MailTransport(Protocol):
    async def send_once(self, message: ComposedEmail, record: RecordVerdict | None = None) -> SendResult:
        """One attempt; `record` gets the verdict exactly once, inside the final-dot gate when the message
        may have been accepted (see `adapters.smtp_pool`)."""
        ...


# What ends a sending round without blaming an email: the loop waits and claims again. Any server error, not
# only the transient ones: an email that cannot be built or sent gets its own verdict within the round.
_ROUND_INTERRUPTED: tuple[type[Exception], ...] = (*TRANSIENT_ERRORS, asyncpg.PostgresError)


@dataclass(frozen=True)
class SenderConfig:
    batch_size: int = 100
    lease_seconds: float = 120.0  # longer than one round can take (SMTP timeout 30 s)
    idle_poll_seconds: float = 0.2
    retry: RetryPolicy = DURABLE_RETRY
    # Bound on waiting for a course's snapshot that has not arrived (course events on another topic).
    course_wait: timedelta = timedelta(hours=6)
    source: str = "/notifications"
    # Lanes: SMTP transactions in progress at once, one per pool connection. However many there are, the
    # pool's final-dot gate keeps at most one message accepted and unrecorded (one duplicate per crash).
    lanes: int = 4


@dataclass(frozen=True)
class _Verdict:
    outcome: DeliveryOutcome
    code: int | None
    reply: str
    counts_as_smtp: bool = True  # False: never reached SMTP (no course yet, no PDF yet)


@dataclass
class SenderStats:
    sent: int = 0
    failed: int = 0
    rescheduled: int = 0


@dataclass
class EmailSender:
    pool: asyncpg.Pool
    transport: MailTransport
    composer: MimeComposer
    documents: DocumentSource
    clock: Clock
    fallback_contact: ContactPerson
    config: SenderConfig = field(default_factory=SenderConfig)
    jitter: Callable[[], float] = random.random
    stats: SenderStats = field(default_factory=SenderStats)
    _courses: dict[tuple[Any, int, str], CourseSnapshot] = field(default_factory=dict, repr=False)
    _claim_again: bool = field(default=False, repr=False)  # set by each claim: claim again at once
    _connection: VerdictConnection = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._connection = VerdictConnection(self.pool, self._count_sent)

    async def run(self) -> None:
        """Forever: drain what is due, then wait for new ledger rows (NOTIFY) or the poll interval.
        Database trouble is waited out, never fatal."""
        backoff = 0.1
        wakeup = Wakeup(self.pool, LEDGER_CHANNEL)
        try:
            while True:
                try:
                    await self.send_due()
                    # A round that was not full took everything due when it claimed but what was queued
                    # behind its recipients; only that, rows added since (their NOTIFY has arrived: the wait
                    # returns at once) and retries coming due (the poll) need another claim. Saves an empty
                    # claim per round.
                    if not self._claim_again:
                        await wakeup.wait(self.config.idle_poll_seconds)
                    backoff = 0.1
                except asyncio.CancelledError:
                    raise
                except _ROUND_INTERRUPTED as exc:
                    log.warning("sender interrupted, retrying", extra={"error": type(exc).__name__})
                    await self._connection.drop()
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 5.0)
        finally:
            await wakeup.close()  # its listening connection goes back to the pool
            await self.close()

    @property
    def unflushed_verdicts(self) -> int:
        """Accepted verdicts recorded but not yet known to be on disk (at most about one round's)."""
        return self._connection.unflushed

    async def close(self) -> None:
        """Give the sender's own connection back to the pool (after `send_due` rounds run by hand)."""
        await self._connection.drop()

    async def send_due(self) -> int:
        """One round; returns how many rows were claimed."""
        # No transaction: the claim (with its rows' courses) is one statement, atomic by itself. On the
        # connection that records accepted verdicts: a claim that claims rows commits with a WAL flush, which
        # puts every verdict recorded before it on disk.
        conn = await self._connection.current()
        claimed = await repo.claim_due(conn, self.config.batch_size, self.config.lease_seconds)
        rows, courses = claimed.rows, claimed.courses
        if rows:
            self._connection.flushed()
        self._claim_again = len(rows) >= self.config.batch_size or claimed.queued_behind
        if not rows:
            return 0
        recorder = _Recorder(self._record)
        announce = _RelayWake(len(rows))
        lanes = max(1, self.config.lanes)
        # Composing is CPU work on this event loop, sending is mostly waiting for the server: compose
        # ahead into a short queue so the connections never wait for a message to be composed.
        ready: asyncio.Queue[tuple[Any, ComposedEmail | _Verdict] | None] = asyncio.Queue(maxsize=2 * lanes)

        async def compose_ahead() -> None:
            for row in rows:
                await ready.put((row, await self._prepare(row, courses.get(row["course_id"]))))
            for _ in range(lanes):
                await ready.put(None)

        # Accepted verdicts are recorded inside the final-dot gate on the sender's connection (only one
        # message is ever in the gate); everything else goes to the group commit.
        async def lane() -> None:
            while (item := await ready.get()) is not None:
                row, prepared = item
                if isinstance(prepared, _Verdict):
                    await recorder.record(row, prepared, announce.verdict(accepted=False))
                    continue

                async def record(result: SendResult, row: Any = row) -> None:
                    verdict = _Verdict(result.outcome, result.code, result.reply[:500])
                    if verdict.outcome is DeliveryOutcome.ACCEPTED:
                        wake = announce.verdict(accepted=True)
                        await self._record_accepted(conn, row, verdict, wake)
                    else:
                        await recorder.record(row, verdict, announce.verdict(accepted=False))

                # The span covers the transaction, the wait for the gate and the recorded verdict.
                with _smtp_span(row) as span:
                    result = await self.transport.send_once(prepared, record)
                    span.set_attribute("smtp.reply_code", result.code or 0)
                    span.set_attribute("email.outcome", result.outcome.value)

        await _together([compose_ahead(), *(lane() for _ in range(lanes))])
        return len(rows)

    async def _prepare(self, row: Any, course: repo.KnownCourse | None) -> ComposedEmail | _Verdict:
        """The composed message, or the verdict when it cannot be sent now (no course, no PDF) or ever."""
        if course is None:
            return _Verdict(DeliveryOutcome.TRANSIENT, None, "waiting for the course snapshot", False)
        kind = EmailKind(row["kind"])
        render_data = _json(row["render_data"])
        try:
            pdf = await self._pdf(kind, render_data)
        except DocumentUnavailable as exc:
            return _Verdict(DeliveryOutcome.TRANSIENT, None, str(exc), False)
        try:
            email = build_email(
                kind,
                row["event_id"],
                render_data,
                self._course(course),
                cancel_reason=course.cancel_reason,
                pdf=pdf,
            )
            return self.composer.compose(email, now=self.clock.now())
        except Exception as exc:  # a bug or impossible data: resending cannot help, a human must look
            log.exception("email could not be composed", extra={"email_id": str(row["email_id"])})
            return _Verdict(DeliveryOutcome.PERMANENT, None, f"not composable: {type(exc).__name__}", False)

    def _course(self, course: repo.KnownCourse) -> CourseSnapshot:
        # Mapped once per course revision, not per email: every participant of a course shares it (and
        # the calendar file cached on it).
        key = (course.snapshot.course_id, course.revision, course.cancel_reason)
        mapped = self._courses.get(key)
        if mapped is None:
            if len(self._courses) > 256:
                self._courses.clear()
            mapped = mapping.course_snapshot(
                course.snapshot, revision=course.revision, fallback_contact=self.fallback_contact
            )
            self._courses[key] = mapped
        return mapped

    async def _pdf(self, kind: EmailKind, render_data: dict[str, Any]) -> PdfDocument | None:
        if kind not in NEEDS_PDF:
            return None
        event = stored_event(render_data)
        assert isinstance(event, ev.InvoiceIssued | ev.CreditNoteIssued)
        label = "Faktura" if kind is EmailKind.INVOICE else "Kreditnota"
        return PdfDocument(f"{label} {event.document_number}.pdf", await self.documents.pdf(event.pdf_url))

    async def _record_accepted(self, conn: Any, row: Any, verdict: _Verdict, wake_relay: bool) -> None:
        """One accepted verdict and its EmailSent, in one statement (inside the final-dot gate),
        remembered until it is on disk."""
        accepted = AcceptedVerdict(
            row["id"],
            verdict.code,
            verdict.reply,
            self._outcome_event(row, verdict, sent=True),
            _trace_of(row),
            CONTRACT_KIND[EmailKind(row["kind"])],
        )
        self._connection.remember(accepted)
        if not await sent_verdict.record_sent(
            conn,
            accepted.ledger_id,
            accepted.code,
            accepted.reply,
            accepted.event,
            accepted.trace,
            wake_relay=wake_relay,
        ):
            log.error(
                "ledger row of an accepted email not found pending", extra={"email_id": str(row["email_id"])}
            )
            return
        accepted.recorded = True
        self._count_sent(accepted)

    def _count_sent(self, accepted: AcceptedVerdict) -> None:
        self.stats.sent += 1
        emails_sent.add(1, {"kind": accepted.kind})

    async def _record(self, results: list[tuple[Any, _Verdict]], wake_relay: bool = False) -> None:
        """Record verdicts in ONE transaction, with their EmailSent/EmailFailed in the outbox (and wake
        the relay for the round's EmailSent rows recorded in the gate if `wake_relay`)."""
        sent, failed, later, outcomes = [], [], [], []
        now = self.clock.now()
        for row, verdict in results:
            entry = (row["id"], verdict.code, verdict.reply)
            if verdict.outcome is DeliveryOutcome.ACCEPTED:
                sent.append(entry)
                outcomes.append((self._outcome_event(row, verdict, sent=True), _trace_of(row)))
            elif verdict.outcome is DeliveryOutcome.TRANSIENT and self._may_retry(row, verdict, now):
                delay = self.config.retry.delay_before(row["attempts"] + 1, self.jitter())
                later.append((*entry, delay.total_seconds()))
            else:
                failed.append(entry)
                outcomes.append((self._outcome_event(row, verdict, sent=False), _trace_of(row)))
        async with self.pool.acquire() as conn, conn.transaction():
            # No wait for the WAL flush: if *this* process dies the commit is still durable (PostgreSQL
            # flushes it within wal_writer_delay); only a PostgreSQL crash can lose the last moment of
            # verdicts, and then their rows are still claimed with attempts > outcomes: sent again after
            # the lease and counted as possible duplicates, exactly like a crash of ours. Never lost.
            # The claim (which counts the attempt) stays synchronous. Verdicts wait for their commit, so
            # a disk flush per commit was the sender's slowest step. (Accepted verdicts: sent_verdict.)
            await conn.execute("SET LOCAL synchronous_commit TO off")
            # Only the statements this group needs: every round trip here is time a lane waits.
            if sent:
                await repo.mark_sent(conn, sent)
            if failed:
                await repo.mark_failed(conn, failed)
            if later:
                await repo.reschedule(conn, later)
            # EmailSent/EmailFailed continue the trace of the email they report on.
            await outbox.enqueue_traced(conn, outcomes)  # wakes the relay when it adds any
            if wake_relay and not outcomes:
                await notify(conn, outbox.NOTIFY_CHANNEL)
        self.stats.sent += len(sent)
        self.stats.failed += len(failed)
        self.stats.rescheduled += len(later)
        sent_ids, failed_ids = {e[0] for e in sent}, {e[0] for e in failed}
        for row, verdict in results:
            # Counted once the verdict is committed; the kind is the contract's, no address.
            if row["id"] in sent_ids:
                emails_sent.add(1, {"kind": CONTRACT_KIND[EmailKind(row["kind"])]})
            elif row["id"] in failed_ids:
                emails_failed.add(1, {"kind": CONTRACT_KIND[EmailKind(row["kind"])]})
            if verdict.outcome is not DeliveryOutcome.ACCEPTED:
                # Ids and SMTP codes only: replies can quote the recipient's address.
                log.info(
                    "email not delivered",
                    extra={
                        "email_id": str(row["email_id"]),
                        "code": verdict.code,
                        "attempts": row["attempts"],
                    },
                )

    def _may_retry(self, row: Any, verdict: _Verdict, now: Any) -> bool:
        if not verdict.counts_as_smtp and verdict.reply.startswith("waiting for the course"):
            return bool(now - row["created_at"] < self.config.course_wait)
        return self.config.retry.should_retry(verdict.outcome, row["attempts"])

    def _outcome_event(self, row: Any, verdict: _Verdict, *, sent: bool) -> CloudEvent[Any]:
        common: dict[str, Any] = {
            "email_id": row["email_id"],
            "course_id": row["course_id"],
            "kind": CONTRACT_KIND[EmailKind(row["kind"])],
            "caused_by_event_id": row["caused_by"],
            "occurred_at": self.clock.now(),
            "smtp_reply": (verdict.reply or "no reply")[:500],
        }
        data: ev.Event = (
            ev.EmailSent(**common) if sent else ev.EmailFailed(**common, attempts=max(row["attempts"], 1))
        )
        return CloudEvent(data=data, source=self.config.source)


async def _together(coroutines: list[Coroutine[Any, Any, None]]) -> None:
    """Run a round's tasks; the first failure cancels the rest and is raised as itself (the run loop
    handles database and network errors by type), not as the sends it withheld at the gate."""
    try:
        async with asyncio.TaskGroup() as group:
            for coroutine in coroutines:
                group.create_task(coroutine)
    except BaseExceptionGroup as failed:
        causes = [e for e in failed.exceptions if not isinstance(e, FinalDotWithheld)]
        raise (causes or list(failed.exceptions))[0] from None


def _trace_of(row: Any) -> dict[str, str]:
    return {k: row[k] for k in ("traceparent", "tracestate") if row[k]}


def _smtp_span(row: Any) -> Any:
    """A CLIENT span for one SMTP transaction, child of the event that planned the email. Ids only:
    the recipient's address stays out of the span."""
    return _tracer.start_as_current_span(
        "smtp send",
        context=propagate.extract(_trace_of(row)),
        kind=trace.SpanKind.CLIENT,
        attributes={
            "email.id": str(row["email_id"]),
            "email.kind": str(row["kind"]),
            "email.attempt": int(row["attempts"]),
            "network.protocol.name": "smtp",
        },
    )


def _json(value: Any) -> dict[str, Any]:
    # asyncpg hands jsonb back as text unless a codec is set; the pool is the runtime's, so decode here.
    return value if isinstance(value, dict) else json.loads(value)


class _RelayWake:
    """Which statement of a round wakes the outbox relay: the one recording the round's last verdict, if
    the round recorded accepted emails (their EmailSent rows wait in the outbox), so the relay publishes
    them as one batch. (A round cut short leaves them to the relay's poll; so does, rarely, a last verdict
    committed before an accepted one still being recorded on another lane.)"""

    def __init__(self, verdicts: int) -> None:
        self._left = verdicts
        self._unannounced = False

    def verdict(self, *, accepted: bool) -> bool:
        """Count one verdict; True: its statement is to wake the relay."""
        self._left -= 1
        self._unannounced = self._unannounced or accepted
        wake = self._left == 0 and self._unannounced
        self._unannounced = self._unannounced and not wake
        return wake


class _Recorder:
    """Group commit: verdicts arriving while a commit runs go into the next one together."""

    def __init__(self, commit: Callable[[list[tuple[Any, _Verdict]], bool], Awaitable[None]]) -> None:
        self._commit = commit
        self._waiting: list[tuple[Any, _Verdict, bool, asyncio.Future[None]]] = []
        self._flushing: asyncio.Task[None] | None = None

    async def record(self, row: Any, verdict: _Verdict, wake_relay: bool) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((row, verdict, wake_relay, done))
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush())
        await done

    async def _flush(self) -> None:
        while self._waiting:
            group, self._waiting = self._waiting, []
            try:
                await self._commit(
                    [(row, verdict) for row, verdict, _, _ in group], any(w for _, _, w, _ in group)
                )
            except Exception as exc:
                for _, _, _, done in group:
                    if not done.done():  # its lane may have been cancelled with the round
                        done.set_exception(exc)
            else:
                for _, _, _, done in group:
                    if not done.done():
                        done.set_result(None)
