"""invoice numbers assigned at COMMIT on PostgreSQL (ADR 0004)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21 21:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The counter is taken inside COMMIT, so its row lock lasts for the commit alone (ADR 0004).
# A number already held (after a pattern change, or typed in by hand) is skipped, as in
# core/sequences.next_free_number. The InvoiceCreated event row gets the number in its payload.
_FUNCTION = """
CREATE FUNCTION invoiceflow_assign_number() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    counter bigint;
    assigned text;
BEGIN
    LOOP
        INSERT INTO number_sequences (organization_id, series, period, last_value)
        VALUES (NEW.organization_id, NEW.series, NEW.period, 1)
        ON CONFLICT (organization_id, series, period)
        DO UPDATE SET last_value = number_sequences.last_value + 1
        RETURNING last_value INTO counter;
        assigned := NEW.prefix
            || CASE WHEN length(counter::text) >= NEW.width THEN counter::text
                    ELSE lpad(counter::text, NEW.width, '0') END
            || NEW.suffix;
        EXIT WHEN NOT EXISTS (
            SELECT 1 FROM invoices WHERE organization_id = NEW.organization_id AND invoice_number = assigned
        );
    END LOOP;
    UPDATE invoices SET invoice_number = assigned WHERE id = NEW.invoice_id;
    IF NEW.event_id IS NOT NULL THEN
        UPDATE events
        SET payload = CAST(CAST(payload AS jsonb) || jsonb_build_object('invoice_number', assigned) AS json)
        WHERE id = NEW.event_id;
    END IF;
    DELETE FROM number_requests WHERE id = NEW.id;
    RETURN NULL;
END
$$
"""

_TRIGGER = """
CREATE CONSTRAINT TRIGGER number_requests_assign
AFTER INSERT ON number_requests
DEFERRABLE INITIALLY DEFERRED
FOR EACH ROW EXECUTE FUNCTION invoiceflow_assign_number()
"""


def upgrade() -> None:
    op.create_table(
        "number_requests",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("series", sa.String(length=32), nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("prefix", sa.String(length=64), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("suffix", sa.String(length=64), nullable=False),
        sa.Column("invoice_id", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_number_requests")),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_FUNCTION)
        op.execute(_TRIGGER)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS number_requests_assign ON number_requests")
        op.execute("DROP FUNCTION IF EXISTS invoiceflow_assign_number()")
    op.drop_table("number_requests")
