"""Komponent's event contracts: CloudEvents 1.0 over Kafka around pydantic v2 models."""

from komponent_contracts.envelope import CloudEvent, InvalidEvent, parse
from komponent_contracts.events import EVENT_TYPES, Event

__all__ = ["EVENT_TYPES", "CloudEvent", "Event", "InvalidEvent", "parse"]
