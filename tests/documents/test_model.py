"""The document model: totals equal the API's to the cent, rows may be objects or mappings, and the
source checksum moves with every visible field and with nothing else."""

from __future__ import annotations

import dataclasses
import random
from datetime import timedelta
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from invoiceflow.documents.model import (
    AllowanceCharge,
    InvoiceDocument,
    Party,
    TotalsMismatchError,
    build_document,
    source_checksum,
)
from invoiceflow.invoices.service import read_json
from tests.documents.helpers import DUE, client_row, five_lines, invoice_rows, line_row, make_document, org_row


def api_view(
    invoice: SimpleNamespace, lines: list[SimpleNamespace], allowances_charges: list[SimpleNamespace] | None = None
) -> dict[str, Any]:
    """What GET /invoices/{id} returns for these rows (the service's own serialiser)."""
    row = SimpleNamespace(
        **{"kind": "invoice", "credited_invoice_id": None, "rounding_amount": Decimal(0), **vars(invoice)},
        client_id=invoice.id,
        order_id=None,
        lines=lines,
        allowances_charges=allowances_charges or [],
        sent_at=None,
        paid_at=None,
    )
    return read_json(row)  # type: ignore[arg-type]  # duck-typed rows, as the list path does


@pytest.mark.parametrize(("currency", "paid"), [("EUR", "0"), ("EUR", "1000.00"), ("JPY", "5000"), ("BHD", "1.234")])
def test_totals_and_breakdown_equal_the_api(currency: str, paid: str) -> None:
    invoice, lines = invoice_rows(five_lines(), currency=currency, amount_paid=paid)
    doc = build_document(invoice, lines, client_row(), org_row())
    api = api_view(invoice, lines)

    assert str(doc.net_total) == api["net_amount"]
    assert str(doc.vat_total) == api["vat_amount"]
    assert str(doc.gross_total) == api["total_amount"]
    assert str(doc.prepaid_amount) == api["amount_paid"]
    assert str(doc.amount_due) == api["amount_due"]
    assert [
        {
            "vat_category": g.vat_category,
            "vat_rate": str(g.vat_rate),
            "taxable_amount": str(g.taxable_amount),
            "vat_amount": str(g.tax_amount),
        }
        for g in doc.vat_breakdown
    ] == api["vat_breakdown"]
    for line, item in zip(doc.lines, api["items"], strict=True):
        assert (line.description, str(line.quantity), str(line.unit_price)) == (
            item["description"],
            item["quantity"],
            item["unit_price"],
        )
        assert (str(line.vat_rate), str(line.net_amount)) == (item["vat_rate"], item["line_total"])


def test_known_invoice_to_the_cent() -> None:
    doc = make_document(amount_paid="1000.00")
    assert doc.line_total == doc.net_total == Decimal("1810.27")
    assert doc.vat_total == Decimal("353.16")
    assert doc.gross_total == Decimal("2163.43")
    assert doc.amount_due == Decimal("1163.43")
    assert doc.allowance_total == doc.charge_total == Decimal("0.00")
    assert [(g.vat_category, g.vat_rate, g.taxable_amount, g.tax_amount) for g in doc.vat_breakdown] == [
        ("E", Decimal("0"), Decimal("99.99"), Decimal("0.00")),
        ("S", Decimal("21"), Decimal("1660.28"), Decimal("348.66")),
        ("S", Decimal("9"), Decimal("50.00"), Decimal("4.50")),
    ]
    assert doc.vat_breakdown[0].exemption_reason == "Exempt under Article 132 of Directive 2006/112/EC"


amounts = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("99999"), places=3)
line_inputs = st.tuples(
    st.decimals(min_value=Decimal("0.001"), max_value=Decimal("1000"), places=3),
    amounts,
    st.sampled_from(["0", "5.5", "7", "9", "19", "21", "25"]),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(line_inputs, min_size=1, max_size=12), st.sampled_from(["EUR", "JPY", "BHD"]))
