"""schedules: organizations.timezone and schedule_runs (one row per job, organisation and business date)

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-22 01:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import invoiceflow.core.db

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("organizations") as batch_op:
        batch_op.add_column(
            sa.Column("timezone", sa.String(length=64), server_default="Europe/Brussels", nullable=False)
        )
    op.create_table(
        "schedule_runs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("started_at", invoiceflow.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", invoiceflow.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_schedule_runs_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schedule_runs")),
        sa.UniqueConstraint("name", "organization_id", "business_date", name="uq_schedule_runs_name_org_date"),
    )


def downgrade() -> None:
    op.drop_table("schedule_runs")
    with op.batch_alter_table("organizations") as batch_op:
        batch_op.drop_column("timezone")
