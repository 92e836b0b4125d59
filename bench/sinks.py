"""Receivers the end-to-end benchmark runs as separate processes (so their CPU is not on the generator's
event loop and can be counted on their own).

    python bench/sinks.py smtp --port P --out FILE   SMTP server: one line per accepted message,
                                                     "<accept time_ns> <recipient> ...", written when the
                                                     DATA is complete, just before the 250 reply
                                                     (--line-by-line: aiosmtpd's own DATA reader, the
                                                     baseline of bench/sink_bench.py)
    python bench/sinks.py otlp --port P [--out FILE] OTLP/HTTP receiver that reads and discards exports
                                                     (counts requests and bytes, prints them on SIGTERM);
                                                     with --out, appends each trace export's body to FILE
                                                     (4-byte big-endian length, then the protobuf bytes)
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def run_smtp(port: int, out: str, line_by_line: bool = False) -> None:
    import uvloop
    from aiosmtpd.smtp import SMTP

    # The local stack's SMTP server class (aiosmtpd, reading the message text in chunks), with a handler
    # that records acceptance times instead of storing files.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "deploy" / "local"))
    from smtp_sink import BulkDataSMTP

    server_class = SMTP if line_by_line else BulkDataSMTP

    sink = open(out, "a", buffering=1)

    class Handler:
        async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
            accepted = time.time_ns()
            sink.write(f"{accepted} {' '.join(envelope.rcpt_tos)}\n")  # type: ignore[attr-defined]
            return "250 OK"

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: server_class(Handler(), hostname="bench-sink", enable_SMTPUTF8=True),
            host="127.0.0.1",
            port=port,
        )
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with server:
            await stop.wait()
        sink.close()

    uvloop.run(serve())


def run_otlp(port: int, out: str = "") -> None:
    counts = {"requests": 0, "bytes": 0}
    kept = open(out, "ab") if out else None
    writing = threading.Lock()  # one handler thread per connection

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            counts["requests"] += 1
            counts["bytes"] += len(body)
            if kept is not None and self.path.rstrip("/").endswith("/v1/traces"):
                with writing:
                    kept.write(len(body).to_bytes(4, "big") + body)
                    kept.flush()
            self.send_response(200)
            self.send_header("content-type", "application/x-protobuf")
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)

    def stop(*_: object) -> None:
        print(f"otlp requests={counts['requests']} bytes={counts['bytes']}", flush=True)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["smtp", "otlp"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", default="")
    parser.add_argument("--line-by-line", action="store_true")
    args = parser.parse_args()
    if args.mode == "smtp":
        run_smtp(args.port, args.out, args.line_by_line)
    else:
        run_otlp(args.port, args.out)
