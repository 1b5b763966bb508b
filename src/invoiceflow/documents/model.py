"""The document model: one immutable picture of an invoice that every renderer (PDF, Excel, UBL, CII) reads.

Renderers never look at the database or recompute money themselves: the totals here come from
`core.tax.compute_totals` and `core.money`, the same functions the API uses, so a PDF cannot show a cent
more or less than the API. `build_document` refuses rows whose stored totals disagree with their lines
rather than print a document that contradicts the API.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, is_dataclass
from datetime import date
from decimal import Decimal
from typing import Any, Literal

from invoiceflow.core.money import ZERO, minor_unit, round_money, trim
from invoiceflow.core.tax import AllowanceChargeInput, LineInput, amount_due, compute_totals

DocumentKind = Literal["invoice", "credit_note"]

# The fields below marked "e-invoice" hold EN 16931 terms that only an imported e-invoice carries (see
# `einvoicing.importer`). They default to None, which means "absent" (also for the tuples: an empty tuple would
# be a stated empty list), so the invoices made here, their renderings and their exports are unchanged.


@dataclass(frozen=True, slots=True, kw_only=True)
class Identifier:
    """An identifier with its optional scheme (ISO 6523 ICD, EAS, …): party ids BT-29/46/60, the deliver-to
    location BT-71, an item's standard id BT-157, an invoiced object BT-18/BT-128."""

    value: str
    scheme: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Period:
    """An invoicing period, of the document (BG-14) or of a line (BG-26)."""

    start_date: date | None = None
    end_date: date | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LineAllowanceCharge:
    """A line-level allowance (BG-27) or charge (BG-28): it has no VAT of its own, the line's applies."""

    is_charge: bool
    amount: Decimal  # BT-136 / BT-141
    base_amount: Decimal | None = None  # BT-137 / BT-142
    percentage: Decimal | None = None  # BT-138 / BT-143
    reason: str | None = None  # BT-139 / BT-144
    reason_code: str | None = None  # BT-140 / BT-145


@dataclass(frozen=True, slots=True, kw_only=True)
class ItemClassification:
    """BT-158 item classification identifier, with its list (UNTDID 7143) and list version."""

    code: str
    list_id: str | None = None
    list_version: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ItemAttribute:
    """BG-32: BT-160 name and BT-161 value."""

    name: str
    value: str


@dataclass(frozen=True, slots=True, kw_only=True)
class InvoiceNote:
    """BG-1: BT-22 text with its optional BT-21 subject code (UNTDID 4451)."""

    text: str
    subject_code: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class InvoiceReference:
    """BG-3 preceding invoice: BT-25 number, BT-26 issue date."""

    number: str
    issue_date: date | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SupportingDocument:
    """BG-24 additional supporting document (BT-122..BT-125; `type_code` "916" in CII, None when a CII document
    stated none), or with `type_code` "130" the invoiced object identifier BT-18 (`scheme` is BT-18-1)."""

    reference: str
    type_code: str | None = None
    scheme: str | None = None
    description: str | None = None
    uri: str | None = None
    content: bytes | None = None
    mime_code: str | None = None
    filename: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PaymentMeans:
    """One payment means of BG-16 (UBL PaymentMeans, CII SpecifiedTradeSettlementPaymentMeans)."""

    code: str  # BT-81, UNCL 4461
    text: str | None = None  # BT-82
    account_id: str | None = None  # BT-84 (IBAN or another account number)
    account_name: str | None = None  # BT-85
    bic: str | None = None  # BT-86
    card_number: str | None = None  # BT-87 (the last digits only)
    card_holder: str | None = None  # BT-88
    card_network: str | None = None  # UBL cbc:NetworkID (no EN 16931 term; UBL requires it with a card)
    debited_account: str | None = None  # BT-91


