"""The seed course (its 2023 dates kept as the example) round-trips through the API with every field
intact, and its CoursePublished snapshot carries the page content in the contract's format."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from komponent_catalogue.adapters.seed_page import DEMO_COURSE_ID, load_course_page
from komponent_catalogue.adapters.snapshot import course_snapshot
from komponent_catalogue.domain.operations import publish
from komponent_catalogue.entrypoints.schemas import CourseView
from komponent_catalogue.load_seed import create_request
from komponent_contracts.events import CoursePublished
from komponent_runtime.testing import ADMIN_HEADERS, REPO_ROOT

pytestmark = pytest.mark.infra
SEED_PAGE = Path(REPO_ROOT).parent / "shared" / "seed" / "course-page.da.txt"


@pytest.fixture
def seed() -> Any:
    return load_course_page(SEED_PAGE)


async def test_the_seed_course_round_trips_through_the_api_with_every_field_intact(
    catalogue: Any, seed: Any
) -> None:
    catalogue.clock.set(datetime(2023, 3, 1, 12, tzinfo=UTC))  # before the 2023 deadline
    url = f"/admin/courses/{DEMO_COURSE_ID}"
    created = await catalogue.client.put(url, json=create_request(seed), headers=ADMIN_HEADERS)
    assert created.status_code == 201, created.text
    published = await catalogue.client.post(f"{url}/publish", headers=ADMIN_HEADERS)
    assert published.status_code == 200, published.text

    expected = CourseView.from_view(publish(seed), 0, False).model_dump(mode="json")
    for shown in (
        (await catalogue.client.get(url, headers=ADMIN_HEADERS)).json(),
        (await catalogue.client.get(f"/courses/{DEMO_COURSE_ID}")).json(),
    ):
        assert shown == expected
    shown = (await catalogue.client.get(f"/courses/{DEMO_COURSE_ID}")).json()
    # Spot checks that the comparison above is about the page, verbatim.
    assert shown["details"]["title"] == "Nye typer af udfordringer i samfundet kræver nye typer af løsninger"
    assert shown["details"]["price"]["excl_vat_ore"] == 550_000
    assert shown["details"]["programme"][1]["items"][-1]["title"] == "Frokost og tak for i dag"
    assert shown["schedule"]["sessions"] == [
        {"starts_at": "2023-05-03T11:30:00+02:00", "ends_at": "2023-05-04T14:00:00+02:00"}
    ]
    assert shown["schedule"]["registration_deadline"] == "2023-04-05T23:59:00+02:00"
    assert (shown["seats_left"], shown["registration_deadline_passed"]) == (30, False)

    [event] = await catalogue.events("dk.komponent.course.published.v1")
    assert isinstance(event.data, CoursePublished)
    assert event.data.course == course_snapshot(publish(seed))
    snapshot = event.data.course
    assert snapshot.vat_rate_percent == 25
    assert snapshot.price_includes == ("undervisning", "materialer", "forplejning")
    first_item = snapshot.programme[0].items[0]
    assert (first_item.title, first_item.starts_at) == (
        "Fælles frokost",
        datetime(2023, 5, 3, 9, 30, tzinfo=UTC),
    )
    last_item = snapshot.programme[1].items[-1]
    assert last_item.ends_at == datetime(2023, 5, 4, 12, 0, tzinfo=UTC)
    workshop = next(i for i in snapshot.programme[0].items if i.title.startswith("Workshop"))
    assert workshop.description.count("\n") == 3  # four lines as printed, joined


async def test_publishing_the_2023_course_today_fires_its_timers_at_once_and_late(
    catalogue: Any, seed: Any
) -> None:
    url = f"/admin/courses/{DEMO_COURSE_ID}"
    await catalogue.client.put(url, json=create_request(seed), headers=ADMIN_HEADERS)
    await catalogue.client.post(f"{url}/publish", headers=ADMIN_HEADERS)
    now = datetime(2026, 1, 5, 9, tzinfo=UTC)
    fired = await catalogue.fire(now)
    assert len(fired) == 3 and all(f.lateness > timedelta(days=900) for f in fired)
