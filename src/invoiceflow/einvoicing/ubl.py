"""UBL 2.1 Invoice and CreditNote following Peppol BIS Billing 3.0 (EN 16931), written from the document model.

`to_ubl` is a pure function of an `InvoiceDocument`: no database, no settings, no clock, so the same document
always gives the same bytes, and the amounts are the model's own (the money core computed them; nothing is
recomputed here). Whether the result passes the official rules is the validator's verdict, not this module's:
where the model lacks data a rule needs (an electronic address, an exemption reason for category E, …) the
element is left out and the validator names the broken rule, rather than the export inventing a value.

Business terms mapped (EN 16931 numbering):
  BT-1 number, BT-2 issue date, BT-3 type code (380 invoice, 381 credit note), BT-5 currency, BT-9 due date
  (a credit note carries it in PaymentMeans, the only place UBL 2.1 has for it), BT-10 buyer reference,
  BT-13 purchase order reference, BT-22 note, BT-24 specification identifier, BT-23 business process,
  BG-3 preceding invoice (BT-25, BT-26);
  seller BG-4: BT-27 legal name, BT-28 trading name, BT-30 legal registration id (+ scheme), BT-31 VAT id,
  BT-34 electronic address (+ scheme), BG-5 postal address (BT-35..BT-40), BG-6 contact (BT-42 phone,
  BT-43 email); buyer BG-7: the same terms BT-44..BT-58;
  BG-13 delivery: BT-70 deliver-to name, BT-72 actual delivery date, BG-15 deliver-to address;
  BG-16 payment instructions: BT-81 means code, BT-83 remittance information, BG-17 credit transfer (BT-84
  IBAN, BT-86 BIC); BT-20 payment terms;
  BG-20/BG-21 document-level allowances and charges (BT-92/99 amount, BT-95/102 VAT category, BT-96/103 rate,
  BT-97/104 reason, BT-98/105 reason code);
  BG-22 totals BT-106..BT-113 and BT-115; BG-23 VAT breakdown (BT-116..BT-121);
  BG-25 lines: BT-126 id, BT-129/130 quantity and unit, BT-131 net amount, BT-146 net price (BT-149/150 base
  quantity, see below), BT-151/152 VAT category and rate, BT-153 item name.

Imported e-invoices (`InvoiceDocument.source_syntax` set, see `einvoicing.importer`) also carry, and get
written: BT-3 as stated (e.g. 384), BT-6/BT-111 VAT accounting currency (a second TaxTotal), BT-7 tax point
date, BT-11..BT-19 project, contract, sales order, receiving and despatch advice, tender and buyer accounting
references, BG-14 invoicing period, every BG-1 note (BT-21 as "#code#" in front of its note), every BG-3
preceding invoice, BT-29/BT-46 party identifiers, BT-32 tax registration id, BT-33 additional legal information,
BT-41/BT-56 contact names, BT-28/BT-45 trading names as stated, address line 3, BG-10 payee, BG-11 tax
representative, every payment means (BT-81/82, BG-17 with BT-85, BG-18 card, BG-19 mandate and BT-90 creditor
id), BG-24 supporting documents and BT-18, BT-114 rounding amount, BT-93/94 and BT-100/101 allowance and charge
base and percentage, and per line BT-127 note, BT-128 object id, BT-132 order line, BT-133 accounting
reference, BG-26 period, BG-27/28 line allowances and charges, BT-147/148/149 price details, BT-154..BT-159
item description and identifiers, and BG-32 item attributes. Such a document is written as it came: the
fallbacks below that fill in what a document made here lacks stay off (`verbatim`).

Not mapped: BT-8 VAT point date code, and everything outside EN 16931.

Choices the rules forced, each applied identically by `cii.py`, which imports these helpers:
  * BT-10: Peppol (PEPPOL-EN16931-R003) rejects an invoice with neither a buyer reference nor an order
    reference. When the invoice has neither, its own number is sent as the buyer reference: it is the one
    reference the buyer is certain to be able to match, and without it every such invoice would be refused.
  * Amounts are written with the currency's decimals. EN 16931 allows at most two (BR-DEC-*, UBL-DT-01), so an
    amount of a three-decimal currency (BHD, KWD, …) is written with two when its third decimal is zero; when it
    is not, the exact amount is written and the validator reports the rule, because money is never rounded
    differently from the model.
  * VAT category O: BR-O-02 forbids the seller's and buyer's VAT identifiers, so they are left out.
  * Exemption reasons: S and Z carry none (BR-S-10, BR-Z-10); AE, K, G and O get the VATEX code of their
    category (BR-AE-10, BR-IC-10, BR-G-10, BR-O-10, and Peppol P0104..P0107 tie the codes to the categories)
    unless the model holds one; E needs the model's own text or code (BR-E-10), because the legal ground of an
    exemption cannot be guessed.
  * A negative unit price is written as a positive price with a negative quantity (BR-27: the net price is
    never negative); the line's net amount is the same.
  * Peppol PEPPOL-EN16931-R120 wants quantity x price within 0.02 of the line net amount. In a currency without
    cents (JPY) the half-up rounding of a line can exceed that, so such a line states its price for the whole
    invoiced quantity (BT-149 base quantity = quantity, BT-146 = line net amount): the amount the buyer pays is
    unchanged and stated exactly.
  * Payment means (BT-81): the model's code when the seller chose one; else 58 (SEPA credit transfer) for a EUR
    invoice with an IBAN, 30 (credit transfer) for another currency with an IBAN, 1 (not defined) without one.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from datetime import date
from decimal import Decimal, localcontext
from typing import Any

from lxml import etree  # type: ignore[import-untyped]  # lxml ships no type information

from invoiceflow.core.money import minor_unit, money_quantum
from invoiceflow.documents.model import (
    DocumentLine,
    Identifier,
    InvoiceDocument,
    InvoiceReference,
    LineAllowanceCharge,
    Party,
    Period,
    SupportingDocument,
)

INVOICE_NS = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
CREDIT_NOTE_NS = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"
CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"

# BT-24 and BT-23 of Peppol BIS Billing 3.0.
CUSTOMIZATION_ID = "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0"
PROFILE_ID = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"
# BT-24 of EN 16931 itself, without a CIUS or an extension.
EN16931_ID = "urn:cen.eu:en16931:2017"
# Specification identifiers that exist for CII only: the Factur-X / ZUGFeRD profiles (CIUS and extensions of EN
# 16931 defined on CII alone) and ZUGFeRD 1's identifiers, which predate EN 16931.
_CII_ONLY_SPECIFICATION = re.compile(r"factur-x|zugferd|urn:ferd:", re.IGNORECASE)

INVOICE_TYPE_CODE = "380"  # UNTDID 1001: commercial invoice
CREDIT_NOTE_TYPE_CODE = "381"  # UNTDID 1001: credit note

# The VATEX code that says what each exemption category means (BR-AE-10, BR-IC-10, BR-G-10, BR-O-10).
DEFAULT_EXEMPTION_CODES = {"AE": "VATEX-EU-AE", "K": "VATEX-EU-IC", "G": "VATEX-EU-G", "O": "VATEX-EU-O"}
# Categories that are taxed (at a rate, possibly zero) and so carry no exemption reason (BR-S-10, BR-Z-10).
TAXED_CATEGORIES = frozenset({"S", "Z"})
# "Not subject to VAT": no rate at all (BR-O-05..07) and no VAT identifiers (BR-O-02..04).
NOT_SUBJECT = "O"
# UNCL 4461 codes under which the payee's account (BG-17) is given.
CREDIT_TRANSFER_CODES = frozenset({"30", "31", "42", "58"})
# UNCL 4461 codes of a direct debit (BG-19 goes with them).
DIRECT_DEBIT_CODES = frozenset({"49", "59"})
# PEPPOL-EN16931-R120's tolerance between quantity x price and the line net amount.
LINE_NET_TOLERANCE = Decimal("0.02")
# UNTDID 1001 document types the bindings use: an invoiced object (BT-18, BT-128) and a project (BT-11, the
# UBL CreditNote binding).
INVOICED_OBJECT_TYPE = "130"
PROJECT_DOCUMENT_TYPE = "50"

XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'

# Characters XML 1.0 cannot carry at all (C0 controls other than tab, LF and CR; non-characters).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


# --- decisions shared with cii.py ------------------------------------------------------------------------


def clean_text(value: str | None) -> str | None:
    """The text as XML 1.0 can carry it, or None when nothing visible is left (empty elements are errors)."""
    if value is None:
        return None
    text = _NOT_XML.sub("", value)
    return text if text.strip() else None


def clean_attribute(value: str) -> str:
    """An attribute value (a scheme, unit or currency code) without the characters XML 1.0 cannot carry."""
    return _NOT_XML.sub("", value)


def amount_text(value: Decimal, currency: str) -> str:
    """An amount with the currency's decimals, or with two for a three-decimal currency when that is exact."""
    quantum = money_quantum(currency)
    padded = value.quantize(quantum)
    if padded == value:  # only pads zeros: the model's amounts are already rounded, and are never rounded here
        value = padded
    if minor_unit(currency) > 2:
        cents = value.quantize(Decimal("0.01"))
        if cents == value:  # EN 16931 BR-DEC-*: at most two decimals
            value = cents
    return format(value, "f")


