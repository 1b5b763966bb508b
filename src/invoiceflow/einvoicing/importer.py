"""Reading a received e-invoice (UBL 2.1 Invoice or CreditNote, UN/CEFACT CII D16B) into the document model.

This is the mapping half of e-invoice import: bytes in, an `InvoiceDocument` out, with nothing stored. Whether
the document follows the official rules is the validator's verdict (`parse_einvoice_root` lets a caller
validate and map one parsed tree); this module only needs the terms the model cannot do without, and refuses
a document that lacks one with `EInvoiceUnmappable` (422), naming the business term and where it was expected.

Principles:
  * The document's money is kept as it is stated, digit for digit (`Decimal("2337.5")` stays so): line net
    amounts, the VAT breakdown and BT-106..BT-115 are the sender's, never "fixed". `amount_differences`
    recomputes them with the money core's rounding and lists every disagreement beside the document, so a
    reviewer sees both numbers.
  * Every EN 16931 term the model has a place for is mapped, in both syntaxes, so that `to_ubl` / `to_cii` of
    the result says what the original said (see `InvoiceDocument.source_syntax`). Terms without a place are
    dropped: BT-8 (VAT point date code), the gross price's own base quantity when a CII document gives it one
    that differs from the net price's, and everything outside EN 16931.
  * Absent optional amounts the model needs as numbers read as zero: BT-107/108 without allowances or charges,
    BT-110 of a document without VAT (category O), BT-113 without prepayment.
  * Factur-X EXTENDED's `SpecifiedLogisticsServiceCharge` is a document-level charge (the document counts it in
    BT-108), so it is read as one (BG-21) rather than dropped.

Parties: `name` is what the renderers show (the trading name BT-28 when stated, else the legal name BT-27),
`legal_name` is BT-27 and `trading_name` BT-28 as stated. Lines: `position` counts from 1, `line_id` is BT-126.
The document's language is not part of EN 16931; imported documents are rendered in English ("en").
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, localcontext
from typing import Any, NoReturn, TypedDict

from invoiceflow.core.errors import AppError
from invoiceflow.core.money import ZERO, round_money
from invoiceflow.documents.model import (
    AllowanceCharge,
    DocumentKind,
    DocumentLine,
    Identifier,
    InvoiceDocument,
    InvoiceNote,
    InvoiceReference,
    ItemAttribute,
    ItemClassification,
    LineAllowanceCharge,
    Party,
    PaymentMeans,
    Period,
    SupportingDocument,
    VatBreakdown,
)
from invoiceflow.einvoicing.xmlsafe import CII_NS, UBL_CREDIT_NOTE_NS, UBL_INVOICE_NS, DocumentType, Syntax, parse_xml

CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
UDT = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100"
QDT = "urn:un:unece:uncefact:data:standard:QualifiedDataType:100"
_PREFIXES = {"cac": CAC, "cbc": CBC, "rsm": CII_NS, "ram": RAM, "udt": UDT, "qdt": QDT}

_UBL_INVOICE = f"{{{UBL_INVOICE_NS}}}Invoice"
_UBL_CREDIT_NOTE = f"{{{UBL_CREDIT_NOTE_NS}}}CreditNote"
_CII_INVOICE = f"{{{CII_NS}}}CrossIndustryInvoice"
_DOCUMENT_KINDS: dict[str, tuple[Syntax, DocumentType]] = {
    _UBL_INVOICE: ("ubl", "Invoice"),
    _UBL_CREDIT_NOTE: ("ubl", "CreditNote"),
    _CII_INVOICE: ("cii", "CrossIndustryInvoice"),
}

# UNTDID 1001 codes that EN 16931 lists as credit notes (its code list for BT-3); every other code is an invoice
# (380 commercial, 384 corrected, 389 self-billed, …).
CREDIT_NOTE_TYPE_CODES = frozenset({"81", "83", "261", "262", "296", "308", "381", "396", "420", "458", "532"})
IMPORTED_STATUS = "imported"
IMPORTED_LANGUAGE = "en"

_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
# The most digits a number may have before and after its decimal point: 28 in all, the precision of Python's
# default decimal context, so that every later sum, product and rounding of it stays exact (XSD sets no limit;
# a real invoice needs far fewer, and a 40-digit "amount" is an attack on the arithmetic, not an invoice).
MAX_INTEGER_DIGITS = 18
MAX_FRACTION_DIGITS = 10
_ISO_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})(?:Z|[+-][0-9]{2}:[0-9]{2})?")
_CII_DATE = re.compile(r"([0-9]{4})([0-9]{2})([0-9]{2})")
# Peppol's and CEN's way of carrying BT-21 in UBL: "#AAI#the note".
_SUBJECT_CODE = re.compile(r"#([A-Z]{3})#(.*)", re.DOTALL)
_NAME_SPACE = re.compile(r"\s+")
_ID_NOISE = re.compile(r"[\s.\-/]")

# The label of each term an error or a difference can name (EN 16931-1, table 2).
TERMS = {
    "BT-1": "Invoice number",
    "BT-2": "Invoice issue date",
    "BT-3": "Invoice type code",
    "BT-5": "Invoice currency code",
    "BT-7": "Value added tax point date",
    "BT-9": "Payment due date",
    "BT-25": "Preceding Invoice reference",
    "BT-26": "Preceding Invoice issue date",
    "BT-27": "Seller name",
    "BT-44": "Buyer name",
    "BT-59": "Payee name",
    "BT-62": "Seller tax representative name",
    "BT-72": "Actual delivery date",
    "BT-73": "Invoicing period start date",
    "BT-74": "Invoicing period end date",
    "BT-81": "Payment means type code",
    "BT-92": "Document level allowance amount",
    "BT-93": "Document level allowance base amount",
    "BT-94": "Document level allowance percentage",
    "BT-95": "Document level allowance VAT category code",
    "BT-96": "Document level allowance VAT rate",
    "BT-99": "Document level charge amount",
    "BT-100": "Document level charge base amount",
    "BT-101": "Document level charge percentage",
    "BT-102": "Document level charge VAT category code",
    "BT-103": "Document level charge VAT rate",
    "BT-106": "Sum of Invoice line net amount",
    "BT-107": "Sum of allowances on document level",
    "BT-108": "Sum of charges on document level",
    "BT-109": "Invoice total amount without VAT",
    "BT-110": "Invoice total VAT amount",
    "BT-111": "Invoice total VAT amount in accounting currency",
    "BT-112": "Invoice total amount with VAT",
    "BT-113": "Paid amount",
    "BT-114": "Rounding amount",
    "BT-115": "Amount due for payment",
    "BT-116": "VAT category taxable amount",
    "BT-117": "VAT category tax amount",
    "BT-118": "VAT category code",
    "BT-119": "VAT category rate",
    "BT-125": "Attached document",
    "BT-126": "Invoice line identifier",
    "BT-129": "Invoiced quantity",
    "BT-130": "Invoiced quantity unit of measure code",
    "BT-131": "Invoice line net amount",
    "BT-134": "Invoice line period start date",
    "BT-135": "Invoice line period end date",
    "BT-136": "Invoice line allowance amount",
    "BT-137": "Invoice line allowance base amount",
    "BT-138": "Invoice line allowance percentage",
    "BT-141": "Invoice line charge amount",
    "BT-142": "Invoice line charge base amount",
    "BT-143": "Invoice line charge percentage",
    "BT-146": "Item net price",
    "BT-147": "Item price discount",
    "BT-148": "Item gross price",
    "BT-149": "Item price base quantity",
    "BT-151": "Invoiced item VAT category code",
    "BT-152": "Invoiced item VAT rate",
    "BT-153": "Item name",
    "ChargeIndicator": "Allowance or charge indicator",
}


class EInvoiceUnmappable(AppError):
    """The e-invoice cannot be read into an invoice: it is not an invoice at all, or it lacks (or garbles) a
    term the document model cannot do without. `details` name the term and where it was expected."""

    status_code = 422
    code = "EINVOICE_UNMAPPABLE"


@dataclass(frozen=True, slots=True, kw_only=True)
class AmountDifference:
    """One amount where the document disagrees with our recomputation of it. Both values are kept: the
    document's is the one the invoice holds."""

    term: str  # "BT-110", "BT-131" (one line), "BT-116"/"BT-117" (one VAT group)
    label: str
    document_value: Decimal
    recomputed_value: Decimal
    line_id: str | None = None
    vat_category: str | None = None
    vat_rate: Decimal | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, amounts as strings (never floats)."""
        return {
            "term": self.term,
            "label": self.label,
            "document_value": str(self.document_value),
            "recomputed_value": str(self.recomputed_value),
            "line_id": self.line_id,
            "vat_category": self.vat_category,
            "vat_rate": None if self.vat_rate is None else str(self.vat_rate),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class ParsedEInvoice:
    syntax: Syntax
    document_type: DocumentType
    document: InvoiceDocument
    specification_id: str | None  # BT-24
    business_process: str | None  # BT-23
    differences: tuple[AmountDifference, ...]

    def supplier_key(self) -> str:
        return supplier_key(self.document.seller)


def supplier_key(seller: Party) -> str:
    """A stable key for the seller, to recognise a second import of the same invoice (seller + number).

    The strongest identity the document gives, each kind prefixed so that kinds never collide: "vat:" + the
    VAT identifier (BT-31), else "eas:" + the electronic address "scheme:id" (BT-34), else "legal:" + the legal
    registration id with its scheme (BT-30), else "name:" + the name, case-folded with its spaces collapsed.
    Identifiers are upper-cased without spaces, dots, dashes or slashes, which senders insert at will.
    """
    if seller.vat_id and _compact(seller.vat_id):
        return f"vat:{_compact(seller.vat_id)}"
    if seller.electronic_address and _compact(seller.electronic_address):
        return f"eas:{_compact(seller.electronic_address_scheme or '')}:{_compact(seller.electronic_address)}"
    if seller.company_id and _compact(seller.company_id):
        return f"legal:{_compact(seller.company_id_scheme or '')}:{_compact(seller.company_id)}"
    name = seller.legal_name or seller.name
    return f"name:{_NAME_SPACE.sub(' ', name).strip().casefold()}"


def _compact(value: str) -> str:
    return _ID_NOISE.sub("", value).upper()


# --- entry points ----------------------------------------------------------------------------------------


def parse_einvoice(data: bytes) -> ParsedEInvoice:
    """Parse untrusted bytes (with `xmlsafe.parse_xml`'s limits) and map them; see `parse_einvoice_root`."""
    return parse_einvoice_root(parse_xml(data))


def parse_einvoice_root(root: Any) -> ParsedEInvoice:
    """Map a parsed UBL Invoice / CreditNote or CII CrossIndustryInvoice, and recompute its amounts.

    Raises EInvoiceUnmappable for any other root element or when a term the model needs is missing or garbled.
    """
    tag = root.tag if isinstance(root.tag, str) else ""
    kind = _DOCUMENT_KINDS.get(tag)
    if kind is None:
        raise EInvoiceUnmappable(
            "Not an invoice or credit note: the root element is neither a UBL 2.1 Invoice or CreditNote nor a "
            "UN/CEFACT CII CrossIndustryInvoice",
            details={
                "term": "BT-3",
                "label": TERMS["BT-3"],
                "path": "/",
                "problem": "unsupported document",
                "value": tag or str(root.tag),
                "expected": sorted(_DOCUMENT_KINDS),
            },
        )
    syntax, document_type = kind
    token = _CHILDREN.set(_index_tree(root))
    try:
        doc = _cii_document(root) if syntax == "cii" else _ubl_document(root, credit=document_type == "CreditNote")
    finally:
        _CHILDREN.reset(token)
    return ParsedEInvoice(
        syntax=syntax,
        document_type=document_type,
        document=doc,
        specification_id=doc.specification_id,
        business_process=doc.business_process,
        differences=amount_differences(doc),
    )


# --- reading values --------------------------------------------------------------------------------------


# The children of every element of the document being mapped, by tag. lxml's find() parses and walks its path
# in Python on every call (3-9 µs), and a 20-line invoice needs some 500 lookups; indexing the tree once (one
# pass, lxml iterating in C) makes them dictionary reads. The index lives for one `parse_einvoice_root` call (a
# ContextVar, so that concurrent imports in threads or tasks never share one) and holds the element proxies,
# which keeps lxml returning the same proxy for the same element while it lives.
_CHILDREN: ContextVar[dict[Any, dict[Any, list[Any]]] | None] = ContextVar("einvoice_children", default=None)


_STEPS: dict[str, tuple[str, ...]] = {}


def _steps(path: str) -> tuple[str, ...]:
    """'cac:Party/cbc:Name' as lxml tags in Clark notation, one per step (memoised: a plain dict read is the
    cheapest lookup Python has, and this runs for every value read)."""
    steps = _STEPS.get(path)
    if steps is None:
        steps = tuple(
            f"{{{_PREFIXES[prefix]}}}{name}" for prefix, _, name in (step.partition(":") for step in path.split("/"))
        )
        _STEPS[path] = steps
    return steps


def _index_tree(root: Any) -> dict[Any, dict[Any, list[Any]]]:
    """Every element's children by tag, in one pass over the tree (lxml walks it in C)."""
    cache: dict[Any, dict[Any, list[Any]]] = {}
    for element in root.iter():
        parent = element.getparent()
        if parent is None:
            continue
        index = cache.get(parent)
        if index is None:
            index = cache[parent] = {}
        tag = element.tag
        found = index.get(tag)
        if found is None:
            index[tag] = [element]
        else:
            found.append(element)
    return cache


def _children(element: Any, cache: dict[Any, dict[Any, list[Any]]] | None) -> dict[Any, list[Any]]:
    index = None if cache is None else cache.get(element)
    if index is None:
        index = {}
        for child in element:
            tag = child.tag
            found = index.get(tag)
            if found is None:
                index[tag] = [child]
            else:
                found.append(child)
        if cache is not None:
            cache[element] = index
    return index


def _fail(term: str, at: str, problem: str, value: str | None = None) -> NoReturn:
    label = TERMS.get(term, term)
    details: dict[str, Any] = {"term": term, "label": label, "path": at, "problem": problem}
    if value is not None:
        details["value"] = value[:200]
    raise EInvoiceUnmappable(f"{term} ({label}) is {problem} at {at}", details=details)


def _text(element: Any, path: str) -> str | None:
    node = _find(element, path)
    if node is None:
        return None
    text: str | None = node.text
    return None if text is None else text.strip() or None


def _texts(element: Any, path: str) -> list[str]:
    return [text for child in _iter(element, path) if (text := _element_text(child))]


def _required(element: Any, path: str, term: str, at: str) -> str:
    value = _text(element, path)
    if value is None:
        _fail(term, f"{at}/{path}", "missing")
    return value


def _find(element: Any, path: str) -> Any:
    """The first element at `path` below `element` (a child path of plain steps), or None."""
    cache = _CHILDREN.get()
    node = element
    for tag in _STEPS.get(path) or _steps(path):
        index = None if cache is None else cache.get(node)
        found = (index if index is not None else _children(node, cache)).get(tag)
        if not found:
            return None
        node = found[0]
    return node


def _iter(element: Any, path: str) -> Iterator[Any]:
    """Every element at `path` below `element`, in document order."""
    cache = _CHILDREN.get()
    nodes = [element]
    for tag in _steps(path):
        nodes = [child for node in nodes for child in _children(node, cache).get(tag, ())]
    return iter(nodes)


def _number(text: str, term: str, at: str, path: str = "") -> Decimal:
    """A decimal as XSD writes it (no exponent, no NaN), kept with its own digits. The error path is `at` plus
    `path`, joined only when it is needed (this runs for every amount)."""
    if not _DECIMAL.fullmatch(text):
        _fail(term, f"{at}/{path}" if path else at, "not a decimal number", text)
    value = Decimal(text)
    digits = value.as_tuple()
    fraction = -int(digits.exponent)
    if fraction > MAX_FRACTION_DIGITS or len(digits.digits) - fraction > MAX_INTEGER_DIGITS:
        problem = f"longer than {MAX_INTEGER_DIGITS} digits before or {MAX_FRACTION_DIGITS} after the decimal point"
        _fail(term, f"{at}/{path}" if path else at, problem, text)
    return value


def _decimal(element: Any, path: str, term: str, at: str) -> Decimal | None:
    text = _text(element, path)
    return None if text is None else _number(text, term, at, path)


def _required_decimal(element: Any, path: str, term: str, at: str) -> Decimal:
    return _number(_required(element, path, term, at), term, at, path)


def _indicator(text: str | None, at: str) -> bool:
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    _fail("ChargeIndicator", at, "missing" if text is None else "neither true nor false", text)


def _iso_date(text: str | None, term: str, at: str) -> date | None:
    if text is None:
        return None
    match = _ISO_DATE.fullmatch(text)
    if match is None:
        _fail(term, at, "not a date (YYYY-MM-DD)", text)
    return _make_date(match, term, at, text)


def _make_date(match: re.Match[str], term: str, at: str, text: str) -> date:
    try:
        return date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        _fail(term, at, "not a calendar date", text)


def _ubl_date(element: Any, path: str, term: str, at: str) -> date | None:
    return _iso_date(_text(element, path), term, f"{at}/{path}")


def _cii_date(element: Any, path: str, term: str, at: str) -> date | None:
    """A CII date: the wrapper's udt:DateTimeString / qdt:DateTimeString / udt:DateString, format 102."""
    wrapper = _find(element, path)
    if wrapper is None:
        return None
    where = f"{at}/{path}"
    for string in wrapper:
        if not isinstance(string.tag, str):
            continue
        text = (string.text or "").strip()
        date_format = string.get("format")
        if date_format not in (None, "102"):
            _fail(term, where, f"in date format {date_format}, not 102 (CCYYMMDD)", text)
        match = _CII_DATE.fullmatch(text)
        if match is None:
            _fail(term, where, "not a date (CCYYMMDD)", text)
        return _make_date(match, term, where, text)
    _fail(term, where, "missing")


def _binary(text: str | None, at: str) -> bytes | None:
    if text is None:
        return None
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        _fail("BT-125", at, "not base64", text)


# --- UBL -------------------------------------------------------------------------------------------------


def _ubl_document(root: Any, *, credit: bool) -> InvoiceDocument:
    at = "/CreditNote" if credit else "/Invoice"
    number = _required(root, "cbc:ID", "BT-1", at)
    issue_date = _ubl_date(root, "cbc:IssueDate", "BT-2", at)
    if issue_date is None:
        _fail("BT-2", f"{at}/cbc:IssueDate", "missing")
    currency = _required(root, "cbc:DocumentCurrencyCode", "BT-5", at)
    tax_currency = _text(root, "cbc:TaxCurrencyCode")
    notes = tuple(_ubl_note(text) for text in _texts(root, "cbc:Note"))

    supplier = _find(root, "cac:AccountingSupplierParty/cac:Party")
    customer = _find(root, "cac:AccountingCustomerParty/cac:Party")
    seller, seller_creditor = _ubl_party(supplier, "BT-27", f"{at}/cac:AccountingSupplierParty/cac:Party")
    buyer, _ = _ubl_party(customer, "BT-44", f"{at}/cac:AccountingCustomerParty/cac:Party")
    payee, payee_creditor = _ubl_payee(_find(root, "cac:PayeeParty"), f"{at}/cac:PayeeParty")
    representative = _ubl_tax_representative(
        _find(root, "cac:TaxRepresentativeParty"), f"{at}/cac:TaxRepresentativeParty"
    )

    means, payment_reference, mandate, means_due = _ubl_payment_means(root, at)
    due_date = _ubl_date(root, "cbc:DueDate", "BT-9", at) or means_due
    terms = "\n".join(_texts(root, "cac:PaymentTerms/cbc:Note")) or None

    delivery = _find(root, "cac:Delivery")
    delivery_date, ship_to = _ubl_delivery(delivery, f"{at}/cac:Delivery")

    allowances = tuple(
        _ubl_allowance_charge(element, f"{at}/cac:AllowanceCharge[{index}]")
        for index, element in enumerate(_iter(root, "cac:AllowanceCharge"), start=1)
    )
    vat_total, tax_currency_total, breakdown = _ubl_tax_totals(root, currency, tax_currency, at)

    totals = _find(root, "cac:LegalMonetaryTotal")
    totals_at = f"{at}/cac:LegalMonetaryTotal"
    if totals is None:
        _fail("BT-106", totals_at, "missing")
    line_path = "cac:CreditNoteLine" if credit else "cac:InvoiceLine"
    lines = tuple(
        _ubl_line(element, index, f"{at}/{line_path}[{index}]", credit=credit)
        for index, element in enumerate(_iter(root, line_path), start=1)
    )
    supporting, project = _ubl_supporting_documents(root, at)
    preceding = tuple(
        InvoiceReference(
            number=_required(reference, "cbc:ID", "BT-25", f"{at}/cac:BillingReference[{index}]"),
            issue_date=_ubl_date(reference, "cbc:IssueDate", "BT-26", f"{at}/cac:BillingReference[{index}]"),
        )
        for index, reference in enumerate(_iter(root, "cac:BillingReference/cac:InvoiceDocumentReference"), start=1)
    )
    first_means = means[0] if means else None
    return InvoiceDocument(
        kind="credit_note" if credit else "invoice",
        number=number,
        issue_date=issue_date,
        due_date=due_date,
        currency=currency,
        language=IMPORTED_LANGUAGE,
        seller=seller,
        buyer=buyer,
        ship_to=ship_to,
        buyer_reference=_text(root, "cbc:BuyerReference"),
        order_reference=_text(root, "cac:OrderReference/cbc:ID"),
        preceding_invoice_number=preceding[0].number if preceding else None,
        iban=first_means.account_id if first_means else None,
        bic=first_means.bic if first_means else None,
        payment_reference=payment_reference,
        payment_terms=terms,
        notes="\n\n".join(note.text for note in notes) or None,
        lines=lines,
        allowances_charges=allowances,
        vat_breakdown=breakdown,
        line_total=_required_decimal(totals, "cbc:LineExtensionAmount", "BT-106", totals_at),
        allowance_total=_decimal(totals, "cbc:AllowanceTotalAmount", "BT-107", totals_at) or ZERO,
        charge_total=_decimal(totals, "cbc:ChargeTotalAmount", "BT-108", totals_at) or ZERO,
        net_total=_required_decimal(totals, "cbc:TaxExclusiveAmount", "BT-109", totals_at),
        vat_total=vat_total,
        gross_total=_required_decimal(totals, "cbc:TaxInclusiveAmount", "BT-112", totals_at),
        prepaid_amount=_decimal(totals, "cbc:PrepaidAmount", "BT-113", totals_at) or ZERO,
        amount_due=_required_decimal(totals, "cbc:PayableAmount", "BT-115", totals_at),
        status=IMPORTED_STATUS,
        delivery_date=delivery_date,
        preceding_invoice_date=preceding[0].issue_date if preceding else None,
        payment_means_code=first_means.code if first_means else None,
        source_syntax="ubl",
        specification_id=_text(root, "cbc:CustomizationID"),
        business_process=_text(root, "cbc:ProfileID"),
        type_code=_text(root, "cbc:CreditNoteTypeCode" if credit else "cbc:InvoiceTypeCode"),
        tax_point_date=_ubl_date(root, "cbc:TaxPointDate", "BT-7", at),
        invoice_period=_ubl_period(_find(root, "cac:InvoicePeriod"), f"{at}/cac:InvoicePeriod", "BT-73", "BT-74"),
        invoice_notes=notes,
        preceding_invoices=preceding,
        project_reference=_text(root, "cac:ProjectReference/cbc:ID") or project,
        contract_reference=_text(root, "cac:ContractDocumentReference/cbc:ID"),
        sales_order_reference=_text(root, "cac:OrderReference/cbc:SalesOrderID"),
        receiving_advice_reference=_text(root, "cac:ReceiptDocumentReference/cbc:ID"),
        despatch_advice_reference=_text(root, "cac:DespatchDocumentReference/cbc:ID"),
        tender_reference=_text(root, "cac:OriginatorDocumentReference/cbc:ID"),
        buyer_accounting_reference=_text(root, "cbc:AccountingCost"),
        supporting_documents=supporting,
        payee=payee,
        tax_representative=representative,
        payment_means=means,
        mandate_reference=mandate,
        creditor_reference=payee_creditor or seller_creditor,
        tax_currency=tax_currency,
        tax_currency_vat_total=tax_currency_total,
        rounding_amount=_decimal(totals, "cbc:PayableRoundingAmount", "BT-114", totals_at),
    )


def _ubl_note(text: str) -> InvoiceNote:
    match = _SUBJECT_CODE.fullmatch(text)
    if match is None:
        return InvoiceNote(text=text)
    return InvoiceNote(text=match[2], subject_code=match[1])


def _ubl_identifiers(party: Any) -> tuple[list[Identifier], str | None]:
    """Party identifiers (BT-29/46/60), and the SEPA creditor identifier (BT-90) the binding files among them."""
    identifiers: list[Identifier] = []
    creditor = None
    for element in _iter(party, "cac:PartyIdentification/cbc:ID"):
        value = (element.text or "").strip()
        if not value:
            continue
        scheme = element.get("schemeID")
        if (scheme or "").upper() == "SEPA":
            creditor = creditor or value
        else:
            identifiers.append(Identifier(value=value, scheme=(scheme or "").strip() or None))
    return identifiers, creditor


class _Address(TypedDict, total=False):
    line1: str | None
    line2: str | None
    line3: str | None
    city: str | None
    postal_code: str | None
    region: str | None
    country: str | None


def _ubl_address(address: Any) -> _Address:
    if address is None:
        return {}
    return {
        "line1": _text(address, "cbc:StreetName"),
        "line2": _text(address, "cbc:AdditionalStreetName"),
        "line3": _text(address, "cac:AddressLine/cbc:Line"),
        "city": _text(address, "cbc:CityName"),
        "postal_code": _text(address, "cbc:PostalZone"),
        "region": _text(address, "cbc:CountrySubentity"),
        "country": _text(address, "cac:Country/cbc:IdentificationCode"),
    }


def _ubl_party(party: Any, name_term: str, at: str) -> tuple[Party, str | None]:
    if party is None:
        _fail(name_term, f"{at}/cac:PartyLegalEntity/cbc:RegistrationName", "missing")
    identifiers, creditor = _ubl_identifiers(party)
    trading_name = _text(party, "cac:PartyName/cbc:Name")
    legal = _find(party, "cac:PartyLegalEntity")
    legal_name = None if legal is None else _text(legal, "cbc:RegistrationName")
    name = trading_name or legal_name
    if name is None:
        _fail(name_term, f"{at}/cac:PartyLegalEntity/cbc:RegistrationName", "missing")
    vat_id = tax_registration = None
    for scheme in _iter(party, "cac:PartyTaxScheme"):
        company_id = _text(scheme, "cbc:CompanyID")
        if (_text(scheme, "cac:TaxScheme/cbc:ID") or "").upper() == "VAT":
            vat_id = vat_id or company_id
        else:
            tax_registration = tax_registration or company_id
    endpoint = _find(party, "cbc:EndpointID")
    company = None if legal is None else _find(legal, "cbc:CompanyID")
    contact = _find(party, "cac:Contact")
    return (
        Party(
            name=name,
            legal_name=legal_name,
            **_ubl_address(_find(party, "cac:PostalAddress")),
            vat_id=vat_id,
            company_id=_element_text(company),
            email=None if contact is None else _text(contact, "cbc:ElectronicMail"),
            phone=None if contact is None else _text(contact, "cbc:Telephone"),
            electronic_address_scheme=_scheme(endpoint),
            electronic_address=_element_text(endpoint),
            company_id_scheme=_scheme(company),
            trading_name=trading_name,
            identifiers=tuple(identifiers) or None,
            tax_registration_id=tax_registration,
            additional_legal_info=None if legal is None else _text(legal, "cbc:CompanyLegalForm"),
            contact_name=None if contact is None else _text(contact, "cbc:Name"),
        ),
        creditor,
    )


def _scheme(element: Any) -> str | None:
    """The schemeID of an identifier that has a value (a scheme of an empty element identifies nothing)."""
    if _element_text(element) is None:
        return None
    scheme: str = element.get("schemeID") or ""
    return scheme.strip() or None


def _element_text(element: Any) -> str | None:
    if element is None:
        return None
    text: str = element.text or ""
    return text.strip() or None


def _ubl_payee(payee: Any, at: str) -> tuple[Party | None, str | None]:
    if payee is None:
        return None, None
    identifiers, creditor = _ubl_identifiers(payee)
    company = _find(payee, "cac:PartyLegalEntity/cbc:CompanyID")
    return (
        Party(
            name=_required(payee, "cac:PartyName/cbc:Name", "BT-59", at),
            company_id=_element_text(company),
            company_id_scheme=_scheme(company),
            identifiers=tuple(identifiers) or None,
        ),
        creditor,
    )


def _ubl_tax_representative(party: Any, at: str) -> Party | None:
    if party is None:
        return None
    vat_id = None
    for scheme in _iter(party, "cac:PartyTaxScheme"):
        vat_id = vat_id or _text(scheme, "cbc:CompanyID")
    return Party(
        name=_required(party, "cac:PartyName/cbc:Name", "BT-62", at),
        **_ubl_address(_find(party, "cac:PostalAddress")),
        vat_id=vat_id,
    )


def _ubl_delivery(delivery: Any, at: str) -> tuple[date | None, Party | None]:
    if delivery is None:
        return None, None
    delivered = _ubl_date(delivery, "cbc:ActualDeliveryDate", "BT-72", at)
    location = _find(delivery, "cac:DeliveryLocation")
    location_id = None if location is None else _find(location, "cbc:ID")
    address = None if location is None else _ubl_address(_find(location, "cac:Address"))
    name = _text(delivery, "cac:DeliveryParty/cac:PartyName/cbc:Name")
    identifier = _element_text(location_id)
    if name is None and not any((address or {}).values()) and identifier is None:
        return delivered, None
    return delivered, Party(
        name=name or "",
        **(address or {}),
        identifiers=(Identifier(value=identifier, scheme=_scheme(location_id)),) if identifier else None,
    )


def _ubl_payment_means(root: Any, at: str) -> tuple[tuple[PaymentMeans, ...], str | None, str | None, date | None]:
    """(payment means, BT-83 remittance information, BT-89 mandate reference, a credit note's due date)."""
    stated: list[PaymentMeans] = []
    reference = mandate = None
    due_date = None
    for index, means in enumerate(_iter(root, "cac:PaymentMeans"), start=1):
        where = f"{at}/cac:PaymentMeans[{index}]"
        code_element = _find(means, "cbc:PaymentMeansCode")
        code = _element_text(code_element)
        if code is None:
            _fail("BT-81", f"{where}/cbc:PaymentMeansCode", "missing")
        reference = reference or _text(means, "cbc:PaymentID")
        due_date = due_date or _ubl_date(means, "cbc:PaymentDueDate", "BT-9", where)
        account = _find(means, "cac:PayeeFinancialAccount")
        card = _find(means, "cac:CardAccount")
        payment_mandate = _find(means, "cac:PaymentMandate")
        if payment_mandate is not None:
            mandate = mandate or _text(payment_mandate, "cbc:ID")
        stated.append(
            PaymentMeans(
                code=code,
                text=(code_element.get("name") or "").strip() or None,
                account_id=None if account is None else _text(account, "cbc:ID"),
                account_name=None if account is None else _text(account, "cbc:Name"),
                bic=None if account is None else _text(account, "cac:FinancialInstitutionBranch/cbc:ID"),
                card_number=None if card is None else _text(card, "cbc:PrimaryAccountNumberID"),
                card_holder=None if card is None else _text(card, "cbc:HolderName"),
                card_network=None if card is None else _text(card, "cbc:NetworkID"),
                debited_account=(
                    None if payment_mandate is None else _text(payment_mandate, "cac:PayerFinancialAccount/cbc:ID")
                ),
            )
        )
    return tuple(stated), reference, mandate, due_date


def _ubl_period(period: Any, at: str, start_term: str, end_term: str) -> Period | None:
    if period is None:
        return None
    start = _ubl_date(period, "cbc:StartDate", start_term, at)
    end = _ubl_date(period, "cbc:EndDate", end_term, at)
    return None if start is None and end is None else Period(start_date=start, end_date=end)


def _ubl_supporting_documents(root: Any, at: str) -> tuple[tuple[SupportingDocument, ...] | None, str | None]:
    """BG-24 and BT-18 (AdditionalDocumentReference), and BT-11 where a credit note carries it (type 50)."""
    documents: list[SupportingDocument] = []
    project = None
    for index, element in enumerate(_iter(root, "cac:AdditionalDocumentReference"), start=1):
        where = f"{at}/cac:AdditionalDocumentReference[{index}]"
        identifier = _find(element, "cbc:ID")
        reference = _element_text(identifier)
        if reference is None:
            continue
        type_code = _text(element, "cbc:DocumentTypeCode")
        if type_code == "50":
            project = project or reference
            continue
        embedded = _find(element, "cac:Attachment/cbc:EmbeddedDocumentBinaryObject")
        documents.append(
            SupportingDocument(
                reference=reference,
                # The CII binding's code for a supporting document (BG-24) when UBL states none.
                type_code=type_code or "916",
                scheme=_scheme(identifier),
                description=_text(element, "cbc:DocumentDescription"),
                uri=_text(element, "cac:Attachment/cac:ExternalReference/cbc:URI"),
                content=None if embedded is None else _binary(embedded.text or "", f"{where}/cac:Attachment"),
                mime_code=None if embedded is None else embedded.get("mimeCode"),
                filename=None if embedded is None else embedded.get("filename"),
            )
        )
    return tuple(documents) or None, project


def _ubl_allowance_charge(element: Any, at: str) -> AllowanceCharge:
    is_charge = _indicator(_text(element, "cbc:ChargeIndicator"), f"{at}/cbc:ChargeIndicator")
    terms = ("BT-99", "BT-100", "BT-101", "BT-102", "BT-103") if is_charge else ("BT-92", "BT-93", "BT-94", "BT-95")
    category = _find(element, "cac:TaxCategory")
    if category is None:
        _fail(terms[3], f"{at}/cac:TaxCategory/cbc:ID", "missing")
    return AllowanceCharge(
        is_charge=is_charge,
        amount=_required_decimal(element, "cbc:Amount", terms[0], at),
        reason=_text(element, "cbc:AllowanceChargeReason"),
        vat_category=_required(category, "cbc:ID", terms[3], f"{at}/cac:TaxCategory"),
        vat_rate=_decimal(category, "cbc:Percent", "BT-103" if is_charge else "BT-96", f"{at}/cac:TaxCategory") or ZERO,
        reason_code=_text(element, "cbc:AllowanceChargeReasonCode"),
        base_amount=_decimal(element, "cbc:BaseAmount", terms[1], at),
        percentage=_decimal(element, "cbc:MultiplierFactorNumeric", terms[2], at),
    )


def _ubl_tax_totals(
    root: Any, currency: str, tax_currency: str | None, at: str
) -> tuple[Decimal, Decimal | None, tuple[VatBreakdown, ...]]:
    """BT-110 with the VAT breakdown, and BT-111: the TaxTotal in the VAT accounting currency (BT-6)."""
    vat_total: Decimal | None = None
    in_tax_currency: Decimal | None = None
    breakdown: list[VatBreakdown] = []
    for index, total in enumerate(_iter(root, "cac:TaxTotal"), start=1):
        where = f"{at}/cac:TaxTotal[{index}]"
        amount_element = _find(total, "cbc:TaxAmount")
        text = _element_text(amount_element)
        if text is None:
            _fail("BT-110", f"{where}/cbc:TaxAmount", "missing")
        amount_currency = amount_element.get("currencyID") or currency
        subtotals = list(_iter(total, "cac:TaxSubtotal"))
        if amount_currency == currency and vat_total is None and (subtotals or tax_currency != currency):
            vat_total = _number(text, "BT-110", f"{where}/cbc:TaxAmount")
            breakdown.extend(
                _ubl_vat_group(subtotal, f"{where}/cac:TaxSubtotal[{number}]")
                for number, subtotal in enumerate(subtotals, start=1)
            )
        elif amount_currency == tax_currency and in_tax_currency is None:
            in_tax_currency = _number(text, "BT-111", f"{where}/cbc:TaxAmount")
    return vat_total if vat_total is not None else ZERO, in_tax_currency, tuple(breakdown)


def _ubl_vat_group(subtotal: Any, at: str) -> VatBreakdown:
    category = _find(subtotal, "cac:TaxCategory")
    if category is None:
        _fail("BT-118", f"{at}/cac:TaxCategory/cbc:ID", "missing")
    category_at = f"{at}/cac:TaxCategory"
    return VatBreakdown(
        vat_category=_required(category, "cbc:ID", "BT-118", category_at),
        vat_rate=_decimal(category, "cbc:Percent", "BT-119", category_at) or ZERO,
        taxable_amount=_required_decimal(subtotal, "cbc:TaxableAmount", "BT-116", at),
        tax_amount=_required_decimal(subtotal, "cbc:TaxAmount", "BT-117", at),
        exemption_reason=_text(category, "cbc:TaxExemptionReason"),
        exemption_reason_code=_text(category, "cbc:TaxExemptionReasonCode"),
    )


def _ubl_line(element: Any, position: int, at: str, *, credit: bool) -> DocumentLine:
    quantity_path = "cbc:CreditedQuantity" if credit else "cbc:InvoicedQuantity"
    quantity_element = _find(element, quantity_path)
    quantity_text = _element_text(quantity_element)
    if quantity_text is None:
        _fail("BT-129", f"{at}/{quantity_path}", "missing")
    unit_code = (quantity_element.get("unitCode") or "").strip()
    if not unit_code:
        _fail("BT-130", f"{at}/{quantity_path}/@unitCode", "missing")
    item = _find(element, "cac:Item")
    if item is None:
        _fail("BT-153", f"{at}/cac:Item/cbc:Name", "missing")
    item_at = f"{at}/cac:Item"
    category = _find(item, "cac:ClassifiedTaxCategory")
    if category is None:
        _fail("BT-151", f"{item_at}/cac:ClassifiedTaxCategory/cbc:ID", "missing")
    price = _find(element, "cac:Price")
    if price is None:
        _fail("BT-146", f"{at}/cac:Price/cbc:PriceAmount", "missing")
    price_at = f"{at}/cac:Price"
    discount = _find(price, "cac:AllowanceCharge")
    object_reference = _find(element, "cac:DocumentReference/cbc:ID")
    standard = _find(item, "cac:StandardItemIdentification/cbc:ID")
    return DocumentLine(
        position=position,
        description=_required(item, "cbc:Name", "BT-153", item_at),
        quantity=_number(quantity_text, "BT-129", f"{at}/{quantity_path}"),
        unit_code=unit_code,
        unit_price=_required_decimal(price, "cbc:PriceAmount", "BT-146", price_at),
        vat_category=_required(category, "cbc:ID", "BT-151", f"{item_at}/cac:ClassifiedTaxCategory"),
        vat_rate=_decimal(category, "cbc:Percent", "BT-152", f"{item_at}/cac:ClassifiedTaxCategory") or ZERO,
        net_amount=_required_decimal(element, "cbc:LineExtensionAmount", "BT-131", at),
        line_id=_required(element, "cbc:ID", "BT-126", at),
        note=_text(element, "cbc:Note"),
        object_identifier=(
            Identifier(value=text, scheme=_scheme(object_reference))
            if (text := _element_text(object_reference))
            else None
        ),
        order_line_reference=_text(element, "cac:OrderLineReference/cbc:LineID"),
        accounting_reference=_text(element, "cbc:AccountingCost"),
        period=_ubl_period(_find(element, "cac:InvoicePeriod"), f"{at}/cac:InvoicePeriod", "BT-134", "BT-135"),
        allowances_charges=tuple(
            _ubl_line_allowance_charge(adjustment, f"{at}/cac:AllowanceCharge[{index}]")
            for index, adjustment in enumerate(_iter(element, "cac:AllowanceCharge"), start=1)
        )
        or None,
        price_base_quantity=_decimal(price, "cbc:BaseQuantity", "BT-149", price_at),
        gross_price=None if discount is None else _decimal(discount, "cbc:BaseAmount", "BT-148", price_at),
        price_discount=None if discount is None else _decimal(discount, "cbc:Amount", "BT-147", price_at),
        item_description=_text(item, "cbc:Description"),
        seller_item_id=_text(item, "cac:SellersItemIdentification/cbc:ID"),
        buyer_item_id=_text(item, "cac:BuyersItemIdentification/cbc:ID"),
        standard_item_id=(
            Identifier(value=text, scheme=_scheme(standard)) if (text := _element_text(standard)) else None
        ),
        classifications=tuple(
            ItemClassification(code=text, list_id=code.get("listID"), list_version=code.get("listVersionID"))
            for code in _iter(item, "cac:CommodityClassification/cbc:ItemClassificationCode")
            if (text := _element_text(code))
        )
        or None,
        origin_country=_text(item, "cac:OriginCountry/cbc:IdentificationCode"),
        attributes=tuple(
            ItemAttribute(name=name, value=_text(attribute, "cbc:Value") or "")
            for attribute in _iter(item, "cac:AdditionalItemProperty")
            if (name := _text(attribute, "cbc:Name"))
        )
        or None,
    )


def _ubl_line_allowance_charge(element: Any, at: str) -> LineAllowanceCharge:
    is_charge = _indicator(_text(element, "cbc:ChargeIndicator"), f"{at}/cbc:ChargeIndicator")
    terms = ("BT-141", "BT-142", "BT-143") if is_charge else ("BT-136", "BT-137", "BT-138")
    return LineAllowanceCharge(
        is_charge=is_charge,
        amount=_required_decimal(element, "cbc:Amount", terms[0], at),
        base_amount=_decimal(element, "cbc:BaseAmount", terms[1], at),
        percentage=_decimal(element, "cbc:MultiplierFactorNumeric", terms[2], at),
        reason=_text(element, "cbc:AllowanceChargeReason"),
        reason_code=_text(element, "cbc:AllowanceChargeReasonCode"),
    )


# --- CII -------------------------------------------------------------------------------------------------

_CII_AT = "/rsm:CrossIndustryInvoice"
_TRANSACTION = "rsm:SupplyChainTradeTransaction"


def _cii_document(root: Any) -> InvoiceDocument:
    at = _CII_AT
    header = _find(root, "rsm:ExchangedDocument")
    header_at = f"{at}/rsm:ExchangedDocument"
    if header is None:
        _fail("BT-1", f"{header_at}/ram:ID", "missing")
    number = _required(header, "ram:ID", "BT-1", header_at)
    type_code = _required(header, "ram:TypeCode", "BT-3", header_at)
    issue_date = _cii_date(header, "ram:IssueDateTime", "BT-2", header_at)
    if issue_date is None:
        _fail("BT-2", f"{header_at}/ram:IssueDateTime", "missing")
    notes = tuple(
        InvoiceNote(text=text, subject_code=_text(note, "ram:SubjectCode"))
        for note in _iter(header, "ram:IncludedNote")
        if (text := _text(note, "ram:Content"))
    )
    transaction = _find(root, _TRANSACTION)
    transaction_at = f"{at}/{_TRANSACTION}"
    if transaction is None:
        _fail("BT-5", f"{transaction_at}/ram:ApplicableHeaderTradeSettlement/ram:InvoiceCurrencyCode", "missing")
    agreement = _find(transaction, "ram:ApplicableHeaderTradeAgreement")
    agreement_at = f"{transaction_at}/ram:ApplicableHeaderTradeAgreement"
    if agreement is None:
        _fail("BT-27", f"{agreement_at}/ram:SellerTradeParty/ram:Name", "missing")
    settlement = _find(transaction, "ram:ApplicableHeaderTradeSettlement")
    settlement_at = f"{transaction_at}/ram:ApplicableHeaderTradeSettlement"
    if settlement is None:
        _fail("BT-5", f"{settlement_at}/ram:InvoiceCurrencyCode", "missing")
    delivery = _find(transaction, "ram:ApplicableHeaderTradeDelivery")
    delivery_at = f"{transaction_at}/ram:ApplicableHeaderTradeDelivery"

    currency = _required(settlement, "ram:InvoiceCurrencyCode", "BT-5", settlement_at)
    tax_currency = _text(settlement, "ram:TaxCurrencyCode")
    seller = _cii_party(_find(agreement, "ram:SellerTradeParty"), "BT-27", f"{agreement_at}/ram:SellerTradeParty")
    buyer = _cii_party(_find(agreement, "ram:BuyerTradeParty"), "BT-44", f"{agreement_at}/ram:BuyerTradeParty")
    representative = _find(agreement, "ram:SellerTaxRepresentativeTradeParty")
    payee = _find(settlement, "ram:PayeeTradeParty")

    means = tuple(
        _cii_payment_means(element, f"{settlement_at}/ram:SpecifiedTradeSettlementPaymentMeans[{index}]")
        for index, element in enumerate(_iter(settlement, "ram:SpecifiedTradeSettlementPaymentMeans"), start=1)
    )
    terms = list(_iter(settlement, "ram:SpecifiedTradePaymentTerms"))
    due_date = None
    for index, term in enumerate(terms, start=1):
        due_date = due_date or _cii_date(
            term, "ram:DueDateDateTime", "BT-9", f"{settlement_at}/ram:SpecifiedTradePaymentTerms[{index}]"
        )
    breakdown, tax_point_date = _cii_vat_breakdown(settlement, settlement_at)
    allowances = tuple(
        _cii_allowance_charge(element, f"{settlement_at}/ram:SpecifiedTradeAllowanceCharge[{index}]")
        for index, element in enumerate(_iter(settlement, "ram:SpecifiedTradeAllowanceCharge"), start=1)
    ) + tuple(
        _cii_logistics_charge(element, f"{settlement_at}/ram:SpecifiedLogisticsServiceCharge[{index}]")
        for index, element in enumerate(_iter(settlement, "ram:SpecifiedLogisticsServiceCharge"), start=1)
    )
    totals = _find(settlement, "ram:SpecifiedTradeSettlementHeaderMonetarySummation")
    totals_at = f"{settlement_at}/ram:SpecifiedTradeSettlementHeaderMonetarySummation"
    if totals is None:
        _fail("BT-106", f"{totals_at}/ram:LineTotalAmount", "missing")
    vat_total, tax_currency_total = _cii_tax_totals(totals, currency, tax_currency, totals_at)
    preceding_list: list[InvoiceReference] = []
    for index, reference in enumerate(_iter(settlement, "ram:InvoiceReferencedDocument"), start=1):
        where = f"{settlement_at}/ram:InvoiceReferencedDocument[{index}]"
        preceding_list.append(
            InvoiceReference(
                number=_required(reference, "ram:IssuerAssignedID", "BT-25", where),
                issue_date=_cii_date(reference, "ram:FormattedIssueDateTime", "BT-26", where),
            )
        )
    preceding = tuple(preceding_list)
    supporting, tender = _cii_supporting_documents(agreement, agreement_at)
    lines = tuple(
        _cii_line(element, index, f"{transaction_at}/ram:IncludedSupplyChainTradeLineItem[{index}]")
        for index, element in enumerate(_iter(transaction, "ram:IncludedSupplyChainTradeLineItem"), start=1)
    )
    context = _find(root, "rsm:ExchangedDocumentContext")
    first_means = means[0] if means else None
    kind: DocumentKind = "credit_note" if type_code in CREDIT_NOTE_TYPE_CODES else "invoice"
    return InvoiceDocument(
        kind=kind,
        number=number,
        issue_date=issue_date,
        due_date=due_date,
        currency=currency,
        language=IMPORTED_LANGUAGE,
        seller=seller,
        buyer=buyer,
        ship_to=None if delivery is None else _cii_ship_to(_find(delivery, "ram:ShipToTradeParty")),
        buyer_reference=_text(agreement, "ram:BuyerReference"),
        order_reference=_text(agreement, "ram:BuyerOrderReferencedDocument/ram:IssuerAssignedID"),
        preceding_invoice_number=preceding[0].number if preceding else None,
        iban=first_means.account_id if first_means else None,
        bic=first_means.bic if first_means else None,
        payment_reference=_text(settlement, "ram:PaymentReference"),
        payment_terms="\n".join(text for term in terms if (text := _text(term, "ram:Description"))) or None,
        notes="\n\n".join(note.text for note in notes) or None,
        lines=lines,
        allowances_charges=allowances,
        vat_breakdown=breakdown,
        line_total=_required_decimal(totals, "ram:LineTotalAmount", "BT-106", totals_at),
        allowance_total=_decimal(totals, "ram:AllowanceTotalAmount", "BT-107", totals_at) or ZERO,
        charge_total=_decimal(totals, "ram:ChargeTotalAmount", "BT-108", totals_at) or ZERO,
        net_total=_required_decimal(totals, "ram:TaxBasisTotalAmount", "BT-109", totals_at),
        vat_total=vat_total,
        gross_total=_required_decimal(totals, "ram:GrandTotalAmount", "BT-112", totals_at),
        prepaid_amount=_decimal(totals, "ram:TotalPrepaidAmount", "BT-113", totals_at) or ZERO,
        amount_due=_required_decimal(totals, "ram:DuePayableAmount", "BT-115", totals_at),
        status=IMPORTED_STATUS,
        delivery_date=(
            None
            if delivery is None
            else _cii_date(delivery, "ram:ActualDeliverySupplyChainEvent/ram:OccurrenceDateTime", "BT-72", delivery_at)
        ),
        preceding_invoice_date=preceding[0].issue_date if preceding else None,
        payment_means_code=first_means.code if first_means else None,
        source_syntax="cii",
        specification_id=(
            None if context is None else _text(context, "ram:GuidelineSpecifiedDocumentContextParameter/ram:ID")
        ),
        business_process=(
            None if context is None else _text(context, "ram:BusinessProcessSpecifiedDocumentContextParameter/ram:ID")
        ),
        type_code=type_code,
        tax_point_date=tax_point_date,
        invoice_period=_cii_period(_find(settlement, "ram:BillingSpecifiedPeriod"), settlement_at, "BT-73", "BT-74"),
        invoice_notes=notes,
        preceding_invoices=preceding,
        project_reference=_text(agreement, "ram:SpecifiedProcuringProject/ram:ID"),
        contract_reference=_text(agreement, "ram:ContractReferencedDocument/ram:IssuerAssignedID"),
        sales_order_reference=_text(agreement, "ram:SellerOrderReferencedDocument/ram:IssuerAssignedID"),
        receiving_advice_reference=(
            None if delivery is None else _text(delivery, "ram:ReceivingAdviceReferencedDocument/ram:IssuerAssignedID")
        ),
        despatch_advice_reference=(
            None if delivery is None else _text(delivery, "ram:DespatchAdviceReferencedDocument/ram:IssuerAssignedID")
        ),
        tender_reference=tender,
        buyer_accounting_reference=_text(settlement, "ram:ReceivableSpecifiedTradeAccountingAccount/ram:ID"),
        supporting_documents=supporting,
        payee=None if payee is None else _cii_payee(payee, f"{settlement_at}/ram:PayeeTradeParty"),
        tax_representative=(
            None
            if representative is None
            else _cii_tax_representative(representative, f"{agreement_at}/ram:SellerTaxRepresentativeTradeParty")
        ),
        payment_means=means,
        mandate_reference=next(
            (text for term in terms if (text := _text(term, "ram:DirectDebitMandateID"))),
            None,
        ),
        creditor_reference=_text(settlement, "ram:CreditorReferenceID"),
        tax_currency=tax_currency,
        tax_currency_vat_total=tax_currency_total,
        rounding_amount=_decimal(totals, "ram:RoundingAmount", "BT-114", totals_at),
    )


def _cii_identifiers(party: Any) -> tuple[Identifier, ...] | None:
    identifiers = [Identifier(value=text) for text in _texts(party, "ram:ID")]
    identifiers += [
        Identifier(value=text, scheme=_scheme(element))
        for element in _iter(party, "ram:GlobalID")
        if (text := _element_text(element))
    ]
    return tuple(identifiers) or None


def _cii_address(address: Any) -> _Address:
    if address is None:
        return {}
    return {
        "line1": _text(address, "ram:LineOne"),
        "line2": _text(address, "ram:LineTwo"),
        "line3": _text(address, "ram:LineThree"),
        "city": _text(address, "ram:CityName"),
        "postal_code": _text(address, "ram:PostcodeCode"),
        "region": _text(address, "ram:CountrySubDivisionName"),
        "country": _text(address, "ram:CountryID"),
    }


def _cii_party(party: Any, name_term: str, at: str) -> Party:
    if party is None:
        _fail(name_term, f"{at}/ram:Name", "missing")
    legal_name = _text(party, "ram:Name")
    legal = _find(party, "ram:SpecifiedLegalOrganization")
    trading_name = None if legal is None else _text(legal, "ram:TradingBusinessName")
    name = trading_name or legal_name
    if name is None:
        _fail(name_term, f"{at}/ram:Name", "missing")
    company = None if legal is None else _find(legal, "ram:ID")
    contact = _find(party, "ram:DefinedTradeContact")
    uri = _find(party, "ram:URIUniversalCommunication/ram:URIID")
    vat_id = tax_registration = None
    for registration in _iter(party, "ram:SpecifiedTaxRegistration/ram:ID"):
        value = _element_text(registration)
        if registration.get("schemeID") == "VA":
            vat_id = vat_id or value
        else:
            tax_registration = tax_registration or value
    return Party(
        name=name,
        legal_name=legal_name,
        **_cii_address(_find(party, "ram:PostalTradeAddress")),
        vat_id=vat_id,
        company_id=_element_text(company),
        email=None if contact is None else _text(contact, "ram:EmailURIUniversalCommunication/ram:URIID"),
        phone=None if contact is None else _text(contact, "ram:TelephoneUniversalCommunication/ram:CompleteNumber"),
        electronic_address_scheme=_scheme(uri),
        electronic_address=_element_text(uri),
        company_id_scheme=_scheme(company),
        trading_name=trading_name,
        identifiers=_cii_identifiers(party),
        tax_registration_id=tax_registration,
        additional_legal_info=_text(party, "ram:Description"),
        contact_name=(
            None if contact is None else _text(contact, "ram:PersonName") or _text(contact, "ram:DepartmentName")
        ),
    )


def _cii_payee(payee: Any, at: str) -> Party:
    company = _find(payee, "ram:SpecifiedLegalOrganization/ram:ID")
    return Party(
        name=_required(payee, "ram:Name", "BT-59", at),
        company_id=_element_text(company),
        company_id_scheme=_scheme(company),
        identifiers=_cii_identifiers(payee),
    )


def _cii_tax_representative(party: Any, at: str) -> Party:
    return Party(
        name=_required(party, "ram:Name", "BT-62", at),
        **_cii_address(_find(party, "ram:PostalTradeAddress")),
        vat_id=_text(party, "ram:SpecifiedTaxRegistration/ram:ID"),
    )


def _cii_ship_to(party: Any) -> Party | None:
    if party is None:
        return None
    name = _text(party, "ram:Name")
    address = _cii_address(_find(party, "ram:PostalTradeAddress"))
    identifiers = _cii_identifiers(party)
    if name is None and identifiers is None and not any(address.values()):
        return None
    return Party(name=name or "", **address, identifiers=identifiers)


def _cii_payment_means(means: Any, at: str) -> PaymentMeans:
    account = _find(means, "ram:PayeePartyCreditorFinancialAccount")
    card = _find(means, "ram:ApplicableTradeSettlementFinancialCard")
    return PaymentMeans(
        code=_required(means, "ram:TypeCode", "BT-81", at),
        text=_text(means, "ram:Information"),
        account_id=(None if account is None else _text(account, "ram:IBANID") or _text(account, "ram:ProprietaryID")),
        account_name=None if account is None else _text(account, "ram:AccountName"),
        bic=_text(means, "ram:PayeeSpecifiedCreditorFinancialInstitution/ram:BICID"),
        card_number=None if card is None else _text(card, "ram:ID"),
        card_holder=None if card is None else _text(card, "ram:CardholderName"),
        debited_account=_text(means, "ram:PayerPartyDebtorFinancialAccount/ram:IBANID"),
    )


def _cii_vat_breakdown(settlement: Any, at: str) -> tuple[tuple[VatBreakdown, ...], date | None]:
    """BG-23, and BT-7, which CII states with each VAT group."""
    groups: list[VatBreakdown] = []
    tax_point: date | None = None
    for index, tax in enumerate(_iter(settlement, "ram:ApplicableTradeTax"), start=1):
        where = f"{at}/ram:ApplicableTradeTax[{index}]"
        tax_point = tax_point or _cii_date(tax, "ram:TaxPointDate", "BT-7", where)
        groups.append(
            VatBreakdown(
                vat_category=_required(tax, "ram:CategoryCode", "BT-118", where),
                vat_rate=_decimal(tax, "ram:RateApplicablePercent", "BT-119", where) or ZERO,
                taxable_amount=_required_decimal(tax, "ram:BasisAmount", "BT-116", where),
                tax_amount=_required_decimal(tax, "ram:CalculatedAmount", "BT-117", where),
                exemption_reason=_text(tax, "ram:ExemptionReason"),
                exemption_reason_code=_text(tax, "ram:ExemptionReasonCode"),
            )
        )
    return tuple(groups), tax_point


def _cii_tax_totals(totals: Any, currency: str, tax_currency: str | None, at: str) -> tuple[Decimal, Decimal | None]:
    """BT-110 (in the invoice currency) and BT-111 (in the VAT accounting currency): CII repeats
    ram:TaxTotalAmount, told apart by currencyID. Absent BT-110 (no VAT at all, category O) reads as zero."""
    vat_total: Decimal | None = None
    in_tax_currency: Decimal | None = None
    for index, element in enumerate(_iter(totals, "ram:TaxTotalAmount"), start=1):
        where = f"{at}/ram:TaxTotalAmount[{index}]"
        text = _element_text(element)
        if text is None:
            continue
        amount_currency = element.get("currencyID") or currency
        if amount_currency == currency and vat_total is None:
            vat_total = _number(text, "BT-110", where)
        elif amount_currency == tax_currency and in_tax_currency is None:
            in_tax_currency = _number(text, "BT-111", where)
    return vat_total if vat_total is not None else ZERO, in_tax_currency


def _cii_tax_category(element: Any, path: str, category_term: str, rate_term: str, at: str) -> tuple[str, Decimal]:
    tax = _find(element, path)
    where = f"{at}/{path}"
    if tax is None:
        _fail(category_term, f"{where}/ram:CategoryCode", "missing")
    category = _required(tax, "ram:CategoryCode", category_term, where)
    return category, _decimal(tax, "ram:RateApplicablePercent", rate_term, where) or ZERO


def _cii_allowance_charge(element: Any, at: str) -> AllowanceCharge:
    is_charge = _indicator(_text(element, "ram:ChargeIndicator/udt:Indicator"), f"{at}/ram:ChargeIndicator")
    terms = ("BT-99", "BT-100", "BT-101", "BT-102", "BT-103") if is_charge else ("BT-92", "BT-93", "BT-94", "BT-95")
    category, rate = _cii_tax_category(
        element, "ram:CategoryTradeTax", terms[3], "BT-103" if is_charge else "BT-96", at
    )
    return AllowanceCharge(
        is_charge=is_charge,
        amount=_required_decimal(element, "ram:ActualAmount", terms[0], at),
        reason=_text(element, "ram:Reason"),
        vat_category=category,
        vat_rate=rate,
        reason_code=_text(element, "ram:ReasonCode"),
        base_amount=_decimal(element, "ram:BasisAmount", terms[1], at),
        percentage=_decimal(element, "ram:CalculationPercent", terms[2], at),
    )


def _cii_logistics_charge(element: Any, at: str) -> AllowanceCharge:
    """Factur-X EXTENDED's logistics service charge, which the document counts in BT-108: a BG-21 charge."""
    category, rate = _cii_tax_category(element, "ram:AppliedTradeTax", "BT-102", "BT-103", at)
    return AllowanceCharge(
        is_charge=True,
        amount=_required_decimal(element, "ram:AppliedAmount", "BT-99", at),
        reason=_text(element, "ram:Description"),
        vat_category=category,
        vat_rate=rate,
    )


def _cii_supporting_documents(agreement: Any, at: str) -> tuple[tuple[SupportingDocument, ...] | None, str | None]:
    """BG-24 and BT-18 (ram:AdditionalReferencedDocument), and BT-17, the one of type 50."""
    documents: list[SupportingDocument] = []
    tender = None
    for index, element in enumerate(_iter(agreement, "ram:AdditionalReferencedDocument"), start=1):
        reference = _text(element, "ram:IssuerAssignedID")
        if reference is None:
            continue
        type_code = _text(element, "ram:TypeCode")
        if type_code == "50":
            tender = tender or reference
            continue
        attachment = _find(element, "ram:AttachmentBinaryObject")
        where = f"{at}/ram:AdditionalReferencedDocument[{index}]/ram:AttachmentBinaryObject"
        documents.append(
            SupportingDocument(
                reference=reference,
                type_code=type_code,
                scheme=_text(element, "ram:ReferenceTypeCode"),
                description=_text(element, "ram:Name"),
                uri=_text(element, "ram:URIID"),
                content=None if attachment is None else _binary(attachment.text or "", where),
                mime_code=None if attachment is None else attachment.get("mimeCode"),
                filename=None if attachment is None else attachment.get("filename"),
            )
        )
    return tuple(documents) or None, tender


def _cii_period(period: Any, at: str, start_term: str, end_term: str) -> Period | None:
    if period is None:
        return None
    where = f"{at}/ram:BillingSpecifiedPeriod"
    start = _cii_date(period, "ram:StartDateTime", start_term, where)
    end = _cii_date(period, "ram:EndDateTime", end_term, where)
    return None if start is None and end is None else Period(start_date=start, end_date=end)


def _cii_line(element: Any, position: int, at: str) -> DocumentLine:
    product = _find(element, "ram:SpecifiedTradeProduct")
    product_at = f"{at}/ram:SpecifiedTradeProduct"
    if product is None:
        _fail("BT-153", f"{product_at}/ram:Name", "missing")
    agreement = _find(element, "ram:SpecifiedLineTradeAgreement")
    agreement_at = f"{at}/ram:SpecifiedLineTradeAgreement"
    net_price = None if agreement is None else _find(agreement, "ram:NetPriceProductTradePrice")
    if net_price is None:
        _fail("BT-146", f"{agreement_at}/ram:NetPriceProductTradePrice/ram:ChargeAmount", "missing")
    net_at = f"{agreement_at}/ram:NetPriceProductTradePrice"
    gross = _find(agreement, "ram:GrossPriceProductTradePrice")
    gross_at = f"{agreement_at}/ram:GrossPriceProductTradePrice"
    quantity_path = "ram:SpecifiedLineTradeDelivery/ram:BilledQuantity"
    quantity_element = _find(element, quantity_path)
    quantity_text = _element_text(quantity_element)
    if quantity_text is None:
        _fail("BT-129", f"{at}/{quantity_path}", "missing")
    unit_code = (quantity_element.get("unitCode") or "").strip()
    if not unit_code:
        _fail("BT-130", f"{at}/{quantity_path}/@unitCode", "missing")
    settlement = _find(element, "ram:SpecifiedLineTradeSettlement")
    settlement_at = f"{at}/ram:SpecifiedLineTradeSettlement"
    if settlement is None:
        _fail("BT-131", f"{settlement_at}/ram:SpecifiedTradeSettlementLineMonetarySummation", "missing")
    category, rate = _cii_tax_category(settlement, "ram:ApplicableTradeTax", "BT-151", "BT-152", settlement_at)
    line_document = _find(element, "ram:AssociatedDocumentLineDocument")
    line_document_at = f"{at}/ram:AssociatedDocumentLineDocument"
    if line_document is None:
        _fail("BT-126", f"{line_document_at}/ram:LineID", "missing")
    standard = _find(product, "ram:GlobalID")
    object_reference = next(
        (
            reference
            for reference in _iter(settlement, "ram:AdditionalReferencedDocument")
            if _text(reference, "ram:TypeCode") == "130"
        ),
        None,
    )
    object_id = None if object_reference is None else _text(object_reference, "ram:IssuerAssignedID")
    return DocumentLine(
        position=position,
        description=_required(product, "ram:Name", "BT-153", product_at),
        quantity=_number(quantity_text, "BT-129", f"{at}/{quantity_path}"),
        unit_code=unit_code,
        unit_price=_required_decimal(net_price, "ram:ChargeAmount", "BT-146", net_at),
        vat_category=category,
        vat_rate=rate,
        net_amount=_required_decimal(
            settlement,
            "ram:SpecifiedTradeSettlementLineMonetarySummation/ram:LineTotalAmount",
            "BT-131",
            settlement_at,
        ),
        line_id=_required(line_document, "ram:LineID", "BT-126", line_document_at),
        note="\n".join(_texts(line_document, "ram:IncludedNote/ram:Content")) or None,
        object_identifier=(
            None
            if object_id is None
            else Identifier(value=object_id, scheme=_text(object_reference, "ram:ReferenceTypeCode"))
        ),
        order_line_reference=_text(agreement, "ram:BuyerOrderReferencedDocument/ram:LineID"),
        accounting_reference=_text(settlement, "ram:ReceivableSpecifiedTradeAccountingAccount/ram:ID"),
        period=_cii_period(_find(settlement, "ram:BillingSpecifiedPeriod"), settlement_at, "BT-134", "BT-135"),
        allowances_charges=tuple(
            _cii_line_allowance_charge(adjustment, f"{settlement_at}/ram:SpecifiedTradeAllowanceCharge[{index}]")
            for index, adjustment in enumerate(_iter(settlement, "ram:SpecifiedTradeAllowanceCharge"), start=1)
        )
        or None,
        price_base_quantity=_decimal(net_price, "ram:BasisQuantity", "BT-149", net_at),
        gross_price=None if gross is None else _decimal(gross, "ram:ChargeAmount", "BT-148", gross_at),
        price_discount=(
            None
            if gross is None
            else _decimal(gross, "ram:AppliedTradeAllowanceCharge/ram:ActualAmount", "BT-147", gross_at)
        ),
        item_description=_text(product, "ram:Description"),
        seller_item_id=_text(product, "ram:SellerAssignedID"),
        buyer_item_id=_text(product, "ram:BuyerAssignedID"),
        standard_item_id=(
            Identifier(value=text, scheme=_scheme(standard)) if (text := _element_text(standard)) else None
        ),
        classifications=tuple(
            ItemClassification(code=text, list_id=code.get("listID"), list_version=code.get("listVersionID"))
            for code in _iter(product, "ram:DesignatedProductClassification/ram:ClassCode")
            if (text := _element_text(code))
        )
        or None,
        origin_country=_text(product, "ram:OriginTradeCountry/ram:ID"),
        attributes=tuple(
            ItemAttribute(name=name, value=_text(characteristic, "ram:Value") or "")
            for characteristic in _iter(product, "ram:ApplicableProductCharacteristic")
            if (name := _text(characteristic, "ram:Description"))
        )
        or None,
    )


def _cii_line_allowance_charge(element: Any, at: str) -> LineAllowanceCharge:
    is_charge = _indicator(_text(element, "ram:ChargeIndicator/udt:Indicator"), f"{at}/ram:ChargeIndicator")
    terms = ("BT-141", "BT-142", "BT-143") if is_charge else ("BT-136", "BT-137", "BT-138")
    return LineAllowanceCharge(
        is_charge=is_charge,
        amount=_required_decimal(element, "ram:ActualAmount", terms[0], at),
        base_amount=_decimal(element, "ram:BasisAmount", terms[1], at),
        percentage=_decimal(element, "ram:CalculationPercent", terms[2], at),
        reason=_text(element, "ram:Reason"),
        reason_code=_text(element, "ram:ReasonCode"),
    )


# --- recomputation ---------------------------------------------------------------------------------------

_HUNDRED = Decimal(100)


def amount_differences(doc: InvoiceDocument) -> tuple[AmountDifference, ...]:
    """Every amount of the document that disagrees with its recomputation, with both values.

    Each amount is recomputed from the document's own amounts one level down, as the EN 16931 BR-CO rules state
    them, so one wrong amount shows once instead of again in every total above it:
      * BT-131 line net = quantity x net price / base quantity + line charges - line allowances, rounded;
      * BT-106 = sum of BT-131; BT-107 / BT-108 = sums of the document-level allowances / charges;
      * BT-109 = BT-106 - BT-107 + BT-108;
      * per VAT group (category and rate): BT-116 = its lines' BT-131 + its charges - its allowances (BR-S-08
        and the other BR-*-08), BT-117 = BT-116 x rate / 100, rounded (BR-CO-17); a group the lines need but
        the breakdown lacks is listed with a document value of 0;
      * BT-110 = sum of BT-117; BT-112 = BT-109 + BT-110; BT-115 = BT-112 - BT-113 + BT-114.
    Rounding is `core.money.round_money`: half-up to the currency's minor unit. Comparison is by value
    (10000 equals 10000.00). BT-111 cannot be recomputed (the exchange rate is not in the document).
    """
    currency = doc.currency
    differences: list[AmountDifference] = []

    def compare(term: str, stated: Decimal, recomputed: Decimal, **where: Any) -> None:
        if stated != recomputed:
            differences.append(
                AmountDifference(
                    term=term, label=TERMS[term], document_value=stated, recomputed_value=recomputed, **where
                )
            )

    taxable: dict[tuple[str, Decimal], Decimal] = {}
    with localcontext(prec=60):  # exact for any realistic quantity x price
        for line in doc.lines:
            base = line.price_base_quantity if line.price_base_quantity else Decimal(1)
            net = line.quantity * line.unit_price / base
            for adjustment in line.allowances_charges or ():
                net += adjustment.amount if adjustment.is_charge else -adjustment.amount
            line_id = line.line_id or str(line.position)
            compare("BT-131", line.net_amount, round_money(net, currency), line_id=line_id)
            key = _group_key(line.vat_category, line.vat_rate)
            taxable[key] = taxable.get(key, ZERO) + line.net_amount

        compare("BT-106", doc.line_total, round_money(sum((line.net_amount for line in doc.lines), ZERO), currency))
        allowances = sum((item.amount for item in doc.allowances_charges if not item.is_charge), ZERO)
        charges = sum((item.amount for item in doc.allowances_charges if item.is_charge), ZERO)
        compare("BT-107", doc.allowance_total, round_money(allowances, currency))
        compare("BT-108", doc.charge_total, round_money(charges, currency))
        compare("BT-109", doc.net_total, round_money(doc.line_total - doc.allowance_total + doc.charge_total, currency))

        for item in doc.allowances_charges:
            key = _group_key(item.vat_category, item.vat_rate)
            taxable[key] = taxable.get(key, ZERO) + (item.amount if item.is_charge else -item.amount)
        stated_groups = set()
        for group in doc.vat_breakdown:
            key = _group_key(group.vat_category, group.vat_rate)
            stated_groups.add(key)
            where = {"vat_category": group.vat_category, "vat_rate": group.vat_rate}
            compare("BT-116", group.taxable_amount, round_money(taxable.get(key, ZERO), currency), **where)
            tax = round_money(group.taxable_amount * _rate(group.vat_category, group.vat_rate) / _HUNDRED, currency)
            compare("BT-117", group.tax_amount, tax, **where)
        for (category, rate), amount in taxable.items():
            if (category, rate) not in stated_groups:
                compare("BT-116", ZERO, round_money(amount, currency), vat_category=category, vat_rate=rate)

        vat = sum((group.tax_amount for group in doc.vat_breakdown), ZERO)
        compare("BT-110", doc.vat_total, round_money(vat, currency))
        compare("BT-112", doc.gross_total, round_money(doc.net_total + doc.vat_total, currency))
        due = doc.gross_total - doc.prepaid_amount + (doc.rounding_amount or ZERO)
        compare("BT-115", doc.amount_due, round_money(due, currency))
    return tuple(differences)


def _rate(category: str, rate: Decimal) -> Decimal:
    return ZERO if category == "O" else rate  # category O has no rate (BR-O-05..07)


def _group_key(category: str, rate: Decimal) -> tuple[str, Decimal]:
    """A VAT group is its category and rate; 19 and 19.00 are one group."""
    return category, _rate(category, rate).normalize()
