"""The invoice PDF, read back the way a person or an archive would: text extraction with pypdf and with
poppler's pdftotext, word positions from `pdftotext -bbox`, and the font resources of every page."""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from PIL import Image as PILImage
from pypdf import PdfReader

from invoiceflow.documents.pdf import LABELS, FontNotFoundError, render_pdf
from tests.documents.helpers import (
    five_lines,
    line_row,
    make_document,
    many_lines,
    pdftotext,
    pdftotext_pages,
    pypdf_pages,
    words_with_boxes,
)

REQUIRE = os.environ.get("INVOICEFLOW_TEST_REQUIRE_SERVICES", os.environ.get("CI", "false")).lower() == "true"


@pytest.fixture(scope="module", autouse=True)
def _poppler() -> None:
    if shutil.which("pdftotext") is None:
        message = "poppler-utils (pdftotext) is not installed"
        if REQUIRE:
            pytest.fail(message)
        pytest.skip(message)


def flat(text: str) -> str:
    """Extracted text with the no-break spaces Babel puts into amounts read as plain spaces."""
    return text.replace("\u00a0", " ").replace("\u202f", " ")


def both_extractions(pdf: bytes) -> dict[str, str]:
    return {"pypdf": flat("\n".join(pypdf_pages(pdf))), "pdftotext": flat(pdftotext(pdf, "-raw"))}


# Five lines: net 1810.27, VAT 353.16 (21 % on 1660.28, 9 % on 50.00, 0 on 99.99), gross 2163.43,
# 1000.00 paid. The strings are what a reader of that language expects to see.
EXPECTED: dict[str, dict[str, Any]] = {
    "de": {
        "title": "Rechnung",
        "totals": ["1.810,27 €", "353,16 €", "2.163,43 €", "1.000,00 €", "1.163,43 €"],
        "rates": ["21 %", "9 %", "0 %"],
        "dates": ["05.03.2026", "04.04.2026"],
        "country": "Polen",
        "page": "Seite 1 von 1",
    },
    "en": {
        "title": "Invoice",
        "totals": ["€1,810.27", "€353.16", "€2,163.43", "€1,000.00", "€1,163.43"],
        "rates": ["21%", "9%", "0%"],
        "dates": ["Mar 5, 2026", "Apr 4, 2026"],
        "country": "Poland",
        "page": "Page 1 of 1",
    },
    "fr": {
        "title": "Facture",
        "totals": ["1 810,27 €", "353,16 €", "2 163,43 €", "1 000,00 €", "1 163,43 €"],
        "rates": ["21 %", "9 %", "0 %"],
        "dates": ["5 mars 2026", "4 avr. 2026"],
        "country": "Pologne",
        "page": "Page 1 sur 1",
    },
    "pl": {
        "title": "Faktura",
        "totals": ["1 810,27 €", "353,16 €", "2 163,43 €", "1 000,00 €", "1 163,43 €"],
        "rates": ["21%", "9%", "0%"],
        "dates": ["5 mar 2026", "4 kwi 2026"],
        "country": "Polska",
        "page": "Strona 1 z 1",
    },
}


@pytest.mark.parametrize("language", sorted(EXPECTED))
def test_text_shows_number_lines_parties_rates_and_exact_totals(language: str) -> None:
    doc = make_document(language=language, amount_paid="1000.00")
    expected = EXPECTED[language]
    pdf = render_pdf(doc)

    for tool, text in both_extractions(pdf).items():
        wanted = [
            expected["title"],
            "INV-2026-00042",
            "PO-7781",
            "ORD-2026-00007",
            *expected["dates"],
            *(line.description for line in doc.lines),
            "Müller & Söhne GmbH",
            "Hauptstraße 5",
            "90-001 Łódź",
            expected["country"],
            "PL5260250995",
            "5970 Ærøskøbing",
            "Acme Tools BV",
            "NL91 ABNA 0417 1643 00",
            "ABNANL2A",
            *expected["rates"],
            *expected["totals"],
            expected["page"],
            "Exempt under Article 132 of Directive 2006/112/EC",
        ]
        missing = [w for w in wanted if w not in text]
        assert not missing, f"{tool} did not find {missing}"


def test_each_total_sits_next_to_its_label() -> None:
    doc = make_document(language="de", amount_paid="1000.00")
    layout = flat(pdftotext(render_pdf(doc), "-layout"))
    rows = {
        "Gesamt netto": doc.net_total,
        "Umsatzsteuer": doc.vat_total,
        "Gesamt brutto": doc.gross_total,
        "Bezahlt": doc.prepaid_amount,
        "Zu zahlen": doc.amount_due,
    }
    shown = dict(zip(rows, EXPECTED["de"]["totals"], strict=True))
    for label, amount in rows.items():
        # The printed figure is the model's (money core) figure, on the label's own line. The totals sit in a
        # column of their own beside the payment details: the label starts the line or follows a column gap.
        pattern = rf"(?:^|  ) *{label} +{re.escape(shown[label])}$"
        assert re.search(pattern, layout, re.MULTILINE), label
        assert shown[label].replace(".", "").replace(",", ".").removesuffix(" €") == str(amount)


