"""Validation of a registration as it arrives at intake, before it enters a course's partition.

Everything here is a pure function of the submitted form. Problems are collected rather than raised one
at a time so the participant sees every mistake at once; messages are Danish because participants read
them, codes are English because code and logs do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from komponent_contracts.identifiers import is_valid_cvr, is_valid_ean

_EMAIL_LOCAL = re.compile(r"[^\s@]+")
_EMAIL_DOMAIN_LABEL = re.compile(r"[^\W_](?:[\w-]*[^\W_])?")
_POSTAL_CODE = re.compile(r"\d{4}")
# Danish house numbers: 1-999 with an optional capital letter (BBR "husnummer"), e.g. "12", "12B".
_BUILDING_NUMBER = re.compile(r"[1-9]\d{0,2}[A-ZÆØÅ]?")


def _strip_separators(raw: str) -> str:
    # People copy numbers from letters and invoices with spaces or hyphens between digit groups.
    return re.sub(r"[\s-]", "", raw)


def normalise_ean(raw: str) -> str:
    """The 13-digit EAN location number as typed minus separators; ValueError when invalid.

    The check itself is the contracts package's, the one every event border applies, so intake can never
    accept an EAN that the RegistrationReceived schema would then refuse."""
    ean = _strip_separators(raw)
    if not is_valid_ean(ean):
        raise ValueError("EAN must be 13 digits with a valid GS1 check digit")
    return ean


def normalise_cvr(raw: str) -> str:
    """The 8-digit CVR number; accepts the ``DK`` prefix of the VAT number printed on invoices."""
    cvr = _strip_separators(raw)
    if cvr[:2].upper() == "DK":
        cvr = cvr[2:]
    if not is_valid_cvr(cvr):
        raise ValueError("CVR must be 8 digits, not starting with 0, passing the modulus 11 check")
    return cvr


@dataclass(frozen=True, slots=True)
class IntakeProblem:
    field: str
    code: str
    message_da: str


def canonical_email(address: str) -> str:
    """The key a participant is recognised by on a course: trimmed and lower-cased.

    For an address that ``normalise_email`` accepts this is exactly its result; an address that already
    passed the contract's stricter ``EmailStr`` needs no second check, only this form."""
    return address.strip().lower()


def normalise_email(raw: str) -> str:
    """Canonical form used to recognise the same participant twice on one course.

    Lower-cases the whole address: the local part is case-sensitive in theory, but no municipal mail
    system treats ``Anna@`` and ``anna@`` as different people, while treating them as different would let
    one person hold two seats. No provider-specific folding (dots, ``+tags``): that could merge colleagues.
    Raises ValueError when the address cannot be an email address.
    """
    email = canonical_email(raw)
    local, at, domain = email.rpartition("@")
    if not at or not _EMAIL_LOCAL.fullmatch(local) or len(email) > 254:
        raise ValueError("not an email address")
    labels = domain.split(".")
    if len(labels) < 2 or not all(_EMAIL_DOMAIN_LABEL.fullmatch(label) for label in labels):
        raise ValueError("email domain is not valid")
    return email


@dataclass(frozen=True, slots=True)
class BillingAddress:
    """Danish postal address with the building number kept apart from the street (OIOUBL needs both)."""

    organisation: str
    street_name: str
    building_number: str
    postal_code: str
    city: str
    floor_and_door: str | None = None


@dataclass(frozen=True, slots=True)
class RegistrationForm:
    """The fields a participant or booking unit submits; raw strings exactly as typed."""

    participant_name: str
    participant_email: str
    billing_address: BillingAddress
    ean: str | None
    cvr: str | None
    person_reference: str
    order_number: str | None = None
    account_string: str | None = None


@dataclass(frozen=True, slots=True)
class ValidRegistration:
    """A form that passed intake, with identifiers and email in canonical form."""

    participant_name: str
    participant_email: str
    billing_address: BillingAddress
    ean: str | None
    cvr: str | None
    person_reference: str
    order_number: str | None
    account_string: str | None


def _blank(value: str | None) -> bool:
    return value is None or not value.strip()


def _optional(value: str | None) -> str | None:
    return None if value is None or not value.strip() else value.strip()


def validate_billing_address(address: BillingAddress, field: str = "billing_address") -> list[IntakeProblem]:
    problems: list[IntakeProblem] = []
    required = {
        "organisation": "Angiv organisation.",
        "street_name": "Angiv vejnavn.",
        "city": "Angiv by.",
    }
    for name, message in required.items():
        if _blank(getattr(address, name)):
            problems.append(IntakeProblem(f"{field}.{name}", "required", message))
    if not _BUILDING_NUMBER.fullmatch(address.building_number.strip().upper()):
        problems.append(
            IntakeProblem(
                f"{field}.building_number",
                "invalid",
                "Husnummer skal være et tal, evt. med bogstav (fx 12B).",
            )
        )
    if not _POSTAL_CODE.fullmatch(address.postal_code.strip()):
        problems.append(IntakeProblem(f"{field}.postal_code", "invalid", "Postnummer skal være 4 cifre."))
    return problems


def validate_registration_form(form: RegistrationForm) -> ValidRegistration | list[IntakeProblem]:
    """Return the canonical registration, or every problem found.

    Public buyers are invoiced electronically by EAN, so an EAN or (for private buyers) a CVR is required;
    the person reference is mandatory on Danish public e-invoices and therefore checked here, at intake,
    rather than discovered when the invoice bounces weeks later.
    """
    problems: list[IntakeProblem] = []
    if _blank(form.participant_name):
        problems.append(IntakeProblem("participant_name", "required", "Angiv deltagerens navn."))
    email = ""
    try:
        email = normalise_email(form.participant_email)
    except ValueError:
        problems.append(IntakeProblem("participant_email", "invalid", "E-mailadressen er ikke gyldig."))
    ean: str | None = None
    if not _blank(form.ean):
        try:
            ean = normalise_ean(form.ean or "")
        except ValueError:
            problems.append(
                IntakeProblem("ean", "invalid", "EAN-nummeret skal være 13 cifre med gyldigt kontrolciffer.")
            )
    cvr: str | None = None
    if not _blank(form.cvr):
        try:
            cvr = normalise_cvr(form.cvr or "")
        except ValueError:
            problems.append(IntakeProblem("cvr", "invalid", "CVR-nummeret er ikke gyldigt."))
    if _blank(form.ean) and _blank(form.cvr):
        problems.append(IntakeProblem("ean", "required", "Angiv EAN-nummer (offentlig) eller CVR-nummer."))
    if _blank(form.person_reference):
        problems.append(IntakeProblem("person_reference", "required", "Angiv personreference."))
    problems.extend(validate_billing_address(form.billing_address))
    if problems:
        return problems
    address = form.billing_address
    return ValidRegistration(
        participant_name=form.participant_name.strip(),
        participant_email=email,
        billing_address=BillingAddress(
            organisation=address.organisation.strip(),
            street_name=address.street_name.strip(),
            building_number=address.building_number.strip().upper(),
            postal_code=address.postal_code.strip(),
            city=address.city.strip(),
            floor_and_door=_optional(address.floor_and_door),
        ),
        ean=ean,
        cvr=cvr,
        person_reference=form.person_reference.strip(),
        order_number=_optional(form.order_number),
        account_string=_optional(form.account_string),
    )
