"""Erasure on request (GDPR art. 17) across the platform, on real processes.

A participant registers, gets the confirmation email and is invoiced; an admin erases them. Afterwards no
database (registration, notifications, billing; catalogue holds no participant data) contains their name,
address, phone or job title — except billing's issued documents, which bookkeeping law keeps unchanged:
the invoice PDF and XML are byte-identical and still retrievable, the status URL still answers, and the
email log still shows that the emails were sent. A second participant on the same course keeps their data.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from komponent_catalogue.domain.wall_clock import COPENHAGEN
from komponent_catalogue.load_seed import Api, load
from komponent_contracts import CloudEvent, topics
from komponent_contracts.events import DeadlinePassed, InvoiceDue
from komponent_contracts.examples import buyer
from komponent_runtime.auth import LOCAL_DEV_KEY
from komponent_runtime.settings import DatabaseSettings
from komponent_runtime.testing import ADMIN_HEADERS, produce, wait_until
from support.platform import SEED_PAGE, SERVICES, Platform, start_platform

pytestmark = pytest.mark.infra

ERASED = {
    "name": "Ingeborg Sletmig Glemmesen",
    "email": f"ingeborg.glemmesen.{uuid.uuid4().hex[:8]}@vejle.dk",
    "job_title": "Souschef for ældreplejen",
    "phone": "+45 71 72 73 74",
}
KEPT = {
    "name": "Kasper Bliver Beholdtsen",
    "email": f"kasper.beholdtsen.{uuid.uuid4().hex[:8]}@vejle.dk",
    "job_title": "Konsulent",
}


@pytest.fixture
async def platform(tmp_path: Path) -> AsyncIterator[Platform]:
    started = await start_platform(tmp_path)
    yield started
    started.stop()


async def _database_text(database: str, *, skip_tables: frozenset[str] = frozenset()) -> dict[str, str]:
    """Every row of every table of a service's database as text, bytea decoded, per table."""
    conn = await asyncpg.connect(DatabaseSettings().dsn(database))
    try:
        tables = [
            r["tablename"]
            for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        ]
        out: dict[str, str] = {}
        for table in tables:
            if table in skip_tables:
                continue
            rows = await conn.fetch(f'SELECT * FROM "{table}"')
            parts: list[str] = []
            for row in rows:
                for value in row.values():
                    if isinstance(value, bytes):
                        parts.append(value.decode("utf-8", errors="replace"))
                    else:
                        parts.append(str(value))
            out[table] = "\n".join(parts)
        return out
    finally:
        await conn.close()


def _found(texts: dict[str, str], person: dict[str, str]) -> list[str]:
    hits = []
    for table, text in texts.items():
        lowered = text.lower()
        for field, value in person.items():
            if (
                value.lower() in lowered
                or value.encode("ascii", "backslashreplace").decode().lower() in lowered
            ):
                hits.append(f"{table}: {field}")
    return hits


async def _held_only_in_issued_documents(databases: dict[str, str], person: dict[str, str]) -> None:
    """No database of the platform holds `person`, except billing's issued documents (bookkeeping law)."""
    for name in ("registration", "notifications", "catalogue"):
        texts = await _database_text(databases[name])
        assert not _found(texts, person), f"{name} still holds: {_found(texts, person)}"
    billing = await _database_text(databases["billing"], skip_tables=frozenset({"billing_document"}))
    assert not _found(billing, person), f"billing still holds: {_found(billing, person)}"


async def _register(
    client: httpx.AsyncClient, platform: Platform, course_id: str, person: dict[str, str]
) -> str:
    answer = await client.post(
        f"{platform.url('registration')}/courses/{course_id}/registrations",
        json={"participant": person, "buyer": buyer().model_dump(mode="json"), "terms_version": "2026-01"},
    )
    assert answer.status_code == 202, answer.text
    rid: str = answer.json()["registration_id"]
    return rid


async def _seed_course_known_to_registration(platform: Platform, client: httpx.AsyncClient) -> dict[str, Any]:
    """The seed course, published and projected by registration (so it takes registrations)."""
    course = load(SEED_PAGE, Api(platform.url("catalogue"), LOCAL_DEV_KEY), datetime.now(COPENHAGEN).date())
    listing = f"{platform.url('registration')}/courses/{course['course_id']}/registrations"

    async def course_known() -> bool:
        return (await client.get(listing, headers=ADMIN_HEADERS)).status_code == 200

    await wait_until(course_known, what="registration knows the course")
    return course


