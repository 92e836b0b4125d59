"""Document numbers on real PostgreSQL (billing-dk.md §7.6 items 9, 10, 12) and write-once documents.

Numbers come from a counter row locked FOR UPDATE inside the issuing transaction: concurrent issues queue
on it, a rolled-back issue leaves it untouched, and each series counts on its own.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import date

import asyncpg
import pytest
from komponent_billing.adapters.artefacts import Artefacts, OfficialArtefacts
from komponent_billing.adapters.document_snapshot import render_snapshot
from komponent_billing.adapters.einvoice_validation import EInvoiceValidator
from komponent_billing.adapters.peppol_bis import render_peppol
from komponent_billing.adapters.repository import invoice_by_number
from komponent_billing.domain.documents import DeliveryPeriod, Document, InvoiceLine
from komponent_billing.domain.lifecycle import CreditReason
from komponent_billing.domain.numbering import is_gapless
from komponent_billing.service_layer.issuing import BillingContext, issue_credit_note, issue_invoice
from komponent_billing.service_layer.mapping import buyer_snapshot
from komponent_billing.service_layer.ports import DocumentRejected
from komponent_contracts.examples import buyer
from komponent_runtime.clock import ManualClock
from lxml import etree

pytestmark = pytest.mark.infra

LINE = InvoiceLine(
    description="Kursusplads inkl. undervisning, materialer og forplejning",
    item_name="Nye typer af udfordringer kræver nye typer af løsninger, 3.-4. maj 2023",
    unit_price_oere=550_000,
    participant_name="Søren Ærø Østergård",
)
PERIOD = DeliveryPeriod(date(2023, 5, 3), date(2023, 5, 4))


class SnapshotOnlyArtefacts:
    """For the 1,000-issue race only: the JSON snapshot is rendered for real, the XML and PDF bytes are
    stand-ins. Numbering does not depend on them, and the full renderers (≈0.1 s each, PDF mostly) under
    the counter lock would make this a slow test of PDF rendering instead. Every other test issues with
    the official renderers and validator."""

    def render(self, document: Document) -> Artefacts:
        snapshot = render_snapshot(document)
        return Artefacts(b"<peppol/>", b"<oioubl/>", b"%PDF-stand-in", snapshot)


async def _issue_one(pool: asyncpg.Pool, ctx: BillingContext, *, fail_after: bool = False) -> str:
    async with pool.acquire() as conn, conn.transaction():
        invoice = await issue_invoice(
            conn,
            ctx,
            course_id=uuid.uuid4(),
            registration_id=uuid.uuid4(),
            buyer=buyer_snapshot(buyer()),
            lines=(LINE,),
            delivery=PERIOD,
            note=None,
        )
        if fail_after:
            raise RuntimeError("something after the issue failed")
    return invoice.number


async def _sequences(pool: asyncpg.Pool, series_key: str) -> list[int]:
    rows = await pool.fetch("SELECT sequence FROM billing_document WHERE series_key = $1", series_key)
    return [r["sequence"] for r in rows]


async def test_thousand_concurrent_issues_get_unique_gapless_numbers_and_rollbacks_use_none(
    billing_pool: asyncpg.Pool, clock: ManualClock
) -> None:
    ctx = BillingContext(artefacts=SnapshotOnlyArtefacts(), clock=clock)
    # Every 10th issue rolls back after its number was allocated: it must leave no gap.
    results = await asyncio.gather(
        *(_issue_one(billing_pool, ctx, fail_after=i % 10 == 9) for i in range(1000)),
        return_exceptions=True,
    )
    committed = [r for r in results if isinstance(r, str)]
    failed = [r for r in results if isinstance(r, BaseException)]
    assert len(committed) == 900 and len(failed) == 100
    assert all(isinstance(f, RuntimeError) for f in failed)
    assert len(set(committed)) == 900
    sequences = await _sequences(billing_pool, "2023")
    assert len(sequences) == 900 and is_gapless(sequences)
    assert sorted(committed) == [f"2023-{n:06d}" for n in range(1, 901)]
    assert (
        await billing_pool.fetchval(
            "SELECT last_issued FROM document_number_counter WHERE series_key = '2023'"
        )
        == 900
    )


async def test_rolled_back_issue_consumes_no_number(billing_pool: asyncpg.Pool, ctx: BillingContext) -> None:
    with pytest.raises(RuntimeError):
        await _issue_one(billing_pool, ctx, fail_after=True)
    assert await billing_pool.fetchval("SELECT count(*) FROM billing_document") == 0
    assert await billing_pool.fetchval("SELECT count(*) FROM outbox") == 0
    assert await _issue_one(billing_pool, ctx) == "2023-000001"


async def test_a_document_with_a_fatal_finding_is_never_issued_and_uses_no_number(
    billing_pool: asyncpg.Pool, validator: EInvoiceValidator, clock: ManualClock
) -> None:
    def without_buyer_references(document: Document) -> bytes:
        tree = etree.fromstring(render_peppol(document))
        ns = {
            "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
            "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
        }
        for element in tree.xpath("cbc:BuyerReference | cac:OrderReference", namespaces=ns):
            tree.remove(element)
        return bytes(etree.tostring(tree, xml_declaration=True, encoding="UTF-8"))

    broken = BillingContext(
        artefacts=OfficialArtefacts(validator, peppol=without_buyer_references), clock=clock
    )
    with pytest.raises(DocumentRejected, match="PEPPOL-EN16931-R003"):
        await _issue_one(billing_pool, broken)
    assert await billing_pool.fetchval("SELECT count(*) FROM billing_document") == 0
    assert await billing_pool.fetchval("SELECT count(*) FROM outbox") == 0
    good = BillingContext(artefacts=OfficialArtefacts(validator), clock=clock)
    assert await _issue_one(billing_pool, good) == "2023-000001"


async def test_credit_notes_have_their_own_series(billing_pool: asyncpg.Pool, ctx: BillingContext) -> None:
    first = await _issue_one(billing_pool, ctx)
    second = await _issue_one(billing_pool, ctx)
    async with billing_pool.acquire() as conn, conn.transaction():
        stored = await invoice_by_number(conn, first)
        assert stored is not None
        credit = await issue_credit_note(conn, ctx, stored, CreditReason.COURSE_CANCELLED)
    third = await _issue_one(billing_pool, ctx)
    assert (first, second, third) == ("2023-000001", "2023-000002", "2023-000003")
    assert credit.number == "KN-2023-000001"
    assert credit.credited_invoice.number == first


async def test_issued_documents_cannot_be_updated_or_deleted(
    billing_pool: asyncpg.Pool, ctx: BillingContext
) -> None:
    number = await _issue_one(billing_pool, ctx)
    with pytest.raises(asyncpg.IntegrityConstraintViolationError, match="cannot be updated"):
        await billing_pool.execute(
            "UPDATE billing_document SET buyer_ean = '5798000123458' WHERE number = $1", number
        )
    with pytest.raises(asyncpg.IntegrityConstraintViolationError, match="cannot be deleted"):
        await billing_pool.execute("DELETE FROM billing_document WHERE number = $1", number)
    # A second credit note for the same invoice is refused by the database itself.
    async with billing_pool.acquire() as conn, conn.transaction():
        stored = await invoice_by_number(conn, number)
        assert stored is not None
        await issue_credit_note(conn, ctx, stored, CreditReason.CORRECTION)
    with pytest.raises(asyncpg.UniqueViolationError):
        async with billing_pool.acquire() as conn, conn.transaction():
            await issue_credit_note(conn, ctx, stored, CreditReason.CORRECTION)
