"""The allocator's spliced outbox rows are exactly the runtime's rows for the same contract events.

`OutboxRows.confirmed` / `.waitlisted` build a row from pre-serialised participant and buyer JSON instead
of a model per event; whatever goes into them, the row must equal `outbox.row_values` of the contract
model (value bytes, headers text, key, topic, trace), so consumers and the relay see no difference.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from komponent_contracts import CloudEvent
from komponent_contracts import events as contract
from komponent_contracts.examples import buyer, participant
from komponent_registration.adapters.outbox_rows import OutboxRows, serialise
from komponent_registration.service_layer.allocation import (
    _OUTCOME_NAMESPACE,
    SOURCE,
    _form_json,
    _outcome_id,
)
from komponent_runtime import outbox
from pydantic import ValidationError
from pydantic_core import to_json

TIME = datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=UTC)
TRACE = {"traceparent": f"00-{'a' * 32}-{'b' * 16}-01", "tracestate": "vendor=x"}

PARTICIPANTS = [
    participant(),
    contract.Participant(name="Deltager 1", email="deltager1@kommune.dk", job_title="Konsulent"),
    contract.Participant(
        name='Ærø "Østergård" \\ 😀 \u2028',
        email="søren@kommune.dk",
        job_title="Pæd.",
        phone="+45 12 34 56 78",
    ),
]
TIMES = [
    datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    datetime(2026, 1, 2, 3, 4, 5, 120000, tzinfo=UTC),
    datetime(2026, 6, 2, 3, 4, 5, 1, tzinfo=timezone(timedelta(hours=2))),
    datetime.fromisoformat("2026-01-02T03:04:05.5+01:00"),
]


def reference(event: contract.RegistrationConfirmed | contract.RegistrationWaitlisted, event_id: uuid.UUID):
    return outbox.row_values(CloudEvent(event, source=SOURCE, id=event_id, time=TIME), TRACE)


@pytest.mark.parametrize("person", PARTICIPANTS)
@pytest.mark.parametrize("at", TIMES)
@pytest.mark.parametrize("binding", [False, True])
def test_confirmed_row_is_the_runtimes_row(person: contract.Participant, at: datetime, binding: bool) -> None:
    ids = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    event = contract.RegistrationConfirmed(
        registration_id=ids[1],
        course_id=ids[2],
        occurred_at=at,
        participant=person,
        buyer=buyer(),
        binding=binding,
    )
    row = OutboxRows(SOURCE, TIME).confirmed(
        ids[0], ids[1], ids[2], at, serialise(person), serialise(buyer()), binding, TRACE
    )
    assert row == reference(event, ids[0])


@pytest.mark.parametrize("person", PARTICIPANTS)
@pytest.mark.parametrize("at", TIMES)
@pytest.mark.parametrize("position", [1, 7, 10_000])
def test_waitlisted_row_is_the_runtimes_row(
    person: contract.Participant, at: datetime, position: int
) -> None:
    ids = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    event = contract.RegistrationWaitlisted(
        registration_id=ids[1], course_id=ids[2], occurred_at=at, participant=person, position=position
    )
    row = OutboxRows(SOURCE, TIME).waitlisted(ids[0], ids[1], ids[2], at, serialise(person), position, {})
    assert row == outbox.row_values(CloudEvent(event, source=SOURCE, id=ids[0], time=TIME), {})


def test_waitlisted_position_keeps_the_contracts_bound() -> None:
    with pytest.raises(ValueError):
        OutboxRows(SOURCE, TIME).waitlisted(
            uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), TIME, serialise(participant()), 0, {}
        )


def test_one_batch_mixes_courses_and_types_without_mixing_their_headers() -> None:
    rows = OutboxRows(SOURCE, TIME)
    courses = [uuid.uuid4() for _ in range(3)]
    for course_id in courses * 2:
        for position in (1, 2):
            ids = uuid.uuid4(), uuid.uuid4()
            event = contract.RegistrationWaitlisted(
                registration_id=ids[1],
                course_id=course_id,
                occurred_at=TIME,
                participant=participant(),
                position=position,
            )
            row = rows.waitlisted(ids[0], ids[1], course_id, TIME, serialise(participant()), position, TRACE)
            assert row == reference(event, ids[0])
        ids = uuid.uuid4(), uuid.uuid4()
        confirmed = contract.RegistrationConfirmed(
            registration_id=ids[1],
            course_id=course_id,
            occurred_at=TIME,
            participant=participant(),
            buyer=buyer(),
            binding=False,
        )
        row = rows.confirmed(
            ids[0], ids[1], course_id, TIME, serialise(participant()), serialise(buyer()), False, TRACE
        )
        assert row == reference(confirmed, ids[0])


@settings(max_examples=200, deadline=None)
@given(name=st.text(min_size=1, max_size=40), job_title=st.text(min_size=1, max_size=20))
def test_any_valid_participant_splices_to_the_same_bytes(name: str, job_title: str) -> None:
    try:
        person = contract.Participant(name=name, email="anna@randers.dk", job_title=job_title)
    except ValidationError:
        return  # the contract refuses it, so no such participant reaches the allocator
    ids = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    event = contract.RegistrationWaitlisted(
        registration_id=ids[1], course_id=ids[2], occurred_at=TIME, participant=person, position=3
    )
    row = OutboxRows(SOURCE, TIME).waitlisted(ids[0], ids[1], ids[2], TIME, serialise(person), 3, TRACE)
    assert row == reference(event, ids[0])
    assert contract.RegistrationWaitlisted.model_validate_json(row[4]) == event


@pytest.mark.parametrize("person", PARTICIPANTS)
def test_stored_form_is_the_models_json(person: contract.Participant) -> None:
    form = _form_json(serialise(person), serialise(buyer()), "2026-01")
    assert form == to_json({"participant": person, "buyer": buyer(), "terms_version": "2026-01"}).decode()
    assert json.loads(_form_json(serialise(person), serialise(buyer()))) == {
        "participant": person.model_dump(mode="json"),
        "buyer": buyer().model_dump(mode="json"),
    }


@pytest.mark.parametrize("index", [0, 1, 12])
def test_outcome_ids_are_uuid5_of_the_request_and_index(index: int) -> None:
    for _ in range(50):
        request_id = uuid.uuid4()
        expected = uuid.uuid5(_OUTCOME_NAMESPACE, f"{request_id}/{index}")
        derived = _outcome_id(request_id, index)
        assert derived == expected and hash(derived) == hash(expected) and str(derived) == str(expected)
        assert isinstance(derived, uuid.UUID) and derived.version == 5
