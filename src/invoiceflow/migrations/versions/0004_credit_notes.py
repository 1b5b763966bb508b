"""credit notes: invoices.kind, invoices.credited_invoice_id, organizations.credit_note_number_pattern

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# SQLite cannot add a foreign key to an existing table: batch mode rebuilds `invoices` there (copying its
# rows and indexes); PostgreSQL gets plain ALTER TABLE statements.


def upgrade() -> None:
    with op.batch_alter_table("organizations", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "credit_note_number_pattern",
                sa.String(length=64),
                server_default="CN-{YYYY}-{SEQ:05}",
                nullable=False,
            )
        )
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("kind", sa.String(length=16), server_default="invoice", nullable=False))
        batch_op.add_column(sa.Column("credited_invoice_id", sa.Uuid(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_invoices_credited_invoice_id_invoices"), "invoices", ["credited_invoice_id"], ["id"]
        )
        batch_op.create_index("ix_invoices_org_credited", ["organization_id", "credited_invoice_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.drop_index("ix_invoices_org_credited")
        batch_op.drop_constraint(batch_op.f("fk_invoices_credited_invoice_id_invoices"), type_="foreignkey")
        batch_op.drop_column("credited_invoice_id")
        batch_op.drop_column("kind")
    with op.batch_alter_table("organizations", schema=None) as batch_op:
        batch_op.drop_column("credit_note_number_pattern")
