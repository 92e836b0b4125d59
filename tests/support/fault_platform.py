"""The four services as restartable real processes (SIGKILL, then start again on the same port and database),
for the fault suite. Same environment as support.platform.start_platform, but every process can be killed
and brought back; the outbox relay runs inside each service process, so killing a service kills its relay.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from komponent_runtime.auth import LOCAL_DEV_KEY, hash_key
from komponent_runtime.testing import REPO_ROOT, create_database, free_port, stop_process, wait_until

from support.platform import SmtpServer

SERVICES = ("catalogue", "registration", "billing", "notifications")


class RestartableService:
    """`python -m komponent_<name>` that keeps its port, database and environment across restarts."""

    def __init__(self, name: str, *, database: str, topic_prefix: str, env: dict[str, str], log_dir: Path):
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.database = database
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"{name}-{self.port}.log"
        self.env = {
            **os.environ,
            "SERVICE_NAME": name,
            "SERVICE_DATABASE": database,
            "HTTP_PORT": str(self.port),
            "KAFKA_TOPIC_PREFIX": topic_prefix,
            "SERVICE_OUTBOX_POLL_SECONDS": "0.2",
            "API_KEYS": f"tests:{hash_key(LOCAL_DEV_KEY)}:*",
            **env,
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None, f"{self.name} already running"
        with open(self.log_path, "ab") as log:
            log.write(f"\n==== start #{self.starts + 1} ====\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                [sys.executable, "-m", f"komponent_{self.name}"], env=self.env, stdout=log, stderr=log
            )
        self.starts += 1

    async def ready(self) -> bool:
        if self.proc is None or self.proc.poll() is not None:
            code = None if self.proc is None else self.proc.returncode
            raise AssertionError(f"{self.name} exited ({code}); see {self.log_path}")
        try:
            async with httpx.AsyncClient() as client:
                return (await client.get(f"{self.url}/health/ready", timeout=1)).status_code == 200
        except httpx.HTTPError:
            return False

    async def wait_ready(self, timeout: float = 90.0) -> None:
        await wait_until(
            self.ready, timeout=timeout, interval=0.2, what=f"{self.name} ready ({self.log_path})"
        )

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, no flush, the relay and every consumer die mid-flight."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        stop_process(self.proc, grace=20)


@dataclass
class FaultPlatform:
    smtp: SmtpServer
    topic_prefix: str
    services: dict[str, RestartableService] = field(default_factory=dict)

    def url(self, service: str) -> str:
        return self.services[service].url

    async def wait_all_ready(self, timeout: float = 120.0) -> None:
        for process in self.services.values():
            await process.wait_ready(timeout)

    def stop(self) -> None:
        for process in self.services.values():
            process.stop()
        self.smtp.stop()


async def start_fault_platform(
    tmp: Path, topic_prefix: str, extra_env: dict[str, str] | None = None
) -> FaultPlatform:
    """Four services against whatever Kafka/PostgreSQL the environment names, plus a private SMTP sink."""
    smtp = SmtpServer(tmp / "mail")
    platform = FaultPlatform(smtp, topic_prefix)
    log_dir = REPO_ROOT / "var" / "test-logs" / "faults"
    base_env = {
        "OTEL_SDK_DISABLED": "true",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp.port),
        "BILLING_API_KEY": LOCAL_DEV_KEY,
        "BILLING_ACCESS_POINT_DIR": str(tmp / "access-point"),
        **(extra_env or {}),
    }
    try:
        billing = RestartableService(
            "billing",
            database=await create_database("billing"),
            topic_prefix=topic_prefix,
            env=base_env,
            log_dir=log_dir,
        )
        platform.services["billing"] = billing
        for name in ("catalogue", "registration", "notifications"):
            platform.services[name] = RestartableService(
                name,
                database=await create_database(name),
                topic_prefix=topic_prefix,
                env={**base_env, "BILLING_URL": billing.url},
                log_dir=log_dir,
            )
        for process in platform.services.values():
            process.start()
        await platform.wait_all_ready()
    except BaseException:
        platform.stop()
        raise
    return platform
