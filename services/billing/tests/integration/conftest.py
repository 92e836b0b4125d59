"""Fixtures for billing on the real stack: a migrated database, a billing context with a manual clock,
and builders for the events billing consumes (contracts examples with fresh ids, the seed course at
5.500,00 kr. excl. moms, 25 %)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from komponent_billing.adapters.artefacts import OfficialArtefacts
from komponent_billing.adapters.einvoice_rules import EInvoiceRules, RulesNotInstalled
from komponent_billing.adapters.einvoice_validation import EInvoiceValidator
from komponent_billing.app import MIGRATIONS
from komponent_billing.service_layer.issuing import BillingContext
from komponent_contracts import CloudEvent
from komponent_contracts.events import (
    Buyer,
    CourseCancelled,
    CoursePublished,
    Event,
    InvoiceDue,
    Participant,
    ParticipantSubstituted,
    RegistrationBecameBinding,
    RegistrationCancelled,
    RegistrationConfirmed,
    RegistrationPromoted,
)
from komponent_contracts.examples import buyer, course, participant
from komponent_runtime.clock import ManualClock
from komponent_runtime.database import migrate

SEED_TITLE = "Nye typer af udfordringer kræver nye typer af løsninger"
# "Today" for in-process tests: the seed course (3.-4. maj 2023) invoiced at T-28 days.
RUN_DAY = datetime(2023, 4, 5, 8, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def validator() -> EInvoiceValidator:
    try:
        return EInvoiceValidator(EInvoiceRules.load())
    except RulesNotInstalled as error:
        pytest.fail(
            f"official e-invoice rules are required (services/billing/tools/fetch_einvoice_rules.sh): {error}"
        )


@pytest.fixture
async def billing_pool(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Pool]:
    async with pool.acquire() as conn:
        await migrate(conn, MIGRATIONS)
    yield pool


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(RUN_DAY)


@pytest.fixture
def ctx(validator: EInvoiceValidator, clock: ManualClock) -> BillingContext:
    return BillingContext(artefacts=OfficialArtefacts(validator), clock=clock)


@dataclass
class SeedCourse:
    """Builds the events of one seed course with fresh ids."""

    course_id: uuid.UUID = field(default_factory=uuid.uuid4)
    now: datetime = RUN_DAY

    def _ce(self, data: Event) -> CloudEvent[Event]:
        return CloudEvent(data=data, source="/test/billing")

    def published(self) -> CloudEvent[Event]:
        snapshot = course().model_copy(update={"course_id": self.course_id, "title": SEED_TITLE})
        assert snapshot.price_excl_vat_ore == 550_000 and snapshot.vat_rate_percent == 25
        return self._ce(CoursePublished(course_id=self.course_id, course=snapshot, occurred_at=self.now))

    def invoice_due(self) -> CloudEvent[Event]:
        starts = course().starts_at
        return self._ce(
            InvoiceDue(
                course_id=self.course_id,
                due_at=starts - timedelta(days=28),
                fired_at=self.now,
                lateness_seconds=0.0,
                course_starts_at=starts,
            )
        )

    def confirmed(
        self,
        registration_id: uuid.UUID,
        *,
        binding: bool = True,
        who: Participant | None = None,
        payer: Buyer | None = None,
        promoted: bool = False,
    ) -> CloudEvent[Event]:
        kind = RegistrationPromoted if promoted else RegistrationConfirmed
        return self._ce(
            kind(
                registration_id=registration_id,
                course_id=self.course_id,
                occurred_at=self.now,
                participant=who or participant(),
                buyer=payer or buyer(),
                binding=binding,
            )
        )

    def became_binding(self, registration_id: uuid.UUID) -> CloudEvent[Event]:
        return self._ce(
            RegistrationBecameBinding(
                registration_id=registration_id, course_id=self.course_id, occurred_at=self.now
            )
        )

    def cancelled(
        self, registration_id: uuid.UUID, *, binding: bool, by_course: bool = False
    ) -> CloudEvent[Event]:
        return self._ce(
            RegistrationCancelled(
                registration_id=registration_id,
                course_id=self.course_id,
                occurred_at=self.now,
                participant=participant(),
                binding=binding,
                by_course_cancellation=by_course,
            )
        )

    def substituted(self, registration_id: uuid.UUID, new_buyer: Buyer, new_name: str) -> CloudEvent[Event]:
        return self._ce(
            ParticipantSubstituted(
                registration_id=registration_id,
                course_id=self.course_id,
                occurred_at=self.now,
                previous_participant=participant(),
                new_participant=participant().model_copy(update={"name": new_name}),
                previous_buyer=buyer(),
                new_buyer=new_buyer,
                binding=True,
            )
        )

    def course_cancelled(self) -> CloudEvent[Event]:
        return self._ce(
            CourseCancelled(course_id=self.course_id, reason="For få tilmeldte", occurred_at=self.now)
        )


@pytest.fixture
def seed() -> SeedCourse:
    return SeedCourse()


def other_buyer() -> Buyer:
    """Another municipality (EAN 5798000123458 has a valid GS1 check digit)."""
    return buyer().model_copy(update={"ean": "5798000123458", "municipality_name": "Eksempel Kommune"})


@pytest.fixture
def make_other_buyer() -> type[object]:
    return other_buyer  # type: ignore[return-value]


@pytest.fixture
def apply(billing_pool: asyncpg.Pool, ctx: BillingContext):  # type: ignore[no-untyped-def]
    """Apply events in-process exactly as the service's consumers do: inbox row + use case, one
    transaction per event, on the real database."""
    from komponent_billing.entrypoints.consumers import BillingConsumers
    from komponent_contracts import topics
    from komponent_runtime import inbox
    from komponent_runtime.consuming import Delivery

    consumers = BillingConsumers(ctx)
    routes = {
        topics.COURSE: ("billing.course-projection", consumers.course_event),
        topics.COURSE_CALENDAR: ("billing.invoice-run", consumers.invoice_due),
        # Through the batch handler the service wires, one event per batch here (see `apply_batch`).
        topics.REGISTRATION: (
            "billing.registrations",
            lambda conn, delivery: consumers.registration_events(conn, [delivery]),
        ),
    }

    async def run(*events: CloudEvent[Event]) -> None:
        for ce in events:
            group, handler = routes[ce.topic]
            async with billing_pool.acquire() as conn, conn.transaction():
                if await inbox.first_delivery(conn, group, ce.id):
                    await handler(conn, Delivery(ce, ce.topic, 0, 0))

    return run


@pytest.fixture
def apply_batch(billing_pool: asyncpg.Pool, ctx: BillingContext):  # type: ignore[no-untyped-def]
    """Apply registration events as ONE gathered batch, as the service's registrations consumer does:
    inbox rows + the batch handler in one transaction."""
    from komponent_billing.entrypoints.consumers import BillingConsumers
    from komponent_runtime import inbox
    from komponent_runtime.consuming import Delivery

    consumers = BillingConsumers(ctx)

    async def run(*events: CloudEvent[Event]) -> None:
        async with billing_pool.acquire() as conn, conn.transaction():
            fresh = await inbox.first_deliveries(conn, "billing.registrations", [ce.id for ce in events])
            deliveries = [Delivery(ce, ce.topic, 0, i) for i, ce in enumerate(events) if ce.id in fresh]
            await consumers.registration_events(conn, deliveries)

    return run
