"""A private Kafka + PostgreSQL (deploy/local scripts, other ports, state under var/faults/) for tests that
kill the broker or the database. The shared dev stack (19092 / 55432 / 2525) is never touched.

The scripts read KOMPONENT_VAR_DIR, KAFKA_PORT, KAFKA_CONTROLLER_PORT and PG_PORT (defaults = the shared
stack). The Kafka jars are shared with the dev stack through a symlink, so nothing is downloaded again.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from komponent_runtime.testing import REPO_ROOT

LOCAL = REPO_ROOT / "deploy" / "local"


@dataclass
class PrivateStack:
    var_dir: Path
    kafka_port: int = 29092
    kafka_controller_port: int = 29093
    pg_port: int = 55442

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    def script_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            KOMPONENT_VAR_DIR=str(self.var_dir),
            KAFKA_PORT=str(self.kafka_port),
            KAFKA_CONTROLLER_PORT=str(self.kafka_controller_port),
            PG_PORT=str(self.pg_port),
            KAFKA_HEAP_OPTS="-Xms256m -Xmx768m",
        )
        return env

    def client_env(self) -> dict[str, str]:
        """What services and in-process helpers need to talk to this stack."""
        return {
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "PGHOST": "127.0.0.1",
            "PGPORT": str(self.pg_port),
            "PGUSER": "komponent",
            "PGPASSWORD": "komponent",
        }

    def run(self, script: str, *args: str, timeout: float = 180) -> None:
        log = self.var_dir / "scripts.log"
        with open(log, "ab") as out:
            done = subprocess.run(
                [str(LOCAL / script), *args],
                env=self.script_env(),
                stdout=out,
                stderr=out,
                timeout=timeout,
                check=False,
            )
        if done.returncode != 0:
            tail = log.read_text(errors="replace").splitlines()[-30:]
            raise AssertionError(f"{script} {' '.join(args)} failed ({done.returncode}):\n" + "\n".join(tail))

    def kafka(self, command: str) -> None:
        self.run("kafka.sh", command)

    def postgres(self, command: str) -> None:
        self.run("postgres.sh", command)

    def start(self) -> None:
        self.var_dir.mkdir(parents=True, exist_ok=True)
        shared_libs = REPO_ROOT / "var" / "kafka" / "libs"
        own = self.var_dir / "kafka"
        own.mkdir(parents=True, exist_ok=True)
        if shared_libs.is_dir() and not (own / "libs").exists():
            (own / "libs").symlink_to(shared_libs)
        if (
            subprocess.run(
                [str(LOCAL / "kafka.sh"), "status"], env=self.script_env(), capture_output=True, check=False
            ).returncode
            != 0
        ):
            # A fresh log each session: topics of earlier runs would only lengthen the recovery after kill9.
            shutil.rmtree(own / "data", ignore_errors=True)
        self.postgres("start")
        self.kafka("start")

    def stop(self) -> None:
        errors: list[str] = []
        for script in ("kafka.sh", "postgres.sh"):
            try:
                self.run(script, "stop")
            except AssertionError as exc:
                errors.append(str(exc))
        if errors:
            raise AssertionError("\n".join(errors))


@contextmanager
def private_stack(var_dir: Path | None = None) -> Iterator[PrivateStack]:
    """Start the private stack, point this process's environment at it, stop it afterwards."""
    stack = PrivateStack(var_dir or REPO_ROOT / "var" / "faults")
    saved = {k: os.environ.get(k) for k in stack.client_env()}
    try:
        stack.start()
        os.environ.update(stack.client_env())
        yield stack
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        stack.stop()