@dataclass(frozen=True, slots=True, kw_only=True)
class Party:
    name: str
    legal_name: str | None = None
    line1: str | None = None
    line2: str | None = None
    city: str | None = None
    postal_code: str | None = None
    region: str | None = None
    country: str | None = None  # ISO 3166-1 alpha-2
    vat_id: str | None = None
    company_id: str | None = None
    email: str | None = None
    phone: str | None = None
    electronic_address_scheme: str | None = None  # Peppol EAS, e.g. "0208"
    electronic_address: str | None = None
    # ISO 6523 ICD of `company_id` (EN 16931 BT-30/BT-47 scheme), e.g. "0106" for a Dutch KvK number: some
    # national rules (Peppol NL-R-003, DK-R-014) require it.
    company_id_scheme: str | None = None
    # e-invoice: BT-28/BT-45 trading name as stated (`name` is what documents show: it, else the legal name).
    trading_name: str | None = None
    identifiers: tuple[Identifier, ...] | None = None  # e-invoice: BT-29 / BT-46 / BT-60 / BT-71
    tax_registration_id: str | None = None  # e-invoice: BT-32 (a tax number that is not the VAT id)
    additional_legal_info: str | None = None  # e-invoice: BT-33
    contact_name: str | None = None  # e-invoice: BT-41 / BT-56
    line3: str | None = None  # e-invoice: BT-162 / BT-163 / BT-164 / BT-165 third address line


@dataclass(frozen=True, slots=True, kw_only=True)
class DocumentLine:
    position: int
    description: str
    quantity: Decimal
    unit_code: str  # UN/ECE recommendation 20, e.g. "C62" (one), "HUR" (hour)
    unit_price: Decimal
    vat_category: str  # UNCL5305: S, Z, E, AE, K, G, O
    vat_rate: Decimal  # percent: Decimal("21")
    net_amount: Decimal
    vat_exemption_reason: str | None = None
    vat_exemption_reason_code: str | None = None  # CEF VATEX, e.g. "VATEX-EU-132-1I" (EN 16931 BT-121)
    # e-invoice terms of BG-25. `position` counts lines from 1; `line_id` is BT-126 as the sender wrote it.
    # `description` holds the item name BT-153, `item_description` the item description BT-154.
    line_id: str | None = None
    note: str | None = None  # BT-127
    object_identifier: Identifier | None = None  # BT-128
    order_line_reference: str | None = None  # BT-132
    accounting_reference: str | None = None  # BT-133
    period: Period | None = None  # BG-26
    allowances_charges: tuple[LineAllowanceCharge, ...] | None = None  # BG-27 / BG-28
    price_base_quantity: Decimal | None = None  # BT-149 (BT-146 is the price of this many units)
    gross_price: Decimal | None = None  # BT-148
    price_discount: Decimal | None = None  # BT-147
    item_description: str | None = None  # BT-154
    seller_item_id: str | None = None  # BT-155
    buyer_item_id: str | None = None  # BT-156
    standard_item_id: Identifier | None = None  # BT-157
    classifications: tuple[ItemClassification, ...] | None = None  # BT-158
    origin_country: str | None = None  # BT-159
    attributes: tuple[ItemAttribute, ...] | None = None  # BG-32


@dataclass(frozen=True, slots=True, kw_only=True)
class AllowanceCharge:
    """A document-level allowance (discount) or charge (EN 16931 BG-20 / BG-21)."""

    is_charge: bool
    amount: Decimal
    reason: str | None
    vat_category: str
    vat_rate: Decimal
    # UNCL 5189 for allowances (e.g. "95" discount), UNCL 7161 for charges (e.g. "FC" freight): BT-98 / BT-105.
    reason_code: str | None = None
    base_amount: Decimal | None = None  # e-invoice: BT-93 / BT-100
    percentage: Decimal | None = None  # e-invoice: BT-94 / BT-101


@dataclass(frozen=True, slots=True, kw_only=True)
class VatBreakdown:
    vat_category: str
    vat_rate: Decimal
    taxable_amount: Decimal
    tax_amount: Decimal
    exemption_reason: str | None = None
    exemption_reason_code: str | None = None  # CEF VATEX (EN 16931 BT-121)


