"""Domain course -> the contract's CourseSnapshot, and which events a change publishes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, time
from typing import Any

import pytest
from komponent_catalogue.adapters.snapshot import course_snapshot
from komponent_catalogue.domain.course import (
    ContactPerson,
    Course,
    CourseStatus,
    Price,
    ProgrammeDay,
    ProgrammeItem,
)
from komponent_catalogue.domain.validation import CourseInvalid
from komponent_catalogue.service_layer.events import course_events
from komponent_contracts.events import CourseCancelled, CoursePublished, CourseUpdated

MakeCourse = Callable[..., Course]
NOW = datetime(2026, 3, 1, tzinfo=UTC)


def test_snapshot_uses_the_wire_formats(make_course: MakeCourse) -> None:
    programme = (
        ProgrammeDay(1, (ProgrammeItem("Velkomst", ("Linje 1", "- punkt"), time(9), time(10)),)),
        ProgrammeDay(2, (ProgrammeItem("Opsamling"),)),
    )
    course = make_course(
        programme=programme,
        contacts=(ContactPerson("Aida", "Koordinator"),),
        price=Price(550_000, 2500, ("undervisning", "forplejning")),
    )
    snapshot = course_snapshot(course)
    assert snapshot.vat_rate_percent == 25
    assert snapshot.price_includes == ("undervisning", "forplejning")
    item = snapshot.programme[0].items[0]
    assert item.description == "Linje 1\n- punkt"
    assert (item.starts_at, item.ends_at) == (
        datetime(2026, 5, 6, 7, tzinfo=UTC),
        datetime(2026, 5, 6, 8, tzinfo=UTC),
    )
    assert snapshot.programme[1].items[0].starts_at is None
    assert (snapshot.contacts[0].email, snapshot.contacts[0].phone) == (None, "")
    assert snapshot.venue.city == "Roskilde" and snapshot.status == "published"


def test_a_course_the_contract_cannot_carry_is_refused_with_field_errors(make_course: MakeCourse) -> None:
    with pytest.raises(CourseInvalid) as caught:
        course_snapshot(make_course(title="x" * 501))
    assert [(e.field, e.rule) for e in caught.value.errors] == [("snapshot.title", "contract_too_long")]


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        ({"status": CourseStatus.DRAFT}, {"status": CourseStatus.PUBLISHED}, [CoursePublished]),
        ({}, {"capacity": 40}, [CourseUpdated]),
        ({}, {"introduction": ("Ny tekst",)}, []),  # not in the snapshot: nobody downstream cares
        ({}, {"status": CourseStatus.CANCELLED}, [CourseCancelled]),
        ({"status": CourseStatus.DRAFT}, {"status": CourseStatus.CANCELLED}, []),  # never seen
        ({"status": CourseStatus.DRAFT}, {"status": CourseStatus.DRAFT, "capacity": 40}, []),
    ],
)
def test_which_change_publishes_which_event(
    make_course: MakeCourse, before: dict[str, Any], after: dict[str, Any], expected: list[type]
) -> None:
    old = make_course(**before)
    new = make_course(**{**before, **after})
    assert [type(e) for e in course_events(old, new, NOW)] == expected


def test_updated_names_the_changed_snapshot_fields(make_course: MakeCourse) -> None:
    old = make_course()
    new = replace(make_course(capacity=40), details=replace(old.details, price=Price(600_000)))
    [event] = course_events(old, new, NOW)
    assert isinstance(event, CourseUpdated)
    assert set(event.changed) == {"capacity", "price_excl_vat_ore", "price_includes"}
