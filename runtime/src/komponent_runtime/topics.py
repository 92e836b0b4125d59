"""Create the platform's topics explicitly, with their declared partition counts (idempotent)."""

from __future__ import annotations

import asyncio
import logging
import sys

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from komponent_contracts.topics import ALL_TOPICS, TopicSpec

from komponent_runtime.settings import KafkaSettings, topic_name

log = logging.getLogger(__name__)


async def ensure_topics(
    bootstrap_servers: str, specs: tuple[TopicSpec, ...] = ALL_TOPICS, replication: int = 1
) -> list[str]:
    """Create the topics that don't exist yet; return their names. Existing ones are left as they are."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id="komponent-topics")
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
                        topic_configs={"retention.ms": str(s.retention_ms)},
                    )
                    for s in missing
                ]
            )
        return [s.name for s in missing]
    finally:
        await admin.close()


def main() -> int:
    created = asyncio.run(ensure_topics(KafkaSettings().bootstrap_servers))
    print(f"topics created: {len(created)} ({', '.join(created) or 'all existed'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
