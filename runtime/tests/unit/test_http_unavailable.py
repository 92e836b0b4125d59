"""A request that runs into PostgreSQL (or the network to it) being away is answered 503 with Retry-After,
not 500; any other failure stays a 500."""

from __future__ import annotations

import asyncpg
import httpx
import pytest
from asyncpg import exceptions as pg
from komponent_runtime.http import RETRY_AFTER_UNAVAILABLE_SECONDS, make_http_app


async def always_ready() -> dict[str, bool]:
    return {"database": True}


def app_raising(error: BaseException) -> httpx.AsyncClient:
    app = make_http_app("test", readiness=always_ready)

    @app.post("/registrations")
    async def register() -> None:
        raise error

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://test")


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError(111, "Connect call failed"),
        pg.CannotConnectNowError("the database system is starting up"),
        pg.AdminShutdownError("terminating connection due to administrator command"),
        pg.CrashShutdownError("terminating connection because of crash of another server process"),
        asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        TimeoutError(),
        asyncpg.InternalClientError("cannot switch to state 12; another operation (2) is in progress"),
    ],
    ids=type,
)
async def test_a_backing_service_away_is_a_503_with_retry_after(error: BaseException) -> None:
    async with app_raising(error) as client:
        answer = await client.post("/registrations", json={})
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == str(RETRY_AFTER_UNAVAILABLE_SECONDS)
    assert answer.json() == {
        "error": "service_unavailable",
        "detail": "a backing service is unavailable; retry",
    }


async def test_any_other_failure_is_still_a_500() -> None:
    async with app_raising(RuntimeError("a bug")) as client:
        answer = await client.post("/registrations", json={})
    assert answer.status_code == 500
