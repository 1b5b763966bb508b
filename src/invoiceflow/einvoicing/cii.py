"""UN/CEFACT Cross Industry Invoice (CII D16B) with the EN 16931 profile, written from the document model.

The specification identifier is `urn:cen.eu:en16931:2017`, which is also what Factur-X / ZUGFeRD read as their
EN16931 profile, so the same bytes can be embedded in a Factur-X PDF. Like `ubl.to_ubl`, `to_cii` is a pure
function of the document (same document, same bytes) and takes every amount from the model unchanged. Every
choice a rule forced (buyer reference fallback, two-decimal amounts, category O without VAT identifiers, VATEX
codes, non-negative prices, payment means code) is made by the helpers in `ubl.py`, so that the two syntaxes
of one invoice always say the same thing.

Business terms mapped (EN 16931 numbering), with their CII home:
  BT-1 number, BT-3 type code (380/381), BT-2 issue date and BT-22 note (ExchangedDocument);
  BT-24 specification identifier (GuidelineSpecifiedDocumentContextParameter);
  BT-10 buyer reference, BT-13 purchase order reference, seller BG-4 and buyer BG-7 (BT-27/44 name, BT-28/45
  trading name, BT-30/47 legal registration id + scheme, BT-31/48 VAT id, BT-34/49 electronic address + scheme,
  postal address BG-5/BG-8, contact phone and email BT-42/43, BT-57/58) in ApplicableHeaderTradeAgreement;
  BT-70 deliver-to name, BG-15 deliver-to address and BT-72 actual delivery date in ApplicableHeaderTradeDelivery;
  in ApplicableHeaderTradeSettlement: BT-83 remittance information, BT-5 currency, BG-16 payment means (BT-81,
  BT-84 IBAN, BT-86 BIC), BG-23 VAT breakdown (BT-116..BT-121), BG-20/BG-21 document-level allowances and
  charges (BT-92..BT-105), BT-20 payment terms with BT-9 due date, BG-22 totals BT-106..BT-113 and BT-115, and
  BG-3 preceding invoice (BT-25, BT-26);
  BG-25 lines: BT-126 id, BT-153 item name, BT-146 net price, BT-129/130 quantity and unit, BT-151/152 VAT
  category and rate, BT-131 net amount.

Not mapped yet: the same terms as in `ubl.py` (VAT accounting currency, tax point date, the other document
references, invoicing period, party identifiers, tax registration id, contact names, payee, tax representative,
card and direct debit, attachments, rounding amount, line-level details). The Peppol R120 base-quantity
fallback of `ubl.py` is not needed here: that rule is Peppol's, and this document follows EN 16931 only.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from lxml import etree  # type: ignore[import-untyped]  # lxml ships no type information

from invoiceflow.documents.model import DocumentLine, InvoiceDocument, Party
from invoiceflow.einvoicing.ubl import (
    CREDIT_NOTE_TYPE_CODE,
    CREDIT_TRANSFER_CODES,
    INVOICE_TYPE_CODE,
    NOT_SUBJECT,
    amount_text,
    buyer_reference,
    clean_text,
    decimal_text,
    exemption,
    legal_id_scheme,
    not_subject_to_vat,
    payment_means_code,
    quantity_and_price,
    serialize,
)

RSM = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
QDT = "urn:un:unece:uncefact:data:standard:QualifiedDataType:100"
UDT = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100"

# BT-24: EN 16931 itself, the identifier Factur-X also reads as its EN16931 profile.
GUIDELINE_ID = "urn:cen.eu:en16931:2017"
DATE_FORMAT = "102"  # UNTDID 2379: CCYYMMDD


def to_cii(doc: InvoiceDocument) -> bytes:
    """The document as a CII D16B CrossIndustryInvoice (TypeCode 381 for a credit note), UTF-8 bytes."""
    root = etree.Element(f"{{{RSM}}}CrossIndustryInvoice", nsmap={"rsm": RSM, "ram": RAM, "qdt": QDT, "udt": UDT})
    context = etree.SubElement(root, f"{{{RSM}}}ExchangedDocumentContext")
    _text(_ram(context, "GuidelineSpecifiedDocumentContextParameter"), "ID", GUIDELINE_ID)

    header = etree.SubElement(root, f"{{{RSM}}}ExchangedDocument")
    _text(header, "ID", doc.number)
    _text(header, "TypeCode", CREDIT_NOTE_TYPE_CODE if doc.kind == "credit_note" else INVOICE_TYPE_CODE)
    _date(header, "IssueDateTime", doc.issue_date)
    if clean_text(doc.notes):
        _text(_ram(header, "IncludedNote"), "Content", doc.notes)

    transaction = etree.SubElement(root, f"{{{RSM}}}SupplyChainTradeTransaction")
    for line in doc.lines:
        _line(transaction, line, doc.currency)
    _agreement(transaction, doc)
    _delivery(transaction, doc)
    _settlement(transaction, doc)
    return serialize(root)


def _ram(parent: Any, name: str) -> Any:
    return etree.SubElement(parent, f"{{{RAM}}}{name}")


def _text(parent: Any, name: str, text: str | None, **attributes: str | None) -> Any:
    """A leaf element, or nothing when there is no text (an empty element says nothing and breaks rules)."""
    value = clean_text(text)
    if value is None:
        return None
    element = _ram(parent, name)
    element.text = value
    for key, attribute in attributes.items():
        if attribute:
            element.set(key, attribute)
    return element


def _date(parent: Any, name: str, value: date, *, qualified: bool = False) -> None:
    """A date as CII writes it: `udt:DateTimeString format="102"` (qdt: in a referenced document)."""
    namespace = QDT if qualified else UDT
    string = etree.SubElement(_ram(parent, name), f"{{{namespace}}}DateTimeString", format=DATE_FORMAT)
    string.text = value.strftime("%Y%m%d")


def _tax(parent: Any, name: str, category: str, rate: Decimal) -> Any:
    """A VAT category with its rate (never for category O, BR-O-05..07). Children in the XSD's order."""
    element = _ram(parent, name)
    _text(element, "TypeCode", "VAT")
    _text(element, "CategoryCode", category)
    if category != NOT_SUBJECT:
        _text(element, "RateApplicablePercent", decimal_text(rate))
    return element