@dataclass(frozen=True, slots=True, kw_only=True)
class InvoiceDocument:
    kind: DocumentKind
    number: str
    issue_date: date
    due_date: date | None
    currency: str
    language: str
    seller: Party
    buyer: Party
    ship_to: Party | None
    buyer_reference: str | None
    order_reference: str | None
    preceding_invoice_number: str | None
    iban: str | None
    bic: str | None
    payment_reference: str | None
    payment_terms: str | None
    notes: str | None
    lines: tuple[DocumentLine, ...]
    allowances_charges: tuple[AllowanceCharge, ...]
    vat_breakdown: tuple[VatBreakdown, ...]
    line_total: Decimal  # EN 16931 BT-106: sum of line net amounts
    allowance_total: Decimal  # BT-107
    charge_total: Decimal  # BT-108
    net_total: Decimal  # BT-109: total without VAT
    vat_total: Decimal  # BT-110
    gross_total: Decimal  # BT-112: total with VAT
    prepaid_amount: Decimal  # BT-113
    amount_due: Decimal  # BT-115
    status: str
    logo: bytes | None = None  # PNG or JPEG
    delivery_date: date | None = None  # EN 16931 BT-72: intra-community supplies (category K) need it
    preceding_invoice_date: date | None = None  # BT-26, with `preceding_invoice_number` (BT-25)
    # UNCL 4461 payment means (BT-81) when the seller chose one; e-invoice exports otherwise derive it.
    payment_means_code: str | None = None
    # e-invoice: the syntax an imported document came in ("ubl" or "cii"). Set, the exports write the document
    # as it is: nothing is derived or filled in (buyer reference, payment means, trading names, VATEX codes).
    source_syntax: str | None = None
    specification_id: str | None = None  # e-invoice: BT-24
    business_process: str | None = None  # e-invoice: BT-23
    type_code: str | None = None  # e-invoice: BT-3 as stated (UNTDID 1001, e.g. "384"); None: 380 / 381 by kind
    tax_point_date: date | None = None  # e-invoice: BT-7
    invoice_period: Period | None = None  # e-invoice: BG-14
    # e-invoice: every note (BG-1); `notes` then holds their texts for the renderers.
    invoice_notes: tuple[InvoiceNote, ...] | None = None
    # e-invoice: every preceding invoice (BG-3); the first is also in `preceding_invoice_number` / `_date`.
    preceding_invoices: tuple[InvoiceReference, ...] | None = None
    project_reference: str | None = None  # e-invoice: BT-11
    contract_reference: str | None = None  # e-invoice: BT-12
    sales_order_reference: str | None = None  # e-invoice: BT-14
    receiving_advice_reference: str | None = None  # e-invoice: BT-15
    despatch_advice_reference: str | None = None  # e-invoice: BT-16
    tender_reference: str | None = None  # e-invoice: BT-17
    buyer_accounting_reference: str | None = None  # e-invoice: BT-19
    supporting_documents: tuple[SupportingDocument, ...] | None = None  # e-invoice: BG-24 and BT-18
    payee: Party | None = None  # e-invoice: BG-10 (BT-59 name, BT-60 identifier, BT-61 legal id)
    tax_representative: Party | None = None  # e-invoice: BG-11 (BT-62 name, BT-63 VAT id, BG-12 address)
    # e-invoice: every payment means as stated (None: the exports derive one from the fields above); the first
    # is also in `payment_means_code`, `iban` and `bic`.
    payment_means: tuple[PaymentMeans, ...] | None = None
    mandate_reference: str | None = None  # e-invoice: BT-89
    creditor_reference: str | None = None  # e-invoice: BT-90 (SEPA creditor identifier)
    tax_currency: str | None = None  # e-invoice: BT-6 VAT accounting currency
    tax_currency_vat_total: Decimal | None = None  # e-invoice: BT-111, in `tax_currency`
    rounding_amount: Decimal | None = None  # e-invoice: BT-114 (BT-115 = BT-112 - BT-113 + BT-114)


class TotalsMismatchError(ValueError):
    """The stored totals of an invoice disagree with the totals of its lines: a data bug, never rendered."""


_MISSING: Any = object()


