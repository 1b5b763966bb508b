"""Faithful re-export: every official example, imported and written again as UBL and as CII, passes the official
rules as well as the original did, and says what the original said."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from invoiceflow.documents.model import InvoiceDocument
from invoiceflow.einvoicing.cii import GUIDELINE_ID, to_cii
from invoiceflow.einvoicing.importer import TERMS, EInvoiceUnmappable, parse_einvoice
from invoiceflow.einvoicing.ubl import CUSTOMIZATION_ID, EN16931_ID, PROFILE_ID, clean_text, to_ubl
from invoiceflow.einvoicing.validator import ValidationReport, Validator
from invoiceflow.einvoicing.xmlsafe import parse_xml
from tests.documents.test_snapshot import document_strategy
from tests.einvoicing.documents import UBL_INVOICE, edit
from tests.einvoicing.test_importer import NS, example_rows, read_example, with_notes, with_preceding_invoice

# INDEX.tsv's verdict columns, one per validation layer (Factur-X's applies to Factur-X guidelines only).
INDEX_LAYERS = ("xsd", "en16931", "peppol", "facturx")
EXPORTS: dict[str, Callable[[InvoiceDocument], bytes]] = {"ubl": to_ubl, "cii": to_cii}


def fatal_rule_ids(report: ValidationReport) -> set[str]:
    """Every fatal rule, whichever layer reported it."""
    return {finding.rule_id for finding in report.findings if finding.severity == "fatal"}


@pytest.mark.parametrize("syntax", list(EXPORTS))
@pytest.mark.parametrize("row", example_rows())
def test_reexport_validates_as_well_as_the_original(
    row: dict[str, str], syntax: str, examples_dir: Path, validator: Validator
) -> None:
    """An example that passes every layer re-exports, in either syntax, with no fatal finding at all.

    An example that fails a layer (the Swedish test files fail Peppol's organisation-number checks, Factur-X
    EXTENDED fails three EN 16931 rules) cannot be made valid by a faithful copy: its data is the problem. Its
    re-export may only break rules the validator finds broken in the original, compared by rule id because the
    same rule is reported at other locations in the other syntax. Fewer is fine: a CII copy of a Peppol invoice
    does not claim Peppol (see `cii_specification_id`), and EXTENDED's logistics charge becomes an ordinary
    charge, which satisfies BR-CO-12 and BR-S-08.
    """
    data = read_example(examples_dir, row)
    exported = EXPORTS[syntax](parse_einvoice(data).document)
    report = validator.validate(exported)
    if all(row[layer] in ("pass", "n/a") for layer in INDEX_LAYERS):
        assert fatal_rule_ids(report) == set(), [f for f in report.findings if f.severity == "fatal"]
    else:
        assert fatal_rule_ids(report) <= fatal_rule_ids(validator.validate(data))


# What a syntax cannot carry, so a re-import of the re-export differs from the import of the original. Each entry
# maps a document to what the other syntax makes of it:
#   * CII has one preceding invoice (InvoiceReferencedDocument, 0..1 in D16B), one buyer / payee / deliver-to
#     identifier (CII-SR-449..451), lists party ids without a scheme before those with one, has no price discount
#     without a gross price, and no VAT accounting currency equal to the invoice currency (BR-53);
#   * UBL has one buyer identifier (UBL-SR-16), states a discount with every gross price (cac:AllowanceCharge needs
#     cbc:Amount), gives a supporting document no type code (read back as 916), and carries the remittance
#     information (BT-83) only inside a payment means.


def lossy(doc: InvoiceDocument, syntax: str) -> InvoiceDocument:
    def first_id(party: Any) -> Any:
        if party is None or not party.identifiers:
            return party
        return dataclasses.replace(party, identifiers=party.identifiers[:1])

    doc = dataclasses.replace(doc, buyer=first_id(doc.buyer))
    if syntax == "cii":
        identifiers = doc.seller.identifiers
        if identifiers:
            ordered = tuple(i for i in identifiers if i.scheme is None) + tuple(i for i in identifiers if i.scheme)
            doc = dataclasses.replace(doc, seller=dataclasses.replace(doc.seller, identifiers=ordered))
        return dataclasses.replace(
            doc,
            preceding_invoices=(doc.preceding_invoices or ())[:1],
            payee=first_id(doc.payee),
            ship_to=first_id(doc.ship_to),
            tax_currency=None if doc.tax_currency == doc.currency else doc.tax_currency,
            lines=tuple(
                dataclasses.replace(line, price_discount=None) if line.gross_price is None else line
                for line in doc.lines
            ),
        )
    documents = tuple(dataclasses.replace(d, type_code=d.type_code or "916") for d in doc.supporting_documents or ())
    return dataclasses.replace(
        doc,
        supporting_documents=documents or doc.supporting_documents,
        payment_reference=doc.payment_reference if doc.payment_means else None,
        lines=tuple(
            dataclasses.replace(line, price_discount=line.price_discount or Decimal(0))
            if line.gross_price is not None
            else line
            for line in doc.lines
        ),
    )


@pytest.mark.parametrize("syntax", list(EXPORTS))
@pytest.mark.parametrize("row", example_rows())
def test_reexport_reads_back_as_the_same_document(row: dict[str, str], syntax: str, examples_dir: Path) -> None:
    """Import, export, import again: every term the model holds survives, except what the syntax cannot carry.

    Amounts compare by value (2337.5 is 2337.50: the export writes the currency's decimals). The specification
    identifier and the source syntax are the export's own (tested below)."""
    doc = parse_einvoice(read_example(examples_dir, row)).document
    again = parse_einvoice(EXPORTS[syntax](doc)).document
    expected = lossy(doc, syntax)
    assert dataclasses.replace(again, specification_id=None, source_syntax=None) == dataclasses.replace(
        expected, specification_id=None, source_syntax=None
    )


@pytest.mark.parametrize("row", example_rows())
def test_same_syntax_reexport_keeps_the_amounts_verbatim(row: dict[str, str], examples_dir: Path) -> None:
    """Re-exported in its own syntax, every amount is the original's to the digit once padded to the currency's
    decimals: nothing is recomputed or rounded on the way."""
    data = read_example(examples_dir, row)
    parsed = parse_einvoice(data)
    exported = EXPORTS[parsed.syntax](parsed.document)
    original_root, exported_root = parse_xml(data), parse_xml(exported)
    path = (
        "//cac:LegalMonetaryTotal/* | //cac:TaxTotal/cbc:TaxAmount | //cac:TaxSubtotal/cbc:*"
        " | //cbc:LineExtensionAmount"
        if parsed.syntax == "ubl"
        else "//ram:SpecifiedTradeSettlementHeaderMonetarySummation/* | //ram:ApplicableTradeTax/ram:CalculatedAmount"
        " | //ram:ApplicableTradeTax/ram:BasisAmount | //ram:LineTotalAmount"
    )

    def amounts(root: Any) -> list[tuple[str, Decimal]]:
        found = [(node.tag, Decimal(node.text)) for node in root.xpath(path, namespaces=NS)]
        # An absent total reads as zero in the model and is written only when it is not zero.
        return sorted(item for item in found if item[1] != 0)

    assert amounts(exported_root) == amounts(original_root)


# --------------------------------------------------------------------------- specification identifiers


def exported_ids(doc: InvoiceDocument) -> tuple[str | None, str | None, str | None, str | None]:
    ubl, cii = parse_xml(to_ubl(doc)), parse_xml(to_cii(doc))
    return (
        ubl.findtext("cbc:CustomizationID", namespaces=NS),
        ubl.findtext("cbc:ProfileID", namespaces=NS),
        cii.findtext(
            "rsm:ExchangedDocumentContext/ram:GuidelineSpecifiedDocumentContextParameter/ram:ID", namespaces=NS
        ),
        cii.findtext(
            "rsm:ExchangedDocumentContext/ram:BusinessProcessSpecifiedDocumentContextParameter/ram:ID", namespaces=NS
        ),
    )


@pytest.mark.parametrize(
    ("example", "expected"),
    [
        # Peppol UBL: kept in UBL; the CII copy never travels through Peppol and claims EN 16931.
        (UBL_INVOICE, (CUSTOMIZATION_ID, PROFILE_ID, GUIDELINE_ID, PROFILE_ID)),
        # Plain EN 16931 without a business process: kept everywhere, and no ProfileID is invented.
        ("ubl/en16931__ubl-tc434-example1.xml", (EN16931_ID, None, EN16931_ID, None)),
        ("cii/en16931__CII_example1.xml", (EN16931_ID, None, EN16931_ID, None)),
        # Factur-X (CII-only) and ZUGFeRD 1 identifiers: kept in CII, EN 16931 in UBL.
        (
            "cii/mustang__Factur-X_basic.xml",
            (EN16931_ID, None, "urn:cen.eu:en16931:2017#compliant#urn:factur-x.eu:1p0:basic", None),
        ),
        (
            "cii/en16931__CII-BR-CO-10-RoundingIssue.xml",
            (EN16931_ID, None, "urn:ferd:CrossIndustryDocument:invoice:1p0:comfort", None),
        ),
    ],
    ids=["peppol-ubl", "en16931-ubl", "en16931-cii", "factur-x-basic", "zugferd-1"],
)
def test_specification_identifier_on_reexport(
    example: str, expected: tuple[str | None, ...], examples_dir: Path
) -> None:
    assert exported_ids(parse_einvoice((examples_dir / example).read_bytes()).document) == expected


def test_a_ubl_profile_other_than_billing_is_kept(examples_dir: Path) -> None:
    doc = parse_einvoice((examples_dir / "ubl/peppol__base-example_profile02.xml").read_bytes()).document
    assert exported_ids(doc)[1] == exported_ids(doc)[3] == "urn:peppol:bis:billing_with_response"


# ----------------------------------------------------------------------------- terms written on re-export


def test_notes_with_subject_codes_travel_to_both_syntaxes(examples_dir: Path, validator: Validator) -> None:
    one_note = parse_einvoice(with_notes(examples_dir, b"#AAI#Handle with care")).document
    assert fatal_rule_ids(validator.validate(to_ubl(one_note))) == set()  # Peppol allows one note (R002)
    assert fatal_rule_ids(validator.validate(to_cii(one_note))) == set()
    doc = parse_einvoice(with_notes(examples_dir, b"#AAI#Handle with care", b"Second note")).document
    ubl = to_ubl(doc)
    assert parse_xml(ubl).xpath("cbc:Note/text()", namespaces=NS) == ["#AAI#Handle with care", "Second note"]
    cii = parse_xml(to_cii(doc))
    notes = cii.xpath("rsm:ExchangedDocument/ram:IncludedNote", namespaces=NS)
    assert [
        (n.findtext("ram:Content", namespaces=NS), n.findtext("ram:SubjectCode", namespaces=NS)) for n in notes
    ] == [
        ("Handle with care", "AAI"),
        ("Second note", None),
    ]


def test_a_corrective_invoice_stays_384_with_its_reference(examples_dir: Path, validator: Validator) -> None:
    doc = parse_einvoice(with_preceding_invoice(examples_dir)).document
    ubl, cii = to_ubl(doc), to_cii(doc)
    assert parse_xml(ubl).findtext("cbc:InvoiceTypeCode", namespaces=NS) == "384"
    reference = parse_xml(ubl).find("cac:BillingReference/cac:InvoiceDocumentReference", namespaces=NS)
    assert (reference.findtext("cbc:ID", namespaces=NS), reference.findtext("cbc:IssueDate", namespaces=NS)) == (
        "RE-2024-17",
        "2024-01-05",
    )
    assert parse_xml(cii).findtext("rsm:ExchangedDocument/ram:TypeCode", namespaces=NS) == "384"
    for data in (ubl, cii):
        assert fatal_rule_ids(validator.validate(data)) == set()


def test_vat_accounting_currency_rounding_and_direct_debit_are_written(examples_dir: Path) -> None:
    doc = parse_einvoice((examples_dir / "ubl/en16931__ubl-tc434-example5.xml").read_bytes()).document
    doc = dataclasses.replace(doc, rounding_amount=Decimal("0.01"), amount_due=doc.amount_due + Decimal("0.01"))
    ubl = parse_xml(to_ubl(doc))
    assert ubl.xpath("cac:TaxTotal[not(cac:TaxSubtotal)]/cbc:TaxAmount/@currencyID", namespaces=NS) == ["EUR"]
    assert ubl.findtext("cac:LegalMonetaryTotal/cbc:PayableRoundingAmount", namespaces=NS) == "0.01"
    mandate = ubl.find("cac:PaymentMeans/cac:PaymentMandate", namespaces=NS)
    assert (
        mandate.findtext("cbc:ID", namespaces=NS),
        mandate.findtext("cac:PayerFinancialAccount/cbc:ID", namespaces=NS),
    ) == (
        "123456",
        "DK1212341234123412",
    )
    cii = parse_xml(to_cii(doc))
    summation = "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement/"
    assert cii.xpath(summation + "*/ram:TaxTotalAmount/@currencyID", namespaces=NS) == ["DKK", "EUR"]
    assert cii.findtext(summation + "*/ram:RoundingAmount", namespaces=NS) == "0.01"
    assert (
        cii.findtext(summation + "ram:SpecifiedTradePaymentTerms/ram:DirectDebitMandateID", namespaces=NS) == "123456"
    )
    assert cii.findtext(summation + "ram:TaxCurrencyCode", namespaces=NS) == "EUR"


def test_imported_document_gets_no_invented_buyer_reference_or_payment_means(examples_dir: Path) -> None:
    """A document made here falls back to its number as buyer reference and derives a payment means; an imported
    one is written as it came, without either."""
    data = (examples_dir / UBL_INVOICE).read_bytes()
    data = edit(data, b"<cbc:BuyerReference>0150abc</cbc:BuyerReference>", b"")
    doc = parse_einvoice(data).document
    doc = dataclasses.replace(doc, order_reference=None, payment_means=())
    root = parse_xml(to_ubl(doc))
    assert root.find("cbc:BuyerReference", namespaces=NS) is None
    assert root.find("cac:PaymentMeans", namespaces=NS) is None
    made_here = dataclasses.replace(doc, source_syntax=None, specification_id=None, payment_means=None)
    root = parse_xml(to_ubl(made_here))
    assert root.findtext("cbc:BuyerReference", namespaces=NS) == doc.number
    assert root.findtext("cac:PaymentMeans/cbc:PaymentMeansCode", namespaces=NS) == doc.payment_means_code == "30"


# Amounts as the database holds them (Amount: 20 digits, 4 decimals); any text, codes and optional terms.
STORED_AMOUNTS = st.decimals(min_value=-(10**15), max_value=10**15, places=4, allow_nan=False, allow_infinity=False)


def import_or_refusal(data: bytes) -> InvoiceDocument | EInvoiceUnmappable:
    try:
        return parse_einvoice(data).document
    except EInvoiceUnmappable as error:
        return error


@settings(max_examples=60, deadline=None)
@given(doc=document_strategy(InvoiceDocument, STORED_AMOUNTS))
def test_any_document_exports_well_formed_xml_that_imports_or_is_refused_by_term(doc: InvoiceDocument) -> None:
    """Whatever a document holds (blank names, control characters, every optional term set or not), both exports
    are well-formed XML, and importing them either gives the same number, lines and totals or is a 422 naming a
    business term: never a crash."""
    for export in EXPORTS.values():
        data = export(doc)
        parse_xml(data)
        result = import_or_refusal(data)
        if isinstance(result, EInvoiceUnmappable):
            assert result.details["term"] in TERMS
            assert result.details["path"].startswith("/")
            continue
        assert result.number == (clean_text(doc.number) or "").strip()
        assert len(result.lines) == len(doc.lines)
        assert (result.line_total, result.gross_total, result.amount_due) == (
            doc.line_total,
            doc.gross_total,
            doc.amount_due,
        )
