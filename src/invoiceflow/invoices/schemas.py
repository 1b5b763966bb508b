from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, ValidationInfo, WithJsonSchema, field_validator

from invoiceflow.core.schemas import (
    AmountIn,
    CurrencyCode,
    DecimalOut,
    InputModel,
    OutputModel,
    Quantity,
    UnitPrice,
    VatRate,
)

InvoiceStatus = Literal["draft", "sent", "paid", "overdue", "cancelled"]
# A credit note is stored as an invoice row of its own kind (invoices/credit_notes.py).
InvoiceKind = Literal["invoice", "credit_note"]
# EN 16931 VAT category codes (UNCL5305 subset): standard, zero, exempt, reverse charge,
# intra-community, export, not subject to VAT.
VatCategory = Literal["S", "Z", "E", "AE", "K", "G", "O"]
SortField = Literal[
    "created_at",
    "-created_at",
    "issue_date",
    "-issue_date",
    "due_date",
    "-due_date",
    "total_amount",
    "-total_amount",
    "invoice_number",
    "-invoice_number",
]
MAX_LINES = 1000
MAX_ALLOWANCES_CHARGES = 100

# EN 16931 BR-CL-19: coded allowance reasons (BT-98) come from UNCL 5189 and BR-CL-20: coded charge reasons
# (BT-105) from UNCL 7161, as the official EN 16931 code-list rules (v1.3.16) enumerate them.
_UNCL5189 = "41 42 60 62 63 64 65 66 67 68 70 71 88 95 100 102 103 104 105"
_UNCL7161 = """AA AAA AAC AAD AAE AAF AAH AAI AAS AAT AAV AAY AAZ ABA ABB ABC ABD ABF ABK ABL ABN ABR ABS ABT ABU ACF
    ACG
    ACH ACI ACJ ACK ACL ACM ACS ADC ADE ADJ ADK ADL ADM ADN ADO ADP ADQ ADR ADT ADW ADY ADZ AEA AEB AEC AED AEF AEH
    AEI AEJ AEK AEL AEM AEN AEO AEP AES AET AEU AEV AEW AEX AEY AEZ AJ AU CA CAB CAD CAE CAF CAI CAJ CAK CAL CAM CAN
    CAO CAP CAQ CAR CAS CAT CAU CAV CAW CAX CAY CAZ CD CG CS CT DAB DAD DAC DAF DAG DAH DAI DAJ DAK DAL DAM DAN DAO
    DAP DAQ DL EG EP ER FAA FAB FAC FC FH FI GAA HAA HD HH IAA IAB ID IF IR IS KO L1 LA LAA LAB LF MAE MI ML NAA OA
    PA PAA PC PL PRV RAB RAC RAD RAF RE RF RH RV SA SAA SAD SAE SAI SG SH SM SU TAB TAC TT TV V1 V2 WH XAA YY
    ZZZ"""
ALLOWANCE_REASON_CODES = frozenset(_UNCL5189.split())
CHARGE_REASON_CODES = frozenset(_UNCL7161.split())


def _check_category_rate(value: Decimal, info: ValidationInfo) -> Decimal:
    # EN 16931 BR-S-05 / BR-Z-05 / BR-E-05 / BR-AE-05 / BR-IC-05 / BR-G-05 / BR-O-05 for lines, and the
    # matching BR-*-06 (allowances) and BR-*-07 (charges).
    category = info.data.get("vat_category")
    if category == "S" and value <= 0:
        raise ValueError("must be greater than 0 for VAT category S")
    if category is not None and category != "S" and value != 0:
        raise ValueError(f"must be 0 for VAT category {category}")
    return value


def _no_float(value: Any) -> Any:
    # ADR 0003: a float cannot hold 0.1; pydantic would otherwise accept one for a Decimal.
    if isinstance(value, bool | float):
        raise ValueError('send numbers as decimal strings, e.g. "-0.40"')
    return value


def _positive_zero(value: Decimal) -> Decimal:
    # "-0.00" is zero: shown as "0.00", never "-0.00".
    return Decimal(0) if value.is_zero() else value


