"""UBL export: every document the model can describe passes XSD, EN 16931 and Peppol BIS 3, and says the same
money as the model, to the cent.

The documents are built the way the product builds them, from plain rows through `build_document`, so the
money core computes every amount. The fixed cases and the hypothesis strategy below are shared with
`test_cii_export.py`, so the two syntaxes are held to the same invoices.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from datetime import date
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from invoiceflow.core.money import HUNDRED, ZERO, round_money, trim
from invoiceflow.documents.model import AllowanceCharge, InvoiceDocument, VatBreakdown, build_document
from invoiceflow.einvoicing.ubl import CAC, CBC, CREDIT_NOTE_NS, CUSTOMIZATION_ID, INVOICE_NS, PROFILE_ID, to_ubl
from invoiceflow.einvoicing.validator import Layer, ValidationReport, Validator
from invoiceflow.einvoicing.xmlsafe import parse_xml
from tests.documents.helpers import client_row, five_lines, invoice_rows, line_row, org_row

NS = {"cac": CAC, "cbc": CBC}
PRECEDING = "INV-2026-00001"
PRECEDING_DATE = date(2026, 2, 1)
DELIVERED = date(2026, 3, 2)
EXEMPT_REASON = "Exempt under Article 132(1)(i) of Directive 2006/112/EC"

# --------------------------------------------------------------------------------------------- documents


def document(
    lines: list[SimpleNamespace],
    *,
    currency: str = "EUR",
    amount_paid: str = "0",
    client: SimpleNamespace | None = None,
    org: SimpleNamespace | None = None,
    order_number: str | None = "ORD-2026-00007",
    allowances: Iterable[AllowanceCharge] = (),
    **invoice: Any,
) -> InvoiceDocument:
    """A document from rows, as the documents service builds it, with document-level allowances and charges."""
    invoice.setdefault("delivery_date", DELIVERED)
    invoice_row, rows = invoice_rows(lines, currency=currency, amount_paid=amount_paid, **invoice)
    doc = build_document(invoice_row, rows, client or client_row(), org or org_row(), order_number=order_number)
    items = tuple(allowances)
    return with_allowances_charges(doc, items) if items else doc


def with_allowances_charges(doc: InvoiceDocument, items: tuple[AllowanceCharge, ...]) -> InvoiceDocument:
    """The document with document-level allowances and charges, and the totals they imply.

    `build_document` cannot take them yet (rows have none, and `core.tax` knows lines only), so this applies
    EN 16931's arithmetic with the money core's rounding: each VAT group's taxable amount is its lines' net
    amount plus its charges minus its allowances (BR-S-08 and the other BR-*-08), its VAT is rounded half-up
    (BR-CO-17), and the document totals follow BR-CO-11..16. The validator checks the same identities on the
    XML independently, so a slip here fails the tests instead of hiding.
    """
    currency = doc.currency
    taxable: dict[tuple[str, Decimal], Decimal] = {
        (group.vat_category, group.vat_rate.normalize()): group.taxable_amount for group in doc.vat_breakdown
    }
    known = {(group.vat_category, group.vat_rate.normalize()): group for group in doc.vat_breakdown}
    for item in items:
        key = (item.vat_category, item.vat_rate.normalize())
        taxable[key] = taxable.get(key, ZERO) + (item.amount if item.is_charge else -item.amount)
    breakdown = []
    for (category, rate), amount in sorted(taxable.items(), key=lambda entry: (entry[0][0], -entry[0][1])):
        group = known.get((category, rate))
        breakdown.append(
            VatBreakdown(
                vat_category=category,
                vat_rate=trim(rate),
                taxable_amount=amount,
                tax_amount=round_money(amount * rate / HUNDRED, currency),
                exemption_reason=group.exemption_reason if group else None,
                exemption_reason_code=group.exemption_reason_code if group else None,
            )
        )
    allowance_total = round_money(sum((i.amount for i in items if not i.is_charge), ZERO), currency)
    charge_total = round_money(sum((i.amount for i in items if i.is_charge), ZERO), currency)
    net_total = doc.line_total - allowance_total + charge_total
    vat_total = sum((group.tax_amount for group in breakdown), round_money(ZERO, currency))
    gross_total = net_total + vat_total
    return dataclasses.replace(
        doc,
        allowances_charges=items,
        vat_breakdown=tuple(breakdown),
        allowance_total=allowance_total,
        charge_total=charge_total,
        net_total=net_total,
        vat_total=vat_total,
        gross_total=gross_total,
        amount_due=gross_total - doc.prepaid_amount,
    )


def allowance(amount: str, category: str = "S", rate: str = "21", **kw: Any) -> AllowanceCharge:
    return AllowanceCharge(
        is_charge=False,
        amount=Decimal(amount),
        reason=kw.pop("reason", "Volume discount"),
        vat_category=category,
        vat_rate=Decimal(rate),
        **kw,
    )


def charge(amount: str, category: str = "S", rate: str = "21", **kw: Any) -> AllowanceCharge:
    return dataclasses.replace(
        allowance(amount, category, rate, reason=kw.pop("reason", "Freight"), **kw), is_charge=True
    )


def norwegian_buyer() -> SimpleNamespace:
    """A buyer outside the EU (export, category G), with a Norwegian organisation number that passes the
    mod-11 check Peppol applies to scheme 0192 (PEPPOL-COMMON-R041)."""
    return client_row(
        name="Nordlys Handel AS",
        address={"line1": "Storgata 1", "city": "Oslo", "postal_code": "0155", "country": "NO"},
        shipping_address={"line1": "Havnelageret 3", "city": "Bergen", "postal_code": "5003", "country": "NO"},
        country="NO",
        vat_id="NO974760673MVA",
        company_id="974760673",
        company_id_scheme="0192",
        electronic_address_scheme="0192",
        electronic_address="974760673",
        language="nb",
    )


def us_buyer() -> SimpleNamespace:
    return client_row(
        name="Lakeside Analytics Inc.",
        address={"line1": "200 E Randolph St", "city": "Chicago", "postal_code": "60601", "country": "US"},
        shipping_address=None,
        country="US",
        vat_id=None,
        company_id="080009263",
        electronic_address_scheme="0060",  # DUNS
        electronic_address="080009263",
        language="en",
    )


def _s(description: str, quantity: str, price: str, rate: str = "21", **kw: Any) -> SimpleNamespace:
    return line_row(description, quantity, price, rate, vat_category="S", **kw)


def _exempt(
    category: str, description: str, quantity: str, price: str, *, reason_code: str | None = None, **kw: Any
) -> SimpleNamespace:
    row = line_row(description, quantity, price, "0", vat_category=category, **kw)
    row.vat_exemption_reason_code = reason_code  # an optional column `build_document` reads when present
    return row


# One fixed invoice per VAT category and per feature the export maps.
CASES: dict[str, Callable[[], InvoiceDocument]] = {
    "S-two-rates-and-E": lambda: document(five_lines()),
    "Z-zero-rated": lambda: document([_exempt("Z", "Printed newspapers", "40", "1.80"), _s("Ink", "2", "19.99")]),
    "E-reason-text": lambda: document(
        [_exempt("E", "Medical consultation", "2", "85.00", vat_exemption_reason=EXEMPT_REASON)]
    ),
    "E-reason-code": lambda: document([_exempt("E", "Dental care", "1", "140.00", reason_code="VATEX-EU-132-1E")]),
    "AE-reverse-charge": lambda: document(
        [_exempt("AE", "Subcontracted installation works", "16", "62.50", unit_code="HUR")]
    ),
    "K-intra-community": lambda: document([_exempt("K", "Pallet of machine parts", "3", "1250.00")]),
    "G-export": lambda: document(
        [_exempt("G", "Industrial sensor, exported", "12", "310.40")], currency="NOK", client=norwegian_buyer()
    ),
    "O-not-subject": lambda: document(
        [_exempt("O", "Membership fee (outside the scope of VAT)", "1", "450.00")],
        client=us_buyer(),
        allowances=[allowance("45.00", "O", "0", reason="Early renewal discount")],
    ),
    "allowances-and-charges": lambda: document(
        [*five_lines(), _s("Assembly service", "3", "45.00", unit_code="HUR")],
        allowances=[
            allowance("100.00", reason_code="95", reason="Discount"),
            allowance("10.00", "E", "0", reason="Loyalty rebate on exempt services"),
            charge("25.00", reason_code="FC", reason="Freight"),
            charge("4.50", "S", "9", reason="Packaging"),
        ],
    ),
    "prepaid": lambda: document(five_lines(), amount_paid="1000.00"),
    "USD": lambda: document(
        [_s("Cloud hosting, March", "1", "1999.00"), _s("Support hours", "7.5", "120.00")], currency="USD"
    ),
    "JPY": lambda: document(
        [
            _s("Tatami mats", "3", "12500", "10"),
            _s("Green tea, per 100 g", "1.5", "333", "8"),
            _s("Ribbon", "3", "0.125"),
        ],
        currency="JPY",
    ),
    "BHD-three-decimals": lambda: document(
        [_s("Desk lamp", "2", "12.500", "10"), _s("Cable", "4", "1.250", "10")], currency="BHD"
    ),
    "credit-note": lambda: document(
        five_lines(), kind="credit_note", preceding_invoice_number=PRECEDING, preceding_invoice_date=PRECEDING_DATE
    ),
    "no-buyer-or-order-reference": lambda: document(five_lines(), buyer_reference=None, order_number=None),
    "no-iban": lambda: document(five_lines(), org=org_row(iban=None, bic=None)),
}

# ------------------------------------------------------------------------------------ generated documents

CURRENCIES = ("EUR", "USD", "JPY", "GBP", "CHF", "SEK")
# Every category but O may share an invoice; O may not share it with any other (BR-O-11..14).
TAXED = (
    ("S", "21"),
    ("S", "9"),
    ("S", "5.5"),
    ("S", "25"),
    ("S", "19"),
    ("S", "7"),
    ("Z", "0"),
    ("E", "0"),
    ("AE", "0"),
    ("K", "0"),
    ("G", "0"),
)
UNITS = ("C62", "HUR", "KGM", "MTR", "DAY", "H87", "LTR")
quantities = st.decimals(min_value=Decimal("0.001"), max_value=Decimal("1000"), places=3)
prices = st.decimals(min_value=Decimal("0"), max_value=Decimal("10000"), places=4)
descriptions = st.text(
    st.characters(codec="utf-8", categories=("L", "N", "P", "S", "Zs")), min_size=1, max_size=40
).filter(str.strip)


@st.composite
def invoices(draw: st.DrawFn) -> InvoiceDocument:
    """Invoices and credit notes with 1-20 lines, decimal quantities, prices with up to four decimals, several
    VAT categories and rates, document-level allowances and charges, a prepaid part, in six currencies.

    Three-decimal currencies are left to the fixed cases: EN 16931 allows two decimals (BR-DEC-*), so only
    amounts that happen to end in a zero can pass, which a random invoice rarely does.
    """
    currency = draw(st.sampled_from(CURRENCIES))
    categories = (
        [("O", "0")]
        if draw(st.integers(0, 4)) == 0
        else draw(st.lists(st.sampled_from(TAXED), min_size=1, max_size=4, unique=True))
    )
    specs = draw(
        st.lists(
            st.tuples(st.sampled_from(categories), quantities, prices, st.sampled_from(UNITS), descriptions),
            min_size=1,
            max_size=20,
        )
    )

    def rows() -> list[SimpleNamespace]:  # fresh rows each time: invoice_rows numbers them in place
        return [
            line_row(
                text,
                str(quantity),
                str(price),
                rate,
                vat_category=category,
                unit_code=unit,
                vat_exemption_reason=EXEMPT_REASON if category == "E" else None,
            )
            for (category, rate), quantity, price, unit, text in specs
        ]

    invoice: dict[str, Any] = {}
    if draw(st.booleans()):
        invoice = {
            "kind": "credit_note",
            "preceding_invoice_number": PRECEDING,
            "preceding_invoice_date": PRECEDING_DATE,
        }
    plain = document(rows(), currency=currency, **invoice)
    adjustments = draw(st.lists(adjustment(plain), max_size=3))
    share = draw(st.sampled_from([ZERO, ZERO, Decimal("0.1"), Decimal("0.5"), Decimal("0.333")]))
    paid = round_money(max(plain.gross_total, ZERO) * share, currency)
    return document(rows(), currency=currency, amount_paid=str(paid), allowances=adjustments, **invoice)


@st.composite
def adjustment(draw: st.DrawFn, doc: InvoiceDocument) -> AllowanceCharge:
    """An allowance of up to 30 % of one VAT group's net amount, or a charge of up to 500, in that group."""
    group = draw(st.sampled_from(doc.vat_breakdown))
    if draw(st.booleans()):
        share = draw(st.decimals(min_value=Decimal("0"), max_value=Decimal("0.3"), places=2))
        amount, reason, code = group.taxable_amount * share, "Volume discount", draw(st.sampled_from([None, "95"]))
    else:
        amount = draw(st.decimals(min_value=Decimal("0.01"), max_value=Decimal("500"), places=2))
        reason, code = "Freight", draw(st.sampled_from([None, "FC"]))
    return AllowanceCharge(
        is_charge=reason == "Freight",
        amount=round_money(amount, doc.currency),
        reason=reason,
        reason_code=code,
        vat_category=group.vat_category,
        vat_rate=group.vat_rate,
    )


