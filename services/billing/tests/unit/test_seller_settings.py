"""The seller on invoices comes from BILLING_SELLER_* settings, checked at start-up: a wrong CVR, IBAN or
bank account stops the service, and so does a placeholder where the deployment requires real details."""

from __future__ import annotations

import pytest
from komponent_billing.config import SellerSettings
from komponent_billing.domain.parties import KOMPONENT

REAL = {
    "BILLING_SELLER_CVR": "DK 13 58 56 28",
    "BILLING_SELLER_BANK_REGISTRATION_NUMBER": "0040",
    "BILLING_SELLER_BANK_ACCOUNT_NUMBER": "0440116243",
    "BILLING_SELLER_IBAN": "DK50 0040 0440 1162 43",
    "BILLING_SELLER_BIC": "DABADKKK",
    "BILLING_SELLER_STREET_NAME": "Strandgade",
    "BILLING_SELLER_BUILDING_NUMBER": "27B",
    "BILLING_SELLER_POSTAL_CODE": "1401",
    "BILLING_SELLER_CITY": "København K",
}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in [*REAL, "BILLING_SELLER_REQUIRED"]:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_without_settings_the_seller_is_the_placeholder_komponent(env: pytest.MonkeyPatch) -> None:
    seller = SellerSettings().seller()
    assert seller == KOMPONENT
    assert seller.is_placeholder


def test_settings_replace_every_field_and_are_normalised(env: pytest.MonkeyPatch) -> None:
    for name, value in REAL.items():
        env.setenv(name, value)
    env.setenv("BILLING_SELLER_REQUIRED", "true")
    seller = SellerSettings().seller()
    assert (seller.cvr, seller.iban, seller.bank_account_number) == (
        "13585628",
        "DK5000400440116243",
        "0440116243",
    )
    assert seller.address.street_line == "Strandgade 27B" and seller.address.city == "København K"
    assert not seller.is_placeholder


def test_a_required_seller_refuses_the_placeholders(env: pytest.MonkeyPatch) -> None:
    env.setenv("BILLING_SELLER_REQUIRED", "true")
    with pytest.raises(ValueError, match="BILLING_SELLER_IBAN is still a placeholder"):
        SellerSettings().seller()
    # A real CVR alone is not enough: the bank details are still made up.
    env.setenv("BILLING_SELLER_CVR", REAL["BILLING_SELLER_CVR"])
    with pytest.raises(ValueError, match="placeholder"):
        SellerSettings().seller()


@pytest.mark.parametrize(
    ("name", "value", "rule"),
    [
        ("BILLING_SELLER_CVR", "13585627", "modulus-11"),
        ("BILLING_SELLER_IBAN", "DK50 0040 0440 1162 44", "mod-97"),
        ("BILLING_SELLER_IBAN", "DK50 0040 0440 1162", "18 characters"),
        ("BILLING_SELLER_BANK_REGISTRATION_NUMBER", "40", "4 digits"),
        ("BILLING_SELLER_BANK_ACCOUNT_NUMBER", "04401162431", "1-10 digits"),
        ("BILLING_SELLER_BIC", "DABA", "BIC"),
        ("BILLING_SELLER_POSTAL_CODE", "140", "postal code"),
    ],
)
def test_a_wrong_value_stops_start_up_with_the_setting_and_the_rule(
    env: pytest.MonkeyPatch, name: str, value: str, rule: str
) -> None:
    for real, real_value in REAL.items():
        env.setenv(real, real_value)
    env.setenv(name, value)
    with pytest.raises(ValueError, match=rule) as refused:
        SellerSettings().seller()
    assert str(refused.value).startswith("BILLING_SELLER_")
