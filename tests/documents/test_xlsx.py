"""Excel renderings read back with openpyxl: numbers are numbers equal to the totals, dates are dates, and
the list export streams (its memory does not grow with the row count)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from io import BytesIO
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from invoiceflow.documents.xlsx import LIST_COLUMNS, render_invoice_xlsx, write_invoice_list_xlsx
from tests.documents.helpers import line_row, make_document

ROOT = Path(__file__).resolve().parents[2]


def labelled(sheet: Any, label_col: int, value_col: int) -> dict[str, Any]:
    """Cells keyed by the label to their left (the totals block, the header block)."""
    found = {}
    for row in sheet.iter_rows():
        label = row[label_col - 1].value
        if isinstance(label, str) and len(row) >= value_col:
            found[label] = row[value_col - 1]
    return found


def as_decimal(value: Any) -> Decimal:
    assert isinstance(value, int | float), value
    assert not isinstance(value, bool), value
    return Decimal(str(value))


def test_invoice_workbook_has_numeric_totals_equal_to_the_document() -> None:
    doc = make_document(amount_paid="1000.00")
    book = openpyxl.load_workbook(BytesIO(render_invoice_xlsx(doc)))
    sheet = book["Invoice"]

    totals = labelled(sheet, 7, 8)
    expected = {
        "Total excl. VAT": doc.net_total,
        "VAT": doc.vat_total,
        "Total incl. VAT": doc.gross_total,
        "Paid": doc.prepaid_amount,
        "Amount due": doc.amount_due,
    }
    for label, amount in expected.items():
        cell = totals[label]
        assert as_decimal(cell.value) == amount, label
        assert cell.number_format == '#,##0.00 "EUR"', label
    assert as_decimal(totals["Amount due"].value) == Decimal("1163.43")

    header = labelled(sheet, 1, 2)
    assert header["Number"].value == "INV-2026-00042"
    assert header["Issue date"].value == datetime(2026, 3, 5)
    assert header["Issue date"].is_date
    assert header["Due date"].value == datetime(2026, 4, 4)
    assert header["Currency"].value == "EUR"
    assert header["Buyer"].value == "Müller & Söhne GmbH"
    column_b = [cell.value for cell in sheet["B"]]
    assert "Hauptstraße 5, 90-001 Łódź, PL" in column_b
    assert "Havnegade 12, 5970 Ærøskøbing, DK" in column_b


def test_invoice_workbook_lines_and_breakdown_are_numbers() -> None:
    doc = make_document()
    sheet = openpyxl.load_workbook(BytesIO(render_invoice_xlsx(doc)))["Invoice"]
    rows = list(sheet.iter_rows(values_only=False))
    head = next(i for i, row in enumerate(rows) if row[0].value == "Pos")
    lines = rows[head + 1 : head + 1 + len(doc.lines)]
    for line, row in zip(doc.lines, lines, strict=True):
        assert row[1].value.startswith(line.description)
        assert as_decimal(row[2].value) == line.quantity
        assert as_decimal(row[4].value) == line.unit_price
        assert as_decimal(row[6].value) == line.vat_rate
        assert as_decimal(row[7].value) == line.net_amount
        assert row[7].number_format == '#,##0.00 "EUR"'
    assert lines[2][4].number_format == "#,##0.000"  # the 0.125 unit price keeps its third decimal

    breakdown_head = next(i for i, row in enumerate(rows) if row[3].value == "Taxable amount")
    groups = rows[breakdown_head + 1 : breakdown_head + 1 + len(doc.vat_breakdown)]
    for group, row in zip(doc.vat_breakdown, groups, strict=True):
        assert row[1].value == group.vat_category
        assert as_decimal(row[2].value) == group.vat_rate
        assert as_decimal(row[3].value) == group.taxable_amount
        assert as_decimal(row[4].value) == group.tax_amount


def test_zero_decimal_currency_format() -> None:
    doc = make_document([line_row("Sushi set", "3", "1234", "10")], language="en", currency="JPY")
    sheet = openpyxl.load_workbook(BytesIO(render_invoice_xlsx(doc)))["Invoice"]
    cell = labelled(sheet, 7, 8)["Total incl. VAT"]
    assert as_decimal(cell.value) == Decimal("4072")
    assert cell.number_format == '#,##0 "JPY"'


def test_invoice_workbook_is_deterministic() -> None:
    doc = make_document()
    assert render_invoice_xlsx(doc) == render_invoice_xlsx(doc)


# --------------------------------------------------------------------------------------------- list export


def list_rows(count: int) -> Iterator[dict[str, Any]]:
    """`count` rows as the list query yields them, generated lazily so the input costs no memory."""
    for n in range(count):
        currency = "JPY" if n % 10 == 9 else "EUR"
        net = Decimal(n % 5000) + (Decimal(0) if currency == "JPY" else Decimal("0.45"))
        vat = (net * Decimal("0.21")).quantize(Decimal(1) if currency == "JPY" else Decimal("0.01"))
        yield {
            "invoice_number": f"INV-2026-{n:06d}",
            "status": ("draft", "sent", "paid", "overdue")[n % 4],
            "client_name": f"Client {n % 200} Łódź",
            "issue_date": date(2026, 1, 1 + n % 28),
            "due_date": date(2026, 2, 1 + n % 28),
            "currency": currency,
            "net_amount": net,
            "vat_amount": vat,
            "total_amount": net + vat,
            "amount_paid": net if n % 4 == 2 else Decimal(0),
        }


_CHILD = textwrap.dedent(
    """
    import json, resource, sys
    from tests.documents.test_xlsx import list_rows
    from invoiceflow.documents.xlsx import write_invoice_list_xlsx

    count, target = int(sys.argv[1]), sys.argv[2]
    write_invoice_list_xlsx(list_rows(10), target)  # imports and first-use caches out of the measurement
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    written = write_invoice_list_xlsx(list_rows(count), target)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"written": written, "growth_kib": after - before}))
    """
)


def peak_rss_growth(count: int, target: Path) -> tuple[int, int]:
    """Rows written and peak RSS growth (KiB) of a fresh process writing `count` rows."""
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(count), str(target)],
        cwd=ROOT,
        capture_output=True,
        check=True,
        text=True,
        timeout=120,
    )
    result = json.loads(done.stdout)
    return result["written"], result["growth_kib"]


def test_list_export_streams_20k_rows_in_flat_memory(tmp_path: Path) -> None:
    # 20,000 rows keep the suite quick; bench/documents_bench.py measures 100,000.
    written, small_growth = peak_rss_growth(2_000, tmp_path / "small.xlsx")
    assert written == 2_000
    large = tmp_path / "large.xlsx"
    written, growth = peak_rss_growth(20_000, large)
    assert written == 20_000
    # Without constant_memory the 18,000 extra rows cost ~37 MiB; streamed, they cost nothing measurable.
    assert growth - small_growth < 4 * 1024, (growth, small_growth)

    book = openpyxl.load_workbook(large, read_only=True)
    sheet = book["Invoices"]
    assert sheet.max_row == 20_001  # header + rows, from the sheet's dimension record
    first, second = sheet.iter_rows(max_row=2, values_only=True)
    assert first == tuple(head for _, head, _, _ in LIST_COLUMNS)
    assert second[0] == "INV-2026-000000"
    book.close()


def test_list_export_cells(tmp_path: Path) -> None:
    target = tmp_path / "list.xlsx"
    source = list(list_rows(12))
    # The API's decimal strings are accepted as well as Decimals.
    source[3] = {**source[3], "net_amount": str(source[3]["net_amount"]), "issue_date": "2026-01-04"}
    assert write_invoice_list_xlsx(source, target) == 12

    book = openpyxl.load_workbook(target)
    sheet = book["Invoices"]
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == "A1:K13"
    assert sheet.column_dimensions["C"].width > 20
    for row, item in zip(sheet.iter_rows(min_row=2), source, strict=True):
        number, status, client, issue, due, currency, net, vat, total, paid, outstanding = row
        assert (number.value, status.value, client.value, currency.value) == (
            item["invoice_number"],
            item["status"],
            item["client_name"],
            item["currency"],
        )
        assert issue.is_date
        assert due.is_date
        assert issue.value.date() == date.fromisoformat(str(item["issue_date"]))
        assert due.value.date() == item["due_date"]
        assert as_decimal(net.value) == Decimal(item["net_amount"])
        assert as_decimal(vat.value) == item["vat_amount"]
        assert as_decimal(total.value) == item["total_amount"]
        assert as_decimal(paid.value) == item["amount_paid"]
        assert as_decimal(outstanding.value) == item["total_amount"] - item["amount_paid"]
        expected_format = "#,##0" if item["currency"] == "JPY" else "#,##0.00"
        assert {c.number_format for c in (net, vat, total, paid, outstanding)} == {expected_format}


def test_list_export_refuses_floats_and_leaves_no_partial_file(tmp_path: Path) -> None:
    target = tmp_path / "list.xlsx"
    rows = list(list_rows(3))
    rows[2] = {**rows[2], "total_amount": 12.5}
    with pytest.raises(TypeError, match="total_amount"):
        write_invoice_list_xlsx(rows, target)
    assert not target.exists()


def test_empty_list_export(tmp_path: Path) -> None:
    target = tmp_path / "empty.xlsx"
    assert write_invoice_list_xlsx([], target) == 0
    sheet = openpyxl.load_workbook(target)["Invoices"]
    assert [c.value for c in sheet[1]] == [head for _, head, _, _ in LIST_COLUMNS]


def test_list_export_text_round_trips_characters_xml_cannot_hold(tmp_path: Path) -> None:
    # The list writer writes its own XML: markup characters, control characters, text that looks like an
    # Excel escape (_x0041_) and edge spaces must all read back exactly as they were written.
    names = [
        "Smith & Sons <Ltd> \"quoted\" 'single'",
        "Tab\there, bell\x07, form feed\x0c",
        "Literal _x0041_ is not an A",
        "  padded name  ",
        "Line one\nline two",
        "Łódź · Ærøskøbing · Müller · 10 €",
    ]
    source = [{**row, "client_name": name} for row, name in zip(list_rows(len(names)), names, strict=True)]
    target = tmp_path / "list.xlsx"
    assert write_invoice_list_xlsx(source, target) == len(names)
    sheet = openpyxl.load_workbook(target)["Invoices"]
    # openpyxl hands back ECMA-376 escapes (_x0007_) as they are written; Excel decodes them, like this.
    excel = [
        re.sub(r"_x([0-9A-F]{4})_", lambda m: chr(int(m.group(1), 16)), row[2].value)
        for row in sheet.iter_rows(min_row=2)
    ]
    assert excel == names


def test_list_export_currencies_get_their_own_decimals(tmp_path: Path) -> None:
    rows = [
        {
            **row,
            "currency": currency,
            "net_amount": Decimal(net),
            "vat_amount": Decimal(0),
            "total_amount": Decimal(net),
        }
        for row, (currency, net) in zip(
            list_rows(3), (("EUR", "10.5"), ("JPY", "1234"), ("BHD", "1.2345")), strict=True
        )
    ]
    target = tmp_path / "list.xlsx"
    write_invoice_list_xlsx(rows, target)
    sheet = openpyxl.load_workbook(target)["Invoices"]
    formats = {row[5].value: (row[6].number_format, row[6].value) for row in sheet.iter_rows(min_row=2)}
    # Amounts are rounded half-up to the currency's minor unit, as the API shows them.
    assert formats == {"EUR": ("#,##0.00", 10.5), "JPY": ("#,##0", 1234), "BHD": ("#,##0.000", 1.235)}
