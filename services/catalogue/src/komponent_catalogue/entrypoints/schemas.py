"""HTTP API models (pydantic v2) and their translation to and from the domain model.

Request models check shape and single-field ranges so a client gets every field error at once with
pydantic's `loc`. Rules that span fields (deadline vs start, overlapping sessions, capacity vs seats
taken, duration vs sessions) stay in the domain; both kinds are reported as `FieldErrorOut` with the
same dotted paths, because the nesting here (`details.…`, `schedule.sessions.N.…`) mirrors the
domain's `FieldError.field`.
"""

from __future__ import annotations

from datetime import datetime, time
from typing import Annotated, Self
from uuid import UUID

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from komponent_catalogue.domain.course import (
    DANISH_STANDARD_VAT_BASIS_POINTS,
    DEFAULT_INVOICE_LEAD_DAYS,
    DEFAULT_REMINDER_LEAD_DAYS,
    INVOICE_LEAD_DAYS_MAX,
    INVOICE_LEAD_DAYS_MIN,
    REMINDER_LEAD_DAYS_MAX,
    REMINDER_LEAD_DAYS_MIN,
    Address,
    ContactPerson,
    Course,
    CourseDetails,
    CourseStatus,
    Instructor,
    Price,
    ProgrammeDay,
    ProgrammeItem,
    Schedule,
    Session,
    Venue,
)
from komponent_catalogue.domain.operations import create_course
from komponent_catalogue.domain.validation import CourseInvalid

