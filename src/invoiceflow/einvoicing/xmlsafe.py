"""Parsing XML that strangers send us.

Invoices arrive from customers, partners and the open internet, so the parser assumes hostile input:

* no DOCTYPE at all. UBL and CII never use one, and refusing it outright closes XXE (external entities),
  entity expansion ("billion laughs") and external DTD fetches in one rule, instead of relying on each
  parser flag being right;
* the size is checked before any parsing work is done;
* nesting depth and element count are checked: while streaming for documents over 256 KiB, so a hostile
  one is stopped at the limit instead of after libxml2 has built it; after one parse for smaller ones,
  whose trees are bounded by their size;
* entities are never resolved, nothing is fetched from the network, no DTD is loaded and libxml2's
  "huge tree" safety limits stay on, even though the DOCTYPE rule should make all of that moot.

Every refusal is an `AppError` with a 4xx status and a stable code (see `einvoicing.errors`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Literal, NoReturn

from lxml import etree  # type: ignore[import-untyped]  # lxml ships no type information

from invoiceflow.einvoicing.errors import (
    UnsupportedDocument,
    XmlForbiddenConstruct,
    XmlMalformed,
    XmlTooDeep,
    XmlTooLarge,
    XmlTooManyElements,
)

DEFAULT_MAX_BYTES = 20 * 1024 * 1024
# Real UBL/CII invoices nest about 8 levels (signatures in UBL extensions reach ~20).
DEFAULT_MAX_DEPTH = 100
# A 10,000-line invoice has roughly 300,000 elements; beyond that memory, not the rules, is the issue.
DEFAULT_MAX_ELEMENTS = 500_000
# libxml2 refuses documents deeper than 256 levels on its own (without huge_tree) with a generic syntax
# error; our own limit must stay below it to report XML_TOO_DEEP.
_LIBXML2_MAX_DEPTH = 256
_FEED_CHUNK = 64 * 1024

UBL_INVOICE_NS = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
UBL_CREDIT_NOTE_NS = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"
CII_NS = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"

DocumentType = Literal["Invoice", "CreditNote", "CrossIndustryInvoice"]
Syntax = Literal["ubl", "cii"]


@dataclass(frozen=True)
class DocumentKind:
    document_type: DocumentType
    syntax: Syntax


_KINDS: dict[str, DocumentKind] = {
    f"{{{UBL_INVOICE_NS}}}Invoice": DocumentKind("Invoice", "ubl"),
    f"{{{UBL_CREDIT_NOTE_NS}}}CreditNote": DocumentKind("CreditNote", "ubl"),
    f"{{{CII_NS}}}CrossIndustryInvoice": DocumentKind("CrossIndustryInvoice", "cii"),
}


class _Refused(Exception):
    """Raised from inside the streaming pass to stop libxml2 at once; carries the error to report."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


class _LimitsTarget:
    """lxml parser target for the first, streaming pass: it builds nothing, it only counts.

    lxml calls these methods while libxml2 reads, and an exception raised here stops the parser
    immediately, so a hostile document costs no more than the prefix that broke a limit.
    """

    def __init__(self, max_depth: int, max_elements: int) -> None:
        self.max_depth = max_depth
        self.max_elements = max_elements
        self.depth = 0
        self.elements = 0

    def doctype(self, name: str | None, public_id: str | None, system_url: str | None) -> NoReturn:
        # Called when the DOCTYPE's name is read, before the internal subset (entity declarations).
        details: dict[str, Any] = {"construct": "DOCTYPE", "name": name}
        if system_url:
            details["system_id"] = system_url
        raise _Refused(
            XmlForbiddenConstruct(
                "XML with a DOCTYPE is not accepted: DTDs and entities are not used by UBL or CII", details=details
            )
        )

    def start(self, tag: str, attrib: Any, nsmap: Any = None) -> None:
        self.depth += 1
        self.elements += 1
        if self.depth > self.max_depth:
            raise _Refused(
                XmlTooDeep(f"XML nests deeper than {self.max_depth} levels", details={"max_depth": self.max_depth})
            )
        if self.elements > self.max_elements:
            raise _Refused(
                XmlTooManyElements(
                    f"XML has more than {self.max_elements} elements", details={"max_elements": self.max_elements}
                )
            )

    def end(self, tag: str) -> None:
        self.depth -= 1

    # No `data`, `comment` or `pi` methods: lxml then skips those events instead of calling into Python for
    # every text node (a third of this pass's time on a typical invoice).

    def close(self) -> None:
        return None


def _parser(**kw: Any) -> Any:
    """A new hardened parser. Parsers are cheap, and lxml advises against sharing one between threads."""
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        **kw,
    )


