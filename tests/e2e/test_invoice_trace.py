"""The invoice flow as one trace: InvoiceDue → billing issues the invoice → InvoiceIssued → the invoice email.

The invoice is issued in the InvoiceDue's trace (billing's issue span is a child of its consumer span),
and that span links to the trace of the registration that made it billable. The domain counters show
the invoice at billing's and the email at notifications' `/metrics`.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from komponent_catalogue.domain.wall_clock import COPENHAGEN
from komponent_catalogue.load_seed import Api, load
from komponent_contracts import CloudEvent, topics
from komponent_contracts.events import InvoiceDue
from komponent_contracts.examples import buyer
from komponent_runtime.auth import LOCAL_DEV_KEY
from komponent_runtime.testing import ADMIN_HEADERS, produce, wait_until
from support.otlp_receiver import ReceivedSpan
from support.platform import SEED_PAGE, Platform, start_platform

pytestmark = pytest.mark.infra

EMAIL = f"faktura.trace.{uuid.uuid4().hex[:8]}@odense.dk"


@pytest.fixture
async def platform(tmp_path: Path) -> AsyncIterator[Platform]:
    started = await start_platform(tmp_path)
    yield started
    started.stop()


def _metric(text: str, name: str, label: str) -> float:
    """Sum of a Prometheus sample family's values whose labels contain `label`."""
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name + "{") and label in line
    )


async def test_invoice_is_traced_from_invoice_due_to_email_and_linked_to_the_registration(
    platform: Platform,
) -> None:
    course = load(SEED_PAGE, Api(platform.url("catalogue"), LOCAL_DEV_KEY), datetime.now(COPENHAGEN).date())
    course_id = course["course_id"]
    reg, bill, notif = platform.url("registration"), platform.url("billing"), platform.url("notifications")
    registration_trace, invoice_trace = secrets.token_hex(16), secrets.token_hex(16)
    async with httpx.AsyncClient(timeout=10) as client:

        async def course_known() -> bool:
            answer = await client.get(f"{reg}/courses/{course_id}/registrations", headers=ADMIN_HEADERS)
            return answer.status_code == 200

        await wait_until(course_known, what="registration knows the course")
        answer = await client.post(
            f"{reg}/courses/{course_id}/registrations",
            json={
                "participant": {"name": "Trine Sporlund", "email": EMAIL, "job_title": "Konsulent"},
                "buyer": buyer().model_dump(mode="json"),
                "terms_version": "2026-01",
            },
            headers={
                "traceparent": f"00-{registration_trace}-{secrets.token_hex(8)}-01",
                "Idempotency-Key": str(uuid.uuid4()),
            },
        )
        assert answer.status_code == 202, answer.text
        registration_id = answer.json()["registration_id"]

        async def confirmed() -> bool:
            status = await client.get(f"{reg}/registrations/{registration_id}")
            return status.status_code == 200 and status.json()["status"] == "confirmed"

        await wait_until(confirmed, what="the registration confirmed")

        async def billing_knows_registration() -> bool:
            # The invoice run must find the registration projected (else it is invoiced late, at once,
            # in the registration's own trace): billing has applied the confirmation.
            text = (await client.get(f"{bill}/metrics")).text
            return _metric(text, "komponent_events_applied_total", "billing.registrations") >= 1

        await wait_until(billing_knows_registration, timeout=60, what="billing applied the confirmation")

        # The invoice run, as the catalogue's timer would fire it, in a trace of its own.
        now = datetime.now(COPENHAGEN)
        due = CloudEvent(
            InvoiceDue(
                course_id=uuid.UUID(course_id),
                due_at=now,
                fired_at=now,
                lateness_seconds=0.0,
                course_starts_at=now + timedelta(days=28),
            ),
            source="/test/invoice-trace",
        )
        headers = {**due.headers(), "traceparent": f"00-{invoice_trace}-{secrets.token_hex(8)}-01"}
        await produce(
            platform.topic_prefix + topics.COURSE_CALENDAR, [], extra=[(due.key, due.value(), headers)]
        )

        async def invoice_emailed() -> bool:
            return any(
                (part.get_filename() or "").startswith("Faktura")
                for message in platform.smtp.messages()
                for part in message.iter_attachments()
            )

        await wait_until(invoice_emailed, timeout=60, what="the invoice email at the SMTP server")

        def spans() -> list[ReceivedSpan]:
            return [s for s in platform.otlp.snapshot() if s.trace_id == invoice_trace]

        def issue_spans() -> list[ReceivedSpan]:
            return [s for s in spans() if s.service == "billing" and s.name == "issue invoice"]

        def publish_spans() -> list[ReceivedSpan]:
            return [
                s
                for s in spans()
                if s.service == "billing" and s.kind == 4 and topics.BILLING in s.name  # PRODUCER
            ]

        def smtp_spans() -> list[ReceivedSpan]:
            return [
                s
                for s in spans()
                if s.service == "notifications"
                and s.name == "smtp send"
                and s.attributes.get("email.kind") == "invoice"
            ]

        async def trace_complete() -> bool:
            return bool(issue_spans() and publish_spans() and smtp_spans())

        try:
            await wait_until(
                trace_complete, timeout=30, what=f"issue, publish and smtp spans in {invoice_trace}"
            )
        except AssertionError as exc:
            seen = sorted({(s.service, s.name, s.kind) for s in spans()})
            raise AssertionError(f"{exc}; spans in the invoice trace: {seen}") from None

        (issue,) = issue_spans()
        assert registration_trace in issue.links, issue.links
        assert issue.attributes.get("registration_id") == registration_id
        # The issue span is a child of billing's InvoiceDue consumer span, in the InvoiceDue's trace.
        by_id = {s.span_id: s for s in spans()}
        assert issue.parent_span_id in by_id and by_id[issue.parent_span_id].service == "billing"
        # InvoiceIssued was enqueued inside the issue span: its publish continues that span.
        assert any(p.parent_span_id == issue.span_id for p in publish_spans()), [
            (p.name, p.parent_span_id) for p in publish_spans()
        ]

        # Domain metrics: the invoice at billing, the invoice email at notifications.
        billing_metrics = (await client.get(f"{bill}/metrics")).text
        assert _metric(billing_metrics, "komponent_documents_issued_total", 'type="invoice"') == 1

        async def email_counted() -> bool:
            text = (await client.get(f"{notif}/metrics")).text
            return _metric(text, "komponent_emails_sent_total", 'kind="invoice"') >= 1

        await wait_until(email_counted, what="the invoice email counted at notifications' /metrics")
