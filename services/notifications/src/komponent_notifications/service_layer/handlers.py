"""Use cases run for each consumed event, inside the runtime's inbox transaction.

They only update projections and plan emails into the send ledger; nothing here talks to SMTP or billing,
so a consumer never holds its partition while a mail server or the billing API is slow.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from komponent_contracts import events as ev
from komponent_runtime.consuming import Delivery
from komponent_runtime.database import Connection

from ..adapters import repository as repo
from ..domain.policy import NotificationPolicy
from . import erasure
from .planning import PlannedEmail, plan_billing_email, plan_course_reminder, plan_registration_outcome
from .projection import RegistrationProjection, needs_stored_rows
from .sender import LEDGER_CHANNEL

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Handlers:
    policy: NotificationPolicy
    message_id_domain: str

    async def on_course_event(self, conn: Connection, delivery: Delivery) -> None:
        match delivery.event.data:
            case ev.CoursePublished(course=course) | ev.CourseUpdated(course=course):
                await repo.save_course(conn, course)
            case ev.CourseCancelled(course_id=course_id, reason=reason):
                await repo.cancel_course(conn, course_id, reason)

    async def on_registration_outcomes(self, conn: Connection, deliveries: Sequence[Delivery]) -> None:
        # One transaction per fetched batch, in a handful of round trips whatever its size: the projection
        # rows the batch touches are read once, advanced in memory event by event (planning needs the
        # state just before each event; events of one course arrive in partition order), written back
        # once, and every planned email goes into the ledger with one statement. An erasure is applied
        # on its own, in its place, between the runs around it.
        run: list[Delivery] = []
        for delivery in deliveries:
            data = delivery.event.data
            if isinstance(data, ev.ParticipantDataErased | ev.FormerParticipantDataErased):
                await self._plan_outcomes(conn, run)
                run = []
                if isinstance(data, ev.ParticipantDataErased):
                    await erasure.erase(conn, data)
                else:
                    await erasure.erase_former(conn, data)
            else:
                run.append(delivery)
        await self._plan_outcomes(conn, run)

    async def _plan_outcomes(self, conn: Connection, deliveries: Sequence[Delivery]) -> None:
        if not deliveries:
            return
        ids = {i for d in deliveries if (i := getattr(d.event.data, "registration_id", None))}
        # A run of confirmations needs nothing stored (the usual batch): a round trip fewer.
        stored = (
            await repo.projected_registrations(conn, ids)
            if needs_stored_rows(d.event.data for d in deliveries)
            else {}
        )
        projection = RegistrationProjection(stored)
        planned: list[tuple[PlannedEmail, dict[str, str]]] = []
        for delivery in deliveries:
            event = delivery.event.data
            registration_id = getattr(event, "registration_id", None)
            known = projection.view(registration_id) if registration_id else None
            emails = plan_registration_outcome(delivery.event.id, event, known, self.policy)
            planned += [(p, delivery.trace_headers) for p in emails]
            projection.apply(event)
        # The projection's changes and the planned emails in one statement, which also wakes the sender.
        added = await repo.save_registrations_and_plan(
            conn, projection.changed(), planned, self.message_id_domain, notify_channel=LEDGER_CHANNEL
        )
        log.debug("emails planned", extra={"events": len(deliveries), "planned": len(added)})

    async def on_course_reminder(self, conn: Connection, delivery: Delivery) -> None:
        event = delivery.event.data
        assert isinstance(event, ev.CourseReminderDue)
        confirmed = await repo.confirmed_registrations(conn, event.course_id)
        await self._plan(
            conn, plan_course_reminder(delivery.event.id, event, confirmed, self.policy), delivery
        )

    async def on_billing_event(self, conn: Connection, delivery: Delivery) -> None:
        event = delivery.event.data
        if isinstance(event, ev.InvoiceIssued | ev.CreditNoteIssued):
            if isinstance(event, ev.InvoiceIssued):
                await repo.save_invoice(conn, event)
            names = await repo.participant_names(conn, event.registration_ids)
            planned = plan_billing_email(delivery.event.id, event, names, None)
        elif isinstance(event, ev.PaymentReminderDue):
            invoice = await repo.invoice(conn, event.document_id)
            names = await repo.participant_names(conn, invoice.registration_ids) if invoice else []
            planned = plan_billing_email(delivery.event.id, event, names, invoice)
        else:
            return  # PaymentRegistered: no email
        await self._plan(conn, planned, delivery)

    async def _plan(self, conn: Connection, planned: list[PlannedEmail], delivery: Delivery) -> None:
        await self._plan_traced(conn, [(p, delivery.trace_headers) for p in planned], events=1)

    async def _plan_traced(
        self, conn: Connection, planned: list[tuple[PlannedEmail, dict[str, str]]], *, events: int
    ) -> None:
        """Into the send ledger, each email with the trace context of the event that planned it."""
        if not planned:
            return
        # The sender is woken (at commit) by the same statement when anything was added.
        added = await repo.add_to_ledger_traced(
            conn, planned, self.message_id_domain, notify_channel=LEDGER_CHANNEL
        )
        log.debug("emails planned", extra={"events": events, "planned": len(added)})
