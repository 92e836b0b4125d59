"""Billing's own settings (environment, prefix BILLING_); the shared ones are in komponent_runtime.settings."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict

from .adapters.einvoice_validation import EInvoiceFormat
from .domain.parties import KOMPONENT, PostalAddress, SellerConfig


class BillingSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BILLING_", extra="ignore")

    # Where FolderAccessPoint writes e-invoices until a real access-point provider is chosen.
    access_point_dir: Path = Path("var/access-point")
    # Which of the two stored XML documents is handed to the access point.
    einvoice_format: Literal["peppol", "oioubl"] = "peppol"
    payment_days: int = 30
    delivery_poll_seconds: float = 1.0
    reminder_poll_seconds: float = 3600.0
    reminder_fees_enabled: bool = False  # renteloven fees; off for public buyers by default (§7.4)

    @property
    def delivery_format(self) -> EInvoiceFormat:
        return EInvoiceFormat.PEPPOL_BIS3 if self.einvoice_format == "peppol" else EInvoiceFormat.OIOUBL21


class SellerSettings(BaseSettings):
    """The seller on every invoice and credit note (environment, prefix BILLING_SELLER_). The defaults are
    Komponent's public details with a made-up CVR, bank account and IBAN: fine on a developer's machine,
    never on an invoice a municipality pays. With `BILLING_SELLER_REQUIRED=true` (the production overlay)
    the service refuses to start until they are set."""

    model_config = SettingsConfigDict(env_prefix="BILLING_SELLER_", extra="ignore")

    required: bool = False
    legal_name: str = KOMPONENT.legal_name
    trading_name: str = KOMPONENT.trading_name
    cvr: str = KOMPONENT.cvr
    street_name: str = KOMPONENT.address.street_name
    building_number: str = KOMPONENT.address.building_number
    postal_code: str = KOMPONENT.address.postal_code
    city: str = KOMPONENT.address.city
    phone: str = KOMPONENT.phone
    email: str = KOMPONENT.email
    web: str = KOMPONENT.web
    bank_registration_number: str = KOMPONENT.bank_registration_number
    bank_account_number: str = KOMPONENT.bank_account_number
    iban: str = KOMPONENT.iban
    bic: str = KOMPONENT.bic
    terms_url: str = KOMPONENT.terms_url

    def seller(self) -> SellerConfig:
        """The validated seller; ValueError naming the setting when a value is wrong or, with `required`,
        still a placeholder."""
        try:
            seller = SellerConfig.configured(
                legal_name=self.legal_name,
                trading_name=self.trading_name,
                cvr=self.cvr,
                address=PostalAddress(self.street_name, self.building_number, self.postal_code, self.city),
                phone=self.phone,
                email=self.email,
                web=self.web,
                bank_registration_number=self.bank_registration_number,
                bank_account_number=self.bank_account_number,
                iban=self.iban,
                bic=self.bic,
                terms_url=self.terms_url,
            )
        except ValueError as exc:
            raise ValueError(f"BILLING_SELLER_*: {exc}") from exc
        if self.required and seller.is_placeholder:
            raise ValueError(
                "BILLING_SELLER_REQUIRED is set but BILLING_SELLER_CVR, BILLING_SELLER_BANK_ACCOUNT_NUMBER"
                " or BILLING_SELLER_IBAN is still a placeholder"
            )
        return seller
