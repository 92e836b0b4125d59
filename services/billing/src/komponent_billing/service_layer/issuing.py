"""Issuing an invoice or credit note: the one place a document number is allocated.

Runs inside the caller's transaction (a consumer's, with its inbox row). In order: lock the series'
counter row, take the next number, build the immutable document, render and validate every artefact,
store it write-once with its delivery row, advance the counter and enqueue the event. Any failure rolls
all of it back, so a number is consumed exactly when a valid document is committed.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from uuid import UUID

from komponent_contracts import CloudEvent
from komponent_contracts.events import CreditNoteIssued, Event, InvoiceIssued
from komponent_runtime.clock import Clock
from komponent_runtime.database import Connection
from komponent_runtime.metrics import meter
from komponent_runtime.outbox import enqueue
from opentelemetry import propagate, trace

from ..adapters import repository as repo
from ..adapters.document_snapshot import load_snapshot
from ..domain.documents import (
    CreditNote,
    DeliveryPeriod,
    Document,
    DocumentKind,
    Invoice,
    InvoiceLine,
    PaymentTerms,
    full_credit_note,
)
from ..domain.lifecycle import CancellationPolicy, CreditReason
from ..domain.numbering import NumberingConfig, next_number
from ..domain.parties import KOMPONENT, BuyerSnapshot, SellerConfig
from ..domain.reminders import PUBLIC_BUYER_DEFAULTS, ReminderPolicy
from .mapping import COPENHAGEN
from .ports import ArtefactRenderer

EVENT_SOURCE = "/komponent/billing"
_tracer = trace.get_tracer("komponent_billing.issuing")
documents_issued = meter.create_counter(
    "komponent_documents_issued", description="invoices and credit notes issued, by type"
)
_EVENT_NAMESPACE = uuid.UUID("1f0e5c8e-7b0e-4d7e-9c53-62696c6c696e")


@dataclass(frozen=True)
class BillingContext:
    """Configuration and ports shared by the use cases (built once in the composition root)."""

    artefacts: ArtefactRenderer
    clock: Clock
    seller: SellerConfig = KOMPONENT
    numbering: NumberingConfig = field(default_factory=NumberingConfig)
    payment_terms: PaymentTerms = field(default_factory=PaymentTerms)
    cancellation: CancellationPolicy = field(default_factory=CancellationPolicy)
    reminders: ReminderPolicy = PUBLIC_BUYER_DEFAULTS
    delivery_format: str = "peppol-bis-3"

    def today(self) -> date:
        """Issue dates are Danish calendar days."""
        return self.clock.now().astimezone(COPENHAGEN).date()


def event_id(document_id: UUID, what: str) -> UUID:
    """Deterministic event ids: re-enqueueing the same fact can never look like a new one downstream."""
    return uuid.uuid5(_EVENT_NAMESPACE, f"{document_id}/{what}")


def pdf_path(document_id: UUID) -> str:
    return f"/documents/{document_id}/pdf"


async def _issue(
    conn: Connection,
    ctx: BillingContext,
    kind: DocumentKind,
    build: Callable[[str, date], Document],
    *,
    course_id: UUID,
    registration_id: UUID,
    credits: repo.StoredDocument | None = None,
    replaces: UUID | None = None,
    link_to: dict[str, str] | None = None,
) -> Document:
    """One document, in a span that is a child of the current context (the consumer's) and links to the
    trace context `link_to` (the registration's). InvoiceIssued/CreditNoteIssued are enqueued inside it,
    so the outbox stores this span's context and the document's email continues it."""
    linked = trace.get_current_span(propagate.extract(link_to or {})).get_span_context()
    with _tracer.start_as_current_span(
        f"issue {kind.value}",
        links=[trace.Link(linked)] if linked.is_valid else None,
        attributes={
            "billing.document.kind": kind.value,
            "course_id": str(course_id),
            "registration_id": str(registration_id),
        },
    ) as span:
        document = await _issue_in_span(
            conn,
            ctx,
            kind,
            build,
            course_id=course_id,
            registration_id=registration_id,
            credits=credits,
            replaces=replaces,
        )
        span.set_attribute("billing.document.id", document.uuid)
    # Counted when stored in the consumer's transaction (a later rollback there would over-count by one).
    documents_issued.add(1, {"type": kind.value})
    return document


async def _issue_in_span(
    conn: Connection,
    ctx: BillingContext,
    kind: DocumentKind,
    build: Callable[[str, date], Document],
    *,
    course_id: UUID,
    registration_id: UUID,
    credits: repo.StoredDocument | None,
    replaces: UUID | None,
) -> Document:
    today = ctx.today()
    series = ctx.numbering.series_for(kind, today.year)
    last = await repo.lock_number_counter(conn, series.key)
    sequence, number = next_number(series, last)
    document = build(number, today)
    # CPU-bound rendering and Saxon validation run off the event loop (HTTP and Kafka keep going).
    artefacts = await asyncio.to_thread(ctx.artefacts.render, document)
    document_id = UUID(document.uuid)
    totals = document.totals
    await repo.insert_document(
        conn,
        repo.NewDocument(
            document_id=document_id,
            kind=kind,
            number=number,
            series_key=series.key,
            sequence=sequence,
            course_id=course_id,
            registration_id=registration_id,
            issue_date=document.issue_date,
            due_date=document.due_date if isinstance(document, Invoice) else None,
            issued_at=ctx.clock.now(),
            buyer_ean=document.buyer.ean,
            total_excl_vat_ore=totals.total_excl_vat_oere,
            vat_ore=totals.vat_total_oere,
            total_incl_vat_ore=totals.total_incl_vat_oere,
            credits_document_id=credits.document_id if credits else None,
            replaces_document_id=replaces,
            reason=document.reason if isinstance(document, CreditNote) else None,
            artefacts=artefacts,
        ),
        delivery_format=ctx.delivery_format,
    )
    await repo.advance_number_counter(conn, series.key, sequence)
    await enqueue(conn, [_issued_event(ctx, document_id, document, course_id, registration_id)])
    return document


def _issued_event(
    ctx: BillingContext, document_id: UUID, document: Document, course_id: UUID, registration_id: UUID
) -> CloudEvent[Event]:
    buyer = document.buyer
    common: dict[str, Any] = {
        "document_id": document_id,
        "document_number": document.number,
        "course_id": course_id,
        "registration_ids": (registration_id,),
        "issued_at": ctx.clock.now(),
        "issue_date": document.issue_date.isoformat(),
        "buyer_name": buyer.municipality_name,
        "buyer_ean": buyer.ean,
        "buyer_reference": buyer.person_reference,
        "order_number": buyer.order_number,
        "billing_email": buyer.billing_contact_email,
        "total_excl_vat_ore": document.totals.total_excl_vat_oere,
        "vat_ore": document.totals.vat_total_oere,
        "total_incl_vat_ore": document.totals.total_incl_vat_oere,
        "pdf_url": pdf_path(document_id),
    }
    if isinstance(document, Invoice):
        invoice = InvoiceIssued(due_date=document.due_date.isoformat(), **common)
        return CloudEvent[Event](invoice, source=EVENT_SOURCE, id=event_id(document_id, "issued"))
    credit = CreditNoteIssued(
        credited_document_number=document.credited_invoice.number,
        reason=document.reason,
        **common,
    )
    return CloudEvent[Event](credit, source=EVENT_SOURCE, id=event_id(document_id, "issued"))


async def issue_invoice(
    conn: Connection,
    ctx: BillingContext,
    *,
    course_id: UUID,
    registration_id: UUID,
    buyer: BuyerSnapshot,
    lines: tuple[InvoiceLine, ...],
    delivery: DeliveryPeriod,
    note: str | None,
    replaces: UUID | None = None,
    link_to: dict[str, str] | None = None,
) -> Invoice:
    def build(number: str, today: date) -> Invoice:
        return Invoice(
            number=number,
            issue_date=today,
            seller=ctx.seller,
            buyer=buyer,
            lines=lines,
            delivery=delivery,
            registration_id=str(registration_id),
            course_id=str(course_id),
            note=note,
            payment_terms=ctx.payment_terms,
        )

    document = await _issue(
        conn,
        ctx,
        DocumentKind.INVOICE,
        build,
        course_id=course_id,
        registration_id=registration_id,
        replaces=replaces,
        link_to=link_to,
    )
    assert isinstance(document, Invoice)
    return document


async def issue_credit_note(
    conn: Connection, ctx: BillingContext, invoice: repo.StoredDocument, reason: CreditReason
) -> CreditNote:
    """A full credit note for a stored invoice, built from the invoice's own snapshot."""
    original = load_snapshot(invoice.snapshot)
    assert isinstance(original, Invoice)

    def build(number: str, today: date) -> CreditNote:
        return full_credit_note(original, number=number, issue_date=today, reason=reason.value)

    document = await _issue(
        conn,
        ctx,
        DocumentKind.CREDIT_NOTE,
        build,
        course_id=UUID(original.course_id),
        registration_id=invoice.registration_id,
        credits=invoice,
    )
    assert isinstance(document, CreditNote)
    return document