# -------------------------------------------------------------------------------------------- assertions


def fatal_findings(report: ValidationReport) -> str:
    """The fatal findings, one per line, with rule id, message and location, for assertion messages."""
    return "\n".join(
        f"  [{f.layer}] {f.rule_id}: {f.message} (at {f.location}{f', line {f.line}' if f.line else ''})"
        for f in report.findings
        if f.severity == "fatal"
    )


def all_findings(report: ValidationReport) -> str:
    return "\n".join(f"  [{f.layer}] {f.severity} {f.rule_id}: {f.message} (at {f.location})" for f in report.findings)


def assert_passes(report: ValidationReport, layers: tuple[Layer, ...], *, not_even_warnings: bool = False) -> None:
    assert report.layers_run == layers, f"layers run: {report.layers_run}, skipped: {report.layers_skipped}"
    assert report.valid, "the official rules found:\n" + fatal_findings(report)
    if not_even_warnings:
        assert not report.findings, "the official rules warn:\n" + all_findings(report)


def fatal_rule_ids(report: ValidationReport) -> set[str]:
    return {f.rule_id for f in report.findings if f.severity == "fatal"}


def model_totals(doc: InvoiceDocument) -> dict[str, Decimal]:
    """BT-106..BT-115 of the model (it has no rounding amount, BT-114, so that one is zero)."""
    return {
        "BT-106": doc.line_total,
        "BT-107": doc.allowance_total,
        "BT-108": doc.charge_total,
        "BT-109": doc.net_total,
        "BT-110": doc.vat_total,
        "BT-112": doc.gross_total,
        "BT-113": doc.prepaid_amount,
        "BT-114": ZERO,
        "BT-115": doc.amount_due,
    }


