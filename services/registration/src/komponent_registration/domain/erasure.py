"""Erasure on request (GDPR art. 17): what an erased registration keeps and what it loses. Pure."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from komponent_contracts.erasure import erased_email, erased_participant, personal_values, scrub


def normalise_email(address: str) -> str:
    """The form intake stores (trimmed, lower-case), so a request finds every registration of the person."""
    return address.strip().lower()


def anonymised_details(registration_id: UUID, details: dict[str, Any]) -> dict[str, Any]:
    """The stored intake form without the participant: name, email, phone and job title become the fixed
    placeholder; the buyer (the municipality: EAN, address, order number) stays, except any field that
    repeats the participant's own data (a person reference naming them, their address as billing email).
    The terms version stays: it documents what was agreed."""
    personal = personal_values(details.get("participant"), with_job_title=False)
    kept = {k: v for k, v in details.items() if k != "participant"}
    return {**scrub(kept, personal, registration_id), "participant": erased_participant(registration_id)}


def anonymised_email(registration_id: UUID) -> str:
    return erased_email(registration_id)