def _line(transaction: Any, line: DocumentLine, currency: str) -> None:
    item = _ram(transaction, "IncludedSupplyChainTradeLineItem")
    _text(_ram(item, "AssociatedDocumentLineDocument"), "LineID", str(line.position))
    _text(_ram(item, "SpecifiedTradeProduct"), "Name", line.description)
    quantity, price = quantity_and_price(line)
    agreement = _ram(item, "SpecifiedLineTradeAgreement")
    _text(_ram(agreement, "NetPriceProductTradePrice"), "ChargeAmount", decimal_text(price))
    _text(_ram(item, "SpecifiedLineTradeDelivery"), "BilledQuantity", decimal_text(quantity), unitCode=line.unit_code)
    settlement = _ram(item, "SpecifiedLineTradeSettlement")
    _tax(settlement, "ApplicableTradeTax", line.vat_category, line.vat_rate)
    summation = _ram(settlement, "SpecifiedTradeSettlementLineMonetarySummation")
    _text(summation, "LineTotalAmount", amount_text(line.net_amount, currency))


def _address(parent: Any, party: Party) -> None:
    address = _ram(parent, "PostalTradeAddress")
    _text(address, "PostcodeCode", party.postal_code)
    _text(address, "LineOne", party.line1)
    _text(address, "LineTwo", party.line2)
    _text(address, "CityName", party.city)
    _text(address, "CountryID", party.country)  # BR-09 / BR-11 / BR-57
    _text(address, "CountrySubDivisionName", party.region)


def _party(parent: Any, name: str, party: Party, *, with_vat_id: bool) -> None:
    element = _ram(parent, name)
    _text(element, "Name", party.legal_name or party.name)
    legal = _ram(element, "SpecifiedLegalOrganization")
    _text(legal, "ID", party.company_id, schemeID=legal_id_scheme(party))
    _text(legal, "TradingBusinessName", party.name)
    if clean_text(party.phone) or clean_text(party.email):
        contact = _ram(element, "DefinedTradeContact")
        if clean_text(party.phone):
            _text(_ram(contact, "TelephoneUniversalCommunication"), "CompleteNumber", party.phone)
        if clean_text(party.email):
            _text(_ram(contact, "EmailURIUniversalCommunication"), "URIID", party.email)
    _address(element, party)
    if clean_text(party.electronic_address):
        uri = _ram(element, "URIUniversalCommunication")
        _text(uri, "URIID", party.electronic_address, schemeID=party.electronic_address_scheme)
    if with_vat_id and clean_text(party.vat_id):
        _text(_ram(element, "SpecifiedTaxRegistration"), "ID", party.vat_id, schemeID="VA")


def _agreement(transaction: Any, doc: InvoiceDocument) -> None:
    agreement = _ram(transaction, "ApplicableHeaderTradeAgreement")
    _text(agreement, "BuyerReference", buyer_reference(doc))
    with_vat_ids = not not_subject_to_vat(doc)  # BR-O-02
    _party(agreement, "SellerTradeParty", doc.seller, with_vat_id=with_vat_ids)
    _party(agreement, "BuyerTradeParty", doc.buyer, with_vat_id=with_vat_ids)
    if clean_text(doc.order_reference):
        _text(_ram(agreement, "BuyerOrderReferencedDocument"), "IssuerAssignedID", doc.order_reference)


