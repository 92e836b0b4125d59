"""Notifications alone, end to end on the shared stack: RegistrationConfirmed events produced at a fixed rate
(in bursts, as a relay publishes them) to the service's topic, every confirmation email to the bench SMTP
sink. Per step: CPU per email of the notifications process (utime+stime, and the user share) and of its
PostgreSQL backends, and PostgreSQL commits per email. Not a test; run it under the benchmark lock:

    flock /tmp/komponent-bench.lock .venv/bin/python services/notifications/bench/alone_bench.py

Environment: RATE (120/s), SECONDS_ (10 per step), REPS (4 steps after a 40/s warm-up), BURST (0.05 s),
PROFILE (py-spy --gil raw output of step 2; with NOGIL=1 every running thread is sampled instead),
STRACE (strace -c output of step 2). Fewer moving parts than bench/e2e_bench.py (no registration, billing
or catalogue process sharing the two cores), but a step still varies by 10-15 % on the shared box:
interleave the runs to compare.
"""

import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
from aiokafka import AIOKafkaProducer
from komponent_contracts import CloudEvent
from komponent_contracts import events as ev
from komponent_contracts.examples import NOW, buyer, course
from komponent_runtime.settings import DatabaseSettings
from komponent_runtime.testing import (
    REPO_ROOT,
    ServiceProcess,
    create_database,
    delete_created_databases,
    delete_created_topics,
    free_port,
    isolated_topics,
    kafka_bootstrap,
)

RATE = float(os.environ.get("RATE", "120"))
SECONDS = float(os.environ.get("SECONDS_", "10"))
REPS = int(os.environ.get("REPS", "4"))
BURST = float(os.environ.get("BURST", "0.05"))
TICK_US = 1e6 / os.sysconf("SC_CLK_TCK")


def utime(pid):
    try:
        f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return int(f[11])
    except OSError:
        return 0


def recipients(mail: Path) -> set[str]:
    with open(mail) as accepted:
        return {line.split()[1] for line in accepted}


def ticks(pid):
    try:
        f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return int(f[11]) + int(f[12])
    except OSError:
        return 0


