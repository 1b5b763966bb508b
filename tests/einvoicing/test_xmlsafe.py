"""Safe parsing: hostile XML is refused with a 4xx and a stable code, and nothing is ever fetched."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from invoiceflow.core.errors import AppError
from invoiceflow.einvoicing.xmlsafe import DocumentKind, document_kind, parse_xml
from tests.einvoicing.documents import (
    FIFTY_MB,
    HOSTILE,
    cii_invoice,
    external_dtd,
    parameter_entity,
    ubl_invoice,
    xxe_http,
)


def refused(data: bytes, **limits: int) -> AppError:
    with pytest.raises(AppError) as info:
        document_kind(parse_xml(data, **limits))
    return info.value


@pytest.mark.parametrize(("name", "data", "status", "code"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_input_is_refused_with_a_stable_code(name: str, data: bytes, status: int, code: str) -> None:
    error = refused(data)
    assert (error.status_code, error.code) == (status, code), error.message
    assert error.message


def test_a_50_mb_document_is_refused_before_parsing() -> None:
    error = refused(FIFTY_MB)
    assert (error.status_code, error.code) == (413, "XML_TOO_LARGE")
    assert error.details["size"] == len(FIFTY_MB)


def test_size_limit_is_inclusive() -> None:
    data = b"<Invoice/>"
    assert parse_xml(data, max_bytes=len(data)).tag == "Invoice"
    assert refused(data, max_bytes=len(data) - 1).code == "XML_TOO_LARGE"


def test_depth_and_element_limits_are_configurable() -> None:
    nested = b"<a><b><c/></b></a>"
    assert parse_xml(nested, max_depth=3) is not None
    assert refused(nested, max_depth=2).code == "XML_TOO_DEEP"
    wide = b"<a>" + b"<b/>" * 100 + b"</a>"
    assert parse_xml(wide, max_elements=101) is not None
    error = refused(wide, max_elements=100)
    assert (error.status_code, error.code) == (400, "XML_TOO_MANY_ELEMENTS")


def test_depth_limit_must_stay_below_libxml2s_own() -> None:
    with pytest.raises(ValueError, match="max_depth"):
        parse_xml(b"<a/>", max_depth=256)


def test_malformed_reports_where() -> None:
    error = refused(b"<Invoice>\n  <ID>1</Id>\n</Invoice>")
    assert error.code == "XML_MALFORMED"
    assert error.details["line"] == 2
    assert "ID" in error.details["reason"]


def test_a_doctype_is_refused_even_without_entities() -> None:
    error = refused(b"<!DOCTYPE Invoice><Invoice/>")
    assert error.code == "XML_FORBIDDEN_CONSTRUCT"
    assert error.details["construct"] == "DOCTYPE"


class _CountingHandler(BaseHTTPRequestHandler):
    hits: list[str]

    def do_GET(self) -> None:
        self.hits.append(self.path)
        body = b'<!ENTITY leak "secret">'
        self.send_response(200)
        self.send_header("Content-Type", "application/xml-dtd")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def dtd_server() -> Iterator[tuple[str, list[str]]]:
    """A real local HTTP server that would serve DTDs and entities, and records every request."""
    hits: list[str] = []
    handler = type("Handler", (_CountingHandler,), {"hits": hits})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", hits
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.mark.parametrize("build", [xxe_http, external_dtd, parameter_entity])
def test_nothing_is_fetched_for_external_entities_or_dtds(
    build: Callable[[str], bytes], dtd_server: tuple[str, list[str]]
) -> None:
    base, hits = dtd_server
    error = refused(build(f"{base}/evil.dtd"))
    assert error.code == "XML_FORBIDDEN_CONSTRUCT"
    assert hits == []


def test_the_examples_parse_and_are_recognised(examples_dir: Path) -> None:
    assert document_kind(parse_xml(ubl_invoice(examples_dir))) == DocumentKind("Invoice", "ubl")
    assert document_kind(parse_xml(cii_invoice(examples_dir))) == DocumentKind("CrossIndustryInvoice", "cii")
    credit_note = (examples_dir / "ubl" / "en16931__ubl-tc434-creditnote1.xml").read_bytes()
    assert document_kind(parse_xml(credit_note)) == DocumentKind("CreditNote", "ubl")


def test_declared_encodings_are_honoured() -> None:
    data = '<?xml version="1.0" encoding="ISO-8859-1"?><Note>Müller</Note>'.encode("iso-8859-1")
    assert parse_xml(data).text == "Müller"
    data16 = '<?xml version="1.0" encoding="UTF-16"?><Note>Müller €</Note>'.encode("utf-16")
    assert parse_xml(data16).text == "Müller €"


def test_an_invoice_in_the_wrong_namespace_is_unsupported() -> None:
    error = refused(b"<Invoice><ID>1</ID></Invoice>")
    assert (error.status_code, error.code) == (422, "UNSUPPORTED_DOCUMENT")
    assert error.details["root_element"] == "Invoice"
    assert error.details["namespace"] is None


@pytest.mark.parametrize("padding", [0, 300 * 1024], ids=["parsed-then-measured", "measured-while-streaming"])
def test_small_and_large_documents_get_the_same_verdicts(padding: int) -> None:
    """Up to 256 KiB the tree is measured after one parse, above it while streaming: same limits, same codes."""
    pad = b"<!--" + b"x" * padding + b"-->" if padding else b""
    deep = pad + b"<a>" * 150 + b"</a>" * 150
    assert refused(deep).code == "XML_TOO_DEEP"
    assert refused(pad + b"<a>" * 300 + b"</a>" * 300).code == "XML_TOO_DEEP"  # beyond libxml2's own cap
    wide = pad + b"<a>" + b"<b/>" * 100 + b"</a>"
    assert refused(wide, max_elements=100).code == "XML_TOO_MANY_ELEMENTS"
    assert parse_xml(wide, max_elements=101) is not None
    assert refused(b"<!DOCTYPE a>" + pad + b"<a/>").code == "XML_FORBIDDEN_CONSTRUCT"
    assert refused(pad + b"<a><b></a>").code == "XML_MALFORMED"