async def test_erasure_anonymises_everything_but_the_issued_invoice(platform: Platform) -> None:
    reg, bill, notif = platform.url("registration"), platform.url("billing"), platform.url("notifications")
    async with httpx.AsyncClient(timeout=10) as client:
        course_id = (await _seed_course_known_to_registration(platform, client))["course_id"]
        erased_id = await _register(client, platform, course_id, ERASED)
        kept_id = await _register(client, platform, course_id, KEPT)

        async def confirmed() -> bool:
            for rid in (erased_id, kept_id):
                answer = await client.get(f"{reg}/registrations/{rid}")
                if answer.status_code != 200 or answer.json()["status"] != "confirmed":
                    return False
            return True

        await wait_until(confirmed, what="both confirmed")

        async def confirmation_email() -> bool:
            return any(ERASED["email"] in str(m["To"]) for m in platform.smtp.messages())

        await wait_until(confirmation_email, timeout=60, what="the confirmation email")

        # The invoice run, as the catalogue's timer would fire it.
        now = datetime.now(COPENHAGEN)
        due = InvoiceDue(
            course_id=uuid.UUID(course_id),
            due_at=now,
            fired_at=now,
            lateness_seconds=0.0,
            course_starts_at=now + timedelta(days=28),
        )
        await produce(
            platform.topic_prefix + topics.COURSE_CALENDAR, [CloudEvent(due, source="/test/erasure")]
        )

        async def invoices() -> list[dict[str, Any]]:
            answer = await client.get(f"{bill}/courses/{course_id}/documents", headers=ADMIN_HEADERS)
            return answer.json() if answer.status_code == 200 else []

        async def invoiced() -> bool:
            return {d["registration_id"] for d in await invoices()} >= {erased_id, kept_id}

        await wait_until(invoiced, timeout=60, what="both invoiced")
        invoice = next(d for d in await invoices() if d["registration_id"] == erased_id)
        artefacts = {
            path: (await client.get(f"{bill}{path}", headers=ADMIN_HEADERS)).content
            for path in (
                f"/documents/{invoice['document_id']}/pdf",
                f"/documents/{invoice['document_id']}/xml?format=peppol",
                f"/documents/{invoice['document_id']}/xml?format=oioubl",
            )
        }
        assert all(artefacts.values())

        async def invoice_emailed() -> bool:
            log = await client.get(f"{notif}/emails", params={"course_id": course_id}, headers=ADMIN_HEADERS)
            return any(e.get("kind") == "invoice" and e.get("status") == "sent" for e in log.json())

        await wait_until(invoice_emailed, timeout=60, what="the invoice email sent")

        databases = {name: platform.services[name].database for name in SERVICES}
        before = await _database_text(databases["registration"])
        assert _found(before, ERASED), "the participant's data should be stored before the erasure"

        # The erasure; 409 while events about the registration are still in registration's outbox.
        async def erase() -> bool:
            answer = await client.post(
                f"{reg}/admin/erasures", json={"email": ERASED["email"]}, headers=ADMIN_HEADERS
            )
            assert answer.status_code in (202, 409), answer.text
            if answer.status_code == 202:
                assert [r["registration_id"] for r in answer.json()["registrations"]] == [erased_id]
            return answer.status_code == 202

        await wait_until(erase, what="the erasure accepted")

        async def applied_downstream() -> bool:
            for name, table in (
                ("notifications", "registration_projection"),
                ("billing", "billing_registration"),
            ):
                conn = await asyncpg.connect(DatabaseSettings().dsn(databases[name]))
                try:
                    who = await conn.fetchval(
                        f"SELECT participant->>'name' FROM {table} WHERE registration_id = $1",
                        uuid.UUID(erased_id),
                    )
                finally:
                    await conn.close()
                if who != "slettet":
                    return False
            return True

        await wait_until(applied_downstream, timeout=60, what="notifications and billing anonymised")

        # Nowhere but inside billing's issued documents.
        await _held_only_in_issued_documents(databases, ERASED)
        # The other participant is untouched (and the search above would have found data).
        assert _found(await _database_text(databases["registration"]), KEPT)
        assert _found(await _database_text(databases["notifications"]), {"email": KEPT["email"]})

        # The invoice is kept as the law requires: same bytes, still served.
        for path, content in artefacts.items():
            again = await client.get(f"{bill}{path}", headers=ADMIN_HEADERS)
            assert again.status_code == 200 and again.content == content, path

        # The status URL still answers, without personal data, with the registration's state.
        status = await client.get(f"{reg}/registrations/{erased_id}")
        assert status.status_code == 200 and status.json()["status"] == "confirmed"
        # The email log still shows what was sent for the registration, not to whom.
        log = (
            await client.get(f"{notif}/emails", params={"registration_id": erased_id}, headers=ADMIN_HEADERS)
        ).json()
        assert log and all(e["status"] == "sent" for e in log), log
        assert ERASED["email"] not in str(log)
        # The admin list of the course keeps the registration, anonymised.
        listing = (await client.get(f"{reg}/courses/{course_id}/registrations", headers=ADMIN_HEADERS)).text
        assert erased_id in listing and ERASED["name"] not in listing and KEPT["name"] in listing

        # Idempotent: a second request finds nothing left.
        again = await client.post(
            f"{reg}/admin/erasures", json={"email": ERASED["email"]}, headers=ADMIN_HEADERS
        )
        assert again.status_code == 202 and again.json()["registrations"] == []


