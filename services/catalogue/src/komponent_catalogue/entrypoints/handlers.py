"""Kafka handlers: each runs inside the consumer's transaction (inbox row included)."""

from __future__ import annotations

from komponent_contracts.events import CourseSeatsChanged
from komponent_runtime.consuming import Delivery, PermanentError
from komponent_runtime.database import Connection

from komponent_catalogue.service_layer.seats import record_seats_changed


async def on_seats_changed(conn: Connection, delivery: Delivery) -> None:
    if not isinstance(delivery.event.data, CourseSeatsChanged):
        raise PermanentError(f"unexpected event type {delivery.event.type}")
    await record_seats_changed(conn, delivery.event)  # type: ignore[arg-type]
