"""The local SMTP server's chunked DATA reader (deploy/local/smtp_sink.py, `BulkDataSMTP`) against aiosmtpd's
own line-by-line `smtp_DATA`: for the same bytes on the wire, split into the same writes, both servers give
the same replies and hand the same message text to their handler.

Both servers run in the test's event loop on 127.0.0.1; nothing else is needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import itertools
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]
SIZE_LIMIT = 3000  # small, so the 552 path is cheap to reach
EXAMPLES = int(os.environ.get("SINK_DATA_EXAMPLES", "150"))  # more for a longer search


def _load_sink() -> ModuleType:
    spec = importlib.util.spec_from_file_location("smtp_sink", ROOT / "deploy" / "local" / "smtp_sink.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["smtp_sink"] = module
    spec.loader.exec_module(module)
    return module


BulkDataSMTP = _load_sink().BulkDataSMTP


class Recorder:
    def __init__(self) -> None:
        self.texts: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.texts.append(envelope.original_content)
        return "250 stored"


async def _session(port: int, writes: Sequence[bytes], *, quit: bool) -> list[bytes]:
    """EHLO, MAIL, RCPT, DATA, then `writes` one by one (with a pause between, so the server reads them
    separately) and, with `quit`, a QUIT; returns every reply until the server closed the connection (or
    was quiet for a while)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    replies: list[bytes] = [await reader.readline()]
    for command in (
        b"EHLO test\r\n",
        b"MAIL FROM:<a@b.example>\r\n",
        b"RCPT TO:<c@d.example>\r\n",
        b"DATA\r\n",
    ):
        writer.write(command)
        while True:  # multi-line replies (EHLO) end with a line whose 4th byte is a space
            line = await reader.readline()
            replies.append(line)
            if line[3:4] != b"-":
                break
    for piece in writes:
        writer.write(piece)
        await writer.drain()
        await asyncio.sleep(0.002)
    if quit:
        with contextlib.suppress(ConnectionError):  # the text may have carried its own QUIT
            writer.write(b"QUIT\r\n")
            await writer.drain()
    while True:
        try:
            line = await asyncio.wait_for(reader.readline(), 0.3)
        except TimeoutError:
            break
        if not line:
            break
        replies.append(line)
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()
    return replies


async def _both(writes: Sequence[bytes], *, quit: bool = True) -> tuple[tuple[list[bytes], list[bytes]], ...]:
    results = []
    for server_class in (SMTP, BulkDataSMTP):
        recorder = Recorder()
        server = await asyncio.get_running_loop().create_server(
            lambda cls=server_class, rec=recorder: cls(  # type: ignore[misc]
                rec, hostname="sink", enable_SMTPUTF8=True, data_size_limit=SIZE_LIMIT
            ),
            "127.0.0.1",
            0,
        )
        port = server.sockets[0].getsockname()[1]
        try:
            replies = await _session(port, writes, quit=quit)
        finally:
            server.close()
            await server.wait_closed()
        results.append((replies, recorder.texts))
    return tuple(results)


def _split(wire: bytes, cuts: Sequence[int]) -> list[bytes]:
    points = sorted({c % (len(wire) + 1) for c in cuts} | {0, len(wire)})
    return [wire[a:b] for a, b in itertools.pairwise(points) if b > a]


CASES = {
    "plain": b"Subject: hej\r\n\r\nKursusbekr\xc3\xa6ftelse\r\n.\r\n",
    "empty text": b".\r\n",
    "dot-stuffed lines": b"..hidden\r\n...\r\n..\r\nend\r\n.\r\n",
    "bare LF and CR inside lines": b"a\nb\rc\r\n.\r\n",
    "line of 999 octets with CRLF": b"x" * 997 + b"\r\n.\r\n",
    "line of 1000 octets with CRLF": b"x" * 998 + b"\r\n.\r\n",
    "line of 1001 octets with CRLF": b"x" * 999 + b"\r\n.\r\n",
    "line of 1002 octets with CRLF": b"x" * 1000 + b"\r\n.\r\n",
    "text at the size limit": (b"y" * 98 + b"\r\n") * (SIZE_LIMIT // 100) + b".\r\n",
    "text over the size limit": (b"y" * 98 + b"\r\n") * (SIZE_LIMIT // 100 + 1) + b".\r\n",
    "far over the size limit": (b"z" * 98 + b"\r\n") * 300 + b".\r\n",
    # Both limits broken: the reply names the one a line-by-line reader meets first.
    "a long line, then over the size limit": b"x" * 1500 + b"\r\n" + (b"y" * 98 + b"\r\n") * 30 + b".\r\n",
    "over the size limit, then a long line": (b"y" * 98 + b"\r\n") * 31 + b"x" * 1500 + b"\r\n.\r\n",
    "the size limit passed by a line too long for its CRLF": (b"y" * 98 + b"\r\n") * 20
    + b"x" * 1000
    + b"\r\n.\r\n",
    "the size limit passed inside a long line": (b"y" * 98 + b"\r\n") * 29 + b"x" * 1500 + b"\r\n.\r\n",
    "next command in the same write": b"hej\r\n.\r\nNOOP\r\nQUIT\r\n",
    "a second message after a refused one": b"x" * 1200
    + b"\r\n.\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<e@f.example>\r\nDATA\r\nsecond\r\n.\r\n",
}


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("cuts", [(), (1, 2, 3, 4, 5, 6), (-1, -2, -3, -4, -5), (7, 14, 21, 28, 35)])
async def test_same_replies_and_text_as_aiosmtpd(name: str, cuts: tuple[int, ...]) -> None:
    wire = CASES[name]
    (line_by_line, texts_lines), (chunked, texts_chunked) = await _both(_split(wire, cuts))
    assert chunked == line_by_line
    assert texts_chunked == texts_lines


async def test_the_split_terminator_is_found_in_every_position() -> None:
    wire = b"first\r\n..second\r\n.\r\nQUIT\r\n"
    for cut in range(len(wire)):
        (reference, texts_reference), (chunked, texts_chunked) = await _both([wire[:cut], wire[cut:]])
        assert chunked == reference, cut
        assert texts_chunked == texts_reference == [b"first\r\n.second\r\n"], cut


async def test_a_connection_closed_before_the_final_dot_stores_nothing() -> None:
    (_, texts_reference), (_, texts_chunked) = await _both([b"half a message\r\n"], quit=False)
    assert texts_reference == texts_chunked == []


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    body=st.lists(st.sampled_from([b"a", b".", b"\r", b"\n", b"\r\n", b"\xc3\xa6", b"x" * 400]), max_size=40),
    cuts=st.lists(st.integers(min_value=0, max_value=20_000), max_size=4),
)
def test_any_text_any_split(body: list[bytes], cuts: list[int]) -> None:
    # The text as a client sends it (dot-stuffed, ending in CRLF), then the final dot and a QUIT.
    text = b"".join(body)
    stuffed = b"\r\n".join(b"." + line if line.startswith(b".") else line for line in text.split(b"\r\n"))
    wire = stuffed + (b"" if stuffed.endswith(b"\r\n") or not stuffed else b"\r\n") + b".\r\nQUIT\r\n"
    (reference, texts_reference), (chunked, texts_chunked) = asyncio.run(_both(_split(wire, cuts)))
    assert chunked == reference
    assert texts_chunked == texts_reference
