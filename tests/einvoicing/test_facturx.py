"""GET /invoices/{id}/facturx: the invoice PDF as PDF/A-3b with its CII embedded as factur-x.xml, checked
with the official rules; the PDF/A structure read back with pypdf and pikepdf's PDF/A validator."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import BytesIO
from typing import Any

import pikepdf
import pikepdf.pdfa
import pytest
from fastapi.testclient import TestClient
from lxml import etree
from PIL import ImageCms
from pypdf import PdfReader, PdfWriter
from pypdf.generic import IndirectObject

from invoiceflow.documents.pdf import render_pdf
from invoiceflow.einvoicing.cii import to_cii
from invoiceflow.einvoicing.facturx import FacturXError, embed_facturx, srgb_icc_profile, xmp_metadata
from invoiceflow.einvoicing.ubl import to_ubl
from invoiceflow.einvoicing.validator import Validator
from tests.documents.helpers import make_document
from tests.einvoicing.test_export_api import BUYER, SELLER
from tests.factories import Account, assert_error, create_client, create_invoice, register
from tests.invoices.test_credit_notes import created, credit, set_status

# Three VAT rates, one with a quantity that makes the line amount round.
ITEMS = [
    {"description": "Consulting", "quantity": "7.5", "unit_code": "HUR", "unit_price": "125.00", "vat_rate": "21"},
    {"description": "Books", "quantity": "3", "unit_price": "19.99", "vat_rate": "9"},
    {"description": "Catering", "quantity": "12", "unit_price": "8.333", "vat_rate": "6"},
]
XMP_NS = {
    "x": "adobe:ns:meta/",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "dc": "http://purl.org/dc/elements/1.1/",
    "xmp": "http://ns.adobe.com/xap/1.0/",
    "pdf": "http://ns.adobe.com/pdf/1.3/",
    "pdfaid": "http://www.aiim.org/pdfa/ns/id/",
    "pdfaExtension": "http://www.aiim.org/pdfa/ns/extension/",
    "pdfaSchema": "http://www.aiim.org/pdfa/ns/schema#",
    "pdfaProperty": "http://www.aiim.org/pdfa/ns/property#",
    "fx": "urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#",
}
RSM = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
# pikepdf's PDF/A validator approves only what it knows, and it knows no XMP extension schema (its
# xmp_properties.json allows the predefined namespaces only): it denies the Factur-X extension schema that
# ISO 19005-3 6.6.2.3.2 permits and Factur-X requires. Those denials, and nothing else, are expected.
EXTENSION_SCHEMA_GAP = re.compile(
    r"XMP (namespace (pdfaExtension|pdfaSchema|pdfaProperty|fx)=\S+|property (pdfaExtension:schemas|fx:\w+)) "
    r"is not permitted"
)


def _seller_account(http: TestClient, **seller: Any) -> Account:
    account = register(http)
    r = http.patch("/api/v1/organization", json={**SELLER, **seller}, headers=account.headers)
    assert r.status_code == 200, r.text
    return account


@pytest.fixture
def issued(einvoice_client: TestClient) -> tuple[Account, dict[str, Any]]:
    account = _seller_account(einvoice_client)
    buyer = create_client(einvoice_client, account, **{**BUYER, "language": "en"})
    invoice = create_invoice(einvoice_client, account, buyer["id"], items=ITEMS, buyer_reference="PO-778")
    return account, invoice


def _get(http: TestClient, account: Account, invoice_id: str, fmt: str) -> bytes:
    r = http.get(f"/api/v1/invoices/{invoice_id}/{fmt}", headers=account.headers)
    assert r.status_code == 200, r.text
    return r.content


def _embedded_xml(pdf: bytes) -> bytes:
    attachments = PdfReader(BytesIO(pdf)).attachments
    assert list(attachments) == ["factur-x.xml"]
    [xml] = attachments["factur-x.xml"]
    return xml


def _pdftotext(pdf: bytes) -> str:
    exe = shutil.which("pdftotext")
    assert exe is not None, "poppler-utils' pdftotext is required"
    return subprocess.run([exe, "-layout", "-", "-"], input=pdf, capture_output=True, check=True).stdout.decode()


def _shows(text: str, label: str, amount: str) -> bool:
    """Whether a line of `pdftotext -layout` output ends with `label`, spaces and the amount (the label
    starting a column: at the line's start or after two spaces)."""
    return re.search(rf"(^|\s\s){re.escape(label)} +{re.escape(amount)}$", text, re.MULTILINE) is not None


def _money_en(amount: str) -> str:
    return f"€{Decimal(amount):,.2f}"  # Babel's English format for EUR


def _xmp(reader: PdfReader) -> Any:
    stream = reader.trailer["/Root"]["/Metadata"].get_object()
    assert (stream["/Type"], stream["/Subtype"]) == ("/Metadata", "/XML")
    assert "/Filter" not in stream  # kept readable for PDF/A validators and search tools
    data = stream.get_data()
    assert data.startswith('<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'.encode())
    assert data.endswith(b'<?xpacket end="w"?>')
    return etree.fromstring(data)


def _xmp_value(xmp: Any, path: str) -> str:
    values = xmp.xpath(f"//{path}/text()", namespaces=XMP_NS)
    assert len(values) == 1, (path, values)
    return str(values[0])


def _pdf_date(value: str) -> datetime:
    return datetime.strptime(value, "D:%Y%m%d%H%M%S+00'00'").replace(tzinfo=UTC)


def test_the_facturx_pdf_embeds_the_cii_that_passes_the_rules_and_shows_its_totals(
    einvoice_client: TestClient, issued: Any, validator: Validator
) -> None:
    account, invoice = issued
    r = einvoice_client.get(f"/api/v1/invoices/{invoice['id']}/facturx", headers=account.headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/pdf"
    assert r.headers["x-einvoice-validation"] == "passed"
    assert f"{invoice['invoice_number']}-facturx.pdf" in r.headers["content-disposition"]
    assert r.headers["content-disposition"].startswith("attachment")

    # The embedded XML is GET /cii's, byte for byte, and passes XSD, EN 16931 and Factur-X EN16931.
    xml = _embedded_xml(r.content)
    assert xml == _get(einvoice_client, account, invoice["id"], "cii")
    report = validator.validate(xml, facturx=True)
    assert report.layers_run == ("xsd", "en16931", "facturx")
    assert [f.as_dict() for f in report.findings if f.severity == "fatal"] == []
    root = etree.fromstring(xml)
    assert root.findtext(f"{{{RSM}}}ExchangedDocument/{{{RAM}}}ID") == invoice["invoice_number"]

    # What the PDF shows is what the API says, on the lines that say it.
    assert len({item["vat_rate"] for item in ITEMS}) == 3
    text = _pdftotext(r.content)
    assert invoice["invoice_number"] in text
    assert _shows(text, "Total excl. VAT", _money_en(invoice["net_amount"]))
    assert _shows(text, "VAT", _money_en(invoice["vat_amount"]))
    assert _shows(text, "Total incl. VAT", _money_en(invoice["total_amount"]))
    assert _shows(text, "Amount due", _money_en(invoice["total_amount"]))
    for amount in (invoice["net_amount"], invoice["vat_amount"], invoice["total_amount"]):
        assert f">{amount}<" in xml.decode()


def test_the_facturx_pdf_is_pdfa_3b(einvoice_client: TestClient, issued: Any) -> None:
    account, invoice = issued
    before = datetime.now(UTC).replace(microsecond=0)
    pdf = _get(einvoice_client, account, invoice["id"], "facturx")
    xml = _embedded_xml(pdf)
    reader = PdfReader(BytesIO(pdf))
    catalog = reader.trailer["/Root"]

    # File structure (ISO 19005-3 6.1): a binary comment after the header, an /ID, no encryption.
    assert re.match(rb"%PDF-1\.7\r?\n%[\x80-\xff]{4}", pdf)
    assert not reader.is_encrypted
    assert "/Encrypt" not in reader.trailer
    first, second = reader.trailer["/ID"]
    assert len(first.original_bytes) == len(second.original_bytes) == 16

    # XMP: PDF/A identification, the Factur-X extension schema and its values.
    xmp = _xmp(reader)
    assert (_xmp_value(xmp, "pdfaid:part"), _xmp_value(xmp, "pdfaid:conformance")) == ("3", "B")
    assert xmp.xpath("//rdf:Description[not(@rdf:about)]", namespaces=XMP_NS) == []
    fx = {name: _xmp_value(xmp, f"fx:{name}") for name in ("DocumentType", "DocumentFileName", "Version")}
    assert fx == {"DocumentType": "INVOICE", "DocumentFileName": "factur-x.xml", "Version": "1.0"}
    assert _xmp_value(xmp, "fx:ConformanceLevel") == "EN 16931"
    [schema] = xmp.xpath("//pdfaExtension:schemas/rdf:Bag/rdf:li", namespaces=XMP_NS)
    assert schema.findtext("pdfaSchema:namespaceURI", namespaces=XMP_NS) == XMP_NS["fx"]
    assert schema.findtext("pdfaSchema:prefix", namespaces=XMP_NS) == "fx"
    declared = schema.xpath("pdfaSchema:property/rdf:Seq/rdf:li/pdfaProperty:name/text()", namespaces=XMP_NS)
    assert sorted(declared) == ["ConformanceLevel", "DocumentFileName", "DocumentType", "Version"]

    # Info and XMP say the same (6.6.2.3.1), and nothing else is in Info.
    info = reader.trailer["/Info"].get_object()
    assert set(info) == {"/Title", "/Author", "/Subject", "/Creator", "/Producer", "/CreationDate", "/ModDate"}
    assert info["/Title"] == _xmp_value(xmp, "dc:title/rdf:Alt/rdf:li") == f"Invoice {invoice['invoice_number']}"
    assert info["/Author"] == _xmp_value(xmp, "dc:creator/rdf:Seq/rdf:li") == SELLER["legal_name"]
    assert info["/Subject"] == _xmp_value(xmp, "dc:description/rdf:Alt/rdf:li")
    assert info["/Creator"] == _xmp_value(xmp, "xmp:CreatorTool")
    assert info["/Producer"] == _xmp_value(xmp, "pdf:Producer")
    created_at = _pdf_date(info["/CreationDate"])
    assert created_at == datetime.fromisoformat(_xmp_value(xmp, "xmp:CreateDate"))
    assert _pdf_date(info["/ModDate"]) == datetime.fromisoformat(_xmp_value(xmp, "xmp:ModifyDate"))
    assert before <= created_at <= datetime.now(UTC)

    # Output intent: sRGB, an ICC display profile with three components, version 4 at most (6.2.3).
    [intent] = catalog["/OutputIntents"]
    intent = intent.get_object()
    assert (intent["/Type"], intent["/S"]) == ("/OutputIntent", "/GTS_PDFA1")
    assert intent["/OutputConditionIdentifier"] == "sRGB IEC61966-2.1"
    profile = intent.raw_get("/DestOutputProfile")
    assert isinstance(profile, IndirectObject)  # a stream, so an indirect object
    assert profile.get_object()["/N"] == 3
    icc = profile.get_object().get_data()
    assert icc == srgb_icc_profile()
    assert (icc[12:16], icc[16:20], icc[36:40]) == (b"mntr", b"RGB ", b"acsp")
    assert icc[8] <= 4
    assert int.from_bytes(icc[0:4], "big") == len(icc)

    # The embedded file (6.8): an associated file of the document, named factur-x.xml, MIME type, dates.
    [filespec_ref] = catalog["/AF"]
    filespec = filespec_ref.get_object()
    assert (filespec["/Type"], filespec["/AFRelationship"]) == ("/Filespec", "/Data")
    assert filespec["/F"] == filespec["/UF"] == "factur-x.xml"
    names = catalog["/Names"]["/EmbeddedFiles"]["/Names"]
    assert [names[0], names[1].idnum] == ["factur-x.xml", filespec_ref.idnum]
    stream = filespec["/EF"]["/F"].get_object()
    assert (stream["/Type"], stream["/Subtype"]) == ("/EmbeddedFile", "/text/xml")
    assert b"/Subtype /text#2Fxml" in pdf  # the slash is escaped in the name
    assert stream["/Params"]["/Size"] == len(xml) == len(stream.get_data())
    assert _pdf_date(stream["/Params"]["/ModDate"]) == created_at

    # Fonts are all embedded; nothing interactive or executable.
    fonts = [font.get_object() for page in reader.pages for font in page["/Resources"]["/Font"].values()]
    assert fonts
    for font in fonts:
        descriptor = font["/FontDescriptor"]
        assert "/FontFile2" in descriptor or "/FontFile3" in descriptor, font["/BaseFont"]
    assert not {"/OpenAction", "/AA", "/AcroForm"} & set(catalog)
    assert "/JavaScript" not in catalog["/Names"]
    assert all("/Annots" not in page and "/AA" not in page for page in reader.pages)

    # pikepdf reads the PDF/A identification as 3B, and its validator finds nothing but its own gap.
    with pikepdf.open(BytesIO(pdf)) as opened:
        assert opened.open_metadata().pdfa_status == "3B"
    findings = pikepdf.pdfa.validate_written(BytesIO(pdf), "3b").findings
    assert [str(f) for f in findings if not EXTENSION_SCHEMA_GAP.search(f.message)] == []
    assert findings  # the day pikepdf learns extension schemas, this test should assert a plain pass


def test_a_credit_notes_facturx_is_a_credit_note(einvoice_client: TestClient, validator: Validator) -> None:
    http = einvoice_client
    account = _seller_account(http)
    buyer = create_client(http, account, **BUYER)  # a French reader: the PDF is in French
    invoice = set_status(http, account, create_invoice(http, account, buyer["id"], items=ITEMS)["id"], "sent")
    note = created(credit(http, account, invoice["id"], {"lines": [{"position": 1, "quantity": "2"}]}))

    pdf = _get(http, account, note["id"], "facturx")
    xml = _embedded_xml(pdf)
    assert xml == _get(http, account, note["id"], "cii")
    report = validator.validate(xml, facturx=True)
    assert report.valid, [f.as_dict() for f in report.findings]
    assert "facturx" in report.layers_run
    root = etree.fromstring(xml)
    assert root.findtext(f"{{{RSM}}}ExchangedDocument/{{{RAM}}}TypeCode") == "381"
    text = _pdftotext(pdf)
    assert "Avoir" in text
    assert note["invoice_number"] in text
    assert invoice["invoice_number"] in text  # the credited invoice
    assert PdfReader(BytesIO(pdf)).metadata.title == f"Avoir {note['invoice_number']}"


def test_a_seller_without_vat_id_gets_no_facturx(einvoice_client: TestClient) -> None:
    """EN 16931 BR-S-02: standard-rated lines need the seller's VAT identifier (or a tax registration). The
    Factur-X EN16931 schematron carries the EN 16931 rules too, so both layers name it."""
    account = _seller_account(einvoice_client, vat_id=None)
    buyer = create_client(einvoice_client, account, **BUYER)
    invoice = create_invoice(einvoice_client, account, buyer["id"], items=ITEMS)
    r = einvoice_client.get(f"/api/v1/invoices/{invoice['id']}/facturx", headers=account.headers)
    error = assert_error(r, 422, "EINVOICE_INVALID")
    rules = {(f["layer"], f["rule_id"]) for f in error["details"]["findings"]}
    assert rules == {("en16931", "BR-S-02"), ("facturx", "BR-S-02")}
    assert all(f["severity"] == "fatal" for f in error["details"]["findings"])
    layers = {entry["layer"]: entry["status"] for entry in error["details"]["layers"]}
    assert layers == {"xsd": "passed", "en16931": "failed", "facturx": "failed", "peppol": "skipped"}


def test_the_four_cases(einvoice_client: TestClient, issued: Any) -> None:
    account, invoice = issued
    url = f"/api/v1/invoices/{invoice['id']}/facturx"
    assert_error(einvoice_client.get(url), 401)
    stranger = register(einvoice_client, org="Stranger Ltd")
    assert_error(einvoice_client.get(url, headers=stranger.headers), 404)
    assert_error(einvoice_client.get("/api/v1/invoices/not-a-uuid/facturx", headers=account.headers), 422)
    assert _get(einvoice_client, account, invoice["id"], "facturx").startswith(b"%PDF-1.7")


def test_without_rules_the_facturx_says_it_was_not_checked(client: TestClient) -> None:
    account = register(client)
    buyer = create_client(client, account)
    invoice = create_invoice(client, account, buyer["id"])
    r = client.get(f"/api/v1/invoices/{invoice['id']}/facturx", headers=account.headers)
    assert r.status_code == 200, r.text
    assert r.headers["x-einvoice-validation"].startswith("skipped")
    assert invoice["invoice_number"].encode() in _embedded_xml(r.content)


# --- embed_facturx on its own ----------------------------------------------------------------------


def test_equal_inputs_give_equal_bytes_and_the_time_is_the_callers() -> None:
    doc = make_document()
    xml = to_cii(doc)
    pdf = render_pdf(doc)
    moment = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    one = embed_facturx(pdf, xml, created_at=moment)
    assert one == embed_facturx(pdf, xml, created_at=moment)
    later = embed_facturx(pdf, xml, created_at=moment + timedelta(hours=1))
    assert later != one
    readers = [PdfReader(BytesIO(data)) for data in (pdf, one, later)]
    assert readers[1].metadata["/CreationDate"] == "D:20260301093000+00'00'"
    # The document keeps its identifier; each version gets its own second half.
    ids = [[value.original_bytes for value in reader.trailer["/ID"]] for reader in readers]
    assert ids[0][0] == ids[1][0] == ids[2][0]
    assert len({ids[0][1], ids[1][1], ids[2][1]}) == 3
    # Page content is the rendered PDF's, unchanged.
    contents = [[page.get_contents().get_data() for page in reader.pages] for reader in readers[:2]]
    assert contents[0] == contents[1]


def test_only_factur_x_xml_and_plain_pdfs_are_accepted() -> None:
    doc = make_document()
    pdf = render_pdf(doc)
    moment = datetime(2026, 3, 1, tzinfo=UTC)
    with pytest.raises(FacturXError, match="not a CII invoice"):
        embed_facturx(pdf, to_ubl(doc), created_at=moment)
    with pytest.raises(ValueError, match="timezone-aware"):
        embed_facturx(pdf, to_cii(doc), created_at=datetime(2026, 3, 1))
    writer = PdfWriter(clone_from=PdfReader(BytesIO(pdf)))
    writer.encrypt("secret")
    encrypted = BytesIO()
    writer.write(encrypted)
    with pytest.raises(FacturXError, match="encrypted"):
        embed_facturx(encrypted.getvalue(), to_cii(doc), created_at=moment)


def test_the_icc_profile_is_generated_once_per_process() -> None:
    icc = srgb_icc_profile()
    assert icc is srgb_icc_profile()
    assert icc[24:36] == bytes.fromhex("07d0 0001 0001 0000 0000 0000")  # fixed: 2000-01-01 00:00:00
    # LittleCMS reads it back as its sRGB profile.
    profile = ImageCms.ImageCmsProfile(BytesIO(icc))
    assert ImageCms.getProfileDescription(profile).strip() == "sRGB built-in"
    assert (profile.profile.xcolor_space, profile.profile.device_class) == ("RGB ", "mntr")


def test_xmp_values_are_escaped() -> None:
    packet = xmp_metadata(
        title="Invoice <1> & co",
        author="Smith & Söhne\x01",
        subject="",
        creator="invoiceflow",
        created_at=datetime(2026, 3, 1, 12, tzinfo=UTC),
        conformance_level="EN 16931",
    )
    xmp = etree.fromstring(packet)
    assert _xmp_value(xmp, "dc:title/rdf:Alt/rdf:li") == "Invoice <1> & co"
    assert _xmp_value(xmp, "dc:creator/rdf:Seq/rdf:li") == "Smith & Söhne"
    assert xmp.xpath("//dc:description", namespaces=XMP_NS) == []
    assert _xmp_value(xmp, "xmp:CreateDate") == "2026-03-01T12:00:00+00:00"