LEAVER = {
    "name": "Lærke Overdrager Gåvæk",
    "email": f"laerke.gaavaek.{uuid.uuid4().hex[:8]}@vejle.dk",
    "job_title": "Visitator i hjemmeplejen",
    "phone": "+45 75 76 77 78",
}
COLLEAGUE = {
    "name": "Kollega Overtager Pladsen",
    "email": f"kollega.overtager.{uuid.uuid4().hex[:8]}@vejle.dk",
    "job_title": "Sygeplejerske",
}


async def test_erasure_of_a_participant_who_handed_their_seat_to_a_colleague(platform: Platform) -> None:
    """A binding participant sends a colleague instead, then asks to be erased. The registration is the
    colleague's and stays so, with their data; nothing but billing's issued documents holds the person
    who left: not registration's record of who left, not their own emails (confirmation, "you handed
    over your seat"), not the mentions of them in the colleague's email."""
    reg, notif = platform.url("registration"), platform.url("notifications")
    async with httpx.AsyncClient(timeout=10) as client:
        course = await _seed_course_known_to_registration(platform, client)
        course_id = course["course_id"]
        rid = await _register(client, platform, course_id, LEAVER)

        async def confirmed() -> bool:
            answer = await client.get(f"{reg}/registrations/{rid}")
            return answer.status_code == 200 and answer.json()["status"] == "confirmed"

        await wait_until(confirmed, what="confirmed")
        # The deadline passes (as the catalogue's timer would say): the seat is binding and can be handed over.
        deadline = datetime.fromisoformat(course["schedule"]["registration_deadline"])
        now = datetime.now(COPENHAGEN)
        passed = DeadlinePassed(
            course_id=uuid.UUID(course_id), due_at=deadline, fired_at=now, lateness_seconds=0.0
        )
        await produce(
            platform.topic_prefix + topics.COURSE_CALENDAR, [CloudEvent(passed, source="/test/erasure")]
        )

        async def binding() -> bool:
            return bool((await client.get(f"{reg}/registrations/{rid}")).json()["binding"])

        await wait_until(binding, what="binding after the deadline")
        answer = await client.post(
            f"{reg}/registrations/{rid}/substitution", json={"new_participant": COLLEAGUE}
        )
        assert answer.status_code == 202, answer.text

        async def both_told() -> bool:
            to = " ".join(str(m["To"]) for m in platform.smtp.messages())
            return LEAVER["email"] in to and COLLEAGUE["email"] in to

        await wait_until(both_told, timeout=60, what="the substitution emails to both")
        databases = {name: platform.services[name].database for name in SERVICES}

        async def billed_to_the_colleague() -> bool:
            # Billing gathers registration events (up to KAFKA_GATHER_MAX_WAIT_MS): it names the colleague
            # once it has applied the substitution, which is not part of the erasure.
            conn = await asyncpg.connect(DatabaseSettings().dsn(databases["billing"]))
            try:
                who = await conn.fetchval(
                    "SELECT participant->>'email' FROM billing_registration WHERE registration_id = $1",
                    uuid.UUID(rid),
                )
            finally:
                await conn.close()
            return who == COLLEAGUE["email"]

        await wait_until(billed_to_the_colleague, timeout=60, what="billing applied the substitution")

        async def erase() -> bool:
            answer = await client.post(
                f"{reg}/admin/erasures", json={"email": LEAVER["email"]}, headers=ADMIN_HEADERS
            )
            assert answer.status_code in (202, 409), answer.text
            if answer.status_code == 202:
                assert answer.json()["registrations"] == []
                assert answer.json()["handed_over"] == [{"course_id": course_id, "registration_id": rid}]
            return answer.status_code == 202

        await wait_until(erase, what="the erasure accepted")

        still: list[str] = []

        async def gone_from_notifications() -> bool:
            still[:] = _found(await _database_text(databases["notifications"]), LEAVER)
            return not still

        try:
            await wait_until(gone_from_notifications, timeout=60, what="notifications to scrub the leaver")
        except AssertionError as timed_out:
            raise AssertionError(f"notifications still holds: {still}") from timed_out
        await _held_only_in_issued_documents(databases, LEAVER)
        # The colleague keeps the seat, their data and their emails.
        assert _found(await _database_text(databases["registration"]), COLLEAGUE)
        assert _found(await _database_text(databases["notifications"]), {"email": COLLEAGUE["email"]})
        status = (await client.get(f"{reg}/registrations/{rid}")).json()
        assert status["status"] == "confirmed" and status["binding"] is True
        log = (
            await client.get(f"{notif}/emails", params={"registration_id": rid}, headers=ADMIN_HEADERS)
        ).json()
        kinds = {e["kind"] for e in log}
        assert {"registration_confirmed", "substituted_out", "substituted_in"} <= kinds, log
        assert LEAVER["email"] not in str(log) and LEAVER["name"] not in str(log)
