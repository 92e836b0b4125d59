"""Which financial documents a registration event calls for (billing-dk.md §7.2).

Pure decisions: given what was already issued and what happened, return the documents to issue. The
service layer carries them out in one transaction. Issued invoices are never edited or deleted, and numbers
are never reused; every change is a full credit note referencing the original, then a new invoice.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from .parties import BuyerSnapshot


class CreditReason(Enum):
    FREE_CANCELLATION = "Afmelding inden tilmeldingsfristen"
    CANCELLATION_FEE = "Afmelding efter tilmeldingsfristen; gebyr faktureres separat"
    COURSE_CANCELLED = "Kurset er aflyst af Komponent"
    BUYER_CHANGED = "Ny deltager med andre faktureringsoplysninger"
    CORRECTION = "Rettelse af faktura"


@dataclass(frozen=True, slots=True)
class IssuedInvoice:
    """What the decisions need to know about an invoice already issued for the registration."""

    number: str
    buyer: BuyerSnapshot
    credited: bool = False  # a credit note has already been issued for it


@dataclass(frozen=True, slots=True)
class IssueCreditNote:
    invoice_number: str
    reason: CreditReason


@dataclass(frozen=True, slots=True)
class IssueInvoice:
    """A new invoice; ``replaces`` links it to the invoice it corrects (credited in the same step)."""

    buyer: BuyerSnapshot
    replaces: str | None = None
    fee_percent: int = 100  # share of the course price billed (a cancellation fee is less than 100)


BillingAction = IssueCreditNote | IssueInvoice


@dataclass(frozen=True, slots=True)
class CancellationPolicy:
    """Share of the price kept when a binding registration is cancelled. Default: binding = full price."""

    binding_fee_percent: int = 100

    def __post_init__(self) -> None:
        if not 0 <= self.binding_fee_percent <= 100:
            raise ValueError("fee percent must be 0..100")


def _open(invoices: tuple[IssuedInvoice, ...]) -> list[IssuedInvoice]:
    return [inv for inv in invoices if not inv.credited]


def on_registration_cancelled(
    invoices: tuple[IssuedInvoice, ...], *, was_binding: bool, policy: CancellationPolicy | None = None
) -> tuple[BillingAction, ...]:
    """Participant cancels.

    Before binding: free, so credit any invoice already issued (none is the usual case).
    After binding: the invoice stands by default; a softer policy credits in full and re-invoices the
    fee, rather than issuing a partial credit note (§7.2.7).
    """
    policy = policy or CancellationPolicy()
    open_invoices = _open(invoices)
    if not was_binding:
        return tuple(IssueCreditNote(inv.number, CreditReason.FREE_CANCELLATION) for inv in open_invoices)
    if policy.binding_fee_percent == 100:
        return ()
    actions: list[BillingAction] = []
    for inv in open_invoices:
        actions.append(IssueCreditNote(inv.number, CreditReason.CANCELLATION_FEE))
        if policy.binding_fee_percent > 0:
            actions.append(
                IssueInvoice(inv.buyer, replaces=inv.number, fee_percent=policy.binding_fee_percent)
            )
    return tuple(actions)


def on_course_cancelled(invoices: tuple[IssuedInvoice, ...]) -> tuple[BillingAction, ...]:
    """Komponent cancels the course: a full credit note for every invoice not yet credited."""
    return tuple(IssueCreditNote(inv.number, CreditReason.COURSE_CANCELLED) for inv in _open(invoices))


def on_participant_substituted(
    invoices: tuple[IssuedInvoice, ...], new_buyer: BuyerSnapshot
) -> tuple[BillingAction, ...]:
    """A colleague takes the seat.

    Same routing data (EAN, person reference, order number, kontostreng): only the participant name
    changes and no document is issued. Otherwise the invoice would reach the wrong authority or approver,
    so credit it and invoice the new buyer, linked. The order number counts too, since an authority may
    postpone payment of an invoice whose requisition number it does not recognise (§1.2).
    """
    actions: list[BillingAction] = []
    for inv in _open(invoices):
        if inv.buyer.routing_key() != new_buyer.routing_key():
            actions.append(IssueCreditNote(inv.number, CreditReason.BUYER_CHANGED))
            actions.append(IssueInvoice(new_buyer, replaces=inv.number))
    return tuple(actions)


def on_invoice_correction(
    invoice: IssuedInvoice, corrected_buyer: BuyerSnapshot
) -> tuple[BillingAction, ...]:
    """Wrong EAN/reference/address/price or a receiver's rejection: credit, then a new invoice."""
    if invoice.credited:
        raise ValueError(f"invoice {invoice.number} is already credited; correct its replacement instead")
    return (
        IssueCreditNote(invoice.number, CreditReason.CORRECTION),
        IssueInvoice(corrected_buyer, replaces=invoice.number),
    )


def needs_invoice(*, is_binding: bool, invoices: tuple[IssuedInvoice, ...], course_cancelled: bool) -> bool:
    """The invoice run (InvoiceDue): bill binding registrations exactly once; re-running is a no-op."""
    return is_binding and not course_cancelled and not _open(invoices)


def due_for_invoice(
    *,
    confirmed: bool,
    invoice_run_reached: bool,
    course_cancelled: bool,
    price_oere: int,
    invoices: tuple[IssuedInvoice, ...],
) -> bool:
    """Issue #5: once the course's invoice run has happened, every confirmed registration with no invoice
    yet gets one; before it, none does. A registration confirmed after the run (late, promoted) is
    therefore invoiced at once, and re-running the invoice run issues nothing new. A registration that
    already had an invoice (even a credited one) is never invoiced again here: a replacement invoice is
    issued only by the step that credited the original. Free courses are not invoiced."""
    return confirmed and invoice_run_reached and not course_cancelled and price_oere > 0 and not invoices
