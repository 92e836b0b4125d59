"""Domain metrics at the real process's `/metrics`: registrations by outcome, seats left per course."""

from __future__ import annotations

from typing import Any

import pytest
from komponent_runtime.testing import wait_until

pytestmark = pytest.mark.infra


def _sample(text: str, name: str, label: str) -> float | None:
    values = [
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name + "{") and label in line
    ]
    return sum(values) if values else None


async def test_outcomes_and_seats_left_are_exported(stack: Any) -> None:
    # OTEL_SDK_DISABLED=true (the stack's default) turns the SDK's meters into no-ops too; no OTLP
    # endpoint is configured, so spans stay in the process.
    await stack.start(OTEL_SDK_DISABLED="false")
    course_id = await stack.publish_course(capacity=2)
    await stack.produce([stack.registration(course_id, i) for i in range(3)])
    await wait_until(lambda: _count_is(stack, course_id, 3), what="three registrations allocated")

    async with stack.http() as client:
        text = (await client.get("/metrics")).text
    assert _sample(text, "komponent_registrations_total", 'outcome="confirmed"') == 2
    assert _sample(text, "komponent_registrations_total", 'outcome="waitlisted"') == 1
    assert _sample(text, "komponent_seats_left", f'course_id="{course_id}"') == 0
    # Ids and kinds only: nothing else is a label of the domain instruments.
    for line in text.splitlines():
        if line.startswith(("komponent_registrations_total{", "komponent_seats_left{")):
            assert "@" not in line


async def _count_is(stack: Any, course_id: Any, n: int) -> bool:
    return bool(await stack.count(course_id) == n)