def _malformed(exc: etree.XMLSyntaxError) -> NoReturn:
    raise XmlMalformed(
        "The document is not well-formed XML",
        details={"reason": str(exc.msg), "line": exc.lineno, "column": exc.offset},
    ) from None


def _check_limits(data: bytes, max_depth: int, max_elements: int) -> None:
    parser = _parser(target=_LimitsTarget(max_depth, max_elements))
    try:
        for offset in range(0, len(data), _FEED_CHUNK):
            parser.feed(data[offset : offset + _FEED_CHUNK])
        parser.close()
    except _Refused as refused:
        raise refused.error from None
    except etree.XMLSyntaxError as exc:
        _malformed(exc)


# Up to this size a document is parsed once and measured afterwards: its tree is bounded by its size (a few
# MB of memory at most), entities are never resolved, and libxml2 stops nesting beyond 256 levels on its own.
# That saves the streaming pass, a third of the parse time of a typical invoice. Larger documents are
# measured while streaming first, so a hostile one is stopped at the limit rather than after it was built.
_MEASURE_AFTER_PARSE_UP_TO = 256 * 1024


@functools.lru_cache(maxsize=8)
def _deeper_than(max_depth: int) -> Any:
    """An XPath that is true when some element sits deeper than `max_depth` (the root is depth 1)."""
    return etree.XPath("boolean(" + "/*" * (max_depth + 1) + ")")


_COUNT_ELEMENTS = etree.XPath("count(//*)")


def _parse_then_measure(data: bytes, max_depth: int, max_elements: int) -> Any:
    try:
        root = etree.fromstring(data, parser=_parser())
    except etree.XMLSyntaxError as exc:
        # The streaming pass names what is wrong (a DOCTYPE, too deep, too many elements) exactly as it does
        # for large documents; when it finds nothing, the document is simply malformed.
        _check_limits(data, max_depth, max_elements)
        _malformed(exc)
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        details: dict[str, Any] = {"construct": "DOCTYPE", "name": docinfo.root_name}
        if docinfo.system_url:
            details["system_id"] = docinfo.system_url
        raise XmlForbiddenConstruct(
            "XML with a DOCTYPE is not accepted: DTDs and entities are not used by UBL or CII", details=details
        )
    if _deeper_than(max_depth)(root):
        raise XmlTooDeep(f"XML nests deeper than {max_depth} levels", details={"max_depth": max_depth})
    if _COUNT_ELEMENTS(root) > max_elements:
        raise XmlTooManyElements(f"XML has more than {max_elements} elements", details={"max_elements": max_elements})
    return root


def parse_xml(
    data: bytes,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_elements: int = DEFAULT_MAX_ELEMENTS,
) -> Any:
    """Parse untrusted bytes into an lxml element, or raise a 4xx `AppError`.

    Over 256 KiB, two passes: a streaming pass that only counts (and refuses a DOCTYPE before its internal
    subset is read), then the real parse, which keeps line numbers for XSD error reports; the first pass is
    what makes the limits hold. Up to 256 KiB, one parse (entities unresolved, no DTD, no network), then
    the same limits and the DOCTYPE rule are checked on the tree.
    """
    if not 1 <= max_depth < _LIBXML2_MAX_DEPTH:
        raise ValueError(f"max_depth must be between 1 and {_LIBXML2_MAX_DEPTH - 1}")
    if len(data) > max_bytes:
        raise XmlTooLarge(
            f"XML document exceeds {max_bytes} bytes", details={"max_bytes": max_bytes, "size": len(data)}
        )
    if not data.strip():
        raise XmlMalformed("The document is empty", details={"reason": "empty"})
    if len(data) <= _MEASURE_AFTER_PARSE_UP_TO:
        return _parse_then_measure(data, max_depth, max_elements)
    _check_limits(data, max_depth, max_elements)
    try:
        root = etree.fromstring(data, parser=_parser())
    except etree.XMLSyntaxError as exc:  # not expected after the first pass; kept as a safety net
        _malformed(exc)
    if root.getroottree().docinfo.doctype:  # the first pass already refuses these; belt and braces
        raise XmlForbiddenConstruct("XML with a DOCTYPE is not accepted", details={"construct": "DOCTYPE"})
    return root


def document_kind(root: Any) -> DocumentKind:
    """Which e-invoice this is, decided by the root element's namespace and name alone."""
    kind = _KINDS.get(root.tag) if isinstance(root.tag, str) else None
    if kind is None:
        qname = etree.QName(root)
        raise UnsupportedDocument(
            "Not a UBL 2.1 Invoice or CreditNote, nor a UN/CEFACT CII CrossIndustryInvoice",
            details={
                "root_element": qname.localname,
                "namespace": qname.namespace,
                "supported": sorted(_KINDS),
            },
        )
    return kind
