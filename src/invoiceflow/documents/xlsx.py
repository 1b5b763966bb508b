"""Excel renderings: one invoice as a workbook, and the invoice list export.

Amounts are written as numbers with a number format, dates as dates, so the sheet can be summed and
filtered; the values are the document model's (already rounded by the money core), never recomputed by
formulas that could round differently. The one-invoice workbook is drawn with XlsxWriter; the list export
writes its own SpreadsheetML (see `write_invoice_rows`), streaming rows to disk so that its memory does
not grow with the number of invoices.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from io import BytesIO
from pathlib import Path
from typing import IO, Any

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
    ]
    if doc.rounding_amount:
        # EN 16931 BT-114: the amount due below includes it (BR-CO-16).
        totals.append(("Rounding", doc.rounding_amount, money))
    totals.append(("Amount due", doc.amount_due, money_bold))
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

# One invoice of the list in column order: number, status, client name, issue date, due date, currency,
# net, VAT, total, paid, and outstanding (None: total - paid).
ListRow = tuple[
    str | None,
    str | None,
    str | None,
    date | None,
    date | None,
    str,
    Decimal,
    Decimal,
    Decimal,
    Decimal,
    Decimal | None,
]


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


def _text_value(value: Any) -> str | None:
    return None if value is None else str(value)


def list_row(item: Mapping[str, Any]) -> ListRow:
    """A row mapping with the API's field names (`invoice_number`, `status`, `client_name`, `issue_date`,
    `due_date`, `currency`, `net_amount`, `vat_amount`, `total_amount`, `amount_paid`, optional
    `amount_due`) as a ListRow; amounts may be Decimals or decimal strings, dates dates or ISO strings."""
    due = item.get("amount_due")
    return (
        _text_value(item.get("invoice_number")),
        _text_value(item.get("status")),
        _text_value(item.get("client_name")),
        _date_value(item.get("issue_date")),
        _date_value(item.get("due_date")),
        str(item["currency"]),
        _money_value(item["net_amount"], "net_amount"),
        _money_value(item["vat_amount"], "vat_amount"),
        _money_value(item["total_amount"], "total_amount"),
        _money_value(item.get("amount_paid") or 0, "amount_paid"),
        None if due is None else _money_value(due, "amount_due"),
    )


def write_invoice_list_xlsx(rows: Iterable[Mapping[str, Any]], target: str | Path) -> int:
    """Write the invoice list to `target`, one row per invoice; returns the number of invoices written.

    Row mappings are read by `list_row`. Rows are streamed to disk as they come, so `rows` may be a
    generator over a million invoices; more than one sheet holds (MAX_LIST_ROWS) raises ValueError, a
    float amount TypeError, and either leaves no file behind.
    """
    return write_invoice_rows((list_row(item) for item in rows), target)


def write_invoice_rows(rows: Iterable[ListRow], target: str | Path) -> int:
    """`write_invoice_list_xlsx` for rows already in column order (the export service's path)."""
    path = Path(target)
    try:
        with tempfile.TemporaryFile(dir=path.parent) as cells:
            sheet = _ListSheet(cells)
            count = sheet.write(rows)
            with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=_ZIP_LEVEL) as package:
                for name, text in _list_package(count, sheet.amount_formats()).items():
                    package.writestr(name, text)
                with package.open("xl/worksheets/sheet1.xml", "w") as part:
                    part.write(_sheet_head(count).encode())
                    cells.seek(0)
                    shutil.copyfileobj(cells, part, 1 << 20)
                    part.write(_sheet_tail(count).encode())
    except BaseException:
        # A half-written export is worse than none: nobody should mistake it for the whole list.
        path.unlink(missing_ok=True)
        raise
    return count


