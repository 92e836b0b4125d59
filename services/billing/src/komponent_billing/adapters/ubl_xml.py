"""Small lxml helpers shared by the Peppol BIS and OIOUBL renderers (both are UBL 2.1)."""

from __future__ import annotations

from datetime import date

from lxml import etree

from ..domain.money import xml_amount

NS_INVOICE = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
NS_CREDIT_NOTE = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"
NS_CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
NS_CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
CURRENCY = "DKK"


def root(document_ns: str, local_name: str) -> etree._Element:
    return etree.Element(
        f"{{{document_ns}}}{local_name}", nsmap={None: document_ns, "cac": NS_CAC, "cbc": NS_CBC}
    )


def cac(parent: etree._Element, name: str) -> etree._Element:
    return etree.SubElement(parent, f"{{{NS_CAC}}}{name}")


def cbc(parent: etree._Element, name: str, text: str, **attributes: str) -> etree._Element:
    """A basic component. Empty values are a bug (Peppol R008 forbids empty elements), so refuse them."""
    if not text.strip():
        raise ValueError(f"refusing to write empty cbc:{name}")
    element = etree.SubElement(parent, f"{{{NS_CBC}}}{name}", attributes)
    element.text = text
    return element


def amount(parent: etree._Element, name: str, oere: int) -> etree._Element:
    return cbc(parent, name, xml_amount(oere), currencyID=CURRENCY)


def iso(day: date) -> str:
    return day.isoformat()


def serialise(element: etree._Element) -> bytes:
    return bytes(etree.tostring(element, xml_declaration=True, encoding="UTF-8", pretty_print=True))
