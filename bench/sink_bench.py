"""The SMTP sink's CPU per email: its chunked DATA reader (deploy/local/smtp_sink.py, `BulkDataSMTP`) against
aiosmtpd's own line-by-line reader (the raw baseline), same handler (bench/sinks.py), same run, interleaved.

    flock /tmp/komponent-bench.lock .venv/bin/python bench/sink_bench.py [--emails 3000] [--rounds 2]

A client process sends the notifier's own confirmation emails (wire bytes, ~11.5 KB) with aiosmtplib's
`sendmail` over 4 connections to each sink in turn. Printed per round and as medians: emails/s and the
sink process's CPU (utime + stime) per email, and the ratio of the two readers. Not a test: no database or
broker needed; the figures swing with the box, so compare only within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "services" / "notifications" / "bench"))

import email_bench as emails  # noqa: E402

TICK_US = 1e6 / os.sysconf("SC_CLK_TCK")
READERS = {"line by line (aiosmtpd)": ["--line-by-line"], "chunked (BulkDataSMTP)": []}


def cpu_us(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * TICK_US


async def one(reader_args: list[str], messages: list[emails.ComposedEmail], out: Path) -> tuple[float, float]:
    port = emails.free_port()
    sink = await asyncio.create_subprocess_exec(
        *[sys.executable, str(ROOT / "bench" / "sinks.py"), "smtp", "--port", str(port), "--out", str(out)],
        *reader_args,
    )
    try:
        for _ in range(100):
            try:
                await emails.raw_sendmail(port, 1, messages[:1])
                break
            except OSError:
                await asyncio.sleep(0.05)
        await emails.raw_sendmail(port, 4, messages[:200])  # warm-up
        before = cpu_us(sink.pid)
        rate = await emails.raw_sendmail(port, 4, messages)
        return rate, (cpu_us(sink.pid) - before) / len(messages)
    finally:
        sink.terminate()
        await asyncio.wait_for(sink.wait(), timeout=10)


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--emails", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    messages = emails.serialised(emails.planned_confirmations(args.emails))
    size = sum(len(m.data) for m in messages) // len(messages)
    print(f"{args.emails} emails of ~{size} B, 4 connections, aiosmtplib sendmail", flush=True)
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in READERS}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for name, reader_args in READERS.items():
                rate, cpu = await one(reader_args, messages, Path(tmp) / "accepted.txt")
                results[name].append((rate, cpu))
                print(
                    f"  round {r + 1}  {name:24s} {rate:6.0f} emails/s  sink {cpu:5.0f} µs/email", flush=True
                )
    medians = {
        name: (statistics.median(x for x, _ in v), statistics.median(c for _, c in v))
        for name, v in results.items()
    }
    for name, (rate, cpu) in medians.items():
        print(f"median {name:24s} {rate:6.0f} emails/s  sink {cpu:5.0f} µs/email")
    (base_rate, base_cpu), (rate, cpu) = medians.values()
    print(
        f"chunked / line by line: emails/s x{rate / base_rate:.2f}, sink CPU per email x{cpu / base_cpu:.2f}"
    )


if __name__ == "__main__":
    asyncio.run(main())
