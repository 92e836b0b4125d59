"""The send-ledger key: one email per (triggering event, recipient, kind), ever.

Kafka delivers at least once and the process can crash between SMTP acceptance and recording it. The key
is stored in the ledger in the same transaction as the inbox row, and it also derives the Message-ID, so a
message resent after a crash carries the same Message-ID and receiving systems (and our email log) can
recognise it as the same message.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID, uuid5

from .emails import Email, EmailKind

# Fixed namespace: changing it would change every Message-ID derived so far.
_MESSAGE_ID_NAMESPACE = UUID("7c0e5f1e-4b8a-5d2e-9a51-6f3f2b0c9d41")


def normalise_address(address: str) -> str:
    # The domain part is case-insensitive; local parts technically are not, but no real mail system
    # treats them so, and two ledger rows for "Anna@x.dk" and "anna@x.dk" would mean two emails.
    return address.strip().lower()


@dataclass(frozen=True, slots=True)
class SendLedgerKey:
    event_id: UUID
    recipient: str
    kind: EmailKind

    def __post_init__(self) -> None:
        object.__setattr__(self, "recipient", normalise_address(self.recipient))
        if "@" not in self.recipient:
            raise ValueError("recipient must be an email address")

    @classmethod
    def for_email(cls, email: Email) -> SendLedgerKey:
        return cls(email.event_id, email.recipient.email, email.kind)

    @property
    def message_uuid(self) -> UUID:
        return uuid5(_MESSAGE_ID_NAMESPACE, f"{self.event_id}|{self.recipient}|{self.kind.value}")

    def message_id(self, domain: str) -> str:
        """RFC 5322 Message-ID, e.g. `<3f1c…@mail.komponent.dk>`."""
        return f"<{self.message_uuid}@{domain}>"
