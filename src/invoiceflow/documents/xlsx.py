"""Excel renderings: one invoice as a workbook, and the invoice list export.

Amounts are written as numbers with a number format, dates as dates, so the sheet can be summed and
filtered; the values are the document model's (already rounded by the money core), never recomputed by
formulas that could round differently. The list export streams rows to disk (`constant_memory`) so its
memory does not grow with the number of invoices.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from io import BytesIO
from pathlib import Path
from typing import Any

import xlsxwriter

from invoiceflow.core.money import minor_unit, round_money
from invoiceflow.documents.model import InvoiceDocument, Party

# Bump when the layout changes: stored workbooks are keyed on (source checksum, TEMPLATE_VERSION).
TEMPLATE_VERSION = "xlsx-1"

# The last data row an Excel sheet can hold below its header row (1,048,576 rows in all).
MAX_LIST_ROWS = 1_048_575

_DATE_FORMAT = "yyyy-mm-dd"


def _amount_format(places: int) -> str:
    return "#,##0" if places == 0 else "#,##0." + "0" * places


def _places(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def _fixed_created(day: date) -> datetime:
    # Workbook metadata carries a creation time; the issue date keeps equal documents byte-identical.
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


class _Formats:
    """XlsxWriter formats are workbook objects: made once per workbook, shared by every cell using them."""

    def __init__(self, workbook: Any) -> None:
        self.workbook = workbook
        self.title = workbook.add_format({"bold": True, "font_size": 16})
        self.bold = workbook.add_format({"bold": True})
        self.label = workbook.add_format({"font_color": "#59636E"})
        self.head = workbook.add_format({"bold": True, "bg_color": "#EEF1F4", "bottom": 1})
        self.head_right = workbook.add_format({"bold": True, "bg_color": "#EEF1F4", "bottom": 1, "align": "right"})
        self.wrap = workbook.add_format({"text_wrap": True, "valign": "top"})
        self.top = workbook.add_format({"valign": "top"})
        self.date = workbook.add_format({"num_format": _DATE_FORMAT, "align": "left"})
        self._numbers: dict[tuple[str, bool], Any] = {}

    def number(self, num_format: str, *, bold: bool = False) -> Any:
        key = (num_format, bold)
        fmt = self._numbers.get(key)
        if fmt is None:
            fmt = self.workbook.add_format({"num_format": num_format, "valign": "top", "bold": bold})
            self._numbers[key] = fmt
        return fmt

    def decimal(self, value: Decimal) -> Any:
        """Shows the value's own decimals (quantity 2.5, rate 5.5) without a trailing separator."""
        places = _places(value)
        return self.number("0" if places == 0 else "0." + "0" * places)


def _one_line(party: Party) -> str:
    place = " ".join(part for part in (party.postal_code, party.city) if part)
    parts = [party.line1, party.line2, place, party.region, party.country]
    return ", ".join(part for part in parts if part)


