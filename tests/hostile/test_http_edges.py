"""Oversized bodies and header floods against every service process, over raw sockets.

- A declared 10 MB body gets 413 before the client has sent more than a sliver of it (the runtime's
  BodyLimit answers from Content-Length); a chunked 10 MB body without Content-Length gets 413 once the
  limit is passed (the server stops reading long before 10 MB).
- Thousands of headers, or one huge header, are refused: uvicorn's h11 bounds only a request head that
  arrives incomplete (16 KiB; 400 or a closed connection), so a flood arriving in one read got through
  (5000 headers answered 200); the runtime's BodyLimit now answers 431 past 100 headers or 16 KiB.
- Afterwards every service is still healthy.
"""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import pytest
from support.platform import SERVICES, Platform

from .conftest import assert_healthy

pytestmark = pytest.mark.infra

TEN_MB = 10 * 1024 * 1024
# Notifications has no endpoint that takes a body (its resend answers without reading one).
BODY_READERS = ("catalogue", "registration", "billing")
POST_PATHS = {
    "catalogue": "/admin/courses",
    "registration": "/courses/5b1f3c1e-4a57-4d0e-9a43-0c2b8f3d2a10/registrations",
    "billing": "/invoices/F-2026-00001/payments",
    "notifications": "/emails/00000000-0000-0000-0000-000000000000/resend",
}


def _connect(url: str) -> socket.socket:
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=15)
    return sock


def _read_response(sock: socket.socket) -> bytes:
    data = b""
    try:
        while b"\r\n\r\n" not in data or len(data) < 4096:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
            if b"\r\n\r\n" in data:
                head, _, body = data.partition(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":", 1)[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    ),
                    None,
                )
                if length is not None and len(body) >= length:
                    break
    except (ConnectionResetError, TimeoutError):
        pass
    return data


def _status(response: bytes) -> int | None:
    if not response.startswith(b"HTTP/1.1 "):
        return None
    return int(response.split(b" ", 2)[1])


def _head(service: str, path: str, extra: str) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: {service}\r\nAuthorization: Bearer local-dev-admin-key\r\n"
        f"Content-Type: application/json\r\n{extra}\r\n"
    ).encode()


@pytest.mark.parametrize("service", SERVICES)
def test_declared_ten_megabyte_body_is_refused_before_it_is_sent(platform: Platform, service: str) -> None:
    with _connect(platform.url(service)) as sock:
        sock.sendall(_head(service, POST_PATHS[service], f"Content-Length: {TEN_MB}\r\n"))
        sock.sendall(b"{" + b" " * 1000)  # a sliver of the promised 10 MB; the rest never comes
        response = _read_response(sock)
    assert _status(response) == 413, response[:300]
    assert b'"field":"<body>"' in response and b"max_size" in response


@pytest.mark.parametrize("service", BODY_READERS)
def test_chunked_ten_megabyte_body_is_cut_off(platform: Platform, service: str) -> None:
    chunk = b"x" * 65536
    sent = 0
    with _connect(platform.url(service)) as sock:
        sock.sendall(_head(service, POST_PATHS[service], "Transfer-Encoding: chunked\r\n"))
        try:
            while sent < TEN_MB:
                sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                sent += len(chunk)
            sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed: it did not read the rest
        response = _read_response(sock)
    assert _status(response) == 413, (sent, response[:300])


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize("flood", ["5000 headers", "one 1 MB header"])
def test_header_floods_are_refused_and_the_server_survives(
    platform: Platform, service: str, flood: str
) -> None:
    if flood == "5000 headers":
        extra = "".join(f"X-Flood-{i}: {i}\r\n" for i in range(5000))
    else:
        extra = f"X-Huge: {'a' * 1024 * 1024}\r\n"
    with _connect(platform.url(service)) as sock:
        try:
            sock.sendall(f"GET /health/live HTTP/1.1\r\nHost: {service}\r\n{extra}\r\n".encode())
        except (BrokenPipeError, ConnectionResetError):
            pass
        response = _read_response(sock)
    status = _status(response)
    # Refused: h11 answers 400 ("Invalid HTTP request received.") or drops the connection, or the runtime
    # answers 431.
    assert status in {None, 400, 431}, response[:300]


async def test_services_healthy_after_the_floods(platform: Platform) -> None:
    await assert_healthy(platform)