def test_200_lines_run_over_pages_with_the_header_and_page_x_of_y_on_each() -> None:
    doc = make_document(many_lines(200), language="en")
    pdf = render_pdf(doc)
    total = len(PdfReader(BytesIO(pdf)).pages)
    assert total >= 4

    for tool, pages in {"pypdf": pypdf_pages(pdf), "pdftotext": pdftotext_pages(pdf)}.items():
        assert len(pages) == total, tool
        found: list[str] = []
        for number, page in enumerate(pages, start=1):
            assert f"Page {number} of {total}" in page, (tool, number)
            items = [line.description for line in doc.lines if line.description in page]
            if items:
                # repeatRows=1: the column headings sit on every page that carries item rows.
                for heading in ("Description", "Qty", "Unit price", "VAT", "Amount"):
                    assert heading in page, (tool, number, heading)
            found += items
        # No row lost or repeated at a page break.
        assert found == [line.description for line in doc.lines], tool
        assert "€97,522.42" in flat(pages[-1])


def test_twenty_line_invoice_fits_on_one_page() -> None:
    # Full seller and buyer blocks, a delivery address, two VAT rates, payment details and notes: the
    # everyday invoice of 20 lines is one sheet of paper, not one page of lines and a second of totals.
    lines = [line_row(f"Item number {n} widget", "2", "10.00", "21" if n % 3 else "9") for n in range(1, 21)]
    doc = make_document(lines, language="de", amount_paid="10.00")
    pdf = render_pdf(doc)
    assert len(PdfReader(BytesIO(pdf)).pages) == 1
    text = both_extractions(pdf)["pdftotext"]
    for wanted in ("Seite 1 von 1", "Zu zahlen", "Anmerkungen", "Thank you for your business.", "ABNANL2A"):
        assert wanted in text


def test_a_line_longer_than_a_page_runs_on_over_the_next_pages() -> None:
    specification = "\n".join(f"Specification line {n:03d}" for n in range(150))
    doc = make_document(
        [line_row("First", "1", "1.00"), line_row(specification, "1", "2.00"), line_row("Last", "1", "3.00")],
        language="en",
    )
    pdf = render_pdf(doc)
    pages = pypdf_pages(pdf)
    assert len(pages) >= 3
    text = flat("\n".join(pages))
    # Every line of the long description once, in order, and the table headings once on each page.
    found = re.findall(r"Specification line (\d{3})", text)
    assert found == [f"{n:03d}" for n in range(150)]
    assert [page.count("Unit price") for page in pages] == [1] * len(pages)
    assert text.index("First") < text.index("Specification line 000") < text.index("Last")


def test_letter_size_pages() -> None:
    pdf = render_pdf(make_document(), page_size="LETTER")
    box = PdfReader(BytesIO(pdf)).pages[0].mediabox
    assert (round(float(box.width)), round(float(box.height))) == (612, 792)
    a4 = PdfReader(BytesIO(render_pdf(make_document()))).pages[0].mediabox
    assert (round(float(a4.width)), round(float(a4.height))) == (595, 842)


BASE_14 = {
    "Courier",
    "Courier-Bold",
    "Courier-BoldOblique",
    "Courier-Oblique",
    "Helvetica",
    "Helvetica-Bold",
    "Helvetica-BoldOblique",
    "Helvetica-Oblique",
    "Symbol",
    "Times-Roman",
    "Times-Bold",
    "Times-BoldItalic",
    "Times-Italic",
    "ZapfDingbats",
}


def page_fonts(pdf: bytes) -> list[Any]:
    fonts = []
    for page in PdfReader(BytesIO(pdf)).pages:
        resources = page["/Resources"].get_object()
        fonts += [ref.get_object() for ref in resources["/Font"].get_object().values()]
    return fonts


def test_non_ascii_round_trips_in_embedded_truetype_fonts() -> None:
    lines = [line_row("Łódź — Müller — Ærøskøbing — 10 € Rabatt", "1", "10.00")]
    pdf = render_pdf(make_document(lines, language="de"))
    for tool, text in both_extractions(pdf).items():
        for word in ("Łódź — Müller — Ærøskøbing — 10 € Rabatt", "Łódź", "Ærøskøbing", "Müller & Söhne GmbH"):
            assert word in text, (tool, word)
        assert "12,10 €" in text, tool

    fonts = page_fonts(pdf)
    assert fonts
    for font in fonts:
        assert font["/Subtype"] == "/TrueType", font
        base = str(font["/BaseFont"]).lstrip("/").split("+", 1)[-1]
        assert base not in BASE_14
        assert base.startswith("DejaVuSans")
        assert "/FontFile2" in font["/FontDescriptor"].get_object()
        assert "/ToUnicode" in font  # so the text can be copied and searched