def model_breakdown(doc: InvoiceDocument) -> list[tuple[str, Decimal, Decimal]]:
    return [(g.vat_category, g.taxable_amount, g.tax_amount) for g in doc.vat_breakdown]


def _amount(parent: Any, path: str) -> Decimal:
    """An amount of the XML, zero when absent (the rules read a missing optional total as zero)."""
    text = parent.findtext(path, namespaces=NS)
    return ZERO if text is None else Decimal(text)


def ubl_totals(root: Any) -> dict[str, Decimal]:
    total = root.find("cac:LegalMonetaryTotal", NS)
    return {
        "BT-106": _amount(total, "cbc:LineExtensionAmount"),
        "BT-107": _amount(total, "cbc:AllowanceTotalAmount"),
        "BT-108": _amount(total, "cbc:ChargeTotalAmount"),
        "BT-109": _amount(total, "cbc:TaxExclusiveAmount"),
        "BT-110": _amount(root, "cac:TaxTotal/cbc:TaxAmount"),
        "BT-112": _amount(total, "cbc:TaxInclusiveAmount"),
        "BT-113": _amount(total, "cbc:PrepaidAmount"),
        "BT-114": _amount(total, "cbc:PayableRoundingAmount"),
        "BT-115": _amount(total, "cbc:PayableAmount"),
    }


