"""invoice numbering function for the single-statement create on PostgreSQL (ADR 0004)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21 21:50:00
"""

from collections.abc import Sequence

from alembic import op


revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Takes the next value of the counter and returns the first number of the series that no invoice of the
# organisation holds yet (a number can be taken after a pattern change, as in
# core/sequences.next_free_number). The application passes the pattern's fixed parts (prefix, width,
# suffix): patterns and periods are decided in Python, the function only counts and pads.
_FUNCTION = """
CREATE FUNCTION invoiceflow_next_invoice_number(
    p_org uuid, p_series text, p_period text, p_prefix text, p_width integer, p_suffix text
) RETURNS text LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    counter bigint;
    assigned text;
BEGIN
    LOOP
        INSERT INTO number_sequences AS s (organization_id, series, period, last_value)
        VALUES (p_org, p_series, p_period, 1)
        ON CONFLICT (organization_id, series, period)
        DO UPDATE SET last_value = s.last_value + 1
        RETURNING s.last_value INTO counter;
        assigned := p_prefix
            || CASE WHEN length(counter::text) >= p_width THEN counter::text ELSE lpad(counter::text, p_width, '0') END
            || p_suffix;
        EXIT WHEN NOT EXISTS (SELECT 1 FROM invoices i WHERE i.organization_id = p_org AND i.invoice_number = assigned);
    END LOOP;
    RETURN assigned;
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_FUNCTION)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS invoiceflow_next_invoice_number(uuid, text, text, text, integer, text)")