def test_document_identities_hold_for_any_lines(items: list[tuple[Decimal, Decimal, str]], currency: str) -> None:
    rows = [line_row(f"line {i}", str(qty), str(price), rate) for i, (qty, price, rate) in enumerate(items)]
    invoice, lines = invoice_rows(rows, currency=currency)
    doc = build_document(invoice, lines, client_row(), org_row())
    api = api_view(invoice, lines)
    # EN 16931 BR-CO-10, BR-CO-14, BR-CO-15, BR-CO-16.
    assert doc.line_total == sum((line.net_amount for line in doc.lines), Decimal(0))
    assert doc.vat_total == sum((g.tax_amount for g in doc.vat_breakdown), Decimal(0))
    assert doc.gross_total == doc.net_total + doc.vat_total
    assert doc.amount_due == doc.gross_total - doc.prepaid_amount
    assert (str(doc.net_total), str(doc.vat_total), str(doc.gross_total)) == (
        api["net_amount"],
        api["vat_amount"],
        api["total_amount"],
    )


def test_stored_totals_that_disagree_with_the_lines_are_refused() -> None:
    invoice, lines = invoice_rows(five_lines())
    invoice.vat_amount += Decimal("0.01")
    with pytest.raises(TotalsMismatchError, match="vat_amount"):
        build_document(invoice, lines, client_row(), org_row())

    invoice, lines = invoice_rows(five_lines())
    lines[1].line_total += Decimal("0.01")
    with pytest.raises(TotalsMismatchError, match="line 2"):
        build_document(invoice, lines, client_row(), org_row())


def test_floats_are_refused() -> None:
    invoice, lines = invoice_rows(five_lines())
    lines[0].unit_price = 120.0
    with pytest.raises(TypeError, match="unit_price"):
        build_document(invoice, lines, client_row(), org_row())


def test_mappings_and_objects_give_the_same_document() -> None:
    invoice, lines = invoice_rows(five_lines())
    client, org = client_row(), org_row()
    from_objects = build_document(invoice, lines, client, org, order_number="ORD-1")
    from_mappings = build_document(
        dict(vars(invoice)), [dict(vars(ln)) for ln in lines], dict(vars(client)), dict(vars(org)), order_number="ORD-1"
    )
    assert from_mappings == from_objects


def test_lines_follow_their_positions() -> None:
    invoice, lines = invoice_rows(five_lines())
    shuffled = lines[:]
    random.Random(7).shuffle(shuffled)
    doc = build_document(invoice, shuffled, client_row(), org_row())
    assert [line.position for line in doc.lines] == [1, 2, 3, 4, 5]
    assert [line.description for line in doc.lines] == [ln.description for ln in lines]


def test_parties_and_references() -> None:
    doc = make_document()
    assert doc.kind == "invoice"
    assert doc.language == "de"
    assert doc.seller == Party(
        name="Acme Tools",
        legal_name="Acme Tools BV",
        line1="Keizersgracht 1",
        city="Amsterdam",
        postal_code="1015 CJ",
        country="NL",
        vat_id="NL123456789B01",
        company_id="12345678",
        email="billing@acme.example",
        phone="+31 20 555 0100",
        electronic_address_scheme="0106",
        electronic_address="12345678",
    )
    assert doc.buyer.city == "Łódź"
    assert doc.buyer.country == "PL"
    assert doc.ship_to is not None
    assert (doc.ship_to.name, doc.ship_to.city, doc.ship_to.country) == ("Müller & Söhne GmbH", "Ærøskøbing", "DK")
    assert (doc.iban, doc.bic, doc.payment_reference) == ("NL91ABNA0417164300", "ABNANL2A", "INV-2026-00042")
    assert doc.order_reference == "ORD-2026-00007"
    assert doc.buyer_reference == "PO-7781"


def test_no_shipping_address_means_no_ship_to_and_blank_text_is_absent() -> None:
    invoice, lines = invoice_rows(five_lines(), notes="  ")
    client = client_row(shipping_address=None, vat_id="")
    doc = build_document(invoice, lines, client, org_row())
    assert doc.ship_to is None
    assert doc.buyer.vat_id is None
    assert doc.notes is None


def test_credit_note_fields() -> None:
    doc = make_document(kind="credit_note", preceding_invoice_number="INV-2026-00001")
    assert doc.kind == "credit_note"
    assert doc.preceding_invoice_number == "INV-2026-00001"
    with pytest.raises(ValueError, match="kind"):
        make_document(kind="receipt")


# --------------------------------------------------------------------------------------------- checksum


def test_checksum_is_stable_across_rebuilds_and_invisible_attributes() -> None:
    first = make_document()
    # New ids, timestamps, external ids and client notes: nothing a reader of the document sees.
    second = make_document(client=client_row(notes="internal remark", currency="EUR"), external_id="ERP-1")
    assert first is not second
    assert source_checksum(first) == source_checksum(second)
    assert len(source_checksum(first)) == 64


