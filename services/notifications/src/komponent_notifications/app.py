"""Composition root: consumers, the sender loop and the email log API, built on the shared runtime."""

from __future__ import annotations

from pathlib import Path

import asyncpg
from komponent_contracts import events as ev
from komponent_contracts import topics
from komponent_runtime.clock import Clock
from komponent_runtime.service import Runtime, ServiceParts

from .adapters.billing_documents import DocumentSource, HttpBillingDocuments
from .adapters.mime import MimeComposer
from .adapters.rendering import EmailRenderer
from .adapters.smtp_pool import SmtpPool
from .entrypoints.http import email_log_router
from .service_layer.handlers import Handlers
from .service_layer.sender import EmailSender, MailTransport
from .settings import NotificationSettings

MIGRATIONS = Path(__file__).parent / "migrations"


def build_sender(
    settings: NotificationSettings,
    pool: asyncpg.Pool,
    transport: MailTransport,
    documents: DocumentSource,
    clock: Clock,
) -> EmailSender:
    """The sender exactly as the service runs it; the benchmark and the sender tests build theirs here too."""
    return EmailSender(
        pool=pool,
        transport=transport,
        composer=MimeComposer(settings.identity(), EmailRenderer()),
        documents=documents,
        clock=clock,
        fallback_contact=settings.fallback_contact(),
        config=settings.sender(),
    )


def wire(rt: Runtime) -> ServiceParts:
    settings = NotificationSettings()
    handlers = Handlers(settings.policy(), settings.message_id_domain)

    course_types = {ev.CoursePublished.ce_type, ev.CourseUpdated.ce_type, ev.CourseCancelled.ce_type}
    rt.consumer("course-projection", topics.COURSE, course_types).handle_each(handlers.on_course_event)
    registration_types = {
        t.ce_type
        for t in (
            ev.RegistrationConfirmed,
            ev.RegistrationWaitlisted,
            ev.RegistrationPromoted,
            ev.RegistrationBecameBinding,
            ev.RegistrationCancelled,
            ev.ParticipantSubstituted,
            ev.ParticipantDataErased,
            ev.FormerParticipantDataErased,
        )
    }
    rt.consumer("registration-emails", topics.REGISTRATION, registration_types).handle_batches(
        handlers.on_registration_outcomes, max_records=200
    )
    rt.consumer(
        "course-reminders", topics.COURSE_CALENDAR, {ev.CourseReminderDue.ce_type}, gather=True
    ).handle_each(handlers.on_course_reminder)
    billing_types = {ev.InvoiceIssued.ce_type, ev.CreditNoteIssued.ce_type, ev.PaymentReminderDue.ce_type}
    rt.consumer("billing-emails", topics.BILLING, billing_types, gather=True).handle_each(
        handlers.on_billing_event
    )

    sender = build_sender(
        settings,
        rt.pool,
        SmtpPool(settings.smtp()),
        HttpBillingDocuments(settings.billing_url, settings.billing_api_key),
        rt.clock,
    )

    async def email_sender() -> None:
        await sender.run()

    http = rt.http_app(
        "Notifications API", "Email log and resend for Komponent's participant and billing emails."
    )
    http.include_router(email_log_router(rt.pool, settings.message_id_domain))
    return ServiceParts(http=http, background=[email_sender])
