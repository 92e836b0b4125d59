"""Configuration from the environment, the same way for every service (pydantic-settings).

Defaults point at the local stack started by `./dev up`; docker-compose and Kubernetes set the variables.
"""

from __future__ import annotations

import os
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class KafkaSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KAFKA_", extra="ignore")

    bootstrap_servers: str = "127.0.0.1:19092"
    # PLAINTEXT on loopback for the local stack; SASL_SSL with SCRAM in production.
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"] | None = None
    sasl_username: str | None = None
    sasl_password: str | None = None
    ssl_cafile: str | None = None
    # The relay hands a whole batch to the producer before it yields, so records batch without lingering;
    # a linger would only add its time to every hop.
    linger_ms: int = 0
    # The longest the broker holds an idle consumer's fetch when no partition in it has new records (a
    # record arriving ends the wait). While fetched records wait to be consumed the wait is 10 ms instead
    # (see kafka_fetching): aiokafka's one fetch in flight would otherwise hold a busy partition back.
    fetch_max_wait_ms: int = 500
    # Consumers commit their offsets at most this often (and when idle); records applied since the last
    # commit are delivered again after a crash or rebalance and dropped by the inbox (consuming.OffsetCommits).
    commit_interval_ms: int = 1000
    # Consumers nobody waits on (seat counts, billing, reminders) let records gather: the broker answers
    # their fetch when this many bytes are there or `gather_max_wait_ms` passed. Fewer, larger batches:
    # one transaction and one fetch for dozens of events instead of one each.
    gather_min_bytes: int = 64 * 1024
    gather_max_wait_ms: int = 250
    # Used when creating topics: 1 on the single local broker; production declares 3 and 2.
    replication_factor: int = 1
    min_insync_replicas: int | None = None


class DatabaseSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PG", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 55432
    user: str = "komponent"
    password: str = "komponent"
    pool_min: int = Field(default=2, validation_alias="PG_POOL_MIN")
    pool_max: int = Field(default=10, validation_alias="PG_POOL_MAX")

    def dsn(self, database: str) -> str:
        return f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{database}"


class HttpSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HTTP_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8000
    max_body_bytes: int = 64 * 1024


class ServiceSettings(BaseSettings):
    """Everything one service process needs. `SERVICE_DATABASE` overrides the database name."""

    model_config = SettingsConfigDict(env_prefix="SERVICE_", extra="ignore")

    name: str
    database: str | None = None
    outbox_poll_seconds: float = 1.0
    # Consumers' inbox rows (the record of applied events) are kept this long, then pruned every
    # `inbox_prune_every_seconds`; see `inbox` for why 30 days is safe.
    inbox_keep_seconds: float = 30 * 24 * 3600.0
    inbox_prune_every_seconds: float = 600.0

    @property
    def database_name(self) -> str:
        return self.database or self.name


def topic_name(base: str) -> str:
    """The topic's name in this deployment: `KAFKA_TOPIC_PREFIX` + the contract's name.

    Empty in production. Tests give each run its own prefix, so they get a fresh, isolated set of topics."""
    return os.environ.get("KAFKA_TOPIC_PREFIX", "") + base
