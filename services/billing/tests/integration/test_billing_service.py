"""The billing service as a real process on real Kafka and PostgreSQL (issue #5).

Events are published the way the catalogue and registration publish them; the assertions read what billing
stored, served over HTTP and published to Kafka.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from komponent_billing.adapters.einvoice_validation import EInvoiceFormat, EInvoiceValidator
from komponent_contracts import CloudEvent, parse
from komponent_contracts.events import Event
from komponent_contracts.examples import buyer
from komponent_contracts.topics import BILLING, COURSE_CALENDAR, REGISTRATION, dead_letter_topic
from komponent_runtime.settings import DatabaseSettings
from komponent_runtime.testing import (
    ADMIN_HEADERS,
    ServiceProcess,
    create_database,
    headers_of,
    isolated_topics,
    produce,
    read_topic,
    wait_until,
)
from pypdf import PdfReader

pytestmark = pytest.mark.infra

SEED_EAN = "5798000012349"  # the contracts example buyer: Roskilde Kommune


@dataclass
class Billing:
    proc: ServiceProcess
    prefix: str
    pool: asyncpg.Pool
    access_point: Path

    def topic(self, base: str) -> str:
        return self.prefix + base

    async def publish(self, *events: CloudEvent[Event]) -> None:
        for ce in events:
            await produce(self.topic(ce.topic), [ce])

    async def applied(self, *events: CloudEvent[Event]) -> bool:
        seen = await self.pool.fetchval(
            "SELECT count(*) FROM inbox WHERE event_id = ANY($1::uuid[])", [e.id for e in events]
        )
        return bool(seen == len(events))

    async def wait_applied(self, *events: CloudEvent[Event]) -> None:
        await wait_until(lambda: self.applied(*events), what="billing applied the events")

    async def documents(self, course_id: uuid.UUID) -> list[dict[str, Any]]:
        async with httpx.AsyncClient(base_url=self.proc.url, headers=ADMIN_HEADERS) as client:
            response = await client.get(f"/courses/{course_id}/documents")
        assert response.status_code == 200, response.text
        return list(response.json())

    async def get(self, path: str, **kw: Any) -> httpx.Response:
        async with httpx.AsyncClient(base_url=self.proc.url) as client:
            return await client.get(path, **kw)

    async def post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        async with httpx.AsyncClient(base_url=self.proc.url, headers=ADMIN_HEADERS) as client:
            return await client.post(path, json=body)

    async def billing_events(self, course_id: uuid.UUID, expect: int) -> list[CloudEvent[Event]]:
        """The course's events on the billing topic, once at least `expect` of them arrived."""
        events: list[CloudEvent[Event]] = []

        async def arrived() -> bool:
            records = await read_topic(self.topic(BILLING), expect=expect, timeout=5)
            events[:] = [parse(r.headers, r.value) for r in records if r.key == str(course_id).encode()]
            return len(events) >= expect

        await wait_until(arrived, what=f"{expect} billing events for the course")
        return events


@pytest.fixture(scope="module")
async def billing(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Billing]:
    """One billing process for the module (start-up and topic creation take seconds); every test uses
    its own course, so tests only ever look at their own course's documents and events."""
    database = await create_database("billing")
    prefix = await isolated_topics()
    access_point = tmp_path_factory.mktemp("access-point")
    proc = ServiceProcess(
        "billing",
        database=database,
        topic_prefix=prefix,
        env={
            "BILLING_ACCESS_POINT_DIR": str(access_point),
            "BILLING_DELIVERY_POLL_SECONDS": "0.2",
            "OTEL_SDK_DISABLED": "true",
        },
    )
    pool = await asyncpg.create_pool(DatabaseSettings().dsn(database), min_size=1, max_size=4)
    assert pool is not None
    try:
        await proc.wait_ready()
        yield Billing(proc, prefix, pool, access_point)
    finally:
        proc.stop()
        await pool.close()


