"""Create the platform's topics explicitly, with their declared partition counts (idempotent)."""

from __future__ import annotations

import asyncio
import logging
import sys

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from komponent_contracts.topics import ALL_TOPICS, TopicSpec

from komponent_runtime.broker import client_options
from komponent_runtime.settings import KafkaSettings, topic_name

log = logging.getLogger(__name__)


async def ensure_topics(
    settings: KafkaSettings | None = None,
    specs: tuple[TopicSpec, ...] = ALL_TOPICS,
    *,
    replication: int = 1,
    min_insync_replicas: int | None = None,
) -> list[str]:
    """Create the topics that don't exist yet; return their names. Existing ones are left as they are.

    Production declares replication 3 and `min.insync.replicas=2` (deploy/kafka/topics.yaml); the
    single-broker local stack and tests use 1."""
    settings = settings or KafkaSettings()
    admin = AIOKafkaAdminClient(client_id="komponent-topics", **client_options(settings))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        specs = tuple(TopicSpec(topic_name(s.name), s.partitions, s.retention_ms) for s in specs)
        missing = [s for s in specs if s.name not in existing]
        if missing:
            await admin.create_topics(
                [
                    NewTopic(
                        s.name,
                        num_partitions=s.partitions,
                        replication_factor=replication,
                        topic_configs={
                            "retention.ms": str(s.retention_ms),
                            **(
                                {"min.insync.replicas": str(min_insync_replicas)}
                                if min_insync_replicas
                                else {}
                            ),
                        },
                    )
                    for s in missing
                ]
            )
        return [s.name for s in missing]
    finally:
        await admin.close()


def main() -> int:
    settings = KafkaSettings()
    created = asyncio.run(
        ensure_topics(
            settings,
            replication=settings.replication_factor,
            min_insync_replicas=settings.min_insync_replicas,
        )
    )
    print(f"topics created: {len(created)} ({', '.join(created) or 'all existed'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
