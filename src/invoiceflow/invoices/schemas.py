from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import Field, ValidationInfo, field_validator

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
        # EN 16931 BR-S-05 / BR-Z-05 / BR-E-05 / BR-AE-05 / BR-IC-05 / BR-G-05 / BR-O-05.
        category = info.data.get("vat_category")
        if category == "S" and value <= 0:
            raise ValueError("must be greater than 0 for VAT category S")
        if category is not None and category != "S" and value != 0:
            raise ValueError(f"must be 0 for VAT category {category}")
        return value


Lines = Annotated[list[InvoiceLineIn], Field(min_length=1, max_length=MAX_LINES)]
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


class InvoiceUpdate(InputModel):
    client_id: uuid.UUID | None = None
    items: Lines | None = None
    issue_date: date | None = None
    due_date: date | None = None
    currency: CurrencyCode | None = None
    notes: Annotated[str | None, Field(max_length=2000)] = None
    buyer_reference: Text200 = None


class InvoiceStatusUpdate(InputModel):
    status: InvoiceStatus


class CreditedLineIn(InputModel):
    position: Annotated[int, Field(ge=1, le=MAX_LINES, description="The credited invoice's line position (from 1)")]
    quantity: Quantity | None = Field(default=None, description="Defaults to what remains uncredited on the line.")


class CreditNoteCreate(InputModel):
    """Which lines to credit; `lines` absent or null credits everything the invoice still has uncredited."""

    lines: Annotated[list[CreditedLineIn] | None, Field(min_length=1, max_length=MAX_LINES)] = None


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
    net_amount: DecimalOut
    vat_amount: DecimalOut
    total_amount: DecimalOut
    amount_paid: DecimalOut
    amount_due: DecimalOut
    buyer_reference: str | None
    external_id: str | None
    allowed_transitions: list[str]
    created_at: datetime
    updated_at: datetime


class InvoiceRead(InvoiceSummary):
    notes: str | None
    items: list[InvoiceLineRead]
    vat_breakdown: list[VatBreakdownRead]
    pdf_url: str | None = Field(default=None, description="Where the PDF downloads (rendered on first request).")
    sent_at: datetime | None
    paid_at: datetime | None


class InvoicePage(OutputModel):
    items: list[InvoiceSummary]
    next_cursor: str | None
    limit: int
