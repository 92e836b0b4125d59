"""A consumer skips, unparsed, records whose `ce_type` names a known event type it does not handle; an
unknown, missing or unreadable type is left to `parse` (and the dead-letter topic)."""

from __future__ import annotations

from typing import Any

from aiokafka import ConsumerRecord
from komponent_contracts.events import CourseSeatsChanged, RegistrationConfirmed
from komponent_runtime.consuming import EventConsumer


def _consumer(event_types: set[str] | None) -> EventConsumer:
    return EventConsumer(None, None, service="s", purpose="p", topic="t", event_types=event_types)  # type: ignore[arg-type]


def _record(*headers: tuple[str, bytes]) -> ConsumerRecord[Any, Any]:
    return ConsumerRecord("t", 0, 0, 0, 0, None, b"not even json", None, 0, 0, list(headers))


SEATS = CourseSeatsChanged.ce_type
CONFIRMED = RegistrationConfirmed.ce_type


def test_a_known_type_handled_elsewhere_is_skipped_unparsed() -> None:
    assert _consumer({SEATS})._for_others(_record(("ce_type", CONFIRMED.encode())))


def test_its_own_type_is_parsed_even_when_the_body_is_garbage() -> None:
    assert not _consumer({SEATS})._for_others(_record(("ce_type", SEATS.encode())))


def test_unknown_missing_or_unreadable_types_are_parsed_and_so_dead_lettered() -> None:
    consumer = _consumer({SEATS})
    assert not consumer._for_others(_record(("ce_type", b"komponent.registration.confirmed.v2")))
    assert not consumer._for_others(_record(("ce_id", b"x")))
    assert not consumer._for_others(_record(("ce_type", b"\xff\xfe")))


def test_the_last_ce_type_header_counts_as_in_parse() -> None:
    consumer = _consumer({SEATS})
    assert not consumer._for_others(_record(("ce_type", CONFIRMED.encode()), ("ce_type", SEATS.encode())))
    assert consumer._for_others(_record(("ce_type", SEATS.encode()), ("ce_type", CONFIRMED.encode())))


def test_a_consumer_of_every_type_skips_nothing() -> None:
    assert not _consumer(None)._for_others(_record(("ce_type", CONFIRMED.encode())))