def decimal_text(value: Decimal) -> str:
    """A quantity, price or rate in plain notation, as the model holds it (never an exponent)."""
    return format(value, "f")


def verbatim(doc: InvoiceDocument) -> bool:
    """Whether the document is an imported e-invoice, written as it came: the fallbacks below that fill in what
    a document made here lacks (buyer reference, VATEX codes, payment means, trading names) stay off."""
    return doc.source_syntax is not None


def ubl_specification_id(doc: InvoiceDocument) -> str:
    """BT-24 of a UBL document.

    A document made here follows Peppol BIS Billing 3.0. An imported one keeps the identifier it came with: the
    EN 16931 CIUS and extensions (Peppol, XRechnung, …) are defined for both syntaxes, so the claim stays true in
    UBL. The Factur-X / ZUGFeRD identifiers are the exception: those profiles exist for CII only, so no UBL
    validator knows them, and ZUGFeRD 1's "comfort" is not even EN 16931. What the document holds is EN 16931
    content (the model has no place for profile extensions), so it is said to follow EN 16931 itself.
    """
    if doc.specification_id is None:
        return CUSTOMIZATION_ID
    if _CII_ONLY_SPECIFICATION.search(doc.specification_id):
        return EN16931_ID
    return doc.specification_id


def ubl_business_process(doc: InvoiceDocument) -> str | None:
    """BT-23: the document's own; a document made here gets Peppol's billing process (PEPPOL-EN16931-R001)."""
    if doc.business_process:
        return doc.business_process
    return None if verbatim(doc) else PROFILE_ID