def _get(source: object, name: str, default: Any = _MISSING) -> Any:
    """Read `name` from a mapping or an object alike (ORM rows, SimpleNamespace, JSON dicts)."""
    if isinstance(source, Mapping):
        if default is _MISSING:
            return source[name]
        return source.get(name, default)
    if default is _MISSING:
        return getattr(source, name)
    return getattr(source, name, default)


def _text(source: object, name: str) -> str | None:
    """An optional text field; blank strings count as absent so renderers need only one check."""
    value = _get(source, name, None)
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _decimal(value: Any, field: str) -> Decimal:
    # ADR 0003: a float cannot hold 0.1, so it is refused here as everywhere else.
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    if isinstance(value, str):
        return Decimal(value)
    raise TypeError(f"{field} must be a Decimal, got {type(value).__name__}")


def _address_party(name: str, address: object | None, fallback_country: str | None) -> dict[str, Any]:
    address = address or {}
    return {
        "name": name,
        "line1": _text(address, "line1"),
        "line2": _text(address, "line2"),
        "city": _text(address, "city"),
        "postal_code": _text(address, "postal_code"),
        "region": _text(address, "region"),
        "country": _text(address, "country") or fallback_country,
    }


def _buyer(client: object) -> Party:
    name = str(_get(client, "name"))
    return Party(
        **_address_party(name, _get(client, "address", None), _text(client, "country")),
        vat_id=_text(client, "vat_id"),
        company_id=_text(client, "company_id"),
        email=_text(client, "email"),
        phone=_text(client, "phone"),
        electronic_address_scheme=_text(client, "electronic_address_scheme"),
        electronic_address=_text(client, "electronic_address"),
        company_id_scheme=_text(client, "company_id_scheme"),
    )


def _ship_to(client: object) -> Party | None:
    shipping = _get(client, "shipping_address", None)
    if not shipping:
        return None
    return Party(**_address_party(str(_get(client, "name")), shipping, _text(client, "country")))


def _seller(org: object) -> Party:
    return Party(
        name=str(_get(org, "name")),
        legal_name=_text(org, "legal_name"),
        line1=_text(org, "address_line1"),
        line2=_text(org, "address_line2"),
        city=_text(org, "city"),
        postal_code=_text(org, "postal_code"),
        region=_text(org, "region"),
        country=_text(org, "country"),
        vat_id=_text(org, "vat_id"),
        company_id=_text(org, "company_id"),
        email=_text(org, "email"),
        phone=_text(org, "phone"),
        electronic_address_scheme=_text(org, "electronic_address_scheme"),
        electronic_address=_text(org, "electronic_address"),
        company_id_scheme=_text(org, "company_id_scheme"),
    )


def _check(label: str, stored: Any, computed: Decimal, currency: str) -> None:
    if stored is None:
        return
    shown = round_money(_decimal(stored, label), currency)
    if shown != computed:
        raise TotalsMismatchError(f"{label}: stored {shown} but the lines give {computed}")


