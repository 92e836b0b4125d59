"""Billing's own settings (environment, prefix BILLING_); the shared ones are in komponent_runtime.settings."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict

from .adapters.einvoice_validation import EInvoiceFormat


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
