#!/usr/bin/env python3
"""The comparison baseline of the documents benchmark: the same invoice drawn with a bare ReportLab canvas.

No platypus, no layout engine: every string, rule and box is placed by hand with `reportlab.pdfgen.canvas`,
the way a short script written for one known invoice would do it. It draws the content of invoiceflow's
one-page invoice in the same arrangement — seller and references, Bill to / Ship to boxes, the item table
with its rules, the VAT breakdown, payment details and notes beside the totals, and the footer — in the same
embedded DejaVu Sans TrueType fonts (subset, compressed pages, invariant output), and formats numbers and
dates with Babel's public functions for the document's language. Long descriptions are wrapped with
ReportLab's own `simpleSplit`. It does not paginate: it is meant for invoices that fit one page.

Usage: .venv/bin/python bench/bare_canvas_invoice.py [OUT.pdf]   (draws the benchmark's 20-line invoice)
"""

from __future__ import annotations

import sys
from decimal import Decimal
from io import BytesIO
from pathlib import Path
from typing import Any

from babel import Locale
from babel.dates import format_date
from babel.numbers import format_currency, format_decimal, format_percent
from reportlab import rl_config
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.lib.utils import simpleSplit
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas

from invoiceflow.documents.model import InvoiceDocument, Party

# The ReportLab settings of invoiceflow's renderer, so the two write the same kind of PDF: Flate-compressed
# streams without the ASCII85 wrapping.
rl_config.useA85 = 0

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
REGULAR, BOLD = "BareDejaVuSans", "BareDejaVuSans-Bold"

INK = colors.HexColor("#1F2328")
MUTED = colors.HexColor("#59636E")
RULE = colors.HexColor("#C9D1D9")
SHADE = colors.HexColor("#EEF1F4")
MARGIN = 18 * mm
PAD = 4

# The English and German words the benchmark's invoices need.
WORDS: dict[str, dict[str, Any]] = {
    "en": {
        "invoice": "Invoice",
        "meta": ("Number", "Issue date", "Due date", "Your reference", "Order"),
        "bill_to": "BILL TO",
        "ship_to": "SHIP TO",
        "amounts_in": "Amounts in {}",
        "heads": ("#", "Description", "Qty", "Unit", "Unit price", "VAT", "Amount"),
        "units": {"C62": "pcs", "HUR": "h", "DAY": "day", "MON": "month"},
        "vat_breakdown": "VAT breakdown",
        "vat_heads": ("VAT category", "VAT", "Taxable amount", "VAT amount"),
        "standard": "Standard rate",
        "totals": ("Total excl. VAT", "VAT", "Total incl. VAT", "Paid", "Amount due"),
        "payment": "Payment",
        "payment_rows": ("IBAN", "BIC", "Payment reference"),
        "notes": "Notes",
        "vat_id": "VAT ID",
        "company_id": "Company ID",
        "email": "Email",
        "phone": "Phone",
        "page": "Page 1 of 1",
    },
    "de": {
        "invoice": "Rechnung",
        "meta": ("Nummer", "Rechnungsdatum", "Fällig am", "Ihre Referenz", "Bestellung"),
        "bill_to": "RECHNUNGSADRESSE",
        "ship_to": "LIEFERADRESSE",
        "amounts_in": "Beträge in {}",
        "heads": ("#", "Beschreibung", "Menge", "Einheit", "Einzelpreis", "USt.", "Betrag"),
        "units": {"C62": "Stk.", "HUR": "h", "DAY": "Tag", "MON": "Monat"},
        "vat_breakdown": "Umsatzsteuer",
        "vat_heads": ("Steuerkategorie", "USt.", "Bemessungsgrundlage", "Steuerbetrag"),
        "standard": "Regelsteuersatz",
        "totals": ("Gesamt netto", "Umsatzsteuer", "Gesamt brutto", "Bezahlt", "Zu zahlen"),
        "payment": "Zahlung",
        "payment_rows": ("IBAN", "BIC", "Verwendungszweck"),
        "notes": "Anmerkungen",
        "vat_id": "USt-IdNr.",
        "company_id": "Registernummer",
        "email": "E-Mail",
        "phone": "Telefon",
        "page": "Seite 1 von 1",
    },
}