PositiveAmount = Annotated[AmountIn, Field(gt=0)]
RoundingAmount = Annotated[
    Decimal,
    BeforeValidator(_no_float),
    Field(ge=-1, le=1, decimal_places=4),
    AfterValidator(_positive_zero),
    WithJsonSchema({"type": "string", "pattern": r"^-?\d+(\.\d+)?$", "examples": ["-0.02"]}),
]
ROUNDING_DESCRIPTION = (
    "EN 16931 BT-114: added to the amount due (BT-115 = total with VAT - paid + rounding), e.g. to round a cash "
    "payment. At most 1 currency unit either way and at most the currency's decimals. Defaults to 0."
)


class InvoiceLineIn(InputModel):
    description: Annotated[str, Field(min_length=1, max_length=1000)]
    quantity: Quantity
    unit_code: Annotated[str, Field(pattern=r"^[A-Z0-9]{1,3}$", description="UN/ECE Rec 20 unit code")] = "C62"
    unit_price: UnitPrice
    vat_category: VatCategory = "S"
    vat_rate: VatRate
    vat_exemption_reason: Annotated[str | None, Field(max_length=300)] = None

    @field_validator("vat_rate")
    @classmethod
    def _category_matches_rate(cls, value: Decimal, info: ValidationInfo) -> Decimal:
        return _check_category_rate(value, info)


