"""imported documents: imported_documents table; clients.email becomes optional (imported buyers may
have none)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-21 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import invoiceflow.core.db

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "imported_documents",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("invoice_id", sa.Uuid(), nullable=False),
        sa.Column("supplier_key", sa.String(length=300), nullable=False),
        sa.Column("number", sa.String(length=200), nullable=False),
        sa.Column("syntax", sa.String(length=8), nullable=False),
        sa.Column("specification_id", sa.String(length=300), nullable=True),
        sa.Column("storage_key", sa.String(length=1024), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("validation", sa.JSON(), nullable=False),
        sa.Column("differences", sa.JSON(), nullable=False),
        sa.Column("created_at", invoiceflow.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["invoice_id"], ["invoices.id"], name=op.f("fk_imported_documents_invoice_id_invoices"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_imported_documents_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_imported_documents")),
        sa.UniqueConstraint("invoice_id", name="uq_imported_documents_invoice"),
    )
    op.create_index(
        "uq_imported_documents_supplier_number",
        "imported_documents",
        ["organization_id", "supplier_key", "number"],
        unique=True,
    )
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.alter_column("email", existing_type=sa.String(length=254), nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.alter_column("email", existing_type=sa.String(length=254), nullable=False)
    op.drop_index("uq_imported_documents_supplier_number", table_name="imported_documents")
    op.drop_table("imported_documents")
