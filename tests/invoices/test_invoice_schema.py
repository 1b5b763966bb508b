"""The hand-built JSON of the invoice routes must match the documented pydantic schemas exactly."""

from __future__ import annotations

from fastapi.testclient import TestClient

from invoiceflow.invoices.schemas import InvoiceRead, InvoiceSummary
from tests.factories import create_client, create_invoice, register


def test_invoice_json_matches_documented_schemas(client: TestClient) -> None:
    acct = register(client)
    c = create_client(client, acct)
    created = create_invoice(client, acct, c["id"], buyer_reference="PO-1", notes="Thanks")
    got = client.get(f"/api/v1/invoices/{created['id']}", headers=acct.headers).json()["data"]
    listed = client.get("/api/v1/invoices", headers=acct.headers).json()["data"]["items"][0]
    for body in (created, got):
        # Round trip through the schema: same keys, same rendering.
        assert InvoiceRead.model_validate(body).model_dump(mode="json") == body
    assert InvoiceSummary.model_validate(listed).model_dump(mode="json") == listed
    assert set(listed) == set(InvoiceSummary.model_fields)
    assert set(got) == set(InvoiceRead.model_fields)
