"""Background loops: delivery to the access point and the reminder run. Thin: a pass, then a pause."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

log = logging.getLogger(__name__)


def periodic(
    name: str, one_pass: Callable[[], Awaitable[int]], every_seconds: float
) -> Callable[[], Coroutine[Any, Any, None]]:
    """A loop that runs `one_pass` forever; a failing pass is logged and tried again next time."""

    async def loop() -> None:
        while True:
            try:
                done = await one_pass()
                if done:
                    log.info("%s pass", name, extra={"done": done})
                    continue  # there may be more waiting
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s pass failed; retrying", name)
            await asyncio.sleep(every_seconds)

    loop.__name__ = name
    return loop
