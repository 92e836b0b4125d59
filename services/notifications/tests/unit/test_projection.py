"""The in-memory registration projection a batch advances event by event."""

from __future__ import annotations

import uuid
from typing import TypeVar

from komponent_contracts import events as ev
from komponent_contracts.examples import NOW, buyer, participant
from komponent_notifications.domain.policy import NotificationPolicy
from komponent_notifications.service_layer.planning import RegistrationView, plan_registration_outcome
from komponent_notifications.service_layer.projection import (
    ProjectedRegistration,
    RegistrationProjection,
    needs_stored_rows,
)

COURSE = uuid.uuid4()


Admitted = TypeVar("Admitted", ev.RegistrationConfirmed, ev.RegistrationPromoted)


def admitted(kind: type[Admitted], registration_id: uuid.UUID, *, binding: bool = False) -> Admitted:
    return kind(
        registration_id=registration_id,
        course_id=COURSE,
        occurred_at=NOW,
        participant=participant(),
        buyer=buyer(),
        binding=binding,
    )


def confirmed(registration_id: uuid.UUID, *, binding: bool = False) -> ev.RegistrationConfirmed:
    return admitted(ev.RegistrationConfirmed, registration_id, binding=binding)


def test_each_event_sees_the_state_its_predecessors_left() -> None:
    rid = uuid.uuid4()
    projection = RegistrationProjection({})
    assert projection.view(rid) is None
    projection.apply(confirmed(rid))
    view = projection.view(rid)
    assert view is not None and view.buyer == buyer() and view.binding is False
    projection.apply(ev.RegistrationBecameBinding(registration_id=rid, course_id=COURSE, occurred_at=NOW))
    view = projection.view(rid)
    assert view is not None and view.binding is True
    # A cancellation names neither buyer nor binding flag: both are kept.
    projection.apply(
        ev.RegistrationCancelled(
            registration_id=rid, course_id=COURSE, occurred_at=NOW, participant=participant(), binding=True
        )
    )
    [row] = projection.changed()
    assert row.status == "cancelled" and row.view.buyer == buyer() and row.view.binding is True


def test_waitlisted_registration_has_no_buyer_until_promoted() -> None:
    rid = uuid.uuid4()
    projection = RegistrationProjection({})
    projection.apply(
        ev.RegistrationWaitlisted(
            registration_id=rid, course_id=COURSE, occurred_at=NOW, participant=participant(), position=1
        )
    )
    [row] = projection.changed()
    assert row.status == "waitlisted" and row.view.buyer is None and row.view.binding is False
    projection.apply(
        ev.RegistrationPromoted(
            registration_id=rid,
            course_id=COURSE,
            occurred_at=NOW,
            participant=participant(),
            buyer=buyer(),
            binding=True,
        )
    )
    [row] = projection.changed()
    assert row.status == "confirmed" and row.view.buyer == buyer() and row.view.binding is True


def test_binding_for_an_unknown_registration_changes_nothing() -> None:
    projection = RegistrationProjection({})
    projection.apply(
        ev.RegistrationBecameBinding(registration_id=uuid.uuid4(), course_id=COURSE, occurred_at=NOW)
    )
    assert projection.changed() == []


def test_a_run_of_confirmations_projects_and_plans_the_same_without_the_stored_rows() -> None:
    """Why the consumer skips reading stored rows for such a run: nothing stored changes the outcome."""
    rid, other = uuid.uuid4(), uuid.uuid4()
    promoted = admitted(ev.RegistrationPromoted, other, binding=True)
    events: list[ev.Event] = [confirmed(rid), promoted]
    assert not needs_stored_rows(events)
    stale = RegistrationView(other, COURSE, participant(), None, False)
    outcomes = []
    for stored in ({}, {other: ProjectedRegistration("waitlisted", stale)}):
        projection = RegistrationProjection(stored)
        planned = []
        for event in events:
            known = projection.view(event.registration_id)  # type: ignore[attr-defined]
            planned += plan_registration_outcome(uuid.uuid4(), event, known, NotificationPolicy())
            projection.apply(event)
        outcomes.append((projection.changed(), [(p.kind, p.recipient, p.render_data) for p in planned]))
    assert outcomes[0] == outcomes[1]


def test_any_other_event_in_the_run_needs_the_stored_rows() -> None:
    rid = uuid.uuid4()
    binding = ev.RegistrationBecameBinding(registration_id=rid, course_id=COURSE, occurred_at=NOW)
    waitlisted = ev.RegistrationWaitlisted(
        registration_id=rid, course_id=COURSE, occurred_at=NOW, participant=participant(), position=1
    )
    for event in (binding, waitlisted):
        assert needs_stored_rows([confirmed(uuid.uuid4()), event])