def type_code(doc: InvoiceDocument) -> str:
    """BT-3: as the document stated it (e.g. 384 corrective invoice), else 380 or 381 by kind."""
    if doc.type_code:
        return doc.type_code
    return CREDIT_NOTE_TYPE_CODE if doc.kind == "credit_note" else INVOICE_TYPE_CODE


def preceding_invoices(doc: InvoiceDocument) -> tuple[InvoiceReference, ...]:
    """BG-3: every preceding invoice an imported document names, else the one a credit note made here credits."""
    if doc.preceding_invoices is not None:
        return doc.preceding_invoices
    if clean_text(doc.preceding_invoice_number):
        return (InvoiceReference(number=str(doc.preceding_invoice_number), issue_date=doc.preceding_invoice_date),)
    return ()


def has_address(party: Party) -> bool:
    return any(
        clean_text(value)
        for value in (party.line1, party.line2, party.line3, party.city, party.postal_code, party.region, party.country)
    )


def mandate_position(doc: InvoiceDocument) -> int | None:
    """Which payment means carries BG-19 (BT-89 mandate, BT-91 debited account) in UBL, where it lives in one
    PaymentMeans (in CII, BT-89 is in the payment terms): the first direct debit or debited account, else the
    first means."""
    means = doc.payment_means
    if not means or not (clean_text(doc.mandate_reference) or any(clean_text(m.debited_account) for m in means)):
        return None
    for index, item in enumerate(means):
        if item.code in DIRECT_DEBIT_CODES or clean_text(item.debited_account):
            return index
    return 0


def buyer_reference(doc: InvoiceDocument) -> str | None:
    """BT-10, falling back to the invoice number when no order reference exists either (PEPPOL-EN16931-R003).
    An imported document keeps what it stated."""
    if doc.buyer_reference or verbatim(doc):
        return doc.buyer_reference
    return None if doc.order_reference else doc.number or None


def not_subject_to_vat(doc: InvoiceDocument) -> bool:
    """Whether category O occurs anywhere, which rules out the parties' VAT identifiers (BR-O-02..04)."""
    categories = [item.vat_category for item in doc.lines]
    categories += [item.vat_category for item in doc.allowances_charges]
    categories += [group.vat_category for group in doc.vat_breakdown]
    return NOT_SUBJECT in categories


def exemption(
    category: str, reason: str | None, code: str | None, *, derive: bool = True
) -> tuple[str | None, str | None]:
    """(VATEX code, reason text) of one VAT breakdown group, following the BR-*-10 rules; `derive=False` (an
    imported document) adds no VATEX code the document did not state."""
    if category in TAXED_CATEGORIES:
        return None, None
    if not derive:
        return code, reason
    return code or DEFAULT_EXEMPTION_CODES.get(category), reason


def payment_means_code(doc: InvoiceDocument) -> str:
    """BT-81: the seller's choice, else what the payment data supports (SEPA only exists for EUR)."""
    if doc.payment_means_code:
        return doc.payment_means_code
    if doc.iban:
        return "58" if doc.currency == "EUR" else "30"
    return "1"


def legal_id_scheme(party: Party) -> str | None:
    """The ISO 6523 scheme of the party's legal registration id (BT-30/BT-47).

    When the model names none but the party's electronic address is that same number under an ICD scheme (EAS
    codes starting with 0 are ISO 6523 ICDs, e.g. 0106 Dutch KvK, 0208 Belgian enterprise number), that scheme
    is the registration's too. Rules such as Peppol NL-R-003 require it.
    """
    if party.company_id_scheme:
        return party.company_id_scheme
    scheme = party.electronic_address_scheme
    if party.company_id and party.electronic_address == party.company_id and scheme and scheme.startswith("0"):
        return scheme
    return None


def quantity_and_price(line: DocumentLine) -> tuple[Decimal, Decimal]:
    """Quantity and net price with the price never negative (BR-27); their product keeps its sign."""
    if line.unit_price < 0:
        return -line.quantity, -line.unit_price
    return line.quantity, line.unit_price


