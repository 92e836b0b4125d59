"""OIOUBL 2.1 Invoice and CreditNote: the fallback format for receivers that insist on it.

Same domain model as Peppol; the differences (billing-dk.md §2.4) are deliberate OIOUBL rules:
StructuredDK addresses with a separate BuildingNumber, the person reference in the buyer's Contact/ID
(F-INV051), StandardRated/63 tax codes, a TaxTotal on every line, and LegalMonetaryTotal/TaxExclusiveAmount
holding the VAT total rather than the net (F-INV127).
"""

from __future__ import annotations

from lxml import etree

from ..domain.documents import CreditNote, Document, Invoice, InvoiceLine
from ..domain.money import VatRate
from ..domain.parties import BuyerSnapshot, PostalAddress, SellerConfig
from .ubl_xml import CURRENCY, NS_CREDIT_NOTE, NS_INVOICE, amount, cac, cbc, iso, root, serialise

AGENCY_DK = "320"
PROFILE_ID = "urn:www.nesubl.eu:profiles:profile5:ver2.0"
TAX_SCHEME_MOMS = "63"
UNIT_EACH = "EA"


def render_oioubl(document: Document) -> bytes:
    """UTF-8 XML bytes of an OIOUBL 2.1 Invoice or CreditNote."""
    if any(line.discount_oere for line in document.lines):
        # Not modelled yet: OIOUBL line allowances need their own tax arithmetic. Peppol carries them.
        raise NotImplementedError("OIOUBL rendering of discounted lines is not implemented; use Peppol BIS")
    is_invoice = isinstance(document, Invoice)
    doc = root(NS_INVOICE, "Invoice") if is_invoice else root(NS_CREDIT_NOTE, "CreditNote")
    cbc(doc, "UBLVersionID", "2.1")
    cbc(doc, "CustomizationID", "OIOUBL-2.1")
    cbc(doc, "ProfileID", PROFILE_ID, schemeAgencyID=AGENCY_DK, schemeID="urn:oioubl:id:profileid-1.6")
    cbc(doc, "ID", document.number)
    cbc(doc, "CopyIndicator", "false")
    cbc(doc, "UUID", document.uuid)
    cbc(doc, "IssueDate", iso(document.issue_date))
    if isinstance(document, Invoice):
        cbc(
            doc, "InvoiceTypeCode", "380",
            listAgencyID=AGENCY_DK, listID="urn:oioubl:codelist:invoicetypecode-1.2",
        )  # fmt: skip
    if document.note:
        cbc(doc, "Note", document.note)
    cbc(doc, "DocumentCurrencyCode", CURRENCY)
    if document.buyer.account_string:
        cbc(doc, "AccountingCost", document.buyer.account_string)
    if isinstance(document, CreditNote):
        discrepancy = cac(doc, "DiscrepancyResponse")
        cbc(discrepancy, "ReferenceID", "1")
        cbc(discrepancy, "Description", document.reason)
    cbc(cac(doc, "OrderReference"), "ID", document.buyer.order_number)
    if isinstance(document, CreditNote):
        ref = cac(cac(doc, "BillingReference"), "InvoiceDocumentReference")
        cbc(ref, "ID", document.credited_invoice.number)
        cbc(ref, "UUID", document.credited_invoice.uuid)
        cbc(ref, "IssueDate", iso(document.credited_invoice.issue_date))
    _supplier(doc, document.seller)
    _customer(doc, document.buyer)
    cbc(cac(doc, "Delivery"), "ActualDeliveryDate", iso(document.delivery.start))
    if isinstance(document, Invoice):
        _payment(doc, document)
    _totals(doc, document)
    for index, line in enumerate(document.lines, start=1):
        if is_invoice:
            _line(doc, "InvoiceLine", "InvoicedQuantity", index, line)
        else:
            _line(doc, "CreditNoteLine", "CreditedQuantity", index, line)
    return serialise(doc)


def _address(parent: etree._Element, address: PostalAddress) -> None:
    postal = cac(parent, "PostalAddress")
    cbc(
        postal, "AddressFormatCode", "StructuredDK",
        listAgencyID=AGENCY_DK, listID="urn:oioubl:codelist:addressformatcode-1.1",
    )  # fmt: skip
    cbc(postal, "StreetName", address.street_name)
    cbc(postal, "BuildingNumber", address.building_number)
    cbc(postal, "CityName", address.city)
    cbc(postal, "PostalZone", address.postal_code)
    cbc(cac(postal, "Country"), "IdentificationCode", address.country_code)


def _tax_scheme(parent: etree._Element) -> None:
    scheme = cac(parent, "TaxScheme")
    cbc(scheme, "ID", TAX_SCHEME_MOMS, schemeAgencyID=AGENCY_DK, schemeID="urn:oioubl:id:taxschemeid-1.5")
    cbc(scheme, "Name", "Moms")


