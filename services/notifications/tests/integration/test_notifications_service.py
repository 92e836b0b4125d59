"""Notifications as a real process on the real stack: Kafka in, PostgreSQL ledger, SMTP out.

Each test gets its own database and its own topic prefix, publishes the triggering events itself (the
contracts' examples with fresh ids) and watches what arrives at an SMTP server it runs on a free port.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from typing import Any

import asyncpg
import httpx
import pytest
from komponent_contracts import CloudEvent, topics
from komponent_contracts import events as ev
from komponent_contracts.examples import NOW, all_examples, buyer, course, invoice_issued
from komponent_runtime.testing import (
    ADMIN_HEADERS,
    ServiceProcess,
    headers_of,
    isolated_topics,
    produce,
    read_topic,
    wait_until,
)

pytestmark = pytest.mark.infra
SOURCE = "/tests/notifications"


def published(course_id: uuid.UUID) -> CloudEvent[Any]:
    snapshot = course().model_copy(update={"course_id": course_id})
    return CloudEvent(
        data=ev.CoursePublished(course_id=course_id, course=snapshot, occurred_at=NOW), source=SOURCE
    )


def person(n: int) -> ev.Participant:
    return ev.Participant(name=f"Deltager Ærø {n}", email=f"deltager{n}@kommune.dk", job_title="Konsulent")


def confirmed(course_id: uuid.UUID, n: int, registration_id: uuid.UUID | None = None) -> CloudEvent[Any]:
    data = ev.RegistrationConfirmed(
        registration_id=registration_id or uuid.uuid4(),
        course_id=course_id,
        occurred_at=NOW,
        participant=person(n),
        buyer=buyer(),
        binding=False,
    )
    return CloudEvent(data=data, source=SOURCE)


def became_binding(course_id: uuid.UUID, registration_id: uuid.UUID) -> CloudEvent[Any]:
    data = ev.RegistrationBecameBinding(registration_id=registration_id, course_id=course_id, occurred_at=NOW)
    return CloudEvent(data=data, source=SOURCE)


def cancelled(course_id: uuid.UUID, n: int, registration_id: uuid.UUID) -> CloudEvent[Any]:
    data = ev.RegistrationCancelled(
        registration_id=registration_id,
        course_id=course_id,
        occurred_at=NOW,
        participant=person(n),
        binding=True,
    )
    return CloudEvent(data=data, source=SOURCE)


async def start(database: str, prefix: str, **env: object) -> ServiceProcess:
    service = ServiceProcess(
        "notifications",
        database=database,
        topic_prefix=prefix,
        env={"NOTIFY_POLL_SECONDS": "0.05", **{k: str(v) for k, v in env.items()}},
    )
    await service.wait_ready()
    return service


async def ledger(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    try:
        return await pool.fetch("SELECT * FROM send_ledger ORDER BY id")
    except asyncpg.UndefinedTableError:
        return []


async def test_the_same_event_delivered_three_times_is_one_email_and_the_log_can_resend_it(
    database: str, pool: asyncpg.Pool, mail_sink: Any
) -> None:
    mail_sink.start()
    prefix = await isolated_topics()
    service = await start(database, prefix, SMTP_PORT=mail_sink.port)
    try:
        course_id = uuid.uuid4()
        triple = confirmed(course_id, 1)
        marker = confirmed(course_id, 2)  # same course, same partition: processed after the triple
        await produce(prefix + topics.COURSE, [published(course_id)])
        await produce(prefix + topics.REGISTRATION, [triple, triple, triple, marker])

        async def both_sent() -> bool:
            return len(mail_sink.snapshot()) >= 2

        await wait_until(both_sent, what="two emails at the SMTP server")

        async def both_recorded() -> bool:
            # The server accepts a message before the sender records its verdict.
            return [r["status"] for r in await ledger(pool)] == ["sent", "sent"]

        await wait_until(both_recorded, what="both verdicts in the ledger")
        await asyncio.sleep(0.5)  # a duplicate would arrive now
        assert Counter(m.to for m in mail_sink.snapshot()) == {
            "deltager1@kommune.dk": 1,
            "deltager2@kommune.dk": 1,
        }
        rows = await ledger(pool)
        assert [(r["kind"], r["status"]) for r in rows] == [("registration_confirmed", "sent")] * 2

        async with httpx.AsyncClient(base_url=service.url, headers=ADMIN_HEADERS) as client:
            assert (await client.get("/emails")).status_code == 200
            assert (await httpx.AsyncClient(base_url=service.url).get("/emails")).status_code == 401
            log = (
                await client.get("/emails", params={"registration_id": str(triple.data.registration_id)})
            ).json()
            assert [(e["kind"], e["status"], e["recipient"]) for e in log] == [
                ("registration_confirmed", "sent", "deltager1@kommune.dk")
            ]
            assert log[0]["sent_at"] and log[0]["last_code"] == 250
            by_course = (await client.get("/emails", params={"course_id": str(course_id)})).json()
            assert len(by_course) == 2
            by_recipient = (await client.get("/emails", params={"recipient": "Deltager2@Kommune.dk"})).json()
            assert [e["registration_id"] for e in by_recipient] == [str(marker.data.registration_id)]

            resent = await client.post(f"/emails/{log[0]['email_id']}/resend")
            assert resent.status_code == 202, resent.text
            assert resent.json()["resend_of"] == rows[0]["id"]

            async def resend_arrived() -> bool:
                return len(mail_sink.snapshot()) == 3

            await wait_until(resend_arrived, what="the resent email")
            first, _, again = mail_sink.snapshot()
            assert again.to == first.to and again.message_id != first.message_id
            assert (await client.get(f"/emails/{uuid.uuid4()}")).status_code == 404

        outcomes = await read_topic(prefix + topics.EMAIL, expect=3)
        assert Counter(headers_of(r)["ce_type"] for r in outcomes) == {ev.EmailSent.ce_type: 3}
    finally:
        service.stop()


async def test_smtp_away_for_a_while_then_every_email_arrives_in_order_per_recipient(
    database: str, pool: asyncpg.Pool, mail_sink: Any
) -> None:
    prefix = await isolated_topics()  # the SMTP server is NOT started yet
    service = await start(
        database, prefix, SMTP_PORT=mail_sink.port, NOTIFY_RETRY_BASE_SECONDS=0.2, NOTIFY_RETRY_MAX_SECONDS=1
    )
    try:
        course_id = uuid.uuid4()
        registrations = {n: uuid.uuid4() for n in range(1, 4)}
        events = [confirmed(course_id, n, r) for n, r in registrations.items()]
        events += [became_binding(course_id, r) for r in registrations.values()]
        events += [cancelled(course_id, n, r) for n, r in registrations.items()]
        await produce(prefix + topics.COURSE, [published(course_id)])
        await produce(prefix + topics.REGISTRATION, events)

        async def retried_while_away() -> bool:
            rows = await ledger(pool)
            return (
                len(rows) == 9
                and all(r["status"] == "pending" for r in rows)
                and all(r["attempts"] >= 2 for r in rows if r["kind"] == "registration_confirmed")
            )

        await wait_until(retried_while_away, what="nine planned emails, the first ones tried repeatedly")
        assert mail_sink.snapshot() == []

        mail_sink.start()

        async def all_arrived() -> bool:
            return len(mail_sink.snapshot()) >= 9

        await wait_until(all_arrived, what="every email after SMTP returned")
        per_recipient: dict[str, list[str]] = {}
        for m in mail_sink.snapshot():
            per_recipient.setdefault(m.to, []).append(m.kind)
        expected = ["registration_confirmed", "became_binding", "cancellation_receipt"]
        assert per_recipient == {f"deltager{n}@kommune.dk": expected for n in registrations}

        async def all_recorded() -> bool:  # the verdict is committed just after the server's 250
            return {r["status"] for r in await ledger(pool)} == {"sent"}

        await wait_until(all_recorded, what="every email recorded as sent")
    finally:
        service.stop()


@pytest.mark.parametrize("smtp_connections", [1, 4], ids=["one-connection", "default-four-connections"])
async def test_sigkill_during_a_burst_loses_nothing_and_duplicates_at_most_one_per_kill(
    database: str, pool: asyncpg.Pool, mail_sink: Any, smtp_connections: int
) -> None:
    """A kill can land after SMTP accepted a message and before its verdict was committed. With the
    service's default configuration every connection sends, but the final-dot gate lets only one message
    at a time be accepted and unrecorded, so one kill duplicates at most one message, and each duplicate
    shows in the ledger as an attempt without a recorded outcome."""
    mail_sink.start()
    prefix = await isolated_topics()
    env = {
        "SMTP_PORT": mail_sink.port,
        "SMTP_POOL_SIZE": smtp_connections,
        "NOTIFY_LEASE_SECONDS": 2,
        "NOTIFY_BATCH_SIZE": 20,
    }
    service = await start(database, prefix, **env)
    burst = 300
    course_ids = [uuid.uuid4() for _ in range(3)]
    events = [confirmed(course_ids[n % 3], n) for n in range(burst)]
    kills = 0
    try:
        await produce(prefix + topics.COURSE, [published(c) for c in course_ids])
        await produce(prefix + topics.REGISTRATION, events)
        for threshold in (60, 150):

            async def reached(threshold: int = threshold) -> bool:
                return len(mail_sink.snapshot()) >= threshold

            await wait_until(reached, timeout=60, interval=0.01, what=f"{threshold} emails before the kill")
            service.kill()
            kills += 1
            service = await start(database, prefix, **env)

        async def all_sent() -> bool:
            rows = await ledger(pool)
            return len(rows) == burst and all(r["status"] == "sent" for r in rows)

        await wait_until(all_sent, timeout=90, what="every planned email sent after the kills")
        await asyncio.sleep(0.5)
        received = Counter(m.message_id for m in mail_sink.snapshot())
        expected_ids = {r["message_id"] for r in await ledger(pool)}
        assert set(received) == expected_ids  # nothing lost
        duplicates = sum(received.values()) - len(received)
        counted = await pool.fetchval("SELECT sum(attempts - outcomes) FROM send_ledger")
        print(f"\nconnections={smtp_connections} kills={kills} duplicates={duplicates} counted={counted}")
        assert duplicates <= counted  # every duplicate shows in the ledger as an unrecorded attempt
        assert duplicates <= kills  # at most one per kill, with every connection busy
    finally:
        service.stop()


async def test_invoice_waits_for_billings_pdf_and_is_never_sent_without_it(
    database: str, pool: asyncpg.Pool, mail_sink: Any, fake_billing: Any, make_pdf: Any
) -> None:
    mail_sink.start()
    prefix = await isolated_topics()
    service = await start(
        database,
        prefix,
        SMTP_PORT=mail_sink.port,
        BILLING_URL=fake_billing.url,
        NOTIFY_RETRY_BASE_SECONDS=0.2,
        NOTIFY_RETRY_MAX_SECONDS=0.5,
    )
    try:
        course_id, document_id = uuid.uuid4(), uuid.uuid4()
        pdf_url = f"/documents/{document_id}/pdf"
        invoice = invoice_issued().model_copy(
            update={"course_id": course_id, "document_id": document_id, "pdf_url": pdf_url}
        )
        await produce(prefix + topics.COURSE, [published(course_id)])
        await produce(prefix + topics.BILLING, [CloudEvent(data=invoice, source=SOURCE)])

        async def tried_without_billing() -> bool:
            rows = await ledger(pool)
            return len(rows) == 1 and rows[0]["attempts"] >= 2

        await wait_until(tried_without_billing, what="the invoice email retried while billing is away")
        row = (await ledger(pool))[0]
        assert row["status"] == "pending" and "billing" in row["last_reply"]
        assert mail_sink.snapshot() == []

        pdf = make_pdf("Faktura F-2023-00001")
        fake_billing.documents[pdf_url] = pdf
        fake_billing.start()

        async def sent() -> bool:
            return len(mail_sink.snapshot()) == 1

        await wait_until(sent, what="the invoice email once billing answers")
        (message,) = mail_sink.snapshot()
        attachments = {a.get_filename(): a.get_content() for a in message.message.iter_attachments()}
        assert attachments == {"Faktura F-2023-00001.pdf": pdf}
    finally:
        service.stop()


async def test_an_email_for_a_course_not_yet_projected_waits_for_the_course(
    database: str, pool: asyncpg.Pool, mail_sink: Any
) -> None:
    mail_sink.start()
    prefix = await isolated_topics()
    service = await start(
        database,
        prefix,
        SMTP_PORT=mail_sink.port,
        NOTIFY_RETRY_BASE_SECONDS=0.2,
        NOTIFY_RETRY_MAX_SECONDS=0.5,
    )
    try:
        course_id = uuid.uuid4()
        await produce(prefix + topics.REGISTRATION, [confirmed(course_id, 1)])

        async def waiting() -> bool:
            rows = await ledger(pool)
            return len(rows) == 1 and rows[0]["attempts"] >= 2

        await wait_until(waiting, what="the email waiting for its course")
        assert mail_sink.snapshot() == []
        await produce(prefix + topics.COURSE, [published(course_id)])

        async def sent() -> bool:
            return len(mail_sink.snapshot()) == 1

        await wait_until(sent, what="the email once the course is known")
    finally:
        service.stop()


async def test_course_reminder_goes_to_every_confirmed_participant(
    database: str, pool: asyncpg.Pool, mail_sink: Any
) -> None:
    mail_sink.start()
    prefix = await isolated_topics()
    service = await start(database, prefix, SMTP_PORT=mail_sink.port)
    try:
        course_id = uuid.uuid4()
        stays, leaves = uuid.uuid4(), uuid.uuid4()
        reminder = next(e for e in all_examples() if isinstance(e, ev.CourseReminderDue))
        await produce(prefix + topics.COURSE, [published(course_id)])
        await produce(
            prefix + topics.REGISTRATION,
            [
                confirmed(course_id, 1, stays),
                confirmed(course_id, 2, leaves),
                cancelled(course_id, 2, leaves),
            ],
        )

        async def projected() -> bool:
            return len(await ledger(pool)) == 3

        await wait_until(projected, what="the registration emails planned")
        due = reminder.model_copy(update={"course_id": course_id})
        await produce(prefix + topics.COURSE_CALENDAR, [CloudEvent(data=due, source=SOURCE)])

        async def reminded() -> bool:
            return any(m.kind == "course_reminder" for m in mail_sink.snapshot())

        await wait_until(reminded, what="the course reminder")
        await asyncio.sleep(0.5)
        assert [m.to for m in mail_sink.snapshot() if m.kind == "course_reminder"] == ["deltager1@kommune.dk"]
    finally:
        service.stop()
