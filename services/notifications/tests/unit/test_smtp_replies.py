from datetime import timedelta

import pytest
from komponent_notifications.domain.smtp_replies import (
    DeliveryOutcome,
    RetryPolicy,
    classify_connection_failure,
    classify_reply,
)


@pytest.mark.parametrize(
    ("code", "outcome"),
    [
        (250, DeliveryOutcome.ACCEPTED),
        (251, DeliveryOutcome.ACCEPTED),
        (421, DeliveryOutcome.TRANSIENT),  # service shutting down the channel
        (450, DeliveryOutcome.TRANSIENT),  # mailbox busy / greylisting
        (451, DeliveryOutcome.TRANSIENT),  # local error, try later
        (452, DeliveryOutcome.TRANSIENT),  # insufficient storage
        (550, DeliveryOutcome.PERMANENT),  # no such mailbox
        (552, DeliveryOutcome.PERMANENT),  # message too big, after DATA
        (553, DeliveryOutcome.PERMANENT),
        (554, DeliveryOutcome.PERMANENT),  # transaction failed / policy rejection
    ],
)
def test_reply_codes_are_classified_as_rfc_5321_says(code: int, outcome: DeliveryOutcome) -> None:
    assert classify_reply(code) is outcome


def test_552_to_rcpt_is_treated_as_temporary() -> None:
    assert classify_reply(552, during_rcpt=True) is DeliveryOutcome.TRANSIENT


def test_connection_failures_may_be_retried() -> None:
    assert classify_connection_failure() is DeliveryOutcome.TRANSIENT


def test_backoff_grows_exponentially_and_is_capped() -> None:
    policy = RetryPolicy(
        max_attempts=6, base_delay=timedelta(seconds=2), factor=4, max_delay=timedelta(minutes=1)
    )
    assert policy.delay_before(1) == timedelta(0)
    assert [policy.delay_before(n) for n in range(2, 7)] == [
        timedelta(seconds=2),
        timedelta(seconds=8),
        timedelta(seconds=32),
        timedelta(minutes=1),
        timedelta(minutes=1),
    ]
    assert policy.delay_before(10_000) == timedelta(minutes=1)


def test_jitter_only_shortens_the_wait_and_by_at_most_half() -> None:
    policy = RetryPolicy(base_delay=timedelta(seconds=10), factor=2, max_delay=timedelta(minutes=5))
    assert policy.delay_before(2, jitter=0.0) == timedelta(seconds=10)
    assert timedelta(seconds=5) < policy.delay_before(2, jitter=0.999) < timedelta(seconds=10)
    with pytest.raises(ValueError, match="jitter"):
        policy.delay_before(2, jitter=1.0)


def test_only_transient_failures_are_retried_and_only_a_bounded_number_of_times() -> None:
    policy = RetryPolicy(max_attempts=3)
    assert policy.should_retry(DeliveryOutcome.TRANSIENT, attempts_made=1)
    assert policy.should_retry(DeliveryOutcome.TRANSIENT, attempts_made=2)
    assert not policy.should_retry(DeliveryOutcome.TRANSIENT, attempts_made=3)
    assert not policy.should_retry(DeliveryOutcome.PERMANENT, attempts_made=1)
    assert not policy.should_retry(DeliveryOutcome.ACCEPTED, attempts_made=1)
