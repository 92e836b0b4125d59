"""The Kafka broker every service uses, configured for safety first.

Producer: `acks=all` with idempotence, so a retried send can't duplicate or reorder within a partition.
Consumers are set up in `consuming.py`: they commit only after the handler ran, start from the earliest
offset when a group is new, and are named `<service>.<purpose>`.
"""

from __future__ import annotations

import asyncio
import logging
import ssl

from aiokafka import AIOKafkaProducer
from faststream.kafka import KafkaBroker
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

from komponent_runtime.outbox import Publisher
from komponent_runtime.settings import KafkaSettings


def _security(settings: KafkaSettings) -> BaseSecurity | None:
    if settings.security_protocol == "PLAINTEXT":
        return None
    context = (
        ssl.create_default_context(cafile=settings.ssl_cafile)
        if "SSL" in settings.security_protocol
        else None
    )
    if settings.security_protocol == "SSL":
        return BaseSecurity(ssl_context=context, use_ssl=True)
    if not (settings.sasl_username and settings.sasl_password):
        raise ValueError("KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD are required for SASL")
    sasl = {"SCRAM-SHA-256": SASLScram256, "SCRAM-SHA-512": SASLScram512, "PLAIN": SASLPlaintext}[
        settings.sasl_mechanism or "SCRAM-SHA-512"
    ]
    return sasl(
        settings.sasl_username, settings.sasl_password, ssl_context=context, use_ssl=context is not None
    )


def client_options(settings: KafkaSettings) -> dict[str, object]:
    """Connection options for plain aiokafka clients (admin, tools), matching the broker's security."""
    options: dict[str, object] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "security_protocol": settings.security_protocol,
    }
    if "SSL" in settings.security_protocol:
        options["ssl_context"] = ssl.create_default_context(cafile=settings.ssl_cafile)
    if settings.security_protocol.startswith("SASL"):
        options.update(
            sasl_mechanism=settings.sasl_mechanism or "SCRAM-SHA-512",
            sasl_plain_username=settings.sasl_username,
            sasl_plain_password=settings.sasl_password,
        )
    return options


def make_broker(settings: KafkaSettings, client_id: str) -> KafkaBroker:
    # No FastStream telemetry middleware: for every fetched batch it starts two root spans (a trace of their
    # own, with a link per record) and wraps every publish, costing about as much as the work itself.
    # The runtime traces what ops follow instead: one CONSUMER span per event (`consuming`), one PRODUCER
    # span per record the outbox relay publishes (`outbox`), both in the registration's own trace.
    return KafkaBroker(
        settings.bootstrap_servers,
        client_id=client_id,
        acks="all",
        enable_idempotence=True,
        linger_ms=settings.linger_ms,
        allow_auto_create_topics=False,
        security=_security(settings),
        graceful_timeout=10.0,
        # Handlers take aiokafka records as they are (see consuming._raw_body): no dependency injection.
        apply_types=False,
        # FastStream's "Received"/"Processed" lines per message are debugging detail, not operations logs.
        log_level=logging.DEBUG,
        # Through the root logger, so its lines are JSON with trace ids like ours (not coloured stdout).
        logger=logging.getLogger("faststream"),
    )


def broker_publisher(broker: KafkaBroker) -> Publisher:
    """Adapt the broker to the outbox relay: hand a record to the broker's aiokafka producer and return its
    delivery future.

    Straight to the producer the broker started (same connection and settings: acks=all, idempotence),
    not through `broker.publish`: the relay's records are finished Kafka records, and FastStream's publish
    pipeline (middlewares, message building, header encoding) cost more per record than sending it."""

    async def publish(
        topic: str, key: bytes, value: bytes, headers: dict[str, str]
    ) -> asyncio.Future[object]:
        encoded = [(name, text.encode()) for name, text in headers.items()]
        future: asyncio.Future[object] = await _started_producer(broker).send(
            topic, value, key=key, headers=encoded
        )
        return future

    return publish


def _started_producer(broker: KafkaBroker) -> AIOKafkaProducer:
    # FastStream 0.7 keeps the started AIOKafkaProducer in its producer state; a missing attribute means
    # the broker is not started (or FastStream changed: the relay tests fail loudly then).
    producer: AIOKafkaProducer | None = getattr(broker.config.producer._producer, "producer", None)  # type: ignore[attr-defined]
    if producer is None:
        raise RuntimeError("the Kafka broker is not started")
    return producer