def test_long_descriptions_wrap_inside_their_column() -> None:
    words = [f"word{n:03d}" for n in range(51)]
    long_text = " ".join(words)
    assert len(long_text) >= 400
    token = "https://example.com/" + "x" * 150  # one "word" longer than the column
    doc = make_document([line_row(long_text, "1", "10.00"), line_row(token, "1", "5.00")], language="en")
    pdf = render_pdf(doc)

    text = both_extractions(pdf)["pypdf"]
    assert all(word in text for word in words)
    page_width = float(PdfReader(BytesIO(pdf)).pages[0].mediabox.width)
    boxes = words_with_boxes(pdf)[0]
    quantity_header = next(box for box in boxes if box[4] == "Qty")
    description_boxes = [box for box in boxes if box[4] in words]
    assert {box[4] for box in description_boxes} == set(words)
    # Wrapped: the words sit on several lines, all left of the quantity column.
    assert len({round(box[1]) for box in description_boxes}) >= 3
    assert max(box[2] for box in description_boxes) < quantity_header[0]
    # The overlong token is broken too, and nothing on the page runs past the right margin.
    token_pieces = [box for box in boxes if "xxxxxxxx" in box[4]]
    assert len({round(box[1]) for box in token_pieces}) >= 2
    assert max(box[2] for box in token_pieces) < quantity_header[0]
    assert max(box[2] for box in boxes) <= page_width - 40


def test_same_document_same_bytes() -> None:
    doc = make_document()
    assert render_pdf(doc) == render_pdf(doc)


def test_credit_note_names_the_invoice_it_credits() -> None:
    doc = make_document(language="en", kind="credit_note", preceding_invoice_number="INV-2026-00001")
    text = both_extractions(render_pdf(doc))["pypdf"]
    assert "Credit note" in text
    assert "Credits invoice" in text
    assert "INV-2026-00001" in text


def test_currencies_with_zero_and_three_decimals() -> None:
    jpy = make_document([line_row("Sushi set", "3", "1234", "10")], language="en", currency="JPY")
    text = both_extractions(render_pdf(jpy))["pypdf"]
    assert "¥3,702" in text
    assert "¥4,072" in text
    assert "3,702.00" not in text

    bhd = make_document([line_row("Oil", "3", "1.2345", "10")], language="en", currency="BHD")
    text = both_extractions(render_pdf(bhd))["pypdf"]
    assert "1.2345" in text  # unit price keeps its own decimals
    assert "BHD4.074" in text


def test_logo_is_drawn_and_a_bad_logo_is_refused() -> None:
    buffer = BytesIO()
    PILImage.new("RGB", (240, 80), (20, 90, 160)).save(buffer, format="PNG")
    doc = make_document()
    with_logo = dataclasses.replace(doc, logo=buffer.getvalue())
    pdf = render_pdf(with_logo)
    images = [img for page in PdfReader(BytesIO(pdf)).pages for img in page.images]
    assert len(images) == 1

    broken = dataclasses.replace(doc, logo=b"not an image")
    with pytest.raises(ValueError, match="logo"):
        render_pdf(broken)


def test_missing_fonts_are_an_error_naming_the_paths(tmp_path: Path) -> None:
    with pytest.raises(FontNotFoundError) as caught:
        render_pdf(make_document(), fonts_dir=tmp_path)
    assert str(tmp_path / "DejaVuSans.ttf") in str(caught.value)
    assert str(tmp_path / "DejaVuSans-Bold.ttf") in str(caught.value)


def test_fonts_dir_override(tmp_path: Path) -> None:
    system = Path("/usr/share/fonts/truetype/dejavu")
    for name in ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf"):
        if not (system / name).is_file():
            pytest.skip("fonts-dejavu-core is not installed")
        shutil.copy(system / name, tmp_path / name)
    pdf = render_pdf(make_document(five_lines()), fonts_dir=tmp_path)
    assert "Łódź" in both_extractions(pdf)["pdftotext"]


def test_every_language_has_every_label() -> None:
    english = set(LABELS["en"])
    assert {"en", "de", "fr", "nl", "pl", "es", "it"} <= set(LABELS)
    for language, labels in LABELS.items():
        assert set(labels) == english, language
        assert "{page}" in labels["page"]
        assert "{total}" in labels["page"]


def test_unknown_language_falls_back_to_english() -> None:
    text = both_extractions(render_pdf(make_document(language="xx")))["pypdf"]
    assert "Invoice" in text
    assert "Page 1 of 1" in text


def test_regional_language_tag_uses_its_language() -> None:
    text = both_extractions(render_pdf(make_document(language="de-AT")))["pypdf"]
    assert "Rechnung" in text
    assert "Seite 1 von 1" in text
