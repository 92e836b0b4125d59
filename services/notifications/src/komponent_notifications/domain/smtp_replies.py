"""How to read an SMTP server's answer, and how long to wait before trying again.

RFC 5321 §4.2.1: 2yz is success, 4yz a transient failure ("try again later": greylisting, full queue, rate
limit), 5yz permanent (unknown mailbox, policy rejection). Resending a 5yz unchanged will fail the same way
and can get our IP reputation hurt, so it is never retried.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import timedelta


class DeliveryOutcome(enum.Enum):
    ACCEPTED = "accepted"
    TRANSIENT = "transient"
    PERMANENT = "permanent"


# RFC 5321 §4.5.3.1.10: a 552 answer to RCPT ("too many recipients"/"mailbox full") was historically sent
# where 452 was meant, and clients are told to treat it as temporary.
_TRANSIENT_5XX_AT_RCPT = frozenset({552})


def classify_reply(code: int, *, during_rcpt: bool = False) -> DeliveryOutcome:
    if 200 <= code < 300:
        return DeliveryOutcome.ACCEPTED
    if 400 <= code < 500:
        return DeliveryOutcome.TRANSIENT
    if during_rcpt and code in _TRANSIENT_5XX_AT_RCPT:
        return DeliveryOutcome.TRANSIENT
    if 500 <= code < 600:
        return DeliveryOutcome.PERMANENT
    # Anything else is a broken or non-SMTP peer; a later attempt may reach a healthy one.
    return DeliveryOutcome.TRANSIENT


def classify_connection_failure() -> DeliveryOutcome:
    """Refused, reset, timed out, TLS failure: the message never got a verdict, so it may be tried again."""
    return DeliveryOutcome.TRANSIENT


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounded exponential backoff: base · factor^(attempt-1), capped, for at most `max_attempts` tries.

    Bounded on both axes so one unreachable mail server neither loops hot nor holds a message for days;
    after the last attempt the message is reported as failed (EmailFailed) for a human to look at.
    """

    max_attempts: int = 5
    base_delay: timedelta = timedelta(seconds=2)
    factor: int = 4
    max_delay: timedelta = timedelta(minutes=10)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("at least one attempt")
        if self.factor < 1 or self.base_delay <= timedelta(0) or self.max_delay < self.base_delay:
            raise ValueError("backoff must grow from a positive base up to a cap")

    def should_retry(self, outcome: DeliveryOutcome, attempts_made: int) -> bool:
        return outcome is DeliveryOutcome.TRANSIENT and attempts_made < self.max_attempts

    def delay_before(self, attempt: int, jitter: float = 0.0) -> timedelta:
        """Wait before attempt number `attempt` (2 = the first retry).

        `jitter` in [0, 1) is supplied by the caller (the domain holds no random source); it shortens the
        wait by up to half so that many messages failing together do not retry in lockstep.
        """
        if attempt < 2:
            return timedelta(0)
        if not 0.0 <= jitter < 1.0:
            raise ValueError("jitter is a fraction in [0, 1)")
        # Float seconds, exponent clamped: timedelta arithmetic would overflow long before the cap applies.
        raw_seconds = self.base_delay.total_seconds() * float(self.factor) ** min(attempt - 2, 64)
        capped = min(raw_seconds, self.max_delay.total_seconds())
        return timedelta(seconds=capped * (1.0 - jitter / 2))