def _delivery(transaction: Any, doc: InvoiceDocument) -> None:
    delivery = _ram(transaction, "ApplicableHeaderTradeDelivery")  # mandatory in the schema, even when empty
    if doc.ship_to is not None:
        ship_to = _ram(delivery, "ShipToTradeParty")
        _text(ship_to, "Name", doc.ship_to.name)
        _address(ship_to, doc.ship_to)
    if doc.delivery_date is not None:
        _date(_ram(delivery, "ActualDeliverySupplyChainEvent"), "OccurrenceDateTime", doc.delivery_date)


def _settlement(transaction: Any, doc: InvoiceDocument) -> None:
    currency = doc.currency
    settlement = _ram(transaction, "ApplicableHeaderTradeSettlement")
    _text(settlement, "PaymentReference", doc.payment_reference)
    _text(settlement, "InvoiceCurrencyCode", currency)

    code = payment_means_code(doc)
    means = _ram(settlement, "SpecifiedTradeSettlementPaymentMeans")
    _text(means, "TypeCode", code)
    if clean_text(doc.iban) and code in CREDIT_TRANSFER_CODES:
        _text(_ram(means, "PayeePartyCreditorFinancialAccount"), "IBANID", doc.iban)
        if clean_text(doc.bic):
            _text(_ram(means, "PayeeSpecifiedCreditorFinancialInstitution"), "BICID", doc.bic)

    for group in doc.vat_breakdown:
        tax = _ram(settlement, "ApplicableTradeTax")
        code_121, reason = exemption(group.vat_category, group.exemption_reason, group.exemption_reason_code)
        _text(tax, "CalculatedAmount", amount_text(group.tax_amount, currency))
        _text(tax, "TypeCode", "VAT")
        _text(tax, "ExemptionReason", reason)
        _text(tax, "BasisAmount", amount_text(group.taxable_amount, currency))
        _text(tax, "CategoryCode", group.vat_category)
        _text(tax, "ExemptionReasonCode", code_121)
        if group.vat_category != NOT_SUBJECT:
            _text(tax, "RateApplicablePercent", decimal_text(group.vat_rate))

    for item in doc.allowances_charges:
        element = _ram(settlement, "SpecifiedTradeAllowanceCharge")
        indicator = etree.SubElement(_ram(element, "ChargeIndicator"), f"{{{UDT}}}Indicator")
        indicator.text = "true" if item.is_charge else "false"
        _text(element, "ActualAmount", amount_text(item.amount, currency))
        _text(element, "ReasonCode", item.reason_code)
        _text(element, "Reason", item.reason)
        _tax(element, "CategoryTradeTax", item.vat_category, item.vat_rate)

    if clean_text(doc.payment_terms) or doc.due_date is not None:
        terms = _ram(settlement, "SpecifiedTradePaymentTerms")
        _text(terms, "Description", doc.payment_terms)
        if doc.due_date is not None:
            _date(terms, "DueDateDateTime", doc.due_date)

    totals = _ram(settlement, "SpecifiedTradeSettlementHeaderMonetarySummation")
    _text(totals, "LineTotalAmount", amount_text(doc.line_total, currency))
    if doc.charge_total or any(item.is_charge for item in doc.allowances_charges):
        _text(totals, "ChargeTotalAmount", amount_text(doc.charge_total, currency))
    if doc.allowance_total or any(not item.is_charge for item in doc.allowances_charges):
        _text(totals, "AllowanceTotalAmount", amount_text(doc.allowance_total, currency))
    _text(totals, "TaxBasisTotalAmount", amount_text(doc.net_total, currency))
    # BT-110 is the one amount CII qualifies with its currency (CII-DT-031 forbids it on all others).
    _text(totals, "TaxTotalAmount", amount_text(doc.vat_total, currency), currencyID=currency)
    _text(totals, "GrandTotalAmount", amount_text(doc.gross_total, currency))
    if doc.prepaid_amount:
        _text(totals, "TotalPrepaidAmount", amount_text(doc.prepaid_amount, currency))
    _text(totals, "DuePayableAmount", amount_text(doc.amount_due, currency))

    if clean_text(doc.preceding_invoice_number):
        reference = _ram(settlement, "InvoiceReferencedDocument")
        _text(reference, "IssuerAssignedID", doc.preceding_invoice_number)
        if doc.preceding_invoice_date is not None:
            _date(reference, "FormattedIssueDateTime", doc.preceding_invoice_date, qualified=True)
