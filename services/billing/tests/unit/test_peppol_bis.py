"""§7.6 items 20-25: Peppol BIS Billing 3.0 against the official CEN + Peppol 2026.5 rules."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
from komponent_billing.adapters.einvoice_validation import (
    EInvoiceFormat,
    EInvoiceRejected,
    EInvoiceValidator,
    Severity,
    parse_svrl,
)
from komponent_billing.adapters.peppol_bis import render_peppol
from komponent_billing.adapters.ubl_xml import NS_CAC, NS_CBC
from komponent_billing.domain.documents import CreditNote, Invoice, InvoiceLine
from lxml import etree

EXAMPLES = Path(__file__).resolve().parents[5] / "shared" / "docs" / "einvoice-examples"
NS = {"cac": NS_CAC, "cbc": NS_CBC}
PEPPOL = EInvoiceFormat.PEPPOL_BIS3


def _paths(xml: bytes) -> set[str]:
    tree = etree.fromstring(xml)
    return {
        "/".join(etree.QName(a).localname for a in [*reversed(list(el.iterancestors())), el])
        for el in tree.iter()
        if isinstance(el.tag, str)
    }


def _mutate(xml: bytes, change: Callable[[etree._Element], None]) -> bytes:
    tree = etree.fromstring(xml)
    change(tree)
    return bytes(etree.tostring(tree, xml_declaration=True, encoding="UTF-8"))


def _first(tree: etree._Element, path: str) -> etree._Element:
    found = tree.find(path, NS)
    assert found is not None, path
    return found


def test_examples_in_shared_docs_are_clean(validator: EInvoiceValidator) -> None:
    for name in ("peppol_invoice_dk_kommune.xml", "peppol_creditnote_dk_kommune.xml",
                 "peppol_invoice_3lines_fractional_vat.xml"):  # fmt: skip
        report = validator.validate((EXAMPLES / name).read_bytes(), PEPPOL)
        assert report.fatal == (), name


def test_seed_invoice_has_the_structure_of_the_reference_example(seed_invoice: Invoice) -> None:
    ours = _paths(render_peppol(seed_invoice))
    reference = _paths((EXAMPLES / "peppol_invoice_dk_kommune.xml").read_bytes())
    assert reference - ours == set()
    assert ours - reference == {
        "Invoice/InvoicePeriod",
        "Invoice/InvoicePeriod/StartDate",
        "Invoice/InvoicePeriod/EndDate",
    }


def test_seed_invoice_passes_xsd_and_official_rules(
    validator: EInvoiceValidator, seed_invoice: Invoice
) -> None:
    report = validator.validate(render_peppol(seed_invoice), PEPPOL)
    assert report.rules_release == "2026.5"
    assert report.fatal == ()
    assert report.findings == ()  # not even warnings


def test_seed_credit_note_passes_xsd_and_official_rules(
    validator: EInvoiceValidator, seed_credit_note: CreditNote
) -> None:
    report = validator.ensure_sendable(render_peppol(seed_credit_note), PEPPOL)
    assert report.findings == ()


def test_fractional_vat_invoice_is_accepted_with_document_level_vat(
    validator: EInvoiceValidator, make_invoice: Callable[..., Invoice], make_line: Callable[..., InvoiceLine]
) -> None:
    invoice = make_invoice(
        *(make_line(name, 123_457) for name in ("Mette Æbelø Sørensen", "Jens Øster", "Åse Holm"))
    )
    xml = render_peppol(invoice)
    tree = etree.fromstring(xml)
    assert _first(tree, "cac:TaxTotal/cbc:TaxAmount").text == "925.93"
    assert _first(tree, "cac:LegalMonetaryTotal/cbc:PayableAmount").text == "4629.64"
    assert validator.validate(xml, PEPPOL).fatal == ()


def test_discounted_line_is_valid(
    validator: EInvoiceValidator, make_invoice: Callable[..., Invoice], make_line: Callable[..., InvoiceLine]
) -> None:
    from dataclasses import replace

    invoice = make_invoice(replace(make_line(), discount_oere=55_000))
    assert validator.validate(render_peppol(invoice), PEPPOL).fatal == ()


def test_credit_note_has_no_due_date_and_references_the_invoice(seed_credit_note: CreditNote) -> None:
    tree = etree.fromstring(render_peppol(seed_credit_note))
    assert tree.find("cbc:DueDate", NS) is None
    assert _first(tree, "cbc:CreditNoteTypeCode").text == "381"
    assert _first(tree, "cac:BillingReference/cac:InvoiceDocumentReference/cbc:ID").text == "2023-000123"
    assert (
        _first(tree, "cac:BillingReference/cac:InvoiceDocumentReference/cbc:IssueDate").text == "2023-04-05"
    )


def test_course_dates_appear_as_invoice_period_and_delivery_date(seed_invoice: Invoice) -> None:
    tree = etree.fromstring(render_peppol(seed_invoice))
    assert seed_invoice.issue_date != seed_invoice.delivery.start
    assert _first(tree, "cac:InvoicePeriod/cbc:StartDate").text == "2023-05-03"
    assert _first(tree, "cac:InvoicePeriod/cbc:EndDate").text == "2023-05-04"
    assert _first(tree, "cac:Delivery/cbc:ActualDeliveryDate").text == "2023-05-03"


def test_public_buyer_references_are_where_receivers_look(seed_invoice: Invoice) -> None:
    tree = etree.fromstring(render_peppol(seed_invoice))
    assert _first(tree, "cbc:BuyerReference").text == "Anne Jensen"
    assert _first(tree, "cac:OrderReference/cbc:ID").text == "PO-778812"
    assert _first(tree, "cbc:AccountingCost").text == "4.22.05.01-0012"
    endpoint = _first(tree, "cac:AccountingCustomerParty/cac:Party/cbc:EndpointID")
    assert (endpoint.text, endpoint.get("schemeID")) == ("5798000123458", "0088")


def _drop(path: str) -> Callable[[etree._Element], None]:
    def change(tree: etree._Element) -> None:
        node = _first(tree, path)
        parent = node.getparent()
        assert parent is not None
        parent.remove(node)

    return change


def _set(path: str, value: str) -> Callable[[etree._Element], None]:
    def change(tree: etree._Element) -> None:
        _first(tree, path).text = value

    return change


def _both(*changes: Callable[[etree._Element], None]) -> Callable[[etree._Element], None]:
    def change(tree: etree._Element) -> None:
        for c in changes:
            c(tree)

    return change


def _second_note(tree: etree._Element) -> None:
    note = _first(tree, "cbc:Note")
    extra = etree.Element(f"{{{NS_CBC}}}Note")
    extra.text = "En note til"
    note.addnext(extra)


def _empty_element(tree: etree._Element) -> None:
    _first(tree, "cac:AccountingCustomerParty/cac:Party/cac:Contact/cbc:Name").text = ""


NEGATIVE_CASES = {
    "missing BuyerReference and OrderReference": (_both(_drop("cbc:BuyerReference"), _drop("cac:OrderReference")),
                                                   "PEPPOL-EN16931-R003"),
    "bad GLN": (_both(_set("cac:AccountingCustomerParty/cac:Party/cbc:EndpointID", "5798000123459"),
                      _set("cac:AccountingCustomerParty/cac:Party/cac:PartyIdentification/cbc:ID", "5798000123459")),
                "PEPPOL-COMMON-R040"),
    "PaymentMeansCode 30": (_set("cac:PaymentMeans/cbc:PaymentMeansCode", "30"), "DK-R-005"),
    "code 42 without reg.nr.": (_drop("cac:PaymentMeans/cac:PayeeFinancialAccount/cac:FinancialInstitutionBranch"),
                                "DK-R-006"),
    "TaxAmount off by 0.01 on the total": (_set("cac:TaxTotal/cbc:TaxAmount", "1375.01"), "BR-CO-15"),
    "two document Notes": (_second_note, "PEPPOL-EN16931-R002"),
    "empty element": (_empty_element, "PEPPOL-EN16931-R008"),
}  # fmt: skip


@pytest.mark.parametrize("case", NEGATIVE_CASES)
def test_broken_invoice_raises_the_official_rule(
    validator: EInvoiceValidator, seed_invoice: Invoice, case: str
) -> None:
    change, rule_id = NEGATIVE_CASES[case]
    xml = _mutate(render_peppol(seed_invoice), change)
    report = validator.validate(xml, PEPPOL)
    assert rule_id in report.rule_ids(Severity.FATAL), report.findings
    with pytest.raises(EInvoiceRejected) as rejected:
        validator.ensure_sendable(xml, PEPPOL)
    assert rule_id in str(rejected.value)


def test_negative_credit_note_total_is_refused_for_danish_suppliers(
    validator: EInvoiceValidator, seed_credit_note: CreditNote
) -> None:
    def negate(tree: etree._Element) -> None:
        for path in ("cac:LegalMonetaryTotal/cbc:LineExtensionAmount", "cac:LegalMonetaryTotal/cbc:TaxExclusiveAmount",
                     "cac:TaxTotal/cac:TaxSubtotal/cbc:TaxableAmount", "cac:CreditNoteLine/cbc:LineExtensionAmount"):  # fmt: skip
            _first(tree, path).text = "-5500.00"
        for path in ("cac:TaxTotal/cbc:TaxAmount", "cac:TaxTotal/cac:TaxSubtotal/cbc:TaxAmount"):
            _first(tree, path).text = "-1375.00"
        for path in (
            "cac:LegalMonetaryTotal/cbc:TaxInclusiveAmount",
            "cac:LegalMonetaryTotal/cbc:PayableAmount",
        ):
            _first(tree, path).text = "-6875.00"
        _first(tree, "cac:CreditNoteLine/cbc:CreditedQuantity").text = "-1"

    report = validator.validate(_mutate(render_peppol(seed_credit_note), negate), PEPPOL)
    assert "DK-R-016" in report.rule_ids(Severity.FATAL), report.findings


def test_schema_violation_is_a_fatal_xsd_finding(validator: EInvoiceValidator, seed_invoice: Invoice) -> None:
    def misplace(tree: etree._Element) -> None:
        due = _first(tree, "cbc:DueDate")
        tree.remove(due)
        tree.append(due)

    report = validator.validate(_mutate(render_peppol(seed_invoice), misplace), PEPPOL)
    assert "XSD" in report.rule_ids(Severity.FATAL)


def test_svrl_parsing_reads_id_flag_location_and_text() -> None:
    svrl = """<svrl:schematron-output xmlns:svrl="http://purl.oclc.org/dsdl/svrl">
      <svrl:failed-assert id="BR-CO-15" flag="fatal" location="/Invoice"><svrl:text>[BR-CO-15]-Sum</svrl:text>
      </svrl:failed-assert>
      <svrl:failed-assert id="PEPPOL-EN16931-R001" flag="warning" location="/x"><svrl:text>w</svrl:text>
      </svrl:failed-assert>
      <svrl:successful-report location="/y"><svrl:text>[F-INV127] The sum</svrl:text></svrl:successful-report>
      <svrl:failed-assert location="/z"><svrl:text>[W-LIB204] Hint</svrl:text></svrl:failed-assert>
    </svrl:schematron-output>"""
    findings = parse_svrl(svrl, "test")
    assert [(f.rule_id, f.severity) for f in findings] == [
        ("BR-CO-15", Severity.FATAL),
        ("PEPPOL-EN16931-R001", Severity.WARNING),
        ("F-INV127", Severity.FATAL),
        ("W-LIB204", Severity.WARNING),
    ]
    assert findings[0].location == "/Invoice" and findings[0].text == "[BR-CO-15]-Sum"


def test_issue_date_renders_iso(seed_invoice: Invoice) -> None:
    tree = etree.fromstring(render_peppol(seed_invoice))
    assert _first(tree, "cbc:IssueDate").text == date(2023, 4, 5).isoformat()