def register_fonts(font_dir: Path = FONT_DIR) -> None:
    if REGULAR not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(TTFont(REGULAR, str(font_dir / "DejaVuSans.ttf")))
        pdfmetrics.registerFont(TTFont(BOLD, str(font_dir / "DejaVuSans-Bold.ttf")))


def party_lines(
    party: Party, locale: Locale, words: dict[str, Any], *, details: bool, width: float
) -> list[tuple[str, str]]:
    """(style, text) pairs: "b" bold name, "n" normal lines, "d" small grey details."""
    lines = [("b", party.name)]
    if party.legal_name and party.legal_name != party.name:
        lines.append(("n", party.legal_name))
    lines += [("n", text) for text in (party.line1, party.line2) if text]
    place = " ".join(text for text in (party.postal_code, party.city) if text)
    if place:
        lines.append(("n", place))
    if party.country:
        lines.append(("n", locale.territories.get(party.country, party.country)))
    groups = [[f"{words[k]}: {v}" for k, v in (("vat_id", party.vat_id), ("company_id", party.company_id)) if v]]
    if details:
        groups.append([f"{words[k]}: {v}" for k, v in (("email", party.email), ("phone", party.phone)) if v])
    for group in groups:
        joined = "  ·  ".join(group)
        if group and pdfmetrics.stringWidth(joined, REGULAR, 8) <= width:
            lines.append(("d", joined))
        else:
            lines += [("d", text) for text in group]
    return lines


LEADING = {"b": 11.7, "n": 11.7, "d": 10.4}


def draw_party(canvas: Canvas, lines: list[tuple[str, str]], x: float, top: float) -> float:
    """Draws the lines from `top` down; returns the y below the last line."""
    for style, text in lines:
        canvas.setFont(BOLD if style == "b" else REGULAR, 8 if style == "d" else 9)
        canvas.setFillColor(MUTED if style == "d" else INK)
        canvas.drawString(x, top - (8 if style == "d" else 9), text)
        top -= LEADING[style]
    return top


