"""E-invoice import: every official example maps, with the amounts its XML states (read here independently, with
XPath, not with the importer's code), the recomputation names exactly the amounts that disagree, and documents the
model cannot hold are refused with a 422 that names the business term."""

from __future__ import annotations

import base64
import csv
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from invoiceflow.documents.model import Identifier, InvoiceReference, Party
from invoiceflow.einvoicing.importer import (
    AmountDifference,
    EInvoiceUnmappable,
    ParsedEInvoice,
    parse_einvoice,
    parse_einvoice_root,
    supplier_key,
)
from invoiceflow.einvoicing.xmlsafe import parse_xml
from tests.einvoicing.conftest import locate_rules_dir
from tests.einvoicing.documents import CII_INVOICE, UBL_INVOICE, edit

NS = {
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
    "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100",
}


CORRECTION = "cii/zugferd-corpus__testout-ZF2PushCorrection.xml"


def example_rows() -> list[Any]:
    """One pytest param per INDEX.tsv row, named by its file."""
    index = locate_rules_dir() / "examples" / "INDEX.tsv"
    if not index.is_file():
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"{index} not found"))]
    with index.open(newline="", encoding="utf-8") as f:
        return [pytest.param(row, id=row["file"].rsplit("/", 1)[-1]) for row in csv.DictReader(f, delimiter="\t")]


def read_example(examples_dir: Path, row: dict[str, str]) -> bytes:
    return (examples_dir.parent / row["file"]).read_bytes()


# ----------------------------------------------------------------------------- the XML, read independently

UBL_TOTALS = "cac:LegalMonetaryTotal/cbc:"
CII_TOTALS = "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement/"
CII_SUMMATION = CII_TOTALS + "ram:SpecifiedTradeSettlementHeaderMonetarySummation/ram:"

# BT -> (XPath from the root, value when absent). The model holds zero for absent BT-107/108/110/113.
UBL_AMOUNTS = {
    "BT-106": (UBL_TOTALS + "LineExtensionAmount", None),
    "BT-107": (UBL_TOTALS + "AllowanceTotalAmount", Decimal(0)),
    "BT-108": (UBL_TOTALS + "ChargeTotalAmount", Decimal(0)),
    "BT-109": (UBL_TOTALS + "TaxExclusiveAmount", None),
    "BT-110": ("cac:TaxTotal[cac:TaxSubtotal]/cbc:TaxAmount", Decimal(0)),
    "BT-111": ("cac:TaxTotal[not(cac:TaxSubtotal)]/cbc:TaxAmount", None),
    "BT-112": (UBL_TOTALS + "TaxInclusiveAmount", None),
    "BT-113": (UBL_TOTALS + "PrepaidAmount", Decimal(0)),
    "BT-114": (UBL_TOTALS + "PayableRoundingAmount", None),
    "BT-115": (UBL_TOTALS + "PayableAmount", None),
}
CII_AMOUNTS = {
    "BT-106": (CII_SUMMATION + "LineTotalAmount", None),
    "BT-107": (CII_SUMMATION + "AllowanceTotalAmount", Decimal(0)),
    "BT-108": (CII_SUMMATION + "ChargeTotalAmount", Decimal(0)),
    "BT-109": (CII_SUMMATION + "TaxBasisTotalAmount", None),
    "BT-110": (CII_SUMMATION + f"TaxTotalAmount[@currencyID = /*/{CII_TOTALS}ram:InvoiceCurrencyCode]", Decimal(0)),
    "BT-111": (CII_SUMMATION + f"TaxTotalAmount[@currencyID = /*/{CII_TOTALS}ram:TaxCurrencyCode]", None),
    "BT-112": (CII_SUMMATION + "GrandTotalAmount", None),
    "BT-113": (CII_SUMMATION + "TotalPrepaidAmount", Decimal(0)),
    "BT-114": (CII_SUMMATION + "RoundingAmount", None),
    "BT-115": (CII_SUMMATION + "DuePayableAmount", None),
}
MODEL_AMOUNTS = {
    "BT-106": "line_total",
    "BT-107": "allowance_total",
    "BT-108": "charge_total",
    "BT-109": "net_total",
    "BT-110": "vat_total",
    "BT-111": "tax_currency_vat_total",
    "BT-112": "gross_total",
    "BT-113": "prepaid_amount",
    "BT-114": "rounding_amount",
    "BT-115": "amount_due",
}

