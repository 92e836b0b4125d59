"""Seat rules end to end through the real service process: Kafka in, PostgreSQL, outbox, Kafka out.

Each test publishes its own course (no catalogue service involved) and reads the service's answers on the
registration topic and on its HTTP read API.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from komponent_contracts import CloudEvent, topics
from komponent_contracts.events import (
    FormerParticipantDataErased,
    ParticipantDataErased,
    ParticipantSubstituted,
    RegistrationBecameBinding,
    RegistrationCancelled,
    RegistrationConfirmed,
    RegistrationPromoted,
    RegistrationRejected,
    RegistrationRequestRefused,
)
from komponent_contracts.examples import buyer
from komponent_registration.entrypoints.http import RegistrationBody
from komponent_registration.service_layer.intake import request_hash
from komponent_runtime.testing import ADMIN_HEADERS, wait_until

pytestmark = pytest.mark.infra


def kinds(events: list[Any]) -> list[tuple[str, Any]]:
    return [(type(e.data).__name__, getattr(e.data, "registration_id", None)) for e in events]


async def test_cancellation_frees_the_seat_for_the_head_of_the_waiting_list(stack: Any) -> None:
    await stack.start()
    course_id = await stack.publish_course(capacity=2)
    regs = [stack.registration(course_id, i) for i in range(4)]
    await stack.produce(regs)
    ids = [r.data.registration_id for r in regs]
    await wait_until(lambda: _count_is(stack, course_id, 4), what="four registrations allocated")

    assert (await stack.status(ids[2]))["waiting_list_position"] == 1
    assert (await stack.status(ids[3]))["waiting_list_position"] == 2
    async with stack.http() as client:
        response = await client.post(f"/registrations/{ids[0]}/cancellation")
    assert response.status_code == 202

    async def promoted() -> bool:
        return (await stack.status(ids[2]))["status"] == "confirmed"

    await wait_until(promoted, what="head of the waiting list promoted")
    assert (await stack.status(ids[3]))["waiting_list_position"] == 1
    assert (await stack.status(ids[0]))["status"] == "cancelled"
    events = [
        e for e in await stack.outcomes(course_id, until=7) if type(e.data).__name__ != "CourseSeatsChanged"
    ]
    assert kinds(events) == [
        ("RegistrationConfirmed", ids[0]),
        ("RegistrationConfirmed", ids[1]),
        ("RegistrationWaitlisted", ids[2]),
        ("RegistrationWaitlisted", ids[3]),
        ("RegistrationCancelled", ids[0]),
        ("RegistrationPromoted", ids[2]),
    ]
    cancelled = events[4].data
    assert (
        isinstance(cancelled, RegistrationCancelled)
        and not cancelled.binding
        and not cancelled.was_waitlisted
    )


async def _count_is(stack: Any, course_id: Any, n: int) -> bool:
    return bool(await stack.count(course_id) == n)


async def test_late_registration_is_binding_at_once_and_the_deadline_makes_seats_binding(stack: Any) -> None:
    await stack.start()
    # The deadline was an hour ago; this registration was received (stamped by intake) before it, so
    # it is not binding until the DeadlinePassed timer (or the first later command) passes the deadline.
    early = await stack.publish_course(capacity=5, deadline_in=timedelta(hours=-1))
    deadline = await stack.pool.fetchval("SELECT deadline FROM course_seats WHERE course_id = $1", early)
    before = stack.registration(early, 1)
    before = CloudEvent(
        before.data.model_copy(update={"received_at": deadline - timedelta(hours=1)}), source="/test/intake"
    )
    await stack.produce([before])
    await wait_until(lambda: _count_is(stack, early, 1), what="registered before the deadline")
    assert (await stack.status(before.data.registration_id))["binding"] is False
    await stack.pass_deadline(early, deadline)

    async def binding() -> bool:
        return bool((await stack.status(before.data.registration_id))["binding"])

    await wait_until(binding, what="binding after DeadlinePassed")
    became = [
        e.data for e in await stack.outcomes(early, until=3) if isinstance(e.data, RegistrationBecameBinding)
    ]
    assert [b.registration_id for b in became] == [before.data.registration_id]

    # A course whose deadline has passed but which has not started: a late registration is binding at once.
    late_course = await stack.publish_course(capacity=5, deadline_in=timedelta(days=-1))
    late = stack.registration(late_course, 2)
    await stack.produce([late])
    await wait_until(lambda: _count_is(stack, late_course, 1), what="late registration allocated")
    status = await stack.status(late.data.registration_id)
    assert status["status"] == "confirmed" and status["binding"] is True
    confirmed = [
        e.data
        for e in await stack.outcomes(late_course, until=2)
        if isinstance(e.data, RegistrationConfirmed)
    ]
    assert len(confirmed) == 1 and confirmed[0].binding is True


async def test_raised_capacity_promotes_in_order_and_lowered_capacity_bumps_nobody(stack: Any) -> None:
    await stack.start()
    course_id = await stack.publish_course(capacity=1)
    regs = [stack.registration(course_id, i) for i in range(4)]
    ids = [r.data.registration_id for r in regs]
    await stack.produce(regs)
    await wait_until(lambda: _count_is(stack, course_id, 4), what="allocated")

    await stack.update_course(course_id, capacity=3)

    async def promoted() -> bool:
        return (await stack.status(ids[2]))["status"] == "confirmed"

    await wait_until(promoted, what="promotions after the capacity was raised")
    assert [(await stack.status(i))["status"] for i in ids] == [
        "confirmed",
        "confirmed",
        "confirmed",
        "waitlisted",
    ]
    events = [e.data for e in await stack.outcomes(course_id, until=8)]
    assert [e.registration_id for e in events if isinstance(e, RegistrationPromoted)] == ids[1:3]

    await stack.update_course(course_id, capacity=1)

    async def lowered() -> bool:
        row = await stack.pool.fetchrow(
            "SELECT capacity, seats_taken FROM course_seats WHERE course_id = $1", course_id
        )
        return bool(row["capacity"] == 1)

    await wait_until(lowered, what="capacity lowered")
    assert [(await stack.status(i))["status"] for i in ids[:3]] == ["confirmed"] * 3  # nobody is bumped
    async with stack.http() as client:
        assert (await client.post(f"/registrations/{ids[0]}/cancellation")).status_code == 202

    async def cancelled() -> bool:
        return (await stack.status(ids[0]))["status"] == "cancelled"

    await wait_until(cancelled, what="cancelled")
    # 2 seats taken of capacity 1: the freed seat is not given to the waiting list.
    assert (await stack.status(ids[3]))["status"] == "waitlisted"


async def test_course_cancellation_cancels_everyone_unbilled_and_refuses_later_registrations(
    stack: Any,
) -> None:
    await stack.start()
    course_id = await stack.publish_course(capacity=1)
    regs = [stack.registration(course_id, i) for i in range(2)]
    await stack.produce(regs)
    await wait_until(lambda: _count_is(stack, course_id, 2), what="allocated")
    await stack.cancel_course(course_id)

    async def all_cancelled() -> bool:
        return all([(await stack.status(r.data.registration_id))["status"] == "cancelled" for r in regs])

    await wait_until(all_cancelled, what="every registration cancelled")
    late = stack.registration(course_id, 9)
    await stack.produce([late])

    async def refused() -> bool:
        status = await stack.status(late.data.registration_id)
        return status is not None and status["status"] == "refused"

    await wait_until(refused, what="registration after cancellation refused")
    assert (await stack.status(late.data.registration_id))["reason"] == "course_cancelled"
    events = [e.data for e in await stack.outcomes(course_id, until=7)]
    cancelled = [e for e in events if isinstance(e, RegistrationCancelled)]
    assert {c.registration_id for c in cancelled} == {r.data.registration_id for r in regs}
    assert all(c.by_course_cancellation and not c.binding for c in cancelled)
    assert [c.was_waitlisted for c in cancelled] == [False, True]
    rejected = [e for e in events if isinstance(e, RegistrationRejected)]
    assert [(r.registration_id, r.reason) for r in rejected] == [
        (late.data.registration_id, "course_cancelled")
    ]
    assert (
        await stack.pool.fetchval("SELECT seats_taken FROM course_seats WHERE course_id = $1", course_id) == 0
    )


async def _binding_registration_handed_to(stack: Any, colleague: dict[str, str]) -> tuple[UUID, Any]:
    """A course past its deadline (a registration is binding at once), one registration on it, and the
    substitution request handing it to `colleague`."""
    course_id = await stack.publish_course(capacity=5, deadline_in=timedelta(days=-1))
    reg = stack.registration(course_id, 1)
    await stack.produce([reg])
    await wait_until(lambda: _count_is(stack, course_id, 1), what="allocated")
    async with stack.http() as client:
        response = await client.post(
            f"/registrations/{reg.data.registration_id}/substitution", json={"new_participant": colleague}
        )
        assert response.status_code == 202
    return course_id, reg


async def test_substitution_of_a_binding_seat_and_refusals(stack: Any) -> None:
    await stack.start()
    colleague = {"name": "Åse Ødegård", "email": "aase@kommune.dk", "job_title": "Chefkonsulent"}
    course_id, reg = await _binding_registration_handed_to(stack, colleague)
    async with stack.http() as client:
        unknown = await client.post(f"/registrations/{reg.data.registration_id}x/substitution", json={})
        assert unknown.status_code == 422

    events = await stack.outcomes(course_id, until=4)
    substituted = [e.data for e in events if isinstance(e.data, ParticipantSubstituted)]
    assert len(substituted) == 1
    assert substituted[0].new_participant.email == "aase@kommune.dk"
    assert substituted[0].previous_participant.email == reg.data.participant.email

    # Before the deadline the seat cannot be handed over (free cancellation is the way): refused.
    open_course = await stack.publish_course(capacity=5)
    early = stack.registration(open_course, 2)
    await stack.produce([early])
    await wait_until(lambda: _count_is(stack, open_course, 1), what="allocated")
    async with stack.http() as client:
        response = await client.post(
            f"/registrations/{early.data.registration_id}/substitution", json={"new_participant": colleague}
        )
        assert response.status_code == 202
    events = await stack.outcomes(open_course, until=3)
    refused = [e.data for e in events if isinstance(e.data, RegistrationRequestRefused)]
    assert [(r.request, r.reason) for r in refused] == [("substitution", "not_binding")]
    # The admin view shows the participant of the substituted registration.
    async with stack.http() as client:
        listing = (await client.get(f"/courses/{course_id}/registrations", headers=ADMIN_HEADERS)).json()
    assert listing["registrations"][0]["participant"]["email"] == "aase@kommune.dk"
    assert listing["registrations"][0]["terms_version"] == "2026-01"  # only participant and buyer replaced


async def test_erasure_of_a_participant_who_handed_their_seat_over(stack: Any) -> None:
    """The registration names the colleague now and stays theirs; the erasure finds it by the record of
    who left it, names the substitution in FormerParticipantDataErased and forgets the record."""
    await stack.start()
    colleague = {"name": "Åse Ødegård", "email": "aase.erasure@kommune.dk", "job_title": "Chefkonsulent"}
    course_id, reg = await _binding_registration_handed_to(stack, colleague)
    events = await stack.outcomes(course_id, until=3)
    substitution = next(e for e in events if isinstance(e.data, ParticipantSubstituted))
    left = str(reg.data.participant.email)
    assert await stack.pool.fetchval(
        "SELECT count(*) FROM former_participants WHERE participant_email = $1", left.lower()
    )

    async with stack.http() as client:

        async def erased() -> bool:
            answer = await client.post("/admin/erasures", json={"email": left}, headers=ADMIN_HEADERS)
            assert answer.status_code in (202, 409), answer.text
            if answer.status_code == 409:  # the substitution's events are still being published
                return False
            assert answer.json()["registrations"] == []
            assert answer.json()["handed_over"] == [
                {"course_id": str(course_id), "registration_id": str(reg.data.registration_id)}
            ]
            return True

        await wait_until(erased, what="the erasure accepted")
        again = await client.post("/admin/erasures", json={"email": left}, headers=ADMIN_HEADERS)
        assert (again.json()["registrations"], again.json()["handed_over"]) == ([], [])
        listing = (await client.get(f"/courses/{course_id}/registrations", headers=ADMIN_HEADERS)).json()
    # The colleague keeps the seat and their data.
    assert listing["registrations"][0]["participant"]["email"] == colleague["email"]
    assert not await stack.pool.fetchval("SELECT count(*) FROM former_participants")

    events = await stack.outcomes(course_id, until=4)
    erasures = [e.data for e in events if isinstance(e.data, FormerParticipantDataErased)]
    assert [(h.registration_id, h.substitution_event_id) for e in erasures for h in e.handed_over] == [
        (reg.data.registration_id, substitution.id)
    ]
    assert not [e for e in events if isinstance(e.data, ParticipantDataErased)]


async def test_duplicate_participant_and_unknown_course_get_an_answer(stack: Any) -> None:
    await stack.start()
    course_id = await stack.publish_course(capacity=5)
    first = stack.registration(course_id, 1)
    again = stack.registration(course_id, 1)  # same participant, new registration id
    await stack.produce([first, again])

    async def answered() -> bool:
        return await stack.status(again.data.registration_id) is not None

    await wait_until(answered, what="duplicate answered")
    status = await stack.status(again.data.registration_id)
    assert status["status"] == "refused" and status["reason"] == "already_registered"
    assert status["existing_registration_id"] == str(first.data.registration_id)
    refused = [
        e.data
        for e in await stack.outcomes(course_id, until=3)
        if isinstance(e.data, RegistrationRequestRefused)
    ]
    assert [(r.request, r.reason, r.existing_registration_id) for r in refused] == [
        ("registration", "already_registered", first.data.registration_id)
    ]

    nowhere = stack.registration(uuid4(), 3)
    await stack.produce([nowhere])

    async def rejected() -> bool:
        return await stack.status(nowhere.data.registration_id) is not None

    await wait_until(rejected, what="unknown course answered")
    assert (await stack.status(nowhere.data.registration_id))["reason"] == "unknown_course"


async def open_for_http(stack: Any, name: str, email: str) -> tuple[str, dict[str, Any]]:
    """A started stack with an open course: its registrations URL and a request body for `name`."""
    await stack.start()
    course_id = await stack.publish_course(capacity=5)
    body = {
        "participant": {"name": name, "email": email, "job_title": "Konsulent"},
        "buyer": buyer().model_dump(mode="json"),
        "terms_version": "2026-01",
    }
    return f"/courses/{course_id}/registrations", body


async def test_http_intake_idempotency_key_semantics(stack: Any) -> None:
    url, body = await open_for_http(stack, "Anna Sørensen", "anna@randers.dk")
    course_id = UUID(url.split("/")[2])
    async with stack.http() as client:
        first = await client.post(url, json=body, headers={"Idempotency-Key": "k-1"})
        assert first.status_code == 202
        registration_id = first.json()["registration_id"]
        assert first.json()["status_url"] == f"/registrations/{registration_id}"
        replay = await client.post(url, json=body, headers={"Idempotency-Key": "k-1"})
        assert replay.status_code == 202 and replay.json() == first.json()
        other = await client.post(
            url, json={**body, "terms_version": "2026-02"}, headers={"Idempotency-Key": "k-1"}
        )
        assert other.status_code == 422
        assert other.json()["errors"][0]["rule"] == "idempotency_key_reused"

        # A request with this key still in progress (its row committed, its answer not yet stored).
        in_flight = RegistrationBody.model_validate({**body, "terms_version": "2026-03"})
        fingerprint = request_hash("POST", url, in_flight.model_dump(mode="json"))
        await stack.pool.execute(
            "INSERT INTO idempotency_keys (scope, key, request_hash, status) VALUES ('public', 'k-2', $1, 'in_progress')",
            fingerprint,
        )
        busy = await client.post(
            url, json={**body, "terms_version": "2026-03"}, headers={"Idempotency-Key": "k-2"}
        )
        assert busy.status_code == 409 and busy.headers["Retry-After"] == "1"

        # A key left in progress longer than STALE_AFTER by a process that died is taken over by the same
        # request (and only by it: a different request still gets 422).
        stale = RegistrationBody.model_validate({**body, "terms_version": "2026-04"})
        await stack.pool.execute(
            "INSERT INTO idempotency_keys (scope, key, request_hash, status, created_at)"
            " VALUES ('public', 'k-3', $1, 'in_progress', now() - interval '31 seconds')",
            request_hash("POST", url, stale.model_dump(mode="json")),
        )
        taken_over = await client.post(
            url, json={**body, "terms_version": "2026-04"}, headers={"Idempotency-Key": "k-3"}
        )
        assert taken_over.status_code == 202
        replayed = await client.post(
            url, json={**body, "terms_version": "2026-04"}, headers={"Idempotency-Key": "k-3"}
        )
        assert replayed.json() == taken_over.json() and replayed.headers["Idempotent-Replayed"] == "true"

        invalid = await client.post(url, json={**body, "buyer": {**body["buyer"], "ean": "5798000012340"}})
        assert invalid.status_code == 422
        assert [(e["field"], e["rule"]) for e in invalid.json()["errors"]] == [("buyer.ean", "value_error")]

    # One intake record for the two accepted calls with key k-1 (and one for k-3), each allocated once.
    async def allocated() -> bool:
        return (await stack.status(UUID(registration_id))) is not None

    await wait_until(allocated, what="allocated")
    intake = await stack.outcomes(course_id, until=2, topic=topics.REGISTRATION_INTAKE)
    assert len({e.id for e in intake}) == 2
    assert (await stack.status(UUID(registration_id)))["status"] == "confirmed"


async def test_concurrent_first_calls_with_one_key_register_once(stack: Any) -> None:
    """A registration's first call stores key, answer and intake event in one statement: the same request
    sent eight times at once is registered once, and every caller gets that one answer."""
    url, body = await open_for_http(stack, "Bo Holm", "bo@randers.dk")
    course_id = UUID(url.split("/")[2])
    async with stack.http() as client:
        answers = await asyncio.gather(
            *(client.post(url, json=body, headers={"Idempotency-Key": "same"}) for _ in range(8))
        )
    assert [a.status_code for a in answers] == [202] * 8
    assert len({a.json()["registration_id"] for a in answers}) == 1
    assert sum(a.headers.get("Idempotent-Replayed") == "true" for a in answers) == 7
    key = await stack.pool.fetchrow(
        "SELECT status, response_status FROM idempotency_keys WHERE scope = 'public' AND key = 'same'"
    )
    assert (key["status"], key["response_status"]) == ("done", 202)
    intake = await stack.outcomes(course_id, until=1, topic=topics.REGISTRATION_INTAKE)
    assert len({e.id for e in intake}) == 1


async def test_status_is_public_but_private_and_the_course_list_needs_the_admin_scope(stack: Any) -> None:
    await stack.start()
    course_id = await stack.publish_course(capacity=5)
    reg = stack.registration(course_id, 1)
    await stack.produce([reg])
    await wait_until(lambda: _count_is(stack, course_id, 1), what="allocated")
    status = await stack.status(reg.data.registration_id)
    assert set(status) == {
        "registration_id",
        "course_id",
        "status",
        "binding",
        "binding_since",
        "waiting_list_position",
    }
    async with stack.http() as client:
        assert (await client.get(f"/courses/{course_id}/registrations")).status_code == 401
        bad = await client.get(
            f"/courses/{course_id}/registrations", headers={"Authorization": "Bearer nope"}
        )
        assert bad.status_code == 401
        listing = await client.get(f"/courses/{course_id}/registrations", headers=ADMIN_HEADERS)
        assert listing.status_code == 200 and len(listing.json()["registrations"]) == 1
        assert (await client.get(f"/registrations/{uuid4()}")).status_code == 404