# --- UBL ---------------------------------------------------------------------------------------------------


def to_ubl(doc: InvoiceDocument) -> bytes:
    """The document as a Peppol BIS Billing 3.0 UBL Invoice, or CreditNote for a credit note (UTF-8 bytes).

    An imported document (`source_syntax` set) keeps its own specification identifier where UBL allows it (see
    `ubl_specification_id`) and is written term by term as it came.
    """
    credit = doc.kind == "credit_note"
    as_is = verbatim(doc)
    namespace = CREDIT_NOTE_NS if credit else INVOICE_NS
    root = etree.Element(
        f"{{{namespace}}}{'CreditNote' if credit else 'Invoice'}", nsmap={None: namespace, "cac": CAC, "cbc": CBC}
    )
    currency = doc.currency
    _cbc(root, "CustomizationID", ubl_specification_id(doc))
    _cbc(root, "ProfileID", ubl_business_process(doc))
    _cbc(root, "ID", doc.number)
    _cbc(root, "IssueDate", doc.issue_date.isoformat())
    if doc.due_date is not None and not credit:
        _cbc(root, "DueDate", doc.due_date.isoformat())
    if credit:  # the two schemas order BT-7 differently
        _date(root, "TaxPointDate", doc.tax_point_date)
    _cbc(root, "CreditNoteTypeCode" if credit else "InvoiceTypeCode", type_code(doc))
    for note in _notes(doc):
        _cbc(root, "Note", note)
    if not credit:
        _date(root, "TaxPointDate", doc.tax_point_date)
    _cbc(root, "DocumentCurrencyCode", currency)
    _cbc(root, "TaxCurrencyCode", doc.tax_currency)
    _cbc(root, "AccountingCost", doc.buyer_accounting_reference)
    _cbc(root, "BuyerReference", buyer_reference(doc))
    _period(root, doc.invoice_period)
    _references(root, doc, credit=credit)

    with_vat_ids = not not_subject_to_vat(doc)
    # BT-90 belongs to the payee when there is one, else to the seller (EN 16931 UBL binding, scheme "SEPA").
    creditor_id = clean_text(doc.creditor_reference)
    creditor = (Identifier(value=creditor_id, scheme="SEPA"),) if creditor_id else ()
    seller_ids = () if doc.payee is not None else creditor
    _party(_cac(root, "AccountingSupplierParty"), doc.seller, with_vat_id=with_vat_ids, as_is=as_is, extra=seller_ids)
    _party(_cac(root, "AccountingCustomerParty"), doc.buyer, with_vat_id=with_vat_ids, as_is=as_is, single_id=True)
    if doc.payee is not None:
        _payee(root, doc.payee, creditor)
    if doc.tax_representative is not None:
        _tax_representative(root, doc.tax_representative, with_vat_id=with_vat_ids)
    _delivery(root, doc, as_is=as_is)
    if doc.payment_means is None:
        _payment(root, doc, credit=credit)
    else:
        _payment_means(root, doc, credit=credit)
    if clean_text(doc.payment_terms):
        _cbc(_cac(root, "PaymentTerms"), "Note", doc.payment_terms)

    for item in doc.allowances_charges:
        element = _cac(root, "AllowanceCharge")
        _cbc(element, "ChargeIndicator", "true" if item.is_charge else "false")
        _cbc(element, "AllowanceChargeReasonCode", item.reason_code)
        _cbc(element, "AllowanceChargeReason", item.reason)
        _cbc(element, "MultiplierFactorNumeric", _optional_decimal(item.percentage))
        _cbc(element, "Amount", amount_text(item.amount, currency), currencyID=currency)
        _cbc(element, "BaseAmount", _optional_amount(item.base_amount, currency), currencyID=currency)
        _tax_category(element, "TaxCategory", item.vat_category, item.vat_rate)

    tax_total = _cac(root, "TaxTotal")
    _cbc(tax_total, "TaxAmount", amount_text(doc.vat_total, currency), currencyID=currency)
    for group in doc.vat_breakdown:
        subtotal = _cac(tax_total, "TaxSubtotal")
        _cbc(subtotal, "TaxableAmount", amount_text(group.taxable_amount, currency), currencyID=currency)
        _cbc(subtotal, "TaxAmount", amount_text(group.tax_amount, currency), currencyID=currency)
        code, reason = exemption(
            group.vat_category, group.exemption_reason, group.exemption_reason_code, derive=not as_is
        )
        _tax_category(subtotal, "TaxCategory", group.vat_category, group.vat_rate, code=code, reason=reason)
    if doc.tax_currency_vat_total is not None and clean_text(doc.tax_currency):
        # BT-111: a second TaxTotal in the VAT accounting currency, without breakdown (BR-53).
        tax_currency = str(doc.tax_currency)
        _cbc(
            _cac(root, "TaxTotal"),
            "TaxAmount",
            amount_text(doc.tax_currency_vat_total, tax_currency),
            currencyID=tax_currency,
        )

    totals = _cac(root, "LegalMonetaryTotal")
    _cbc(totals, "LineExtensionAmount", amount_text(doc.line_total, currency), currencyID=currency)
    _cbc(totals, "TaxExclusiveAmount", amount_text(doc.net_total, currency), currencyID=currency)
    _cbc(totals, "TaxInclusiveAmount", amount_text(doc.gross_total, currency), currencyID=currency)
    if doc.allowance_total or any(not item.is_charge for item in doc.allowances_charges):
        _cbc(totals, "AllowanceTotalAmount", amount_text(doc.allowance_total, currency), currencyID=currency)
    if doc.charge_total or any(item.is_charge for item in doc.allowances_charges):
        _cbc(totals, "ChargeTotalAmount", amount_text(doc.charge_total, currency), currencyID=currency)
    if doc.prepaid_amount:
        _cbc(totals, "PrepaidAmount", amount_text(doc.prepaid_amount, currency), currencyID=currency)
    _cbc(totals, "PayableRoundingAmount", _optional_amount(doc.rounding_amount, currency), currencyID=currency)
    _cbc(totals, "PayableAmount", amount_text(doc.amount_due, currency), currencyID=currency)

    for line in doc.lines:
        _line(root, line, currency, credit=credit, as_is=as_is)
    return serialize(root)


