"""Status transitions: draft -> published -> completed, cancel from draft or published, nothing else."""

from __future__ import annotations

from collections.abc import Callable
from itertools import product

import pytest
from komponent_catalogue.domain.course import ALLOWED_TRANSITIONS, Course, CourseStatus, can_transition
from komponent_catalogue.domain.operations import (
    TransitionNotAllowed,
    cancel,
    change_capacity,
    complete,
    publish,
    reschedule,
    update_course,
)
from komponent_catalogue.domain.validation import CourseInvalid

MakeCourse = Callable[..., Course]
S = CourseStatus
EXPECTED = {
    (S.DRAFT, S.PUBLISHED),
    (S.DRAFT, S.CANCELLED),
    (S.PUBLISHED, S.CANCELLED),
    (S.PUBLISHED, S.COMPLETED),
}


@pytest.mark.parametrize(("current", "target"), list(product(S, S)))
def test_only_the_documented_transitions_are_allowed(current: S, target: S) -> None:
    assert can_transition(current, target) == ((current, target) in EXPECTED)


def test_terminal_states_have_no_way_out() -> None:
    assert ALLOWED_TRANSITIONS[S.CANCELLED] == ALLOWED_TRANSITIONS[S.COMPLETED] == frozenset()


def test_publish_a_draft(make_course: MakeCourse) -> None:
    assert publish(make_course(status=S.DRAFT)).status == S.PUBLISHED


def test_publish_twice_is_refused_as_a_status_field_error(make_course: MakeCourse) -> None:
    with pytest.raises(TransitionNotAllowed) as raised:
        publish(make_course(status=S.PUBLISHED))
    assert [(e.field, e.rule) for e in raised.value.errors] == [("status", "transition_not_allowed")]
    assert isinstance(raised.value, CourseInvalid)  # one error shape for the HTTP layer


def test_publish_refuses_an_invalid_draft(make_course: MakeCourse) -> None:
    with pytest.raises(CourseInvalid):
        publish(make_course(status=S.DRAFT, capacity=0))


@pytest.mark.parametrize("status", [S.DRAFT, S.PUBLISHED])
def test_cancel_from_draft_or_published(make_course: MakeCourse, status: S) -> None:
    assert cancel(make_course(status=status)).status == S.CANCELLED


def test_cancel_twice_is_refused(make_course: MakeCourse) -> None:
    with pytest.raises(TransitionNotAllowed):
        cancel(make_course(status=S.CANCELLED))


def test_complete_only_a_published_course(make_course: MakeCourse) -> None:
    assert complete(make_course(status=S.PUBLISHED)).status == S.COMPLETED
    with pytest.raises(TransitionNotAllowed):
        complete(make_course(status=S.DRAFT))


@pytest.mark.parametrize("status", [S.CANCELLED, S.COMPLETED])
def test_terminal_courses_cannot_be_edited(make_course: MakeCourse, status: S) -> None:
    course = make_course(status=status)
    with pytest.raises(TransitionNotAllowed):
        update_course(course, reminder_lead_days=3)
    with pytest.raises(TransitionNotAllowed):
        reschedule(course, course.schedule)
    with pytest.raises(TransitionNotAllowed):
        change_capacity(course, 40, seats_taken=0)
