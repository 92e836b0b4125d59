"""The whole platform as real processes for cross-service tests: four services, a real SMTP server that
stores .eml files, fresh databases and an isolated topic set, and an in-process OTLP receiver."""

from __future__ import annotations

import email
import email.policy
import subprocess
import sys
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

from komponent_runtime.auth import LOCAL_DEV_KEY
from komponent_runtime.testing import (
    REPO_ROOT,
    ServiceProcess,
    create_database,
    free_port,
    isolated_topics,
    stop_process,
)

from support.otlp_receiver import OtlpReceiver

SERVICES = ("catalogue", "registration", "billing", "notifications")
SEED_PAGE = REPO_ROOT.parent / "shared" / "seed" / "course-page.da.txt"


class SmtpServer:
    """deploy/local/smtp_sink.py on a free port with its own mail folder."""

    def __init__(self, maildir: Path) -> None:
        self.port = free_port()
        self.maildir = maildir
        self.proc = subprocess.Popen(
            [
                sys.executable,
                str(REPO_ROOT / "deploy/local/smtp_sink.py"),
                "--port",
                str(self.port),
                "--maildir",
                str(maildir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def messages(self) -> list[EmailMessage]:
        return [
            email.message_from_bytes(p.read_bytes(), policy=email.policy.default)  # type: ignore[misc]
            for p in sorted(self.maildir.glob("*.eml"))
        ]

    def stop(self) -> None:
        stop_process(self.proc, grace=10)


@dataclass
class Platform:
    smtp: SmtpServer
    otlp: OtlpReceiver
    topic_prefix: str
    services: dict[str, ServiceProcess] = field(default_factory=dict)

    def url(self, service: str) -> str:
        return self.services[service].url

    def stop(self) -> None:
        for process in self.services.values():
            process.stop()
        self.smtp.stop()
        self.otlp.stop()


async def start_platform(tmp: Path, *, extra_env: dict[str, str] | None = None) -> Platform:
    otlp = OtlpReceiver()
    otlp.start()
    smtp = SmtpServer(tmp / "mail")
    platform = Platform(smtp, otlp, await isolated_topics())
    base_env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": otlp.endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp.port),
        "BILLING_API_KEY": LOCAL_DEV_KEY,
        "BILLING_ACCESS_POINT_DIR": str(tmp / "access-point"),
        **(extra_env or {}),
    }
    try:
        billing = ServiceProcess(
            "billing",
            database=await create_database("billing"),
            topic_prefix=platform.topic_prefix,
            env=base_env,
        )
        platform.services["billing"] = billing
        for name in ("catalogue", "registration", "notifications"):
            env = {**base_env, "BILLING_URL": billing.url}
            platform.services[name] = ServiceProcess(
                name, database=await create_database(name), topic_prefix=platform.topic_prefix, env=env
            )
        for process in platform.services.values():
            await process.wait_ready()
    except BaseException:
        platform.stop()  # never leave half a platform running
        raise
    return platform
