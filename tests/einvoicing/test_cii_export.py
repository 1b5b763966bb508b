"""CII export: the same invoices as the UBL tests (imported from `test_ubl_export`) pass XSD and EN 16931 as
UN/CEFACT CII D16B, and their totals equal the model's to the cent."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings

from invoiceflow.core.money import ZERO
from invoiceflow.documents.model import InvoiceDocument
from invoiceflow.einvoicing.cii import GUIDELINE_ID, RAM, RSM, UDT, to_cii
from invoiceflow.einvoicing.ubl import to_ubl
from invoiceflow.einvoicing.validator import Layer, Validator
from invoiceflow.einvoicing.xmlsafe import parse_xml
from tests.documents.helpers import client_row, five_lines
from tests.einvoicing.test_ubl_export import (
    CASES,
    EXEMPT_REASON,
    PRECEDING,
    _exempt,
    _s,
    assert_passes,
    document,
    fatal_rule_ids,
    invoices,
    model_breakdown,
    model_totals,
    ubl_totals,
)

NS = {"rsm": RSM, "ram": RAM, "udt": UDT}
CII_LAYERS: tuple[Layer, ...] = ("xsd", "en16931")
SETTLEMENT = "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement"
AGREEMENT = "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeAgreement"
LINES = "rsm:SupplyChainTradeTransaction/ram:IncludedSupplyChainTradeLineItem"


def _amount(parent: Any, path: str) -> Decimal:
    text = parent.findtext(path, namespaces=NS)
    return ZERO if text is None else Decimal(text)


def _one(root: Any, path: str) -> str:
    values = [e.text for e in root.iterfind(path, NS)]
    assert len(values) == 1, (path, values)
    return str(values[0])


def cii_totals(root: Any) -> dict[str, Decimal]:
    total = root.find(f"{SETTLEMENT}/ram:SpecifiedTradeSettlementHeaderMonetarySummation", NS)
    return {
        "BT-106": _amount(total, "ram:LineTotalAmount"),
        "BT-107": _amount(total, "ram:AllowanceTotalAmount"),
        "BT-108": _amount(total, "ram:ChargeTotalAmount"),
        "BT-109": _amount(total, "ram:TaxBasisTotalAmount"),
        "BT-110": _amount(total, "ram:TaxTotalAmount"),
        "BT-112": _amount(total, "ram:GrandTotalAmount"),
        "BT-113": _amount(total, "ram:TotalPrepaidAmount"),
        "BT-114": _amount(total, "ram:RoundingAmount"),
        "BT-115": _amount(total, "ram:DuePayableAmount"),
    }


def assert_cii_says_what_the_model_says(doc: InvoiceDocument, data: bytes) -> Any:
    root = parse_xml(data)
    assert cii_totals(root) == model_totals(doc)
    assert [
        (
            tax.findtext("ram:CategoryCode", namespaces=NS),
            _amount(tax, "ram:BasisAmount"),
            _amount(tax, "ram:CalculatedAmount"),
        )
        for tax in root.iterfind(f"{SETTLEMENT}/ram:ApplicableTradeTax", NS)
    ] == model_breakdown(doc)
    assert [
        _amount(
            line,
            "ram:SpecifiedLineTradeSettlement/ram:SpecifiedTradeSettlementLineMonetarySummation/ram:LineTotalAmount",
        )
        for line in root.iterfind(LINES, NS)
    ] == [line.net_amount for line in doc.lines]
    # BT-110 is the only amount with a currency, and it is the invoice's (no VAT accounting currency, BT-111).
    assert [(e.tag, e.get("currencyID")) for e in root.iter() if e.get("currencyID")] == [
        (f"{{{RAM}}}TaxTotalAmount", doc.currency)
    ]
    return root


@pytest.mark.parametrize("case", list(CASES))
def test_fixed_case_passes_xsd_and_en16931(case: str, validator: Validator) -> None:
    doc = CASES[case]()
    data = to_cii(doc)
    assert_passes(validator.validate(data), CII_LAYERS, not_even_warnings=True)
    assert_cii_says_what_the_model_says(doc, data)


@settings(max_examples=40, deadline=None)
@given(doc=invoices())
def test_generated_documents_pass_every_layer_and_keep_the_model_totals(
    doc: InvoiceDocument, validator: Validator
) -> None:
    data = to_cii(doc)
    assert_passes(validator.validate(data), CII_LAYERS)
    assert_cii_says_what_the_model_says(doc, data)


def test_invoice_shape() -> None:
    root = parse_xml(to_cii(CASES["S-two-rates-and-E"]()))
    assert root.tag == f"{{{RSM}}}CrossIndustryInvoice"
    assert (
        _one(root, "rsm:ExchangedDocumentContext/ram:GuidelineSpecifiedDocumentContextParameter/ram:ID") == GUIDELINE_ID
    )
    assert _one(root, "rsm:ExchangedDocument/ram:ID") == "INV-2026-00042"
    assert _one(root, "rsm:ExchangedDocument/ram:TypeCode") == "380"
    issued = root.find("rsm:ExchangedDocument/ram:IssueDateTime/udt:DateTimeString", NS)
    assert (issued.text, issued.attrib) == ("20260305", {"format": "102"})
    assert _one(root, "rsm:ExchangedDocument/ram:IncludedNote/ram:Content") == "Thank you for your business."
    assert _one(root, f"{AGREEMENT}/ram:BuyerReference") == "PO-7781"
    assert _one(root, f"{AGREEMENT}/ram:BuyerOrderReferencedDocument/ram:IssuerAssignedID") == "ORD-2026-00007"
    seller = root.find(f"{AGREEMENT}/ram:SellerTradeParty", NS)
    assert _one(seller, "ram:Name") == "Acme Tools BV"
    assert _one(seller, "ram:SpecifiedLegalOrganization/ram:TradingBusinessName") == "Acme Tools"
    assert seller.find("ram:SpecifiedLegalOrganization/ram:ID", NS).attrib == {"schemeID": "0106"}
    assert seller.find("ram:URIUniversalCommunication/ram:URIID", NS).attrib == {"schemeID": "0106"}
    vat = seller.find("ram:SpecifiedTaxRegistration/ram:ID", NS)
    assert (vat.text, vat.attrib) == ("NL123456789B01", {"schemeID": "VA"})
    buyer = root.find(f"{AGREEMENT}/ram:BuyerTradeParty", NS)
    assert _one(buyer, "ram:PostalTradeAddress/ram:CityName") == "Łódź"
    assert (
        _one(buyer, "ram:DefinedTradeContact/ram:EmailURIUniversalCommunication/ram:URIID") == "einkauf@mueller.example"
    )
    delivery = "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeDelivery"
    assert _one(root, f"{delivery}/ram:ShipToTradeParty/ram:PostalTradeAddress/ram:CountryID") == "DK"
    assert (
        _one(root, f"{delivery}/ram:ActualDeliverySupplyChainEvent/ram:OccurrenceDateTime/udt:DateTimeString")
        == "20260302"
    )
    means = root.find(f"{SETTLEMENT}/ram:SpecifiedTradeSettlementPaymentMeans", NS)
    assert _one(means, "ram:TypeCode") == "58"
    assert _one(means, "ram:PayeePartyCreditorFinancialAccount/ram:IBANID") == "NL91ABNA0417164300"
    assert _one(means, "ram:PayeeSpecifiedCreditorFinancialInstitution/ram:BICID") == "ABNANL2A"
    assert _one(root, f"{SETTLEMENT}/ram:PaymentReference") == "INV-2026-00042"
    terms = root.find(f"{SETTLEMENT}/ram:SpecifiedTradePaymentTerms", NS)
    assert _one(terms, "ram:Description") == "Payable within 30 days without deduction."
    assert _one(terms, "ram:DueDateDateTime/udt:DateTimeString") == "20260404"
    first = root.find(LINES, NS)
    assert first.find("ram:SpecifiedLineTradeDelivery/ram:BilledQuantity", NS).attrib == {"unitCode": "HUR"}
    assert _one(first, "ram:SpecifiedLineTradeAgreement/ram:NetPriceProductTradePrice/ram:ChargeAmount") == "120.00"


def test_credit_note_has_type_381_and_refers_to_the_invoice(validator: Validator) -> None:
    data = to_cii(CASES["credit-note"]())
    root = parse_xml(data)
    assert _one(root, "rsm:ExchangedDocument/ram:TypeCode") == "381"
    reference = root.find(f"{SETTLEMENT}/ram:InvoiceReferencedDocument", NS)
    assert _one(reference, "ram:IssuerAssignedID") == PRECEDING
    issued = reference.find("ram:FormattedIssueDateTime/{*}DateTimeString", NS)
    assert (issued.text, issued.get("format")) == ("20260201", "102")
    assert validator.validate(data).valid


def test_same_document_same_bytes_and_the_same_money_as_the_ubl() -> None:
    first, second = CASES["allowances-and-charges"](), CASES["allowances-and-charges"]()
    data = to_cii(first)
    assert data == to_cii(second) == to_cii(first)
    assert data.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<rsm:CrossIndustryInvoice ')
    assert cii_totals(parse_xml(data)) == ubl_totals(parse_xml(to_ubl(first)))


def test_vat_categories_exemptions_and_category_o() -> None:
    def taxes(case: str) -> list[tuple[str | None, ...]]:
        root = parse_xml(to_cii(CASES[case]()))
        return [
            tuple(
                t.findtext(f"ram:{name}", namespaces=NS)
                for name in ("CategoryCode", "RateApplicablePercent", "ExemptionReasonCode", "ExemptionReason")
            )
            for t in root.iterfind(f"{SETTLEMENT}/ram:ApplicableTradeTax", NS)
        ]

    assert taxes("AE-reverse-charge") == [("AE", "0", "VATEX-EU-AE", None)]
    assert taxes("K-intra-community") == [("K", "0", "VATEX-EU-IC", None)]
    assert taxes("G-export") == [("G", "0", "VATEX-EU-G", None)]
    assert taxes("O-not-subject") == [("O", None, "VATEX-EU-O", None)]
    assert taxes("E-reason-text") == [("E", "0", None, EXEMPT_REASON)]
    assert taxes("S-two-rates-and-E")[1:] == [("S", "21", None, None), ("S", "9", None, None)]
    root = parse_xml(to_cii(CASES["O-not-subject"]()))
    assert root.findall(".//ram:SpecifiedTaxRegistration", NS) == []  # BR-O-02


def test_allowances_and_charges() -> None:
    root = parse_xml(to_cii(CASES["allowances-and-charges"]()))
    items = [
        (
            e.findtext("ram:ChargeIndicator/udt:Indicator", namespaces=NS),
            e.findtext("ram:ActualAmount", namespaces=NS),
            e.findtext("ram:ReasonCode", namespaces=NS),
            e.findtext("ram:Reason", namespaces=NS),
            e.findtext("ram:CategoryTradeTax/ram:CategoryCode", namespaces=NS),
            e.findtext("ram:CategoryTradeTax/ram:RateApplicablePercent", namespaces=NS),
        )
        for e in root.iterfind(f"{SETTLEMENT}/ram:SpecifiedTradeAllowanceCharge", NS)
    ]
    assert items == [
        ("false", "100.00", "95", "Discount", "S", "21"),
        ("false", "10.00", None, "Loyalty rebate on exempt services", "E", "0"),
        ("true", "25.00", "FC", "Freight", "S", "21"),
        ("true", "4.50", None, "Packaging", "S", "9"),
    ]


def test_jpy_and_three_decimal_currencies(validator: Validator) -> None:
    doc = CASES["JPY"]()
    assert _one(parse_xml(to_cii(doc)), f"{SETTLEMENT}//ram:GrandTotalAmount") == str(doc.gross_total)
    assert doc.gross_total == doc.gross_total.to_integral_value()  # yen: no decimals at all
    bhd = parse_xml(to_cii(CASES["BHD-three-decimals"]()))
    assert _one(bhd, f"{SETTLEMENT}//ram:GrandTotalAmount") == "33.00"  # 33.000 BHD, exactly
    # 1.234 BHD: written exactly, and EN 16931's two-decimal limit is what the rules report.
    data = to_cii(document([_s("Lamp", "1", "1.234", "10")], currency="BHD"))
    assert _one(parse_xml(data), f"{SETTLEMENT}//ram:LineTotalAmount") == "1.234"
    assert {"BR-DEC-09", "BR-DEC-23"} <= fatal_rule_ids(validator.validate(data))


def test_missing_data_is_reported_by_the_rules_not_invented(validator: Validator) -> None:
    doc = document([_exempt("E", "Training course", "1", "300.00")])
    assert fatal_rule_ids(validator.validate(to_cii(doc))) == {"BR-E-10"}
    doc = document(five_lines(), client=client_row(electronic_address_scheme=None))
    assert fatal_rule_ids(validator.validate(to_cii(doc))) == {"BR-63"}
