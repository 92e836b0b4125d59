"""Which optional emails this installation sends, and which may carry an unsubscribe header."""

from __future__ import annotations

from dataclasses import dataclass

from .emails import EmailKind

# Transactional mail (confirmations, receipts, invoices) is exempt from one-click unsubscribe rules and a
# participant must not be able to opt out of learning that a course was cancelled or that an invoice is due.
# Only the courtesy messages, which the participant can live without, are unsubscribable.
OPTIONAL_KINDS: frozenset[EmailKind] = frozenset({EmailKind.BECAME_BINDING, EmailKind.COURSE_REMINDER})


@dataclass(frozen=True, slots=True)
class NotificationPolicy:
    send_became_binding: bool = True
    send_course_reminder: bool = True

    def wants(self, kind: EmailKind) -> bool:
        if kind is EmailKind.BECAME_BINDING:
            return self.send_became_binding
        if kind is EmailKind.COURSE_REMINDER:
            return self.send_course_reminder
        return True


def allows_unsubscribe(kind: EmailKind) -> bool:
    return kind in OPTIONAL_KINDS
