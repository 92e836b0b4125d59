"""Consumer lag as ops teams see it: end offset minus the group's committed offset, per partition."""

from __future__ import annotations

import uuid

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from komponent_contracts import CloudEvent
from komponent_contracts.examples import all_examples
from komponent_runtime.metrics import consumer_lag
from komponent_runtime.testing import create_topics, kafka_bootstrap, produce

pytestmark = pytest.mark.infra


async def test_consumer_lag_counts_records_not_yet_committed(unique_topic) -> None:  # type: ignore[no-untyped-def]
    topic = unique_topic("lag")
    await create_topics(topic, partitions=1, with_dead_letters=False)
    example = all_examples()[0]
    await produce(topic, [CloudEvent(data=example, source="/test", id=uuid.uuid4()) for _ in range(5)])
    group = f"test.lag-{uuid.uuid4().hex[:6]}"
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap(), group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.commit({tp: 2})
    finally:
        await consumer.stop()
    assert await consumer_lag(kafka_bootstrap(), [group]) == {(group, topic, 0): 3}