def render_invoice_xlsx(doc: InvoiceDocument) -> bytes:
    """One invoice as a workbook: references, parties, lines, VAT breakdown and totals on one sheet."""
    buffer = BytesIO()
    workbook = xlsxwriter.Workbook(buffer, {"in_memory": True})
    title = "Credit note" if doc.kind == "credit_note" else "Invoice"
    workbook.set_properties(
        {
            "title": f"{title} {doc.number}".strip(),
            "author": doc.seller.legal_name or doc.seller.name,
            "comments": f"invoiceflow {TEMPLATE_VERSION}",
            "created": _fixed_created(doc.issue_date),
        }
    )
    formats = _Formats(workbook)
    money = formats.number(f'{_amount_format(minor_unit(doc.currency))} "{doc.currency}"')
    money_bold = formats.number(f'{_amount_format(minor_unit(doc.currency))} "{doc.currency}"', bold=True)
    sheet = workbook.add_worksheet(title)
    for col, width in enumerate((8, 48, 12, 8, 16, 12, 10, 18)):
        sheet.set_column(col, col, width)

    sheet.write_string(0, 0, f"{title} {doc.number}".strip(), formats.title)
    row = 2
    references: list[tuple[str, str | date | None]] = [
        ("Number", doc.number),
        ("Issue date", doc.issue_date),
        ("Due date", doc.due_date),
        ("Currency", doc.currency),
        ("Buyer reference", doc.buyer_reference),
        ("Order reference", doc.order_reference),
    ]
    if doc.kind == "credit_note":
        references.append(("Credits invoice", doc.preceding_invoice_number))
    for label, value in references:
        if value is None:
            continue
        sheet.write_string(row, 0, label, formats.label)
        if isinstance(value, date):
            sheet.write_datetime(row, 1, value, formats.date)
        else:
            sheet.write_string(row, 1, value)
        row += 1

    row += 1
    parties: list[tuple[str, Party | None]] = [("Seller", doc.seller), ("Buyer", doc.buyer), ("Ship to", doc.ship_to)]
    for label, party in parties:
        if party is None:
            continue
        sheet.write_string(row, 0, label, formats.label)
        sheet.write_string(row, 1, party.legal_name or party.name, formats.bold)
        row += 1
        for detail_label, detail in (("Address", _one_line(party)), ("VAT ID", party.vat_id)):
            if detail:
                sheet.write_string(row, 0, detail_label, formats.label)
                sheet.write_string(row, 1, detail)
                row += 1

    row += 1
    heads = ("Pos", "Description", "Quantity", "Unit", "Unit price", "VAT category", "VAT %", "Net amount")
    for col, head in enumerate(heads):
        sheet.write_string(row, col, head, formats.head if col in (1, 3, 5) else formats.head_right)
    row += 1
    for line in doc.lines:
        description = line.description
        if line.vat_exemption_reason:
            description += f"\n{line.vat_exemption_reason}"
        sheet.write_number(row, 0, line.position, formats.top)
        sheet.write_string(row, 1, description, formats.wrap)
        sheet.write_number(row, 2, line.quantity, formats.decimal(line.quantity))
        sheet.write_string(row, 3, line.unit_code, formats.top)
        price_places = max(minor_unit(doc.currency), _places(line.unit_price))
        sheet.write_number(row, 4, line.unit_price, formats.number(_amount_format(price_places)))
        sheet.write_string(row, 5, line.vat_category, formats.top)
        sheet.write_number(row, 6, line.vat_rate, formats.decimal(line.vat_rate))
        sheet.write_number(row, 7, line.net_amount, money)
        row += 1

    row += 1
    for col, head in enumerate(("VAT category", "VAT %", "Taxable amount", "VAT amount", "Exemption reason")):
        sheet.write_string(row, col + 1, head, formats.head if col in (0, 4) else formats.head_right)
    row += 1
    for group in doc.vat_breakdown:
        sheet.write_string(row, 1, group.vat_category)
        sheet.write_number(row, 2, group.vat_rate, formats.decimal(group.vat_rate))
        sheet.write_number(row, 3, group.taxable_amount, money)
        sheet.write_number(row, 4, group.tax_amount, money)
        if group.exemption_reason:
            sheet.write_string(row, 5, group.exemption_reason)
        row += 1

    row += 1
    totals: list[tuple[str, Decimal, Any]] = []
    if doc.allowances_charges:
        totals += [
            ("Sum of lines", doc.line_total, money),
            ("Allowances", doc.allowance_total, money),
            ("Charges", doc.charge_total, money),
        ]
    totals += [
        ("Total excl. VAT", doc.net_total, money),
        ("VAT", doc.vat_total, money),
        ("Total incl. VAT", doc.gross_total, money_bold),
        ("Paid", doc.prepaid_amount, money),
        ("Amount due", doc.amount_due, money_bold),
    ]
    for label, amount, fmt in totals:
        sheet.write_string(row, 6, label, formats.bold if fmt is money_bold else formats.label)
        sheet.write_number(row, 7, amount, fmt)
        row += 1

    if doc.iban or doc.payment_terms:
        row += 1
        payment = [
            ("Payment terms", doc.payment_terms),
            ("IBAN", doc.iban),
            ("BIC", doc.bic),
            ("Payment reference", doc.payment_reference),
        ]
        for label, text in payment:
            if text:
                sheet.write_string(row, 0, label, formats.label)
                sheet.write_string(row, 1, text)
                row += 1
    if doc.notes:
        row += 1
        sheet.write_string(row, 0, "Notes", formats.label)
        sheet.write_string(row, 1, doc.notes, formats.wrap)

    workbook.close()
    return buffer.getvalue()


