"""Intake validation: email normalisation, billing address, EAN/CVR and the person reference."""

from __future__ import annotations

import dataclasses

import pytest
from komponent_registration.domain.intake import (
    BillingAddress,
    IntakeProblem,
    RegistrationForm,
    ValidRegistration,
    normalise_email,
    validate_billing_address,
    validate_registration_form,
)

ADDRESS = BillingAddress(
    organisation="Randers Kommune, Børn og Skole",
    street_name="Laksetorvet",
    building_number="1",
    postal_code="8900",
    city="Randers C",
)

FORM = RegistrationForm(
    participant_name="  Anna Sørensen ",
    participant_email=" Anna.Soerensen@Randers.DK ",
    billing_address=ADDRESS,
    ean="5798 0004 16642",
    cvr=None,
    person_reference="AS1234",
    order_number="  ",
)


def problem_fields(result: ValidRegistration | list[IntakeProblem]) -> set[str]:
    assert isinstance(result, list)
    return {p.field for p in result}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("anna@randers.dk", "anna@randers.dk"),
        ("  Anna@Randers.DK\n", "anna@randers.dk"),
        ("ANNA+kursus@kl.dk", "anna+kursus@kl.dk"),  # tags are kept: no provider-specific folding
        ("søren@kommune.dk", "søren@kommune.dk"),
        ("a.b@sub.aarhus.dk", "a.b@sub.aarhus.dk"),
    ],
)
def test_email_is_normalised_for_duplicate_detection(raw: str, expected: str) -> None:
    assert normalise_email(raw) == expected


@pytest.mark.parametrize(
    "raw",
    ["", "anna", "anna@", "@randers.dk", "anna@randers", "an na@randers.dk", "anna@-x.dk", "anna@x..dk"],
)
def test_malformed_email_is_rejected(raw: str) -> None:
    with pytest.raises(ValueError):
        normalise_email(raw)


def test_valid_form_is_returned_in_canonical_form() -> None:
    result = validate_registration_form(FORM)
    assert isinstance(result, ValidRegistration)
    assert result.participant_name == "Anna Sørensen"
    assert result.participant_email == "anna.soerensen@randers.dk"
    assert result.ean == "5798000416642"
    assert result.order_number is None
    assert result.billing_address.building_number == "1"


def test_building_number_is_separate_and_may_carry_a_letter() -> None:
    assert validate_billing_address(dataclasses.replace(ADDRESS, building_number="12b")) == []
    result = validate_registration_form(
        dataclasses.replace(FORM, billing_address=dataclasses.replace(ADDRESS, building_number=" 12b "))
    )
    assert isinstance(result, ValidRegistration)
    assert result.billing_address.building_number == "12B"


@pytest.mark.parametrize("building_number", ["", "0", "Laksetorvet 1", "1234", "12-14"])
def test_invalid_building_number_is_reported(building_number: str) -> None:
    problems = validate_billing_address(dataclasses.replace(ADDRESS, building_number=building_number))
    assert [p.field for p in problems] == ["billing_address.building_number"]


@pytest.mark.parametrize("postal_code", ["", "890", "89000", "DK-8900"])
def test_postal_code_must_be_four_digits(postal_code: str) -> None:
    problems = validate_billing_address(dataclasses.replace(ADDRESS, postal_code=postal_code))
    assert [p.field for p in problems] == ["billing_address.postal_code"]


def test_every_problem_is_reported_at_once_in_danish() -> None:
    form = dataclasses.replace(
        FORM,
        participant_name=" ",
        participant_email="anna",
        ean="5798000416643",
        cvr="12345678",
        person_reference="",
        billing_address=dataclasses.replace(ADDRESS, street_name="", city=""),
    )
    result = validate_registration_form(form)
    assert problem_fields(result) == {
        "participant_name",
        "participant_email",
        "ean",
        "cvr",
        "person_reference",
        "billing_address.street_name",
        "billing_address.city",
    }
    assert isinstance(result, list)
    assert all(p.message_da for p in result)


def test_either_ean_or_cvr_is_required() -> None:
    result = validate_registration_form(dataclasses.replace(FORM, ean=None, cvr=None))
    assert problem_fields(result) == {"ean"}
    private = validate_registration_form(dataclasses.replace(FORM, ean="", cvr="DK24256790"))
    assert isinstance(private, ValidRegistration)
    assert private.cvr == "24256790"
    assert private.ean is None
