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
from komponent_runtime.wakeup import notify

from ..adapters import repository as repo
from ..domain.policy import NotificationPolicy
from . import erasure
from .planning import PlannedEmail, plan_billing_email, plan_course_reminder, plan_registration_outcome
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
        # One transaction per fetched batch; events of one course arrive in partition order, so the
        # projection is updated event by event before the next one is planned.
        for delivery in deliveries:
            if isinstance(delivery.event.data, ev.ParticipantDataErased):
                await erasure.erase(conn, delivery.event.data)
            else:
                await self._on_registration_outcome(conn, delivery)

    async def _on_registration_outcome(self, conn: Connection, delivery: Delivery) -> None:
        event = delivery.event.data
        registration_id = getattr(event, "registration_id", None)
        known = await repo.registration(conn, registration_id) if registration_id else None
        planned = plan_registration_outcome(delivery.event.id, event, known, self.policy)
        await self._project_registration(conn, event)
        await self._plan(conn, planned, delivery)

    async def _project_registration(self, conn: Connection, event: ev.Event) -> None:
        match event:
            case ev.RegistrationConfirmed() | ev.RegistrationPromoted():
                await repo.save_registration(
                    conn,
                    event.registration_id,
                    event.course_id,
                    "confirmed",
                    event.participant,
                    event.buyer,
                    event.binding,
                )
            case ev.RegistrationWaitlisted():
                await repo.save_registration(
                    conn, event.registration_id, event.course_id, "waitlisted", event.participant, None, None
                )
            case ev.RegistrationBecameBinding():
                await repo.mark_binding(conn, event.registration_id)
            case ev.RegistrationCancelled():
                await repo.save_registration(
                    conn, event.registration_id, event.course_id, "cancelled", event.participant, None, None
                )
            case ev.ParticipantSubstituted():
                await repo.save_registration(
                    conn,
                    event.registration_id,
                    event.course_id,
                    "confirmed",
                    event.new_participant,
                    event.new_buyer,
                    event.binding,
                )

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
        if planned:
            added = await repo.add_to_ledger(
                conn, planned, self.message_id_domain, trace_headers=delivery.trace_headers
            )
            if added:
                await notify(conn, LEDGER_CHANNEL)
            log.info(
                "emails planned",
                extra={
                    "event_id": str(delivery.event.id),
                    "event_type": delivery.event.type,
                    "planned": len(added),
                },
            )