UBL_VAT_ID = "cac:PartyTaxScheme[cac:TaxScheme/cbc:ID = 'VAT']/cbc:CompanyID"
UBL_FIELDS = {
    "number": "cbc:ID",
    "currency": "cbc:DocumentCurrencyCode",
    "tax_currency": "cbc:TaxCurrencyCode",
    "issue_date": "cbc:IssueDate",
    "due_date": "(cbc:DueDate | cac:PaymentMeans/cbc:PaymentDueDate)[1]",
    "seller_vat": "cac:AccountingSupplierParty/cac:Party/" + UBL_VAT_ID,
    "buyer_vat": "cac:AccountingCustomerParty/cac:Party/" + UBL_VAT_ID,
    "line_nets": "(cac:InvoiceLine | cac:CreditNoteLine)/cbc:LineExtensionAmount",
    "vat_categories": "cac:TaxTotal/cac:TaxSubtotal/cac:TaxCategory/cbc:ID",
    "vat_taxable": "cac:TaxTotal/cac:TaxSubtotal/cbc:TaxableAmount",
    "vat_tax": "cac:TaxTotal/cac:TaxSubtotal/cbc:TaxAmount",
}
CII_AGREEMENT = "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeAgreement/"
CII_FIELDS = {
    "number": "rsm:ExchangedDocument/ram:ID",
    "currency": CII_TOTALS + "ram:InvoiceCurrencyCode",
    "tax_currency": CII_TOTALS + "ram:TaxCurrencyCode",
    "issue_date": "rsm:ExchangedDocument/ram:IssueDateTime/udt:DateTimeString",
    "due_date": CII_TOTALS + "ram:SpecifiedTradePaymentTerms/ram:DueDateDateTime/udt:DateTimeString",
    "seller_vat": CII_AGREEMENT + "ram:SellerTradeParty/ram:SpecifiedTaxRegistration/ram:ID[@schemeID = 'VA']",
    "buyer_vat": CII_AGREEMENT + "ram:BuyerTradeParty/ram:SpecifiedTaxRegistration/ram:ID[@schemeID = 'VA']",
    "line_nets": "rsm:SupplyChainTradeTransaction/ram:IncludedSupplyChainTradeLineItem/ram:SpecifiedLineTradeSettlement"
    "/ram:SpecifiedTradeSettlementLineMonetarySummation/ram:LineTotalAmount",
    "vat_categories": CII_TOTALS + "ram:ApplicableTradeTax/ram:CategoryCode",
    "vat_taxable": CII_TOTALS + "ram:ApplicableTradeTax/ram:BasisAmount",
    "vat_tax": CII_TOTALS + "ram:ApplicableTradeTax/ram:CalculatedAmount",
}


def texts(root: Any, path: str) -> list[str]:
    return [str(node.text).strip() for node in root.xpath(path, namespaces=NS)]


def one_text(root: Any, path: str) -> str | None:
    values = texts(root, path)
    assert len(values) <= 1, (path, values)
    return values[0] if values else None


def xml_date(text: str | None) -> date | None:
    if text is None:
        return None
    return date.fromisoformat(text if "-" in text else f"{text[:4]}-{text[4:6]}-{text[6:8]}")


# ------------------------------------------------------------------------------------------------ examples


