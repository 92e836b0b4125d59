"""One real platform (four service processes, SMTP sink, isolated topics and databases) for the whole
hostile-input package: every test here attacks the same running processes, which is the point — after
all the garbage they must still be healthy and still apply valid events."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from support.platform import Platform, start_platform


@pytest.fixture(scope="package")
async def platform(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Platform]:
    started = await start_platform(tmp_path_factory.mktemp("hostile"))
    try:
        yield started
    finally:
        started.stop()


async def assert_healthy(platform: Platform) -> None:
    """Every service process is alive and answers /health/ready with 200."""
    async with httpx.AsyncClient(timeout=10) as client:
        for name, process in platform.services.items():
            assert process.proc.poll() is None, f"{name} died; see {process.log_path}"
            answer = await client.get(f"{process.url}/health/ready")
            assert answer.status_code == 200, f"{name} not ready: {answer.status_code} {answer.text}"


__all__ = ["Path", "assert_healthy"]
