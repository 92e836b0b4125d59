"""Peppol BIS Billing 3.0 (EN 16931 UBL) Invoice and CreditNote for Danish public buyers.

The primary e-invoice format (billing-dk.md §2.2-2.3), modelled on einvoice-examples/peppol_*.xml.
Element order follows the UBL 2.1 schema; the XSD check in :mod:`einvoice_validation` catches slips.
"""

from __future__ import annotations

from lxml import etree

from ..domain.documents import CreditNote, Document, Invoice, InvoiceLine
from ..domain.parties import BuyerSnapshot, PostalAddress, SellerConfig
from .ubl_xml import CURRENCY, NS_CREDIT_NOTE, NS_INVOICE, amount, cac, cbc, iso, root, serialise

CUSTOMIZATION_ID = "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0"
PROFILE_ID = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"
SCHEME_GLN = "0088"
SCHEME_DK_CVR = "0184"
PAYMENT_MEANS_DOMESTIC_ACCOUNT = "42"  # allowed for DK (DK-R-005); needs reg.nr. + konto (DK-R-006)
UNIT_ONE = "C62"
LATE_PAYMENT_NOTE = "Ved for sen betaling opkræves renter efter renteloven."


def render_peppol(document: Document) -> bytes:
    """UTF-8 XML bytes of a Peppol BIS 3.0 Invoice or CreditNote."""
    if isinstance(document, Invoice):
        return serialise(_invoice(document))
    return serialise(_credit_note(document))


def _invoice(inv: Invoice) -> etree._Element:
    doc = root(NS_INVOICE, "Invoice")
    cbc(doc, "CustomizationID", CUSTOMIZATION_ID)
    cbc(doc, "ProfileID", PROFILE_ID)
    cbc(doc, "ID", inv.number)
    cbc(doc, "IssueDate", iso(inv.issue_date))
    cbc(doc, "DueDate", iso(inv.due_date))
    cbc(doc, "InvoiceTypeCode", "380")
    if inv.note:
        cbc(doc, "Note", inv.note)
    _header_references(doc, inv)
    _parties_and_payment(doc, inv)
    cbc(cac(doc, "PaymentTerms"), "Note", f"{inv.payment_terms.note}. {LATE_PAYMENT_NOTE}")
    _totals(doc, inv)
    for index, line in enumerate(inv.lines, start=1):
        _line(doc, "InvoiceLine", "InvoicedQuantity", index, line)
    return doc


def _credit_note(cn: CreditNote) -> etree._Element:
    doc = root(NS_CREDIT_NOTE, "CreditNote")
    cbc(doc, "CustomizationID", CUSTOMIZATION_ID)
    cbc(doc, "ProfileID", PROFILE_ID)
    cbc(doc, "ID", cn.number)
    cbc(doc, "IssueDate", iso(cn.issue_date))
    cbc(doc, "CreditNoteTypeCode", "381")  # the CreditNote schema has no DueDate
    if cn.note:
        cbc(doc, "Note", cn.note)
    _header_references(doc, cn)
    _parties_and_payment(doc, cn)
    _totals(doc, cn)
    for index, line in enumerate(cn.lines, start=1):
        _line(doc, "CreditNoteLine", "CreditedQuantity", index, line)
    return doc


def _header_references(doc: etree._Element, document: Document) -> None:
    buyer = document.buyer
    cbc(doc, "DocumentCurrencyCode", CURRENCY)
    if buyer.account_string:
        cbc(doc, "AccountingCost", buyer.account_string)  # kontostreng
    cbc(doc, "BuyerReference", buyer.person_reference)  # personreference
    period = cac(doc, "InvoicePeriod")  # course dates = delivery period (§58 nr. 6, BR-CO-19)
    cbc(period, "StartDate", iso(document.delivery.start))
    cbc(period, "EndDate", iso(document.delivery.end))
    cbc(cac(doc, "OrderReference"), "ID", buyer.order_number)  # ordre-/rekvisitionsnummer
    if isinstance(document, CreditNote):
        ref = cac(cac(doc, "BillingReference"), "InvoiceDocumentReference")
        cbc(ref, "ID", document.credited_invoice.number)
        cbc(ref, "IssueDate", iso(document.credited_invoice.issue_date))


def _address(parent: etree._Element, address: PostalAddress) -> None:
    postal = cac(parent, "PostalAddress")
    # Peppol has no BuildingNumber in its syntax binding, so street and number share StreetName.
    cbc(postal, "StreetName", address.street_line)
    cbc(postal, "CityName", address.city)
    cbc(postal, "PostalZone", address.postal_code)
    cbc(cac(postal, "Country"), "IdentificationCode", address.country_code)