@pytest.mark.parametrize("row", example_rows())
def test_every_example_maps_its_amounts_and_header(row: dict[str, str], examples_dir: Path) -> None:
    data = read_example(examples_dir, row)
    parsed = parse_einvoice(data)
    doc = parsed.document
    root = parse_xml(data)
    ubl = row["syntax"].startswith("ubl")
    amounts, fields = (UBL_AMOUNTS, UBL_FIELDS) if ubl else (CII_AMOUNTS, CII_FIELDS)

    for term, (path, absent) in amounts.items():
        stated = one_text(root, path)
        expected = absent if stated is None else Decimal(stated)
        assert getattr(doc, MODEL_AMOUNTS[term]) == expected, term

    assert parsed.syntax == ("ubl" if ubl else "cii")
    assert parsed.document_type == {"ubl-invoice": "Invoice", "ubl-creditnote": "CreditNote"}.get(
        row["syntax"], "CrossIndustryInvoice"
    )
    assert doc.number == one_text(root, fields["number"])
    assert doc.currency == one_text(root, fields["currency"]) == row["currency"]
    assert doc.tax_currency == one_text(root, fields["tax_currency"])
    if row["tax_currency"]:  # INDEX lists a VAT accounting currency only when it differs from the invoice's
        assert doc.tax_currency == row["tax_currency"]
    assert doc.issue_date == xml_date(one_text(root, fields["issue_date"]))
    assert doc.due_date == xml_date(one_text(root, fields["due_date"]))
    assert doc.seller.vat_id == one_text(root, fields["seller_vat"])
    assert doc.buyer.vat_id == one_text(root, fields["buyer_vat"])
    assert doc.specification_id == parsed.specification_id == row["customization_id"]
    assert doc.type_code == row["type_code"]
    assert doc.kind == ("credit_note" if row["type_code"] == "381" else "invoice")
    assert doc.source_syntax == parsed.syntax

    assert len(doc.lines) == int(row["lines"])
    assert [line.net_amount for line in doc.lines] == [Decimal(text) for text in texts(root, fields["line_nets"])]
    assert [line.position for line in doc.lines] == list(range(1, len(doc.lines) + 1))
    assert len(doc.vat_breakdown) == int(row["vat_breakdowns"])
    assert {group.vat_category for group in doc.vat_breakdown} == set(row["vat_categories"].split(","))
    assert [(g.vat_category, g.taxable_amount, g.tax_amount) for g in doc.vat_breakdown] == list(
        zip(
            texts(root, fields["vat_categories"]),
            map(Decimal, texts(root, fields["vat_taxable"])),
            map(Decimal, texts(root, fields["vat_tax"])),
            strict=True,
        )
    )
    assert (doc.prepaid_amount != 0) == (row["prepaid"] == "yes")
    assert (doc.amount_due < 0) == (row["negative_payable"] == "yes")
    embedded = any(document.content is not None for document in doc.supporting_documents or ())
    assert embedded == (row["attachment"] == "yes")  # INDEX counts embedded attachments (BT-125)


# Every example whose amounts disagree with their recomputation, and how; all other examples have none.
# The CEN examples are EN 16931-valid because no EN 16931 rule checks a line's arithmetic (Peppol's R120 does, for
# UBL only); the disagreements are real:
#   * line 20 of the CEN "example 1" family credits 6 x 18.33 but states the quantity as +6 (net -109.98);
#   * line 1 of "example 2" bills 2 laptops at 1273.00 but nets 1273.00 (its charge and allowance cancel out);
#   * the CII versions of examples 2, 8 and 9 (and business example Z) give each price a base quantity equal to the
#     price itself (BT-149 = BT-146), which makes every unit cost 1;
#   * XRechnung-O's lines net the price without the 19 % insurance-tax charge each line states;
#   * the HUF example rounds lines and VAT to whole forints, while HUF has two decimals (ISO 4217).
# Factur-X EXTENDED's logistics service charge (15.00) is read as a BG-21 charge, so its BT-108 and VAT group agree;
# the "RoundingIssue" example's lines (+720.81, +0.01, -720.81, -0.01) add up exactly.
EXPECTED_DIFFERENCES: dict[str, list[tuple[str, str, str, str]]] = {
    "en16931__guide-example1.xml": [("BT-131", "20", "-109.98", "109.98")],
    "en16931__guide-example2.xml": [("BT-131", "1", "1273.00", "2546.00")],
    "en16931__guide-example3.xml": [("BT-131", "1", "400.00", "1600.00"), ("BT-131", "2", "400.00", "1600.00")],
    "en16931__ubl-tc434-example1.xml": [("BT-131", "20", "-109.98", "109.98")],
    "en16931__ubl-tc434-example2.xml": [("BT-131", "1", "1273.00", "2546.00")],
    "en16931__ubl-tc434-example3.xml": [("BT-131", "1", "800.00", "1600.00"), ("BT-131", "2", "800.00", "1600.00")],
    "en16931__ubl-tc434-example10.xml": [("BT-131", "20", "-109.98", "109.98")],
    "en16931__CII_business_example_Z.xml": [("BT-131", "16", "177.41", "1.50")],
    "en16931__CII_example1.xml": [("BT-131", "20", "-109.98", "109.98")],
    "en16931__CII_example2.xml": [
        ("BT-131", "1", "1273", "1.00"),
        ("BT-131", "2", "-3.96", "-1.00"),
        ("BT-131", "3", "4.96", "2.00"),
        ("BT-131", "4", "-25", "-1.00"),
        ("BT-131", "5", "187.5", "250.00"),
    ],
    "en16931__CII_example8.xml": [
        ("BT-131", "1", "140.80", "16000.00"),
        ("BT-131", "2", "16.16", "16000.00"),
        ("BT-131", "3", "167.64", "132.00"),
        ("BT-131", "4", "88.74", "58.00"),
        ("BT-131", "5", "36.75", "1.00"),
        ("BT-131", "6", "56.50", "1.00"),
        ("BT-131", "7", "83.34", "1.00"),
        ("BT-131", "8", "190.31", "1.00"),
        ("BT-131", "9", "64.21", "1.00"),
        ("BT-131", "10", "64.46", "1.00"),
    ],
    "en16931__CII_example9.xml": [("BT-131", "1", "147", "3.00")],
    "en16931__XRechnung-O.xml": [
        ("BT-131", "1", "83654.15", "115442.69"),
        ("BT-131", "2", "252646.80", "319345.56"),
    ],
    "en16931__huf_example_cii.xml": [
        ("BT-131", "1", "23440.00", "23439.76"),
        ("BT-131", "2", "21389.00", "21388.83"),
        ("BT-131", "3", "24351.00", "24350.74"),
        ("BT-117", "S", "18679.00", "18678.60"),
    ],
}


