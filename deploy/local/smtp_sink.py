"""A real SMTP server for the local stack that stores every accepted message as an ``.eml`` file.

Local development and tests only: no authentication, no TLS, no relaying; it accepts mail for any
recipient on 127.0.0.1 and keeps it.

Stored files:

* one file per accepted message, named ``<ns timestamp>-<counter>.eml`` (zero-padded, so a plain
  sort is arrival order); the timestamp never goes backwards within one process;
* the message bytes exactly as received (8-bit/UTF-8 content untouched), preceded by one
  ``X-Envelope-From`` header and one ``X-Envelope-To`` header per accepted envelope recipient, so
  Bcc recipients stay visible;
* written to a dot-prefixed temporary file, fsynced and renamed, so a reader globbing ``*.eml``
  never sees a partial message. The file exists before the server answers ``250`` to DATA.

Fault injection (off by default): a recipient whose address matches ``--reject-permanent REGEX``
(``re.search``) is refused with ``550``, one matching ``--reject-temporary REGEX`` with ``451``.

Logs one JSON line per event on stdout. Addresses are not logged (no personal data in logs).

The protocol is aiosmtpd's, except the message text after DATA (`BulkDataSMTP`): aiosmtpd reads it one
line per await, which cost this server ~0.6 ms of CPU for a 10 KB email, more than the notifier spends
sending it. The benchmark's sink (bench/sinks.py) uses the same class.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import signal
import sys
import time
from pathlib import Path
from typing import Any

import uvloop
from aiosmtpd.smtp import MISSING, SMTP, Envelope, Session

DEFAULT_MAILDIR = Path(__file__).resolve().parents[2] / "var" / "mail"


def log(event: str, **fields: Any) -> None:
    record = {"ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "event": event, **fields}
    print(json.dumps(record, ensure_ascii=False), flush=True)


_END_OF_DATA = b"\r\n.\r\n"
_CHUNK = 64 * 1024


class BulkDataSMTP(SMTP):
    """aiosmtpd's SMTP server, reading the message text after DATA in chunks instead of line by line.

    What it accepts and stores is what aiosmtpd's own `smtp_DATA` would (tests/infra/test_smtp_sink_data.py
    compares both on the same input): the text up to the first CRLF "." CRLF, with the leading dot of
    every dot-stuffed line removed (RFC 5321 4.5.2); 500 when a line is longer than `line_length_limit`,
    552 when the text is larger than `data_size_limit` (the first limit reached, as aiosmtpd reads), each
    only after the whole text was read.
    """

    async def smtp_DATA(self, arg: str) -> None:
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        try:
            text = await self._read_text()
        except _Refused as refused:
            self._new_envelope()
            await self.push(refused.reply)
            return
        if text is None:
            return  # the connection closed before the final dot: nothing was accepted
        # The CRLF in front makes the first line dot-unstuffed like the others; it is cut off again.
        original = (b"\r\n" + text).replace(b"\r\n.", b"\r\n")[2:]
        if self._decode_data:
            try:
                self.envelope.content = original.decode(
                    *(("utf-8", "surrogateescape") if self.enable_SMTPUTF8 else ("ascii", "strict"))
                )
            except UnicodeDecodeError:
                await self.push("500 Error: strict ASCII mode")
                return
        else:
            self.envelope.content = original
        self.envelope.original_content = original
        status = await self._call_handler_hook("DATA") if "DATA" in self._handle_hooks else MISSING
        self._new_envelope()
        await self.push("250 OK" if status is MISSING else status)

    def _new_envelope(self) -> None:
        self._set_post_data_state()  # type: ignore[no-untyped-call]

    async def _read_text(self) -> bytes | None:
        """The text after 354, up to and including the CRLF before the final dot (still dot-stuffed), or
        None at end of stream. Raises `_Refused`, after reading to the final dot, for a text aiosmtpd
        refuses; once refused, what follows is not kept."""
        reader = self._reader
        # Starts with the CRLF that ended the DATA command, so an empty text (".\r\n" at once) ends it too.
        received = bytearray(b"\r\n")
        lines = _LineCheck(self.data_size_limit, self.line_length_limit)
        checked = 2  # where the first line not yet checked starts
        while True:
            chunk = await reader.read(_CHUNK)
            if not chunk:
                return None
            # Search the new bytes and the 4 before them, where a terminator split across reads begins.
            searched_from = max(len(received) - 4, 0)
            received += chunk
            end = received.find(_END_OF_DATA, searched_from)
            if lines.refusal is None:
                checked = lines.check(received, checked, end + 2 if end >= 0 else len(received))
            if end >= 0:
                break
            if lines.refusal is not None:
                del received[:-4]  # refused already: keep only what a terminator may begin in
        # Bytes after the final dot belong to the next command: hand them back to the command reader.
        if rest := received[end + 5 :]:
            reader._buffer[:0] = rest  # type: ignore[attr-defined]  # no unread(); the buffer is a bytearray
        if lines.refusal is not None:
            raise _Refused(lines.refusal)
        return bytes(received[2 : end + 2])


class _LineCheck:
    """aiosmtpd's limits on the text, applied in its order: it reads line by line and keeps the FIRST
    limit a line breaks. A line longer than `line_length` is refused before its octets are counted when
    its content alone is (aiosmtpd's reader gives up on it), after them when only its CRLF makes it too
    long; the text is too large once the octets counted pass `size` (none: no limit)."""

    def __init__(self, size: int | None, line_length: int) -> None:
        self.size = size
        self.line_length = line_length
        self.counted = 0
        self.refusal: str | None = None

    def check(self, received: bytearray, start: int, stop: int) -> int:
        """Check the complete lines in `received[start:stop]`; return where the first unchecked one starts.
        An unfinished line already too long for its CRLF to be found within the limit is refused."""
        *complete, unfinished = bytes(received[start:stop]).split(b"\r\n")
        octets = sum(map(len, complete)) + 2 * len(complete)
        longest = max(map(len, complete), default=0)
        if longest + 2 <= self.line_length and not (self.size and self.counted + octets > self.size):
            self.counted += octets  # every line within both limits: the usual case, no loop
        else:
            for line in complete:
                if len(line) > self.line_length:
                    return self._refuse(_LINE_TOO_LONG)
                self.counted += len(line) + 2
                if self.size and self.counted > self.size:
                    return self._refuse(_TOO_MUCH_DATA)
                if len(line) + 2 > self.line_length:
                    return self._refuse(_LINE_TOO_LONG)
        if len(unfinished) > self.line_length:
            return self._refuse(_LINE_TOO_LONG)
        return stop - len(unfinished)

    def _refuse(self, reply: str) -> int:
        self.refusal = reply
        return 0


_LINE_TOO_LONG = "500 Line too long (see RFC5321 4.5.3.1.6)"
_TOO_MUCH_DATA = "552 Error: Too much mail data"


class _Refused(Exception):
    def __init__(self, reply: str) -> None:
        super().__init__(reply)
        self.reply = reply


class MaildirHandler:
    """aiosmtpd handler: recipient fault injection and atomic .eml storage."""

    def __init__(
        self,
        maildir: Path,
        reject_permanent: re.Pattern[str] | None = None,
        reject_temporary: re.Pattern[str] | None = None,
    ) -> None:
        self.maildir = maildir
        self.reject_permanent = reject_permanent
        self.reject_temporary = reject_temporary
        self._last_ns = 0
        self._counter = 0

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if self.reject_permanent is not None and self.reject_permanent.search(address):
            log("rcpt_rejected", code=550)
            return "550 5.1.1 Mailbox unavailable (injected permanent failure)"
        if self.reject_temporary is not None and self.reject_temporary.search(address):
            log("rcpt_rejected", code=451)
            return "451 4.3.0 Temporary failure (injected), try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    def _next_name(self) -> str:
        # Strictly increasing even if the wall clock steps back, so names sort by arrival.
        now = max(time.time_ns(), self._last_ns + 1)
        self._last_ns = now
        self._counter += 1
        return f"{now:020d}-{self._counter:06d}.eml"

    def _store(self, name: str, data: bytes) -> Path:
        final = self.maildir / name
        tmp = self.maildir / f".{name}.tmp"
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
        # Persist the rename itself, so an acknowledged message survives a crash of the machine.
        dir_fd = os.open(self.maildir, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return final

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        if isinstance(content, str):  # only with decode_data=True, which we do not use
            content = content.encode("utf-8", "surrogateescape")
        eol = b"\r\n" if b"\r\n" in content[:4096] else b"\n"
        headers = [b"X-Envelope-From: <" + _header_safe(envelope.mail_from or "") + b">"]
        headers += [b"X-Envelope-To: <" + _header_safe(rcpt) + b">" for rcpt in envelope.rcpt_tos]
        data = eol.join(headers) + eol + content
        name = self._next_name()
        try:
            path = await asyncio.to_thread(self._store, name, data)
        except OSError as exc:
            log("store_failed", error=type(exc).__name__)
            return "451 4.3.0 Could not store the message"
        log("message_stored", file=path.name, bytes=len(data), recipients=len(envelope.rcpt_tos))
        return "250 Message accepted for delivery"


def _header_safe(address: str) -> bytes:
    # Addresses may be UTF-8 (SMTPUTF8); CR/LF must never split the header.
    return address.replace("\r", "").replace("\n", "").encode("utf-8", "surrogateescape")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=2525, help="0 picks a free port (logged at start)")
    parser.add_argument("--maildir", type=Path, default=DEFAULT_MAILDIR)
    parser.add_argument("--reject-permanent", type=re.compile, metavar="REGEX", default=None)
    parser.add_argument("--reject-temporary", type=re.compile, metavar="REGEX", default=None)
    return parser.parse_args(argv)


def prepare_maildir(maildir: Path) -> Path:
    maildir = maildir.resolve()
    maildir.mkdir(parents=True, exist_ok=True)
    # Leftovers of a crash mid-write were never acknowledged to a client; drop them.
    for stale in maildir.glob(".*.eml.tmp"):
        stale.unlink(missing_ok=True)
    return maildir


async def serve(args: argparse.Namespace, maildir: Path) -> None:
    handler = MaildirHandler(maildir, args.reject_permanent, args.reject_temporary)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: BulkDataSMTP(handler, enable_SMTPUTF8=True, hostname="komponent-smtp-sink"),
        host=args.host,
        port=args.port,
    )
    port = server.sockets[0].getsockname()[1]
    log(
        "listening",
        host=args.host,
        port=port,
        maildir=str(maildir),
        reject_permanent=args.reject_permanent.pattern if args.reject_permanent else None,
        reject_temporary=args.reject_temporary.pattern if args.reject_temporary else None,
    )
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()
        server.close()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(server.wait_closed(), timeout=5)
    log("stopped")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    uvloop.run(serve(args, prepare_maildir(args.maildir)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