def serialize(root: Any) -> bytes:
    """UTF-8 bytes with an XML declaration, written by hand in the double-quoted form of the official examples
    (lxml writes single quotes)."""
    return XML_DECLARATION + bytes(etree.tostring(root, encoding="UTF-8", pretty_print=True))


def _cac(parent: Any, name: str) -> Any:
    return etree.SubElement(parent, f"{{{CAC}}}{name}")


def _cbc(parent: Any, name: str, text: str | None, /, **attributes: str | None) -> Any:
    """A basic element, or nothing when there is no text: Peppol forbids empty elements (R008). Attributes
    without a value are left out."""
    value = clean_text(text)
    if value is None:
        return None
    element = etree.SubElement(parent, f"{{{CBC}}}{name}")
    element.text = value
    for key, attribute in attributes.items():
        if attribute:
            element.set(key, clean_attribute(attribute))
    return element


def _date(parent: Any, name: str, value: date | None) -> None:
    if value is not None:
        _cbc(parent, name, value.isoformat())


def _optional_amount(value: Decimal | None, currency: str) -> str | None:
    return None if value is None else amount_text(value, currency)


def _optional_decimal(value: Decimal | None) -> str | None:
    return None if value is None else decimal_text(value)


def _notes(doc: InvoiceDocument) -> list[str | None]:
    """BT-22 notes; a BT-21 subject code goes in front of its note between '#' (the Peppol and CEN usage, as
    UBL 2.1 has no element for it)."""
    if doc.invoice_notes is None:
        return [doc.notes]
    return [f"#{note.subject_code}#{note.text}" if note.subject_code else note.text for note in doc.invoice_notes]


def _period(parent: Any, period: Period | None) -> None:
    if period is None or (period.start_date is None and period.end_date is None):
        return
    element = _cac(parent, "InvoicePeriod")
    _date(element, "StartDate", period.start_date)
    _date(element, "EndDate", period.end_date)


def _document_reference(parent: Any, name: str, reference: str | None) -> None:
    if clean_text(reference):
        _cbc(_cac(parent, name), "ID", reference)


def _references(root: Any, doc: InvoiceDocument, *, credit: bool) -> None:
    """BT-13/14 order, BG-3 preceding invoices, BT-16/15 despatch and receiving advice, BT-17 tender, BT-12
    contract, BG-24 and BT-18 additional documents, BT-11 project, in the order of each schema."""
    if clean_text(doc.order_reference) or clean_text(doc.sales_order_reference):
        order = _cac(root, "OrderReference")
        # UBL requires the purchase order id; with a sales order reference only, EN 16931's UBL binding says "NA".
        _cbc(order, "ID", doc.order_reference if clean_text(doc.order_reference) else "NA")
        _cbc(order, "SalesOrderID", doc.sales_order_reference)
    for preceding in preceding_invoices(doc):
        reference = _cac(_cac(root, "BillingReference"), "InvoiceDocumentReference")
        _cbc(reference, "ID", preceding.number)
        _date(reference, "IssueDate", preceding.issue_date)
    _document_reference(root, "DespatchDocumentReference", doc.despatch_advice_reference)
    _document_reference(root, "ReceiptDocumentReference", doc.receiving_advice_reference)
    if not credit:
        _document_reference(root, "OriginatorDocumentReference", doc.tender_reference)
    _document_reference(root, "ContractDocumentReference", doc.contract_reference)
    for document in doc.supporting_documents or ():
        _additional_document(root, document)
    if credit:
        # UBL 2.1 CreditNote has no ProjectReference: the binding uses a document reference of type 50.
        if clean_text(doc.project_reference):
            project = _cac(root, "AdditionalDocumentReference")
            _cbc(project, "ID", doc.project_reference)
            _cbc(project, "DocumentTypeCode", PROJECT_DOCUMENT_TYPE)
        _document_reference(root, "OriginatorDocumentReference", doc.tender_reference)
    else:
        _document_reference(root, "ProjectReference", doc.project_reference)


