"""CloudEvents 1.0, Kafka protocol binding, binary content mode.

The value is the JSON of the event's data model; the context attributes travel as `ce_*` headers. Any
Komponent system can publish and consume our events with just this module and the event models.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Generic, TypeVar

from pydantic import ValidationError

from komponent_contracts.events.base import EVENT_TYPES, Event

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/json"
E = TypeVar("E", bound=Event)


class InvalidEvent(Exception):
    """A message that can never be processed as it is: it belongs in the dead-letter topic."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class CloudEvent(Generic[E]):
    data: E
    source: str
    id: uuid.UUID = field(default_factory=uuid.uuid4)
    time: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def type(self) -> str:
        return self.data.ce_type

    @property
    def subject(self) -> str:
        return self.data.subject()

    @property
    def topic(self) -> str:
        return self.data.topic

    @property
    def key(self) -> bytes:
        return self.subject.encode()

    def headers(self) -> dict[str, str]:
        return {
            "ce_specversion": SPEC_VERSION,
            "ce_id": str(self.id),
            "ce_type": self.type,
            "ce_source": self.source,
            "ce_time": self.time.isoformat(),
            "ce_subject": self.subject,
            "content-type": CONTENT_TYPE,
        }

    def value(self) -> bytes:
        return self.data.model_dump_json().encode()


def _header_map(headers: Iterable[tuple[str, bytes | str]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, raw in headers:
        try:
            out[name] = raw.decode() if isinstance(raw, bytes) else raw
        except UnicodeDecodeError as exc:
            raise InvalidEvent("invalid_header", f"header {name} is not UTF-8") from exc
    return out


def parse(headers: Iterable[tuple[str, bytes | str]], value: bytes | None) -> CloudEvent[Event]:
    """Turn a Kafka record into a CloudEvent, or raise InvalidEvent saying exactly what is wrong."""
    h = _header_map(headers)
    if "ce_specversion" not in h:
        raise InvalidEvent("missing_header", "ce_specversion (not a CloudEvent)")
    if h["ce_specversion"] != SPEC_VERSION:
        raise InvalidEvent("unsupported_specversion", f"ce_specversion={h.get('ce_specversion')!r}")
    for required in ("ce_id", "ce_type", "ce_source"):
        if not h.get(required):
            raise InvalidEvent("missing_header", required)
    try:
        event_id = uuid.UUID(h["ce_id"])
    except ValueError as exc:
        raise InvalidEvent("invalid_header", "ce_id is not a UUID") from exc
    model = EVENT_TYPES.get(h["ce_type"])
    if model is None:
        raise InvalidEvent("unknown_type", h["ce_type"])
    if value is None:
        raise InvalidEvent("empty_value", "record has no value")
    try:
        data = model.model_validate_json(value)
    except ValidationError as exc:
        raise InvalidEvent("schema_violation", _describe(exc)) from exc
    try:
        time = datetime.fromisoformat(h["ce_time"]) if h.get("ce_time") else datetime.now(UTC)
    except ValueError as exc:
        raise InvalidEvent("invalid_header", "ce_time is not RFC 3339") from exc
    return CloudEvent(data=data, source=h["ce_source"], id=event_id, time=time)


def _describe(exc: ValidationError) -> str:
    """Field path and rule for each error; the input values are left out (they may be personal data)."""
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in exc.errors())[
        :2000
    ]