def described(differences: tuple[AmountDifference, ...]) -> list[tuple[str, str, str, str]]:
    return [
        (d.term, d.line_id or d.vat_category or "", str(d.document_value), str(d.recomputed_value)) for d in differences
    ]


@pytest.mark.parametrize("row", example_rows())
def test_differences_of_the_examples(row: dict[str, str], examples_dir: Path) -> None:
    parsed = parse_einvoice(read_example(examples_dir, row))
    name = row["file"].rsplit("/", 1)[-1]
    assert described(parsed.differences) == EXPECTED_DIFFERENCES.get(name, [])


def test_the_examples_with_differences_exist(examples_dir: Path) -> None:
    """The table above names files that are really there (a rename would otherwise pass silently)."""
    names = {path.name for path in examples_dir.glob("*/*")}
    assert set(EXPECTED_DIFFERENCES) <= names


def test_a_changed_vat_group_amount_is_named_with_both_values(examples_dir: Path) -> None:
    # peppol__base-example.xml: one VAT group, S 25 %, taxable 1325.00, VAT 331.25 (BT-110 331.25).
    original = (examples_dir / UBL_INVOICE).read_bytes()
    assert parse_einvoice(original).differences == ()
    changed = edit(
        original,
        b'<cbc:TaxAmount currencyID="EUR">331.25</cbc:TaxAmount>\n            <cac:TaxCategory>',
        b'<cbc:TaxAmount currencyID="EUR">331.52</cbc:TaxAmount>\n            <cac:TaxCategory>',
    )
    parsed = parse_einvoice(changed)
    assert parsed.document.vat_breakdown[0].tax_amount == Decimal("331.52")  # kept as stated, never fixed
    assert parsed.differences == (
        AmountDifference(
            term="BT-117",
            label="VAT category tax amount",
            document_value=Decimal("331.52"),
            recomputed_value=Decimal("331.25"),
            vat_category="S",
            vat_rate=Decimal("25"),
        ),
        AmountDifference(
            term="BT-110",
            label="Invoice total VAT amount",
            document_value=Decimal("331.25"),
            recomputed_value=Decimal("331.52"),
        ),
    )
    assert parsed.differences[1].as_dict() == {
        "term": "BT-110",
        "label": "Invoice total VAT amount",
        "document_value": "331.25",
        "recomputed_value": "331.52",
        "line_id": None,
        "vat_category": None,
        "vat_rate": None,
    }


def test_a_changed_vat_total_in_cii_shows_in_bt_110_and_bt_112(examples_dir: Path) -> None:
    # CII_example1: BT-109 229.6, BT-110 20.73 (two VAT groups), BT-112 250.33.
    original = (examples_dir / CII_INVOICE).read_bytes()
    changed = edit(
        original, b'<ram:TaxTotalAmount currencyID="EUR">20.73', b'<ram:TaxTotalAmount currencyID="EUR">21.73'
    )
    parsed = parse_einvoice(changed)
    assert parsed.document.vat_total == Decimal("21.73")
    new = set(described(parsed.differences)) - set(described(parse_einvoice(original).differences))
    assert new == {("BT-110", "", "21.73", "20.73"), ("BT-112", "", "250.33", "251.33")}


