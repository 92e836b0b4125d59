"""Every event type, importable from one place. Importing this module fills the registry."""

from komponent_contracts.events.base import EVENT_TYPES, Event
from komponent_contracts.events.course import CoursePublished, DeadlinePassed, InvoiceDue
from komponent_contracts.events.registration import (
    RegistrationConfirmed,
    RegistrationReceived,
    RegistrationRejected,
    RegistrationWaitlisted,
)
from komponent_contracts.events.values import (
    Buyer,
    ContactPerson,
    CourseSession,
    CourseSnapshot,
    Participant,
    PostalAddress,
    ProgrammeDay,
    ProgrammeItem,
    Venue,
)

__all__ = [
    "EVENT_TYPES",
    "Buyer",
    "ContactPerson",
    "CoursePublished",
    "CourseSession",
    "CourseSnapshot",
    "DeadlinePassed",
    "Event",
    "InvoiceDue",
    "Participant",
    "PostalAddress",
    "ProgrammeDay",
    "ProgrammeItem",
    "RegistrationConfirmed",
    "RegistrationReceived",
    "RegistrationRejected",
    "RegistrationWaitlisted",
    "Venue",
]