def _supplier(doc: etree._Element, seller: SellerConfig) -> None:
    party = cac(cac(doc, "AccountingSupplierParty"), "Party")
    cbc(party, "EndpointID", seller.vat_number, schemeID=SCHEME_DK_CVR)
    cbc(cac(party, "PartyName"), "Name", seller.trading_name)
    _address(party, seller.address)
    tax = cac(party, "PartyTaxScheme")
    cbc(tax, "CompanyID", seller.vat_number)  # DK-R-015
    cbc(cac(tax, "TaxScheme"), "ID", "VAT")
    legal = cac(party, "PartyLegalEntity")
    cbc(legal, "RegistrationName", seller.legal_name)
    cbc(legal, "CompanyID", seller.vat_number, schemeID=SCHEME_DK_CVR)  # DK-R-002/014
    contact = cac(party, "Contact")
    cbc(contact, "Name", "Fakturaafdelingen")
    cbc(contact, "Telephone", seller.phone)
    cbc(contact, "ElectronicMail", seller.email)


def _customer(doc: etree._Element, buyer: BuyerSnapshot) -> None:
    party = cac(cac(doc, "AccountingCustomerParty"), "Party")
    cbc(party, "EndpointID", buyer.ean, schemeID=SCHEME_GLN)  # routing by EAN
    cbc(cac(party, "PartyIdentification"), "ID", buyer.ean, schemeID=SCHEME_GLN)  # DK-R-013: scheme set
    cbc(cac(party, "PartyName"), "Name", buyer.party_name)
    _address(party, buyer.address)
    legal = cac(party, "PartyLegalEntity")
    cbc(legal, "RegistrationName", buyer.municipality_name)
    if buyer.cvr:
        cbc(legal, "CompanyID", f"DK{buyer.cvr}", schemeID=SCHEME_DK_CVR)
    contact = cac(party, "Contact")
    cbc(contact, "Name", buyer.billing_contact_name)
    if buyer.billing_contact_phone:
        cbc(contact, "Telephone", buyer.billing_contact_phone)
    cbc(contact, "ElectronicMail", buyer.billing_contact_email)


def _parties_and_payment(doc: etree._Element, document: Document) -> None:
    _supplier(doc, document.seller)
    _customer(doc, document.buyer)
    cbc(cac(doc, "Delivery"), "ActualDeliveryDate", iso(document.delivery.start))
    means = cac(doc, "PaymentMeans")
    cbc(means, "PaymentMeansCode", PAYMENT_MEANS_DOMESTIC_ACCOUNT)
    cbc(means, "PaymentID", document.number)
    account = cac(means, "PayeeFinancialAccount")
    cbc(account, "ID", document.seller.bank_account_number)
    cbc(cac(account, "FinancialInstitutionBranch"), "ID", document.seller.bank_registration_number)


def _totals(doc: etree._Element, document: Document) -> None:
    totals = document.totals
    tax_total = cac(doc, "TaxTotal")
    amount(tax_total, "TaxAmount", totals.vat_total_oere)
    for breakdown in totals.vat:
        subtotal = cac(tax_total, "TaxSubtotal")
        amount(subtotal, "TaxableAmount", breakdown.taxable_oere)
        amount(subtotal, "TaxAmount", breakdown.vat_oere)
        category = cac(subtotal, "TaxCategory")
        cbc(category, "ID", breakdown.rate.category.value)
        cbc(category, "Percent", breakdown.rate.percent_text)
        cbc(cac(category, "TaxScheme"), "ID", "VAT")
    monetary = cac(doc, "LegalMonetaryTotal")
    amount(monetary, "LineExtensionAmount", totals.lines_net_oere)
    amount(monetary, "TaxExclusiveAmount", totals.total_excl_vat_oere)
    amount(monetary, "TaxInclusiveAmount", totals.total_incl_vat_oere)
    amount(monetary, "PayableAmount", totals.total_incl_vat_oere)


def _line(doc: etree._Element, element: str, quantity_element: str, index: int, line: InvoiceLine) -> None:
    node = cac(doc, element)
    cbc(node, "ID", str(index))
    if line.participant_name:
        cbc(node, "Note", f"Deltager: {line.participant_name}")
    cbc(node, quantity_element, str(line.quantity), unitCode=UNIT_ONE)
    amount(node, "LineExtensionAmount", line.net_oere)
    if line.discount_oere:
        allowance = cac(node, "AllowanceCharge")
        cbc(allowance, "ChargeIndicator", "false")
        cbc(allowance, "AllowanceChargeReasonCode", "95")  # UNCL5189: discount
        cbc(allowance, "AllowanceChargeReason", "Rabat")
        amount(allowance, "Amount", line.discount_oere)
    item = cac(node, "Item")
    cbc(item, "Description", line.description)
    cbc(item, "Name", line.item_name)
    if line.seller_item_id:
        cbc(cac(item, "SellersItemIdentification"), "ID", line.seller_item_id)
    category = cac(item, "ClassifiedTaxCategory")
    cbc(category, "ID", line.vat.category.value)
    cbc(category, "Percent", line.vat.percent_text)
    cbc(cac(category, "TaxScheme"), "ID", "VAT")
    amount(cac(node, "Price"), "PriceAmount", line.unit_price_oere)  # unit price excl. VAT (§58 nr. 7)