def _supplier(doc: etree._Element, seller: SellerConfig) -> None:
    party = cac(cac(doc, "AccountingSupplierParty"), "Party")
    cbc(party, "EndpointID", seller.vat_number, schemeID="DK:CVR")
    cbc(cac(party, "PartyIdentification"), "ID", seller.vat_number, schemeID="DK:CVR")
    cbc(cac(party, "PartyName"), "Name", seller.trading_name)
    _address(party, seller.address)
    tax = cac(party, "PartyTaxScheme")
    cbc(tax, "CompanyID", seller.vat_number, schemeID="DK:SE")
    _tax_scheme(tax)
    legal = cac(party, "PartyLegalEntity")
    cbc(legal, "RegistrationName", seller.legal_name)
    cbc(legal, "CompanyID", seller.vat_number, schemeID="DK:CVR")
    contact = cac(party, "Contact")
    cbc(contact, "ID", "FAKTURA")
    cbc(contact, "Name", "Fakturaafdelingen")
    cbc(contact, "Telephone", seller.phone)
    cbc(contact, "ElectronicMail", seller.email)


def _customer(doc: etree._Element, buyer: BuyerSnapshot) -> None:
    party = cac(cac(doc, "AccountingCustomerParty"), "Party")
    cbc(party, "EndpointID", buyer.ean, schemeAgencyID="9", schemeID="GLN")
    cbc(cac(party, "PartyIdentification"), "ID", buyer.ean, schemeAgencyID="9", schemeID="GLN")
    cbc(cac(party, "PartyName"), "Name", buyer.party_name)
    _address(party, buyer.address)
    legal = cac(party, "PartyLegalEntity")
    cbc(legal, "RegistrationName", buyer.municipality_name)
    if buyer.cvr:
        cbc(legal, "CompanyID", f"DK{buyer.cvr}", schemeID="DK:CVR")
    contact = cac(party, "Contact")
    cbc(contact, "ID", buyer.person_reference)  # personreference; mandatory (F-INV051)
    cbc(contact, "Name", buyer.billing_contact_name)
    if buyer.billing_contact_phone:
        cbc(contact, "Telephone", buyer.billing_contact_phone)
    cbc(contact, "ElectronicMail", buyer.billing_contact_email)


def _payment(doc: etree._Element, invoice: Invoice) -> None:
    means = cac(doc, "PaymentMeans")
    cbc(means, "ID", "1")
    cbc(means, "PaymentMeansCode", "42")
    cbc(means, "PaymentDueDate", iso(invoice.due_date))
    cbc(
        means, "PaymentChannelCode", "DK:BANK",
        listAgencyID=AGENCY_DK, listID="urn:oioubl:codelist:paymentchannelcode-1.1",
    )  # fmt: skip
    account = cac(means, "PayeeFinancialAccount")
    cbc(account, "ID", invoice.seller.bank_account_number)
    cbc(account, "PaymentNote", invoice.number)
    cbc(cac(account, "FinancialInstitutionBranch"), "ID", invoice.seller.bank_registration_number)
    terms = cac(doc, "PaymentTerms")
    cbc(terms, "ID", "1")
    cbc(terms, "PaymentMeansID", "1")
    amount(terms, "Amount", invoice.totals.total_incl_vat_oere)


def _tax_subtotal(parent: etree._Element, taxable_oere: int, vat_oere: int, rate: VatRate) -> None:
    subtotal = cac(parent, "TaxSubtotal")
    amount(subtotal, "TaxableAmount", taxable_oere)
    amount(subtotal, "TaxAmount", vat_oere)
    category = cac(subtotal, "TaxCategory")
    cbc(
        category, "ID", "StandardRated",
        schemeAgencyID=AGENCY_DK, schemeID="urn:oioubl:id:taxcategoryid-1.1",
    )  # fmt: skip
    cbc(category, "Percent", rate.percent_text)
    _tax_scheme(category)


def _totals(doc: etree._Element, document: Document) -> None:
    totals = document.totals
    tax_total = cac(doc, "TaxTotal")
    amount(tax_total, "TaxAmount", totals.vat_total_oere)
    for breakdown in totals.vat:
        _tax_subtotal(tax_total, breakdown.taxable_oere, breakdown.vat_oere, breakdown.rate)
    monetary = cac(doc, "LegalMonetaryTotal")
    amount(monetary, "LineExtensionAmount", totals.lines_net_oere)
    amount(monetary, "TaxExclusiveAmount", totals.vat_total_oere)  # OIOUBL: the VAT total (F-INV127)
    amount(monetary, "TaxInclusiveAmount", totals.total_incl_vat_oere)
    amount(monetary, "PayableAmount", totals.total_incl_vat_oere)


def _line(doc: etree._Element, element: str, quantity_element: str, index: int, line: InvoiceLine) -> None:
    node = cac(doc, element)
    cbc(node, "ID", str(index))
    if line.participant_name:
        cbc(node, "Note", f"Deltager: {line.participant_name}")
    cbc(node, quantity_element, f"{line.quantity}.00", unitCode=UNIT_EACH)
    amount(node, "LineExtensionAmount", line.net_oere)
    line_tax = cac(node, "TaxTotal")  # per-line rounded VAT; the header keeps the document VAT (±1.00)
    amount(line_tax, "TaxAmount", line.rounded_line_vat_oere)
    _tax_subtotal(line_tax, line.net_oere, line.rounded_line_vat_oere, line.vat)
    item = cac(node, "Item")
    cbc(item, "Description", line.description)
    cbc(item, "Name", line.item_name)
    if line.seller_item_id:
        cbc(cac(item, "SellersItemIdentification"), "ID", line.seller_item_id)
    price = cac(node, "Price")
    amount(price, "PriceAmount", line.unit_price_oere)
    cbc(price, "BaseQuantity", "1", unitCode=UNIT_EACH)
    cbc(price, "OrderableUnitFactorRate", "1")
