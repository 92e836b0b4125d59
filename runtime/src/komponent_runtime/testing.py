"""Pytest fixtures and helpers for tests against the real local stack (Kafka, PostgreSQL, SMTP).

Loaded as a plugin by the root `conftest.py`. Tests that need the stack fail with a clear message when it
is not running (the test command starts it); they are never skipped.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from komponent_contracts import CloudEvent, Event
from komponent_contracts.topics import dead_letter_topic

from komponent_runtime.settings import DatabaseSettings, KafkaSettings

REPO_ROOT = Path(__file__).resolve().parents[3]
# Topics this test session created: deleted when it ends, so a long-lived broker doesn't collect
# thousands of topics (every client's metadata refresh would pay for them).
_created_topics: set[str] = set()
_created_prefixes: set[str] = set()


def kafka_bootstrap() -> str:
    return KafkaSettings().bootstrap_servers


async def wait_until(
    predicate: Callable[[], Awaitable[bool]],
    *,
    timeout: float = 30.0,
    interval: float = 0.05,
    what: str = "condition",
) -> None:
    """Poll until `predicate()` is true; fail the test with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


async def create_database(prefix: str = "test") -> str:
    """A new, empty database; returns its name. Each test gets its own so tests never share state.

    Named `<prefix>_<pid>x<random>` after the creating process: the session (or benchmark) drops its own
    at the end (`delete_created_databases`), and the next one drops those of runs that died
    (`delete_orphaned_databases`). Left behind, thousands of them made the shared server's autovacuum
    launcher cycle through databases nobody used."""
    name = f"{prefix}_{owned_token()}"
    conn = await _admin_connection()
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    _created_databases.add(name)
    return name


_created_databases: set[str] = set()
_OWNED_DATABASE = re.compile(r"^[a-z_]+_(?P<pid>\d+)x[0-9a-f]{6}$")


async def _admin_connection() -> asyncpg.Connection:
    db = DatabaseSettings()
    try:
        return await asyncpg.connect(db.dsn("postgres"), timeout=5)
    except OSError as exc:  # pragma: no cover - the message is the point
        raise AssertionError(
            f"PostgreSQL is not running at {db.host}:{db.port}; start it with ./dev infra"
        ) from exc


def orphaned_databases(names: Iterable[str]) -> list[str]:
    """The test and benchmark databases whose creating process no longer runs."""
    return [n for n in names if (m := _OWNED_DATABASE.match(n)) and not _owner_alive(int(m["pid"]))]


async def drop_databases(names: Iterable[str]) -> int:
    """Drop the databases, disconnecting their sessions; return how many."""
    conn = await _admin_connection()
    try:
        dropped = 0
        for name in names:
            for attempt in range(20):
                try:
                    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                    break
                except asyncpg.InsufficientPrivilegeError:
                    # FORCE may not end an autovacuum worker busy on the freshly filled database (it runs
                    # under no role of ours); it finishes within moments.
                    if attempt == 19:
                        raise
                    await asyncio.sleep(0.5)
            dropped += 1
        return dropped
    finally:
        await conn.close()


async def delete_orphaned_databases() -> int:
    """Drop the databases of test and benchmark runs that died before cleaning up; return how many."""
    conn = await _admin_connection()
    try:
        names = [r["datname"] for r in await conn.fetch("SELECT datname FROM pg_database")]
    finally:
        await conn.close()
    return await drop_databases(orphaned_databases(names))


async def delete_created_databases() -> int:
    """Drop every database this process created; return how many."""
    doomed = sorted(_created_databases)
    _created_databases.clear()
    return await drop_databases(doomed) if doomed else 0


async def create_topics(*names: str, partitions: int = 3, with_dead_letters: bool = True) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap())
    try:
        await admin.start()
    except Exception as exc:  # pragma: no cover
        raise AssertionError(
            f"Kafka is not running at {kafka_bootstrap()}; start it with ./dev infra"
        ) from exc
    try:
        wanted = list(names) + ([dead_letter_topic(n) for n in names] if with_dead_letters else [])
        _created_topics.update(wanted)
        await admin.create_topics(
            [NewTopic(n, num_partitions=partitions, replication_factor=1) for n in wanted]
        )
    finally:
        await admin.close()


async def produce(
    topic: str,
    events: list[CloudEvent[Event]],
    *,
    extra: list[tuple[bytes | None, bytes, dict[str, str]]] | None = None,
) -> None:
    """Publish CloudEvents (and optional raw records: key, value, headers) in the given order."""
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap(), acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for ce in events:
            await producer.send_and_wait(
                topic, ce.value(), key=ce.key, headers=[(k, v.encode()) for k, v in ce.headers().items()]
            )
        for key, value, headers in extra or []:
            await producer.send_and_wait(
                topic, value, key=key, headers=[(k, v.encode()) for k, v in headers.items()]
            )
    finally:
        await producer.stop()


