"""integration job cancellation: integration_jobs.cancel_requested_at

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-24 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import invoiceflow.core.db

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A nullable column: existing jobs read as never asked to stop. Adding it needs no table rebuild on SQLite
# (batch mode issues ALTER TABLE ADD COLUMN there); dropping it does, and batch mode recreates the table with
# its indexes.


def upgrade() -> None:
    with op.batch_alter_table("integration_jobs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("cancel_requested_at", invoiceflow.core.db.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("integration_jobs", schema=None) as batch_op:
        batch_op.drop_column("cancel_requested_at")
