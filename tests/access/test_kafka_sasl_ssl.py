"""Kafka over SASL_SSL with SCRAM-SHA-512 on a real broker, configured only by the environment an operator
sets (deploy/README.md): a service runs over it end to end, and the broker refuses a wrong password and
the client refuses a broker certificate its CA did not sign. (runtime/tests/unit/test_kafka_security.py
checks the same settings reach every client; this proves they work against Kafka itself.)"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from datetime import datetime

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaConnectionError
from komponent_catalogue.domain.wall_clock import COPENHAGEN
from komponent_catalogue.load_seed import Api, load
from komponent_contracts.events import CoursePublished
from komponent_runtime import dead_letters
from komponent_runtime.auth import LOCAL_DEV_KEY
from komponent_runtime.broker import client_options
from komponent_runtime.settings import KafkaSettings, topic_name
from komponent_runtime.testing import ServiceProcess, create_database, owned_token, wait_until
from komponent_runtime.topics import ensure_topics
from support import secured_kafka
from support.platform import SEED_PAGE
from support.secured_kafka import SecuredKafka

pytestmark = pytest.mark.infra


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecuredKafka]:
    kafka = secured_kafka.start(tmp_path_factory.mktemp("secured-kafka"))
    yield kafka
    kafka.stop()


def _use(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)


async def _groups(options: dict[str, object]) -> set[str]:
    admin = AIOKafkaAdminClient(**options)  # type: ignore[arg-type]
    await admin.start()
    try:
        return {group[0] for group in await admin.list_consumer_groups()}
    finally:
        await admin.close()


async def test_a_service_publishes_and_consumes_over_sasl_ssl_scram(
    secured: SecuredKafka, monkeypatch: pytest.MonkeyPatch
) -> None:
    _use(monkeypatch, secured.client_env())
    refusals_before = secured.log_tail(100_000).count("Failed authentication")
    prefix = f"t{owned_token()}."
    monkeypatch.setenv("KAFKA_TOPIC_PREFIX", prefix)
    await ensure_topics()  # the topics tool's admin client
    assert topic_name("komponent.course.v1.dlq") in await dead_letters.dead_letter_topics(secured.bootstrap)

    catalogue = ServiceProcess("catalogue", database=await create_database("sasl"), topic_prefix=prefix)
    try:
        await catalogue.wait_ready()  # readiness pings the broker over SASL_SSL
        course = load(SEED_PAGE, Api(catalogue.url, LOCAL_DEV_KEY), datetime.now(COPENHAGEN).date())

        # The outbox relay published CoursePublished through the service's FastStream producer.
        options = client_options(KafkaSettings())
        reader = AIOKafkaConsumer(
            topic_name("komponent.course.v1"),
            auto_offset_reset="earliest",
            **options,  # type: ignore[arg-type]
        )
        await reader.start()
        try:
            published = []
            async with asyncio.timeout(30):
                while not published:
                    batches = await reader.getmany(timeout_ms=1000)
                    published = [
                        r
                        for records in batches.values()
                        for r in records
                        if dict(r.headers).get("ce_type") == CoursePublished.ce_type.encode()
                    ]
        finally:
            await reader.stop()
        assert json.loads(published[0].value)["course_id"] == course["course_id"]

        # Its subscriber joined its consumer group over SASL_SSL too.
        group = f"{prefix}catalogue.seats-taken"

        async def joined() -> bool:
            return group in await _groups(options)

        await wait_until(joined, timeout=60, what=f"consumer group {group} on the SASL_SSL broker")
    finally:
        catalogue.stop()
    # No connection of the service or the tools was refused, whichever test ran before this one.
    assert secured.log_tail(100_000).count("Failed authentication") == refusals_before


async def test_the_broker_refuses_a_wrong_password(
    secured: SecuredKafka, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _use(monkeypatch, secured.client_env(password="not-the-password"))
    monkeypatch.setenv("KAFKA_TOPIC_PREFIX", f"t{owned_token()}.")
    with caplog.at_level(logging.ERROR, logger="aiokafka"), pytest.raises(KafkaConnectionError):
        await ensure_topics()
    assert "SaslAuthenticationFailed" in caplog.text
    assert "invalid credentials with SASL mechanism SCRAM-SHA-512" in secured.log_tail(2000)


async def test_a_broker_certificate_from_another_ca_is_refused(
    secured: SecuredKafka, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _use(monkeypatch, secured.client_env(ca_file=secured.other_ca_file))
    monkeypatch.setenv("KAFKA_TOPIC_PREFIX", f"t{owned_token()}.")
    with caplog.at_level(logging.ERROR, logger="aiokafka"), pytest.raises(KafkaConnectionError):
        await ensure_topics()
    assert "CERTIFICATE_VERIFY_FAILED" in caplog.text
