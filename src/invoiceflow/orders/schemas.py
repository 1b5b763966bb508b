from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import Field

from invoiceflow.core.schemas import CurrencyCode, DecimalOut, InputModel, OutputModel, Quantity, UnitPrice, VatRate
from invoiceflow.orders.transitions import STATUSES

OrderStatus = Literal["pending", "processing", "completed", "cancelled"]
assert set(STATUSES) == {"pending", "processing", "completed", "cancelled"}


class OrderItemIn(InputModel):
    product_name: Annotated[str, Field(min_length=1, max_length=500)]
    quantity: Quantity
    unit_price: UnitPrice
    vat_rate: VatRate


class OrderCreate(InputModel):
    client_id: uuid.UUID
    order_number: Annotated[str | None, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9/_.#-]+$")] = None
    order_date: date | None = None
    currency: CurrencyCode | None = None
    notes: Annotated[str | None, Field(max_length=2000)] = None
    items: Annotated[list[OrderItemIn], Field(min_length=1, max_length=1000)]


class OrderStatusUpdate(InputModel):
    status: OrderStatus


class OrderFilters(InputModel):
    status: OrderStatus | None = None
    client_id: uuid.UUID | None = None
    date_from: date | None = None
    date_to: date | None = None
    limit: Annotated[int, Field(ge=1, le=200)] = 50
    cursor: Annotated[str | None, Field(max_length=500)] = None


class OrderItemRead(OutputModel):
    product_name: str
    quantity: DecimalOut
    unit_price: DecimalOut
    vat_rate: DecimalOut
    line_total: DecimalOut


class OrderRead(OutputModel):
    id: uuid.UUID
    order_number: str
    client_id: uuid.UUID
    status: OrderStatus
    order_date: date
    currency: str
    notes: str | None
    items: list[OrderItemRead]
    net_amount: DecimalOut
    vat_amount: DecimalOut
    total_amount: DecimalOut
    invoice_id: uuid.UUID | None
    allowed_transitions: list[str]
    created_at: datetime
    updated_at: datetime


class OrderPage(OutputModel):
    items: list[OrderRead]
    next_cursor: str | None
    limit: int