def _additional_document(root: Any, document: SupportingDocument) -> None:
    element = _cac(root, "AdditionalDocumentReference")
    invoiced_object = document.type_code == INVOICED_OBJECT_TYPE
    # BT-18 carries a type code and may carry a scheme; a supporting document (BG-24) has neither (UBL-SR-43).
    _cbc(element, "ID", document.reference, schemeID=document.scheme if invoiced_object else None)
    if invoiced_object:
        _cbc(element, "DocumentTypeCode", document.type_code)
    _cbc(element, "DocumentDescription", document.description)
    if document.content is None and not clean_text(document.uri):
        return
    attachment = _cac(element, "Attachment")
    if document.content is not None:
        _cbc(
            attachment,
            "EmbeddedDocumentBinaryObject",
            base64.b64encode(document.content).decode("ascii"),
            mimeCode=document.mime_code,
            filename=document.filename,
        )
    if clean_text(document.uri):
        _cbc(_cac(attachment, "ExternalReference"), "URI", document.uri)


def _address(parent: Any, name: str, party: Party, *, as_is: bool = False) -> None:
    address = _cac(parent, name)
    _cbc(address, "StreetName", party.line1)
    _cbc(address, "AdditionalStreetName", party.line2)
    _cbc(address, "CityName", party.city)
    _cbc(address, "PostalZone", party.postal_code)
    _cbc(address, "CountrySubentity", party.region)
    if clean_text(party.line3):
        _cbc(_cac(address, "AddressLine"), "Line", party.line3)
    # The country is mandatory (BR-09, BR-11, BR-57); without it the validator names the rule.
    if not as_is or clean_text(party.country):
        _cbc(_cac(address, "Country"), "IdentificationCode", party.country)


def _identifiers(parent: Any, identifiers: Iterable[Identifier]) -> None:
    for identifier in identifiers:
        if clean_text(identifier.value):
            _cbc(_cac(parent, "PartyIdentification"), "ID", identifier.value, schemeID=identifier.scheme)


def _party(
    parent: Any,
    party: Party,
    *,
    with_vat_id: bool,
    as_is: bool = False,
    extra: tuple[Identifier, ...] = (),
    single_id: bool = False,
) -> None:
    """A seller or buyer (BG-4 / BG-7); `single_id` for the buyer, who has one identifier in UBL (UBL-SR-16)."""
    element = _cac(parent, "Party")
    # BT-34/BT-49 with their EAS scheme (BR-62/BR-63); an address without a scheme is still written, so that
    # the validator reports the missing scheme rather than a missing address.
    _cbc(element, "EndpointID", party.electronic_address, schemeID=party.electronic_address_scheme)
    identifiers = party.identifiers or ()
    _identifiers(element, (*(identifiers[:1] if single_id else identifiers), *extra))
    if not as_is:
        _cbc(_cac(element, "PartyName"), "Name", party.name)
    elif clean_text(party.trading_name):  # an imported party has a trading name (BT-28) only when it stated one
        _cbc(_cac(element, "PartyName"), "Name", party.trading_name)
    if not as_is or has_address(party):
        _address(element, "PostalAddress", party, as_is=as_is)
    if with_vat_id and clean_text(party.vat_id):
        tax_scheme = _cac(element, "PartyTaxScheme")
        _cbc(tax_scheme, "CompanyID", party.vat_id)
        _cbc(_cac(tax_scheme, "TaxScheme"), "ID", "VAT")
    if clean_text(party.tax_registration_id):  # BT-32: any tax scheme other than VAT
        tax_scheme = _cac(element, "PartyTaxScheme")
        _cbc(tax_scheme, "CompanyID", party.tax_registration_id)
        _cbc(_cac(tax_scheme, "TaxScheme"), "ID", "TAX")
    legal = _cac(element, "PartyLegalEntity")
    _cbc(legal, "RegistrationName", party.legal_name or party.name)
    scheme = party.company_id_scheme if as_is else legal_id_scheme(party)
    _cbc(legal, "CompanyID", party.company_id, schemeID=scheme)
    _cbc(legal, "CompanyLegalForm", party.additional_legal_info)
    if clean_text(party.phone) or clean_text(party.email) or clean_text(party.contact_name):
        contact = _cac(element, "Contact")
        _cbc(contact, "Name", party.contact_name)
        _cbc(contact, "Telephone", party.phone)
        _cbc(contact, "ElectronicMail", party.email)


