"""Schemathesis against every service's OpenAPI, as real processes, with the admin key so admin
endpoints are exercised beyond their auth check.

Checks, per generated request (positive and negative generation):
- never a 5xx;
- a 422 is `{"errors": [{"field", "rule", "message"}, ...]}` with at least one entry and non-empty field;
- any other 4xx carries a non-empty `detail` string (or the runtime's `errors` list, e.g. 413).

Failures are collected rather than raised inside Hypothesis (no shrinking: a minimal example is not worth
the minutes here); the test lists every distinct failure at the end.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from komponent_runtime.testing import ADMIN_HEADERS
from schemathesis.generation import GenerationMode
from support.platform import SERVICES, Platform

from .conftest import assert_healthy

pytestmark = pytest.mark.infra

EXAMPLES_PER_OPERATION = 12


def problem_with(status: int, body: bytes) -> str | None:
    """Why this response breaks the error contract, or None when it is fine."""
    if status >= 500:
        return f"{status} server error: {body[:300]!r}"
    if status < 400:
        return None
    try:
        payload: Any = json.loads(body)
    except ValueError:
        return f"{status} with a non-JSON body: {body[:200]!r}"
    if not isinstance(payload, dict):
        return f"{status} body is not an object: {body[:200]!r}"
    errors = payload.get("errors")
    if status == 422 or errors is not None:
        if not isinstance(errors, list) or not errors:
            return f"{status} without an errors list: {body[:300]!r}"
        for entry in errors:
            if not isinstance(entry, dict) or not all(
                isinstance(entry.get(k), str) and entry.get(k) for k in ("field", "rule", "message")
            ):
                return f"{status} errors entry without field/rule/message: {entry!r}"
        return None
    detail = payload.get("detail")
    if not isinstance(detail, str) or not detail.strip():
        return f"{status} without a clear detail: {body[:300]!r}"
    return None


def _fuzz(
    operation: Any, mode: GenerationMode, base: str, statuses: Counter[str], failures: list[str]
) -> int:
    calls = 0

    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode), authorised=st.integers(0, 3).map(bool))
    def run(case: Any, authorised: bool) -> None:
        nonlocal calls
        headers = dict(ADMIN_HEADERS) if authorised else {}
        response = case.call(base_url=base, headers=headers, timeout=15)
        calls += 1
        statuses[str(response.status_code)] += 1
        problem = problem_with(response.status_code, response.content)
        if problem is not None:
            failures.append(f"{case.method} {case.formatted_path}: {problem}")

    run()
    return calls


@pytest.mark.parametrize("service", SERVICES)
async def test_openapi_no_server_errors_and_named_fields(platform: Platform, service: str) -> None:
    base = platform.url(service)
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    failures: dict[str, list[str]] = {}
    statuses: Counter[str] = Counter()
    calls = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            key = f"{operation.label} [{mode.value}]"
            try:
                calls += _fuzz(operation, mode, base, statuses, failures.setdefault(key, []))
            except Unsatisfiable:
                pass  # nothing to make negative (an operation without parameters or body)
    failures = {k: v for k, v in failures.items() if v}
    print(f"\n{service}: {calls} calls, statuses {dict(sorted(statuses.items()))}")
    await assert_healthy(platform)
    report = {op: sorted(set(msgs))[:3] for op, msgs in failures.items()}
    assert not failures, f"{service}: {json.dumps(report, indent=1, ensure_ascii=False)}"
