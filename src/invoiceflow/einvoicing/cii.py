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

Imported e-invoices carry and get written the same further terms as in `ubl.py`, in their CII homes (BT-7 in
the first VAT group, BT-89 in the payment terms, BT-17 as a referenced document of type 50, BT-11 as the
procuring project). What CII D16B and its EN 16931 rules cannot hold is left out: a second preceding invoice,
more than one buyer, payee or deliver-to identifier (CII-SR-449..451), a price discount without a gross price,
and a VAT accounting currency equal to the invoice currency (BR-53). The Peppol R120 base-quantity fallback of
`ubl.py` is not needed here: that rule is Peppol's, and this document follows EN 16931 only.
"""

from __future__ import annotations

import base64
import re
from datetime import date
from decimal import Decimal
from typing import Any

from lxml import etree  # type: ignore[import-untyped]  # lxml ships no type information

from invoiceflow.documents.model import (
    DocumentLine,
    Identifier,
    InvoiceDocument,
    Party,
    PaymentMeans,
    Period,
    SupportingDocument,
)
from invoiceflow.einvoicing.ubl import (
    CREDIT_TRANSFER_CODES,
    CUSTOMIZATION_ID,
    INVOICED_OBJECT_TYPE,
    NOT_SUBJECT,
    amount_text,
    buyer_reference,
    clean_attribute,
    clean_text,
    decimal_text,
    exemption,
    has_address,
    legal_id_scheme,
    not_subject_to_vat,
    payment_means_code,
    preceding_invoices,
    quantity_and_price,
    serialize,
    type_code,
    verbatim,
)

RSM = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
QDT = "urn:un:unece:uncefact:data:standard:QualifiedDataType:100"
UDT = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100"

# BT-24: EN 16931 itself, the identifier Factur-X also reads as its EN16931 profile.
GUIDELINE_ID = "urn:cen.eu:en16931:2017"
DATE_FORMAT = "102"  # UNTDID 2379: CCYYMMDD
# UNTDID 1001 document types of AdditionalReferencedDocument: tender or lot (BT-17).
TENDER_DOCUMENT_TYPE = "50"
# ram:SpecifiedProcuringProject requires a name; the EN 16931 CII binding gives BT-11 this one.
PROJECT_NAME = "Project reference"
# An account number in IBAN form goes in ram:IBANID, any other in ram:ProprietaryID (both are BT-84).
_IBAN = re.compile(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{8,30}")


def cii_specification_id(doc: InvoiceDocument) -> str:
    """BT-24: EN 16931 for a document made here; an imported document's own identifier otherwise (XRechnung,
    Factur-X, ZUGFeRD: their rules exist for CII, so the claim stays true).

    Except Peppol BIS Billing: the Peppol network exchanges UBL, and the claim was made for, and checked on, the
    UBL document. A CII copy never travels through Peppol, so it claims what its content is, EN 16931, instead
    of asking for Peppol's CII rules (a release behind here, and checking identifiers the UBL binding does not)
    to judge a document the sender never wrote.
    """
    if doc.specification_id is None or doc.specification_id.startswith(CUSTOMIZATION_ID):
        return GUIDELINE_ID
    return doc.specification_id


def to_cii(doc: InvoiceDocument) -> bytes:
    """The document as a CII D16B CrossIndustryInvoice (TypeCode 381 for a credit note), UTF-8 bytes.

    An imported document (`source_syntax` set) keeps its type code and specification identifier and is written
    term by term as it came.
    """
    root = etree.Element(f"{{{RSM}}}CrossIndustryInvoice", nsmap={"rsm": RSM, "ram": RAM, "qdt": QDT, "udt": UDT})
    context = etree.SubElement(root, f"{{{RSM}}}ExchangedDocumentContext")
    if clean_text(doc.business_process):
        _text(_ram(context, "BusinessProcessSpecifiedDocumentContextParameter"), "ID", doc.business_process)
    _text(_ram(context, "GuidelineSpecifiedDocumentContextParameter"), "ID", cii_specification_id(doc))

    header = etree.SubElement(root, f"{{{RSM}}}ExchangedDocument")
    _text(header, "ID", doc.number)
    _text(header, "TypeCode", type_code(doc))
    _date(header, "IssueDateTime", doc.issue_date)
    if doc.invoice_notes is None:
        if clean_text(doc.notes):
            _text(_ram(header, "IncludedNote"), "Content", doc.notes)
    else:
        for note in doc.invoice_notes:
            included = _ram(header, "IncludedNote")
            _text(included, "Content", note.text)
            _text(included, "SubjectCode", note.subject_code)

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
            element.set(key, clean_attribute(attribute))
    return element


def ccyymmdd(value: date) -> str:
    """Format 102. strftime("%Y") does not pad years before 1000 on every platform; this always does."""
    return f"{value.year:04d}{value.month:02d}{value.day:02d}"


def _date(parent: Any, name: str, value: date, *, qualified: bool = False) -> None:
    """A date as CII writes it: `udt:DateTimeString format="102"` (qdt: in a referenced document)."""
    namespace = QDT if qualified else UDT
    string = etree.SubElement(_ram(parent, name), f"{{{namespace}}}DateTimeString", format=DATE_FORMAT)
    string.text = ccyymmdd(value)


def _date_string(parent: Any, name: str, value: date | None) -> None:
    """A date the CII way for ram:TaxPointDate: `udt:DateString format="102"`."""
    if value is not None:
        string = etree.SubElement(_ram(parent, name), f"{{{UDT}}}DateString", format=DATE_FORMAT)
        string.text = ccyymmdd(value)


def _optional_decimal(value: Decimal | None) -> str | None:
    return None if value is None else decimal_text(value)


def _indicator(parent: Any, is_charge: bool) -> None:
    indicator = etree.SubElement(_ram(parent, "ChargeIndicator"), f"{{{UDT}}}Indicator")
    indicator.text = "true" if is_charge else "false"


def _period(parent: Any, period: Period | None) -> None:
    """BG-14 / BG-26 as ram:BillingSpecifiedPeriod."""
    if period is None or (period.start_date is None and period.end_date is None):
        return
    element = _ram(parent, "BillingSpecifiedPeriod")
    if period.start_date is not None:
        _date(element, "StartDateTime", period.start_date)
    if period.end_date is not None:
        _date(element, "EndDateTime", period.end_date)


def _identifiers(parent: Any, identifiers: tuple[Identifier, ...] | None, *, single: bool = False) -> None:
    """Party identifiers: ram:ID without a scheme, then ram:GlobalID with one (the schema's order). Only the
    seller may have several; the buyer, the payee and the deliver-to location have one (CII-SR-449..451)."""
    identifiers = (identifiers or ())[:1] if single else identifiers
    for identifier in identifiers or ():
        if identifier.scheme is None:
            _text(parent, "ID", identifier.value)
    for identifier in identifiers or ():
        if identifier.scheme is not None:
            _text(parent, "GlobalID", identifier.value, schemeID=identifier.scheme)


def _reference(parent: Any, name: str, reference: str | None) -> None:
    if clean_text(reference):
        _text(_ram(parent, name), "IssuerAssignedID", reference)


def _allowance_charge(
    parent: Any,
    *,
    is_charge: bool,
    amount: str,
    percentage: Decimal | None,
    base_amount: str | None,
    reason_code: str | None,
    reason: str | None,
) -> Any:
    element = _ram(parent, "SpecifiedTradeAllowanceCharge")
    _indicator(element, is_charge)
    _text(element, "CalculationPercent", _optional_decimal(percentage))
    _text(element, "BasisAmount", base_amount)
    _text(element, "ActualAmount", amount)
    _text(element, "ReasonCode", reason_code)
    _text(element, "Reason", reason)
    return element


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
    line_document = _ram(item, "AssociatedDocumentLineDocument")
    _text(line_document, "LineID", line.line_id or str(line.position))
    if clean_text(line.note):
        _text(_ram(line_document, "IncludedNote"), "Content", line.note)
    _product(item, line)
    quantity, price = quantity_and_price(line)
    agreement = _ram(item, "SpecifiedLineTradeAgreement")
    if clean_text(line.order_line_reference):
        _text(_ram(agreement, "BuyerOrderReferencedDocument"), "LineID", line.order_line_reference)
    base_quantity = _optional_decimal(line.price_base_quantity)
    if line.gross_price is not None:  # BT-148, with the BT-147 discount; CII has no discount without it
        gross = _ram(agreement, "GrossPriceProductTradePrice")
        _text(gross, "ChargeAmount", decimal_text(line.gross_price))
        _text(gross, "BasisQuantity", base_quantity, unitCode=line.unit_code)
        if line.price_discount is not None:
            discount = _ram(gross, "AppliedTradeAllowanceCharge")
            _indicator(discount, False)
            _text(discount, "ActualAmount", decimal_text(line.price_discount))
    net_price = _ram(agreement, "NetPriceProductTradePrice")
    _text(net_price, "ChargeAmount", decimal_text(price))
    _text(net_price, "BasisQuantity", base_quantity, unitCode=line.unit_code)
    _text(_ram(item, "SpecifiedLineTradeDelivery"), "BilledQuantity", decimal_text(quantity), unitCode=line.unit_code)
    settlement = _ram(item, "SpecifiedLineTradeSettlement")
    _tax(settlement, "ApplicableTradeTax", line.vat_category, line.vat_rate)
    _period(settlement, line.period)
    for adjustment in line.allowances_charges or ():
        _allowance_charge(
            settlement,
            is_charge=adjustment.is_charge,
            amount=amount_text(adjustment.amount, currency),
            percentage=adjustment.percentage,
            base_amount=None if adjustment.base_amount is None else amount_text(adjustment.base_amount, currency),
            reason_code=adjustment.reason_code,
            reason=adjustment.reason,
        )
    summation = _ram(settlement, "SpecifiedTradeSettlementLineMonetarySummation")
    _text(summation, "LineTotalAmount", amount_text(line.net_amount, currency))
    if line.object_identifier is not None:  # BT-128
        reference = _ram(settlement, "AdditionalReferencedDocument")
        _text(reference, "IssuerAssignedID", line.object_identifier.value)
        _text(reference, "TypeCode", INVOICED_OBJECT_TYPE)
        _text(reference, "ReferenceTypeCode", line.object_identifier.scheme)
    if clean_text(line.accounting_reference):
        _text(_ram(settlement, "ReceivableSpecifiedTradeAccountingAccount"), "ID", line.accounting_reference)


def _product(item: Any, line: DocumentLine) -> None:
    """BG-31 item information and BG-32 item attributes, in the schema's order."""
    product = _ram(item, "SpecifiedTradeProduct")
    if line.standard_item_id is not None:
        _text(product, "GlobalID", line.standard_item_id.value, schemeID=line.standard_item_id.scheme)
    _text(product, "SellerAssignedID", line.seller_item_id)
    _text(product, "BuyerAssignedID", line.buyer_item_id)
    _text(product, "Name", line.description)
    _text(product, "Description", line.item_description)
    for attribute in line.attributes or ():
        characteristic = _ram(product, "ApplicableProductCharacteristic")
        _text(characteristic, "Description", attribute.name)
        _text(characteristic, "Value", attribute.value)
    for classification in line.classifications or ():
        _text(
            _ram(product, "DesignatedProductClassification"),
            "ClassCode",
            classification.code,
            listID=classification.list_id,
            listVersionID=classification.list_version,
        )
    if clean_text(line.origin_country):
        _text(_ram(product, "OriginTradeCountry"), "ID", line.origin_country)


def _address(parent: Any, party: Party) -> None:
    address = _ram(parent, "PostalTradeAddress")
    _text(address, "PostcodeCode", party.postal_code)
    _text(address, "LineOne", party.line1)
    _text(address, "LineTwo", party.line2)
    _text(address, "LineThree", party.line3)
    _text(address, "CityName", party.city)
    _text(address, "CountryID", party.country)  # BR-09 / BR-11 / BR-57
    _text(address, "CountrySubDivisionName", party.region)


def _party(parent: Any, name: str, party: Party, *, with_vat_id: bool, as_is: bool = False) -> None:
    element = _ram(parent, name)
    _identifiers(element, party.identifiers, single=name != "SellerTradeParty")
    _text(element, "Name", party.legal_name or party.name)
    _text(element, "Description", party.additional_legal_info)
    # A party made here is named by its trading name; an imported one only has the trading name it stated.
    trading_name = party.trading_name if as_is else party.name
    scheme = party.company_id_scheme if as_is else legal_id_scheme(party)
    if not as_is or clean_text(party.company_id) or clean_text(trading_name):
        legal = _ram(element, "SpecifiedLegalOrganization")
        _text(legal, "ID", party.company_id, schemeID=scheme)
        _text(legal, "TradingBusinessName", trading_name)
    if clean_text(party.phone) or clean_text(party.email) or clean_text(party.contact_name):
        contact = _ram(element, "DefinedTradeContact")
        _text(contact, "PersonName", party.contact_name)
        if clean_text(party.phone):
            _text(_ram(contact, "TelephoneUniversalCommunication"), "CompleteNumber", party.phone)
        if clean_text(party.email):
            _text(_ram(contact, "EmailURIUniversalCommunication"), "URIID", party.email)
    if not as_is or has_address(party):
        _address(element, party)
    if clean_text(party.electronic_address):
        uri = _ram(element, "URIUniversalCommunication")
        _text(uri, "URIID", party.electronic_address, schemeID=party.electronic_address_scheme)
    if with_vat_id and clean_text(party.vat_id):
        _text(_ram(element, "SpecifiedTaxRegistration"), "ID", party.vat_id, schemeID="VA")
    if clean_text(party.tax_registration_id):  # BT-32, the "FC" (fiscal number) registration
        _text(_ram(element, "SpecifiedTaxRegistration"), "ID", party.tax_registration_id, schemeID="FC")


def _tax_representative(parent: Any, party: Party, *, with_vat_id: bool) -> None:
    """BG-11: BT-62 name, BG-12 postal address, BT-63 VAT identifier."""
    element = _ram(parent, "SellerTaxRepresentativeTradeParty")
    _text(element, "Name", party.name)
    if has_address(party):
        _address(element, party)
    if with_vat_id and clean_text(party.vat_id):
        _text(_ram(element, "SpecifiedTaxRegistration"), "ID", party.vat_id, schemeID="VA")


def _supporting_document(agreement: Any, document: SupportingDocument) -> None:
    """BG-24 (TypeCode 916) or BT-18 (TypeCode 130) as ram:AdditionalReferencedDocument."""
    element = _ram(agreement, "AdditionalReferencedDocument")
    _text(element, "IssuerAssignedID", document.reference)
    _text(element, "URIID", document.uri)
    _text(element, "TypeCode", document.type_code)
    _text(element, "Name", document.description)
    if document.content is not None:
        _text(
            element,
            "AttachmentBinaryObject",
            base64.b64encode(document.content).decode("ascii"),
            mimeCode=document.mime_code,
            filename=document.filename,
        )
    _text(element, "ReferenceTypeCode", document.scheme)


def _agreement(transaction: Any, doc: InvoiceDocument) -> None:
    agreement = _ram(transaction, "ApplicableHeaderTradeAgreement")
    _text(agreement, "BuyerReference", buyer_reference(doc))
    with_vat_ids = not not_subject_to_vat(doc)  # BR-O-02
    as_is = verbatim(doc)
    _party(agreement, "SellerTradeParty", doc.seller, with_vat_id=with_vat_ids, as_is=as_is)
    _party(agreement, "BuyerTradeParty", doc.buyer, with_vat_id=with_vat_ids, as_is=as_is)
    if doc.tax_representative is not None:
        _tax_representative(agreement, doc.tax_representative, with_vat_id=with_vat_ids)
    _reference(agreement, "SellerOrderReferencedDocument", doc.sales_order_reference)
    if clean_text(doc.order_reference):
        _text(_ram(agreement, "BuyerOrderReferencedDocument"), "IssuerAssignedID", doc.order_reference)
    _reference(agreement, "ContractReferencedDocument", doc.contract_reference)
    for document in doc.supporting_documents or ():
        _supporting_document(agreement, document)
    if clean_text(doc.tender_reference):
        tender = _ram(agreement, "AdditionalReferencedDocument")
        _text(tender, "IssuerAssignedID", doc.tender_reference)
        _text(tender, "TypeCode", TENDER_DOCUMENT_TYPE)
    if clean_text(doc.project_reference):
        project = _ram(agreement, "SpecifiedProcuringProject")
        _text(project, "ID", doc.project_reference)
        _text(project, "Name", PROJECT_NAME)


def _delivery(transaction: Any, doc: InvoiceDocument) -> None:
    delivery = _ram(transaction, "ApplicableHeaderTradeDelivery")  # mandatory in the schema, even when empty
    if doc.ship_to is not None:
        ship_to = _ram(delivery, "ShipToTradeParty")
        _identifiers(ship_to, doc.ship_to.identifiers, single=True)  # BT-71
        _text(ship_to, "Name", doc.ship_to.name)
        if not verbatim(doc) or has_address(doc.ship_to):
            _address(ship_to, doc.ship_to)
    if doc.delivery_date is not None:
        _date(_ram(delivery, "ActualDeliverySupplyChainEvent"), "OccurrenceDateTime", doc.delivery_date)
    _reference(delivery, "DespatchAdviceReferencedDocument", doc.despatch_advice_reference)
    _reference(delivery, "ReceivingAdviceReferencedDocument", doc.receiving_advice_reference)


def _settlement(transaction: Any, doc: InvoiceDocument) -> None:
    currency = doc.currency
    settlement = _ram(transaction, "ApplicableHeaderTradeSettlement")
    _text(settlement, "CreditorReferenceID", doc.creditor_reference)
    _text(settlement, "PaymentReference", doc.payment_reference)
    if doc.tax_currency != currency:  # BR-53 in CII: a VAT accounting currency differs from the invoice's
        _text(settlement, "TaxCurrencyCode", doc.tax_currency)
    _text(settlement, "InvoiceCurrencyCode", currency)
    if doc.payee is not None:
        _payee(settlement, doc.payee)

    if doc.payment_means is None:
        code = payment_means_code(doc)
        means = _ram(settlement, "SpecifiedTradeSettlementPaymentMeans")
        _text(means, "TypeCode", code)
        if clean_text(doc.iban) and code in CREDIT_TRANSFER_CODES:
            _text(_ram(means, "PayeePartyCreditorFinancialAccount"), "IBANID", doc.iban)
            if clean_text(doc.bic):
                _text(_ram(means, "PayeeSpecifiedCreditorFinancialInstitution"), "BICID", doc.bic)
    else:
        for stated in doc.payment_means:
            _payment_means(settlement, stated)

    derive = not verbatim(doc)
    for index, group in enumerate(doc.vat_breakdown):
        tax = _ram(settlement, "ApplicableTradeTax")
        code_121, reason = exemption(
            group.vat_category, group.exemption_reason, group.exemption_reason_code, derive=derive
        )
        _text(tax, "CalculatedAmount", amount_text(group.tax_amount, currency))
        _text(tax, "TypeCode", "VAT")
        _text(tax, "ExemptionReason", reason)
        _text(tax, "BasisAmount", amount_text(group.taxable_amount, currency))
        _text(tax, "CategoryCode", group.vat_category)
        _text(tax, "ExemptionReasonCode", code_121)
        if index == 0:  # BT-7 lives in a VAT group in CII, and only once (CII-SR-461)
            _date_string(tax, "TaxPointDate", doc.tax_point_date)
        if group.vat_category != NOT_SUBJECT:
            _text(tax, "RateApplicablePercent", decimal_text(group.vat_rate))
    _period(settlement, doc.invoice_period)

    for item in doc.allowances_charges:
        element = _allowance_charge(
            settlement,
            is_charge=item.is_charge,
            amount=amount_text(item.amount, currency),
            percentage=item.percentage,
            base_amount=None if item.base_amount is None else amount_text(item.base_amount, currency),
            reason_code=item.reason_code,
            reason=item.reason,
        )
        _tax(element, "CategoryTradeTax", item.vat_category, item.vat_rate)

    if clean_text(doc.payment_terms) or doc.due_date is not None or clean_text(doc.mandate_reference):
        terms = _ram(settlement, "SpecifiedTradePaymentTerms")
        _text(terms, "Description", doc.payment_terms)
        if doc.due_date is not None:
            _date(terms, "DueDateDateTime", doc.due_date)
        _text(terms, "DirectDebitMandateID", doc.mandate_reference)  # BT-89

    totals = _ram(settlement, "SpecifiedTradeSettlementHeaderMonetarySummation")
    _text(totals, "LineTotalAmount", amount_text(doc.line_total, currency))
    if doc.charge_total or any(item.is_charge for item in doc.allowances_charges):
        _text(totals, "ChargeTotalAmount", amount_text(doc.charge_total, currency))
    if doc.allowance_total or any(not item.is_charge for item in doc.allowances_charges):
        _text(totals, "AllowanceTotalAmount", amount_text(doc.allowance_total, currency))
    _text(totals, "TaxBasisTotalAmount", amount_text(doc.net_total, currency))
    # BT-110 is the one amount CII qualifies with its currency (CII-DT-031 forbids it on all others).
    _text(totals, "TaxTotalAmount", amount_text(doc.vat_total, currency), currencyID=currency)
    if doc.tax_currency_vat_total is not None and clean_text(doc.tax_currency):  # BT-111
        tax_currency = str(doc.tax_currency)
        _text(totals, "TaxTotalAmount", amount_text(doc.tax_currency_vat_total, tax_currency), currencyID=tax_currency)
    if doc.rounding_amount is not None:  # BT-114
        _text(totals, "RoundingAmount", amount_text(doc.rounding_amount, currency))
    _text(totals, "GrandTotalAmount", amount_text(doc.gross_total, currency))
    if doc.prepaid_amount:
        _text(totals, "TotalPrepaidAmount", amount_text(doc.prepaid_amount, currency))
    _text(totals, "DuePayableAmount", amount_text(doc.amount_due, currency))

    for preceding in preceding_invoices(doc)[:1]:  # the CII D16B schema has room for one preceding invoice
        reference = _ram(settlement, "InvoiceReferencedDocument")
        _text(reference, "IssuerAssignedID", preceding.number)
        if preceding.issue_date is not None:
            _date(reference, "FormattedIssueDateTime", preceding.issue_date, qualified=True)
    if clean_text(doc.buyer_accounting_reference):  # BT-19
        _text(_ram(settlement, "ReceivableSpecifiedTradeAccountingAccount"), "ID", doc.buyer_accounting_reference)


def _payee(settlement: Any, payee: Party) -> None:
    """BG-10: BT-60 identifier, BT-59 name, BT-61 legal registration id."""
    element = _ram(settlement, "PayeeTradeParty")
    _identifiers(element, payee.identifiers, single=True)
    _text(element, "Name", payee.name)
    if clean_text(payee.company_id):
        _text(_ram(element, "SpecifiedLegalOrganization"), "ID", payee.company_id, schemeID=payee.company_id_scheme)


def _payment_means(settlement: Any, item: PaymentMeans) -> None:
    """One stated payment means (BG-16): BT-81/82, BG-18 card, BT-91 debited account, BG-17 credit transfer."""
    means = _ram(settlement, "SpecifiedTradeSettlementPaymentMeans")
    _text(means, "TypeCode", item.code)
    _text(means, "Information", item.text)
    if clean_text(item.card_number):
        card = _ram(means, "ApplicableTradeSettlementFinancialCard")
        _text(card, "ID", item.card_number)
        _text(card, "CardholderName", item.card_holder)
    if clean_text(item.debited_account):
        _text(_ram(means, "PayerPartyDebtorFinancialAccount"), "IBANID", item.debited_account)
    if clean_text(item.account_id) or clean_text(item.account_name):
        account = _ram(means, "PayeePartyCreditorFinancialAccount")
        number = clean_text(item.account_id)
        iban = number is not None and _IBAN.fullmatch(number.replace(" ", "")) is not None
        _text(account, "IBANID", number if iban else None)
        _text(account, "AccountName", item.account_name)
        _text(account, "ProprietaryID", None if iban else number)
    if clean_text(item.bic):
        _text(_ram(means, "PayeeSpecifiedCreditorFinancialInstitution"), "BICID", item.bic)
