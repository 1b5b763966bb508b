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

Not mapped yet (the model does not hold them): BT-6/BT-111 VAT accounting currency, BT-7/8 tax point date,
BT-11..BT-19 project/contract/despatch/receiving/tender/accounting references, BG-14 invoicing period,
BT-29/BT-46 party identifiers, BT-32 tax registration id, BT-33 additional legal information, BT-41/BT-56
contact names, BG-10 payee, BG-11 tax representative, BG-18 card, BG-19 direct debit mandate, BG-24
attachments, BT-114 rounding amount, line notes, periods, line-level allowances and charges, item
descriptions and identifiers, gross prices.

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

import re
from decimal import Decimal, localcontext
from typing import Any

from lxml import etree  # type: ignore[import-untyped]  # lxml ships no type information

from invoiceflow.core.money import minor_unit, money_quantum
from invoiceflow.documents.model import DocumentLine, InvoiceDocument, Party

INVOICE_NS = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
CREDIT_NOTE_NS = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"
CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"

# BT-24 and BT-23 of Peppol BIS Billing 3.0.
CUSTOMIZATION_ID = "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0"
PROFILE_ID = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"

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
# PEPPOL-EN16931-R120's tolerance between quantity x price and the line net amount.
LINE_NET_TOLERANCE = Decimal("0.02")

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


def buyer_reference(doc: InvoiceDocument) -> str | None:
    """BT-10, falling back to the invoice number when no order reference exists either (PEPPOL-EN16931-R003)."""
    if doc.buyer_reference:
        return doc.buyer_reference
    return None if doc.order_reference else doc.number or None


def not_subject_to_vat(doc: InvoiceDocument) -> bool:
    """Whether category O occurs anywhere, which rules out the parties' VAT identifiers (BR-O-02..04)."""
    categories = [item.vat_category for item in doc.lines]
    categories += [item.vat_category for item in doc.allowances_charges]
    categories += [group.vat_category for group in doc.vat_breakdown]
    return NOT_SUBJECT in categories


def exemption(category: str, reason: str | None, code: str | None) -> tuple[str | None, str | None]:
    """(VATEX code, reason text) of one VAT breakdown group, following the BR-*-10 rules."""
    if category in TAXED_CATEGORIES:
        return None, None
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
    """The document as a Peppol BIS Billing 3.0 UBL Invoice, or CreditNote for a credit note (UTF-8 bytes)."""
    credit = doc.kind == "credit_note"
    namespace = CREDIT_NOTE_NS if credit else INVOICE_NS
    root = etree.Element(
        f"{{{namespace}}}{'CreditNote' if credit else 'Invoice'}", nsmap={None: namespace, "cac": CAC, "cbc": CBC}
    )
    currency = doc.currency
    _cbc(root, "CustomizationID", CUSTOMIZATION_ID)
    _cbc(root, "ProfileID", PROFILE_ID)
    _cbc(root, "ID", doc.number)
    _cbc(root, "IssueDate", doc.issue_date.isoformat())
    if doc.due_date is not None and not credit:
        _cbc(root, "DueDate", doc.due_date.isoformat())
    _cbc(
        root,
        "CreditNoteTypeCode" if credit else "InvoiceTypeCode",
        CREDIT_NOTE_TYPE_CODE if credit else INVOICE_TYPE_CODE,
    )
    _cbc(root, "Note", doc.notes)
    _cbc(root, "DocumentCurrencyCode", currency)
    _cbc(root, "BuyerReference", buyer_reference(doc))
    if clean_text(doc.order_reference):
        _cbc(_cac(root, "OrderReference"), "ID", doc.order_reference)
    if clean_text(doc.preceding_invoice_number):
        reference = _cac(_cac(root, "BillingReference"), "InvoiceDocumentReference")
        _cbc(reference, "ID", doc.preceding_invoice_number)
        if doc.preceding_invoice_date is not None:
            _cbc(reference, "IssueDate", doc.preceding_invoice_date.isoformat())

    with_vat_ids = not not_subject_to_vat(doc)
    _party(_cac(root, "AccountingSupplierParty"), doc.seller, with_vat_id=with_vat_ids)
    _party(_cac(root, "AccountingCustomerParty"), doc.buyer, with_vat_id=with_vat_ids)
    _delivery(root, doc)
    _payment(root, doc, credit=credit)
    if clean_text(doc.payment_terms):
        _cbc(_cac(root, "PaymentTerms"), "Note", doc.payment_terms)

    for item in doc.allowances_charges:
        element = _cac(root, "AllowanceCharge")
        _cbc(element, "ChargeIndicator", "true" if item.is_charge else "false")
        _cbc(element, "AllowanceChargeReasonCode", item.reason_code)
        _cbc(element, "AllowanceChargeReason", item.reason)
        _cbc(element, "Amount", amount_text(item.amount, currency), currencyID=currency)
        _tax_category(element, "TaxCategory", item.vat_category, item.vat_rate)

    tax_total = _cac(root, "TaxTotal")
    _cbc(tax_total, "TaxAmount", amount_text(doc.vat_total, currency), currencyID=currency)
    for group in doc.vat_breakdown:
        subtotal = _cac(tax_total, "TaxSubtotal")
        _cbc(subtotal, "TaxableAmount", amount_text(group.taxable_amount, currency), currencyID=currency)
        _cbc(subtotal, "TaxAmount", amount_text(group.tax_amount, currency), currencyID=currency)
        code, reason = exemption(group.vat_category, group.exemption_reason, group.exemption_reason_code)
        _tax_category(subtotal, "TaxCategory", group.vat_category, group.vat_rate, code=code, reason=reason)

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
    _cbc(totals, "PayableAmount", amount_text(doc.amount_due, currency), currencyID=currency)

    for line in doc.lines:
        _line(root, line, currency, credit=credit)
    return serialize(root)


