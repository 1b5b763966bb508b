"""broker publications: broker_publications (one row per event to publish) and broker_publication_floor

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-22 02:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import invoiceflow.core.db

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "broker_publications",
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", invoiceflow.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("created_at", invoiceflow.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("published_at", invoiceflow.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name=op.f("fk_broker_publications_event_id_events"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_broker_publications")),
    )
    op.create_index(
        "ix_broker_publications_due",
        "broker_publications",
        ["seq"],
        unique=False,
        postgresql_where=sa.text("status IN ('pending', 'failed')"),
        sqlite_where=sa.text("status IN ('pending', 'failed')"),
    )
    floor = op.create_table(
        "broker_publication_floor",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("floor_seq", sa.BigInteger(), nullable=False),
        sa.Column("mark_seq", sa.BigInteger(), nullable=True),
        sa.Column("mark_at", invoiceflow.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_broker_publication_floor")),
    )
    # The events recorded before this revision were never meant for the broker: start after them.
    op.execute(
        floor.insert().from_select(
            ["id", "floor_seq"],
            sa.select(sa.literal(1), sa.func.coalesce(sa.func.max(sa.column("seq")), 0)).select_from(
                sa.table("events")
            ),
        )
    )


def downgrade() -> None:
    op.drop_table("broker_publication_floor")
    op.drop_index(
        "ix_broker_publications_due",
        table_name="broker_publications",
        postgresql_where=sa.text("status IN ('pending', 'failed')"),
        sqlite_where=sa.text("status IN ('pending', 'failed')"),
    )
    op.drop_table("broker_publications")
