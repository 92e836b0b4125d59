"""What an erased participant looks like, shared by every service that anonymises on
`ParticipantDataErased`. Pure functions, no I/O.

The placeholder address stays a syntactically valid address (consumers validate `Participant.email` as
`EmailStr`, which refuses the special-use `.invalid` TLD) on an RFC 2606 reserved domain, so nothing is ever
delivered to a real mailbox; it is unique per registration so unique constraints on (course, email) hold.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

ERASED_TEXT = "slettet"
ERASED_EMAIL_DOMAIN = "erased.example.org"


def erased_email(registration_id: UUID) -> str:
    return f"erased+{registration_id}@{ERASED_EMAIL_DOMAIN}"


def is_erased_email(address: str) -> bool:
    return address.lower().endswith("@" + ERASED_EMAIL_DOMAIN)


def erased_participant(registration_id: UUID) -> dict[str, Any]:
    """The `Participant` payload that replaces an erased one."""
    return {
        "name": ERASED_TEXT,
        "email": erased_email(registration_id),
        "job_title": ERASED_TEXT,
        "phone": None,
    }


def personal_values(participant: dict[str, Any] | None, *, with_job_title: bool = True) -> set[str]:
    """The strings of a `Participant` payload that identify the person: name, email, phone and (for data
    that is the participant's own) job title. Without it for data shared with others: a job title such as
    "Konsulent" would also match other participants' text. Strings under 4 characters are never matched."""
    if not participant:
        return set()
    fields = ("name", "email", "phone", "job_title") if with_job_title else ("name", "email", "phone")
    values = {str(participant.get(k) or "").strip() for k in fields}
    return {v for v in values if len(v) >= 4 and v != ERASED_TEXT and not is_erased_email(v)}


def scrub(value: Any, personal: set[str], registration_id: UUID) -> Any:
    """`value` (JSON-like) with every string that contains one of `personal` (case-insensitive) replaced by
    the placeholder: the erased address where the string was an address, `ERASED_TEXT` otherwise."""
    needles = [p.lower() for p in personal if p]
    if not needles:
        return value

    def walk(v: Any) -> Any:
        if isinstance(v, str):
            lowered = v.lower()
            if any(n in lowered for n in needles):
                return erased_email(registration_id) if "@" in v else ERASED_TEXT
            return v
        if isinstance(v, dict):
            return {k: walk(x) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x) for x in v]
        return v

    return walk(value)