async def main():
    workdir = Path(tempfile.mkdtemp(prefix="solo-", dir=REPO_ROOT / "var"))
    mail = workdir / "mail.log"
    port = free_port()
    sink = subprocess.Popen(  # noqa: ASYNC220 (a benchmark: started before the measurement)
        [
            sys.executable,
            str(REPO_ROOT / "bench" / "sinks.py"),
            "smtp",
            "--port",
            str(port),
            "--out",
            str(mail),
        ]
    )
    db = await create_database("bench_notifications")
    prefix = await isolated_topics()
    svc = ServiceProcess(
        "notifications",
        database=db,
        topic_prefix=prefix,
        env={
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(port),
            "OTEL_SDK_DISABLED": "true",
            "OTEL_EXPORTER_OTLP_ENDPOINT": "",
        },
    )
    admin = await asyncpg.connect(DatabaseSettings().dsn("postgres"))
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_bootstrap(), acks="all", enable_idempotence=True, linger_ms=1
    )
    try:
        await svc.wait_ready()
        await producer.start()

        async def send(ce):
            return await producer.send(
                prefix + ce.topic,
                ce.value(),
                key=ce.key,
                headers=[(k, v.encode()) for k, v in ce.headers().items()],
            )

        courses = [uuid.uuid4() for _ in range(100)]
        futs = [
            await send(
                CloudEvent(
                    data=ev.CoursePublished(
                        course_id=c, course=course().model_copy(update={"course_id": c}), occurred_at=NOW
                    ),
                    source="/solo",
                )
            )
            for c in courses
        ]
        await asyncio.gather(*futs)
        await asyncio.sleep(3)
        seq = 0

        def lines():
            try:
                return sum(1 for _ in open(mail))
            except OSError:
                return 0

        async def step(rate, seconds):
            nonlocal seq
            n = int(rate * seconds)
            pg = [
                r["pid"] for r in await admin.fetch("SELECT pid FROM pg_stat_activity WHERE datname = $1", db)
            ]
            x0 = await admin.fetchval("SELECT xact_commit FROM pg_stat_database WHERE datname = $1", db)
            c0 = ticks(svc.proc.pid)
            u0 = utime(svc.proc.pid)
            p0 = {p: ticks(p) for p in pg}
            s0 = ticks(sink.pid)
            before = lines()
            t0 = time.monotonic()
            futs = []
            burst = max(1, round(rate * BURST))
            for i in range(n):
                due = t0 + (i // burst) * burst / rate
                d = due - time.monotonic()
                if d > 0:
                    await asyncio.sleep(d)
                seq += 1
                data = ev.RegistrationConfirmed(
                    registration_id=uuid.uuid4(),
                    course_id=courses[seq % 100],
                    occurred_at=NOW,
                    participant=ev.Participant(
                        name=f"Deltager Ærø {seq}", email=f"d{seq}@kommune.dk", job_title="Konsulent"
                    ),
                    buyer=buyer(),
                    binding=False,
                )
                futs.append(await send(CloudEvent(data=data, source="/solo")))
            await asyncio.gather(*futs)
            deadline = time.monotonic() + 60
            while lines() - before < n and time.monotonic() < deadline:  # noqa: ASYNC110 (polls the sink's file)
                await asyncio.sleep(0.05)
            drained = time.monotonic() - t0
            await asyncio.sleep(1.0)  # the relay's EmailSent and the stats
            c1 = ticks(svc.proc.pid)
            u1 = utime(svc.proc.pid)
            p1 = {p: ticks(p) for p in pg}
            s1 = ticks(sink.pid)
            x1 = await admin.fetchval("SELECT xact_commit FROM pg_stat_database WHERE datname = $1", db)
            got = lines() - before
            r = dict(
                n=n,
                got=got,
                drain=drained,
                notif=(c1 - c0) * TICK_US / n,
                pg=sum(p1[p] - p0[p] for p in pg) * TICK_US / n,
                sink=(s1 - s0) * TICK_US / n,
                commits=(x1 - x0) / n,
            )
            print(
                f"  {rate}/s x{seconds}s n={n} got={got} drain {drained:.1f}s  notifications {r['notif']:.0f} us/email  pg {r['pg']:.0f}  sink {r['sink']:.0f}  commits/email {r['commits']:.2f}  user share {(u1 - u0) / max(1, c1 - c0):.2f}",
                flush=True,
            )
            return r

        await step(40, 5)
        rs = []
        for i in range(REPS):
            prof = None
            if os.environ.get("PROFILE") and i == 1:
                prof = subprocess.Popen(  # noqa: ASYNC220
                    [
                        str(REPO_ROOT / ".venv/bin/py-spy"),
                        "record",
                        *([] if os.environ.get("NOGIL") else ["--gil"]),
                        "--nonblocking",
                        "-r",
                        "250",
                        "-f",
                        "raw",
                        "-o",
                        os.environ["PROFILE"],
                        "-p",
                        str(svc.proc.pid),
                        "-d",
                        str(int(SECONDS)),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            if os.environ.get("STRACE") and i == 1:
                prof = subprocess.Popen(  # noqa: ASYNC220
                    [
                        "timeout",
                        "-s",
                        "INT",
                        str(int(SECONDS) + 2),
                        "strace",
                        "-c",
                        "-f",
                        "-o",
                        os.environ["STRACE"],
                        "-p",
                        str(svc.proc.pid),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            r = await step(RATE, SECONDS)
            if prof:
                prof.wait()
                continue
            rs.append(r)
        print(
            f"notifications us/email: {[round(r['notif']) for r in rs]} median {statistics.median(r['notif'] for r in rs):.0f}; "
            f"pg {[round(r['pg']) for r in rs]} median {statistics.median(r['pg'] for r in rs):.0f}; "
            f"commits {statistics.median(r['commits'] for r in rs):.2f}; sink median {statistics.median(r['sink'] for r in rs):.0f}"
        )
        print("duplicates:", lines() - len(recipients(mail)))
    finally:
        with contextlib.suppress(Exception):
            await producer.stop()
        svc.stop()
        sink.terminate()
        sink.wait()
        await admin.close()
        with contextlib.suppress(Exception):
            await delete_created_databases()
        with contextlib.suppress(Exception):
            await delete_created_topics()


asyncio.run(main())
