"""Documents for the e-invoicing tests: official examples edited to break one rule, and hostile XML.

Edits are plain byte replacements that must match exactly once, so a changed example fails loudly
instead of silently testing nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from invoiceflow.einvoicing.validator import Layer

UBL_INVOICE = "ubl/peppol__base-example.xml"
CII_INVOICE = "cii/en16931__CII_example1.xml"
PEPPOL_BILLING_3 = b"urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0"


def edit(data: bytes, old: bytes, new: bytes) -> bytes:
    assert data.count(old) == 1, f"expected exactly one {old!r} in the example"
    return data.replace(old, new)


def ubl_invoice(examples: Path) -> bytes:
    """A Peppol BIS 3 invoice that passes all three layers."""
    return (examples / UBL_INVOICE).read_bytes()


def cii_invoice(examples: Path) -> bytes:
    return (examples / CII_INVOICE).read_bytes()


@dataclass(frozen=True)
class Broken:
    """An example with one deliberate fault, and the fatal rule that must catch it."""

    name: str
    source: str
    old: bytes
    new: bytes
    rule_id: str
    layer: Layer

    def build(self, examples: Path) -> bytes:
        return edit((examples / self.source).read_bytes(), self.old, self.new)


BROKEN = [
    # EN 16931 BR-CO-15: total with VAT (BT-112) = total without VAT (BT-109) + VAT total (BT-110).
    Broken(
        "ubl-total-with-vat",
        UBL_INVOICE,
        b'<cbc:TaxInclusiveAmount currencyID="EUR">1656.25',
        b'<cbc:TaxInclusiveAmount currencyID="EUR">1700.00',
        "BR-CO-15",
        "en16931",
    ),
    # EN 16931 BR-07: an invoice shall contain the buyer name (BT-44).
    Broken(
        "ubl-buyer-name-removed",
        UBL_INVOICE,
        b"<cbc:RegistrationName>Buyer Official Name</cbc:RegistrationName>",
        b"",
        "BR-07",
        "en16931",
    ),
    Broken(
        "cii-grand-total",
        CII_INVOICE,
        b"<ram:GrandTotalAmount>250.33",
        b"<ram:GrandTotalAmount>260.00",
        "BR-CO-15",
        "en16931",
    ),
    # Peppol R007: the business process (ProfileID) must be an approved identifier.
    Broken(
        "ubl-peppol-profile",
        UBL_INVOICE,
        b"<cbc:ProfileID>urn:fdc:peppol.eu:2017:poacc:billing:01:1.0</cbc:ProfileID>",
        b"<cbc:ProfileID>urn:fdc:peppol.eu:2017:poacc:billing:1.0</cbc:ProfileID>",
        "PEPPOL-EN16931-R007",
        "peppol",
    ),
    # XSD: the issue date is not an xs:date.
    Broken(
        "ubl-xsd-date",
        UBL_INVOICE,
        b"<cbc:IssueDate>2017-11-13</cbc:IssueDate>",
        b"<cbc:IssueDate>13-11-2017</cbc:IssueDate>",
        "SCHEMAV_CVC_DATATYPE_VALID_1_2_1",
        "xsd",
    ),
]


def without_buyer_party(examples: Path) -> bytes:
    """The whole buyer (BG-7) removed: UBL's schema itself requires AccountingCustomerParty."""
    data = ubl_invoice(examples)
    start = data.index(b"<cac:AccountingCustomerParty>")
    end = data.index(b"</cac:AccountingCustomerParty>") + len(b"</cac:AccountingCustomerParty>")
    return data[:start] + data[end:]


# --- Hostile input ---------------------------------------------------------------------------------

XXE_FILE = (
    b'<?xml version="1.0"?>\n<!DOCTYPE Invoice [<!ENTITY e SYSTEM "file:///etc/passwd">]>\n<Invoice>&e;</Invoice>'
)
BILLION_LAUGHS = (
    b'<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
    + b"".join(
        b' <!ENTITY lol%d "%s">\n' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10) for i in range(1, 10)
    )
    + b"]>\n<lolz>&lol9;</lolz>"
)
DEEP = b"<a>" * 10_000 + b"</a>" * 10_000
GARBAGE = bytes(range(256)) * 16
FIFTY_MB = b"<Invoice>" + b"x" * (50 * 1024 * 1024) + b"</Invoice>"


def xxe_http(url: str) -> bytes:
    return b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "%s">]><x>&e;</x>' % url.encode()


def external_dtd(url: str) -> bytes:
    return b'<?xml version="1.0"?><!DOCTYPE Invoice SYSTEM "%s"><Invoice/>' % url.encode()


def parameter_entity(url: str) -> bytes:
    return b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY %% p SYSTEM "%s"> %%p;]><x/>' % url.encode()


# (name, document, HTTP status at the function level, code at the function level)
HOSTILE: list[tuple[str, bytes, int, str]] = [
    ("xxe", XXE_FILE, 400, "XML_FORBIDDEN_CONSTRUCT"),
    ("billion-laughs", BILLION_LAUGHS, 400, "XML_FORBIDDEN_CONSTRUCT"),
    ("external-dtd", external_dtd("http://127.0.0.1:9/invoice.dtd"), 400, "XML_FORBIDDEN_CONSTRUCT"),
    ("deep-nesting", DEEP, 400, "XML_TOO_DEEP"),
    ("garbage", GARBAGE, 400, "XML_MALFORMED"),
    ("empty", b"", 400, "XML_MALFORMED"),
    ("whitespace", b"  \n\t ", 400, "XML_MALFORMED"),
    ("not-xml", b"Invoice 42: 1656.25 EUR", 400, "XML_MALFORMED"),
    (
        "truncated",
        b'<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"><ID>1</ID>',
        400,
        "XML_MALFORMED",
    ),
    ("undefined-entity", b"<Invoice>&nope;</Invoice>", 400, "XML_MALFORMED"),
    (
        "not-an-invoice",
        b'<Order xmlns="urn:oasis:names:specification:ubl:schema:xsd:Order-2"/>',
        422,
        "UNSUPPORTED_DOCUMENT",
    ),
]
