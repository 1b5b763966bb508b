from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Date, ForeignKey, Index, Integer, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column, relationship

from invoiceflow.core.db import Amount, Base, UTCDateTime, new_id, utcnow


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("organization_id", "order_number", name="uq_orders_org_number"),
        Index("ix_orders_org_created", "organization_id", "created_at", "id"),
        Index("ix_orders_org_client", "organization_id", "client_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    client_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clients.id"))
    order_number: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    order_date: Mapped[date] = mapped_column(Date)
    currency: Mapped[str] = mapped_column(String(3))
    notes: Mapped[str | None] = mapped_column(String(2000))
    net_amount: Mapped[Decimal] = mapped_column(Amount(4))
    vat_amount: Mapped[Decimal] = mapped_column(Amount(4))
    total_amount: Mapped[Decimal] = mapped_column(Amount(4))
    invoice_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    items: Mapped[list[OrderItem]] = relationship(
        back_populates="order", lazy="raise", order_by="OrderItem.position", cascade="all, delete-orphan"
    )


class OrderItem(Base):
    __tablename__ = "order_items"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    product_name: Mapped[str] = mapped_column(String(500))
    quantity: Mapped[Decimal] = mapped_column(Amount(6))
    unit_price: Mapped[Decimal] = mapped_column(Amount(6))
    vat_rate: Mapped[Decimal] = mapped_column(Amount(4))
    line_total: Mapped[Decimal] = mapped_column(Amount(4))

    order: Mapped[Order] = relationship(back_populates="items", lazy="raise")
