"""Checks the RUNNING local stack (deploy/local/*.sh start): Kafka, PostgreSQL and the SMTP sink.

These tests do not start anything themselves; they fail (never skip) when a component is down.
Connection settings come from the environment of deploy/local/env.sh, with the same defaults.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import aiosmtplib
import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

pytestmark = pytest.mark.infra

ROOT = Path(__file__).resolve().parents[2]
BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092")
PG = {
    "host": os.environ.get("PGHOST", "127.0.0.1"),
    "port": int(os.environ.get("PGPORT", "55432")),
    "user": os.environ.get("PGUSER", "komponent"),
    "password": os.environ.get("PGPASSWORD", "komponent"),
}
SMTP_HOST = os.environ.get("SMTP_HOST", "127.0.0.1")
SMTP_PORT = int(os.environ.get("SMTP_PORT", "2525"))
MAIL_DIR = Path(os.environ.get("MAIL_DIR", str(ROOT / "var" / "mail")))

DANISH_SUBJECT = "Bekræftelse: kursus i Århus – pris 1.250,00 kr."
DANISH_BODY = "Kære Søren Ærø,\n\nDin plads på kurset »Grønne tag« er bekræftet. Vi glæder os!\n"


async def _topic_visible(admin: AIOKafkaAdminClient, topic: str, *, present: bool) -> bool:
    """Poll the broker's topic list until the topic is (or is no longer) listed; False if never."""
    for _ in range(300):
        if (topic in await admin.list_topics()) == present:
            return True
        await asyncio.sleep(0.1)
    return False


async def test_kafka_broker_creates_uses_and_deletes_a_topic() -> None:
    topic = f"infra-scratch-{uuid.uuid4().hex[:12]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP, request_timeout_ms=15000)
    await admin.start()
    try:
        broker_id = (await admin.describe_cluster())["brokers"][0]["node_id"]
        configs = await admin.describe_configs([ConfigResource(ConfigResourceType.BROKER, str(broker_id))])
        entries = {c[0]: c[1] for c in configs[0].resources[0][4]}
        assert entries["auto.create.topics.enable"] == "false"

        await admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
        # The controller commits the topic first; the broker's metadata cache follows shortly after.
        assert await _topic_visible(admin, topic, present=True)

        # A round trip through a consumer group also proves the single-node internal topics work.
        producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all", enable_idempotence=True)
        await producer.start()
        try:
            await producer.send_and_wait(topic, b"hej med dig", key=b"k")
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=BOOTSTRAP,
            group_id=f"{topic}-group",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            record = await asyncio.wait_for(consumer.getone(), timeout=60)
            assert record.value == b"hej med dig"
            await consumer.commit()
        finally:
            await consumer.stop()

        await admin.delete_topics([topic])
        assert await _topic_visible(admin, topic, present=False)
    finally:
        await admin.close()


async def test_postgres_answers_as_komponent_and_creates_a_database() -> None:
    conn = await asyncpg.connect(database="postgres", **PG)
    try:
        assert await conn.fetchval("SELECT current_user") == "komponent"
        assert await conn.fetchval("SHOW max_connections") == "200"
        assert await conn.fetchval("SHOW fsync") == "on"
        assert await conn.fetchval("SELECT 'Æbleskiver i Ølstykke'::text") == "Æbleskiver i Ølstykke"
        scratch = f"infra_scratch_{uuid.uuid4().hex[:12]}"
        await conn.execute(f'CREATE DATABASE "{scratch}"')
        try:
            scratch_conn = await asyncpg.connect(database=scratch, **PG)
            try:
                assert await scratch_conn.fetchval("SELECT current_database()") == scratch
            finally:
                await scratch_conn.close()
        finally:
            await conn.execute(f'DROP DATABASE "{scratch}"')
    finally:
        await conn.close()


def _danish_message(recipient: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Komponent <kursus@komponent.example>"
    msg["To"] = recipient
    msg["Subject"] = DANISH_SUBJECT
    msg["Message-ID"] = f"<{uuid.uuid4().hex}@komponent.example>"
    # 8bit keeps the UTF-8 bytes literally in the stored file, not base64 or quoted-printable.
    msg.set_content(DANISH_BODY, charset="utf-8", cte="8bit")
    return msg


def _eml_files(maildir: Path) -> list[Path]:
    return sorted(maildir.glob("*.eml"))


def _stored(maildir: Path, message_id: str) -> Path:
    matches = [p for p in _eml_files(maildir) if message_id.encode() in p.read_bytes()]
    assert len(matches) == 1, f"expected one stored message with {message_id} in {maildir}"
    return matches[0]


async def test_smtp_sink_stores_message_with_danish_text_intact() -> None:
    recipient = f"deltager-{uuid.uuid4().hex[:8]}@kunde.example"
    msg = _danish_message(recipient)
    await aiosmtplib.send(msg, hostname=SMTP_HOST, port=SMTP_PORT, timeout=30)

    # The sink writes the file before it answers 250, so it is there once send() returned.
    path = _stored(MAIL_DIR, msg["Message-ID"])
    raw = path.read_bytes()
    for line in filter(None, DANISH_BODY.splitlines()):
        assert line.encode("utf-8") in raw  # literal UTF-8 bytes, not re-encoded
    parsed = BytesParser(policy=policy.default).parsebytes(raw)
    assert parsed["Subject"] == DANISH_SUBJECT
    assert parsed.get_content().replace("\r\n", "\n") == DANISH_BODY
    assert parsed.get_all("X-Envelope-To") == [f"<{recipient}>"]
    assert path.name.endswith(".eml") and path.name.split("-")[0].isdigit()


async def test_smtp_sink_fault_injection_rejects_matching_recipients(tmp_path: Path) -> None:
    # A private sink instance on a free port, so the shared one stays fault-free.
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "deploy" / "local" / "smtp_sink.py"),
        "--port",
        "0",
        "--maildir",
        str(tmp_path),
        "--reject-permanent",
        r"^bounce@",
        "--reject-temporary",
        r"^later@",
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        first = await asyncio.wait_for(proc.stdout.readline(), timeout=30)
        port = json.loads(first)["port"]

        with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as permanent:
            await aiosmtplib.send(_danish_message("bounce@kunde.example"), hostname="127.0.0.1", port=port)
        assert permanent.value.recipients[0].code == 550

        with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as temporary:
            await aiosmtplib.send(_danish_message("later@kunde.example"), hostname="127.0.0.1", port=port)
        assert temporary.value.recipients[0].code == 451

        ok = _danish_message("ok@kunde.example")
        await aiosmtplib.send(ok, hostname="127.0.0.1", port=port)
        stored = _stored(tmp_path, ok["Message-ID"])
        assert _eml_files(tmp_path) == [stored]  # the refused messages left nothing behind
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), timeout=10)
