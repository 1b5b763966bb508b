"""Factories and a local HTTP receiver for the webhook tests (also used by the route sweeps)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.ext.asyncio import AsyncSession

from invoiceflow.core.models import DomainEvent
from invoiceflow.core.records import record_event
from tests.factories import Account

BASE = "/api/v1/webhooks"
# Never contacted: the sweeps only create endpoints. `.example` names do not resolve (RFC 2606).
PUBLIC_URL = "https://hooks.example.com/invoiceflow"


def webhook_payload(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"url": PUBLIC_URL, "description": "Accounting sync", "event_types": []}
    body.update(overrides)
    return body


def create_webhook(client: TestClient, account: Account, **overrides: Any) -> dict[str, Any]:
    r = client.post(BASE, json=webhook_payload(**overrides), headers=account.headers)
    assert r.status_code == 201, r.text
    return r.json()["data"]  # type: ignore[no-any-return]


def send_webhook_test(client: TestClient, account: Account, webhook_id: str) -> dict[str, Any]:
    r = client.post(f"{BASE}/{webhook_id}/test", headers=account.headers)
    assert r.status_code == 202, r.text
    return r.json()["data"]  # type: ignore[no-any-return]


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    answered: int


@dataclass
class Receiver:
    """What a local receiver saw. `answer(n, request)` gives the status of the n-th request (1-based)."""

    url: str
    answer: Callable[[int, Received], int]
    requests: list[Received] = field(default_factory=list)


@contextmanager
def run_receiver(answer: Callable[[int, Received], int], *, host: str = "127.0.0.1") -> Iterator[Receiver]:
    """A threaded http.server on a free loopback port, recording every request it gets."""
    lock = threading.Lock()
    receiver: Receiver

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            request = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body, 0)
            with lock:
                status = receiver.answer(len(receiver.requests) + 1, request)
                request.answered = status
                receiver.requests.append(request)
            reply = f"status {status}".encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer((host, 0), Handler)
    port = server.server_address[1]
    receiver = Receiver(url=f"http://{host}:{port}/hooks", answer=answer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def record_named_event(session: AsyncSession, organization_id: uuid.UUID, name: str) -> DomainEvent:
    """An InvoiceCreated event recorded in `session` (not committed): the late-commit tests open two
    sessions and commit them out of seq order."""
    return record_event(
        session,
        organization_id=organization_id,
        type="InvoiceCreated",
        resource_type="invoice",
        resource_id=uuid.uuid4(),
        payload={"name": name},
    )
