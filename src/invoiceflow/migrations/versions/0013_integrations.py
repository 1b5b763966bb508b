"""integrations: integrations, integration_jobs, integration_job_items, sent_records (issue 6)

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-22 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import invoiceflow.core.db

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "integrations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=True),
        sa.Column("source", sa.JSON(), nullable=False),
        sa.Column("destination", sa.JSON(), nullable=False),
        sa.Column("secrets", sa.Text(), nullable=True),
        sa.Column("destination_key", sa.Uuid(), nullable=False),
        sa.Column("schedule", sa.String(length=100), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("notify_on_success", sa.Boolean(), nullable=False),
        sa.Column("page_size", sa.Integer(), nullable=False),
        sa.Column("cursor", sa.Text(), nullable=True),
        sa.Column("active_job_id", sa.Uuid(), nullable=True),
        sa.Column("active_until", invoiceflow.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", invoiceflow.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", invoiceflow.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", invoiceflow.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_integrations_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_integrations")),
    )
    op.create_index("ix_integrations_org_created", "integrations", ["organization_id", "created_at", "id"])
    op.create_index(
        "uq_integrations_org_default",
        "integrations",
        ["organization_id"],
        unique=True,
        postgresql_where=sa.text("is_default AND deleted_at IS NULL"),
        sqlite_where=sa.text("is_default AND deleted_at IS NULL"),
    )
    op.create_index(
        "uq_integrations_org_name_live",
        "integrations",
        ["organization_id", "name"],
        unique=True,
        postgresql_where=sa.text("deleted_at IS NULL"),
        sqlite_where=sa.text("deleted_at IS NULL"),
    )
    op.create_table(
        "sent_records",
        sa.Column("destination_key", sa.Uuid(), nullable=False),
        sa.Column("supplier_key", sa.String(length=255), nullable=False),
        sa.Column("invoice_number", sa.String(length=200), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("document_sha256", sa.String(length=64), nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=True),
        sa.Column("remote_id", sa.String(length=255), nullable=True),
        sa.Column("sent_at", invoiceflow.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_sent_records_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("destination_key", "supplier_key", "invoice_number", name=op.f("pk_sent_records")),
    )
    op.create_table(
        "integration_jobs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("integration_id", sa.Uuid(), nullable=False),
        sa.Column("job_type", sa.String(length=16), nullable=False),
        sa.Column("trigger", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("force_processing", sa.Boolean(), nullable=False),
        sa.Column("invoice_ids", sa.JSON(), nullable=True),
        sa.Column("requested_by_user_id", sa.Uuid(), nullable=True),
        sa.Column("workflow_id", sa.String(length=200), nullable=True),
        sa.Column("cursor", sa.Text(), nullable=True),
        sa.Column("pages_done", sa.Integer(), nullable=False),
        sa.Column("source_exhausted", sa.Boolean(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("processed", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("duplicates", sa.Integer(), nullable=False),
        sa.Column("invalid", sa.Integer(), nullable=False),
        sa.Column("changed", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", invoiceflow.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", invoiceflow.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("started_at", invoiceflow.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("completed_at", invoiceflow.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["integration_id"],
            ["integrations.id"],
            name=op.f("fk_integration_jobs_integration_id_integrations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_integration_jobs_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["requested_by_user_id"],
            ["users.id"],
            name=op.f("fk_integration_jobs_requested_by_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_integration_jobs")),
    )
    op.create_index("ix_integration_jobs_integration_created", "integration_jobs", ["integration_id", "created_at"])
    op.create_index("ix_integration_jobs_org_created", "integration_jobs", ["organization_id", "created_at", "id"])
    op.create_index(
        "uq_integration_jobs_scheduled_trigger",
        "integration_jobs",
        ["integration_id", "trigger"],
        unique=True,
        postgresql_where=sa.text("job_type = 'scheduled'"),
        sqlite_where=sa.text("job_type = 'scheduled'"),
    )
    op.create_table(
        "integration_job_items",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("page_no", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("source_id", sa.String(length=255), nullable=False),
        sa.Column("supplier_key", sa.String(length=255), nullable=True),
        sa.Column("invoice_number", sa.String(length=200), nullable=True),
        sa.Column("document_sha256", sa.String(length=64), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("idempotency_key", sa.String(length=100), nullable=True),
        sa.Column("rule_ids", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("remote_id", sa.String(length=255), nullable=True),
        sa.Column("response", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", invoiceflow.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", invoiceflow.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["integration_jobs.id"],
            name=op.f("fk_integration_job_items_job_id_integration_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_integration_job_items")),
        sa.UniqueConstraint("job_id", "source_id", name="uq_integration_job_items_job_source"),
    )
    op.create_index("ix_integration_job_items_job_page", "integration_job_items", ["job_id", "page_no"])


def downgrade() -> None:
    op.drop_index("ix_integration_job_items_job_page", table_name="integration_job_items")
    op.drop_table("integration_job_items")
    op.drop_index("uq_integration_jobs_scheduled_trigger", table_name="integration_jobs")
    op.drop_index("ix_integration_jobs_org_created", table_name="integration_jobs")
    op.drop_index("ix_integration_jobs_integration_created", table_name="integration_jobs")
    op.drop_table("integration_jobs")
    op.drop_table("sent_records")
    op.drop_index("uq_integrations_org_name_live", table_name="integrations")
    op.drop_index("uq_integrations_org_default", table_name="integrations")
    op.drop_index("ix_integrations_org_created", table_name="integrations")
    op.drop_table("integrations")
