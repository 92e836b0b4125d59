"""Use cases for the events billing reacts to: the course projection, the invoice run and registration
outcomes. Each runs inside the consumer's transaction (inbox + projection + documents + outbox commit
together) and starts by locking the course row, so one course's billing steps never interleave."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from uuid import UUID

from komponent_contracts.events import (
    CourseCancelled,
    CoursePublished,
    CourseUpdated,
    Event,
    InvoiceDue,
    ParticipantSubstituted,
    RegistrationBecameBinding,
    RegistrationCancelled,
    RegistrationConfirmed,
    RegistrationPromoted,
)
from komponent_runtime.database import Connection
from komponent_runtime.telemetry import continuing_trace

from ..adapters import repository as repo
from ..adapters.document_snapshot import load_snapshot
from ..domain.documents import Invoice, cancellation_fee_line
from ..domain.lifecycle import (
    BillingAction,
    IssueCreditNote,
    IssuedInvoice,
    IssueInvoice,
    due_for_invoice,
    on_course_cancelled,
    on_participant_substituted,
    on_registration_cancelled,
)
from .issuing import BillingContext, issue_credit_note, issue_invoice
from .mapping import buyer_snapshot, course_line, course_note, course_period


def _issued(invoices: list[repo.StoredDocument]) -> tuple[IssuedInvoice, ...]:
    return tuple(
        IssuedInvoice(inv.number, load_snapshot(inv.snapshot).buyer, credited=inv.credited)
        for inv in invoices
    )


def invoices_now(course: repo.CourseRow) -> bool:
    """Whether a confirmed registration of the course is invoiced as soon as it is known: after the
    invoice run, unless the course is cancelled. Without a snapshot there is nothing to describe the
    course with yet; its arrival invoices them."""
    return course.snapshot is not None and course.invoice_run_at is not None and not course.cancelled


async def invoice_missing(conn: Connection, ctx: BillingContext, course: repo.CourseRow) -> int:
    """Invoice every confirmed registration of the course that has no invoice yet (issue #5 rules).

    Called after the course row is locked, by every input that can make an invoice due: InvoiceDue, a
    confirmation or promotion after it, and the course snapshot arriving late. Returns how many."""
    snapshot = course.snapshot
    if snapshot is None or not invoices_now(course):
        return 0
    issued = 0
    for registration in await repo.confirmed_registrations(conn, course.course_id):
        invoices = _issued(await repo.invoices_of_registration(conn, registration.registration_id))
        if not due_for_invoice(
            confirmed=True,
            invoice_run_reached=True,
            course_cancelled=course.cancelled,
            price_oere=snapshot.price_excl_vat_ore,
            invoices=invoices,
        ):
            continue
        await issue_invoice(
            conn,
            ctx,
            course_id=course.course_id,
            registration_id=registration.registration_id,
            buyer=buyer_snapshot(registration.buyer),
            lines=(course_line(snapshot, registration.participant.name),),
            delivery=course_period(snapshot),
            note=course_note(snapshot),
            link_to=registration.trace_headers,
        )
        issued += 1
    return issued


async def on_invoice_due(conn: Connection, ctx: BillingContext, event: InvoiceDue) -> int:
    course = await repo.lock_course(conn, event.course_id)
    if course.invoice_run_at is None:
        await repo.mark_invoice_run(conn, event.course_id, ctx.clock.now())
        course = await repo.lock_course(conn, event.course_id)
    return await invoice_missing(conn, ctx, course)


async def on_course_event(conn: Connection, ctx: BillingContext, event: Event) -> None:
    if isinstance(event, CoursePublished | CourseUpdated):
        await repo.lock_course(conn, event.course_id)
        await repo.save_course_snapshot(conn, event.course)
        await invoice_missing(conn, ctx, await repo.lock_course(conn, event.course_id))
    elif isinstance(event, CourseCancelled):
        await repo.lock_course(conn, event.course_id)
        await repo.mark_course_cancelled(conn, event.course_id)
        invoices = await repo.invoices_of_course(conn, event.course_id)
        await _carry_out(conn, ctx, invoices, on_course_cancelled(_issued(invoices)))


async def on_registration_event(
    conn: Connection, ctx: BillingContext, event: Event, trace_headers: dict[str, str] | None = None
) -> None:
    """`trace_headers`: the event's trace context, kept with a confirmed/promoted registration so its
    invoice (issued later, in the InvoiceDue's trace) can link back to it."""
    if isinstance(event, RegistrationConfirmed | RegistrationPromoted):
        course = await repo.lock_course(conn, event.course_id)
        await repo.upsert_registration(conn, _confirmed(event, trace_headers))
        # Confirmed after the invoice run (late registration, promotion): invoiced at once.
        await invoice_missing(conn, ctx, course)
    elif isinstance(event, RegistrationBecameBinding):
        await repo.set_registration_binding(conn, event.registration_id)
    elif isinstance(event, RegistrationCancelled):
        await repo.lock_course(conn, event.course_id)
        await repo.cancel_registration(conn, event.registration_id)
        invoices = await repo.invoices_of_registration(conn, event.registration_id)
        if event.by_course_cancellation:
            actions = on_course_cancelled(_issued(invoices))
        else:
            actions = on_registration_cancelled(
                _issued(invoices), was_binding=event.binding, policy=ctx.cancellation
            )
        await _carry_out(conn, ctx, invoices, actions)
    elif isinstance(event, ParticipantSubstituted):
        await repo.lock_course(conn, event.course_id)
        await repo.substitute(conn, event.registration_id, event.new_participant, event.new_buyer)
        invoices = await repo.invoices_of_registration(conn, event.registration_id)
        actions = on_participant_substituted(_issued(invoices), buyer_snapshot(event.new_buyer))
        await _carry_out(conn, ctx, invoices, actions, participant_name=event.new_participant.name)


async def on_confirmations(
    conn: Connection,
    ctx: BillingContext,
    confirmations: Sequence[tuple[RegistrationConfirmed | RegistrationPromoted, dict[str, str]]],
) -> None:
    """A run of confirmations and promotions (each with its trace context) in partition order, ending as
    `on_registration_event` one by one would, in two statements for a gathered batch instead of two per
    event: the courses locked together, then the registrations of courses that invoice later stored
    together (the last event per registration wins, as it would one by one). A course that invoices now
    takes its registrations one by one, each in its own trace, as its invoices go out with them."""
    courses = await repo.lock_courses(conn, {event.course_id for event, _ in confirmations})
    later: dict[UUID, repo.RegistrationRow] = {}
    now = []
    for event, trace_headers in confirmations:
        if invoices_now(courses[event.course_id]):
            now.append((event, trace_headers))
        else:
            later.pop(event.registration_id, None)  # re-inserted: keeps the order of the last event
            later[event.registration_id] = _confirmed(event, trace_headers)
    await repo.upsert_registrations(conn, list(later.values()))
    for event, trace_headers in now:
        with continuing_trace(trace_headers):
            await on_registration_event(conn, ctx, event, trace_headers)


def _confirmed(
    event: RegistrationConfirmed | RegistrationPromoted, trace_headers: dict[str, str] | None
) -> repo.RegistrationRow:
    return repo.RegistrationRow(
        registration_id=event.registration_id,
        course_id=event.course_id,
        status="confirmed",
        binding=event.binding,
        participant=event.participant,
        buyer=event.buyer,
        trace_headers=trace_headers or {},
    )


async def _carry_out(
    conn: Connection,
    ctx: BillingContext,
    invoices: list[repo.StoredDocument],
    actions: tuple[BillingAction, ...],
    *,
    participant_name: str | None = None,
) -> None:
    """Issue what the domain decided, in order (a credit note before the invoice replacing it)."""
    by_number = {inv.number: inv for inv in invoices}
    for action in actions:
        if isinstance(action, IssueCreditNote):
            await issue_credit_note(conn, ctx, by_number[action.invoice_number], action.reason)
        elif isinstance(action, IssueInvoice):
            assert action.replaces is not None, "new invoices outside the invoice run always replace one"
            replaced = by_number[action.replaces]
            original = load_snapshot(replaced.snapshot)
            assert isinstance(original, Invoice)
            lines = original.lines
            if action.fee_percent < 100:
                lines = tuple(cancellation_fee_line(line, action.fee_percent) for line in lines)
            if participant_name is not None:
                # The new invoice bills the same seat at the same price, for the colleague who takes it.
                lines = tuple(dataclasses.replace(line, participant_name=participant_name) for line in lines)
            await issue_invoice(
                conn,
                ctx,
                course_id=UUID(original.course_id),
                registration_id=replaced.registration_id,
                buyer=action.buyer,
                lines=lines,
                delivery=original.delivery,
                note=original.note,
                replaces=replaced.document_id,
            )