def ubl_breakdown(root: Any) -> list[tuple[str, Decimal, Decimal]]:
    return [
        (
            sub.findtext("cac:TaxCategory/cbc:ID", namespaces=NS),
            _amount(sub, "cbc:TaxableAmount"),
            _amount(sub, "cbc:TaxAmount"),
        )
        for sub in root.iterfind("cac:TaxTotal/cac:TaxSubtotal", NS)
    ]


def assert_ubl_says_what_the_model_says(doc: InvoiceDocument, data: bytes) -> Any:
    root = parse_xml(data)
    assert ubl_totals(root) == model_totals(doc)
    assert ubl_breakdown(root) == model_breakdown(doc)
    line_name = "CreditNoteLine" if doc.kind == "credit_note" else "InvoiceLine"
    assert [_amount(line, "cbc:LineExtensionAmount") for line in root.iterfind(f"cac:{line_name}", NS)] == [
        line.net_amount for line in doc.lines
    ]
    assert len(root.findall("cac:TaxTotal", NS)) == 1  # no VAT accounting currency (BT-111)
    assert {e.get("currencyID") for e in root.iter() if e.get("currencyID")} == {doc.currency}
    return root


UBL_LAYERS: tuple[Layer, ...] = ("xsd", "en16931", "peppol")

