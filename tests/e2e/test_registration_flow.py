"""One registration through the whole platform, as ops and participants see it.

HTTP registration → RegistrationReceived on Kafka → seat allocated → RegistrationConfirmed → a Danish
confirmation email accepted by a real SMTP server; and every span of it, in every service, in ONE trace
with correct parent links. No email address or participant name appears in any span or log line.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from komponent_catalogue.domain.wall_clock import COPENHAGEN
from komponent_catalogue.load_seed import Api, load
from komponent_contracts.examples import buyer
from komponent_runtime.auth import LOCAL_DEV_KEY
from komponent_runtime.testing import ADMIN_HEADERS, wait_until
from support.platform import SEED_PAGE, Platform, start_platform

pytestmark = pytest.mark.infra

PARTICIPANT_NAME = "Søren Ærø Østergård"
PARTICIPANT_EMAIL = "soeren.e2e@roskilde.dk"


@pytest.fixture
async def platform(tmp_path: Path) -> AsyncIterator[Platform]:
    started = await start_platform(tmp_path)
    yield started
    started.stop()


async def _course_known_to_registration(
    client: httpx.AsyncClient, platform: Platform, course_id: str
) -> bool:
    answer = await client.get(
        f"{platform.url('registration')}/courses/{course_id}/registrations", headers=ADMIN_HEADERS
    )
    return answer.status_code == 200


async def test_one_registration_gives_one_confirmation_email_in_one_trace(platform: Platform) -> None:
    course = load(SEED_PAGE, Api(platform.url("catalogue"), LOCAL_DEV_KEY), datetime.now(COPENHAGEN).date())
    course_id = course["course_id"]
    async with httpx.AsyncClient(timeout=10) as client:
        await wait_until(
            lambda: _course_known_to_registration(client, platform, course_id),
            what="registration knows the course",
        )
        trace_id = secrets.token_hex(16)
        body = {
            "participant": {
                "name": PARTICIPANT_NAME,
                "email": PARTICIPANT_EMAIL,
                "job_title": "Udviklingskonsulent",
            },
            "buyer": buyer().model_dump(mode="json"),
            "terms_version": "2026-01",
        }
        answer = await client.post(
            f"{platform.url('registration')}/courses/{course_id}/registrations",
            json=body,
            headers={
                "traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01",
                "Idempotency-Key": str(uuid.uuid4()),
            },
        )
        assert answer.status_code == 202, answer.text
        registration_id = answer.json()["registration_id"]

        async def confirmed() -> bool:
            status = await client.get(f"{platform.url('registration')}/registrations/{registration_id}")
            return status.status_code == 200 and status.json()["status"] == "confirmed"

        await wait_until(confirmed, what="the registration confirmed")

    def confirmation_emails() -> list:  # type: ignore[type-arg]
        return [m for m in platform.smtp.messages() if PARTICIPANT_EMAIL in str(m["To"])]

    async def one_email() -> bool:
        return len(confirmation_emails()) >= 1

    await wait_until(one_email, timeout=60, what="the confirmation email at the SMTP server")
    emails = confirmation_emails()
    assert len(emails) == 1
    text = emails[0].get_body(preferencelist=("plain",)).get_content()
    assert "Comwell Roskilde" in text and "5.500,00 kr." in text

    # Every service's spans reach the OTLP receiver shortly after (batch export every 100 ms).
    wanted = {"registration", "notifications", "catalogue"}

    async def trace_complete() -> bool:
        services = {s.service for s in platform.otlp.snapshot() if s.trace_id == trace_id}
        smtp_sent = any(s.trace_id == trace_id and "smtp" in s.name.lower() for s in platform.otlp.snapshot())
        return wanted <= services and smtp_sent

    try:
        await wait_until(
            trace_complete, timeout=30, what=f"spans of {wanted} and the SMTP send in trace {trace_id}"
        )
    except AssertionError as exc:
        seen = sorted({(s.service, s.name) for s in platform.otlp.snapshot() if s.trace_id == trace_id})
        raise AssertionError(f"{exc}; spans in the trace: {seen}") from None
    spans = [s for s in platform.otlp.snapshot() if s.trace_id == trace_id]
    by_id = {s.span_id: s for s in spans}
    roots = [s for s in spans if s.parent_span_id not in by_id]
    # One trace: the only span whose parent is not in the trace is the HTTP request's server span,
    # whose parent is the caller's (this test's) span id.
    assert len(roots) == 1 and roots[0].service == "registration", [(r.service, r.name) for r in roots]
    # The request is traced once, by the runtime's middleware: no framework spans beside it (1 = INTERNAL,
    # 2 = SERVER).
    request_spans = [(s.name, s.kind) for s in spans if s.service == "registration" and s.kind in (1, 2)]
    assert request_spans == [("POST /courses/{course_id}/registrations", 2)], request_spans
    # Consumer spans carry what ops search by: the CloudEvents id and type, and the consumer group.
    confirmed_consumers = {
        str(s.attributes.get("messaging.consumer.group.name"))
        for s in spans
        if s.attributes.get("cloudevents.event_type") == "dk.komponent.registration.confirmed.v1"
        and s.attributes.get("cloudevents.event_id")
    }
    assert any(g.endswith("notifications.registration-emails") for g in confirmed_consumers), (
        confirmed_consumers
    )


async def test_no_personal_data_in_spans_or_logs(platform: Platform) -> None:
    course = load(SEED_PAGE, Api(platform.url("catalogue"), LOCAL_DEV_KEY), datetime.now(COPENHAGEN).date())
    course_id = course["course_id"]
    name, address = "Åge Ølstrøm Privatsen", f"privat.{uuid.uuid4().hex[:6]}@kommune.dk"
    async with httpx.AsyncClient(timeout=10) as client:
        await wait_until(
            lambda: _course_known_to_registration(client, platform, course_id), what="course known"
        )
        answer = await client.post(
            f"{platform.url('registration')}/courses/{course_id}/registrations",
            json={
                "participant": {"name": name, "email": address, "job_title": "Konsulent"},
                "buyer": buyer().model_dump(mode="json"),
                "terms_version": "2026-01",
            },
        )
        assert answer.status_code == 202, answer.text

    async def delivered() -> bool:
        return any(address in str(m["To"]) for m in platform.smtp.messages())

    await wait_until(delivered, timeout=60, what="the email delivered")
    await wait_until(lambda: _spans_arrived(platform), what="spans exported")
    for span in platform.otlp.snapshot():
        flat = repr(span.attributes) + span.name
        assert address not in flat and name not in flat, f"personal data in span {span.service}/{span.name}"
    for process in platform.services.values():
        log = process.log_path.read_text(encoding="utf-8", errors="replace")
        assert address not in log and name not in log, f"personal data in {process.log_path}"


async def _spans_arrived(platform: Platform) -> bool:
    return len(platform.otlp.snapshot()) > 10
