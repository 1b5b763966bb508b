"""Document-level allowances and charges (EN 16931 BG-20 / BG-21) and the rounding amount (BT-114) in the
document model, the PDF (read back with pdftotext) and the workbook: every figure equals the API's."""

from __future__ import annotations

from decimal import Decimal
from io import BytesIO
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from invoiceflow.core.tax import AllowanceChargeInput, LineInput, compute_totals
from invoiceflow.documents.model import AllowanceCharge, TotalsMismatchError, build_document, source_checksum
from invoiceflow.invoices.service import read_json
from tests.documents.helpers import client_row, five_lines, invoice_rows, org_row, pdftotext
from tests.factories import Account, create_client, create_invoice, register


def adjustment(position: int, is_charge: bool, amount: str, rate: str = "21", **extra: Any) -> SimpleNamespace:
    values: dict[str, Any] = {
        "position": position,
        "is_charge": is_charge,
        "amount": Decimal(amount),
        "reason": "Freight" if is_charge else "Volume discount",
        "reason_code": "FC" if is_charge else "95",
        "vat_category": "S" if Decimal(rate) > 0 else "Z",
        "vat_rate": Decimal(rate),
        "vat_exemption_reason": None,
    }
    return SimpleNamespace(**(values | extra))


def rows_with(
    adjustments: list[SimpleNamespace], *, currency: str = "EUR", rounding: str = "0", amount_paid: str = "0"
) -> tuple[SimpleNamespace, list[SimpleNamespace]]:
    """Invoice and line rows whose stored totals include the allowances and charges, as the service stores them."""
    invoice, lines = invoice_rows(five_lines(), currency=currency, amount_paid=amount_paid)
    totals = compute_totals(
        [LineInput(ln.quantity, ln.unit_price, ln.vat_category, ln.vat_rate) for ln in lines],
        currency,
        [AllowanceChargeInput(a.is_charge, a.amount, a.vat_category, a.vat_rate) for a in adjustments],
    )
    invoice.net_amount, invoice.vat_amount, invoice.total_amount = (
        totals.net_amount,
        totals.vat_amount,
        totals.total_amount,
    )
    invoice.rounding_amount = Decimal(rounding)
    return invoice, lines


def api_view(invoice: SimpleNamespace, lines: list[SimpleNamespace], adjustments: list[SimpleNamespace]) -> Any:
    row = SimpleNamespace(
        **{"kind": "invoice", "credited_invoice_id": None, **vars(invoice)},
        client_id=invoice.id,
        order_id=None,
        lines=lines,
        allowances_charges=adjustments,
        sent_at=None,
        paid_at=None,
    )
    return read_json(row)  # type: ignore[arg-type]  # duck-typed rows


# --------------------------------------------------------------------------------------------- the model


@pytest.mark.parametrize(
    ("currency", "rounding", "paid"),
    [("EUR", "-0.03", "0"), ("EUR", "0.02", "100.00"), ("JPY", "1", "0"), ("BHD", "-0.004", "1.000")],
)
def test_the_document_has_the_api_totals(currency: str, rounding: str, paid: str) -> None:
    adjustments = [adjustment(1, False, "37"), adjustment(2, True, "15"), adjustment(3, True, "4", "0")]
    invoice, lines = rows_with(adjustments, currency=currency, rounding=rounding, amount_paid=paid)
    doc = build_document(invoice, lines, client_row(), org_row(), allowances_charges=adjustments)
    api = api_view(invoice, lines, adjustments)

    assert str(doc.line_total) == api["line_total_amount"]
    assert str(doc.allowance_total) == api["allowance_total_amount"]
    assert str(doc.charge_total) == api["charge_total_amount"]
    assert str(doc.net_total) == api["net_amount"]
    assert str(doc.vat_total) == api["vat_amount"]
    assert str(doc.gross_total) == api["total_amount"]
    assert str(doc.amount_due) == api["amount_due"]
    assert doc.rounding_amount is not None
    assert str(doc.rounding_amount) == api["rounding_amount"]
    # EN 16931 BR-CO-13 and BR-CO-16.
    assert doc.net_total == doc.line_total - doc.allowance_total + doc.charge_total
    assert doc.amount_due == doc.gross_total - doc.prepaid_amount + doc.rounding_amount
    assert [
        {
            "vat_category": g.vat_category,
            "vat_rate": str(g.vat_rate),
            "taxable_amount": str(g.taxable_amount),
            "vat_amount": str(g.tax_amount),
        }
        for g in doc.vat_breakdown
    ] == api["vat_breakdown"]
    assert [
        {
            "charge": a.is_charge,
            "amount": str(a.amount),
            "reason": a.reason,
            "reason_code": a.reason_code,
            "vat_category": a.vat_category,
            "vat_rate": str(a.vat_rate),
        }
        for a in doc.allowances_charges
    ] == [{k: v for k, v in item.items() if k != "vat_exemption_reason"} for item in api["allowances_charges"]]