# ----------------------------------------------------------------------------------------------- tests


@pytest.mark.parametrize("case", list(CASES))
def test_fixed_case_passes_xsd_en16931_and_peppol(case: str, validator: Validator) -> None:
    doc = CASES[case]()
    data = to_ubl(doc)
    report = validator.validate(data)
    assert_passes(report, UBL_LAYERS, not_even_warnings=True)
    assert_ubl_says_what_the_model_says(doc, data)


@settings(max_examples=40, deadline=None)
@given(doc=invoices())
def test_generated_documents_pass_every_layer_and_keep_the_model_totals(
    doc: InvoiceDocument, validator: Validator
) -> None:
    data = to_ubl(doc)
    assert_passes(validator.validate(data), UBL_LAYERS)
    assert_ubl_says_what_the_model_says(doc, data)


def _one(root: Any, path: str) -> str:
    values = [e.text for e in root.iterfind(path, NS)]
    assert len(values) == 1, (path, values)
    return str(values[0])


def test_invoice_shape_and_peppol_identifiers() -> None:
    root = parse_xml(to_ubl(CASES["S-two-rates-and-E"]()))
    assert root.tag == f"{{{INVOICE_NS}}}Invoice"
    assert _one(root, "cbc:CustomizationID") == CUSTOMIZATION_ID
    assert _one(root, "cbc:ProfileID") == PROFILE_ID
    assert _one(root, "cbc:InvoiceTypeCode") == "380"
    assert (_one(root, "cbc:IssueDate"), _one(root, "cbc:DueDate")) == ("2026-03-05", "2026-04-04")
    assert (_one(root, "cbc:BuyerReference"), _one(root, "cac:OrderReference/cbc:ID")) == ("PO-7781", "ORD-2026-00007")
    seller = root.find("cac:AccountingSupplierParty/cac:Party", NS)
    assert seller.find("cbc:EndpointID", NS).attrib == {"schemeID": "0106"}
    assert _one(seller, "cac:PartyTaxScheme/cbc:CompanyID") == "NL123456789B01"
    assert _one(seller, "cac:PartyLegalEntity/cbc:RegistrationName") == "Acme Tools BV"
    assert _one(seller, "cac:Contact/cbc:ElectronicMail") == "billing@acme.example"
    buyer = root.find("cac:AccountingCustomerParty/cac:Party", NS)
    assert _one(buyer, "cac:PostalAddress/cbc:CityName") == "Łódź"
    assert _one(root, "cac:Delivery/cac:DeliveryLocation/cac:Address/cac:Country/cbc:IdentificationCode") == "DK"
    means = root.find("cac:PaymentMeans", NS)
    assert (_one(means, "cbc:PaymentMeansCode"), _one(means, "cbc:PaymentID")) == ("58", "INV-2026-00042")
    assert _one(means, "cac:PayeeFinancialAccount/cbc:ID") == "NL91ABNA0417164300"
    assert _one(means, "cac:PayeeFinancialAccount/cac:FinancialInstitutionBranch/cbc:ID") == "ABNANL2A"
    assert _one(root, "cac:PaymentTerms/cbc:Note") == "Payable within 30 days without deduction."
    first = root.find("cac:InvoiceLine", NS)
    assert first.find("cbc:InvoicedQuantity", NS).attrib == {"unitCode": "HUR"}
    assert (_one(first, "cac:Item/cbc:Name"), _one(first, "cac:Price/cbc:PriceAmount")) == (
        "Consulting, architecture review",
        "120.00",
    )


