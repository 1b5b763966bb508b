"""document-level allowances and charges: invoice_allowance_charges, invoices.rounding_amount

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import invoiceflow.core.db

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Existing invoices have no allowances or charges and no rounding amount: the server default 0 fills the new
# column, so their totals and amounts due read back unchanged. Adding a plain column needs no table rebuild
# on SQLite (batch mode issues ALTER TABLE ADD COLUMN there).


def upgrade() -> None:
    op.create_table(
        "invoice_allowance_charges",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("invoice_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("is_charge", sa.Boolean(), nullable=False),
        sa.Column("amount", invoiceflow.core.db.Amount(precision=20, scale=4), nullable=False),
        sa.Column("reason", sa.String(length=300), nullable=True),
        sa.Column("reason_code", sa.String(length=3), nullable=True),
        sa.Column("vat_category", sa.String(length=2), nullable=False),
        sa.Column("vat_rate", invoiceflow.core.db.Amount(precision=20, scale=4), nullable=False),
        sa.Column("vat_exemption_reason", sa.String(length=300), nullable=True),
        sa.ForeignKeyConstraint(
            ["invoice_id"],
            ["invoices.id"],
            name=op.f("fk_invoice_allowance_charges_invoice_id_invoices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invoice_allowance_charges")),
    )
    with op.batch_alter_table("invoice_allowance_charges", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_invoice_allowance_charges_invoice_id"), ["invoice_id"], unique=False)
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "rounding_amount",
                invoiceflow.core.db.Amount(precision=20, scale=4),
                server_default="0",
                nullable=False,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.drop_column("rounding_amount")
    with op.batch_alter_table("invoice_allowance_charges", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_invoice_allowance_charges_invoice_id"))
    op.drop_table("invoice_allowance_charges")
