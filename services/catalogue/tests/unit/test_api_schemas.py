"""API models: field-level errors with dotted paths, and lossless conversion to and from the domain."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from komponent_catalogue.adapters.seed_page import load_course_page
from komponent_catalogue.domain.course import Course
from komponent_catalogue.domain.validation import CourseInvalid
from komponent_catalogue.entrypoints.schemas import (
    CourseCreateRequest,
    CourseDetailResponse,
    CoursePublicListItem,
    CourseUpdateRequest,
    field_errors_from_domain,
    field_errors_from_validation,
)
from pydantic import ValidationError

SEED_PAGE = Path("/work/shared/seed/course-page.da.txt")


@pytest.fixture(scope="module")
def seed() -> Course:
    return load_course_page(SEED_PAGE)


def create_payload(**overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "details": {
            "title": "Politikudvikling",
            "price": {"excl_vat_ore": 550_000},
            "duration_days": 1,
            "venue": {
                "name": "Comwell Roskilde",
                "address": {"street": "Vestre Kirkevej 12", "postcode": "4000", "city": "Roskilde"},
            },
        },
        "schedule": {
            "sessions": [{"starts_at": "2026-05-06T09:00:00+02:00", "ends_at": "2026-05-06T16:00:00+02:00"}],
            "registration_deadline": "2026-04-07T23:59:00+02:00",
        },
        "capacity": 30,
    }
    payload.update(overrides)
    return payload


def errors_of(payload: dict[str, Any]) -> set[tuple[str, str]]:
    with pytest.raises(ValidationError) as raised:
        CourseCreateRequest.model_validate(payload)
    return {(e.field, e.rule) for e in field_errors_from_validation(raised.value)}


def test_a_valid_request_creates_a_draft_course_with_defaults() -> None:
    course = CourseCreateRequest.model_validate(create_payload()).create(uuid4())
    assert (course.status, course.invoice_lead_days, course.reminder_lead_days) == ("draft", 28, 7)


def test_single_field_errors_come_with_dotted_paths() -> None:
    payload = create_payload(capacity=0, invoice_lead_days=29)
    payload["details"] = {**payload["details"], "title": "", "price": {"excl_vat_ore": -1}}
    payload["details"]["venue"]["address"]["postcode"] = "40000"
    assert errors_of(payload) == {
        ("details.title", "string_too_short"),
        ("details.price.excl_vat_ore", "greater_than_equal"),
        ("details.venue.address.postcode", "string_pattern_mismatch"),
        ("capacity", "greater_than_equal"),
        ("invoice_lead_days", "less_than_equal"),
    }


def test_session_ending_before_start_uses_the_domain_rule_code() -> None:
    payload = create_payload()
    payload["schedule"]["sessions"][0]["ends_at"] = "2026-05-06T08:00:00+02:00"
    assert errors_of(payload) == {("schedule.sessions.0.ends_at", "session_ends_before_start")}


def test_times_without_zone_are_refused() -> None:
    payload = create_payload()
    payload["schedule"]["registration_deadline"] = "2026-04-07T23:59:00"
    assert errors_of(payload) == {("schedule.registration_deadline", "timezone_aware")}


def test_unknown_fields_are_refused() -> None:
    assert errors_of(create_payload(seats=3)) == {("seats", "extra_forbidden")}


def test_cross_field_rules_come_from_the_domain_in_the_same_shape() -> None:
    payload = create_payload()
    payload["schedule"]["registration_deadline"] = "2026-05-07T00:00:00+02:00"
    request = CourseCreateRequest.model_validate(payload)
    with pytest.raises(CourseInvalid) as raised:
        request.create(uuid4())
    assert ("schedule.registration_deadline", "deadline_after_start") in {
        (e.field, e.rule) for e in field_errors_from_domain(raised.value)
    }


def test_detail_response_round_trips_the_seed_course(seed: Course) -> None:
    response = CourseDetailResponse.from_domain(seed, seats_taken=12)
    assert (response.seats_taken, response.seats_available) == (12, 18)
    again = CourseDetailResponse.model_validate_json(response.model_dump_json())
    request = CourseCreateRequest(details=again.details, schedule=again.schedule, capacity=again.capacity)
    assert request.create(seed.course_id) == seed


def test_public_list_item(seed: Course) -> None:
    item = CoursePublicListItem.from_domain(seed, seats_taken=31)
    assert (item.title, item.venue_name, item.city) == (seed.details.title, "Comwell Roskilde", "Roskilde")
    assert (item.price_excl_vat_ore, item.duration_days, item.seats_available) == (550_000, 2, 0)


def test_update_request_is_partial_and_range_checked() -> None:
    assert CourseUpdateRequest.model_validate({"reminder_lead_days": 3}).details is None
    with pytest.raises(ValidationError):
        CourseUpdateRequest.model_validate({"invoice_lead_days": 20})