# The list export writes its own SpreadsheetML rather than going through XlsxWriter: XlsxWriter spends
# about 6 µs of Python per cell (argument conversion, bounds checks, one XML call per cell), 70 µs per
# invoice, which made the writer alone take 7 s for 100,000 invoices. A sheet of plain values in a few
# fixed styles is simple XML: one formatted string per row, about a tenth of the cost.
_ZIP_LEVEL = 1  # the sheet is repetitive XML: level 1 compresses it to ~12 % at several times level 6's speed
_EXCEL_EPOCH = date(1899, 12, 30).toordinal()  # day 0 of Excel's 1900 date system, for dates after 1900-02-28
_STYLE_DATE = 3  # cellXfs indexes in _list_styles
_STYLE_AMOUNT = 4  # the first amount format; one per number of decimals in use follows
_NEEDS_ESCAPE = re.compile(r"[&<>\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]|_x[0-9A-Fa-f]{4}_|^\s|\s$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_ESCAPE_LIKE = re.compile(r"_(x[0-9A-Fa-f]{4}_)")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def _column(index: int) -> str:
    return "ABCDEFGHIJK"[index]


def _text_cell(ref: str, value: str) -> str:
    if _NEEDS_ESCAPE.search(value) is None:
        return f'<c r="{ref}" t="inlineStr"><is><t>{value}</t></is></c>'
    # ECMA-376 ST_Xstring: characters XML 1.0 cannot hold are written _xHHHH_, and text that already
    # looks like such an escape gets its underscore escaped (_x005F_), so it reads back unchanged.
    text = _ESCAPE_LIKE.sub(r"_x005F_\1", value)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _CONTROL.sub(lambda m: f"_x{ord(m.group()):04X}_", text)
    text = _SURROGATE.sub("\ufffd", text)
    return f'<c r="{ref}" t="inlineStr"><is><t xml:space="preserve">{text}</t></is></c>'


class _ListSheet:
    """Writes the rows of the list's sheet (`<row>` elements) to a file, a batch of rows at a time."""

    def __init__(self, out: IO[bytes]) -> None:
        self.out = out
        self._currencies: dict[str, int] = {}  # currency -> style index
        self._styles: dict[int, int] = {}  # decimals -> style index
        self._days: dict[date, int] = {}

    def amount_formats(self) -> list[int]:
        """The decimals of each amount style in use, in style order."""
        return sorted(self._styles, key=self._styles.__getitem__)

    def _amount_style(self, currency: str) -> int:
        style = self._currencies.get(currency)
        if style is None:
            places = minor_unit(currency)
            style = self._currencies[currency] = self._styles.setdefault(places, _STYLE_AMOUNT + len(self._styles))
        return style

    def _day(self, day: date) -> int:
        serial = self._days.get(day)
        if serial is None:
            serial = self._days[day] = day.toordinal() - _EXCEL_EPOCH
        return serial

    def write(self, rows: Iterable[ListRow]) -> int:
        head = "".join(
            _text_cell(f"{_column(col)}1", heading).replace("<c ", f'<c s="{2 if kind == "money" else 1}" ', 1)
            for col, (_, heading, _, kind) in enumerate(LIST_COLUMNS)
        )
        batch = [f'<row r="1">{head}</row>']
        count = 0
        for count, row in enumerate(rows, start=1):
            if count > MAX_LIST_ROWS:
                raise ValueError(f"an Excel sheet holds at most {MAX_LIST_ROWS:,} invoices; narrow the filter")
            batch.append(self._row(count + 1, row))
            if len(batch) >= 1000:
                self.out.write("".join(batch).encode())
                batch = []
        self.out.write("".join(batch).encode())
        return count

    def _row(self, r: int, row: ListRow) -> str:
        number, status, client, issued, due_day, currency, net, vat, total, paid, due = row
        style = self._amount_style(currency)
        cells = [f'<row r="{r}">']
        for col, text in ((0, number), (1, status), (2, client)):
            if text is not None:
                cells.append(_text_cell(f"{_column(col)}{r}", text))
        for col, day in ((3, issued), (4, due_day)):
            if day is not None:
                cells.append(f'<c r="{_column(col)}{r}" s="{_STYLE_DATE}"><v>{self._day(day)}</v></c>')
        cells.append(_text_cell(f"F{r}", currency))
        amounts = (net, vat, total, paid, total - paid if due is None else due)
        for col, amount in enumerate(amounts, start=6):
            # Rounded by the money core as the API shows it; written as a number with the currency's decimals.
            value = round_money(amount, currency)
            cells.append(f'<c r="{_column(col)}{r}" s="{style}"><v>{value:f}</v></c>')
        cells.append("</row>")
        return "".join(cells)


_MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
_XML_HEAD = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'


def _excel_width(characters: int) -> float:
    # ECMA-376 18.3.1.13: stored width = truncate((characters * digit width + 5 px padding) / digit width * 256)
    # / 256, with Calibri 11's 7-pixel digit.
    return int((characters * 7 + 5) / 7 * 256) / 256


def _list_styles(amount_places: Sequence[int]) -> str:
    formats = ["yyyy-mm-dd", *(_amount_format(places) for places in amount_places)]
    num_fmts = "".join(f'<numFmt numFmtId="{164 + i}" formatCode="{code}"/>' for i, code in enumerate(formats))
    head = 'fontId="1" fillId="2" borderId="1" xfId="0" applyFont="1" applyFill="1" applyBorder="1"'
    xfs = [
        '<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>',
        f'<xf numFmtId="0" {head}/>',
        f'<xf numFmtId="0" {head} applyAlignment="1"><alignment horizontal="right"/></xf>',
        '<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1" applyAlignment="1">'
        '<alignment horizontal="left"/></xf>',
        *(
            f'<xf numFmtId="{165 + i}" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
            for i in range(len(amount_places))
        ),
    ]
    font = '<sz val="11"/><color rgb="FF000000"/><name val="Calibri"/><family val="2"/>'
    return (
        f'{_XML_HEAD}<styleSheet xmlns="{_MAIN_NS}">'
        f'<numFmts count="{len(formats)}">{num_fmts}</numFmts>'
        f'<fonts count="2"><font>{font}</font><font><b/>{font}</font></fonts>'
        '<fills count="3"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/>'
        '</fill><fill><patternFill patternType="solid"><fgColor rgb="FFEEF1F4"/><bgColor indexed="64"/>'
        "</patternFill></fill></fills>"
        '<borders count="2"><border><left/><right/><top/><bottom/><diagonal/></border><border><left/><right/><top/>'
        '<bottom style="thin"><color auto="1"/></bottom><diagonal/></border></borders>'
        '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
        f'<cellXfs count="{len(xfs)}">{"".join(xfs)}</cellXfs>'
        '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
        "</styleSheet>"
    )


def _last_cell(count: int) -> str:
    return f"{_column(len(LIST_COLUMNS) - 1)}{count + 1}"


def _sheet_head(count: int) -> str:
    cols = "".join(
        f'<col min="{i}" max="{i}" width="{_excel_width(width)}" customWidth="1"/>'
        for i, (_, _, width, _) in enumerate(LIST_COLUMNS, start=1)
    )
    return (
        f'{_XML_HEAD}<worksheet xmlns="{_MAIN_NS}" xmlns:r="{_REL_NS}">'
        f'<dimension ref="A1:{_last_cell(count)}"/>'
        '<sheetViews><sheetView tabSelected="1" workbookViewId="0">'
        '<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>'
        '<selection pane="bottomLeft"/></sheetView></sheetViews>'
        f'<sheetFormatPr defaultRowHeight="15"/><cols>{cols}</cols><sheetData>'
    )


def _sheet_tail(count: int) -> str:
    return (
        f'</sheetData><autoFilter ref="A1:{_last_cell(max(count, 1))}"/>'
        '<pageMargins left="0.7" right="0.7" top="0.75" bottom="0.75" header="0.3" footer="0.3"/></worksheet>'
    )


def _list_package(count: int, amount_places: Sequence[int]) -> dict[str, str]:
    """Every part of the workbook but the sheet itself."""
    sheet_type = "application/vnd.openxmlformats-officedocument.spreadsheetml"
    return {
        "[Content_Types].xml": (
            f'{_XML_HEAD}<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            f'<Override PartName="/xl/workbook.xml" ContentType="{sheet_type}.sheet.main+xml"/>'
            f'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{sheet_type}.worksheet+xml"/>'
            f'<Override PartName="/xl/styles.xml" ContentType="{sheet_type}.styles+xml"/>'
            "</Types>"
        ),
        "_rels/.rels": (
            f'{_XML_HEAD}<Relationships xmlns="{_PKG_REL_NS}"><Relationship Id="rId1" '
            f'Type="{_REL_NS}/officeDocument" Target="xl/workbook.xml"/></Relationships>'
        ),
        "xl/workbook.xml": (
            f'{_XML_HEAD}<workbook xmlns="{_MAIN_NS}" xmlns:r="{_REL_NS}">'
            "<bookViews><workbookView/></bookViews>"
            '<sheets><sheet name="Invoices" sheetId="1" r:id="rId1"/></sheets>'
            '<definedNames><definedName name="_xlnm._FilterDatabase" localSheetId="0" hidden="1">'
            f"Invoices!$A$1:${_column(len(LIST_COLUMNS) - 1)}${max(count, 1) + 1}</definedName></definedNames>"
            "</workbook>"
        ),
        "xl/_rels/workbook.xml.rels": (
            f'{_XML_HEAD}<Relationships xmlns="{_PKG_REL_NS}">'
            f'<Relationship Id="rId1" Type="{_REL_NS}/worksheet" Target="worksheets/sheet1.xml"/>'
            f'<Relationship Id="rId2" Type="{_REL_NS}/styles" Target="styles.xml"/></Relationships>'
        ),
        "xl/styles.xml": _list_styles(amount_places),
    }