def test_credit_note_is_a_creditnote_document_referring_to_the_invoice(validator: Validator) -> None:
    data = to_ubl(CASES["credit-note"]())
    root = parse_xml(data)
    assert root.tag == f"{{{CREDIT_NOTE_NS}}}CreditNote"
    assert _one(root, "cbc:CreditNoteTypeCode") == "381"
    assert root.find("cbc:InvoiceTypeCode", NS) is None
    assert root.find("cbc:DueDate", NS) is None  # UBL 2.1 CreditNote has none: it travels in PaymentMeans
    assert _one(root, "cac:PaymentMeans/cbc:PaymentDueDate") == "2026-04-04"
    reference = root.find("cac:BillingReference/cac:InvoiceDocumentReference", NS)
    assert (_one(reference, "cbc:ID"), _one(reference, "cbc:IssueDate")) == (PRECEDING, "2026-02-01")
    assert root.findall("cac:InvoiceLine", NS) == []
    lines = root.findall("cac:CreditNoteLine", NS)
    assert len(lines) == 5
    assert [line.find("cbc:CreditedQuantity", NS).text for line in lines] == ["8", "2", "3", "4", "1"]
    assert validator.validate(data).valid


def test_same_document_same_bytes_utf8_with_declaration() -> None:
    first, second = CASES["allowances-and-charges"](), CASES["allowances-and-charges"]()
    assert first is not second
    data = to_ubl(first)
    assert data == to_ubl(second) == to_ubl(first)
    assert data.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<Invoice ')
    assert "Müller & Söhne GmbH".encode() not in data  # escaped, and encoded as UTF-8:
    assert "Müller &amp; Söhne GmbH".encode() in data


def test_each_vat_category_gets_the_exemption_reason_the_rules_ask_for() -> None:
    def categories(case: str) -> dict[str, tuple[str | None, str | None, str | None]]:
        root = parse_xml(to_ubl(CASES[case]()))
        return {
            str(c.findtext("cbc:ID", namespaces=NS)): (
                c.findtext("cbc:Percent", namespaces=NS),
                c.findtext("cbc:TaxExemptionReasonCode", namespaces=NS),
                c.findtext("cbc:TaxExemptionReason", namespaces=NS),
            )
            for c in root.iterfind("cac:TaxTotal/cac:TaxSubtotal/cac:TaxCategory", NS)
        }

    assert categories("AE-reverse-charge") == {"AE": ("0", "VATEX-EU-AE", None)}
    assert categories("K-intra-community") == {"K": ("0", "VATEX-EU-IC", None)}
    assert categories("G-export") == {"G": ("0", "VATEX-EU-G", None)}
    assert categories("O-not-subject") == {"O": (None, "VATEX-EU-O", None)}  # BR-O-05: no rate at all
    assert categories("E-reason-text") == {"E": ("0", None, EXEMPT_REASON)}
    assert categories("E-reason-code") == {"E": ("0", "VATEX-EU-132-1E", None)}
    assert categories("Z-zero-rated") == {"Z": ("0", None, None), "S": ("21", None, None)}


def test_not_subject_to_vat_leaves_out_both_vat_identifiers() -> None:
    doc = CASES["O-not-subject"]()
    assert doc.seller.vat_id  # the model has it; BR-O-02 forbids it on this invoice
    root = parse_xml(to_ubl(doc))
    assert root.findall(".//cac:PartyTaxScheme", NS) == []
    assert _one(root, "cac:AccountingSupplierParty/cac:Party/cac:PartyLegalEntity/cbc:CompanyID") == "12345678"
    assert [c.findtext("cbc:Percent", namespaces=NS) for c in root.iter(f"{{{CAC}}}ClassifiedTaxCategory")] == [None]
    allowance_category = root.find("cac:AllowanceCharge/cac:TaxCategory", NS)
    assert (allowance_category.findtext("cbc:ID", namespaces=NS), allowance_category.find("cbc:Percent", NS)) == (
        "O",
        None,
    )


