"""workflows: executor_heartbeats (dead-executor recovery) and uploads (seed upload flow)

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-22 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import invoiceflow.core.db

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "executor_heartbeats",
        sa.Column("executor_id", sa.String(length=128), nullable=False),
        sa.Column("app_version", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("hostname", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", invoiceflow.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("seen_at", invoiceflow.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("recovered_at", invoiceflow.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("recovered_by", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint("executor_id", name=op.f("pk_executor_heartbeats")),
    )
    op.create_index(op.f("ix_executor_heartbeats_seen_at"), "executor_heartbeats", ["seen_at"])
    op.create_table(
        "uploads",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("source_key", sa.String(length=1024), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("invoice_number", sa.String(length=200), nullable=True),
        sa.Column("pdf_document_id", sa.Uuid(), nullable=True),
        sa.Column("xlsx_document_id", sa.Uuid(), nullable=True),
        sa.Column("error", sa.JSON(), nullable=True),
        sa.Column("created_at", invoiceflow.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", invoiceflow.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("completed_at", invoiceflow.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_uploads_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_uploads_user_id_users"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(
            ["pdf_document_id"],
            ["documents.id"],
            name=op.f("fk_uploads_pdf_document_id_documents"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["xlsx_document_id"],
            ["documents.id"],
            name=op.f("fk_uploads_xlsx_document_id_documents"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_uploads")),
    )
    op.create_index("ix_uploads_org_created", "uploads", ["organization_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_uploads_org_created", table_name="uploads")
    op.drop_table("uploads")
    op.drop_index(op.f("ix_executor_heartbeats_seen_at"), table_name="executor_heartbeats")
    op.drop_table("executor_heartbeats")