def _payee(root: Any, payee: Party, creditor: tuple[Identifier, ...]) -> None:
    """BG-10: BT-59 name, BT-60 identifier (and BT-90 as its "SEPA" identifier), BT-61 legal registration id."""
    element = _cac(root, "PayeeParty")
    _identifiers(element, (*(payee.identifiers or ())[:1], *creditor))  # one identifier besides BT-90 (UBL-SR-20)
    _cbc(_cac(element, "PartyName"), "Name", payee.name)
    if clean_text(payee.company_id):
        _cbc(_cac(element, "PartyLegalEntity"), "CompanyID", payee.company_id, schemeID=payee.company_id_scheme)


def _tax_representative(root: Any, party: Party, *, with_vat_id: bool) -> None:
    """BG-11: BT-62 name, BG-12 postal address, BT-63 VAT identifier."""
    element = _cac(root, "TaxRepresentativeParty")
    _cbc(_cac(element, "PartyName"), "Name", party.name)
    if has_address(party):
        _address(element, "PostalAddress", party, as_is=True)
    if with_vat_id and clean_text(party.vat_id):
        tax_scheme = _cac(element, "PartyTaxScheme")
        _cbc(tax_scheme, "CompanyID", party.vat_id)
        _cbc(_cac(tax_scheme, "TaxScheme"), "ID", "VAT")


def _delivery(root: Any, doc: InvoiceDocument, *, as_is: bool = False) -> None:
    if doc.ship_to is None and doc.delivery_date is None:
        return
    delivery = _cac(root, "Delivery")
    if doc.delivery_date is not None:
        _cbc(delivery, "ActualDeliveryDate", doc.delivery_date.isoformat())
    ship_to = doc.ship_to
    if ship_to is None:
        return
    location_id = ship_to.identifiers[0] if ship_to.identifiers else None  # BT-71
    if not as_is or location_id is not None or has_address(ship_to):
        location = _cac(delivery, "DeliveryLocation")
        if location_id is not None:
            _cbc(location, "ID", location_id.value, schemeID=location_id.scheme)
        if not as_is or has_address(ship_to):
            _address(location, "Address", ship_to, as_is=as_is)
    if not as_is or clean_text(ship_to.name):
        _cbc(_cac(_cac(delivery, "DeliveryParty"), "PartyName"), "Name", ship_to.name)


def _payment(root: Any, doc: InvoiceDocument, *, credit: bool) -> None:
    code = payment_means_code(doc)
    means = _cac(root, "PaymentMeans")
    _cbc(means, "PaymentMeansCode", code)
    if credit and doc.due_date is not None:
        _cbc(means, "PaymentDueDate", doc.due_date.isoformat())  # UBL 2.1 CreditNote has no DueDate
    _cbc(means, "PaymentID", doc.payment_reference)
    if clean_text(doc.iban) and code in CREDIT_TRANSFER_CODES:
        account = _cac(means, "PayeeFinancialAccount")
        _cbc(account, "ID", doc.iban)
        if clean_text(doc.bic):
            _cbc(_cac(account, "FinancialInstitutionBranch"), "ID", doc.bic)


def _payment_means(root: Any, doc: InvoiceDocument, *, credit: bool) -> None:
    """The payment means the document states, each as it is (BG-16..BG-19)."""
    stated = doc.payment_means or ()
    mandate_at = mandate_position(doc)
    for index, item in enumerate(stated):
        means = _cac(root, "PaymentMeans")
        _cbc(means, "PaymentMeansCode", item.code, name=clean_text(item.text))
        if credit and index == 0 and doc.due_date is not None:
            _cbc(means, "PaymentDueDate", doc.due_date.isoformat())  # UBL 2.1 CreditNote has no DueDate
        _cbc(means, "PaymentID", doc.payment_reference)
        if clean_text(item.card_number):
            card = _cac(means, "CardAccount")
            _cbc(card, "PrimaryAccountNumberID", item.card_number)
            # UBL requires the card network, for which EN 16931 has no term: "NA" when the source had none.
            _cbc(card, "NetworkID", item.card_network or "NA")
            _cbc(card, "HolderName", item.card_holder)
        if clean_text(item.account_id) or clean_text(item.bic):
            account = _cac(means, "PayeeFinancialAccount")
            _cbc(account, "ID", item.account_id)
            _cbc(account, "Name", item.account_name)
            if clean_text(item.bic):
                _cbc(_cac(account, "FinancialInstitutionBranch"), "ID", item.bic)
        if index == mandate_at:  # BG-19 once (UBL-SR-55)
            mandate = _cac(means, "PaymentMandate")
            _cbc(mandate, "ID", doc.mandate_reference)
            debited = item.debited_account or next((m.debited_account for m in stated if m.debited_account), None)
            if clean_text(debited):
                _cbc(_cac(mandate, "PayerFinancialAccount"), "ID", debited)


def _tax_category(
    parent: Any, name: str, category: str, rate: Decimal, *, code: str | None = None, reason: str | None = None
) -> None:
    element = _cac(parent, name)
    _cbc(element, "ID", category)
    if category != NOT_SUBJECT:  # BR-O-05..07: category O has no rate
        _cbc(element, "Percent", decimal_text(rate))
    _cbc(element, "TaxExemptionReasonCode", code)
    _cbc(element, "TaxExemptionReason", reason)
    _cbc(_cac(element, "TaxScheme"), "ID", "VAT")


