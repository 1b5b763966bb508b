"""Rows shaped like the ORM models (SimpleNamespace), and the documents built from them: no database.

The invoice totals are computed with the money core, as `invoices.service.create_invoice` stores them.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from io import BytesIO
from types import SimpleNamespace
from typing import Any

from pypdf import PdfReader

from invoiceflow.core.tax import LineInput, compute_totals
from invoiceflow.documents.model import InvoiceDocument, build_document

ISSUE = date(2026, 3, 5)
DUE = date(2026, 4, 4)


def line_row(
    description: str,
    quantity: str,
    unit_price: str,
    vat_rate: str = "21",
    *,
    vat_category: str | None = None,
    unit_code: str = "C62",
    vat_exemption_reason: str | None = None,
) -> SimpleNamespace:
    return SimpleNamespace(
        id=uuid.uuid4(),
        description=description,
        quantity=Decimal(quantity),
        unit_code=unit_code,
        unit_price=Decimal(unit_price),
        vat_category=vat_category or ("S" if Decimal(vat_rate) > 0 else "Z"),
        vat_rate=Decimal(vat_rate),
        vat_exemption_reason=vat_exemption_reason,
    )


def invoice_rows(
    lines: list[SimpleNamespace],
    *,
    currency: str = "EUR",
    number: str = "INV-2026-00042",
    amount_paid: str = "0",
    status: str = "sent",
    **extra: Any,
) -> tuple[SimpleNamespace, list[SimpleNamespace]]:
    """An invoice row and its line rows with positions and stored totals, as the service writes them."""
    totals = compute_totals(
        [LineInput(ln.quantity, ln.unit_price, ln.vat_category, ln.vat_rate) for ln in lines], currency
    )
    for position, (ln, net) in enumerate(zip(lines, totals.line_totals, strict=True), start=1):
        ln.position = position
        ln.line_total = net
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "invoice_number": number,
        "status": status,
        "issue_date": ISSUE,
        "due_date": DUE,
        "currency": currency,
        "notes": "Thank you for your business.",
        "buyer_reference": "PO-7781",
        "external_id": None,
        "net_amount": totals.net_amount,
        "vat_amount": totals.vat_amount,
        "total_amount": totals.total_amount,
        "amount_paid": Decimal(amount_paid),
        "created_at": datetime(2026, 3, 5, 9, 30, tzinfo=UTC),
        "updated_at": datetime(2026, 3, 5, 9, 30, tzinfo=UTC),
    }
    invoice = SimpleNamespace(**(values | extra))
    return invoice, lines


def client_row(**overrides: Any) -> SimpleNamespace:
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "name": "Müller & Söhne GmbH",
        "email": "einkauf@mueller.example",
        "phone": "+49 30 1234567",
        "address": {
            "line1": "Hauptstraße 5",
            "line2": None,
            "city": "Łódź",
            "postal_code": "90-001",
            "region": None,
            "country": "PL",
        },
        "shipping_address": {
            "line1": "Havnegade 12",
            "city": "Ærøskøbing",
            "postal_code": "5970",
            "country": "DK",
        },
        "country": "PL",
        "vat_id": "PL5260250995",
        "company_id": "0000012345",
        "electronic_address_scheme": "9945",
        "electronic_address": "PL5260250995",
        "currency": None,
        "language": "de",
        "notes": None,
    }
    values.update(overrides)
    return SimpleNamespace(**values)


def org_row(**overrides: Any) -> SimpleNamespace:
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "name": "Acme Tools",
        "legal_name": "Acme Tools BV",
        "address_line1": "Keizersgracht 1",
        "address_line2": None,
        "city": "Amsterdam",
        "postal_code": "1015 CJ",
        "region": None,
        "country": "NL",
        "vat_id": "NL123456789B01",
        "company_id": "12345678",
        "email": "billing@acme.example",
        "phone": "+31 20 555 0100",
        "website": "https://acme.example",
        "iban": "NL91ABNA0417164300",
        "bic": "ABNANL2A",
        "electronic_address_scheme": "0106",
        "electronic_address": "12345678",
        "default_currency": "EUR",
        "payment_terms_days": 30,
        "payment_terms_text": "Payable within 30 days without deduction.",
    }
    values.update(overrides)
    return SimpleNamespace(**values)


def five_lines() -> list[SimpleNamespace]:
    return [
        line_row("Consulting, architecture review", "8", "120.00", unit_code="HUR"),
        line_row("Łódź office chair, ergonomic", "2", "349.95"),
        line_row("Printed manuals", "3", "0.125"),
        line_row("Reduced-rate books", "4", "12.50", "9"),
        line_row(
            "Export service",
            "1",
            "99.99",
            "0",
            vat_category="E",
            vat_exemption_reason="Exempt under Article 132 of Directive 2006/112/EC",
        ),
    ]


def make_document(
    lines: list[SimpleNamespace] | None = None,
    *,
    language: str = "de",
    currency: str = "EUR",
    amount_paid: str = "0",
    client: SimpleNamespace | None = None,
    org: SimpleNamespace | None = None,
    **invoice_extra: Any,
) -> InvoiceDocument:
    invoice, rows = invoice_rows(
        lines if lines is not None else five_lines(), currency=currency, amount_paid=amount_paid, **invoice_extra
    )
    return build_document(
        invoice,
        rows,
        client or client_row(language=language),
        org or org_row(),
        order_number="ORD-2026-00007",
    )


def many_lines(count: int) -> list[SimpleNamespace]:
    return [line_row(f"Item number {n} widget", str(n % 7 + 1), f"{n}.{n % 100:02d}") for n in range(1, count + 1)]


# --------------------------------------------------------------------------------------------- PDF text


def pypdf_pages(pdf: bytes) -> list[str]:
    return [page.extract_text() for page in PdfReader(BytesIO(pdf)).pages]


def pdftotext(pdf: bytes, *args: str) -> str:
    exe = shutil.which("pdftotext")
    assert exe is not None, "poppler-utils' pdftotext is required"
    done = subprocess.run([exe, *args, "-", "-"], input=pdf, capture_output=True, check=True, timeout=60)
    return done.stdout.decode("utf-8")


def pdftotext_pages(pdf: bytes) -> list[str]:
    # pdftotext ends every page with a form feed.
    return pdftotext(pdf, "-layout").split("\f")[:-1]


WORD_RE = re.compile(r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)</word>')


def words_with_boxes(pdf: bytes) -> list[list[tuple[float, float, float, float, str]]]:
    """Each page's words with their boxes (points, origin top left), from `pdftotext -bbox`."""
    html = pdftotext(pdf, "-bbox")
    pages = html.split("<page ")[1:]
    return [
        [(float(a), float(b), float(c), float(d), text) for a, b, c, d, text in WORD_RE.findall(page)] for page in pages
    ]