def serialize(root: Any) -> bytes:
    """UTF-8 bytes with an XML declaration, written by hand in the double-quoted form of the official examples
    (lxml writes single quotes)."""
    return XML_DECLARATION + bytes(etree.tostring(root, encoding="UTF-8", pretty_print=True))


def _cac(parent: Any, name: str) -> Any:
    return etree.SubElement(parent, f"{{{CAC}}}{name}")


def _cbc(parent: Any, name: str, text: str | None, **attributes: str | None) -> Any:
    """A basic element, or nothing when there is no text: Peppol forbids empty elements (R008)."""
    value = clean_text(text)
    if value is None:
        return None
    element = etree.SubElement(parent, f"{{{CBC}}}{name}")
    element.text = value
    for key, attribute in attributes.items():
        if attribute:
            element.set(key, attribute)
    return element


def _address(parent: Any, name: str, party: Party) -> None:
    address = _cac(parent, name)
    _cbc(address, "StreetName", party.line1)
    _cbc(address, "AdditionalStreetName", party.line2)
    _cbc(address, "CityName", party.city)
    _cbc(address, "PostalZone", party.postal_code)
    _cbc(address, "CountrySubentity", party.region)
    # The country is mandatory (BR-09, BR-11, BR-57); without it the validator names the rule.
    _cbc(_cac(address, "Country"), "IdentificationCode", party.country)


def _party(parent: Any, party: Party, *, with_vat_id: bool) -> None:
    element = _cac(parent, "Party")
    # BT-34/BT-49 with their EAS scheme (BR-62/BR-63); an address without a scheme is still written, so that
    # the validator reports the missing scheme rather than a missing address.
    _cbc(element, "EndpointID", party.electronic_address, schemeID=party.electronic_address_scheme)
    _cbc(_cac(element, "PartyName"), "Name", party.name)
    _address(element, "PostalAddress", party)
    if with_vat_id and clean_text(party.vat_id):
        tax_scheme = _cac(element, "PartyTaxScheme")
        _cbc(tax_scheme, "CompanyID", party.vat_id)
        _cbc(_cac(tax_scheme, "TaxScheme"), "ID", "VAT")
    legal = _cac(element, "PartyLegalEntity")
    _cbc(legal, "RegistrationName", party.legal_name or party.name)
    _cbc(legal, "CompanyID", party.company_id, schemeID=legal_id_scheme(party))
    if clean_text(party.phone) or clean_text(party.email):
        contact = _cac(element, "Contact")
        _cbc(contact, "Telephone", party.phone)
        _cbc(contact, "ElectronicMail", party.email)


def _delivery(root: Any, doc: InvoiceDocument) -> None:
    if doc.ship_to is None and doc.delivery_date is None:
        return
    delivery = _cac(root, "Delivery")
    if doc.delivery_date is not None:
        _cbc(delivery, "ActualDeliveryDate", doc.delivery_date.isoformat())
    if doc.ship_to is not None:
        _address(_cac(delivery, "DeliveryLocation"), "Address", doc.ship_to)
        _cbc(_cac(_cac(delivery, "DeliveryParty"), "PartyName"), "Name", doc.ship_to.name)


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


def _line(root: Any, line: DocumentLine, currency: str, *, credit: bool) -> None:
    element = _cac(root, "CreditNoteLine" if credit else "InvoiceLine")
    _cbc(element, "ID", str(line.position))
    quantity, price = quantity_and_price(line)
    _cbc(element, "CreditedQuantity" if credit else "InvoicedQuantity", decimal_text(quantity), unitCode=line.unit_code)
    _cbc(element, "LineExtensionAmount", amount_text(line.net_amount, currency), currencyID=currency)
    item = _cac(element, "Item")
    _cbc(item, "Name", line.description)
    _tax_category(item, "ClassifiedTaxCategory", line.vat_category, line.vat_rate)
    price_element = _cac(element, "Price")
    with localcontext(prec=100):  # exact: a 16-digit quantity times a 16-digit price
        off_by = abs(quantity * price - line.net_amount)
    if off_by > LINE_NET_TOLERANCE and quantity:
        # PEPPOL-EN16931-R120 in a currency without cents: the price of the whole quantity, stated exactly.
        _cbc(price_element, "PriceAmount", amount_text(abs(line.net_amount), currency), currencyID=currency)
        _cbc(price_element, "BaseQuantity", decimal_text(abs(quantity)), unitCode=line.unit_code)
    else:
        _cbc(price_element, "PriceAmount", decimal_text(price), currencyID=currency)