class AllowanceChargeIn(InputModel):
    """A document-level allowance (EN 16931 BG-20, a discount on the whole invoice) or charge (BG-21, e.g.
    freight), in one VAT category and rate: it lowers or raises that VAT group's taxable amount."""

    # Strict: only JSON true or false, never "yes" or 1, decide whether money is added or taken off.
    charge: bool = Field(
        strict=True, description="true: a charge added to the invoice (BG-21); false: an allowance (BG-20)."
    )
    amount: PositiveAmount = Field(
        description="BT-92 / BT-99, greater than 0 (the sign comes from `charge`), with at most the currency's "
        "decimals."
    )
    reason: Annotated[str | None, Field(min_length=1, max_length=300)] = Field(
        default=None, description='BT-97 / BT-104, e.g. "Volume discount". `reason` or `reason_code` is required.'
    )
    reason_code: Annotated[str | None, Field(max_length=3)] = Field(
        default=None,
        validate_default=True,
        description='BT-98: UNCL 5189 for an allowance (e.g. "95" discount); BT-105: UNCL 7161 for a charge '
        '(e.g. "FC" freight). `reason` or `reason_code` is required (EN 16931 BR-33 / BR-38).',
    )
    vat_category: VatCategory = Field(
        default="S", description="The VAT category whose taxable amount this changes (BT-95 / BT-102)."
    )
    vat_rate: VatRate = Field(description="Percent (BT-96 / BT-103): > 0 for category S, 0 for the others.")
    vat_exemption_reason: Annotated[str | None, Field(max_length=300)] = Field(
        default=None, description="Why the VAT group is exempt, used when no line of that group gives one."
    )

    @field_validator("reason_code")
    @classmethod
    def _reason_given_and_coded(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            if info.data.get("reason") is None and "reason" not in _failed(info):
                # EN 16931 BR-33 / BR-38 (BR-CO-21 / BR-CO-22).
                raise ValueError("give a reason, a reason_code or both (EN 16931 BR-33 / BR-38)")
            return value
        charge = info.data.get("charge")
        if charge is True and value not in CHARGE_REASON_CODES:
            raise ValueError("not a UNCL 7161 charge reason code (EN 16931 BR-CL-20), e.g. FC for freight")
        if charge is False and value not in ALLOWANCE_REASON_CODES:
            raise ValueError("not a UNCL 5189 allowance reason code (EN 16931 BR-CL-19), e.g. 95 for a discount")
        return value

    @field_validator("vat_rate")
    @classmethod
    def _category_matches_rate(cls, value: Decimal, info: ValidationInfo) -> Decimal:
        return _check_category_rate(value, info)


def _failed(info: ValidationInfo) -> set[str]:
    """Fields validated before this one that failed: they are missing from `info.data` for that reason."""
    return set(AllowanceChargeIn.model_fields) - set(info.data) - {info.field_name or ""}


Lines = Annotated[list[InvoiceLineIn], Field(min_length=1, max_length=MAX_LINES)]
AllowancesCharges = Annotated[list[AllowanceChargeIn], Field(max_length=MAX_ALLOWANCES_CHARGES)]
ALLOWANCES_DESCRIPTION = (
    "Document-level allowances and charges (EN 16931 BG-20 / BG-21), in this order. An allowance must reduce "
    "a VAT category and rate that the lines or charges have, and may not make that group's taxable amount or "
    "the invoice negative (corrections are credit notes). Defaults to none."
)
Text200 = Annotated[str | None, Field(max_length=200)]


class InvoiceCreate(InputModel):
    client_id: uuid.UUID
    items: Lines
    issue_date: date | None = None
    due_date: date | None = None
    currency: CurrencyCode | None = None
    notes: Annotated[str | None, Field(max_length=2000)] = None
    buyer_reference: Text200 = None
    external_id: Text200 = None
    order_id: uuid.UUID | None = None
    allowances_charges: AllowancesCharges = Field(default_factory=list, description=ALLOWANCES_DESCRIPTION)
    rounding_amount: RoundingAmount = Field(default=Decimal(0), description=ROUNDING_DESCRIPTION)


class InvoiceUpdate(InputModel):
    client_id: uuid.UUID | None = None
    items: Lines | None = None
    issue_date: date | None = None
    due_date: date | None = None
    currency: CurrencyCode | None = None
    notes: Annotated[str | None, Field(max_length=2000)] = None
    buyer_reference: Text200 = None
    allowances_charges: AllowancesCharges | None = Field(
        default=None, description=ALLOWANCES_DESCRIPTION + " Replaces all of them when given; [] removes them."
    )
    rounding_amount: RoundingAmount | None = Field(default=None, description=ROUNDING_DESCRIPTION)


class InvoiceStatusUpdate(InputModel):
    status: InvoiceStatus


class CreditedLineIn(InputModel):
    position: Annotated[int, Field(ge=1, le=MAX_LINES, description="The credited invoice's line position (from 1)")]
    quantity: Quantity | None = Field(default=None, description="Defaults to what remains uncredited on the line.")


class CreditedAllowanceChargeIn(InputModel):
    position: Annotated[
        int,
        Field(
            ge=1,
            le=MAX_ALLOWANCES_CHARGES,
            description="The credited invoice's allowance or charge position (from 1, in `allowances_charges`)",
        ),
    ]
    amount: PositiveAmount | None = Field(
        default=None, description="Defaults to what remains uncredited of the allowance or charge."
    )


class CreditNoteCreate(InputModel):
    """Which lines to credit; `lines` absent or null credits everything the invoice still has uncredited
    (its lines and its document-level allowances and charges)."""

    lines: Annotated[list[CreditedLineIn] | None, Field(min_length=1, max_length=MAX_LINES)] = None
    allowances_charges: Annotated[list[CreditedAllowanceChargeIn] | None, Field(max_length=MAX_ALLOWANCES_CHARGES)] = (
        Field(
            default=None,
            description="With `lines` only: which of the invoice's document-level allowances and charges this credit "
            "note credits (default none). Over all its credit notes, an invoice with allowances or charges is never "
            "credited more than it invoiced in any VAT group, so crediting its lines may require crediting its "
            "allowances too.",
        )
    )


class InvoiceSelection(InputModel):
    """Which invoices, in which order: the list's filters without its paging (the list export takes it)."""

    status: InvoiceStatus | None = None
    kind: InvoiceKind | None = None
    client_id: uuid.UUID | None = None
    issue_date_from: date | None = None
    issue_date_to: date | None = None
    due_date_from: date | None = None
    due_date_to: date | None = None
    overdue: bool | None = None
    min_amount: AmountIn | None = None
    max_amount: AmountIn | None = None
    currency: CurrencyCode | None = None
    q: Annotated[str | None, Field(max_length=200)] = None
    sort: SortField = "-created_at"


class InvoiceFilters(InvoiceSelection):
    limit: Annotated[int, Field(ge=1, le=200)] = 50
    cursor: Annotated[str | None, Field(max_length=500)] = None


class InvoiceLineRead(OutputModel):
    description: str
    quantity: DecimalOut
    unit_code: str
    unit_price: DecimalOut
    vat_category: str
    vat_rate: DecimalOut
    vat_exemption_reason: str | None
    line_total: DecimalOut


class AllowanceChargeRead(OutputModel):
    charge: bool = Field(description="true: a charge (EN 16931 BG-21); false: an allowance (BG-20).")
    amount: DecimalOut
    reason: str | None
    reason_code: str | None
    vat_category: str
    vat_rate: DecimalOut
    vat_exemption_reason: str | None


class VatBreakdownRead(OutputModel):
    vat_category: str
    vat_rate: DecimalOut
    taxable_amount: DecimalOut
    vat_amount: DecimalOut


class InvoiceSummary(OutputModel):
    id: uuid.UUID
    kind: InvoiceKind
    invoice_number: str | None
    credited_invoice_id: uuid.UUID | None
    client_id: uuid.UUID
    order_id: uuid.UUID | None
    status: InvoiceStatus
    issue_date: date
    due_date: date
    currency: str
    net_amount: DecimalOut = Field(description="EN 16931 BT-109: lines - allowances + charges, without VAT.")
    vat_amount: DecimalOut = Field(description="BT-110: the sum of the VAT breakdown's amounts.")
    total_amount: DecimalOut = Field(description="BT-112: net_amount + vat_amount.")
    amount_paid: DecimalOut = Field(description="BT-113.")
    rounding_amount: DecimalOut = Field(description="BT-114, see the create request.")
    amount_due: DecimalOut = Field(description="BT-115: total_amount - amount_paid + rounding_amount.")
    buyer_reference: str | None
    external_id: str | None
    allowed_transitions: list[str]
    created_at: datetime
    updated_at: datetime


class InvoiceRead(InvoiceSummary):
    notes: str | None
    items: list[InvoiceLineRead]
    allowances_charges: list[AllowanceChargeRead] = Field(
        description="Document-level allowances and charges (EN 16931 BG-20 / BG-21), in order."
    )
    line_total_amount: DecimalOut = Field(description="EN 16931 BT-106: the sum of the lines' line_total.")
    allowance_total_amount: DecimalOut = Field(description="BT-107: the sum of the allowances.")
    charge_total_amount: DecimalOut = Field(description="BT-108: the sum of the charges.")
    vat_breakdown: list[VatBreakdownRead] = Field(
        description="BG-23, per VAT category and rate: taxable amount = lines - allowances + charges of the group."
    )
    pdf_url: str | None = Field(default=None, description="Where the PDF downloads (rendered on first request).")
    sent_at: datetime | None
    paid_at: datetime | None


class InvoicePage(OutputModel):
    items: list[InvoiceSummary]
    next_cursor: str | None
    limit: int


PaymentMethod = Literal["bank_transfer", "card", "cash", "direct_debit", "other"]


class PaymentCreate(InputModel):
    """A payment received (for a credit note: paid back). It may not exceed what is still due."""

    amount: Annotated[AmountIn, Field(gt=0, description="In the invoice's currency, at most what is still due.")]
    currency: CurrencyCode | None = Field(default=None, description="Must equal the invoice's currency when given.")
    paid_on: date | None = Field(default=None, description="Defaults to today (UTC); never in the future.")
    method: PaymentMethod = "bank_transfer"
    reference: Annotated[str | None, Field(max_length=200)] = None
    note: Annotated[str | None, Field(max_length=500)] = None


class PaymentRead(OutputModel):
    id: uuid.UUID
    invoice_id: uuid.UUID
    amount: DecimalOut
    currency: str
    paid_on: date
    method: PaymentMethod
    reference: str | None
    note: str | None
    created_at: datetime


class PaymentRecorded(OutputModel):
    payment: PaymentRead
    invoice: InvoiceRead
