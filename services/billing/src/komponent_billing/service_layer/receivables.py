"""Payments, the reminder run and delivery to the access point: the life of an invoice after issue."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from uuid import UUID

import asyncpg
from komponent_contracts import CloudEvent
from komponent_contracts.events import PaymentRegistered, PaymentReminderDue
from komponent_runtime.database import Connection
from komponent_runtime.outbox import enqueue

from ..adapters.access_point import AccessPoint
from ..adapters.einvoice_validation import EInvoiceFormat
from ..domain.reminders import DeliveryStatus, ReceivableState, SentReminder, decide_reminder
from .issuing import EVENT_SOURCE, BillingContext, event_id

log = logging.getLogger(__name__)


class UnknownInvoice(LookupError):
    pass


class InvalidPayment(ValueError):
    """The amount cannot be accepted (it exceeds what is outstanding, or the invoice is credited)."""


@dataclass(frozen=True, slots=True)
class Receivable:
    document_id: UUID
    number: str
    course_id: UUID
    due_date: date
    total_incl_vat_ore: int
    paid_ore: int
    credited: bool
    delivery: DeliveryStatus
    reminders: tuple[SentReminder, ...]
    billing_email: str
    buyer_name: str

    @property
    def outstanding_ore(self) -> int:
        return 0 if self.credited else max(self.total_incl_vat_ore - self.paid_ore, 0)


async def _lock_receivable(
    conn: Connection, *, number: str | None = None, document_id: UUID | None = None
) -> Receivable | None:
    """The invoice with its payments and reminders, its row locked so payments and reminders of one
    invoice are applied one at a time."""
    row = await conn.fetchrow(
        "SELECT d.document_id, d.number, d.course_id, d.due_date, d.total_incl_vat_ore,"
        " convert_from(d.snapshot, 'UTF8')::jsonb -> 'document' -> 'buyer' AS buyer,"
        " EXISTS (SELECT 1 FROM billing_document c WHERE c.credits_document_id = d.document_id) AS credited,"
        " (SELECT status FROM document_delivery dd WHERE dd.document_id = d.document_id) AS delivery,"
        " (SELECT coalesce(sum(amount_ore), 0) FROM payment p WHERE p.document_id = d.document_id) AS paid"
        " FROM billing_document d WHERE d.kind = 'invoice' AND (d.number = $1 OR d.document_id = $2)"
        " FOR UPDATE OF d",
        number,
        document_id,
    )
    if row is None:
        return None
    reminders = await conn.fetch(
        "SELECT sent_on, fee_ore, compensation_ore FROM payment_reminder WHERE document_id = $1"
        " ORDER BY sequence",
        row["document_id"],
    )
    buyer = json.loads(row["buyer"])
    return Receivable(
        document_id=row["document_id"],
        number=row["number"],
        course_id=row["course_id"],
        due_date=row["due_date"],
        total_incl_vat_ore=row["total_incl_vat_ore"],
        paid_ore=int(row["paid"]),
        credited=row["credited"],
        delivery=DeliveryStatus(row["delivery"]),
        reminders=tuple(SentReminder(r["sent_on"], r["fee_ore"], r["compensation_ore"]) for r in reminders),
        billing_email=buyer["billing_contact_email"],
        buyer_name=buyer["municipality_name"],
    )


@dataclass(frozen=True, slots=True)
class PaymentResult:
    payment_id: UUID
    document_number: str
    outstanding_ore: int
    new: bool


async def register_payment(
    conn: Connection,
    ctx: BillingContext,
    *,
    number: str,
    amount_ore: int,
    paid_on: date,
    payment_id: UUID | None = None,
) -> PaymentResult:
    """Record a payment against an invoice and publish PaymentRegistered, in one transaction.

    `payment_id` makes the call idempotent: the same id again returns the first result and changes nothing.
    """
    receivable = await _lock_receivable(conn, number=number)
    if receivable is None:
        raise UnknownInvoice(number)
    payment_id = payment_id or uuid.uuid4()
    existing = await conn.fetchrow("SELECT document_id FROM payment WHERE payment_id = $1", payment_id)
    if existing is not None:
        if existing["document_id"] != receivable.document_id:
            raise InvalidPayment("this payment id was already used for another invoice")
        return PaymentResult(payment_id, number, receivable.outstanding_ore, new=False)
    if receivable.credited:
        raise InvalidPayment(f"invoice {number} is credited; nothing is outstanding")
    if amount_ore <= 0 or amount_ore > receivable.outstanding_ore:
        raise InvalidPayment(f"amount must be 1..{receivable.outstanding_ore} øre (what is outstanding)")
    now = ctx.clock.now()
    await conn.execute(
        "INSERT INTO payment (payment_id, document_id, amount_ore, paid_on, registered_at)"
        " VALUES ($1, $2, $3, $4, $5)",
        payment_id,
        receivable.document_id,
        amount_ore,
        paid_on,
        now,
    )
    event = PaymentRegistered(
        payment_id=payment_id,
        course_id=receivable.course_id,
        document_number=number,
        amount_ore=amount_ore,
        paid_on=paid_on.isoformat(),
        registered_at=now,
    )
    await enqueue(conn, [CloudEvent(event, source=EVENT_SOURCE, id=event_id(payment_id, "payment"))])
    return PaymentResult(payment_id, number, receivable.outstanding_ore - amount_ore, new=True)


async def send_due_reminders(pool: asyncpg.Pool, ctx: BillingContext) -> int:
    """One pass of the reminder run: for each delivered, unpaid, overdue invoice, the reminder the
    domain policy allows today (≥ 10 days apart, at most three, no fees for public buyers by default).
    Each reminder commits with its PaymentReminderDue event; returns how many were sent."""
    today = ctx.today()
    async with pool.acquire() as conn:
        candidates = await conn.fetch(
            "SELECT d.document_id FROM billing_document d JOIN document_delivery dd USING (document_id)"
            " WHERE d.kind = 'invoice' AND dd.status = 'delivered' AND d.due_date < $1"
            " AND NOT EXISTS (SELECT 1 FROM billing_document c WHERE c.credits_document_id = d.document_id)"
            " AND (SELECT count(*) FROM payment_reminder r WHERE r.document_id = d.document_id) < $2"
            " ORDER BY d.due_date, d.number",
            today,
            ctx.reminders.max_reminders,
        )
    sent = 0
    for candidate in candidates:
        async with pool.acquire() as conn, conn.transaction():
            receivable = await _lock_receivable(conn, document_id=candidate["document_id"])
            if receivable is None or receivable.credited:
                continue
            state = ReceivableState(
                invoice_number=receivable.number,
                due_date=receivable.due_date,
                outstanding_oere=receivable.outstanding_ore,
                delivery=receivable.delivery,
                reminders=receivable.reminders,
            )
            decision = decide_reminder(state, today, ctx.reminders)
            if decision is None:
                continue
            reminder_id = event_id(receivable.document_id, f"reminder-{decision.sequence}")
            await conn.execute(
                "INSERT INTO payment_reminder (document_id, sequence, sent_on, fee_ore, compensation_ore,"
                " event_id) VALUES ($1, $2, $3, $4, $5, $6)",
                receivable.document_id,
                decision.sequence,
                today,
                decision.fee_oere,
                decision.compensation_oere,
                reminder_id,
            )
            event = PaymentReminderDue(
                course_id=receivable.course_id,
                document_id=receivable.document_id,
                document_number=receivable.number,
                reminder_number=decision.sequence,
                billing_email=receivable.billing_email,
                buyer_name=receivable.buyer_name,
                outstanding_ore=receivable.outstanding_ore,
                fee_ore=decision.fee_oere,
                original_due_date=receivable.due_date.isoformat(),
                occurred_at=ctx.clock.now(),
            )
            await enqueue(conn, [CloudEvent(event, source=EVENT_SOURCE, id=reminder_id)])
            sent += 1
    return sent


async def deliver_pending(pool: asyncpg.Pool, access_point: AccessPoint, *, batch: int = 20) -> int:
    """Hand committed documents to the access point and mark them delivered.

    The delivery row was written with the document, so nothing is lost if the process dies after the
    commit: the next pass picks it up. A pass that dies after the hand-off but before marking hands the
    same document over again, which the access point accepts as a repeat (idempotent per number)."""
    delivered = 0
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(
            "SELECT dd.document_id, dd.format, dd.attempts, d.number, d.buyer_ean, d.peppol_xml, d.oioubl_xml"
            " FROM document_delivery dd JOIN billing_document d USING (document_id)"
            " WHERE dd.status = 'pending' AND dd.next_attempt_at <= now()"
            " ORDER BY dd.next_attempt_at LIMIT $1 FOR UPDATE OF dd SKIP LOCKED",
            batch,
        )
        for row in rows:
            fmt = EInvoiceFormat(row["format"])
            xml = bytes(row["peppol_xml"] if fmt is EInvoiceFormat.PEPPOL_BIS3 else row["oioubl_xml"])
            try:
                receipt = await asyncio.to_thread(
                    access_point.submit,
                    document_number=row["number"],
                    receiver_ean=row["buyer_ean"],
                    fmt=fmt,
                    xml=xml,
                )
            except Exception as exc:
                backoff = timedelta(seconds=min(2 ** row["attempts"], 3600))
                log.warning(
                    "access point refused a document; will retry",
                    extra={"document_id": str(row["document_id"]), "error": type(exc).__name__},
                )
                await conn.execute(
                    "UPDATE document_delivery SET attempts = attempts + 1, last_error = $2,"
                    " next_attempt_at = now() + $3 WHERE document_id = $1",
                    row["document_id"],
                    f"{type(exc).__name__}: {exc}"[:2000],
                    backoff,
                )
                continue
            await conn.execute(
                "UPDATE document_delivery SET status = 'delivered', attempts = attempts + 1,"
                " message_id = $2, delivered_at = now(), last_error = NULL WHERE document_id = $1",
                row["document_id"],
                receipt.message_id,
            )
            delivered += 1
    return delivered
