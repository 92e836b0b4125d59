"""Value objects carried inside event payloads (event-carried state transfer).

Consumers keep local projections from these, so each carries what a downstream service needs without
calling the producer: a course snapshot for emails and invoices, buyer data for invoices.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Annotated
from uuid import UUID

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, WithJsonSchema

from komponent_contracts.email_addresses import checked_email
from komponent_contracts.identifiers import CvrNumber, EanNumber


def _strip(value: str) -> str:
    return value.strip()


@lru_cache(maxsize=8192)
def _checked_email(value: str) -> str:
    # Exactly pydantic's email type (email-validator, same normal form, same errors), remembered per
    # address: checking addresses was the costliest part of parsing an event, and the same participant
    # and billing addresses come back in every event of a registration, on every hop. Plain ASCII
    # addresses take a fast path with the same result (komponent_contracts.email_addresses).
    return checked_email(value)


Email = Annotated[str, AfterValidator(_checked_email), WithJsonSchema({"type": "string", "format": "email"})]


Text = Annotated[str, AfterValidator(_strip), Field(min_length=1, max_length=500)]
OptionalText = Annotated[str, AfterValidator(_strip), Field(max_length=500)]


class Value(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class Participant(Value):
    name: Text
    email: Email
    job_title: Text
    phone: Annotated[str, Field(pattern=r"^\+?[0-9 ]{8,20}$")] | None = None


class PostalAddress(Value):
    street: Text
    building_number: Annotated[str, Field(min_length=1, max_length=20)]
    postcode: Annotated[str, Field(pattern=r"^[0-9]{4}$")]
    city: Text
    country_code: Annotated[str, Field(pattern=r"^[A-Z]{2}$")] = "DK"


class Buyer(Value):
    """The paying municipality. Invoices go to its EAN with its person reference and order number."""

    municipality_name: Text
    department: OptionalText = ""
    ean: EanNumber
    cvr: CvrNumber | None = None
    address: PostalAddress
    person_reference: Text
    order_number: Text
    account_string: OptionalText = ""
    billing_email: Email


class CourseSession(Value):
    starts_at: AwareDatetime
    ends_at: AwareDatetime


class Venue(Value):
    name: Text
    street: Text
    postcode: str
    city: Text


class ContactPerson(Value):
    name: Text
    role: OptionalText = ""
    email: Email | None = None
    phone: OptionalText = ""


class ProgrammeItem(Value):
    title: Text
    description: Annotated[str, Field(max_length=5000)] = ""
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None


class ProgrammeDay(Value):
    day_number: Annotated[int, Field(ge=1)]
    items: tuple[ProgrammeItem, ...]


class CourseSnapshot(Value):
    """What other services need to know about a course; carried whole by CoursePublished/Updated."""

    course_id: UUID
    title: Text
    status: Annotated[str, Field(pattern=r"^(draft|published|cancelled|completed)$")]
    sessions: tuple[CourseSession, ...] = Field(min_length=1)
    venue: Venue
    price_excl_vat_ore: Annotated[int, Field(ge=0)]
    vat_rate_percent: Annotated[int, Field(ge=0, le=100)] = 25
    price_includes: tuple[Text, ...] = ()
    capacity: Annotated[int, Field(ge=0)]
    registration_deadline: AwareDatetime
    invoice_lead_days: Annotated[int, Field(ge=21, le=28)] = 28
    reminder_lead_days: Annotated[int, Field(ge=0, le=60)] = 7
    contacts: tuple[ContactPerson, ...] = ()
    programme: tuple[ProgrammeDay, ...] = ()
    what_to_bring: Annotated[str, Field(max_length=2000)] = ""

    @property
    def starts_at(self) -> datetime:
        return min(s.starts_at for s in self.sessions)
