"""Kafka entrypoints: thin adapters from a delivered event to a use case (the runtime owns the
transaction, the inbox and retries; these run inside it)."""

from __future__ import annotations

from collections.abc import Sequence

from komponent_contracts.events import (
    InvoiceDue,
    ParticipantDataErased,
    RegistrationConfirmed,
    RegistrationPromoted,
)
from komponent_runtime.consuming import Delivery, PermanentError
from komponent_runtime.database import Connection
from komponent_runtime.telemetry import continuing_trace

from ..service_layer import erasure, lifecycle
from ..service_layer.issuing import BillingContext


class BillingConsumers:
    def __init__(self, ctx: BillingContext) -> None:
        self.ctx = ctx

    async def course_event(self, conn: Connection, delivery: Delivery) -> None:
        await lifecycle.on_course_event(conn, self.ctx, delivery.event.data)

    async def invoice_due(self, conn: Connection, delivery: Delivery) -> None:
        event = delivery.event.data
        if not isinstance(event, InvoiceDue):
            raise PermanentError(f"unexpected event type {delivery.event.type}")
        await lifecycle.on_invoice_due(conn, self.ctx, event)

    async def registration_event(self, conn: Connection, delivery: Delivery) -> None:
        event = delivery.event.data
        if isinstance(event, ParticipantDataErased):
            await erasure.on_participant_data_erased(conn, event)
        else:
            await lifecycle.on_registration_event(conn, self.ctx, event, delivery.trace_headers)

    async def registration_events(self, conn: Connection, deliveries: Sequence[Delivery]) -> None:
        """A batch in partition order: each run of confirmations and promotions together (most of what a
        rush brings), everything else one by one in its own trace, as `registration_event`."""
        run: list[tuple[RegistrationConfirmed | RegistrationPromoted, dict[str, str]]] = []
        for delivery in deliveries:
            event = delivery.event.data
            if isinstance(event, RegistrationConfirmed | RegistrationPromoted):
                run.append((event, delivery.trace_headers))
                continue
            if run:
                await lifecycle.on_confirmations(conn, self.ctx, run)
                run = []
            with continuing_trace(delivery.trace_headers):
                await self.registration_event(conn, delivery)
        if run:
            await lifecycle.on_confirmations(conn, self.ctx, run)