def build_document(
    invoice_row: object,
    lines_rows: Iterable[object],
    client_row: object,
    org_row: object,
    *,
    allowances_charges: Iterable[object] = (),
    order_number: str | None = None,
    logo: bytes | None = None,
) -> InvoiceDocument:
    """The document for an invoice, from its rows (ORM objects or plain mappings with the same names).

    `allowances_charges` are the invoice's document-level allowance and charge rows (EN 16931 BG-20 / BG-21:
    `is_charge`, `amount`, `reason`, `reason_code`, `vat_category`, `vat_rate`, optionally `position` and
    `vat_exemption_reason`, which names the exemption of a VAT group no line explains). They enter the VAT
    breakdown and the totals exactly as the API computes them (`core.tax.compute_totals`): BT-106 sum of the
    lines, BT-107 / BT-108 allowances and charges, BT-109 = BT-106 - BT-107 + BT-108. The invoice row's
    `rounding_amount` (BT-114, absent = 0) is added to the amount due (BT-115) and, when not zero, kept in
    the document's `rounding_amount`.

    Optional attributes that later features add (`kind`, `preceding_invoice_number`, `payment_reference`,
    `delivery_date`, `preceding_invoice_date`, `rounding_amount`, the lines' `vat_exemption_reason_code`, the
    parties' `company_id_scheme`, the organisation's `payment_means_code`) are read when present. Values are
    stored in the form the API shows them (quantities and rates without trailing zeros, amounts with the
    currency's decimals), so equal invoices give equal checksums.

    Raises TotalsMismatchError when the invoice's stored totals or line totals disagree with its lines,
    allowances and charges.
    """
    currency = str(_get(invoice_row, "currency"))
    places = minor_unit(currency)
    rows = list(lines_rows)
    if all(_get(row, "position", None) is not None for row in rows):
        rows.sort(key=lambda row: int(_get(row, "position")))
    adjustment_rows = list(allowances_charges)
    if all(_get(row, "position", None) is not None for row in adjustment_rows):
        adjustment_rows.sort(key=lambda row: int(_get(row, "position")))
    adjustments: list[AllowanceChargeInput] = []
    for row in adjustment_rows:
        is_charge = _get(row, "is_charge")
        if not isinstance(is_charge, bool):
            # "false" is a true value: only a real boolean may decide whether money is added or taken off.
            raise TypeError(f"is_charge must be a bool, got {type(is_charge).__name__}")
        adjustments.append(
            AllowanceChargeInput(
                is_charge=is_charge,
                amount=_decimal(_get(row, "amount"), "amount"),
                vat_category=str(_get(row, "vat_category")),
                vat_rate=_decimal(_get(row, "vat_rate"), "vat_rate"),
            )
        )
    inputs = [
        LineInput(
            quantity=_decimal(_get(row, "quantity"), "quantity"),
            unit_price=_decimal(_get(row, "unit_price"), "unit_price"),
            vat_category=str(_get(row, "vat_category")),
            vat_rate=_decimal(_get(row, "vat_rate"), "vat_rate"),
        )
        for row in rows
    ]
    totals = compute_totals(inputs, currency, adjustments)

    lines: list[DocumentLine] = []
    reasons: dict[tuple[str, Decimal], str] = {}
    reason_codes: dict[tuple[str, Decimal], str] = {}
    for index, (row, item, net) in enumerate(zip(rows, inputs, totals.line_totals, strict=True), start=1):
        _check(f"line {index} line_total", _get(row, "line_total", None), net, currency)
        reason = _text(row, "vat_exemption_reason")
        if reason is not None:
            reasons.setdefault((item.vat_category, item.vat_rate.normalize()), reason)
        reason_code = _text(row, "vat_exemption_reason_code")
        if reason_code is not None:
            reason_codes.setdefault((item.vat_category, item.vat_rate.normalize()), reason_code)
        lines.append(
            DocumentLine(
                position=int(_get(row, "position", None) or index),
                description=str(_get(row, "description")),
                quantity=trim(item.quantity),
                unit_code=_text(row, "unit_code") or "C62",
                unit_price=trim(item.unit_price, places),
                vat_category=item.vat_category,
                vat_rate=trim(item.vat_rate),
                vat_exemption_reason=reason,
                vat_exemption_reason_code=reason_code,
                net_amount=net,
            )
        )
    for row, adjustment in zip(adjustment_rows, adjustments, strict=True):
        # A group that only a charge creates (freight at another rate) takes its exemption reason from it.
        reason = _text(row, "vat_exemption_reason")
        if reason is not None:
            reasons.setdefault((adjustment.vat_category, adjustment.vat_rate.normalize()), reason)
    document_adjustments = tuple(
        AllowanceCharge(
            is_charge=adjustment.is_charge,
            amount=round_money(adjustment.amount, currency),
            reason=_text(row, "reason"),
            reason_code=_text(row, "reason_code"),
            vat_category=adjustment.vat_category,
            vat_rate=trim(adjustment.vat_rate),
        )
        for row, adjustment in zip(adjustment_rows, adjustments, strict=True)
    )
    breakdown = tuple(
        VatBreakdown(
            vat_category=group.vat_category,
            vat_rate=trim(group.vat_rate),
            taxable_amount=group.taxable_amount,
            tax_amount=group.vat_amount,
            exemption_reason=reasons.get((group.vat_category, group.vat_rate.normalize())),
            exemption_reason_code=reason_codes.get((group.vat_category, group.vat_rate.normalize())),
        )
        for group in totals.vat_breakdown
    )

    _check("net_amount", _get(invoice_row, "net_amount", None), totals.net_amount, currency)
    _check("vat_amount", _get(invoice_row, "vat_amount", None), totals.vat_amount, currency)
    _check("total_amount", _get(invoice_row, "total_amount", None), totals.total_amount, currency)
    total = _decimal(_get(invoice_row, "total_amount", None) or totals.total_amount, "total_amount")
    paid = _decimal(_get(invoice_row, "amount_paid", None) or ZERO, "amount_paid")
    rounding = _decimal(_get(invoice_row, "rounding_amount", None) or ZERO, "rounding_amount")
    number = _text(invoice_row, "invoice_number") or ""
    kind: DocumentKind
    match _get(invoice_row, "kind", None) or "invoice":
        case "invoice":
            kind = "invoice"
        case "credit_note":
            kind = "credit_note"
        case other:
            raise ValueError(f"unknown document kind {other!r}")

    return InvoiceDocument(
        kind=kind,
        number=number,
        issue_date=_get(invoice_row, "issue_date"),
        due_date=_get(invoice_row, "due_date", None),
        currency=currency,
        language=_text(client_row, "language") or "en",
        seller=_seller(org_row),
        buyer=_buyer(client_row),
        ship_to=_ship_to(client_row),
        buyer_reference=_text(invoice_row, "buyer_reference"),
        order_reference=order_number,
        preceding_invoice_number=_text(invoice_row, "preceding_invoice_number"),
        iban=_text(org_row, "iban"),
        bic=_text(org_row, "bic"),
        payment_reference=_text(invoice_row, "payment_reference") or number or None,
        payment_terms=_text(org_row, "payment_terms_text"),
        notes=_text(invoice_row, "notes"),
        lines=tuple(lines),
        allowances_charges=document_adjustments,
        vat_breakdown=breakdown,
        line_total=totals.line_total_amount,
        allowance_total=totals.allowance_total_amount,
        charge_total=totals.charge_total_amount,
        # EN 16931 BR-CO-13: BT-109 = BT-106 - BT-107 + BT-108.
        net_total=totals.net_amount,
        vat_total=totals.vat_amount,
        gross_total=totals.total_amount,
        prepaid_amount=round_money(paid, currency),
        # EN 16931 BR-CO-16: amount due = total with VAT - paid amount + rounding amount; the API's
        # `amount_due` rounds the stored sum, and so does this.
        amount_due=amount_due(total, paid, rounding, currency),
        status=str(_get(invoice_row, "status", "draft")),
        logo=logo,
        delivery_date=_get(invoice_row, "delivery_date", None),
        preceding_invoice_date=_get(invoice_row, "preceding_invoice_date", None),
        payment_means_code=_text(org_row, "payment_means_code"),
        # BT-114, stated only when there is one (exports then write it, and BR-CO-16 holds in the XML).
        rounding_amount=round_money(rounding, currency) if rounding else None,
    )


def _canonical(value: Any) -> Any:
    """A JSON value that is equal for documents that look equal: Decimal("21.00") and Decimal("21") match."""
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _canonical(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Decimal):
        return "0" if value.is_zero() else format(value.normalize(), "f")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bytes):
        return hashlib.sha256(value).hexdigest()
    if isinstance(value, tuple | list):
        return [_canonical(item) for item in value]
    if value is None or isinstance(value, str | int):
        return value
    raise TypeError(f"no canonical form for {type(value).__name__}")


def source_checksum(doc: InvoiceDocument) -> str:
    """SHA-256 over every field of the document, so a stored rendering is redone only when its data changed.

    Renderers keep their own TEMPLATE_VERSION; a store keys a rendering on both.
    """
    payload = json.dumps(_canonical(doc), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()
