"""What notifications knows about each registration, advanced event by event in memory for one batch.

The consumer reads the rows a batch touches once, lets planning see the state just before every event,
and writes back only the rows that changed. The rules mirror what each event says about a registration;
an event that names no buyer or binding keeps what was known (a waitlisted registration has no buyer in
its event, a cancellation keeps the binding flag it had).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from uuid import UUID

from komponent_contracts import events as ev

from .planning import RegistrationView

# Events that carry everything notifications keeps about their registration (participant, buyer, binding)
# and whose emails need nothing else from it: neither planning nor `apply` reads the row before them.
_SELF_CONTAINED = (ev.RegistrationConfirmed, ev.RegistrationPromoted)


def needs_stored_rows(events: Iterable[ev.Event]) -> bool:
    """Whether planning and projecting these events needs the stored rows of their registrations."""
    return not all(isinstance(event, _SELF_CONTAINED) for event in events)


@dataclass(frozen=True)
class ProjectedRegistration:
    status: str  # confirmed | waitlisted | cancelled
    view: RegistrationView


class RegistrationProjection:
    def __init__(self, known: dict[UUID, ProjectedRegistration]) -> None:
        self._rows = dict(known)
        self._changed: set[UUID] = set()

    def view(self, registration_id: UUID) -> RegistrationView | None:
        row = self._rows.get(registration_id)
        return row.view if row else None

    def apply(self, event: ev.Event) -> None:
        match event:
            case ev.RegistrationConfirmed() | ev.RegistrationPromoted():
                self._put(event, "confirmed", event.participant, event.buyer, event.binding)
            case ev.RegistrationWaitlisted():
                self._put(event, "waitlisted", event.participant, None, None)
            case ev.RegistrationCancelled():
                self._put(event, "cancelled", event.participant, None, None)
            case ev.ParticipantSubstituted():
                self._put(event, "confirmed", event.new_participant, event.new_buyer, event.binding)
            case ev.RegistrationBecameBinding():
                row = self._rows.get(event.registration_id)
                if row is not None:  # unknown registration: nothing to mark
                    self._rows[event.registration_id] = replace(row, view=replace(row.view, binding=True))
                    self._changed.add(event.registration_id)

    def changed(self) -> list[ProjectedRegistration]:
        return [self._rows[i] for i in sorted(self._changed)]

    def _put(
        self,
        event: ev.RegistrationConfirmed
        | ev.RegistrationPromoted
        | ev.RegistrationWaitlisted
        | ev.RegistrationCancelled
        | ev.ParticipantSubstituted,
        status: str,
        participant: ev.Participant,
        buyer: ev.Buyer | None,
        binding: bool | None,
    ) -> None:
        before = self._rows.get(event.registration_id)
        view = RegistrationView(
            registration_id=event.registration_id,
            course_id=event.course_id,
            participant=participant,
            buyer=buyer if buyer is not None else (before.view.buyer if before else None),
            binding=binding if binding is not None else (before.view.binding if before else False),
        )
        self._rows[event.registration_id] = ProjectedRegistration(status, view)
        self._changed.add(event.registration_id)