async def _outbox_drained(pool: asyncpg.Pool) -> bool:
    return not await pool.fetchval("SELECT count(*) FROM outbox")


def _pdf_text(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def _of_type(events: list[CloudEvent[Event]], name: str) -> list[CloudEvent[Event]]:
    return [e for e in events if type(e.data).__name__ == name]


async def test_invoice_run_for_the_seed_course_issues_one_valid_invoice_per_confirmed_registration(
    billing: Billing, seed: Any, validator: EInvoiceValidator
) -> None:
    confirmed = [uuid.uuid4() for _ in range(3)]
    cancelled_early = uuid.uuid4()
    before_run = [
        seed.published(),
        *(seed.confirmed(r) for r in confirmed),
        seed.confirmed(cancelled_early, binding=False),
        seed.cancelled(cancelled_early, binding=False),  # free cancellation before the run: no document
    ]
    await billing.publish(*before_run)
    # Topics are not ordered with each other: let the registrations land before the timer fires.
    await billing.wait_applied(*before_run)
    run = seed.invoice_due()
    await billing.publish(run)

    async def three_invoices() -> bool:
        return len(await billing.documents(seed.course_id)) >= 3

    await wait_until(three_invoices, what="three invoices")
    await billing.wait_applied(run)
    documents = await billing.documents(seed.course_id)
    assert sorted(d["registration_id"] for d in documents) == sorted(str(r) for r in confirmed)
    assert {d["kind"] for d in documents} == {"invoice"}

    issued = _of_type(await billing.billing_events(seed.course_id, expect=3), "InvoiceIssued")
    assert len(issued) == 3
    assert {e.data.document_number for e in issued} == {d["number"] for d in documents}  # type: ignore[attr-defined]

    for event in issued:
        data: Any = event.data
        assert (data.total_excl_vat_ore, data.vat_ore, data.total_incl_vat_ore) == (550_000, 137_500, 687_500)
        assert data.buyer_ean == SEED_EAN and data.course_id == seed.course_id
        assert data.pdf_url == f"/documents/{data.document_id}/pdf"

        assert (await billing.get(data.pdf_url)).status_code == 401  # the PDF needs a key with the scope
        pdf = await billing.get(data.pdf_url, headers=ADMIN_HEADERS)
        assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
        text = _pdf_text(pdf.content)
        for needed in (
            "FAKTURA",
            f"Fakturanr.: {data.document_number}",
            "5.500,00 + 1.375,00 = 6.875,00 kr.",
            "Moms 25 % af 5.500,00 = 1.375,00",
            f"EAN-nr.: {SEED_EAN}",
            "Ordrenr./Rekv.nr.: PO-2023-0042",
            "Reference: Mette Hansen",
            "Kontostreng: 1234-5678",
            "Roskilde Kommune",
            "CVR-nr. 25525701",
            "Leveringsdato/Kursusdato: 3.-4. maj 2023",
            "Forfaldsdato:",
            "Søren Ærø Østergård",
        ):
            assert needed in text, needed

        for fmt, query in ((EInvoiceFormat.PEPPOL_BIS3, "peppol"), (EInvoiceFormat.OIOUBL21, "oioubl")):
            xml = await billing.get(
                f"/documents/{data.document_id}/xml?format={query}", headers=ADMIN_HEADERS
            )
            assert xml.status_code == 200
            report = validator.validate(xml.content, fmt)
            assert report.fatal == (), report.fatal
        assert "2026.5" in validator.rules.peppol_release or "2026" in validator.rules.peppol_release

    # Delivered to the (folder) access point after commit, by the delivery loop.
    async def delivered() -> bool:
        return all(d["delivery_status"] == "delivered" for d in await billing.documents(seed.course_id))

    await wait_until(delivered, what="invoices delivered to the access point")
    for document in documents:
        delivered_xml = billing.access_point / SEED_EAN / f"{document['number']}.peppol-bis-3.xml"
        served = await billing.get(f"/documents/{document['document_id']}/xml", headers=ADMIN_HEADERS)
        assert delivered_xml.read_bytes() == served.content


async def test_invoice_due_twice_or_rerun_issues_nothing_new_and_late_registrations_are_invoiced_at_once(
    billing: Billing, seed: Any
) -> None:
    first = uuid.uuid4()
    run = seed.invoice_due()
    # Whatever order the three topics deliver in, the one registration ends up invoiced once.
    opening = [seed.published(), seed.confirmed(first), run]
    await billing.publish(*opening)
    await billing.wait_applied(*opening)
    assert len(await billing.documents(seed.course_id)) == 1

    rerun = seed.invoice_due()  # the timer fired again (a new event id)
    await billing.publish(run, rerun)  # `run` again: Kafka delivered it twice
    await billing.wait_applied(rerun)
    assert len(await billing.documents(seed.course_id)) == 1
    # Everything billing wrote is on Kafka once its outbox is empty: one event for the course, not two.
    await wait_until(lambda: _outbox_drained(billing.pool), what="billing's outbox drained")
    assert len({e.id for e in await billing.billing_events(seed.course_id, expect=1)}) == 1

    late, promoted = uuid.uuid4(), uuid.uuid4()
    late_event = seed.confirmed(late)
    promoted_event = seed.confirmed(promoted, promoted=True)
    await billing.publish(late_event, promoted_event)
    await billing.wait_applied(late_event, promoted_event)
    documents = await billing.documents(seed.course_id)
    assert sorted(d["registration_id"] for d in documents) == sorted(str(r) for r in (first, late, promoted))
    assert len({d["number"] for d in documents}) == 3  # three distinct numbers
    issued = _of_type(await billing.billing_events(seed.course_id, expect=3), "InvoiceIssued")
    assert len(issued) == 3


async def test_cancellations_substitutions_and_course_cancellation_on_real_events(
    billing: Billing, seed: Any, validator: EInvoiceValidator
) -> None:
    free, binding, other_ean, same_buyer = (uuid.uuid4() for _ in range(4))
    run = seed.invoice_due()
    before_run = [
        seed.published(),
        seed.confirmed(free, binding=False),
        seed.confirmed(binding, binding=False),
        seed.confirmed(other_ean),
        seed.confirmed(same_buyer),
        seed.became_binding(binding),
    ]
    await billing.publish(*before_run)
    await billing.wait_applied(*before_run)
    await billing.publish(run)
    await billing.wait_applied(run)
    invoices = {d["registration_id"]: d for d in await billing.documents(seed.course_id)}
    assert len(invoices) == 4

    new_buyer = buyer().model_copy(update={"ean": "5798000123458", "municipality_name": "Eksempel Kommune"})
    steps = [
        seed.cancelled(free, binding=False),  # free cancellation after invoicing → full credit note
        seed.cancelled(binding, binding=True),  # binding cancellation → the invoice stands
        seed.substituted(other_ean, new_buyer, "Åse Ødegård"),  # other EAN → credit note + new invoice
        seed.substituted(same_buyer, buyer(), "Åse Ødegård"),  # same buyer data → nothing
    ]
    await billing.publish(*steps)
    await billing.wait_applied(*steps)
    documents = await billing.documents(seed.course_id)
    credit_notes = [d for d in documents if d["kind"] == "credit_note"]
    assert len(documents) == 7 and len(credit_notes) == 2
    by_number = {d["number"]: d for d in documents}
    assert {c["credits_number"] for c in credit_notes} == {
        invoices[str(free)]["number"],
        invoices[str(other_ean)]["number"],
    }
    replacement = next(d for d in documents if d["replaces_number"])
    assert replacement["replaces_number"] == invoices[str(other_ean)]["number"]
    assert replacement["registration_id"] == str(other_ean)
    assert by_number[replacement["replaces_number"]]["kind"] == "invoice"
    xml = await billing.get(f"/documents/{replacement['document_id']}/xml", headers=ADMIN_HEADERS)
    assert (
        b"5798000123458" in xml.content
        and validator.validate(xml.content, EInvoiceFormat.PEPPOL_BIS3).fatal == ()
    )
    assert b"\xc3\x85se \xc3\x98deg\xc3\xa5rd" in xml.content  # the colleague is on the new invoice

    # Komponent cancels the course: every invoice not yet credited gets its credit note (binding, the
    # unchanged substitution and the replacement), once, though both event kinds arrive.
    cancelled = [seed.course_cancelled(), seed.cancelled(binding, binding=True, by_course=True)]
    await billing.publish(*cancelled)
    await billing.wait_applied(*cancelled)
    documents = await billing.documents(seed.course_id)
    credit_notes = [d for d in documents if d["kind"] == "credit_note"]
    assert len(documents) == 10 and len(credit_notes) == 5
    credited = {c["credits_number"] for c in credit_notes}
    assert credited == {d["number"] for d in documents if d["kind"] == "invoice"}
    for note in credit_notes:
        assert note["total_incl_vat_ore"] == 687_500  # positive amounts (DK-R-016)
        cn_xml = await billing.get(f"/documents/{note['document_id']}/xml", headers=ADMIN_HEADERS)
        assert validator.validate(cn_xml.content, EInvoiceFormat.PEPPOL_BIS3).fatal == ()
        assert f"<cbc:ID>{note['credits_number']}</cbc:ID>".encode() in cn_xml.content

    events = await billing.billing_events(seed.course_id, expect=10)
    assert len(_of_type(events, "InvoiceIssued")) == 5
    assert len(_of_type(events, "CreditNoteIssued")) == 5
    dead = await read_topic(billing.topic(dead_letter_topic(REGISTRATION)), expect=0)
    assert [r for r in dead if r.key == str(seed.course_id).encode()] == []


async def test_payments_over_http(billing: Billing, seed: Any) -> None:
    opening = [seed.published(), seed.confirmed(uuid.uuid4()), seed.invoice_due()]
    await billing.publish(*opening)
    await billing.wait_applied(*opening)
    (invoice,) = await billing.documents(seed.course_id)
    path = f"/invoices/{invoice['number']}/payments"

    for bad in (0, -5, 687_501):
        response = await billing.post(path, {"amount_ore": bad, "paid_on": "2026-12-01"})
        assert response.status_code == 422, (bad, response.text)
    assert (
        await billing.post("/invoices/1999-000001/payments", {"amount_ore": 1, "paid_on": "2026-12-01"})
    ).status_code == 404
    payment_id = str(uuid.uuid4())
    body = {"amount_ore": 500_000, "paid_on": "2026-12-01", "payment_id": payment_id}
    first = await billing.post(path, body)
    assert first.status_code == 201 and first.json()["outstanding_ore"] == 187_500
    again = await billing.post(path, body)  # a retried request: same payment, no second event
    assert again.status_code == 200 and again.json()["outstanding_ore"] == 187_500
    rest = await billing.post(path, {"amount_ore": 187_500, "paid_on": "2026-12-02"})
    assert rest.status_code == 201 and rest.json()["outstanding_ore"] == 0

    events = await billing.billing_events(seed.course_id, expect=3)
    payments = _of_type(events, "PaymentRegistered")
    assert [p.data.amount_ore for p in payments] == [500_000, 187_500]  # type: ignore[attr-defined]


async def test_an_invoice_that_cannot_be_issued_is_dead_lettered_with_its_reason_and_replayable(
    billing: Billing, seed: Any
) -> None:
    """A document with a fatal problem is never issued: the whole issuing transaction rolls back (no
    number used) and the triggering event goes to the dead-letter topic with the reason. Once the cause is
    fixed, replaying the parked event issues normally (its inbox row was rolled back too)."""
    published = seed.published()
    zero_rated = published.data.course.model_copy(update={"vat_rate_percent": 0})
    broken_course = CloudEvent(
        data=published.data.model_copy(update={"course": zero_rated}), source="/test/billing"
    )
    before_run = [broken_course, seed.confirmed(uuid.uuid4())]
    await billing.publish(*before_run)
    await billing.wait_applied(*before_run)
    counters_before = await billing.pool.fetch("SELECT * FROM document_number_counter ORDER BY series_key")
    run = seed.invoice_due()
    await billing.publish(run)

    async def parked() -> list[Any]:
        records = await read_topic(billing.topic(dead_letter_topic(COURSE_CALENDAR)), expect=1, timeout=5)
        return [r for r in records if headers_of(r).get("ce_id") == str(run.id)]

    async def is_parked() -> bool:
        return bool(await parked())

    await wait_until(is_parked, what="the InvoiceDue dead-lettered")
    (record,) = await parked()
    headers = headers_of(record)
    assert headers["dlq_reason"] == "rejected_by_handler"
    assert "VAT 0 % is not supported" in headers["dlq_detail"]
    assert await billing.documents(seed.course_id) == []
    assert (
        await billing.pool.fetch("SELECT * FROM document_number_counter ORDER BY series_key")
        == counters_before
    )

    fixed = seed.published()  # the catalogue corrects the course (a CourseUpdated in real life)
    await billing.publish(fixed)
    await billing.wait_applied(fixed)
    await produce(
        billing.topic(COURSE_CALENDAR),
        [],
        extra=[(record.key, record.value, {k: v for k, v in headers.items() if not k.startswith("dlq_")})],
    )
    await billing.wait_applied(run)
    (invoice,) = await billing.documents(seed.course_id)
    assert invoice["total_incl_vat_ore"] == 687_500


async def test_delivery_is_not_lost_when_the_process_dies_before_handing_over(
    database: str, pool: asyncpg.Pool, tmp_path: Path, seed: Any
) -> None:
    """The delivery row commits with the document; a process killed before the access point took the
    document leaves it pending, and the next process delivers it."""
    prefix = await isolated_topics()
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("the access point cannot write here")  # mkdir fails: hand-off refused
    env = {"BILLING_DELIVERY_POLL_SECONDS": "0.2", "OTEL_SDK_DISABLED": "true"}
    first = ServiceProcess(
        "billing",
        database=database,
        topic_prefix=prefix,
        env={**env, "BILLING_ACCESS_POINT_DIR": str(blocked)},
    )
    try:
        await first.wait_ready()
        billing = Billing(first, prefix, pool, blocked)
        events = [seed.published(), seed.confirmed(uuid.uuid4()), seed.invoice_due()]
        await billing.publish(*events)
        await billing.wait_applied(*events)

        async def refused() -> bool:
            return bool(
                await pool.fetchval("SELECT attempts > 0 AND status = 'pending' FROM document_delivery")
            )

        await wait_until(refused, what="a refused hand-off")
    finally:
        first.kill()

    folder = tmp_path / "access-point"
    second = ServiceProcess(
        "billing",
        database=database,
        topic_prefix=prefix,
        env={**env, "BILLING_ACCESS_POINT_DIR": str(folder)},
    )
    try:
        await second.wait_ready()

        async def delivered() -> bool:
            return bool(await pool.fetchval("SELECT status = 'delivered' FROM document_delivery"))

        await wait_until(delivered, what="delivery by the restarted process")
        number = await pool.fetchval("SELECT number FROM billing_document")
        assert (folder / SEED_EAN / f"{number}.peppol-bis-3.xml").is_file()
        assert await pool.fetchval("SELECT count(*) FROM billing_document") == 1
    finally:
        second.stop()