def test_checksum_ignores_how_a_decimal_is_written() -> None:
    doc = make_document()
    line = doc.lines[0]
    padded = dataclasses.replace(line, vat_rate=Decimal("21.00"), quantity=Decimal("8.000"))
    same = dataclasses.replace(doc, lines=(padded, *doc.lines[1:]))
    assert source_checksum(same) == source_checksum(doc)


def _changed(value: Any) -> Any:
    """A different value of the same kind, for every kind of field the model has."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | Decimal):
        return value + 1
    if isinstance(value, str):
        return value + "x"
    if isinstance(value, bytes):
        return value + b"x"
    if hasattr(value, "isoformat"):
        return value + timedelta(days=1)
    if isinstance(value, Party):
        return dataclasses.replace(value, name=value.name + "x")
    if value is None:
        return "x"
    raise AssertionError(f"no change for {value!r}")


def _variants(obj: Any) -> list[tuple[str, Any]]:
    return [
        (f.name, dataclasses.replace(obj, **{f.name: _changed(getattr(obj, f.name))})) for f in dataclasses.fields(obj)
    ]


def test_checksum_changes_with_every_field() -> None:
    doc = make_document()
    doc = dataclasses.replace(doc, logo=b"\x89PNG...")
    base = source_checksum(doc)
    checked: list[str] = []

    def check(name: str, variant: InvoiceDocument) -> None:
        assert source_checksum(variant) != base, name
        checked.append(name)

    charge = AllowanceCharge(
        is_charge=True, amount=Decimal("5.00"), reason="Freight", vat_category="S", vat_rate=Decimal(21)
    )
    for f in dataclasses.fields(doc):
        value = getattr(doc, f.name)
        if f.name == "kind":
            check(f.name, dataclasses.replace(doc, kind="credit_note"))
        elif f.name == "allowances_charges":
            check(f.name, dataclasses.replace(doc, allowances_charges=(charge,)))
        elif isinstance(value, tuple):
            check(f.name, dataclasses.replace(doc, **{f.name: value[:-1]}))
        else:
            check(f.name, dataclasses.replace(doc, **{f.name: _changed(value)}))
    for party_field in ("seller", "buyer", "ship_to"):
        for name, party in _variants(getattr(doc, party_field)):
            check(f"{party_field}.{name}", dataclasses.replace(doc, **{party_field: party}))
    for name, line in _variants(doc.lines[0]):
        check(f"lines.{name}", dataclasses.replace(doc, lines=(line, *doc.lines[1:])))
    for name, group in _variants(doc.vat_breakdown[0]):
        check(f"vat_breakdown.{name}", dataclasses.replace(doc, vat_breakdown=(group, *doc.vat_breakdown[1:])))
    with_charge = dataclasses.replace(doc, allowances_charges=(charge,))
    for name, item in _variants(charge):
        check(f"allowances_charges.{name}", dataclasses.replace(with_charge, allowances_charges=(item,)))
    assert source_checksum(doc) == base
    assert len(checked) > 70


def test_optional_e_invoicing_attributes_are_read_when_present() -> None:
    """Attributes only e-invoices need: absent on today's rows (defaults), read when a row has them."""
    plain = make_document()
    assert (plain.delivery_date, plain.preceding_invoice_date, plain.payment_means_code) == (None, None, None)
    assert plain.seller.company_id_scheme is None
    assert all(group.exemption_reason_code is None for group in plain.vat_breakdown)

    lines = five_lines()
    lines[4].vat_exemption_reason_code = "VATEX-EU-132-1I"
    invoice, rows = invoice_rows(lines, delivery_date=DUE - timedelta(days=40), preceding_invoice_date=DUE)
    doc = build_document(
        invoice,
        rows,
        client_row(company_id_scheme="0196"),
        org_row(company_id_scheme="0106", payment_means_code="30"),
    )
    assert (doc.delivery_date, doc.preceding_invoice_date) == (DUE - timedelta(days=40), DUE)
    assert (doc.seller.company_id_scheme, doc.buyer.company_id_scheme, doc.payment_means_code) == ("0106", "0196", "30")
    assert doc.lines[4].vat_exemption_reason_code == "VATEX-EU-132-1I"
    assert [(g.vat_category, g.exemption_reason_code) for g in doc.vat_breakdown] == [
        ("E", "VATEX-EU-132-1I"),
        ("S", None),
        ("S", None),
    ]
