"""A background loop that dies of an unexpected error is logged and started again, never lost silently."""

from __future__ import annotations

import asyncio
import logging

import pytest
from komponent_runtime.service import _supervised


async def test_a_dying_background_loop_is_restarted_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    runs = 0
    second_run = asyncio.Event()

    async def flaky_loop() -> None:
        nonlocal runs
        runs += 1
        if runs == 1:
            raise RuntimeError("another operation is in progress")
        second_run.set()
        await asyncio.Event().wait()  # then it keeps working

    task = asyncio.create_task(_supervised(flaky_loop))
    with caplog.at_level(logging.ERROR):
        await asyncio.wait_for(second_run.wait(), timeout=10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert runs == 2
    assert any("background loop died" in r.getMessage() for r in caplog.records)
