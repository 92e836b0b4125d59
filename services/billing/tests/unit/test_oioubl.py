"""§7.6 items 26-28: OIOUBL 2.1 against the UBL 2.1 XSD and ERST's OIOUBL schematron."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from komponent_billing.adapters.einvoice_validation import EInvoiceFormat, EInvoiceValidator, Severity
from komponent_billing.adapters.oioubl import render_oioubl
from komponent_billing.adapters.ubl_xml import NS_CAC, NS_CBC
from komponent_billing.domain.documents import CreditNote, Invoice, InvoiceLine
from lxml import etree

EXAMPLES = Path(__file__).resolve().parents[5] / "shared" / "docs" / "einvoice-examples"
NS = {"cac": NS_CAC, "cbc": NS_CBC}
OIOUBL = EInvoiceFormat.OIOUBL21


def _first(tree: etree._Element, path: str) -> etree._Element:
    found = tree.find(path, NS)
    assert found is not None, path
    return found


def test_examples_in_shared_docs_are_clean(validator: EInvoiceValidator) -> None:
    for name in ("oioubl_invoice_dk_kommune.xml", "oioubl_creditnote_dk_kommune.xml"):
        assert validator.validate((EXAMPLES / name).read_bytes(), OIOUBL).fatal == (), name


def test_seed_invoice_passes(validator: EInvoiceValidator, seed_invoice: Invoice) -> None:
    report = validator.ensure_sendable(render_oioubl(seed_invoice), OIOUBL)
    assert report.fatal == ()
    assert report.rules_release.startswith("1.17")


def test_seed_credit_note_passes(validator: EInvoiceValidator, seed_credit_note: CreditNote) -> None:
    xml = render_oioubl(seed_credit_note)
    assert validator.validate(xml, OIOUBL).fatal == ()
    tree = etree.fromstring(xml)
    ref = _first(tree, "cac:BillingReference/cac:InvoiceDocumentReference")
    assert ref.findtext("cbc:ID", namespaces=NS) == "2023-000123"
    assert ref.findtext("cbc:UUID", namespaces=NS) == seed_credit_note.credited_invoice.uuid
    assert _first(tree, "cac:DiscrepancyResponse/cbc:Description").text == "Kurset er aflyst"


def test_fractional_three_lines_pass_with_per_line_vat(
    validator: EInvoiceValidator, make_invoice: Callable[..., Invoice], make_line: Callable[..., InvoiceLine]
) -> None:
    invoice = make_invoice(
        *(make_line(n, 123_457) for n in ("Mette Æbelø Sørensen", "Jens Øster", "Åse Holm"))
    )
    xml = render_oioubl(invoice)
    tree = etree.fromstring(xml)
    assert _first(tree, "cac:TaxTotal/cbc:TaxAmount").text == "925.93"
    assert [t.text for t in tree.findall("cac:InvoiceLine/cac:TaxTotal/cbc:TaxAmount", NS)] == ["308.64"] * 3
    assert validator.validate(xml, OIOUBL).fatal == ()


def test_structured_address_tax_codes_and_vat_as_tax_exclusive_amount(seed_invoice: Invoice) -> None:
    tree = etree.fromstring(render_oioubl(seed_invoice))
    address = _first(tree, "cac:AccountingCustomerParty/cac:Party/cac:PostalAddress")
    assert address.findtext("cbc:AddressFormatCode", namespaces=NS) == "StructuredDK"
    assert address.findtext("cbc:StreetName", namespaces=NS) == "Rådhuspladsen"
    assert address.findtext("cbc:BuildingNumber", namespaces=NS) == "1"
    category = _first(tree, "cac:TaxTotal/cac:TaxSubtotal/cac:TaxCategory")
    assert category.findtext("cbc:ID", namespaces=NS) == "StandardRated"
    assert category.findtext("cac:TaxScheme/cbc:ID", namespaces=NS) == "63"
    assert _first(tree, "cac:LegalMonetaryTotal/cbc:TaxExclusiveAmount").text == "1375.00"
    assert _first(tree, "cac:AccountingCustomerParty/cac:Party/cac:Contact/cbc:ID").text == "Anne Jensen"


def _mutate(xml: bytes, path: str, value: str | None) -> bytes:
    tree = etree.fromstring(xml)
    node = _first(tree, path)
    if value is None:
        parent = node.getparent()
        assert parent is not None
        parent.remove(node)
    else:
        node.text = value
    return bytes(etree.tostring(tree, xml_declaration=True, encoding="UTF-8"))


@pytest.mark.parametrize(
    ("path", "value", "rule_id"),
    [
        ("cac:AccountingCustomerParty/cac:Party/cac:Contact/cbc:ID", None, "F-INV051"),
        ("cac:LegalMonetaryTotal/cbc:TaxExclusiveAmount", "5500.00", "F-INV127"),
    ],
)
def test_broken_oioubl_raises_the_official_rule(
    validator: EInvoiceValidator, seed_invoice: Invoice, path: str, value: str | None, rule_id: str
) -> None:
    report = validator.validate(_mutate(render_oioubl(seed_invoice), path, value), OIOUBL)
    assert rule_id in report.rule_ids(Severity.FATAL), report.findings
    assert not report.is_sendable


def test_discounted_lines_are_refused_rather_than_rendered_wrongly(
    make_invoice: Callable[..., Invoice], make_line: Callable[..., InvoiceLine]
) -> None:
    with pytest.raises(NotImplementedError):
        render_oioubl(make_invoice(replace(make_line(), discount_oere=1)))
