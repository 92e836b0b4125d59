"""Composition root: the registration service's consumers, HTTP routes and shared seat-book cache."""

from __future__ import annotations

import os
from pathlib import Path

from komponent_contracts import topics
from komponent_contracts.events import (
    CourseCancelled,
    CoursePublished,
    CourseUpdated,
    DeadlinePassed,
    RegistrationCancellationRequested,
    RegistrationReceived,
    SubstitutionRequested,
)
from komponent_runtime.service import Runtime, ServiceParts

from komponent_registration.adapters.repository import CourseBooks
from komponent_registration.entrypoints import http
from komponent_registration.entrypoints.consumers import Handlers

MIGRATIONS = Path(__file__).parent / "migrations"


def allocation_batch_max() -> int:
    """Most intake records the allocator applies in one transaction (`REGISTRATION_BATCH_MAX`).

    At least what one fetch of a partition brings (aiokafka's `max_partition_fetch_bytes`, 1 MiB: about
    1,100 intake records). aiokafka fetches a partition again only once all its fetched records are
    taken, and sends one fetch per broker at a time: a smaller batch leaves a remainder behind, and by
    the time it is taken a long poll for the idle partitions (up to `fetch_max_wait_ms`, 500 ms) holds
    the broker. In a rush on one course that wait cost more than applying the batches."""
    return int(os.environ.get("REGISTRATION_BATCH_MAX", "2000"))


def cached_books() -> int:
    """Most seat books the allocator keeps between batches (`REGISTRATION_CACHED_BOOKS`): the courses
    being booked, with room to spare; a book dropped past that is reloaded from its rows when needed."""
    return int(os.environ.get("REGISTRATION_CACHED_BOOKS", "1000"))


def wire(rt: Runtime) -> ServiceParts:
    handlers = Handlers(CourseBooks(cached_books()))
    # One writer per partition and one transaction per fetched batch (ARCHITECTURE §4).
    rt.consumer(
        "allocation",
        topics.REGISTRATION_INTAKE,
        {
            RegistrationReceived.ce_type,
            RegistrationCancellationRequested.ce_type,
            SubstitutionRequested.ce_type,
        },
    ).handle_batches(handlers.allocation, max_records=allocation_batch_max())
    rt.consumer(
        "course-projection",
        topics.COURSE,
        {CoursePublished.ce_type, CourseUpdated.ce_type, CourseCancelled.ce_type},
    ).handle_each(handlers.on_course)
    rt.consumer("deadlines", topics.COURSE_CALENDAR, {DeadlinePassed.ce_type}, gather=True).handle_each(
        handlers.on_deadline
    )
    app = rt.http_app(
        "Registration API",
        "Intake of registrations, cancellations and substitutions; each registration's own status.",
    )
    app.include_router(http.build_router(rt.pool, rt.clock))
    return ServiceParts(http=app)
