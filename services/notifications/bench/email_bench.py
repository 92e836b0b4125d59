"""Emails handed to SMTP per second: the notifier (ledger → compose → SMTP pool) against raw aiosmtplib
with the same number of connections, to the same SMTP sink, interleaved in one run.

    PGPORT=55432 .venv/bin/python services/notifications/bench/email_bench.py --emails 2000 --pool-size 4

Needs PostgreSQL (a scratch database is created and dropped). The SMTP sink is aiosmtpd's discarding
handler in a subprocess on a free port, so the sink's CPU is not on the measuring event loop. Baseline S1
of docs/performance.md; target notifier ≥ 0.8 × raw.

Raw: the very same messages, composed before the clock starts, sent by `pool_size` long-lived aiosmtplib
connections. Notifier: the same emails planned into a fresh send ledger before the clock starts; the clock
runs from the first claim until the last verdict (and its EmailSent outbox row) is committed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from email.message import EmailMessage

import aiosmtplib
import asyncpg
from komponent_contracts import events as ev
from komponent_contracts.examples import NOW, buyer, course
from komponent_notifications.adapters import contract_mapping as mapping
from komponent_notifications.adapters import repository as repo
from komponent_notifications.adapters.mime import MailIdentity, MimeComposer
from komponent_notifications.adapters.rendering import EmailRenderer
from komponent_notifications.adapters.smtp_pool import SmtpPool, SmtpSettings
from komponent_notifications.app import MIGRATIONS
from komponent_notifications.domain.course import ContactPerson
from komponent_notifications.domain.policy import NotificationPolicy
from komponent_notifications.service_layer.building import build_email
from komponent_notifications.service_layer.planning import PlannedEmail, plan_registration_outcome
from komponent_notifications.service_layer.sender import EmailSender, SenderConfig
from komponent_runtime.clock import SystemClock
from komponent_runtime.database import migrate
from komponent_runtime.settings import DatabaseSettings
from komponent_runtime.testing import create_database

# CPU time of this process per email (excludes the sink's and PostgreSQL's): robust against a busy machine,
# where wall-clock rates swing with other load.
CPU_US: dict[str, list[float]] = {"raw": [], "notifier": []}
IDENTITY = MailIdentity("kurser@komponent.dk", "Komponent", "mail.komponent.dk")
FALLBACK = ContactPerson("Komponent", "kurser@komponent.dk", "")


class NoDocuments:
    async def pdf(self, pdf_url: str) -> bytes:
        raise AssertionError("the benchmark sends confirmations only")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_sink(port: int) -> subprocess.Popen[bytes]:
    sink = subprocess.Popen(
        [sys.executable, "-m", "aiosmtpd", "-n", "-c", "aiosmtpd.handlers.Sink", "-l", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return sink
        time.sleep(0.05)
    sink.kill()
    raise SystemExit("the SMTP sink did not start")


def planned_confirmations(n: int) -> list[PlannedEmail]:
    planned: list[PlannedEmail] = []
    for i in range(n):
        event = ev.RegistrationConfirmed(
            registration_id=uuid.uuid4(),
            course_id=course().course_id,
            occurred_at=NOW,
            participant=ev.Participant(
                name=f"Deltager Ærø {i}", email=f"deltager{i}@kommune.dk", job_title="Konsulent"
            ),
            buyer=buyer(),
            binding=False,
        )
        planned += plan_registration_outcome(uuid.uuid4(), event, None, NotificationPolicy())
    return planned


def composed(planned: list[PlannedEmail]) -> list[EmailMessage]:
    composer = MimeComposer(IDENTITY, EmailRenderer())
    snapshot = mapping.course_snapshot(course(), revision=0, fallback_contact=FALLBACK)
    now = datetime.now(UTC)
    return [
        composer.compose(build_email(p.kind, p.event_id, p.render_data, snapshot), now=now) for p in planned
    ]


async def raw_aiosmtplib(port: int, pool_size: int, messages: list[EmailMessage]) -> float:
    queue: asyncio.Queue[EmailMessage] = asyncio.Queue()
    for m in messages:
        queue.put_nowait(m)

    async def connection() -> None:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False)
        await client.connect()
        while not queue.empty():
            await client.send_message(queue.get_nowait())
        await client.quit()

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(connection() for _ in range(pool_size)))
    CPU_US["raw"].append((time.process_time() - cpu) / len(messages) * 1e6)
    return len(messages) / (time.perf_counter() - started)


async def notifier(
    pool: asyncpg.Pool, port: int, pool_size: int, planned: list[PlannedEmail], in_flight: int = 0
) -> float:
    async with pool.acquire() as conn:
        await conn.execute("TRUNCATE send_ledger, outbox")
        async with conn.transaction():
            await repo.add_to_ledger(conn, planned, IDENTITY.message_id_domain)
    smtp = SmtpPool(SmtpSettings("127.0.0.1", port, pool_size=pool_size, start_tls=False))
    sender = EmailSender(
        pool=pool,
        transport=smtp,
        composer=MimeComposer(IDENTITY, EmailRenderer()),
        documents=NoDocuments(),
        clock=SystemClock(),
        fallback_contact=FALLBACK,
        config=SenderConfig(in_flight=in_flight or 2 * pool_size),
    )
    started, cpu = time.perf_counter(), time.process_time()
    while await sender.send_due():
        pass
    elapsed = time.perf_counter() - started
    CPU_US["notifier"].append((time.process_time() - cpu) / len(planned) * 1e6)
    await smtp.close()
    if sender.stats.sent != len(planned):
        raise SystemExit(f"notifier sent {sender.stats.sent} of {len(planned)}: {sender.stats}")
    return len(planned) / elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--emails", type=int, default=2000)
    parser.add_argument("--pool-size", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--in-flight", type=int, default=0, help="sender lanes (0: the service default, 2 × pool)"
    )
    args = parser.parse_args()

    port = free_port()
    sink = start_sink(port)
    database = await create_database("bench_notifications")
    db = DatabaseSettings()
    pool = await asyncpg.create_pool(db.dsn(database), min_size=2, max_size=4)
    assert pool is not None
    try:
        async with pool.acquire() as conn:
            await migrate(conn, MIGRATIONS)
            await repo.save_course(conn, course())
        planned = planned_confirmations(args.emails)
        messages = composed(planned)
        # Warm-up (discarded): connections, template cache, PostgreSQL plans.
        await raw_aiosmtplib(port, args.pool_size, messages[:200])
        await notifier(pool, port, args.pool_size, planned[:200])

        CPU_US["raw"].clear()
        CPU_US["notifier"].clear()
        raw_rates, notifier_rates = [], []
        for r in range(args.rounds):
            raw_rates.append(await raw_aiosmtplib(port, args.pool_size, messages))
            notifier_rates.append(await notifier(pool, port, args.pool_size, planned, args.in_flight))
            print(
                f"round {r + 1}: raw {raw_rates[-1]:7.0f}/s  notifier {notifier_rates[-1]:7.0f}/s", flush=True
            )
        raw, ours = statistics.median(raw_rates), statistics.median(notifier_rates)
        print(
            f"emails={args.emails} pool_size={args.pool_size} rounds={args.rounds} (medians; spread min–max)"
        )
        print(f"raw aiosmtplib  : {raw:7.0f} emails/s  ({min(raw_rates):.0f}–{max(raw_rates):.0f})")
        print(
            f"notifier        : {ours:7.0f} emails/s  ({min(notifier_rates):.0f}–{max(notifier_rates):.0f})"
        )
        print(f"ratio           : {ours / raw:.2f}× (target ≥ 0.80×)")
        raw_cpu, our_cpu = statistics.median(CPU_US["raw"]), statistics.median(CPU_US["notifier"])
        print(f"client CPU/email: raw {raw_cpu:.0f} µs, notifier {our_cpu:.0f} µs (this process only)")
    finally:
        await pool.close()
        sink.terminate()
        sink.wait(timeout=10)
        conn = await asyncpg.connect(db.dsn("postgres"))
        await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await conn.close()


if __name__ == "__main__":
    asyncio.run(main())