NonEmpty = Annotated[str, Field(min_length=1)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class InstructorSchema(_Model):
    name: NonEmpty
    title: str | None = None
    organisation: str | None = None

    def to_domain(self) -> Instructor:
        return Instructor(self.name, self.title, self.organisation)

    @classmethod
    def from_domain(cls, value: Instructor) -> Self:
        return cls(name=value.name, title=value.title, organisation=value.organisation)


class PriceSchema(_Model):
    excl_vat_ore: int = Field(ge=0, description="Price excluding VAT in øre (5.500,00 kr. = 550000).")
    vat_rate_basis_points: int = Field(
        default=DANISH_STANDARD_VAT_BASIS_POINTS, ge=0, le=10_000, description="2500 = 25 %."
    )
    includes: list[NonEmpty] = Field(default_factory=list, description="What the price covers.")

    def to_domain(self) -> Price:
        return Price(self.excl_vat_ore, self.vat_rate_basis_points, tuple(self.includes))

    @classmethod
    def from_domain(cls, value: Price) -> Self:
        return cls(
            excl_vat_ore=value.excl_vat_ore,
            vat_rate_basis_points=value.vat_rate_basis_points,
            includes=list(value.includes),
        )


class AddressSchema(_Model):
    street: NonEmpty
    postcode: str = Field(pattern=r"^\d{4}$", description="Danish postcode, four digits.")
    city: NonEmpty


class VenueSchema(_Model):
    name: NonEmpty
    address: AddressSchema

    def to_domain(self) -> Venue:
        a = self.address
        return Venue(self.name, Address(a.street, a.postcode, a.city))

    @classmethod
    def from_domain(cls, value: Venue) -> Self:
        a = value.address
        return cls(name=value.name, address=AddressSchema(street=a.street, postcode=a.postcode, city=a.city))


class SessionSchema(_Model):
    starts_at: AwareDatetime
    ends_at: AwareDatetime

    @field_validator("ends_at")
    @classmethod
    def _ends_after_start(cls, ends_at: datetime, info: ValidationInfo) -> datetime:
        starts_at = info.data.get("starts_at")
        if starts_at is not None and ends_at <= starts_at:
            # Same rule code as the domain, so clients handle one vocabulary.
            raise PydanticCustomError("session_ends_before_start", "Session must end after it starts.")
        return ends_at


class ProgrammeItemSchema(_Model):
    title: NonEmpty
    description: list[str] = Field(default_factory=list)
    starts_at: time | None = Field(default=None, description="Copenhagen wall clock.")
    ends_at: time | None = None

    def to_domain(self) -> ProgrammeItem:
        return ProgrammeItem(self.title, tuple(self.description), self.starts_at, self.ends_at)

    @classmethod
    def from_domain(cls, value: ProgrammeItem) -> Self:
        return cls(
            title=value.title,
            description=list(value.description),
            starts_at=value.starts_at,
            ends_at=value.ends_at,
        )


class ProgrammeDaySchema(_Model):
    day_number: int = Field(ge=1)
    items: list[ProgrammeItemSchema]


class ContactPersonSchema(_Model):
    name: NonEmpty
    role: NonEmpty
    email: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    phone: str | None = None


class CourseDetailsSchema(_Model):
    """The course page content, Danish, verbatim."""

    title: NonEmpty
    introduction: list[str] = Field(default_factory=list, description="Paragraphs.")
    learning_outcomes: list[NonEmpty] = Field(default_factory=list, description="'På dette kursus får du'.")
    instructors: list[InstructorSchema] = Field(default_factory=list)
    instructors_text: str = ""
    price: PriceSchema
    price_terms: list[str] = Field(default_factory=list)
    duration_days: int = Field(ge=1)
    venue: VenueSchema | None = None
    target_group: str = ""
    programme: list[ProgrammeDaySchema] = Field(default_factory=list)
    contacts: list[ContactPersonSchema] = Field(default_factory=list)

    def to_domain(self) -> CourseDetails:
        return CourseDetails(
            title=self.title,
            introduction=tuple(self.introduction),
            learning_outcomes=tuple(self.learning_outcomes),
            instructors=tuple(i.to_domain() for i in self.instructors),
            instructors_text=self.instructors_text,
            price=self.price.to_domain(),
            price_terms=tuple(self.price_terms),
            duration_days=self.duration_days,
            venue=self.venue.to_domain() if self.venue else None,
            target_group=self.target_group,
            programme=tuple(
                ProgrammeDay(d.day_number, tuple(i.to_domain() for i in d.items)) for d in self.programme
            ),
            contacts=tuple(ContactPerson(c.name, c.role, c.email, c.phone) for c in self.contacts),
        )

    @classmethod
    def from_domain(cls, value: CourseDetails) -> Self:
        return cls(
            title=value.title,
            introduction=list(value.introduction),
            learning_outcomes=list(value.learning_outcomes),
            instructors=[InstructorSchema.from_domain(i) for i in value.instructors],
            instructors_text=value.instructors_text,
            price=PriceSchema.from_domain(value.price),
            price_terms=list(value.price_terms),
            duration_days=value.duration_days,
            venue=VenueSchema.from_domain(value.venue) if value.venue else None,
            target_group=value.target_group,
            programme=[
                ProgrammeDaySchema(
                    day_number=d.day_number, items=[ProgrammeItemSchema.from_domain(i) for i in d.items]
                )
                for d in value.programme
            ],
            contacts=[
                ContactPersonSchema(name=c.name, role=c.role, email=c.email, phone=c.phone)
                for c in value.contacts
            ],
        )


class ScheduleSchema(_Model):
    sessions: list[SessionSchema] = Field(min_length=1)
    registration_deadline: AwareDatetime

    def to_domain(self) -> Schedule:
        return Schedule(
            sessions=tuple(Session(s.starts_at, s.ends_at) for s in self.sessions),
            registration_deadline=self.registration_deadline,
        )

    @classmethod
    def from_domain(cls, value: Schedule) -> Self:
        return cls(
            sessions=[SessionSchema(starts_at=s.starts_at, ends_at=s.ends_at) for s in value.sessions],
            registration_deadline=value.registration_deadline,
        )


_InvoiceLead = Annotated[
    int,
    Field(
        ge=INVOICE_LEAD_DAYS_MIN,
        le=INVOICE_LEAD_DAYS_MAX,
        description="Days before start the invoice run happens (InvoiceDue).",
    ),
]
_ReminderLead = Annotated[
    int,
    Field(
        ge=REMINDER_LEAD_DAYS_MIN,
        le=REMINDER_LEAD_DAYS_MAX,
        description="Days before start participants get a reminder (CourseReminderDue).",
    ),
]


class CourseCreateRequest(_Model):
    details: CourseDetailsSchema
    schedule: ScheduleSchema
    capacity: int = Field(ge=1)
    invoice_lead_days: _InvoiceLead = DEFAULT_INVOICE_LEAD_DAYS
    reminder_lead_days: _ReminderLead = DEFAULT_REMINDER_LEAD_DAYS

    def create(self, course_id: UUID) -> Course:
        """Create the draft course; raises `CourseInvalid` for cross-field rules."""
        return create_course(
            course_id,
            self.details.to_domain(),
            self.schedule.to_domain(),
            self.capacity,
            self.invoice_lead_days,
            self.reminder_lead_days,
        )


class CourseUpdateRequest(_Model):
    """Content and lead days. Schedule and capacity have their own requests: they move timers and
    touch seats, so they are separate operations with their own events."""

    details: CourseDetailsSchema | None = None
    invoice_lead_days: _InvoiceLead | None = None
    reminder_lead_days: _ReminderLead | None = None


class RescheduleRequest(_Model):
    schedule: ScheduleSchema


class CapacityChangeRequest(_Model):
    capacity: int = Field(ge=1)


class CourseDetailResponse(_Model):
    course_id: UUID
    status: CourseStatus
    details: CourseDetailsSchema
    schedule: ScheduleSchema
    starts_at: datetime
    ends_at: datetime
    capacity: int
    seats_taken: int
    seats_available: int
    invoice_lead_days: int
    reminder_lead_days: int

    @classmethod
    def from_domain(cls, course: Course, seats_taken: int) -> Self:
        return cls(
            course_id=course.course_id,
            status=course.status,
            details=CourseDetailsSchema.from_domain(course.details),
            schedule=ScheduleSchema.from_domain(course.schedule),
            starts_at=course.schedule.starts_at,
            ends_at=course.schedule.ends_at,
            capacity=course.capacity,
            seats_taken=seats_taken,
            seats_available=max(course.capacity - seats_taken, 0),
            invoice_lead_days=course.invoice_lead_days,
            reminder_lead_days=course.reminder_lead_days,
        )


class CoursePublicListItem(_Model):
    """One row of the public course list: enough to choose, not the whole page."""

    course_id: UUID
    title: str
    starts_at: datetime
    ends_at: datetime
    duration_days: int
    venue_name: str | None
    city: str | None
    price_excl_vat_ore: int
    registration_deadline: datetime
    seats_available: int

    @classmethod
    def from_domain(cls, course: Course, seats_taken: int) -> Self:
        venue = course.details.venue
        return cls(
            course_id=course.course_id,
            title=course.details.title,
            starts_at=course.schedule.starts_at,
            ends_at=course.schedule.ends_at,
            duration_days=course.details.duration_days,
            venue_name=venue.name if venue else None,
            city=venue.address.city if venue else None,
            price_excl_vat_ore=course.details.price.excl_vat_ore,
            registration_deadline=course.schedule.registration_deadline,
            seats_available=max(course.capacity - seats_taken, 0),
        )


class FieldErrorOut(_Model):
    field: str  # dotted path, e.g. "schedule.sessions.0.ends_at"
    rule: str  # stable code: pydantic's error type or the domain rule
    message: str


def field_errors_from_validation(exc: ValidationError) -> list[FieldErrorOut]:
    return [
        FieldErrorOut(field=".".join(str(part) for part in e["loc"]), rule=e["type"], message=e["msg"])
        for e in exc.errors()
    ]


def field_errors_from_domain(exc: CourseInvalid) -> list[FieldErrorOut]:
    return [FieldErrorOut(field=e.field, rule=e.rule, message=e.message) for e in exc.errors]


class CourseView(CourseDetailResponse):
    """A course with the live facts: seats left (from registration's events, eventually consistent)
    and whether the registration deadline has passed (registrations after it are binding at once)."""

    seats_left: int
    registration_deadline_passed: bool

    @classmethod
    def from_view(cls, course: Course, seats_taken: int, deadline_passed: bool) -> Self:
        base = CourseDetailResponse.from_domain(course, seats_taken)
        return cls(
            **base.model_dump(),
            seats_left=base.seats_available,
            registration_deadline_passed=deadline_passed,
        )


class CourseListItem(CoursePublicListItem):
    registration_deadline_passed: bool

    @classmethod
    def from_view(cls, course: Course, seats_taken: int, deadline_passed: bool) -> Self:
        base = CoursePublicListItem.from_domain(course, seats_taken)
        return cls(**base.model_dump(), registration_deadline_passed=deadline_passed)


class CancelRequest(_Model):
    reason: str = Field(default="", max_length=1000, description="Shown to participants in the cancellation.")


class ErrorsOut(_Model):
    errors: list[FieldErrorOut]