def test_known_document_to_the_cent() -> None:
    adjustments = [adjustment(2, True, "15.00"), adjustment(1, False, "37.50")]  # rows in any order
    invoice, lines = rows_with(adjustments, rounding="-0.03")
    doc = build_document(invoice, lines, client_row(), org_row(), allowances_charges=adjustments)
    assert doc.allowances_charges == (
        AllowanceCharge(
            is_charge=False,
            amount=Decimal("37.50"),
            reason="Volume discount",
            reason_code="95",
            vat_category="S",
            vat_rate=Decimal("21"),
        ),
        AllowanceCharge(
            is_charge=True,
            amount=Decimal("15.00"),
            reason="Freight",
            reason_code="FC",
            vat_category="S",
            vat_rate=Decimal("21"),
        ),
    )
    # 21 %: 1660.28 - 37.50 + 15.00 = 1637.78 -> 343.9338 -> 343.93.
    assert [(g.vat_category, g.vat_rate, g.taxable_amount, g.tax_amount) for g in doc.vat_breakdown] == [
        ("E", Decimal("0"), Decimal("99.99"), Decimal("0.00")),
        ("S", Decimal("21"), Decimal("1637.78"), Decimal("343.93")),
        ("S", Decimal("9"), Decimal("50.00"), Decimal("4.50")),
    ]
    assert (doc.line_total, doc.allowance_total, doc.charge_total, doc.net_total) == (
        Decimal("1810.27"),
        Decimal("37.50"),
        Decimal("15.00"),
        Decimal("1787.77"),
    )
    assert (doc.vat_total, doc.gross_total, doc.amount_due) == (
        Decimal("348.43"),
        Decimal("2136.20"),
        Decimal("2136.17"),
    )


def test_a_charge_that_opens_an_exempt_group_gives_its_exemption_reason() -> None:
    freight = adjustment(1, True, "20", "0", vat_category="E", vat_exemption_reason="Exempt transport, Art. 148")
    invoice, lines = rows_with([freight])
    lines.pop()  # without the exempt line, only the charge is in category E
    lines_only = compute_totals(
        [LineInput(ln.quantity, ln.unit_price, ln.vat_category, ln.vat_rate) for ln in lines],
        "EUR",
        [AllowanceChargeInput(True, Decimal("20"), "E", Decimal("0"))],
    )
    invoice.net_amount, invoice.vat_amount, invoice.total_amount = (
        lines_only.net_amount,
        lines_only.vat_amount,
        lines_only.total_amount,
    )
    doc = build_document(invoice, lines, client_row(), org_row(), allowances_charges=[freight])
    [exempt] = [g for g in doc.vat_breakdown if g.vat_category == "E"]
    assert (exempt.taxable_amount, exempt.exemption_reason) == (Decimal("20.00"), "Exempt transport, Art. 148")


def test_stored_totals_that_leave_out_the_allowances_are_refused() -> None:
    adjustments = [adjustment(1, False, "37.50")]
    invoice, lines = rows_with([])  # stored as if there were none
    with pytest.raises(TotalsMismatchError, match="net_amount"):
        build_document(invoice, lines, client_row(), org_row(), allowances_charges=adjustments)


@pytest.mark.parametrize(("field", "value"), [("is_charge", "false"), ("is_charge", 0), ("amount", 37.5)])
def test_ambiguous_values_are_refused(field: str, value: Any) -> None:
    adjustments = [adjustment(1, False, "37.50")]
    invoice, lines = rows_with(adjustments)
    setattr(adjustments[0], field, value)
    with pytest.raises(TypeError, match=field):
        build_document(invoice, lines, client_row(), org_row(), allowances_charges=adjustments)


def test_mappings_work_and_the_checksum_moves_with_the_allowances() -> None:
    adjustments = [adjustment(1, False, "37.50")]
    invoice, lines = rows_with(adjustments)
    client, org = client_row(), org_row()
    doc = build_document(invoice, lines, client, org, allowances_charges=adjustments)
    from_mappings = build_document(
        dict(vars(invoice)),
        [dict(vars(ln)) for ln in lines],
        dict(vars(client)),
        dict(vars(org)),
        allowances_charges=[dict(vars(a)) for a in adjustments],
    )
    assert from_mappings == doc
    relabelled = [adjustment(1, False, "37.50", reason="Loyalty discount")]
    other = build_document(invoice, lines, client, org, allowances_charges=relabelled)
    assert source_checksum(other) != source_checksum(doc)
    # Without a rounding amount the document states none, as before this feature.
    assert doc.rounding_amount is None


