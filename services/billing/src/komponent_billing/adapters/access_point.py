"""Hand-off of a validated e-invoice to NemHandel/Peppol.

The provider is not chosen yet, so the service depends on the :class:`AccessPoint` protocol only. The one
implementation today writes the XML to a folder: useful locally and in tests, and honest about not
sending anything anywhere.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from .einvoice_validation import EInvoiceFormat


@dataclass(frozen=True, slots=True)
class Delivery:
    """What the access point gives back: its own message id, to match later receipts/rejections."""

    message_id: str
    location: str


class AccessPoint(Protocol):
    def submit(self, *, document_number: str, receiver_ean: str, fmt: EInvoiceFormat, xml: bytes) -> Delivery:
        """Hand over one validated document; idempotent per document number and format."""
        ...


class FolderAccessPoint:
    """Writes ``<folder>/<receiver EAN>/<number>.<format>.xml``. Sends nothing."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def submit(self, *, document_number: str, receiver_ean: str, fmt: EInvoiceFormat, xml: bytes) -> Delivery:
        if not re.fullmatch(r"[A-Za-z0-9-]+", document_number) or not receiver_ean.isdigit():
            raise ValueError("document number and EAN must be safe file-name parts")
        target_dir = self.folder / receiver_ean
        target_dir.mkdir(parents=True, exist_ok=True)
        target = target_dir / f"{document_number}.{fmt.value}.xml"
        if target.exists():
            if target.read_bytes() != xml:
                raise FileExistsError(
                    f"{target} already holds a different document; numbers are never reused"
                )
        else:
            partial = target.with_suffix(".partial")
            partial.write_bytes(xml)
            os.replace(partial, target)  # atomic: a reader never sees half a document
        return Delivery(
            message_id=f"folder:{receiver_ean}/{document_number}.{fmt.value}", location=str(target)
        )
