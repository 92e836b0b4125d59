"""Composition root: the catalogue service built from the shared runtime."""

from __future__ import annotations

from pathlib import Path

from komponent_contracts import topics
from komponent_contracts.events import CourseSeatsChanged
from komponent_runtime.service import Runtime, ServiceParts
from pydantic_settings import BaseSettings, SettingsConfigDict

from komponent_catalogue.entrypoints import handlers, http
from komponent_catalogue.service_layer.courses import Courses
from komponent_catalogue.service_layer.timers import TimerScheduler

MIGRATIONS = Path(__file__).parent / "migrations"
DESCRIPTION = (
    "Komponent's courses: admin endpoints (API key with scope `catalogue:admin`) to create, update, "
    "publish, reschedule, resize and cancel courses; public endpoints to list and read published ones. "
    "Invalid input gets 422 `{errors: [{field, rule, message}]}`."
)


class CatalogueSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CATALOGUE_", extra="ignore")

    timer_interval_seconds: float = 1.0  # the longest a due timer waits for the loop to wake
    timer_batch_size: int = 100


def wire(rt: Runtime) -> ServiceParts:
    settings = CatalogueSettings()
    courses = Courses(rt.pool, rt.clock)

    # Public seat counts may trail by a fraction of a second: the events are gathered into larger batches.
    seats = rt.consumer("seats-taken", topics.REGISTRATION, {CourseSeatsChanged.ce_type}, gather=True)
    seats.handle_batches(handlers.on_seats_changed)

    app = rt.http_app("Catalogue API", DESCRIPTION)
    http.install(app, courses)

    scheduler = TimerScheduler(
        rt.pool, rt.clock, interval=settings.timer_interval_seconds, batch=settings.timer_batch_size
    )
    return ServiceParts(http=app, background=[scheduler.run])
