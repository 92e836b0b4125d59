"""Kafka handlers: each runs inside the consumer's transaction (inbox rows included)."""

from __future__ import annotations

from collections.abc import Sequence

from komponent_contracts import CloudEvent
from komponent_contracts.events import CourseSeatsChanged
from komponent_runtime.consuming import Delivery, PermanentError
from komponent_runtime.database import Connection

from komponent_catalogue.service_layer.seats import record_seats_changed


async def on_seats_changed(conn: Connection, deliveries: Sequence[Delivery]) -> None:
    """A batch of CourseSeatsChanged, in partition order."""
    events: list[CloudEvent[CourseSeatsChanged]] = []
    for delivery in deliveries:
        if not isinstance(delivery.event.data, CourseSeatsChanged):
            raise PermanentError(f"unexpected event type {delivery.event.type}")
        events.append(delivery.event)  # type: ignore[arg-type]
    await record_seats_changed(conn, events)