def test_line_arithmetic_uses_base_quantity_and_line_allowances_and_charges(examples_dir: Path) -> None:
    """Invoice-Max_content line 1: 500 m at 20.00 per 1 m, with a 0 allowance and a 0 charge, nets 10000."""
    data = (examples_dir / "ubl/en16931-testfiles__Invoice-Max_content.xml").read_bytes()
    changed = edit(
        data,
        b'<cbc:BaseQuantity unitCode="MTR">1</cbc:BaseQuantity>',
        b'<cbc:BaseQuantity unitCode="MTR">4</cbc:BaseQuantity>',
    )
    line = parse_einvoice(changed).document.lines[0]
    assert (line.price_base_quantity, line.gross_price, line.price_discount) == (4, Decimal("20.50"), Decimal("0.50"))
    assert described(parse_einvoice(changed).differences) == [("BT-131", "1", "10000", "2500.00")]
    charged = edit(
        data,
        b"<cbc:AllowanceChargeReason>Warehousing</cbc:AllowanceChargeReason>\n\t\t\t<cbc:MultiplierFactorNumeric>0"
        b'</cbc:MultiplierFactorNumeric>\n\t\t\t<cbc:Amount currencyID="SEK">0</cbc:Amount>',
        b"<cbc:AllowanceChargeReason>Warehousing</cbc:AllowanceChargeReason>\n\t\t\t<cbc:MultiplierFactorNumeric>0"
        b'</cbc:MultiplierFactorNumeric>\n\t\t\t<cbc:Amount currencyID="SEK">12.50</cbc:Amount>',
    )
    assert described(parse_einvoice(charged).differences) == [("BT-131", "1", "10000", "10012.50")]


# -------------------------------------------------------------------------------------- what gets mapped


def parsed_example(examples_dir: Path, name: str) -> ParsedEInvoice:
    return parse_einvoice((examples_dir / name).read_bytes())


def test_ubl_max_content_maps_the_terms_beyond_the_invoice_basics(examples_dir: Path) -> None:
    doc = parsed_example(examples_dir, "ubl/en16931-testfiles__Invoice-Max_content.xml").document
    assert doc.tax_point_date == date(2018, 2, 8)
    assert (doc.tax_currency, doc.tax_currency_vat_total, doc.rounding_amount) == ("EUR", Decimal(249), Decimal(0))
    assert doc.buyer_accounting_reference == "BES, 87392"
    assert (doc.invoice_period.start_date, doc.invoice_period.end_date) == (date(2018, 2, 1), date(2018, 2, 7))  # type: ignore[union-attr]
    assert (doc.order_reference, doc.sales_order_reference) == ("20180117", "INK/0117/JM")
    assert [(p.number, p.issue_date) for p in doc.preceding_invoices or ()] == [
        ("Preceding invoice no.1", date(2018, 1, 31)),
        ("Preceding invoice no.2", None),
    ]
    assert (doc.preceding_invoice_number, doc.preceding_invoice_date) == ("Preceding invoice no.1", date(2018, 1, 31))
    assert (doc.despatch_advice_reference, doc.receiving_advice_reference) == (
        "Despatch_advice Feb 01-07",
        "Receipt_advice 01-07",
    )
    assert (doc.tender_reference, doc.contract_reference, doc.project_reference) == (
        "Tender 2017-12, lot no. 3",
        "2017-123",
        "Project 99",
    )
    documents = doc.supporting_documents or ()
    assert [(d.reference, d.type_code, d.scheme) for d in documents] == [
        ("ABC123", "130", "VT"),
        ("MT123", "916", None),
        ("Time report 1", "916", None),
        ("Example 1", "916", None),
    ]
    assert documents[2].content == base64.b64decode("01234567")
    assert documents[2].mime_code == "text/csv"
    assert documents[3].uri == "http://www.example.com/index.html"

    seller = doc.seller
    assert (seller.name, seller.trading_name, seller.legal_name) == (
        "Global Trade Chain",
        "Global Trade Chain",
        "The Global Chain Sweden AB",
    )
    assert seller.identifiers == (
        parsed_identifier("7350000001204", "0088"),
        parsed_identifier("BilateralID", None),
    )
    assert (seller.tax_registration_id, seller.additional_legal_info) == ("Godkänd för F-skatt", "Säte: Big CIty")
    assert (seller.contact_name, seller.phone, seller.email) == ("A Persson", "0201234567", "info@UCS.se")
    assert (seller.line3, seller.region, seller.company_id, seller.company_id_scheme) == (
        "Address-line3",
        "Delstat A",
        "1234567890",
        "0007",
    )
    assert (seller.electronic_address_scheme, seller.electronic_address) == ("0007", "1234567890")
    assert doc.payee is not None
    assert (doc.payee.name, doc.payee.company_id) == (
        "Finansiell Support u.p.a.",
        "5566778899",
    )
    assert doc.tax_representative is not None
    assert (doc.tax_representative.name, doc.tax_representative.vat_id) == ("Tax Administrators Inc.", "SE998877665501")
    assert doc.ship_to is not None
    assert (doc.ship_to.name, doc.ship_to.city, doc.ship_to.identifiers) == (
        "Deliver-to Name A.S.",
        "DELIV Town",
        (parsed_identifier("7350000001211", "0088"),),
    )
    assert [(m.code, m.text, m.account_id, m.account_name, m.bic) for m in doc.payment_means or ()] == [
        (
            "30",
            "Credit transfer",
            "SE1212341234123412341234",
            "Name-of-account_A (normally not used in Sweden)",
            "BANKSBIC",
        ),
        ("30", None, "12341234567", "Name-of-account_B (normally not used in Sweden)", "BANKSBIC"),
        ("30", None, "1112222", None, "SE:BANKGIRO"),
        ("30", None, "121212", None, "SE:PLUSGIRO"),
    ]
    assert (doc.payment_means_code, doc.iban, doc.bic, doc.payment_reference) == (
        "30",
        "SE1212341234123412341234",
        "BANKSBIC",
        "1800355",
    )
    assert [(a.is_charge, a.reason_code, a.amount, a.base_amount, a.percentage) for a in doc.allowances_charges] == [
        (False, "95", Decimal(0), Decimal(0), Decimal(0)),
        (True, "WH", Decimal(0), Decimal(0), Decimal(0)),
    ]
    line = doc.lines[0]
    assert (line.line_id, line.description, line.item_description) == (
        "1",
        "Universal product",
        "Universal product, customized with option X",
    )
    assert (line.seller_item_id, line.buyer_item_id, line.origin_country) == ("UNI+X", "Buyer's ID", "SE")
    assert line.standard_item_id == parsed_identifier("17350053850016", "0088")
    assert line.object_identifier == parsed_identifier("130-DR35141", "ABZ")
    assert [(c.code, c.list_id, c.list_version) for c in line.classifications or ()] == [
        ("9873242", "SSR", "1.0"),
        ("SST3242", "SST", None),
    ]
    assert [(a.name, a.value) for a in line.attributes or ()] == [("Surface grade", "A11"), ("Density", "2.33")]
    assert (line.order_line_reference, line.accounting_reference) == ("20080117/JM", "Accounting 101-222-8")
    assert line.note == "Line level Note\nLine break should be respected here."
    assert [(a.is_charge, a.reason, a.amount) for a in line.allowances_charges or ()] == [
        (False, "Discount", Decimal(0)),
        (True, "Warehousing", Decimal(0)),
    ]
    assert (line.unit_code, line.quantity, line.unit_price, line.price_base_quantity) == ("MTR", 500, 20, 1)
    assert doc.lines[1].vat_category == "E"
    assert doc.vat_breakdown[1].exemption_reason_code == "vatex-eu-132-1g"