def draw_invoice(doc: InvoiceDocument) -> bytes:
    """The one-page invoice as PDF bytes."""
    register_fonts()
    words = WORDS["de" if doc.language.startswith("de") else "en"]
    units: dict[str, str] = words["units"]
    locale = Locale.parse(doc.language.replace("-", "_"))
    currency = doc.currency

    def money(value: Decimal) -> str:
        return format_currency(value, currency, locale=locale)

    def decimal(value: Decimal, pattern: str) -> str:
        return format_decimal(value, format=pattern, locale=locale)

    buffer = BytesIO()
    canvas = Canvas(buffer, pagesize=A4, invariant=1, pageCompression=1, initialFontName=REGULAR)
    canvas.setTitle(f"{words['invoice']} {doc.number}")
    canvas.setAuthor(doc.seller.legal_name or doc.seller.name)
    page_width, page_height = A4
    left, right = MARGIN, page_width - MARGIN
    width = right - left
    top = page_height - MARGIN

    # Header: the seller on the left, the title and the references on the right.
    right_width = width * 0.42
    seller_bottom = draw_party(
        canvas, party_lines(doc.seller, locale, words, details=True, width=width - right_width - 6 * mm), left, top
    )
    canvas.setFont(BOLD, 20)
    canvas.setFillColor(INK)
    canvas.drawRightString(right, top - 20, words["invoice"])
    meta = [doc.number, format_date(doc.issue_date, "medium", locale=locale)]
    meta.append(format_date(doc.due_date, "medium", locale=locale) if doc.due_date else "")
    meta += [doc.buyer_reference or "", doc.order_reference or ""]
    y = top - 24 - 2 * mm
    canvas.setFont(REGULAR, 8.5)
    for label, value in zip(words["meta"], meta, strict=True):
        if value:
            canvas.setFillColor(MUTED)
            canvas.drawString(right - right_width, y - 8.5, label)
            canvas.setFillColor(INK)
            canvas.drawRightString(right, y - 8.5, value)
            y -= 12.05
    y = min(y, seller_bottom) - 4 * mm

    # Bill to and Ship to, each in a ruled box as tall as the taller of the two.
    box_width = (width - 6 * mm) / 2
    inner = box_width - 6 * mm
    parties = [(words["bill_to"], doc.buyer), (words["ship_to"], doc.ship_to)]
    blocks = [
        (label, party_lines(party, locale, words, details=False, width=inner))
        for label, party in parties
        if party is not None
    ]
    box_height = 2.5 * mm + max(9.75 + sum(LEADING[s] for s, _ in lines) for _, lines in blocks) + 2 * mm
    canvas.setStrokeColor(RULE)
    canvas.setLineWidth(0.6)
    for index, (label, lines) in enumerate(blocks):
        x = left + index * (box_width + 6 * mm)
        canvas.rect(x, y - box_height, box_width, box_height, stroke=1, fill=0)
        canvas.setFont(REGULAR, 7.5)
        canvas.setFillColor(MUTED)
        canvas.drawString(x + 3 * mm, y - 2.5 * mm - 7.5, label)
        draw_party(canvas, lines, x + 3 * mm, y - 2.5 * mm - 9.75)
    y -= box_height + 5 * mm

    # The item table: shaded heading row, one ruled row per line, numbers right-aligned.
    canvas.setFont(REGULAR, 7.5)
    canvas.setFillColor(MUTED)
    canvas.drawRightString(right, y - 7.5, words["amounts_in"].format(currency))
    y -= 9.75 + 1
    rows = [
        (
            str(line.position),
            line.description,
            format_decimal(line.quantity, locale=locale),
            units.get(line.unit_code, line.unit_code),
            decimal(line.unit_price, "#,##0.00##"),
            format_percent(line.vat_rate / 100, locale=locale),
            decimal(line.net_amount, "#,##0.00"),
        )
        for line in doc.lines
    ]
    widths = [0.0] * 7
    for column in (0, 2, 3, 4, 5, 6):
        widest = max(pdfmetrics.stringWidth(row[column], REGULAR, 8.5) for row in rows)
        widths[column] = max(widest, pdfmetrics.stringWidth(words["heads"][column], BOLD, 8.5)) + 2 * PAD + 1
    widths[1] = width - sum(widths)
    starts = [left + sum(widths[:column]) for column in range(7)]

    def cell(column: int, text: str, baseline: float) -> None:
        if column in (0, 1, 3):
            canvas.drawString(starts[column] + PAD, baseline, text)
        else:
            canvas.drawRightString(starts[column] + widths[column] - PAD, baseline, text)

    canvas.setFillColor(SHADE)
    canvas.rect(left, y - 14.2, width, 14.2, stroke=0, fill=1)
    canvas.setFont(BOLD, 8.5)
    canvas.setFillColor(INK)
    for column, head in enumerate(words["heads"]):
        cell(column, head, y - 2 - 8.5)
    y -= 14.2
    canvas.setStrokeColor(INK)
    canvas.setLineWidth(0.8)
    canvas.line(left, y, right, y)
    canvas.setFont(REGULAR, 8.5)
    canvas.setStrokeColor(RULE)
    canvas.setLineWidth(0.3)
    for row in rows:
        description = simpleSplit(row[1], REGULAR, 8.5, widths[1] - 2 * PAD)
        baseline = y - 2 - 8.5
        for column, text in enumerate(row):
            if column == 1:
                for number, part in enumerate(description):
                    cell(1, part, baseline - number * 10.625)
            else:
                cell(column, text, baseline)
        y -= 4 + 10.625 * len(description)
        canvas.line(left, y, right, y)

    # VAT breakdown, full width.
    y -= 4 * mm
    canvas.setFont(BOLD, 10)
    canvas.drawString(left, y - 10, words["vat_breakdown"])
    y -= 15
    vat_rows = [
        (
            f"{words['standard']} ({group.vat_category})",
            format_percent(group.vat_rate / 100, locale=locale),
            money(group.taxable_amount),
            money(group.tax_amount),
        )
        for group in doc.vat_breakdown
    ]
    money_width = pdfmetrics.stringWidth(words["vat_heads"][2], BOLD, 8.5) + 2 * PAD + 1
    canvas.setFillColor(SHADE)
    canvas.rect(left, y - 15.2, width, 15.2, stroke=0, fill=1)
    canvas.setFillColor(INK)
    for index, texts in enumerate([words["vat_heads"], *vat_rows]):
        canvas.setFont(BOLD if index == 0 else REGULAR, 8.5)
        baseline = y - 2.5 - 8.5
        canvas.drawString(left + PAD, baseline, texts[0])
        canvas.drawRightString(right - 2 * money_width - PAD, baseline, texts[1])
        canvas.drawRightString(right - money_width - PAD, baseline, texts[2])
        canvas.drawRightString(right - PAD, baseline, texts[3])
        y -= 15.2 if index == 0 else 15.6
        canvas.setStrokeColor(INK if index == 0 else RULE)
        canvas.setLineWidth(0.8 if index == 0 else 0.3)
        canvas.line(left, y, right, y)

    # Payment details and notes on the left, the totals on the right.
    y -= 4 * mm
    labels = words["totals"]
    totals = [money(value) for value in (doc.net_total, doc.vat_total, doc.gross_total, doc.prepaid_amount)]
    totals.append(money(doc.amount_due))
    label_width = max(max(pdfmetrics.stringWidth(text, BOLD, 10.5) for text in labels) + 2 * PAD + 2, 40 * mm)
    value_width = max(max(pdfmetrics.stringWidth(text, BOLD, 10.5) for text in totals) + 2 * PAD + 2, 30 * mm)
    totals_left = right - label_width - value_width
    row_y = y
    for index, (label, value) in enumerate(zip(labels, totals, strict=True)):
        size = 10.5 if index == 4 else 9
        row_height = 5 + (13 if index == 4 else 11.7)
        if index in (2, 4):
            canvas.setStrokeColor(INK)
            canvas.setLineWidth(0.8)
            canvas.line(totals_left, row_y, right, row_y)
        if index == 4:
            canvas.setFillColor(SHADE)
            canvas.rect(totals_left, row_y - row_height, right - totals_left, row_height, stroke=0, fill=1)
        canvas.setFillColor(INK)
        canvas.setFont(BOLD if index in (2, 4) else REGULAR, size)
        canvas.drawString(totals_left + PAD, row_y - 2.5 - size, label)
        canvas.drawRightString(right - PAD, row_y - 2.5 - size, value)
        row_y -= row_height

    side_width = totals_left - left - 8 * mm
    canvas.setFont(BOLD, 10)
    canvas.drawString(left, y - 10, words["payment"])
    y -= 15
    canvas.setFont(REGULAR, 9)
    for text in simpleSplit(doc.payment_terms or "", REGULAR, 9, side_width):
        canvas.drawString(left, y - 9, text)
        y -= 11.7
    y -= 1
    iban = doc.iban or ""
    details = (" ".join(iban[i : i + 4] for i in range(0, len(iban), 4)), doc.bic, doc.payment_reference)
    label_width = max(pdfmetrics.stringWidth(label, REGULAR, 9) for label in words["payment_rows"]) + 3 * mm
    for label, value in zip(words["payment_rows"], details, strict=True):
        if value:
            canvas.setFont(REGULAR, 9)
            canvas.drawString(left, y - 9, label)
            canvas.setFont(BOLD, 9)
            canvas.drawString(left + label_width, y - 9, value)
            y -= 11.7
    if doc.notes:
        y -= 3 * mm
        canvas.setFont(BOLD, 10)
        canvas.drawString(left, y - 10, words["notes"])
        y -= 15
        canvas.setFont(REGULAR, 9)
        for text in simpleSplit(doc.notes, REGULAR, 9, side_width):
            canvas.drawString(left, y - 9, text)
            y -= 11.7

    # Footer: a rule, the seller, the page number.
    footer_y = MARGIN - 2 * mm
    canvas.setStrokeColor(RULE)
    canvas.setLineWidth(0.4)
    canvas.line(left, footer_y + 4 * mm, right, footer_y + 4 * mm)
    canvas.setFillColor(MUTED)
    canvas.setFont(REGULAR, 7.5)
    seller = doc.seller.legal_name or doc.seller.name
    if doc.seller.vat_id:
        seller = f"{seller} · {words['vat_id']} {doc.seller.vat_id}"
    canvas.drawString(left, footer_y, seller)
    canvas.drawRightString(right, footer_y, f"{words['invoice']} {doc.number}  ·  {words['page']}")
    canvas.showPage()
    canvas.save()
    return buffer.getvalue()


def main() -> None:
    from documents_bench import document  # bench/, beside this script

    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("bare_canvas_invoice.pdf")
    target.write_bytes(draw_invoice(document(20)))
    print(target)


if __name__ == "__main__":
    main()
