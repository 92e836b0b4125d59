"""Kafka SASL/SCRAM over TLS is configuration only: the environment an operator sets (deploy/README.md,
"Kafka authentication and TLS") gives the broker and the plain aiokafka clients the same options.
No broker needed; the CA is a committed test certificate (public part only)."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from komponent_runtime.broker import _security, client_options, make_broker
from komponent_runtime.settings import KafkaSettings

TEST_CA = Path(__file__).parent / "test-ca.pem"


@pytest.fixture
def sasl_ssl_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka-0.kafka:9093,kafka-1.kafka:9093")
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "registration")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "s3cret-from-the-secret")
    monkeypatch.setenv("KAFKA_SSL_CAFILE", str(TEST_CA))


def _trusts_only_the_test_ca(context: object) -> None:
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    subjects = [dict(x[0] for x in ca["subject"]) for ca in context.get_ca_certs()]
    assert {"commonName": "komponent-test-ca"} in subjects


@pytest.mark.usefixtures("sasl_ssl_env")
def test_client_options_are_sasl_ssl_scram_sha_512_with_the_configured_ca() -> None:
    options = client_options(KafkaSettings())
    assert options["bootstrap_servers"] == "kafka-0.kafka:9093,kafka-1.kafka:9093"
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["sasl_plain_username"] == "registration"
    assert options["sasl_plain_password"] == "s3cret-from-the-secret"
    _trusts_only_the_test_ca(options["ssl_context"])


@pytest.mark.usefixtures("sasl_ssl_env")
def test_make_broker_connects_with_sasl_ssl_scram_sha_512() -> None:
    broker = make_broker(KafkaSettings(), "registration")
    params = broker._connection_kwargs  # what FastStream hands to aiokafka
    assert params["security_protocol"] == "SASL_SSL"
    assert params["sasl_mechanism"] == "SCRAM-SHA-512"
    assert params["sasl_plain_username"] == "registration"
    assert params["sasl_plain_password"] == "s3cret-from-the-secret"
    _trusts_only_the_test_ca(params["ssl_context"])


def test_sasl_without_credentials_refuses_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.delenv("KAFKA_SASL_USERNAME", raising=False)
    monkeypatch.delenv("KAFKA_SASL_PASSWORD", raising=False)
    with pytest.raises(ValueError, match="KAFKA_SASL_USERNAME"):
        _security(KafkaSettings())


def test_the_local_stack_default_is_plaintext(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KAFKA_SECURITY_PROTOCOL", raising=False)
    assert client_options(KafkaSettings())["security_protocol"] == "PLAINTEXT"
    assert _security(KafkaSettings()) is None
