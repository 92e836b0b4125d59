"""The catalogue in-process on a real PostgreSQL: use cases, HTTP app (ASGI) and a clock tests move.

Test modules cannot import from here (importlib mode), so everything they need comes as the `catalogue`
fixture: a small driver over the real app and database.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest
from komponent_catalogue.app import MIGRATIONS
from komponent_catalogue.entrypoints import http
from komponent_catalogue.service_layer.courses import Courses
from komponent_catalogue.service_layer.timers import FiredTimer, fire_due_timers
from komponent_contracts import CloudEvent, Event, parse
from komponent_runtime.auth import LOCAL_DEV_KEY, hash_key
from komponent_runtime.clock import ManualClock
from komponent_runtime.database import migrate
from komponent_runtime.http import make_http_app
from komponent_runtime.testing import ADMIN_HEADERS

CPH = ZoneInfo("Europe/Copenhagen")


def course_body(
    starts_at: datetime, *, days: int = 1, deadline: datetime | None = None, **overrides: Any
) -> dict[str, Any]:
    """A valid create request: `days` sessions 09:00-16:00 from `starts_at`'s date, deadline 23:59 four
    weeks before start unless given."""
    start = starts_at.astimezone(CPH)
    sessions = [
        {
            "starts_at": (start + timedelta(days=d)).isoformat(),
            "ends_at": (start + timedelta(days=d, hours=7)).isoformat(),
        }
        for d in range(days)
    ]
    if deadline is None:
        deadline = datetime.combine(
            start.date() - timedelta(days=28), datetime.min.time().replace(hour=23, minute=59), tzinfo=CPH
        )
    body: dict[str, Any] = {
        "details": {
            "title": "Politikudvikling med vildskab",
            "introduction": ["Nye typer af udfordringer."],
            "learning_outcomes": ["Redskaber", "Indblik"],
            "price": {"excl_vat_ore": 550_000, "includes": ["undervisning", "forplejning"]},
            "duration_days": days,
            "venue": {
                "name": "Comwell Roskilde",
                "address": {"street": "Vestre Kirkevej 12", "postcode": "4000", "city": "Roskilde"},
            },
            "contacts": [{"name": "Louise Angelo", "role": "Chefkonsulent", "email": "loua@komponent.dk"}],
        },
        "schedule": {"sessions": sessions, "registration_deadline": deadline.isoformat()},
        "capacity": 30,
    }
    body.update(overrides)
    return body


@dataclass
class Catalogue:
    pool: asyncpg.Pool
    clock: ManualClock
    courses: Courses
    client: httpx.AsyncClient

    body = staticmethod(course_body)

    async def create(self, body: dict[str, Any], *, publish: bool = True) -> UUID:
        response = await self.client.post("/admin/courses", json=body, headers=ADMIN_HEADERS)
        assert response.status_code == 201, response.text
        course_id = UUID(response.json()["course_id"])
        if publish:
            published = await self.client.post(f"/admin/courses/{course_id}/publish", headers=ADMIN_HEADERS)
            assert published.status_code == 200, published.text
        return course_id

    async def fire(self, now: datetime) -> list[FiredTimer]:
        self.clock.set(now)
        return await fire_due_timers(self.pool, now)

    async def events(self, ce_type: str | None = None) -> list[CloudEvent[Event]]:
        """Everything in the outbox, oldest first, parsed like a consumer would."""
        rows = await self.pool.fetch("SELECT headers, value FROM outbox ORDER BY id")
        events = [parse(json.loads(r["headers"]).items(), r["value"]) for r in rows]
        return [e for e in events if ce_type is None or e.type == ce_type]

    async def timers(self, course_id: UUID) -> list[asyncpg.Record]:
        return await self.pool.fetch(
            "SELECT kind, due_at, event_id, status, fired_at, lateness_seconds FROM course_timers"
            " WHERE course_id = $1 ORDER BY kind, due_at",
            course_id,
        )

    async def seats_taken(self, course_id: UUID, seats: int) -> None:
        """What registration's CourseSeatsChanged would have left in the projection."""
        await self.pool.execute(
            "INSERT INTO course_seats_taken (course_id, seats_taken, version) VALUES ($1, $2, 1)"
            " ON CONFLICT (course_id) DO UPDATE SET seats_taken = $2, version = course_seats_taken.version + 1",
            course_id,
            seats,
        )


@pytest.fixture
async def catalogue(pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Catalogue]:
    monkeypatch.setenv("API_KEYS", f"tests:{hash_key(LOCAL_DEV_KEY)}:*")
    async with pool.acquire() as conn:
        await migrate(conn, MIGRATIONS)
    clock = ManualClock(datetime(2026, 1, 5, 9, tzinfo=UTC))
    courses = Courses(pool, clock)

    async def ready() -> dict[str, bool]:
        return {"database": True}

    app = make_http_app("Catalogue API", readiness=ready)
    http.install(app, courses)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://catalogue"
    ) as client:
        yield Catalogue(pool, clock, courses, client)
