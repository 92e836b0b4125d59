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


def wire(rt: Runtime) -> ServiceParts:
    handlers = Handlers(CourseBooks())
    # One writer per partition and one transaction per fetched batch (ARCHITECTURE §4).
    rt.consumer(
        "allocation",
        topics.REGISTRATION_INTAKE,
        {
            RegistrationReceived.ce_type,
            RegistrationCancellationRequested.ce_type,
            SubstitutionRequested.ce_type,
        },
    ).handle_batches(handlers.allocate, max_records=int(os.environ.get("REGISTRATION_BATCH_MAX", "500")))
    rt.consumer(
        "course-projection",
        topics.COURSE,
        {CoursePublished.ce_type, CourseUpdated.ce_type, CourseCancelled.ce_type},
    ).handle_each(handlers.on_course)
    rt.consumer("deadlines", topics.COURSE_CALENDAR, {DeadlinePassed.ce_type}).handle_each(
        handlers.on_deadline
    )
    app = rt.http_app(
        "Registration API",
        "Intake of registrations, cancellations and substitutions; each registration's own status.",
    )
    app.include_router(http.build_router(rt.pool, rt.clock))
    return ServiceParts(http=app)
