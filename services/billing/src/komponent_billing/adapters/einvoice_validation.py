"""Validate e-invoices with the official artefacts before anything leaves the house.

1. UBL 2.1 XSD (lxml).
2. The official Schematron, pre-compiled to XSLT, run with SaxonC-HE (saxonche): CEN EN16931 + Peppol
   2026.5 for Peppol BIS, ERST's OIOUBL schematron for OIOUBL. The SVRL output becomes :class:`Finding`s.

A document with any fatal finding is never handed to an access point: :func:`ensure_sendable` raises.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from lxml import etree
from saxonche import PySaxonProcessor

from .einvoice_rules import EInvoiceRules
from .ubl_xml import NS_CREDIT_NOTE, NS_INVOICE

NS_SVRL = "http://purl.oclc.org/dsdl/svrl"
_OIOUBL_RULE_ID = re.compile(r"^\s*\[([A-Z]-[A-Z]+\d+[A-Za-z]?)\]")


class EInvoiceFormat(Enum):
    PEPPOL_BIS3 = "peppol-bis-3"
    OIOUBL21 = "oioubl-2.1"


class Severity(Enum):
    FATAL = "fatal"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Finding:
    rule_id: str  # e.g. "BR-CO-15", "PEPPOL-EN16931-R003", "F-INV051", or "XSD"
    severity: Severity
    location: str
    text: str
    source: str  # which artefact said so: "UBL-2.1-XSD", "CEN-EN16931-UBL", "PEPPOL-EN16931-UBL", "OIOUBL"


@dataclass(frozen=True, slots=True)
class ValidationReport:
    format: EInvoiceFormat
    findings: tuple[Finding, ...]
    rules_release: str

    @property
    def fatal(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity is Severity.FATAL)

    @property
    def is_sendable(self) -> bool:
        return not self.fatal

    def rule_ids(self, severity: Severity | None = None) -> set[str]:
        return {f.rule_id for f in self.findings if severity is None or f.severity is severity}


class EInvoiceRejected(Exception):
    """Raised instead of sending: the document broke an official rule."""

    def __init__(self, report: ValidationReport) -> None:
        self.report = report
        summary = "; ".join(f"{f.rule_id}: {f.text}" for f in report.fatal[:5])
        super().__init__(
            f"{report.format.value} document has {len(report.fatal)} fatal finding(s): {summary}"
        )


def parse_svrl(svrl: str | bytes, source: str) -> list[Finding]:
    """Findings from SVRL. Peppol/CEN give ``@id`` and ``@flag``; OIOUBL puts ``[F-…]``/``[W-…]`` in the text
    and reports errors through both failed asserts and successful reports."""
    tree = etree.fromstring(svrl.encode() if isinstance(svrl, str) else svrl)
    findings = []
    for node in tree.iter(f"{{{NS_SVRL}}}failed-assert", f"{{{NS_SVRL}}}successful-report"):
        text = " ".join("".join(node.findtext(f"{{{NS_SVRL}}}text") or "").split())
        rule_id = node.get("id")
        flag = node.get("flag")
        if rule_id is None:
            match = _OIOUBL_RULE_ID.match(text)
            rule_id = match.group(1) if match else "UNKNOWN"
        if flag is None:
            flag = "warning" if rule_id.startswith("W-") else "fatal"
        severity = Severity.FATAL if flag in ("fatal", "error") else Severity.WARNING
        findings.append(Finding(rule_id, severity, node.get("location", ""), text, source))
    return findings


class EInvoiceValidator:
    """Compiles the stylesheets and schemas once; thread-safe ``validate``."""

    def __init__(self, rules: EInvoiceRules | None = None) -> None:
        self.rules = rules or EInvoiceRules.load()
        self._lock = threading.Lock()
        self._processor = PySaxonProcessor(license=False)
        # ERST's OIOUBL XSLT does not compile on SaxonC-HE 13 without this ("Bad parent pointer").
        self._processor.set_configuration_property("http://saxon.sf.net/feature/optimizationLevel", "0")
        self._xslt = self._processor.new_xslt30_processor()
        self._compiled: dict[Path, Any] = {}
        self._schema = self._load_schema()

    def _load_schema(self) -> etree.XMLSchema:
        # The OASIS UBL schemas import CCTS, XML-DSig and XAdES by namespace only (no schemaLocation).
        # A small driver schema imports those first, with locations, so libxml2 reuses them.
        imports = self.rules.xsd_dir / "imports"
        ubl = self.rules.xsd_dir / "ubl21" / "maindoc"
        locations = {
            "urn:un:unece:uncefact:data:specification:CoreComponentTypeSchemaModule:2": imports
            / "CCTS_CCT_SchemaModule.xsd",
            "http://www.w3.org/2000/09/xmldsig#": imports / "xmldsig-core-schema.xsd",
            "http://uri.etsi.org/01903/v1.3.2#": imports / "XAdES01903v132-201601.xsd",
            "http://uri.etsi.org/01903/v1.4.1#": imports / "XAdES01903v141-201601.xsd",
            NS_INVOICE: ubl / "UBL-Invoice-2.1.xsd",
            NS_CREDIT_NOTE: ubl / "UBL-CreditNote-2.1.xsd",
        }
        driver = etree.Element("{http://www.w3.org/2001/XMLSchema}schema")
        for namespace, path in locations.items():
            etree.SubElement(
                driver,
                "{http://www.w3.org/2001/XMLSchema}import",
                namespace=namespace,
                schemaLocation=path.resolve().as_uri(),
            )
        return etree.XMLSchema(driver)

    def _stylesheet(self, path: Path) -> Any:
        if path not in self._compiled:
            self._compiled[path] = self._xslt.compile_stylesheet(stylesheet_file=str(path))
        return self._compiled[path]

    def _stylesheets(self, fmt: EInvoiceFormat, root_ns: str) -> list[tuple[str, Path]]:
        if fmt is EInvoiceFormat.PEPPOL_BIS3:
            return [("CEN-EN16931-UBL", self.rules.cen_xslt), ("PEPPOL-EN16931-UBL", self.rules.peppol_xslt)]
        if root_ns == NS_CREDIT_NOTE:
            return [("OIOUBL", self.rules.oioubl_credit_note_xslt)]
        return [("OIOUBL", self.rules.oioubl_invoice_xslt)]

    def validate(self, xml: bytes, fmt: EInvoiceFormat) -> ValidationReport:
        release = (
            self.rules.peppol_release if fmt is EInvoiceFormat.PEPPOL_BIS3 else self.rules.oioubl_release
        )
        try:
            tree = etree.fromstring(xml)
        except etree.XMLSyntaxError as error:
            finding = Finding("XML", Severity.FATAL, "/", str(error), "XML parser")
            return ValidationReport(fmt, (finding,), release)
        findings: list[Finding] = []
        with self._lock:
            if not self._schema.validate(tree):
                findings.extend(
                    Finding("XSD", Severity.FATAL, f"line {e.line}", e.message, "UBL-2.1-XSD")
                    for e in self._schema.error_log
                )
            root_ns = etree.QName(tree).namespace or ""
            node = self._processor.parse_xml(xml_text=xml.decode("utf-8"))
            for source, path in self._stylesheets(fmt, root_ns):
                svrl = self._stylesheet(path).transform_to_string(xdm_node=node)
                findings.extend(parse_svrl(svrl, source))
        return ValidationReport(fmt, tuple(findings), release)

    def ensure_sendable(self, xml: bytes, fmt: EInvoiceFormat) -> ValidationReport:
        """Validate and raise :class:`EInvoiceRejected` on any fatal finding. Warnings pass."""
        report = self.validate(xml, fmt)
        if not report.is_sendable:
            raise EInvoiceRejected(report)
        return report