def parsed_identifier(value: str, scheme: str | None) -> Identifier:
    return Identifier(value=value, scheme=scheme)


def test_cii_example5_maps_direct_debit_tax_point_and_notes(examples_dir: Path) -> None:
    doc = parsed_example(examples_dir, "cii/en16931__CII_example5.xml").document
    assert [(n.subject_code, n.text) for n in doc.invoice_notes or ()] == [("AAI", "Ordered through our website")]
    assert doc.notes == "Ordered through our website"
    assert (doc.mandate_reference, doc.creditor_reference, doc.payment_reference) == ("123456", "DK5678", "Payref1")
    assert doc.tax_point_date == date(2013, 4, 10)
    assert (doc.tax_currency, doc.tax_currency_vat_total) == ("EUR", Decimal("628.62"))
    assert (doc.tender_reference, doc.project_reference) == (None, "Project345")
    assert (doc.seller.tax_registration_id, doc.seller.additional_legal_info) == ("NL16356706", "Export")
    assert (doc.seller.name, doc.seller.legal_name, doc.seller.trading_name) == ("SelCo", "SellerCompany", "SelCo")
    line = doc.lines[0]
    assert (line.gross_price, line.price_discount, line.price_base_quantity) == (
        Decimal("1.1"),
        Decimal(10),
        Decimal(1),
    )
    assert line.period is not None
    assert line.period.start_date == date(2013, 3, 10)
    assert [(a.is_charge, a.percentage, a.base_amount, a.amount) for a in line.allowances_charges or ()] == [
        (False, Decimal(10), Decimal(1000), Decimal(100)),
        (True, Decimal(10), Decimal(1000), Decimal(100)),
    ]