# --------------------------------------------------------------------------------------------- through the API

LINES = [
    {
        "description": "Architecture workshop",
        "quantity": "2",
        "unit_code": "DAY",
        "unit_price": "1250.00",
        "vat_rate": "21",
    },
    {"description": "Printed handbook", "quantity": "12", "unit_price": "18.75", "vat_rate": "6"},
]
ADJUSTMENTS = [
    {"charge": False, "amount": "125.00", "reason": "Loyalty discount", "reason_code": "95", "vat_rate": "21"},
    {"charge": True, "amount": "39.90", "reason": "Express freight", "reason_code": "FC", "vat_rate": "21"},
]


def de_money(amount: str) -> str:
    """An API amount ("-125.00") as a German reader sees it on the PDF ("-125,00 €")."""
    sign, digits = ("-", amount[1:]) if amount.startswith("-") else ("", amount)
    whole, cents = digits.split(".")
    return f"{sign}{int(whole):,}".replace(",", ".") + f",{cents} €"


@pytest.fixture
def issued(client: TestClient) -> tuple[Account, dict[str, Any]]:
    account = register(client)
    buyer = create_client(client, account)  # German: the PDF speaks German
    invoice = create_invoice(
        client, account, buyer["id"], items=LINES, allowances_charges=ADJUSTMENTS, rounding_amount="-0.03"
    )
    return account, invoice


def test_the_pdf_shows_the_allowances_charges_and_the_api_totals(client: TestClient, issued: Any) -> None:
    account, invoice = issued
    shown = client.get(f"/api/v1/invoices/{invoice['id']}", headers=account.headers).json()["data"]
    # 21 %: 2500.00 - 125.00 + 39.90 = 2414.90 -> 507.129 -> 507.13; 6 %: 225.00 -> 13.50.
    assert (shown["net_amount"], shown["vat_amount"], shown["total_amount"], shown["amount_due"]) == (
        "2639.90",
        "520.63",
        "3160.53",
        "3160.50",
    )
    r = client.get(f"/api/v1/invoices/{invoice['id']}/pdf", headers=account.headers)
    assert r.status_code == 200, r.text
    text = pdftotext(r.content, "-layout").replace("\u00a0", " ").replace("\u202f", " ")
    # pdftotext keeps or drops the thin space before "%" depending on the glyph widths: compare without it.
    lines = [" ".join(line.split()).replace(" %", "%") for line in text.splitlines()]

    assert "Nachlass: Loyalty discount 21% -125,00 €" in lines
    assert "Zuschlag: Express freight 21% 39,90 €" in lines
    labelled = {
        "Summe der Positionen": shown["line_total_amount"],
        "Nachlass": "-" + shown["allowance_total_amount"],
        "Zuschlag": shown["charge_total_amount"],
        "Gesamt netto": shown["net_amount"],
        "Umsatzsteuer": shown["vat_amount"],
        "Gesamt brutto": shown["total_amount"],
        "Zu zahlen": shown["amount_due"],
    }
    for label, amount in labelled.items():
        assert any(line.endswith(f"{label} {de_money(amount)}") for line in lines), (label, amount)
    for group in shown["vat_breakdown"]:
        wanted = f"{group['vat_rate']}% {de_money(group['taxable_amount'])} {de_money(group['vat_amount'])}"
        assert any(line.endswith(wanted) for line in lines), wanted


def test_the_workbook_holds_the_allowances_charges_and_rounding(client: TestClient, issued: Any) -> None:
    account, invoice = issued
    r = client.get(f"/api/v1/invoices/{invoice['id']}/xlsx", headers=account.headers)
    assert r.status_code == 200, r.text
    sheet = load_workbook(BytesIO(r.content)).active
    assert sheet is not None
    labelled = {row[6]: row[7] for row in sheet.iter_rows(values_only=True) if len(row) > 7 and isinstance(row[6], str)}
    for label, field in (
        ("Sum of lines", "line_total_amount"),
        ("Allowances", "allowance_total_amount"),
        ("Charges", "charge_total_amount"),
        ("Total excl. VAT", "net_amount"),
        ("Total incl. VAT", "total_amount"),
        ("Rounding", "rounding_amount"),
        ("Amount due", "amount_due"),
    ):
        assert f"{labelled[label]:.2f}" == invoice[field], label
