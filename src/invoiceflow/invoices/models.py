from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, String, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from invoiceflow.core.db import Amount, Base, UTCDateTime, new_id, utcnow


class Invoice(Base):
    __tablename__ = "invoices"
    __table_args__ = (
        Index("uq_invoices_org_number", "organization_id", "invoice_number", unique=True),
        Index(
            "uq_invoices_org_external_id",
            "organization_id",
            "external_id",
            unique=True,
            postgresql_where=text("external_id IS NOT NULL"),
            sqlite_where=text("external_id IS NOT NULL"),
        ),
        Index("ix_invoices_org_created", "organization_id", "created_at", "id"),
        Index("ix_invoices_org_client_status", "organization_id", "client_id", "status", "created_at", "id"),
        Index("ix_invoices_org_status_due", "organization_id", "status", "due_date"),
        Index("ix_invoices_org_issue", "organization_id", "issue_date"),
        Index("ix_invoices_org_credited", "organization_id", "credited_invoice_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    # "invoice" or "credit_note" (invoices/credit_notes.py); a credit note names the invoice it credits.
    kind: Mapped[str] = mapped_column(String(16), default="invoice", server_default="invoice")
    credited_invoice_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("invoices.id"))
    client_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clients.id"))
    order_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("orders.id"))
    invoice_number: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="draft")
    issue_date: Mapped[date] = mapped_column(Date)
    due_date: Mapped[date] = mapped_column(Date)
    currency: Mapped[str] = mapped_column(String(3))
    notes: Mapped[str | None] = mapped_column(String(2000))
    buyer_reference: Mapped[str | None] = mapped_column(String(200))
    external_id: Mapped[str | None] = mapped_column(String(200))
    net_amount: Mapped[Decimal] = mapped_column(Amount(4))
    vat_amount: Mapped[Decimal] = mapped_column(Amount(4))
    total_amount: Mapped[Decimal] = mapped_column(Amount(4))
    amount_paid: Mapped[Decimal] = mapped_column(Amount(4), default=Decimal("0"))
    # EN 16931 BT-114, added to the amount due (BT-115); at most one currency unit either way.
    rounding_amount: Mapped[Decimal] = mapped_column(Amount(4), default=Decimal("0"), server_default="0")
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    lines: Mapped[list[InvoiceLine]] = relationship(
        back_populates="invoice", lazy="raise", order_by="InvoiceLine.position", cascade="all, delete-orphan"
    )
    allowances_charges: Mapped[list[InvoiceAllowanceCharge]] = relationship(
        back_populates="invoice",
        lazy="raise",
        order_by="InvoiceAllowanceCharge.position",
        cascade="all, delete-orphan",
    )


class InvoiceLine(Base):
    __tablename__ = "invoice_lines"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    invoice_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("invoices.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    description: Mapped[str] = mapped_column(String(1000))
    quantity: Mapped[Decimal] = mapped_column(Amount(6))
    unit_code: Mapped[str] = mapped_column(String(3))
    unit_price: Mapped[Decimal] = mapped_column(Amount(6))
    vat_category: Mapped[str] = mapped_column(String(2))
    vat_rate: Mapped[Decimal] = mapped_column(Amount(4))
    vat_exemption_reason: Mapped[str | None] = mapped_column(String(300))
    line_total: Mapped[Decimal] = mapped_column(Amount(4))

    invoice: Mapped[Invoice] = relationship(back_populates="lines", lazy="raise")


class InvoiceAllowanceCharge(Base):
    """A document-level allowance (EN 16931 BG-20) or charge (BG-21) of an invoice or credit note.

    The amount is positive either way; `is_charge` says whether it raises or lowers the taxable amount of its
    VAT group. A credit note's row keeps the `position` of the invoice's allowance or charge it credits.
    """

    __tablename__ = "invoice_allowance_charges"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    invoice_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("invoices.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    is_charge: Mapped[bool] = mapped_column(Boolean)
    amount: Mapped[Decimal] = mapped_column(Amount(4))
    reason: Mapped[str | None] = mapped_column(String(300))
    reason_code: Mapped[str | None] = mapped_column(String(3))  # UNCL5189 (allowances) / UNCL7161 (charges)
    vat_category: Mapped[str] = mapped_column(String(2))
    vat_rate: Mapped[Decimal] = mapped_column(Amount(4))
    vat_exemption_reason: Mapped[str | None] = mapped_column(String(300))

    invoice: Mapped[Invoice] = relationship(back_populates="allowances_charges", lazy="raise")


class Payment(Base):
    """Money received for an invoice (or, for a credit note, paid back): full or partial.

    The invoice's `amount_paid` is the sum of its payments (and a status change to `paid` sets it to the
    amount due); a payment that completes the amount due makes the invoice `paid`.
    """

    __tablename__ = "payments"
    __table_args__ = (Index("ix_payments_invoice", "invoice_id", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    invoice_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("invoices.id", ondelete="CASCADE"))
    amount: Mapped[Decimal] = mapped_column(Amount(4))
    currency: Mapped[str] = mapped_column(String(3))
    paid_on: Mapped[date] = mapped_column(Date)
    # "bank_transfer", "card", "cash", "direct_debit", "other"
    method: Mapped[str] = mapped_column(String(20))
    reference: Mapped[str | None] = mapped_column(String(200))
    note: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