# --------------------------------------------------------------------------------------------- list export

# (key in the row mapping, heading, column width, kind), in column order.
LIST_COLUMNS: tuple[tuple[str, str, int, str], ...] = (
    ("invoice_number", "Number", 18, "text"),
    ("status", "Status", 10, "text"),
    ("client_name", "Client", 32, "text"),
    ("issue_date", "Issue date", 12, "date"),
    ("due_date", "Due date", 12, "date"),
    ("currency", "Currency", 9, "text"),
    ("net_amount", "Net", 15, "money"),
    ("vat_amount", "VAT", 15, "money"),
    ("total_amount", "Total", 15, "money"),
    ("amount_paid", "Paid", 15, "money"),
    ("amount_due", "Outstanding", 15, "money"),
)


def _money_value(value: Any, key: str) -> Decimal:
    # ADR 0003: never a float. Rows come as Decimals (SQL) or the API's decimal strings.
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int | str) and not isinstance(value, bool):
        return Decimal(value)
    raise TypeError(f"{key} must be a Decimal or a decimal string, got {type(value).__name__}")


def _date_value(value: Any) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


def write_invoice_list_xlsx(rows: Iterable[Mapping[str, Any]], target: str | Path) -> int:
    """Write the invoice list to `target`, one row per invoice; returns the number of invoices written.

    Row mappings use the API's field names (`invoice_number`, `status`, `client_name`, `issue_date`,
    `due_date`, `currency`, `net_amount`, `vat_amount`, `total_amount`, `amount_paid`, optional
    `amount_due`, else total - paid). Rows are flushed to disk as they are written, so `rows` may be a
    generator over millions of invoices; more than one sheet holds (MAX_LIST_ROWS) raises ValueError.
    """
    workbook = xlsxwriter.Workbook(str(target), {"constant_memory": True})
    complete = False
    try:
        formats = _Formats(workbook)
        amount_formats: dict[int, Any] = {}
        sheet = workbook.add_worksheet("Invoices")
        for col, (_, head, width, kind) in enumerate(LIST_COLUMNS):
            sheet.set_column(col, col, width)
            sheet.write_string(0, col, head, formats.head_right if kind == "money" else formats.head)
        sheet.freeze_panes(1, 0)

        count = 0
        for count, item in enumerate(rows, start=1):
            if count > MAX_LIST_ROWS:
                raise ValueError(f"an Excel sheet holds at most {MAX_LIST_ROWS:,} invoices; narrow the filter")
            currency = str(item["currency"])
            places = minor_unit(currency)
            amount_format = amount_formats.get(places)
            if amount_format is None:
                amount_format = amount_formats[places] = formats.number(_amount_format(places))
            total = _money_value(item["total_amount"], "total_amount")
            paid = _money_value(item.get("amount_paid") or 0, "amount_paid")
            due = item.get("amount_due")
            amounts = (
                _money_value(item["net_amount"], "net_amount"),
                _money_value(item["vat_amount"], "vat_amount"),
                total,
                paid,
                total - paid if due is None else _money_value(due, "amount_due"),
            )
            for col, key in enumerate(("invoice_number", "status", "client_name")):
                text = item.get(key)
                if text is not None:
                    sheet.write_string(count, col, str(text))
            for col, key in ((3, "issue_date"), (4, "due_date")):
                day = _date_value(item.get(key))
                if day is not None:
                    sheet.write_datetime(count, col, day, formats.date)
            sheet.write_string(count, 5, currency)
            for col, amount in enumerate(amounts, start=6):
                sheet.write_number(count, col, round_money(amount, currency), amount_format)
        sheet.autofilter(0, 0, max(count, 1), len(LIST_COLUMNS) - 1)
        complete = True
    finally:
        workbook.close()
        if not complete:
            # A half-written export is worse than none: nobody should mistake it for the whole list.
            Path(target).unlink(missing_ok=True)
    return count
