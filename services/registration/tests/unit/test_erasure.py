"""The anonymised registration form: what erasure keeps and what it replaces."""

from __future__ import annotations

import uuid

from komponent_contracts.events import Buyer, Participant
from komponent_contracts.examples import buyer
from komponent_registration.domain.erasure import anonymised_details, anonymised_email, normalise_email

RID = uuid.UUID("6f1c2d3e-4a5b-4c6d-8e7f-9a0b1c2d3e4f")


def _details() -> dict[str, object]:
    own = {
        **buyer().model_dump(mode="json"),
        "person_reference": "Mette Sørensen",
        "billing_email": "Mette.Sorensen@Odense.dk",
    }
    return {
        "participant": {
            "name": "Mette Sørensen",
            "email": "mette.sorensen@odense.dk",
            "job_title": "Leder af borgerservice",
            "phone": "+45 12 34 56 78",
        },
        "buyer": own,
        "terms_version": "2026-01",
    }


def test_the_participant_becomes_the_placeholder_and_stays_a_valid_participant() -> None:
    out = anonymised_details(RID, _details())
    participant = Participant.model_validate(out["participant"])
    assert participant.name == "slettet" and participant.job_title == "slettet" and participant.phone is None
    assert participant.email == anonymised_email(RID) == f"erased+{RID}@erased.example.org"


def test_the_buyer_stays_except_fields_repeating_the_participant() -> None:
    before = _details()
    out = anonymised_details(RID, before)
    kept = Buyer.model_validate(out["buyer"])
    original = before["buyer"]
    assert isinstance(original, dict)
    assert kept.ean == original["ean"] and kept.order_number == original["order_number"]
    assert kept.municipality_name == original["municipality_name"]
    assert kept.person_reference == "slettet"
    assert kept.billing_email == anonymised_email(RID)  # it was the participant's own address
    assert out["terms_version"] == "2026-01"
    assert "Sørensen" not in repr(out) and "sorensen" not in repr(out).lower()


def test_erasure_is_idempotent() -> None:
    once = anonymised_details(RID, _details())
    assert anonymised_details(RID, once) == once


def test_addresses_are_matched_as_intake_stores_them() -> None:
    assert normalise_email("  Mette.Sorensen@Odense.DK ") == "mette.sorensen@odense.dk"
