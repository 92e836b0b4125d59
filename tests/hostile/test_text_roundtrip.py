"""SQL metacharacters and Unicode in text fields, stored and echoed back intact, through the real processes:
catalogue create → admin and public read (and search); registration intake → admin read; the confirmation
email at the SMTP sink (plain text intact, HTML part escaped). NUL, which PostgreSQL text cannot hold, is
refused with 422 naming the field, never a 500."""

from __future__ import annotations

import html
import json
import uuid
from datetime import datetime
from typing import Any

import httpx
import pytest
from komponent_catalogue.adapters.seed_page import load_course_page
from komponent_catalogue.domain.demo_dates import shift_to_future
from komponent_catalogue.domain.wall_clock import COPENHAGEN
from komponent_catalogue.load_seed import create_request
from komponent_contracts.examples import buyer
from komponent_runtime.testing import ADMIN_HEADERS, wait_until
from support.platform import SEED_PAGE, Platform

from .conftest import assert_healthy

pytestmark = pytest.mark.infra

PIECES = (
    "'); DROP TABLE courses;--",
    "Robert'); --",
    "emoji 🎓🙂👩‍🏫",
    "RTL مرحبا שלום",
    "combining e\u0301 a\u0308 A\u030a",
    "4-byte 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𠜎",
    "<b>&amp;</b> \"q\" 'a'",
    "Æøå ÆØÅ",
)
HOSTILE = " | ".join(PIECES)
SHORT = "Robert'); DROP TABLE registrations;-- 🎓 שלום e\u0301 𠜎 <i>&</i>"


def _contains(document: Any, text: str) -> bool:
    if isinstance(document, str):
        return text in document
    if isinstance(document, dict):
        return any(_contains(v, text) for v in document.values())
    if isinstance(document, list):
        return any(_contains(v, text) for v in document)
    return False


def _course_body(title: str) -> tuple[str, dict[str, Any]]:
    course = shift_to_future(load_course_page(SEED_PAGE), datetime.now(COPENHAGEN).date())
    body = create_request(course)
    body["details"]["title"] = title
    body["details"]["target_group"] = title
    body["details"]["introduction"] = [title, *PIECES]
    return str(uuid.uuid4()), body


def _registration(name: str, address: str) -> dict[str, Any]:
    return {
        "participant": {"name": name, "email": address, "job_title": SHORT},
        "buyer": {**buyer().model_dump(mode="json"), "person_reference": SHORT, "order_number": "PO-'; --"},
        "terms_version": "2026-01",
    }


def _names_field(answer: httpx.Response, *fragments: str) -> None:
    assert answer.status_code == 422, (answer.status_code, answer.text[:300])
    fields = [e["field"] for e in answer.json()["errors"]]
    assert any(all(f in field for f in fragments) for field in fields), fields


async def test_hostile_text_round_trips_through_catalogue_registration_and_email(platform: Platform) -> None:
    catalogue, registration = platform.url("catalogue"), platform.url("registration")
    course_id, body = _course_body(HOSTILE)
    address = f"hostile.{uuid.uuid4().hex[:8]}@roskilde.dk"
    async with httpx.AsyncClient(timeout=15, headers=ADMIN_HEADERS) as client:
        created = await client.put(f"{catalogue}/admin/courses/{course_id}", json=body)
        assert created.status_code == 201, created.text[:500]
        shown = (await client.get(f"{catalogue}/admin/courses/{course_id}")).json()
        assert shown["details"]["title"] == HOSTILE
        assert shown["details"]["target_group"] == HOSTILE
        assert shown["details"]["introduction"] == [HOSTILE, *PIECES]
        published = await client.post(f"{catalogue}/admin/courses/{course_id}/publish")
        assert published.status_code == 200, published.text[:500]
        public = await client.get(f"{catalogue}/courses/{course_id}")
        assert public.status_code == 200 and public.json()["details"]["title"] == HOSTILE
        for piece in PIECES:
            found = await client.get(f"{catalogue}/courses", params={"q": piece, "limit": 200})
            assert found.status_code == 200, (piece, found.status_code, found.text[:300])
        found = await client.get(f"{catalogue}/courses", params={"q": "DROP TABLE courses", "limit": 200})
        assert any(c["title"] == HOSTILE for c in found.json()), (
            "search by the hostile words finds the course"
        )

        async def known() -> bool:
            answer = await client.get(f"{registration}/courses/{course_id}/registrations")
            return answer.status_code == 200

        await wait_until(known, what="registration knows the hostile course")
        accepted = await client.post(
            f"{registration}/courses/{course_id}/registrations", json=_registration(HOSTILE, address)
        )
        assert accepted.status_code == 202, accepted.text[:500]
        registration_id = accepted.json()["registration_id"]

        async def listed() -> bool:
            answer = await client.get(f"{registration}/courses/{course_id}/registrations")
            return answer.status_code == 200 and _contains(answer.json(), registration_id)

        await wait_until(listed, what="the hostile registration in the admin read")
        listing = (await client.get(f"{registration}/courses/{course_id}/registrations")).json()
        assert _contains(listing, HOSTILE), json.dumps(listing, ensure_ascii=False)[:1000]

    def emails() -> list[Any]:
        return [m for m in platform.smtp.messages() if address in str(m["To"])]

    async def arrived() -> bool:
        return bool(emails())

    await wait_until(arrived, timeout=60, what="the confirmation email for the hostile participant")
    message = emails()[0]
    text = message.get_body(preferencelist=("plain",)).get_content()
    markup = message.get_body(preferencelist=("html",)).get_content()
    assert HOSTILE in text, "participant name and course title intact in the plain-text part"
    assert HOSTILE in html.unescape(markup), "intact in the HTML part once unescaped"
    assert "<b>&amp;</b>" not in markup, "user text must not become markup"


async def test_nul_is_refused_with_422_naming_the_field(platform: Platform) -> None:
    catalogue, registration = platform.url("catalogue"), platform.url("registration")
    async with httpx.AsyncClient(timeout=15, headers=ADMIN_HEADERS) as client:
        course_id, body = _course_body("Kursus\x00med NUL")
        _names_field(await client.put(f"{catalogue}/admin/courses/{course_id}", json=body), "title")
        course_id, body = _course_body("Kursus uden NUL")
        body["details"]["introduction"] = ["afsnit\x00"]
        _names_field(await client.put(f"{catalogue}/admin/courses/{course_id}", json=body), "introduction")
        searched = await client.get(f"{catalogue}/courses", params={"q": "a\x00b"})
        assert searched.status_code < 500, searched.text[:300]
        if searched.status_code != 200:
            _names_field(searched, "q")
        refused = await client.post(
            f"{registration}/courses/{uuid.uuid4()}/registrations",
            json=_registration("Navn\x00Efternavn", "nul@roskilde.dk"),
        )
        _names_field(refused, "participant", "name")
        for name, process in platform.services.items():
            listing = await client.get(f"{process.url}/openapi.json")
            assert listing.status_code == 200, name
    await assert_healthy(platform)