def test_cii_type_codes_credit_note_and_corrective_invoice(examples_dir: Path) -> None:
    credit = parsed_example(examples_dir, "cii/zugferd-corpus__testout-ZF2PushCreditNote.xml").document
    assert (credit.kind, credit.type_code) == ("credit_note", "381")
    corrective = parsed_example(examples_dir, CORRECTION).document
    assert (corrective.kind, corrective.type_code) == ("invoice", "384")
    assert corrective.preceding_invoices == ()  # the corpus file names no corrected invoice


def with_preceding_invoice(examples_dir: Path) -> bytes:
    """The corrective invoice naming the invoice it corrects (BG-3), as EN 16931 expects of a 384."""
    end = b"      </ram:SpecifiedTradeSettlementHeaderMonetarySummation> \n"
    reference = (
        b"<ram:InvoiceReferencedDocument><ram:IssuerAssignedID>RE-2024-17</ram:IssuerAssignedID>"
        b"<ram:FormattedIssueDateTime>"
        b'<qdt:DateTimeString xmlns:qdt="urn:un:unece:uncefact:data:standard:QualifiedDataType:100" format="102">'
        b"20240105</qdt:DateTimeString>"
        b"</ram:FormattedIssueDateTime></ram:InvoiceReferencedDocument>\n"
    )
    return edit((examples_dir / CORRECTION).read_bytes(), end, end + reference)


def test_a_corrective_invoice_keeps_the_invoice_it_corrects(examples_dir: Path) -> None:
    doc = parse_einvoice(with_preceding_invoice(examples_dir)).document
    assert (doc.kind, doc.type_code) == ("invoice", "384")
    assert (doc.preceding_invoice_number, doc.preceding_invoice_date) == ("RE-2024-17", date(2024, 1, 5))
    assert doc.preceding_invoices == (InvoiceReference(number="RE-2024-17", issue_date=date(2024, 1, 5)),)


def test_factur_x_extended_logistics_charge_is_a_document_level_charge(examples_dir: Path) -> None:
    parsed = parsed_example(examples_dir, "cii/mustang__factur-x-extended.xml")
    charges = [item for item in parsed.document.allowances_charges if item.is_charge]
    assert [(c.amount, c.vat_category, c.vat_rate) for c in charges] == [(Decimal("15.00"), "S", Decimal("19.00"))]
    assert parsed.document.charge_total == Decimal("15.00")
    assert parsed.differences == ()


def test_parse_einvoice_root_maps_an_already_parsed_tree(examples_dir: Path) -> None:
    data = (examples_dir / UBL_INVOICE).read_bytes()
    assert parse_einvoice_root(parse_xml(data)) == parse_einvoice(data)


def with_notes(examples_dir: Path, *notes: bytes) -> bytes:
    """peppol__base-example.xml with invoice notes (BT-22) after its type code."""
    type_code = b"<cbc:InvoiceTypeCode>380</cbc:InvoiceTypeCode>"
    added = b"".join(b"<cbc:Note>" + note + b"</cbc:Note>" for note in notes)
    return edit((examples_dir / UBL_INVOICE).read_bytes(), type_code, type_code + added)


def test_ubl_notes_carry_a_subject_code_between_hashes(examples_dir: Path) -> None:
    doc = parse_einvoice(with_notes(examples_dir, b"#AAI#Handle with care", b"Delivery terms#2 apply")).document
    assert [(n.subject_code, n.text) for n in doc.invoice_notes or ()] == [
        ("AAI", "Handle with care"),
        (None, "Delivery terms#2 apply"),
    ]
    assert doc.notes == "Handle with care\n\nDelivery terms#2 apply"


# ------------------------------------------------------------------------------------------- supplier key


def test_supplier_key_prefers_vat_id_then_address_then_legal_id_then_name() -> None:
    party = Party(
        name="Acme  GmbH ",
        vat_id="de 123.456-789",
        electronic_address="7300010000001",
        electronic_address_scheme="0088",
        company_id="HRB 1",
        company_id_scheme="0204",
    )
    assert supplier_key(party) == "vat:DE123456789"
    without_vat = Party(**{**_fields(party), "vat_id": None})
    assert supplier_key(without_vat) == "eas:0088:7300010000001"
    without_address = Party(**{**_fields(without_vat), "electronic_address": None})
    assert supplier_key(without_address) == "legal:0204:HRB1"
    only_name = Party(name="Acme  GmbH ", legal_name="ACME   gmbh")
    assert supplier_key(only_name) == "name:acme gmbh"


def _fields(party: Party) -> dict[str, Any]:
    return {name: getattr(party, name) for name in Party.__dataclass_fields__}


