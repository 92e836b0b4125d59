"""The committed schemas, examples and envelope are what other Komponent systems rely on."""

from __future__ import annotations

import json
import uuid

import pytest
from komponent_contracts import EVENT_TYPES, CloudEvent, InvalidEvent, parse
from komponent_contracts.compatibility import breaking_changes
from komponent_contracts.events import RegistrationReceived
from komponent_contracts.examples import all_examples
from komponent_contracts.identifiers import is_valid_cvr, is_valid_ean
from komponent_contracts.schema_files import SCHEMA_DIR, expected_files

RELEASED = SCHEMA_DIR / "released"


def test_committed_schemas_and_examples_match_the_models() -> None:
    stale = [str(p) for p, text in expected_files().items() if not p.exists() or p.read_text("utf-8") != text]
    assert not stale, f"run `python -m komponent_contracts.schema_files`; stale: {stale}"


def test_every_event_type_has_an_example() -> None:
    assert {e.ce_type for e in all_examples()} == set(EVENT_TYPES)


@pytest.mark.parametrize("ce_type", sorted(EVENT_TYPES))
def test_no_breaking_change_against_the_released_schema(ce_type: str) -> None:
    released = RELEASED / f"{ce_type}.schema.json"
    assert released.exists(), f"release {ce_type}: copy its schema into {RELEASED}"
    current = EVENT_TYPES[ce_type].model_json_schema(mode="serialization")
    assert breaking_changes(json.loads(released.read_text("utf-8")), current) == []


def test_compatibility_check_flags_removed_retyped_and_new_required_fields() -> None:
    old = RegistrationReceived.model_json_schema(mode="serialization")
    new = json.loads(json.dumps(old))
    del new["properties"]["terms_version"]
    new["properties"]["received_at"] = {"type": "integer"}
    new["properties"]["channel"] = {"type": "string"}
    new["required"].append("channel")
    new["$defs"]["Participant"]["properties"]["nickname"] = {"type": "string"}
    new["$defs"]["Participant"]["required"].append("nickname")
    found = breaking_changes(old, new)
    assert any("terms_version: removed" in f for f in found)
    assert any("received_at: type or constraints changed" in f for f in found)
    assert any("channel: new required field" in f for f in found)
    assert any("participant.nickname: new required field" in f for f in found)


def test_adding_an_optional_field_is_not_breaking() -> None:
    old = RegistrationReceived.model_json_schema(mode="serialization")
    new = json.loads(json.dumps(old))
    new["properties"]["channel"] = {"type": "string"}
    assert breaking_changes(old, new) == []


@pytest.mark.parametrize("event", all_examples(), ids=lambda e: e.ce_type)
def test_envelope_round_trips_every_example(event) -> None:  # type: ignore[no-untyped-def]
    ce = CloudEvent(data=event, source="/komponent/test")
    headers = [(k, v.encode()) for k, v in ce.headers().items()]
    back = parse(headers, ce.value())
    assert back.data == event and back.id == ce.id and back.type == event.ce_type
    assert ce.key == str(event.course_id).encode()  # course-scoped order: keyed by course


def _headers(**over: str) -> list[tuple[str, bytes]]:
    base = {
        "ce_specversion": "1.0",
        "ce_id": str(uuid.uuid4()),
        "ce_type": RegistrationReceived.ce_type,
        "ce_source": "/x",
    }
    base.update(over)
    return [(k, v.encode()) for k, v in base.items()]


def test_invalid_records_say_why() -> None:
    good = all_examples()[0].model_dump_json().encode()
    cases = {
        "unknown_type": (_headers(ce_type="dk.komponent.nope.v1"), good),
        "unsupported_specversion": (_headers(ce_specversion="0.3"), good),
        "invalid_header": (_headers(ce_id="not-a-uuid"), good),
        "empty_value": (_headers(), None),
        "schema_violation": (_headers(), b'{"course_id": 5}'),
    }
    for reason, (headers, value) in cases.items():
        with pytest.raises(InvalidEvent) as info:
            parse(headers, value)
        assert info.value.reason == reason


def test_schema_violation_names_the_field_and_not_the_value() -> None:
    payload = json.loads(all_examples()[0].model_dump_json())
    payload["buyer"]["ean"] = "5798000012345"
    with pytest.raises(InvalidEvent) as info:
        parse(_headers(), json.dumps(payload).encode())
    assert "buyer.ean" in info.value.detail and "check digit" in info.value.detail
    assert "5798000012345" not in info.value.detail


@pytest.mark.parametrize(
    ("ean", "ok"),
    [
        ("5798000012349", True),
        ("5798000123458", True),
        ("5798000012345", False),
        ("579800001234", False),
        ("57980000123a9", False),
    ],
)
def test_ean(ean: str, ok: bool) -> None:
    assert is_valid_ean(ean) is ok


@pytest.mark.parametrize(("cvr", "ok"), [("29189404", True), ("29189405", False), ("2918940", False)])
def test_cvr(cvr: str, ok: bool) -> None:
    assert is_valid_cvr(cvr) is ok