async def produce_many(
    events: Sequence[CloudEvent[Event]], *, topic: str | None = None, prefix: str = ""
) -> None:
    """Publish many CloudEvents fast and in order: one producer, send() futures and one flush (not a round
    trip per record). Each goes to `topic`, or to `prefix` + its family's topic."""
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_bootstrap(),
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        max_batch_size=512 * 1024,
    )
    await producer.start()
    try:
        futures = [
            await producer.send(
                topic or prefix + ce.topic,
                ce.value(),
                key=ce.key,
                headers=[(k, v.encode()) for k, v in ce.headers().items()],
            )
            for ce in events
        ]
        await producer.flush()
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def read_topic(topic: str, *, expect: int, timeout: float = 30.0) -> list[ConsumerRecord]:
    """Read a topic from the beginning until `expect` records arrived (or time out: returns what came)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap(),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    records: list[ConsumerRecord] = []
    deadline = time.monotonic() + timeout
    try:
        while len(records) < expect and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for part in batch.values():
                records.extend(part)
        # Linger briefly: a test that expects N must also see that no N+1st arrives.
        extra = await consumer.getmany(timeout_ms=500)
        for part in extra.values():
            records.extend(part)
    finally:
        await consumer.stop()
    return records


def headers_of(record: ConsumerRecord) -> dict[str, str]:
    return {k: v.decode() for k, v in record.headers or ()}


@pytest.fixture
async def database() -> AsyncIterator[str]:
    """The name of a fresh database for this test."""
    yield await create_database()


@pytest.fixture
async def pool(database: str) -> AsyncIterator[asyncpg.Pool]:
    p = await asyncpg.create_pool(DatabaseSettings().dsn(database), min_size=1, max_size=8)
    assert p is not None
    yield p
    await p.close()


@pytest.fixture
def unique_topic() -> Callable[[str], str]:
    def make(stem: str) -> str:
        return f"test.{stem}.{owned_token()}"

    return make


def service_env(**overrides: Any) -> dict[str, str]:
    """Environment for a service subprocess against the local stack."""
    env = dict(os.environ)
    env.update({k: str(v) for k, v in overrides.items()})
    return env


async def isolated_topics() -> str:
    """Create the platform's whole topic set under a fresh prefix; return the prefix for KAFKA_TOPIC_PREFIX."""
    from komponent_runtime.topics import ensure_topics

    prefix = f"t{owned_token()}."
    _created_prefixes.add(prefix)
    old = os.environ.get("KAFKA_TOPIC_PREFIX")
    os.environ["KAFKA_TOPIC_PREFIX"] = prefix
    try:
        await ensure_topics()
    finally:
        if old is None:
            del os.environ["KAFKA_TOPIC_PREFIX"]
        else:
            os.environ["KAFKA_TOPIC_PREFIX"] = old
    return prefix


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts TCP connections on host:port now."""
    import contextlib
    import socket

    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


class ServiceProcess:
    """A service (`python -m komponent_<name>`) as a real OS process with its own database and port.

    Logs go to var/test-logs/<name>-<port>.log so a failing test can be diagnosed."""

    def __init__(
        self, name: str, *, database: str, topic_prefix: str, env: dict[str, str] | None = None
    ) -> None:
        import subprocess
        import sys

        self.name = name
        self.database = database
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        log_dir = REPO_ROOT / "var" / "test-logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"{name}-{self.port}.log"
        full_env = {
            **os.environ,
            "SERVICE_NAME": name,
            "SERVICE_DATABASE": database,
            "HTTP_PORT": str(self.port),
            "KAFKA_TOPIC_PREFIX": topic_prefix,
            "SERVICE_OUTBOX_POLL_SECONDS": "0.2",
            "API_KEYS": f"tests:{_dev_key_hash()}:*",
            **(env or {}),
        }
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", f"komponent_{name}"], env=full_env, stdout=log, stderr=log
            )

    async def wait_ready(self, timeout: float = 120.0) -> None:
        import httpx

        async def ready() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited ({self.proc.returncode}); see {self.log_path}")
            try:
                async with httpx.AsyncClient() as client:
                    return (await client.get(f"{self.url}/health/ready", timeout=10)).status_code == 200
            except httpx.HTTPError:
                return False

        await wait_until(
            ready, timeout=timeout, interval=0.2, what=f"{self.name} ready (log: {self.log_path})"
        )

    def kill(self) -> None:
        import signal

        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        stop_process(self.proc, grace=20)


def stop_process(proc: Any, grace: float) -> None:
    """SIGTERM a child process (a `subprocess.Popen`), and SIGKILL it if it has not exited after `grace`
    seconds; nothing when it has exited already."""
    import subprocess

    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def _dev_key_hash() -> str:
    from komponent_runtime.auth import LOCAL_DEV_KEY, hash_key

    return hash_key(LOCAL_DEV_KEY)


ADMIN_HEADERS = {"Authorization": "Bearer local-dev-admin-key"}


# -- topics left behind -----------------------------------------------------------------------------------
# A run that is killed (a timeout, Ctrl-C, SIGKILL) never deletes its topics, and a long-lived local broker
# collected ~20,000 partitions that way until it ran out of file descriptors. Every topic a test or a
# benchmark creates therefore carries its creator's process id; the next run deletes those whose creator
# is gone. Runs of other engineers on the same broker stay untouched while their processes live.

_OWNED = re.compile(
    r"^(?:t(?P<prefix>\d+)x[0-9a-f]{6}\.|(?:test|bench)\..*\.(?P<suffix>\d+)x[0-9a-f]{6}(?:\.dlq)?$)"
)


def owned_token() -> str:
    """`<pid>x<random>`: unique, and names the process that owns the topic."""
    return f"{os.getpid()}x{uuid.uuid4().hex[:6]}"


def _owner_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def orphaned(topics: Iterable[str]) -> list[str]:
    """The test and benchmark topics whose creating process no longer runs."""
    doomed = []
    for topic in topics:
        if (match := _OWNED.match(topic)) and not _owner_alive(int(match["prefix"] or match["suffix"])):
            doomed.append(topic)
    return doomed


async def delete_orphaned_topics() -> int:
    """Delete the topics of test and benchmark runs that died before cleaning up; return how many."""
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap())
    await admin.start()
    try:
        doomed = orphaned(await admin.list_topics())
        for start in range(0, len(doomed), 100):
            await admin.delete_topics(doomed[start : start + 100])
        return len(doomed)
    finally:
        await admin.close()


async def delete_created_topics() -> int:
    """Delete every topic this session created (by name or isolated prefix); return how many."""
    if not (_created_topics or _created_prefixes):
        return 0
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap())
    await admin.start()
    try:
        doomed = [
            t
            for t in await admin.list_topics()
            if t in _created_topics or t.startswith(tuple(_created_prefixes))
        ]
        for start in range(0, len(doomed), 100):
            await admin.delete_topics(doomed[start : start + 100])
        return len(doomed)
    finally:
        await admin.close()


def pytest_sessionstart(session: pytest.Session) -> None:
    try:
        asyncio.run(asyncio.wait_for(delete_orphaned_topics(), timeout=10))
    except Exception as exc:  # no broker (unit tests only): nothing to clean
        print(f"note: orphaned test topics not checked: {type(exc).__name__}")
    try:
        asyncio.run(asyncio.wait_for(delete_orphaned_databases(), timeout=300))
    except BaseException as exc:  # no database server (unit tests only): nothing to clean
        print(f"note: orphaned test databases not checked: {type(exc).__name__}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    try:
        asyncio.run(delete_created_topics())
    except Exception as exc:  # cleanup must not turn a green run red
        print(f"warning: could not delete this session's test topics: {exc}")
    try:
        asyncio.run(delete_created_databases())
    except BaseException as exc:
        print(f"warning: could not drop this session's test databases: {type(exc).__name__}: {exc}")


# -- metrics ----------------------------------------------------------------------------------------------

_metric_reader: Any = None


def metric_reader() -> Any:
    """An `InMemoryMetricReader` behind the process's meter provider, installed on first use (the global
    provider can be set once per process). Instruments are cumulative over the test session: compare
    values before and after, or use attributes only your test produces."""
    global _metric_reader
    if _metric_reader is None:
        from opentelemetry import metrics
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader

        _metric_reader = InMemoryMetricReader()
        metrics.set_meter_provider(MeterProvider(metric_readers=[_metric_reader]))
    return _metric_reader


def metric_points(name: str) -> list[tuple[dict[str, Any], Any]]:
    """(attributes, point) of every data point of the instrument `name` now."""
    data = metric_reader().get_metrics_data()
    return [
        (dict(point.attributes or {}), point)
        for resource in (data.resource_metrics if data else ())
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == name
        for point in metric.data.data_points
    ]