def test_allowances_and_charges_carry_reason_code_amount_and_category() -> None:
    root = parse_xml(to_ubl(CASES["allowances-and-charges"]()))
    items = [
        (
            e.findtext("cbc:ChargeIndicator", namespaces=NS),
            e.findtext("cbc:AllowanceChargeReasonCode", namespaces=NS),
            e.findtext("cbc:AllowanceChargeReason", namespaces=NS),
            e.findtext("cbc:Amount", namespaces=NS),
            e.findtext("cac:TaxCategory/cbc:ID", namespaces=NS),
            e.findtext("cac:TaxCategory/cbc:Percent", namespaces=NS),
        )
        for e in root.iterfind("cac:AllowanceCharge", NS)
    ]
    assert items == [
        ("false", "95", "Discount", "100.00", "S", "21"),
        ("false", None, "Loyalty rebate on exempt services", "10.00", "E", "0"),
        ("true", "FC", "Freight", "25.00", "S", "21"),
        ("true", None, "Packaging", "4.50", "S", "9"),
    ]
    totals = ubl_totals(root)
    assert (totals["BT-107"], totals["BT-108"]) == (Decimal("110.00"), Decimal("29.50"))
    assert totals["BT-109"] == totals["BT-106"] - totals["BT-107"] + totals["BT-108"]  # BR-CO-13


def test_a_line_rounded_by_more_than_peppol_tolerates_states_its_price_per_quantity(validator: Validator) -> None:
    # 1.5 x 333 JPY = 499.5, a line net of 500 JPY: PEPPOL-EN16931-R120 allows 0.02 between the two.
    doc = document(
        [_s("Green tea, per 100 g", "1.5", "333", "8"), _s("Tatami mat", "2", "12500", "10")], currency="JPY"
    )
    root = parse_xml(to_ubl(doc))
    tea, mat = root.findall("cac:InvoiceLine", NS)
    assert _one(tea, "cbc:LineExtensionAmount") == "500"
    assert (_one(tea, "cac:Price/cbc:PriceAmount"), _one(tea, "cac:Price/cbc:BaseQuantity")) == ("500", "1.5")
    assert tea.find("cac:Price/cbc:BaseQuantity", NS).attrib == {"unitCode": "C62"}  # PEPPOL-EN16931-R130
    assert _one(mat, "cac:Price/cbc:PriceAmount") == "12500"
    assert mat.find("cac:Price/cbc:BaseQuantity", NS) is None
    assert validator.validate(to_ubl(doc)).valid


def test_three_decimal_currency_amounts_use_two_decimals_only_when_exact(validator: Validator) -> None:
    root = parse_xml(to_ubl(CASES["BHD-three-decimals"]()))
    assert ubl_totals(root)["BT-112"] == Decimal("33.00")
    assert _one(root, "cac:LegalMonetaryTotal/cbc:TaxInclusiveAmount") == "33.00"  # 33.000 BHD, exactly
    assert _one(root, "cac:InvoiceLine[1]/cac:Price/cbc:PriceAmount") == "12.500"  # prices keep their decimals

    # 1.234 BHD cannot be said with two decimals: the exact amount is written and the rules say why it fails.
    doc = document([_s("Lamp", "1", "1.234", "10")], currency="BHD")
    data = to_ubl(doc)
    assert _one(parse_xml(data), "cac:LegalMonetaryTotal/cbc:LineExtensionAmount") == "1.234"
    assert {"UBL-DT-01", "BR-DEC-09", "BR-DEC-23"} <= fatal_rule_ids(validator.validate(data))


def test_missing_data_is_reported_by_the_rules_not_invented(validator: Validator) -> None:
    # An exemption (E) needs its legal ground, which only the seller knows (BR-E-10).
    doc = document([_exempt("E", "Training course", "1", "300.00")])
    assert fatal_rule_ids(validator.validate(to_ubl(doc))) == {"BR-E-10"}
    # No buyer electronic address: Peppol cannot deliver the invoice (PEPPOL-EN16931-R010).
    doc = document(five_lines(), client=client_row(electronic_address=None, electronic_address_scheme=None))
    assert fatal_rule_ids(validator.validate(to_ubl(doc))) == {"PEPPOL-EN16931-R010"}
    # An electronic address without its scheme is written, and the rule names what is missing (BR-63).
    doc = document(five_lines(), client=client_row(electronic_address_scheme=None))
    assert fatal_rule_ids(validator.validate(to_ubl(doc))) == {"BR-63"}
    # Intra-community supply without delivery date or deliver-to country (BR-IC-11, BR-IC-12).
    doc = document([_exempt("K", "Parts", "1", "10.00")], client=client_row(shipping_address=None), delivery_date=None)
    assert fatal_rule_ids(validator.validate(to_ubl(doc))) == {"BR-IC-11", "BR-IC-12"}


