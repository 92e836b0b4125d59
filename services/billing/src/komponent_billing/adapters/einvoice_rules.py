"""Where the official validation artefacts live once ``tools/fetch_einvoice_rules.sh`` has run."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

FETCH_SCRIPT = Path(__file__).resolve().parents[3] / "tools" / "fetch_einvoice_rules.sh"
_REPO_ROOT = Path(__file__).resolve().parents[5]


class RulesNotInstalled(RuntimeError):
    """The artefacts are missing: validation cannot run, so nothing may be sent."""


@dataclass(frozen=True, slots=True)
class EInvoiceRules:
    root: Path
    peppol_release: str
    oioubl_release: str
    cen_xslt: Path
    peppol_xslt: Path
    oioubl_invoice_xslt: Path
    oioubl_credit_note_xslt: Path
    xsd_dir: Path

    @classmethod
    def load(cls, root: Path | None = None) -> EInvoiceRules:
        """Read ``manifest.json`` under ``root`` (default ``$EINVOICE_RULES_DIR`` or ``<repo>/var/einvoice-rules``)."""
        root = root or Path(os.environ.get("EINVOICE_RULES_DIR", _REPO_ROOT / "var" / "einvoice-rules"))
        manifest_path = root / "manifest.json"
        if not (root / "COMPLETE").is_file() or not manifest_path.is_file():
            raise RulesNotInstalled(
                f"official e-invoice rules not found in {root}; run {FETCH_SCRIPT} (needs mvn and java)"
            )
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        rules = cls(
            root=root,
            peppol_release=manifest["peppol"]["release"],
            oioubl_release=manifest["oioubl"]["release"],
            cen_xslt=root / manifest["peppol"]["cen"],
            peppol_xslt=root / manifest["peppol"]["peppol"],
            oioubl_invoice_xslt=root / manifest["oioubl"]["invoice"],
            oioubl_credit_note_xslt=root / manifest["oioubl"]["credit_note"],
            xsd_dir=root / "xsd",
        )
        missing = [
            p for p in (rules.cen_xslt, rules.peppol_xslt, rules.oioubl_invoice_xslt) if not p.is_file()
        ]
        if missing:
            raise RulesNotInstalled(f"incomplete rules in {root}: {missing}; run {FETCH_SCRIPT}")
        return rules
