"""Composition root: builds the billing service from the runtime's plumbing and billing's adapters."""

from __future__ import annotations

import logging
from pathlib import Path

from komponent_contracts import topics
from komponent_contracts.events import (
    CourseCancelled,
    CoursePublished,
    CourseUpdated,
    InvoiceDue,
    ParticipantDataErased,
    ParticipantSubstituted,
    RegistrationBecameBinding,
    RegistrationCancelled,
    RegistrationConfirmed,
    RegistrationPromoted,
)
from komponent_runtime.service import Runtime, ServiceParts

from .adapters.access_point import FolderAccessPoint
from .adapters.artefacts import OfficialArtefacts
from .adapters.einvoice_validation import EInvoiceValidator
from .config import BillingSettings, SellerSettings
from .domain.documents import PaymentTerms
from .domain.reminders import ReminderPolicy
from .entrypoints.consumers import BillingConsumers
from .entrypoints.http import make_router
from .entrypoints.loops import periodic
from .service_layer.issuing import BillingContext
from .service_layer.receivables import deliver_pending, send_due_reminders

MIGRATIONS = Path(__file__).parent / "migrations"


log = logging.getLogger(__name__)


def build_context(rt: Runtime, settings: BillingSettings) -> BillingContext:
    # The official rules are compiled once, at start-up; a missing rule set stops the service here
    # (RulesNotInstalled) rather than letting it issue unvalidated documents.
    validator = EInvoiceValidator()
    seller = SellerSettings().seller()  # a wrong or (when required) placeholder seller stops start-up
    if seller.is_placeholder:
        log.warning("the seller's CVR, bank account or IBAN is a placeholder: set BILLING_SELLER_*")
    return BillingContext(
        artefacts=OfficialArtefacts(validator),
        clock=rt.clock,
        seller=seller,
        payment_terms=PaymentTerms(settings.payment_days),
        reminders=ReminderPolicy(fees_enabled=settings.reminder_fees_enabled),
        delivery_format=settings.delivery_format.value,
    )


def wire(rt: Runtime) -> ServiceParts:
    settings = BillingSettings()
    ctx = build_context(rt, settings)
    consumers = BillingConsumers(ctx)

    rt.consumer(
        "course-projection",
        topics.COURSE,
        {CoursePublished.ce_type, CourseUpdated.ce_type, CourseCancelled.ce_type},
    ).handle_each(consumers.course_event)
    rt.consumer(
        "registrations",
        topics.REGISTRATION,
        {
            RegistrationConfirmed.ce_type,
            RegistrationPromoted.ce_type,
            RegistrationBecameBinding.ce_type,
            RegistrationCancelled.ce_type,
            ParticipantSubstituted.ce_type,
            ParticipantDataErased.ce_type,
        },
        gather=True,  # invoices go out weeks later: gather registrations into larger batches
    ).handle_batches(consumers.registration_events)
    rt.consumer("invoice-run", topics.COURSE_CALENDAR, {InvoiceDue.ce_type}, gather=True).handle_each(
        consumers.invoice_due
    )

    app = rt.http_app("Billing API", "Danish invoices and credit notes, e-invoices, payments, reminders")
    app.include_router(make_router(rt.pool, ctx))

    access_point = FolderAccessPoint(settings.access_point_dir)
    delivery = periodic(
        "delivery", lambda: deliver_pending(rt.pool, access_point), settings.delivery_poll_seconds
    )
    reminders = periodic(
        "payment-reminders", lambda: send_due_reminders(rt.pool, ctx), settings.reminder_poll_seconds
    )
    return ServiceParts(http=app, background=[delivery, reminders])
