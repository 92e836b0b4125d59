"""The in-memory registration projection a batch advances event by event."""

from __future__ import annotations

import uuid

from komponent_contracts import events as ev
from komponent_contracts.examples import NOW, buyer, participant
from komponent_notifications.service_layer.projection import RegistrationProjection

COURSE = uuid.uuid4()


def confirmed(registration_id: uuid.UUID, *, binding: bool = False) -> ev.RegistrationConfirmed:
    return ev.RegistrationConfirmed(
        registration_id=registration_id,
        course_id=COURSE,
        occurred_at=NOW,
        participant=participant(),
        buyer=buyer(),
        binding=binding,
    )


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