def test_buyer_reference_falls_back_to_the_invoice_number_only_without_any_reference() -> None:
    root = parse_xml(to_ubl(CASES["no-buyer-or-order-reference"]()))
    assert _one(root, "cbc:BuyerReference") == "INV-2026-00042"
    assert root.find("cac:OrderReference", NS) is None
    only_order = parse_xml(to_ubl(document(five_lines(), buyer_reference=None)))
    assert only_order.find("cbc:BuyerReference", NS) is None
    assert _one(only_order, "cac:OrderReference/cbc:ID") == "ORD-2026-00007"


@pytest.mark.parametrize(
    ("currency", "org", "code", "account"),
    [
        ("EUR", {}, "58", "NL91ABNA0417164300"),  # SEPA credit transfer
        ("USD", {}, "30", "NL91ABNA0417164300"),  # credit transfer outside SEPA's currency
        ("EUR", {"iban": None, "bic": None}, "1", None),  # instrument not defined
        ("EUR", {"payment_means_code": "30"}, "30", "NL91ABNA0417164300"),  # the seller's own choice
    ],
)
def test_payment_means(
    currency: str, org: dict[str, Any], code: str, account: str | None, validator: Validator
) -> None:
    data = to_ubl(document(five_lines(), currency=currency, org=org_row(**org)))
    means = parse_xml(data).find("cac:PaymentMeans", NS)
    assert means.findtext("cbc:PaymentMeansCode", namespaces=NS) == code
    assert means.findtext("cac:PayeeFinancialAccount/cbc:ID", namespaces=NS) == account
    assert validator.validate(data).valid


def test_legal_registration_scheme_is_the_models_or_the_matching_electronic_address_scheme() -> None:
    def scheme(org: SimpleNamespace) -> str | None:
        root = parse_xml(to_ubl(document(five_lines(), org=org)))
        return root.find("cac:AccountingSupplierParty/cac:Party/cac:PartyLegalEntity/cbc:CompanyID", NS).get("schemeID")

    assert scheme(org_row()) == "0106"  # KvK number = electronic address under ICD 0106 (Peppol NL-R-003)
    assert scheme(org_row(company_id_scheme="0190", company_id="00000001234567890000")) == "0190"
    assert scheme(org_row(electronic_address="87654321")) is None  # a different number: nothing to infer
    # 99xx EAS codes are not ISO 6523 ICDs, so they never become a registration scheme (BR-CL-11).
    assert scheme(org_row(electronic_address_scheme="9944", electronic_address="12345678")) is None


def test_negative_price_becomes_negative_quantity_with_the_same_net(validator: Validator) -> None:
    lines = [_s("Consulting", "10", "100.00"), _s("Goodwill correction", "1", "-50.00")]
    invoice_row, rows = invoice_rows(lines)
    doc = build_document(invoice_row, rows, client_row(), org_row(), order_number=None)
    data = to_ubl(doc)
    correction = parse_xml(data).findall("cac:InvoiceLine", NS)[1]
    assert _one(correction, "cbc:InvoicedQuantity") == "-1"
    assert _one(correction, "cac:Price/cbc:PriceAmount") == "50.00"  # BR-27: never negative
    assert _one(correction, "cbc:LineExtensionAmount") == "-50.00"
    assert validator.validate(data).valid


def test_text_xml_cannot_carry_is_dropped_and_blank_text_leaves_no_empty_element(validator: Validator) -> None:
    doc = document([_s("Widget\x0b with a vertical tab\x00", "1", "10.00")], notes="\x01 ")
    data = to_ubl(doc)
    root = parse_xml(data)
    assert _one(root, "cac:InvoiceLine/cac:Item/cbc:Name") == "Widget with a vertical tab"
    assert root.find("cbc:Note", NS) is None  # nothing visible left: no empty element (PEPPOL-EN16931-R008)
    assert validator.validate(data).valid
