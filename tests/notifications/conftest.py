"""Real local servers for the notification tests: aiosmtpd on loopback, and a small HTTP server standing in
for Slack's incoming webhook. Invoices are made through the public API, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import ssl
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword
from aiosmtpd.smtp import Session as SmtpSession
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from invoiceflow.core.db import Database
from invoiceflow.core.mailer import SmtpConfig
from invoiceflow.core.storage import LocalStorage
from invoiceflow.documents.service import DocumentStore
from invoiceflow.notifications.models import NotificationDelivery
from invoiceflow.notifications.service import Notifier
from invoiceflow.notifications.transport import SmtpTransport
from tests.factories import create_client, create_invoice, register
from tests.servers import free_port

SENDER = "Acme Billing <billing@acme.example>"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# --------------------------------------------------------------------------------------------- SMTP


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        msg = message_from_bytes(self.data, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        return msg


@dataclass
class RecordingHandler:
    """Keeps every message; `delay` holds DATA open (a slow server), `refuse` answers RCPT with a 550."""

    messages: list[Received] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)
    delay: float = 0.0
    refuse: set[str] = field(default_factory=set)

    async def handle_RCPT(
        self, server: SMTP, session: SmtpSession, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if address in self.refuse:
            return "550 5.1.1 no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: SmtpSession, envelope: Envelope) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        content = envelope.original_content or b""
        self.messages.append(Received(str(envelope.mail_from), list(envelope.rcpt_tos), content))
        return f"250 2.0.0 Ok: queued as Q{len(self.messages)}"

    def authenticate(
        self, server: SMTP, session: SmtpSession, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> Any:
        assert isinstance(auth_data, LoginPassword)
        self.logins.append((auth_data.login.decode(), auth_data.password.decode()))
        return AuthResult(success=auth_data.password == b"s3cret:@/", handled=False)


@dataclass
class SmtpServer:
    port: int
    handler: RecordingHandler
    controller: Controller | None = None

    def start(self, **smtp_options: Any) -> None:
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port, **smtp_options)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def url(self, **query: str) -> str:
        options = {"starttls": "false", "timeout": "5"} | query
        return f"smtp://127.0.0.1:{self.port}?" + "&".join(f"{k}={v}" for k, v in options.items())

    @property
    def messages(self) -> list[Received]:
        return self.handler.messages


@pytest.fixture
def smtp_port() -> int:
    return free_port()


@pytest.fixture
def smtp(smtp_port: int) -> Iterator[SmtpServer]:
    """A plain-text SMTP server on loopback, recording what it receives."""
    server = SmtpServer(smtp_port, RecordingHandler())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def smtp_down(smtp_port: int) -> Iterator[SmtpServer]:
    """The same server, not started: the test brings it up when it wants."""
    server = SmtpServer(smtp_port, RecordingHandler())
    try:
        yield server
    finally:
        server.stop()


def self_signed_cert(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key (PEM files), to serve and to trust STARTTLS in a test."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(IPv4Address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def server_tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


# --------------------------------------------------------------------------------------------- Slack


@dataclass
class SlackServer:
    url: str
    payloads: list[dict[str, Any]]
    state: dict[str, Any]

    def answer(self, status: int, body: str) -> None:
        self.state["status"], self.state["body"] = status, body


@pytest.fixture
def slack() -> Iterator[SlackServer]:
    """An HTTP server that records JSON posts and answers what the test sets (Slack's "200 ok" by default)."""
    payloads: list[dict[str, Any]] = []
    state: dict[str, Any] = {"status": 200, "body": "ok"}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            assert self.headers.get("Content-Type") == "application/json"
            payloads.append(json.loads(body))
            answer = str(state["body"]).encode()
            self.send_response(int(state["status"]))
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield SlackServer(f"http://127.0.0.1:{server.server_port}/services/T000/B000/secret", payloads, state)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# --------------------------------------------------------------------------------------------- data


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    db = Database(database_url)
    try:
        yield db
    finally:
        await db.dispose()


@pytest.fixture
def store(database: Database, tmp_path: Path) -> DocumentStore:
    return DocumentStore(db=database, storage=LocalStorage(tmp_path / "documents"))


@pytest.fixture
def notifier(database: Database, smtp: SmtpServer) -> Notifier:
    return Notifier(db=database, email=SmtpTransport(SmtpConfig.from_url(smtp.url())), sender=SENDER)


def delivery_rows(engine: Engine, organization_id: uuid.UUID) -> list[NotificationDelivery]:
    with Session(engine) as session:
        stmt = select(NotificationDelivery).where(NotificationDelivery.organization_id == organization_id)
        return list(session.scalars(stmt.order_by(NotificationDelivery.created_at)))


@dataclass(frozen=True)
class IssuedInvoice:
    organization_id: uuid.UUID
    invoice_id: uuid.UUID
    client_id: uuid.UUID
    number: str
    client_email: str
    headers: dict[str, str]


def issue_invoice(client: TestClient, **client_overrides: Any) -> IssuedInvoice:
    """An invoice of a fresh organisation, sent (so it has its number), through the public API."""
    account = register(client, org="Acme BV")
    buyer = create_client(client, account, **client_overrides)
    invoice = create_invoice(client, account, buyer["id"])
    r = client.patch(f"/api/v1/invoices/{invoice['id']}/status", json={"status": "sent"}, headers=account.headers)
    assert r.status_code == 200, r.text
    sent = r.json()["data"]
    return IssuedInvoice(
        organization_id=uuid.UUID(account.organization_id),
        invoice_id=uuid.UUID(invoice["id"]),
        client_id=uuid.UUID(buyer["id"]),
        number=sent["invoice_number"],
        client_email=buyer["email"] or "",
        headers=account.headers,
    )


@pytest.fixture
def issued(client: TestClient) -> IssuedInvoice:
    return issue_invoice(client)
