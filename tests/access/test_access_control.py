"""Access control across the platform, on real processes (issue #8 part 4).

Every route in each service's OpenAPI document is either on the explicit public allow-list below, or it
answers 401 without a key, 401 with an unknown key, 403 with a valid key that lacks its scope, and neither
401 nor 403 with a key carrying exactly that service's scopes. A route added without `require_scope` fails
here until it is protected or consciously made public.

Public routes, and why:
- `GET /health/live`, `GET /health/ready` (every service): probes by the kubelet; status only, no data.
- `GET /metrics` (every service, not in the OpenAPI document): Prometheus scrapes it from inside the
  cluster; it holds counters labelled by consumer group, topic and partition, never ids or personal data.
  Exposure is restricted at the network level (the ingress routes only the public API paths), not by key,
  so a scraper needs no secret. Asserted below to stay free of personal data.
- catalogue `GET /courses`, `GET /courses/{course_id}`: the published course list and detail of the
  public website.
- registration `POST /courses/{course_id}/registrations`: the public registration form (no account).
- registration `POST /registrations/{registration_id}/cancellation` and `.../substitution`, and
  `GET /registrations/{registration_id}`: the participant's own links. The registration id is an unguessable
  random UUID handed only to the registrant (a capability URL); the status answer carries no personal data
  (asserted in test_public_endpoints_expose_no_personal_data).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from komponent_catalogue.domain.wall_clock import COPENHAGEN
from komponent_catalogue.load_seed import Api, load
from komponent_contracts.examples import buyer
from komponent_runtime.auth import LOCAL_DEV_KEY, hash_key
from komponent_runtime.testing import ADMIN_HEADERS, wait_until
from support.platform import SEED_PAGE, SERVICES, Platform, start_platform

pytestmark = pytest.mark.infra

PUBLIC: dict[str, set[tuple[str, str]]] = {
    "catalogue": {("GET", "/courses"), ("GET", "/courses/{course_id}")},
    "registration": {
        ("POST", "/courses/{course_id}/registrations"),
        ("POST", "/registrations/{registration_id}/cancellation"),
        ("POST", "/registrations/{registration_id}/substitution"),
        ("GET", "/registrations/{registration_id}"),
    },
    "billing": set(),
    "notifications": set(),
}
HEALTH = {("GET", "/health/live"), ("GET", "/health/ready")}

# One key per calling system, each with exactly one service's scopes; the "narrow" keys hold another
# service's scope only, so they are valid keys that lack the route's scope.
SCOPES = {
    "catalogue": "catalogue:admin",
    "registration": "registration:admin",
    "billing": "billing:admin|billing:documents",
    "notifications": "notifications:admin",
}
KEYS = {service: f"{service}-key-{uuid.uuid4().hex}" for service in SERVICES}
NARROW = {  # service → a valid key without its scopes
    "catalogue": KEYS["registration"],
    "registration": KEYS["catalogue"],
    "billing": KEYS["catalogue"],
    "notifications": KEYS["catalogue"],
}
API_KEYS = ",".join(
    [f"tests:{hash_key(LOCAL_DEV_KEY)}:*"]
    + [f"{service}:{hash_key(KEYS[service])}:{SCOPES[service]}" for service in SERVICES]
)


@pytest.fixture
async def platform(tmp_path: Path) -> AsyncIterator[Platform]:
    started = await start_platform(tmp_path, extra_env={"API_KEYS": API_KEYS})
    yield started
    started.stop()


def _routes(openapi: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted(
        (method.upper(), path)
        for path, operations in openapi["paths"].items()
        for method in operations
        if method in {"get", "post", "put", "patch", "delete"}
    )


def _concrete(path: str) -> str:
    """A request path for an OpenAPI path template: a fresh UUID for every parameter (a document number
    or other string parameter accepts it too)."""
    return re.sub(r"\{[^}]+\}", lambda _: str(uuid.uuid4()), path)


async def _call(client: httpx.AsyncClient, method: str, url: str, key: str | None) -> int:
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    body: dict[str, Any] | None = {} if method in {"POST", "PUT", "PATCH"} else None
    return (await client.request(method, url, json=body, headers=headers)).status_code


async def test_every_non_public_route_requires_a_key_with_its_scope(platform: Platform) -> None:
    checked: list[str] = []
    async with httpx.AsyncClient(timeout=10) as client:
        for service in SERVICES:
            base = platform.url(service)
            openapi = (await client.get(f"{base}/openapi.json")).json()
            routes = _routes(openapi)
            assert routes, f"{service} publishes no routes"
            unknown_public = PUBLIC[service] - set(routes)
            assert not unknown_public, f"{service}: allow-listed routes that do not exist: {unknown_public}"
            for method, path in routes:
                if (method, path) in PUBLIC[service] | HEALTH:
                    continue
                url = base + _concrete(path)
                what = f"{service} {method} {path}"
                assert await _call(client, method, url, None) == 401, f"{what} without a key"
                assert await _call(client, method, url, f"wrong-{uuid.uuid4().hex}") == 401, (
                    f"{what} wrong key"
                )
                assert await _call(client, method, url, NARROW[service]) == 403, f"{what} key lacking scope"
                status = await _call(client, method, url, KEYS[service])
                assert status not in (401, 403), f"{what} with the right scope answered {status}"
                checked.append(what)
    # The routes the issue names must be among those checked (a rename would silently drop them).
    for expected in (
        "catalogue POST /admin/courses",
        "registration GET /courses/{course_id}/registrations",
        "registration POST /admin/erasures",
        "notifications GET /emails",
        "notifications POST /emails/{email_id}/resend",
        "billing GET /documents/{document_id}/pdf",
        "billing GET /documents/{document_id}/xml",
        "billing GET /courses/{course_id}/documents",
    ):
        assert expected in checked, f"{expected} not checked; checked: {checked}"


async def test_public_routes_answer_without_a_key(platform: Platform) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        for service in SERVICES:
            base = platform.url(service)
            for path in ("/health/live", "/health/ready", "/metrics"):
                assert (await client.get(base + path)).status_code == 200, f"{service} {path}"
        assert (await client.get(f"{platform.url('catalogue')}/courses")).status_code == 200
        unknown = await client.get(f"{platform.url('registration')}/registrations/{uuid.uuid4()}")
        assert unknown.status_code == 404  # public, and unknown: not 401


PEOPLE: list[dict[str, Any]] = [
    {
        "participant": {
            "name": "Henriette Offentlig-Testesen",
            "email": f"henriette.{uuid.uuid4().hex[:8]}@odense.dk",
            "job_title": "Specialkonsulent i borgerservice",
            "phone": "+45 61 23 45 67",
        },
        "person_reference": "HENRIETTE-REF-4711",
    },
    {
        "participant": {
            "name": "Bjørn Anden Deltagersen",
            "email": f"bjoern.{uuid.uuid4().hex[:8]}@aarhus.dk",
            "job_title": "Teamleder for jobcenteret",
            "phone": "+45 42 98 76 54",
        },
        "person_reference": "BJOERN-REF-0815",
    },
]


async def test_public_endpoints_expose_no_personal_data(platform: Platform) -> None:
    course = load(SEED_PAGE, Api(platform.url("catalogue"), LOCAL_DEV_KEY), datetime.now(COPENHAGEN).date())
    course_id = course["course_id"]
    registration_ids: list[str] = []
    secrets: list[str] = []
    async with httpx.AsyncClient(timeout=10) as client:

        async def course_known() -> bool:
            answer = await client.get(
                f"{platform.url('registration')}/courses/{course_id}/registrations", headers=ADMIN_HEADERS
            )
            return answer.status_code == 200

        await wait_until(course_known, what="registration knows the course")
        for person in PEOPLE:
            the_buyer = {**buyer().model_dump(mode="json"), "person_reference": person["person_reference"]}
            answer = await client.post(
                f"{platform.url('registration')}/courses/{course_id}/registrations",
                json={"participant": person["participant"], "buyer": the_buyer, "terms_version": "2026-01"},
            )
            assert answer.status_code == 202, answer.text
            registration_ids.append(answer.json()["registration_id"])
            secrets += [*person["participant"].values(), person["person_reference"], the_buyer["ean"]]

        async def both_confirmed() -> bool:
            for rid in registration_ids:
                answer = await client.get(f"{platform.url('registration')}/registrations/{rid}")
                if answer.status_code != 200 or answer.json()["status"] != "confirmed":
                    return False
            return True

        await wait_until(both_confirmed, what="both registrations confirmed")

        async def seats_shown() -> bool:
            answer = await client.get(f"{platform.url('catalogue')}/courses/{course_id}")
            return answer.status_code == 200

        await wait_until(seats_shown, what="the course detail answers")
        bodies = {
            "course list": (await client.get(f"{platform.url('catalogue')}/courses")).text,
            "course detail": (await client.get(f"{platform.url('catalogue')}/courses/{course_id}")).text,
        }
        for rid in registration_ids:
            bodies[f"status {rid}"] = (
                await client.get(f"{platform.url('registration')}/registrations/{rid}")
            ).text
        for service in SERVICES:
            bodies[f"{service} /metrics"] = (await client.get(f"{platform.url(service)}/metrics")).text
        # The admin list does show them: the check above is meaningful only if the data is really stored.
        admin = await client.get(
            f"{platform.url('registration')}/courses/{course_id}/registrations", headers=ADMIN_HEADERS
        )
        assert PEOPLE[0]["participant"]["email"] in admin.text
    for where, body in bodies.items():
        lowered = body.lower()
        for secret in secrets:
            assert str(secret).lower() not in lowered, f"{where} shows {secret!r}"
