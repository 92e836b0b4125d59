"""The HTTP API on a real PostgreSQL: validation, auth, lifecycle, events, public list and detail."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from komponent_contracts.events import CourseCancelled, CoursePublished, CourseUpdated
from komponent_runtime.testing import ADMIN_HEADERS

pytestmark = pytest.mark.infra
CPH = ZoneInfo("Europe/Copenhagen")
START = datetime(2026, 5, 6, 9, tzinfo=CPH)


def errors(response: Any) -> set[tuple[str, str]]:
    assert response.status_code == 422, response.text
    return {(e["field"], e["rule"]) for e in response.json()["errors"]}


async def test_admin_endpoints_need_a_key_with_the_admin_scope(catalogue: Any) -> None:
    body = catalogue.body(START)
    assert (await catalogue.client.post("/admin/courses", json=body)).status_code == 401
    wrong = {"Authorization": "Bearer not-a-key"}
    assert (await catalogue.client.post("/admin/courses", json=body, headers=wrong)).status_code == 401
    assert (await catalogue.client.get("/courses")).status_code == 200  # public needs none


async def test_deadline_after_start_names_field_and_rule(catalogue: Any) -> None:
    body = catalogue.body(START, deadline=START + timedelta(hours=1))
    response = await catalogue.client.post("/admin/courses", json=body, headers=ADMIN_HEADERS)
    assert errors(response) == {("schedule.registration_deadline", "deadline_after_start")}


async def test_overlapping_sessions_and_a_session_ending_before_it_starts(catalogue: Any) -> None:
    body = catalogue.body(START, days=2)
    sessions = body["schedule"]["sessions"]
    sessions[1]["starts_at"] = (START + timedelta(hours=3)).isoformat()  # inside the first session
    sessions[1]["ends_at"] = (START + timedelta(hours=8)).isoformat()
    response = await catalogue.client.post("/admin/courses", json=body, headers=ADMIN_HEADERS)
    assert ("schedule.sessions.1.starts_at", "sessions_overlap") in errors(response)

    body = catalogue.body(START)
    body["schedule"]["sessions"][0]["ends_at"] = (START - timedelta(hours=1)).isoformat()
    response = await catalogue.client.post("/admin/courses", json=body, headers=ADMIN_HEADERS)
    assert errors(response) == {("schedule.sessions.0.ends_at", "session_ends_before_start")}


async def test_negative_price_and_invoice_lead_outside_21_to_28_days(catalogue: Any) -> None:
    body = catalogue.body(START, invoice_lead_days=20)
    body["details"]["price"]["excl_vat_ore"] = -1
    response = await catalogue.client.post("/admin/courses", json=body, headers=ADMIN_HEADERS)
    assert errors(response) == {
        ("details.price.excl_vat_ore", "greater_than_equal"),
        ("invoice_lead_days", "greater_than_equal"),
    }
    course_id = await catalogue.create(catalogue.body(START))
    patch = await catalogue.client.patch(
        f"/admin/courses/{course_id}", json={"invoice_lead_days": 29}, headers=ADMIN_HEADERS
    )
    assert errors(patch) == {("invoice_lead_days", "less_than_equal")}
    for lead in (21, 28):
        ok = await catalogue.client.patch(
            f"/admin/courses/{course_id}", json={"invoice_lead_days": lead}, headers=ADMIN_HEADERS
        )
        assert ok.status_code == 200 and ok.json()["invoice_lead_days"] == lead


async def test_capacity_below_seats_already_taken_is_refused(catalogue: Any) -> None:
    course_id = await catalogue.create(catalogue.body(START))
    await catalogue.seats_taken(course_id, 12)
    url = f"/admin/courses/{course_id}/capacity"
    response = await catalogue.client.post(url, json={"capacity": 11}, headers=ADMIN_HEADERS)
    assert errors(response) == {("capacity", "capacity_below_seats_taken")}
    response = await catalogue.client.post(url, json={"capacity": 12}, headers=ADMIN_HEADERS)
    assert response.status_code == 200 and response.json()["seats_left"] == 0


async def test_publishing_without_a_venue_is_refused(catalogue: Any) -> None:
    body = catalogue.body(START)
    body["details"]["venue"] = None
    course_id = await catalogue.create(body, publish=False)
    response = await catalogue.client.post(f"/admin/courses/{course_id}/publish", headers=ADMIN_HEADERS)
    assert errors(response) == {("details.venue", "required")}
    assert await catalogue.events() == []


async def test_a_cancelled_course_cannot_be_rescheduled_or_published_again(catalogue: Any) -> None:
    course_id = await catalogue.create(catalogue.body(START))
    cancel = await catalogue.client.post(
        f"/admin/courses/{course_id}/cancel", json={"reason": "For få tilmeldte"}, headers=ADMIN_HEADERS
    )
    assert cancel.status_code == 200 and cancel.json()["status"] == "cancelled"
    again = await catalogue.client.post(f"/admin/courses/{course_id}/publish", headers=ADMIN_HEADERS)
    assert again.status_code == 409
    assert again.json()["errors"][0] | {"message": ""} == {
        "field": "status",
        "rule": "transition_not_allowed",
        "message": "",
    }
    moved = await catalogue.client.post(
        f"/admin/courses/{course_id}/reschedule",
        json={"schedule": catalogue.body(START + timedelta(days=7))["schedule"]},
        headers=ADMIN_HEADERS,
    )
    assert moved.status_code == 409
    unknown = await catalogue.client.post(
        f"/admin/courses/{'0' * 8}-0000-0000-0000-{'0' * 12}/publish", headers=ADMIN_HEADERS
    )
    assert unknown.status_code == 404


async def test_events_carry_the_state_other_services_need(catalogue: Any) -> None:
    course_id = await catalogue.create(catalogue.body(START), publish=False)
    assert await catalogue.events() == [], "a draft is nobody's business"
    await catalogue.client.post(f"/admin/courses/{course_id}/publish", headers=ADMIN_HEADERS)
    url = f"/admin/courses/{course_id}"
    await catalogue.client.post(f"{url}/capacity", json={"capacity": 40}, headers=ADMIN_HEADERS)
    details = catalogue.body(START)["details"]
    details["price"]["excl_vat_ore"] = 600_000
    await catalogue.client.patch(url, json={"details": details}, headers=ADMIN_HEADERS)
    details["introduction"] = ["Ny tekst, som ingen anden tjeneste bruger."]
    await catalogue.client.patch(url, json={"details": details}, headers=ADMIN_HEADERS)
    moved = catalogue.body(START + timedelta(days=7))["schedule"]
    await catalogue.client.post(f"{url}/reschedule", json={"schedule": moved}, headers=ADMIN_HEADERS)
    await catalogue.client.post(f"{url}/cancel", json={"reason": "Underviser syg"}, headers=ADMIN_HEADERS)

    events = await catalogue.events()
    kinds = [type(e.data).__name__ for e in events if e.topic == "komponent.course.v1"]
    assert kinds == ["CoursePublished", "CourseUpdated", "CourseUpdated", "CourseUpdated", "CourseCancelled"]
    course_events = [e for e in events if e.topic == "komponent.course.v1"]
    assert all(e.subject == str(course_id) and e.key == str(course_id).encode() for e in course_events)
    published, capacity, price, rescheduled, cancelled = (e.data for e in course_events)
    assert isinstance(published, CoursePublished) and published.course.capacity == 30
    assert isinstance(capacity, CourseUpdated) and capacity.changed == ("capacity",)
    assert capacity.course.capacity == 40
    assert isinstance(price, CourseUpdated) and price.changed == ("price_excl_vat_ore",)
    assert isinstance(rescheduled, CourseUpdated)
    assert set(rescheduled.changed) == {"sessions", "registration_deadline"}
    assert rescheduled.course.starts_at == START + timedelta(days=7)
    assert isinstance(cancelled, CourseCancelled) and cancelled.reason == "Underviser syg"


async def test_public_list_shows_upcoming_published_courses_and_searches(catalogue: Any) -> None:
    catalogue.clock.set(datetime(2026, 3, 1, tzinfo=UTC))
    soon = await catalogue.create(catalogue.body(START))
    later_body = catalogue.body(START + timedelta(days=30))
    later_body["details"]["title"] = "Ledelse af frivillige"
    later_body["details"]["venue"]["address"] = {
        "street": "Banegårdspladsen 1",
        "postcode": "8000",
        "city": "Aarhus",
    }
    later = await catalogue.create(later_body)
    await catalogue.create(catalogue.body(START), publish=False)  # draft: not listed
    await catalogue.create(catalogue.body(datetime(2026, 2, 2, 9, tzinfo=CPH)))  # already started: not listed

    listed = (await catalogue.client.get("/courses")).json()
    assert [c["course_id"] for c in listed] == [str(soon), str(later)]
    assert listed[0]["seats_available"] == 30 and listed[0]["registration_deadline_passed"] is False
    found = (await catalogue.client.get("/courses", params={"q": "frivillige"})).json()
    assert [c["course_id"] for c in found] == [str(later)]
    found = (await catalogue.client.get("/courses", params={"q": "vildskab", "city": "roskilde"})).json()
    assert [c["course_id"] for c in found] == [str(soon)]
    assert (await catalogue.client.get("/courses", params={"q": "100%_"})).json() == []


async def test_public_detail_has_seats_left_and_whether_the_deadline_passed(catalogue: Any) -> None:
    course_id = await catalogue.create(catalogue.body(START))
    draft = await catalogue.create(catalogue.body(START), publish=False)
    assert (await catalogue.client.get(f"/courses/{draft}")).status_code == 404
    await catalogue.seats_taken(course_id, 7)
    catalogue.clock.set(datetime(2026, 4, 8, 21, 58, 59, tzinfo=UTC))  # 23:58:59 CEST, deadline day
    shown = (await catalogue.client.get(f"/courses/{course_id}")).json()
    assert (shown["seats_taken"], shown["seats_left"], shown["registration_deadline_passed"]) == (
        7,
        23,
        False,
    )
    catalogue.clock.set(datetime(2026, 4, 8, 21, 59, tzinfo=UTC))
    shown = (await catalogue.client.get(f"/courses/{course_id}")).json()
    assert shown["registration_deadline_passed"] is True


async def test_creating_under_a_chosen_id_twice_is_a_conflict(catalogue: Any) -> None:
    url = "/admin/courses/3f1c1f0e-8d8c-4a53-9d0e-6d3f9a3c0b11"
    first = await catalogue.client.put(url, json=catalogue.body(START), headers=ADMIN_HEADERS)
    assert first.status_code == 201
    second = await catalogue.client.put(url, json=catalogue.body(START), headers=ADMIN_HEADERS)
    assert second.status_code == 409 and second.json()["errors"][0]["rule"] == "course_exists"


async def test_openapi_documents_every_endpoint(catalogue: Any) -> None:
    paths = (await catalogue.client.get("/openapi.json")).json()["paths"]
    assert {
        "/admin/courses",
        "/admin/courses/{course_id}",
        "/admin/courses/{course_id}/publish",
        "/admin/courses/{course_id}/reschedule",
        "/admin/courses/{course_id}/capacity",
        "/admin/courses/{course_id}/cancel",
        "/courses",
        "/courses/{course_id}",
    } <= set(paths)
