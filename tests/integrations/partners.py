"""Fake partner systems on real loopback sockets: a source system that lists invoices and an accounting API that
receives them, both speaking the reference protocol of DESIGN.md ("Integration HTTP protocol").

They stand in for other people's servers (STYLE.md: fake only the edges that belong to others, with a real local
server), so the connectors are exercised through httpx exactly as in production. Each runs a
`ThreadingHTTPServer` in a background thread on 127.0.0.1 with an ephemeral port, speaks HTTP/1.1 with
keep-alive and answers in one write with TCP_NODELAY, which serves several hundred requests per second.

Use them as context managers (tests and `bench/` scripts) or through the `source_server` /
`destination_server` fixtures below (import them into a conftest.py)::

    with SourceServer(example_documents(examples_dir), token="t") as source, DestinationServer() as dest:
        ...  # source.url, dest.url; dest.accepted, dest.received_count, dest.max_in_flight

For a benchmark, run one in its own process (the GIL then serves the code under test alone):
`python -m tests.integrations.partners destination` prints the URL and serves until interrupted; the
destination's counters are at `GET {url}/_stats`.

Faults are scripted per request number (1-based, counted per server) or per Idempotency-Key, or by a
function of both; see `Fault`. Every counter is guarded by one lock, so tests may read them while requests
are in flight; read them after the run for exact figures.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import re
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal, Self
from urllib.parse import parse_qs, urlsplit

import pytest
from lxml import etree

Document = tuple[str, str, str]
"""(id, format, document text): one invoice as the source serves it; format is "ubl" or "cii"."""

DocumentProvider = Callable[[int, int], Sequence[Document]]
"""(offset, limit) -> at most `limit` documents starting at `offset`; an empty result means the end."""

FaultScript = Mapping[int, "Fault"] | Callable[[int, str | None], "Fault | None"]
"""Per request number (1-based), or a function of (request number, Idempotency-Key or None)."""

DEFAULT_SOURCE_TOKEN = "source-token"
DEFAULT_DESTINATION_TOKEN = "destination-token"


# --------------------------------------------------------------------------------------------- faults


@dataclass(frozen=True)
class Fault:
    """One scripted misbehaviour for one request.

    kind:
      * "status": answer `status` with `body` and `headers` (503, 429 + Retry-After, 400 rejection, raw bodies);
      * "timeout": hold the request for `seconds` (longer than the client's timeout), then close without answering;
      * "drop": close the connection without any response;
      * "slow": wait `seconds`, then handle the request normally.
    after_accept (timeout and drop on the destination): the invoice is accepted first and only the answer is
    lost, as when a partner commits and then its response never arrives.
    """

    kind: Literal["status", "timeout", "drop", "slow"]
    status: int = 503
    body: bytes = b""
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()
    seconds: float = 0.0
    after_accept: bool = False

    @classmethod
    def unavailable(cls, status: int = 503) -> Fault:
        return cls("status", status=status, body=b'{"error": "unavailable"}')

    @classmethod
    def rate_limited(cls, retry_after: str | float | None = 1) -> Fault:
        headers = () if retry_after is None else (("Retry-After", _retry_after_text(retry_after)),)
        return cls("status", status=429, body=b'{"error": "rate limited"}', headers=headers)

    @classmethod
    def timeout(cls, seconds: float = 2.0, *, after_accept: bool = False) -> Fault:
        return cls("timeout", seconds=seconds, after_accept=after_accept)

    @classmethod
    def drop(cls, *, after_accept: bool = False) -> Fault:
        return cls("drop", after_accept=after_accept)

    @classmethod
    def slow(cls, seconds: float) -> Fault:
        return cls("slow", seconds=seconds)

    @classmethod
    def reject(cls, status: int = 400, body: str = '{"error": "rejected by the partner"}') -> Fault:
        return cls("status", status=status, body=body.encode())

    @classmethod
    def raw(cls, status: int, body: bytes | str, content_type: str = "application/json") -> Fault:
        return cls(
            "status", status=status, body=body.encode() if isinstance(body, str) else body, content_type=content_type
        )


def _retry_after_text(value: str | float) -> str:
    if isinstance(value, str):
        return value
    return str(int(value)) if float(value).is_integer() else str(value)


# --------------------------------------------------------------------------------------------- HTTP plumbing


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256
    partner: _Partner

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hanging up (their timeout fired, a scripted drop) are part of the script, not server bugs.
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    timeout = 60  # an idle keep-alive connection is closed after this many seconds
    server: _HttpServer

    def log_message(self, format: str, *args: Any) -> None:
        return None

    answered = False
    context: Any = None

    def do_GET(self) -> None:
        self.answered, self.context = False, None
        self.server.partner.handle(self, "GET", self.read_body())

    def do_POST(self) -> None:
        self.answered, self.context = False, None
        self.server.partner.handle(self, "POST", self.read_body())

    def _answering(self, status: int | None) -> None:
        # Counters are updated before the answer leaves, so a client that has its answer sees them final.
        if not self.answered:
            self.answered = True
            self.server.partner.answering(self, status)

    def read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def reply(
        self,
        status: int,
        body: bytes,
        *,
        content_type: str = "application/json",
        headers: Sequence[tuple[str, str]] = (),
    ) -> None:
        self._answering(status)
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Status"
        lines = [f"HTTP/1.1 {status} {phrase}", f"Content-Type: {content_type}", f"Content-Length: {len(body)}"]
        lines += [f"{name}: {value}" for name, value in headers]
        if self.close_connection:
            lines.append("Connection: close")
        self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)

    def hang_up(self) -> None:
        """Close the connection without a response (the client sees a disconnect)."""
        self._answering(None)
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


def _json(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


class _Partner:
    """A server in a background thread; subclasses implement `handle`."""

    def __init__(self, *, token: str | None, api_key_header: str | None) -> None:
        self.token = token
        self.api_key_header = api_key_header
        self._lock = threading.Lock()
        self._httpd: _HttpServer | None = None
        self._thread: threading.Thread | None = None

    # lifecycle

    def start(self) -> Self:
        if self._httpd is not None:
            return self
        httpd = _HttpServer(("127.0.0.1", 0), _Handler)
        httpd.partner = self
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name=type(self).__name__, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("server not started")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """Base URL (no trailing slash); the protocol's routes live under it (`{url}/invoices`)."""
        return f"http://127.0.0.1:{self.port}"

    # helpers for subclasses

    def authorized(self, handler: _Handler) -> bool:
        if self.token is None:
            return True
        if self.api_key_header is not None:
            return handler.headers.get(self.api_key_header) == self.token
        return handler.headers.get("Authorization") == f"Bearer {self.token}"

    @staticmethod
    def apply_fault(handler: _Handler, fault: Fault) -> bool:
        """Play a fault that ends the request; True when the request is finished."""
        if fault.kind == "status":
            handler.reply(fault.status, fault.body, content_type=fault.content_type, headers=fault.headers)
            return True
        if fault.kind == "timeout":
            time.sleep(fault.seconds)
            handler.hang_up()
            return True
        if fault.kind == "drop":
            handler.hang_up()
            return True
        return False

    def handle(self, handler: _Handler, method: str, body: bytes) -> None:
        raise NotImplementedError

    def answering(self, handler: _Handler, status: int | None) -> None:
        """Called once per request, just before its answer (or hang-up) is written; `handler.context` is what
        `handle` stored for this request."""


def _pick_fault(script: FaultScript | None, number: int, key: str | None) -> Fault | None:
    if script is None:
        return None
    if callable(script):
        return script(number, key)
    return script.get(number)


# --------------------------------------------------------------------------------------------- source


class SourceServer(_Partner):
    """`GET /invoices?since={cursor}&limit={n}` → `{"invoices": [{"id", "format", "document"}], "next_cursor"}`.

    Cursors are opaque (base64 of an offset). A page holds at most min(limit, page_size) documents; an empty page
    repeats the cursor it was given. Without the right credentials: 401. Every request is counted and kept in
    `requests` as (since, limit, status or None when no answer was sent).
    """

    def __init__(
        self,
        documents: Sequence[Document] | DocumentProvider = (),
        *,
        token: str | None = DEFAULT_SOURCE_TOKEN,
        api_key_header: str | None = None,
        page_size: int = 100,
        faults: FaultScript | None = None,
    ) -> None:
        super().__init__(token=token, api_key_header=api_key_header)
        self._documents: list[Document] | None = None if callable(documents) else list(documents)
        self._provider: DocumentProvider | None = documents if callable(documents) else None
        self.page_size = page_size
        self.faults = faults
        self.request_count = 0
        self.requests: list[tuple[str | None, int | None, int | None]] = []

    @staticmethod
    def cursor_for(offset: int) -> str:
        return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode().rstrip("=")

    @staticmethod
    def offset_of(cursor: str) -> int:
        """The offset inside a cursor; ValueError for anything this server did not issue."""
        try:
            text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise ValueError("bad cursor") from exc
        prefix, _, number = text.partition(":")
        if prefix != "offset" or not number.isdigit():
            raise ValueError("bad cursor")
        return int(number)

    def add(self, *documents: Document) -> None:
        """New invoices appear at the end of the list (the next fetch after the last cursor sees them)."""
        if self._documents is None:
            raise TypeError("this source serves documents from a function")
        with self._lock:
            self._documents.extend(documents)

    def reset(self) -> None:
        with self._lock:
            self.request_count = 0
            self.requests = []

    def _page(self, offset: int, limit: int) -> list[Document]:
        if self._provider is not None:
            return list(self._provider(offset, limit))[:limit]
        with self._lock:
            assert self._documents is not None
            return self._documents[offset : offset + limit]

    def handle(self, handler: _Handler, method: str, body: bytes) -> None:
        parts = urlsplit(handler.path)
        query = parse_qs(parts.query)
        since = query.get("since", [None])[0]
        limit_text = query.get("limit", [None])[0]
        with self._lock:
            self.request_count += 1
            number = self.request_count
        handler.context = (since, int(limit_text) if limit_text and limit_text.isdigit() else None)
        self._serve(handler, method, parts.path, since, limit_text, number)

    def answering(self, handler: _Handler, status: int | None) -> None:
        since, limit = handler.context
        with self._lock:
            self.requests.append((since, limit, status))

    def _serve(
        self, handler: _Handler, method: str, path: str, since: str | None, limit_text: str | None, number: int
    ) -> int | None:
        if method != "GET" or path.rstrip("/") != "/invoices":
            handler.reply(404, _json({"error": "not found"}))
            return 404
        if not self.authorized(handler):
            handler.reply(401, _json({"error": "unauthorized"}), headers=[("WWW-Authenticate", "Bearer")])
            return 401
        fault = _pick_fault(self.faults, number, None)
        if fault is not None:
            if fault.kind == "slow":
                time.sleep(fault.seconds)
            elif self.apply_fault(handler, fault):
                return fault.status if fault.kind == "status" else None
        try:
            offset = self.offset_of(since) if since else 0
            limit = int(limit_text) if limit_text is not None else self.page_size
        except ValueError:
            handler.reply(400, _json({"error": "bad since or limit"}))
            return 400
        if limit < 1:
            handler.reply(400, _json({"error": "limit must be at least 1"}))
            return 400
        documents = self._page(offset, min(limit, self.page_size))
        next_cursor = self.cursor_for(offset + len(documents)) if documents else (since or self.cursor_for(offset))
        payload = {
            "invoices": [{"id": doc_id, "format": fmt, "document": text} for doc_id, fmt, text in documents],
            "next_cursor": next_cursor,
        }
        handler.reply(200, _json(payload))
        return 200


# --------------------------------------------------------------------------------------------- destination


@dataclass
class Received:
    """One POST as the destination saw it; `status` is None until answered, and stays None when no answer was
    sent (timeout, drop)."""

    number: int
    key: str | None
    invoice: tuple[str, str] | None
    body: bytes
    status: int | None


@dataclass(frozen=True)
class Accepted:
    remote_id: str
    key: str
    invoice: tuple[str, str]
    body: bytes


class DestinationServer(_Partner):
    """`POST /invoices` (UBL or CII body, `Idempotency-Key` header) → 201 `{"id"}`.

    An Idempotency-Key or an invoice (supplier, number) already accepted answers 409 `{"error": "duplicate",
    "id"}`; a body that is not an invoice answers 400; without the right credentials 401. `accepted` maps
    (supplier, number) to what was accepted, `accepted_keys` maps keys to remote ids; `by_key` and
    `by_invoice` keep every body received (the same bytes objects as `received`, so nothing is copied);
    `in_flight` / `max_in_flight` count concurrent requests, `request_times` their arrival (monotonic).
    """

    def __init__(
        self,
        *,
        token: str | None = DEFAULT_DESTINATION_TOKEN,
        api_key_header: str | None = None,
        faults: FaultScript | None = None,
        key_faults: Mapping[str, Sequence[Fault]] | None = None,
    ) -> None:
        super().__init__(token=token, api_key_header=api_key_header)
        self.faults = faults
        self._key_faults: dict[str, list[Fault]] = {}
        self.set_faults(faults, key_faults)
        self._reset_state()

    def _reset_state(self) -> None:
        self.accepted: dict[tuple[str, str], Accepted] = {}
        self.accepted_keys: dict[str, str] = {}
        self.by_key: dict[str, list[bytes]] = {}
        self.by_invoice: dict[tuple[str, str], list[bytes]] = {}
        self.received: list[Received] = []
        self.received_count = 0
        self.duplicate_count = 0
        self.status_counts: Counter[int | None] = Counter()
        self.in_flight = 0
        self.max_in_flight = 0
        self.request_times: list[float] = []

    def set_faults(
        self, faults: FaultScript | None = None, key_faults: Mapping[str, Sequence[Fault]] | None = None
    ) -> None:
        """Replace the fault script (request numbers keep counting from where they are)."""
        with self._lock:
            self.faults = faults
            self._key_faults = {key: list(items) for key, items in (key_faults or {}).items()}

    def reset(self) -> None:
        """Forget everything received and accepted, and the faults; request numbers restart at 1."""
        with self._lock:
            self._reset_state()
            self.faults = None
            self._key_faults = {}

    @property
    def accepted_count(self) -> int:
        with self._lock:
            return len(self.accepted)

    def stats(self) -> dict[str, Any]:
        """The counters as JSON-ready data (also served at `GET /_stats` for a server in another process)."""
        with self._lock:
            return {
                "received_count": self.received_count,
                "accepted_count": len(self.accepted),
                "duplicate_count": self.duplicate_count,
                "max_in_flight": self.max_in_flight,
                "status_counts": {str(status): n for status, n in self.status_counts.items()},
                "keys_received_more_than_once": sum(1 for bodies in self.by_key.values() if len(bodies) > 1),
            }

    def _next_fault(self, number: int, key: str | None) -> Fault | None:
        with self._lock:
            queued = self._key_faults.get(key) if key is not None else None
            if queued:
                return queued.pop(0)
            script = self.faults
        return _pick_fault(script, number, key)

    def handle(self, handler: _Handler, method: str, body: bytes) -> None:
        path = urlsplit(handler.path).path.rstrip("/")
        if method == "GET" and path == "/_stats":
            handler.reply(200, _json(self.stats()))
            return
        if method != "POST" or path != "/invoices":
            handler.reply(404, _json({"error": "not found"}))
            return
        key = handler.headers.get("Idempotency-Key")
        invoice = invoice_identity(body)
        with self._lock:
            self.received_count += 1
            number = self.received_count
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self.request_times.append(time.monotonic())
            entry = Received(number, key, invoice, body, None)
            self.received.append(entry)
            if key is not None:
                self.by_key.setdefault(key, []).append(body)
            if invoice is not None:
                self.by_invoice.setdefault(invoice, []).append(body)
        handler.context = entry
        try:
            self._serve(handler, body, key, invoice, number)
        finally:
            if not handler.answered:  # an exception in this server: still count the request as finished
                handler.answered = True
                self.answering(handler, None)

    def answering(self, handler: _Handler, status: int | None) -> None:
        if not isinstance(handler.context, Received):
            return
        with self._lock:
            handler.context.status = status
            self.status_counts[status] += 1
            self.in_flight -= 1

    def _serve(
        self, handler: _Handler, body: bytes, key: str | None, invoice: tuple[str, str] | None, number: int
    ) -> int | None:
        if not self.authorized(handler):
            handler.reply(401, _json({"error": "unauthorized"}), headers=[("WWW-Authenticate", "Bearer")])
            return 401
        fault = self._next_fault(number, key)
        if fault is not None and fault.kind == "slow":
            time.sleep(fault.seconds)
            fault = None
        if fault is not None and not fault.after_accept and self.apply_fault(handler, fault):
            return fault.status if fault.kind == "status" else None
        content_type = (handler.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if content_type not in ("application/xml", "text/xml"):
            handler.reply(415, _json({"error": "send application/xml"}))
            return 415
        if not key:
            handler.reply(400, _json({"error": "Idempotency-Key header required"}))
            return 400
        if invoice is None:
            handler.reply(400, _json({"error": "not a UBL or CII invoice with a number and a seller"}))
            return 400
        with self._lock:
            existing = self.accepted_keys.get(key) or (
                self.accepted[invoice].remote_id if invoice in self.accepted else None
            )
            if existing is None:
                remote_id = f"acc-{len(self.accepted) + 1:06d}"
                self.accepted[invoice] = Accepted(remote_id, key, invoice, body)
                self.accepted_keys[key] = remote_id
            else:
                self.duplicate_count += 1
        if fault is not None:  # after_accept: the work is done, the answer gets lost
            self.apply_fault(handler, fault)
            return None
        if existing is not None:
            handler.reply(409, _json({"error": "duplicate", "id": existing}))
            return 409
        handler.reply(201, _json({"id": remote_id}))
        return 201


# --------------------------------------------------------------------------------------------- documents

_UBL_NS = {
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
}
_CII_NS = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
}
_UBL_SELLER = (
    "cac:PartyTaxScheme[cac:TaxScheme/cbc:ID='VAT']/cbc:CompanyID",
    "cac:PartyLegalEntity/cbc:CompanyID",
    "cbc:EndpointID",
    "cac:PartyLegalEntity/cbc:RegistrationName",
    "cac:PartyName/cbc:Name",
)
_CII_SELLER = (
    "ram:SpecifiedTaxRegistration/ram:ID",
    "ram:SpecifiedLegalOrganization/ram:ID",
    "ram:Name",
)


def _parser() -> Any:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


def _first_text(node: Any, paths: Sequence[str], ns: Mapping[str, str]) -> str | None:
    for path in paths:
        for found in node.xpath(path, namespaces=ns):
            if (found.text or "").strip():
                return str(found.text).strip()
    return None


def invoice_identity(body: bytes) -> tuple[str, str] | None:
    """(seller, number) of a UBL or CII invoice, the seller being its VAT id, legal id, endpoint or name."""
    try:
        root = etree.fromstring(body, parser=_parser())
    except etree.XMLSyntaxError:
        return None
    if root.tag.endswith("}CrossIndustryInvoice"):
        number = _first_text(root, ["rsm:ExchangedDocument/ram:ID"], _CII_NS)
        seller = root.find(
            "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeAgreement/ram:SellerTradeParty", _CII_NS
        )
        paths, ns = _CII_SELLER, _CII_NS
    else:
        number = _first_text(root, ["cbc:ID"], _UBL_NS)
        seller = root.find("cac:AccountingSupplierParty/cac:Party", _UBL_NS)
        paths, ns = _UBL_SELLER, _UBL_NS
    supplier = _first_text(seller, paths, ns) if seller is not None else None
    if number is None or supplier is None:
        return None
    return supplier, number


def example_documents(examples_dir: Path) -> list[Document]:
    """The official examples (`einvoicing/examples/{ubl,cii}`), ids like "ubl/<file name>", in name order."""
    documents: list[Document] = []
    for syntax in ("ubl", "cii"):
        for path in sorted((examples_dir / syntax).iterdir()):
            if path.suffix.lower() == ".xml":
                documents.append((f"{syntax}/{path.name}", syntax, path.read_text(encoding="utf-8")))
    return documents


_UBL_ID = re.compile(r"(<cbc:ID>)[^<]*(</cbc:ID>)")


def numbered_documents(template: str, count: int, *, prefix: str = "BENCH-") -> DocumentProvider:
    """`count` distinct UBL invoices made from one template by replacing its first `<cbc:ID>` (the invoice
    number in a UBL document without extensions), built on demand so 10,000 of them cost no memory."""
    if not _UBL_ID.search(template):
        raise ValueError("the template has no <cbc:ID> element")

    def provider(offset: int, limit: int) -> list[Document]:
        end = min(offset + limit, count)
        return [
            (f"{prefix}{n:07d}", "ubl", _UBL_ID.sub(rf"\g<1>{prefix}{n:07d}\g<2>", template, count=1))
            for n in range(offset, end)
        ]

    return provider


# --------------------------------------------------------------------------------------------- fixtures


@pytest.fixture
def source_server() -> Iterator[SourceServer]:
    """An empty source (token `DEFAULT_SOURCE_TOKEN`); tests `add()` documents or set `faults`."""
    with SourceServer() as server:
        yield server


@pytest.fixture
def destination_server() -> Iterator[DestinationServer]:
    """An accounting API without faults (token `DEFAULT_DESTINATION_TOKEN`); tests `set_faults()`."""
    with DestinationServer() as server:
        yield server


def main(argv: Sequence[str] | None = None) -> None:
    """`python -m tests.integrations.partners destination|source [--template FILE --count N] [--token T]`."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("kind", choices=["destination", "source"])
    parser.add_argument("--token", default=None)
    parser.add_argument("--template", type=Path, help="source: a UBL file to number (see numbered_documents)")
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--page-size", type=int, default=100)
    args = parser.parse_args(argv)
    server: _Partner
    if args.kind == "destination":
        server = DestinationServer(token=args.token or DEFAULT_DESTINATION_TOKEN)
    else:
        if args.template is None:
            parser.error("source needs --template")
        provider = numbered_documents(args.template.read_text(encoding="utf-8"), args.count)
        server = SourceServer(provider, token=args.token or DEFAULT_SOURCE_TOKEN, page_size=args.page_size)
    with server:
        print(server.url, flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