def _line(root: Any, line: DocumentLine, currency: str, *, credit: bool, as_is: bool = False) -> None:
    element = _cac(root, "CreditNoteLine" if credit else "InvoiceLine")
    _cbc(element, "ID", line.line_id or str(line.position))
    _cbc(element, "Note", line.note)
    quantity, price = quantity_and_price(line)
    _cbc(element, "CreditedQuantity" if credit else "InvoicedQuantity", decimal_text(quantity), unitCode=line.unit_code)
    _cbc(element, "LineExtensionAmount", amount_text(line.net_amount, currency), currencyID=currency)
    _cbc(element, "AccountingCost", line.accounting_reference)
    _period(element, line.period)
    if clean_text(line.order_line_reference):
        _cbc(_cac(element, "OrderLineReference"), "LineID", line.order_line_reference)
    if line.object_identifier is not None:  # BT-128, a document reference of type 130
        reference = _cac(element, "DocumentReference")
        _cbc(reference, "ID", line.object_identifier.value, schemeID=line.object_identifier.scheme)
        _cbc(reference, "DocumentTypeCode", INVOICED_OBJECT_TYPE)
    for adjustment in line.allowances_charges or ():
        _line_allowance_charge(element, adjustment, currency)
    item = _cac(element, "Item")
    _cbc(item, "Description", line.item_description)
    _cbc(item, "Name", line.description)
    if clean_text(line.buyer_item_id):
        _cbc(_cac(item, "BuyersItemIdentification"), "ID", line.buyer_item_id)
    if clean_text(line.seller_item_id):
        _cbc(_cac(item, "SellersItemIdentification"), "ID", line.seller_item_id)
    if line.standard_item_id is not None:
        standard = line.standard_item_id
        _cbc(_cac(item, "StandardItemIdentification"), "ID", standard.value, schemeID=standard.scheme)
    if clean_text(line.origin_country):
        _cbc(_cac(item, "OriginCountry"), "IdentificationCode", line.origin_country)
    for classification in line.classifications or ():
        _cbc(
            _cac(item, "CommodityClassification"),
            "ItemClassificationCode",
            classification.code,
            listID=classification.list_id,
            listVersionID=classification.list_version,
        )
    _tax_category(item, "ClassifiedTaxCategory", line.vat_category, line.vat_rate)
    for attribute in line.attributes or ():
        property_element = _cac(item, "AdditionalItemProperty")
        _cbc(property_element, "Name", attribute.name)
        _cbc(property_element, "Value", attribute.value)
    price_element = _cac(element, "Price")
    if as_is or line.price_base_quantity is not None:
        _stated_price(price_element, line, price, currency)
        return
    with localcontext(prec=100):  # exact: a 16-digit quantity times a 16-digit price
        off_by = abs(quantity * price - line.net_amount)
    if off_by > LINE_NET_TOLERANCE and quantity:
        # PEPPOL-EN16931-R120 in a currency without cents: the price of the whole quantity, stated exactly.
        _cbc(price_element, "PriceAmount", amount_text(abs(line.net_amount), currency), currencyID=currency)
        _cbc(price_element, "BaseQuantity", decimal_text(abs(quantity)), unitCode=line.unit_code)
    else:
        _cbc(price_element, "PriceAmount", decimal_text(price), currencyID=currency)


def _stated_price(price_element: Any, line: DocumentLine, price: Decimal, currency: str) -> None:
    """BG-29 as the document states it: BT-146 net price, BT-149 base quantity, BT-147/148 discount and gross."""
    _cbc(price_element, "PriceAmount", decimal_text(price), currencyID=currency)
    _cbc(price_element, "BaseQuantity", _optional_decimal(line.price_base_quantity), unitCode=line.unit_code)
    if line.gross_price is None and line.price_discount is None:
        return
    discount = _cac(price_element, "AllowanceCharge")
    _cbc(discount, "ChargeIndicator", "false")
    _cbc(discount, "Amount", decimal_text(line.price_discount or Decimal(0)), currencyID=currency)
    _cbc(discount, "BaseAmount", _optional_decimal(line.gross_price), currencyID=currency)


def _line_allowance_charge(parent: Any, item: LineAllowanceCharge, currency: str) -> None:
    element = _cac(parent, "AllowanceCharge")
    _cbc(element, "ChargeIndicator", "true" if item.is_charge else "false")
    _cbc(element, "AllowanceChargeReasonCode", item.reason_code)
    _cbc(element, "AllowanceChargeReason", item.reason)
    _cbc(element, "MultiplierFactorNumeric", _optional_decimal(item.percentage))
    _cbc(element, "Amount", amount_text(item.amount, currency), currencyID=currency)
    _cbc(element, "BaseAmount", _optional_amount(item.base_amount, currency), currencyID=currency)