def test_parsed_supplier_key_uses_the_seller(examples_dir: Path) -> None:
    assert parsed_example(examples_dir, UBL_INVOICE).supplier_key() == "vat:GB1232434"
    # Category O: no VAT identifiers at all, so the electronic address identifies the seller.
    assert parsed_example(examples_dir, "ubl/peppol__vat-category-O.xml").supplier_key() == "eas:0088:7300010000001"


# ----------------------------------------------------------------------------------------- refused input


def refused(data: bytes) -> EInvoiceUnmappable:
    with pytest.raises(EInvoiceUnmappable) as caught:
        parse_einvoice(data)
    error = caught.value
    assert (error.status_code, error.code) == (422, "EINVOICE_UNMAPPABLE")
    return error


def test_a_ubl_order_is_not_an_invoice() -> None:
    order = (
        b'<?xml version="1.0" encoding="UTF-8"?>\n'
        b'<Order xmlns="urn:oasis:names:specification:ubl:schema:xsd:Order-2"'
        b' xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">'
        b"<cbc:ID>PO-1</cbc:ID></Order>"
    )
    error = refused(order)
    assert error.details["term"] == "BT-3"
    assert error.details["value"] == "{urn:oasis:names:specification:ubl:schema:xsd:Order-2}Order"


@pytest.mark.parametrize(
    ("source", "old", "new", "term", "path", "problem"),
    [
        (UBL_INVOICE, b"<cbc:ID>Snippet1</cbc:ID>", b"", "BT-1", "/Invoice/cbc:ID", "missing"),
        (UBL_INVOICE, b"<cbc:IssueDate>2017-11-13</cbc:IssueDate>", b"", "BT-2", "/Invoice/cbc:IssueDate", "missing"),
        (
            UBL_INVOICE,
            b"<cbc:IssueDate>2017-11-13</cbc:IssueDate>",
            b"<cbc:IssueDate>13.11.2017</cbc:IssueDate>",
            "BT-2",
            "/Invoice/cbc:IssueDate",
            "not a date (YYYY-MM-DD)",
        ),
        (
            UBL_INVOICE,
            b'<cbc:PayableAmount currencyID="EUR">1656.25</cbc:PayableAmount>',
            b'<cbc:PayableAmount currencyID="EUR">1.656,25</cbc:PayableAmount>',
            "BT-115",
            "/Invoice/cac:LegalMonetaryTotal/cbc:PayableAmount",
            "not a decimal number",
        ),
        (
            UBL_INVOICE,
            b'<cbc:InvoicedQuantity unitCode="DAY">7</cbc:InvoicedQuantity>',
            b"<cbc:InvoicedQuantity>7</cbc:InvoicedQuantity>",
            "BT-130",
            "/Invoice/cac:InvoiceLine[1]/cbc:InvoicedQuantity/@unitCode",
            "missing",
        ),
        (
            CII_INVOICE,
            b"<ram:TypeCode>380</ram:TypeCode>",
            b"",
            "BT-3",
            "/rsm:CrossIndustryInvoice/rsm:ExchangedDocument/ram:TypeCode",
            "missing",
        ),
        (
            CII_INVOICE,
            b'<ram:IssueDateTime>\n            <udt:DateTimeString format="102">20150109</udt:DateTimeString>',
            b'<ram:IssueDateTime>\n            <udt:DateTimeString format="610">201501</udt:DateTimeString>',
            "BT-2",
            "/rsm:CrossIndustryInvoice/rsm:ExchangedDocument/ram:IssueDateTime",
            "in date format 610, not 102 (CCYYMMDD)",
        ),
        (
            CII_INVOICE,
            b"<ram:GrandTotalAmount>250.33</ram:GrandTotalAmount>",
            b"<ram:GrandTotalAmount>NaN</ram:GrandTotalAmount>",
            "BT-112",
            "/rsm:CrossIndustryInvoice/rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement"
            "/ram:SpecifiedTradeSettlementHeaderMonetarySummation/ram:GrandTotalAmount",
            "not a decimal number",
        ),
    ],
    ids=[
        "ubl-no-id",
        "ubl-no-issue-date",
        "ubl-bad-date",
        "ubl-amount-with-comma",
        "ubl-no-unit",
        "cii-no-type",
        "cii-date-format",
        "cii-nan",
    ],
)
def test_a_missing_or_garbled_term_is_named(
    examples_dir: Path, source: str, old: bytes, new: bytes, term: str, path: str, problem: str
) -> None:
    error = refused(edit((examples_dir / source).read_bytes(), old, new))
    assert {key: error.details[key] for key in ("term", "path", "problem")} == {
        "term": term,
        "path": path,
        "problem": problem,
    }
    assert error.details["label"]
    assert term in error.message
