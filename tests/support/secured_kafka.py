"""A private Kafka broker whose only client listener is SASL_SSL with SCRAM-SHA-512, as production runs it
(deploy/README.md, "Kafka over SASL_SSL/SCRAM-SHA-512"), for the tests that prove the services' Kafka
clients speak it.

Everything is made per test module in a temporary folder: a certificate authority and a broker certificate
for 127.0.0.1 (openssl), a PKCS12 keystore, the SCRAM credentials written at format time, and one KRaft node
run from the same jars as the local stack (var/kafka/libs). Inter-broker and controller traffic stay on
loopback PLAINTEXT listeners no client is given.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from komponent_runtime.testing import REPO_ROOT, free_port, port_open, stop_process

LIBS = REPO_ROOT / "var" / "kafka" / "libs"
LOG4J = REPO_ROOT / "deploy" / "local" / "kafka" / "log4j2.properties"  # the broker: logs/server.log
TOOLS_LOG4J = REPO_ROOT / "deploy" / "local" / "kafka" / "tools-log4j2.properties"
SINGLE_NODE = REPO_ROOT / "deploy" / "local" / "kafka" / "single-node.properties"  # as the dev broker
USERNAME = "registration"
PASSWORD = "scram-test-password-" + uuid.uuid4().hex[:8]
KEYSTORE_PASSWORD = "keystore-test-password"


@dataclass
class SecuredKafka:
    folder: Path
    ca_file: Path  # the CA that signed the broker's certificate
    other_ca_file: Path  # a CA that did not
    client_port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.client_port}"

    def client_env(self, *, password: str = PASSWORD, ca_file: Path | None = None) -> dict[str, str]:
        """The environment an operator sets for SASL_SSL (deploy/README.md)."""
        return {
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "KAFKA_SASL_USERNAME": USERNAME,
            "KAFKA_SASL_PASSWORD": password,
            "KAFKA_SSL_CAFILE": str(ca_file or self.ca_file),
        }

    def log_tail(self, lines: int = 40) -> str:
        log = self.folder / "logs" / "server.log"
        return "\n".join(log.read_text().splitlines()[-lines:]) if log.exists() else "(no server.log)"

    def stop(self) -> None:
        stop_process(self.process, grace=60)


def _openssl(folder: Path, *args: str) -> None:
    subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True, timeout=60)


def _certificates(folder: Path) -> None:
    """ca.pem + broker.p12 (key and certificate for IP 127.0.0.1, signed by the CA), and other-ca.pem."""
    for name in ("ca", "other-ca"):
        _openssl(
            folder, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", f"/CN=komponent-{name}", "-keyout", f"{name}.key", "-out", f"{name}.pem",
        )  # fmt: skip
    _openssl(
        folder, "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
        "-keyout", "broker.key", "-out", "broker.csr",
    )  # fmt: skip
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl(
        folder, "x509", "-req", "-in", "broker.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", "broker.pem",
    )  # fmt: skip
    _openssl(
        folder, "pkcs12", "-export", "-in", "broker.pem", "-inkey", "broker.key", "-certfile", "ca.pem",
        "-passout", f"pass:{KEYSTORE_PASSWORD}", "-out", "broker.p12",
    )  # fmt: skip


def _properties(folder: Path, client: int, internal: int, controller: int) -> Path:
    props = folder / "server.properties"
    props.write_text(
        f"""process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{controller}
listeners=SASL_SSL://127.0.0.1:{client},INTERNAL://127.0.0.1:{internal},CONTROLLER://127.0.0.1:{controller}
advertised.listeners=SASL_SSL://127.0.0.1:{client},INTERNAL://127.0.0.1:{internal}
listener.security.protocol.map=SASL_SSL:SASL_SSL,INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=INTERNAL
controller.listener.names=CONTROLLER
sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
ssl.keystore.type=PKCS12
ssl.keystore.location={folder / "broker.p12"}
ssl.keystore.password={KEYSTORE_PASSWORD}
log.dirs={folder / "data"}
"""
        + SINGLE_NODE.read_text()
    )
    return props


def _java(*args: str, heap: str = "-Xmx256m", logs: Path | None = None) -> list[str]:
    """A broker (`logs`: its log folder) or a tool (logging to stderr)."""
    logging = (
        [f"-Dlog4j2.configurationFile={LOG4J}", f"-Dkafka.logs.dir={logs}"]
        if logs
        else [f"-Dlog4j2.configurationFile={TOOLS_LOG4J}"]
    )
    return [
        "java",
        heap,
        "-Djava.awt.headless=true",
        *logging,
        "-cp",
        f"{LIBS}/*",
        *args,
    ]


def start(folder: Path, timeout: float = 120.0) -> SecuredKafka:
    """Make the certificates, format the storage with the SCRAM user, start the broker and wait until its
    SASL_SSL port accepts connections. The caller stops it."""
    if not any(LIBS.glob("kafka_2.13-*.jar")):
        raise RuntimeError(f"no Kafka jars in {LIBS}: start the local stack first (./dev infra)")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "logs").mkdir(exist_ok=True)
    _certificates(folder)
    client, internal, controller = free_port(), free_port(), free_port()
    props = _properties(folder, client, internal, controller)
    scram_user = f"SCRAM-SHA-512=[name={USERNAME},password={PASSWORD}]"
    format_storage = ["format", "-t", str(uuid.uuid4()), "-c", str(props), "--add-scram", scram_user]
    subprocess.run(
        _java("kafka.tools.StorageTool", *format_storage), check=True, capture_output=True, timeout=120
    )
    kafka = SecuredKafka(folder, folder / "ca.pem", folder / "other-ca.pem", client)
    with open(folder / "logs" / "stdout.log", "ab") as out:
        kafka.process = subprocess.Popen(
            _java("kafka.Kafka", str(props), heap="-Xmx512m", logs=folder / "logs"), stdout=out, stderr=out
        )
    deadline = time.monotonic() + timeout
    while not port_open(client):
        if kafka.process.poll() is not None or time.monotonic() > deadline:
            kafka.stop()
            raise RuntimeError(f"the SASL_SSL broker did not start:\n{kafka.log_tail()}")
        time.sleep(0.3)
    return kafka
