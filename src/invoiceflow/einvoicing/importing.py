"""Import an issued invoice from a document: UBL 2.1 Invoice/CreditNote, UN/CEFACT CII, or seed JSON.

The document is the record of what its seller issued, so its money is kept exactly as stated: line
amounts, the VAT breakdown and the totals BT-106…BT-115. Our own recomputation is compared with it and
every disagreement is reported with the import (and kept on its record), never silently "corrected".
The whole document model is stored with the invoice (documents.models.ImportedDocument) and its PDF and
e-invoices are rendered from that, so a re-export says what the original said.

Order of work: refuse hostile or malformed input (xmlsafe) → validate with the official rules (an XSD
failure refuses the document, as does any fatal finding in strict mode; otherwise findings are reported)
→ map → refuse a second import of the same supplier's number (409) → match or create the client → store.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from invoiceflow.clients.models import Client
from invoiceflow.core.context import Actor
from invoiceflow.core.db import utcnow
from invoiceflow.core.errors import AppError, Conflict, ValidationFailed
from invoiceflow.core.models import Organization
from invoiceflow.core.money import minor_unit, round_money
from invoiceflow.core.records import record_audit, record_event
from invoiceflow.core.storage import Storage
from invoiceflow.core.tax import MAX_AMOUNT
from invoiceflow.documents.model import InvoiceDocument, Party, build_document
from invoiceflow.documents.models import ImportedDocument
from invoiceflow.documents.snapshot import document_to_json
from invoiceflow.einvoicing.errors import UnsupportedDocument
from invoiceflow.einvoicing.importer import parse_einvoice_root, supplier_key
from invoiceflow.einvoicing.send_check import refused
from invoiceflow.einvoicing.validator import ValidationReport, Validator
from invoiceflow.einvoicing.xmlsafe import document_kind, parse_xml
from invoiceflow.invoices.models import Invoice, InvoiceAllowanceCharge, InvoiceLine
from invoiceflow.invoices.schemas import InvoiceLineIn
from invoiceflow.invoices.service import read_json

# Stored line columns hold 6 decimals (quantities, unit prices) and 4 (amounts); the document model
# keeps the exact figures, so rounding a stored copy to these scales loses nothing.
_SIX = Decimal("0.000001")
_FOUR = Decimal("0.0001")
_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class ImportedInvoice:
    invoice: Invoice
    record: ImportedDocument
    document: InvoiceDocument


class NotAnInvoiceDocument(UnsupportedDocument):
    """Neither XML nor a JSON object: nothing we could import."""


class MalformedJson(AppError):
    status_code = 400
    code = "MALFORMED_JSON"


class AmountsDisagree(AppError):
    """Seed JSON stating totals its own lines do not add up to: without a VAT breakdown there is no
    document amount to keep, so it is refused rather than stored with either figure."""

    status_code = 422
    code = "AMOUNTS_DISAGREE"


def duplicate_import(existing: uuid.UUID | None, supplier_key: str, number: str) -> Conflict:
    details: dict[str, Any] = {"supplier": supplier_key, "invoice_number": number}
    if existing is not None:
        details["existing_invoice_id"] = str(existing)
    return Conflict(
        f"Invoice {number!r} of this supplier was imported already", code="DUPLICATE_INVOICE", details=details
    )


# --- seed JSON ----------------------------------------------------------------------------------------


class SeedParty(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    email: str | None = Field(default=None, max_length=254)
    phone: str | None = Field(default=None, max_length=40)
    address: dict[str, str | None] = Field(default_factory=dict)
    vat_id: str | None = Field(default=None, max_length=30)
    company_id: str | None = Field(default=None, max_length=50)
    electronic_address_scheme: str | None = Field(default=None, max_length=10)
    electronic_address: str | None = Field(default=None, max_length=100)


class SeedInvoice(BaseModel):
    """The invoice resource shape of DESIGN.md, with the client given inline (`client`) or by `client_id`.

    `invoice_number` is the number it was issued under; stated totals, when present, must equal what the
    lines give.
    """

    model_config = ConfigDict(extra="forbid")

    invoice_number: str = Field(min_length=1, max_length=64)
    client: SeedParty | None = None
    client_id: uuid.UUID | None = None
    issue_date: date
    due_date: date | None = None
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    items: list[InvoiceLineIn] = Field(min_length=1, max_length=1000)
    notes: str | None = Field(default=None, max_length=2000)
    buyer_reference: str | None = Field(default=None, max_length=200)
    net_amount: Decimal | None = None
    vat_amount: Decimal | None = None
    total_amount: Decimal | None = None


def _seed_document(seed: SeedInvoice, client: Client | SeedParty, org: Organization) -> InvoiceDocument:
    invoice_row = {
        "invoice_number": seed.invoice_number,
        "issue_date": seed.issue_date,
        "due_date": seed.due_date or seed.issue_date,
        "currency": seed.currency,
        "notes": seed.notes,
        "buyer_reference": seed.buyer_reference,
        "status": "sent",
    }
    lines = [item.model_dump() | {"position": n} for n, item in enumerate(seed.items, start=1)]
    client_row: Any = client if isinstance(client, Client) else client.model_dump() | {"country": None}
    doc = build_document(invoice_row, lines, client_row, org)
    stated = {"net_amount": seed.net_amount, "vat_amount": seed.vat_amount, "total_amount": seed.total_amount}
    computed = {"net_amount": doc.net_total, "vat_amount": doc.vat_total, "total_amount": doc.gross_total}
    wrong = [
        {"field": name, "document": str(value), "recomputed": str(computed[name])}
        for name, value in stated.items()
        if value is not None and round_money(value, seed.currency) != computed[name]
    ]
    if wrong:
        raise AmountsDisagree(
            "The stated totals do not match the invoice's lines; nothing was imported",
            details={"differences": wrong},
        )
    return doc


def _parse_seed(data: bytes) -> SeedInvoice:
    try:
        raw = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise MalformedJson("The JSON document is malformed", details={"reason": str(exc)}) from None
    if not isinstance(raw, dict):
        raise ValidationFailed("The JSON document must be an object (one invoice)")
    try:
        return SeedInvoice.model_validate(raw)
    except ValidationError as exc:
        errors = [
            {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"], "type": e["type"]}
            for e in exc.errors(include_url=False, include_input=False)
        ]
        raise ValidationFailed("The JSON invoice is not valid", details={"errors": errors}) from None


# --- shared ---------------------------------------------------------------------------------------------


def _norm(value: str | None) -> str | None:
    if value is None:
        return None
    cleaned = "".join(value.split()).upper()
    return cleaned or None


async def _match_client(session: AsyncSession, org_id: uuid.UUID, buyer: Party) -> Client | None:
    live = (Client.organization_id == org_id, Client.deleted_at.is_(None))
    if vat := _norm(buyer.vat_id):
        stmt = select(Client).where(*live, func.upper(func.replace(Client.vat_id, " ", "")) == vat)
        if found := (await session.execute(stmt.order_by(Client.created_at).limit(1))).scalar_one_or_none():
            return found
    if address := _norm(buyer.electronic_address):
        stmt = select(Client).where(*live, func.upper(func.replace(Client.electronic_address, " ", "")) == address)
        if buyer.electronic_address_scheme:
            stmt = stmt.where(Client.electronic_address_scheme == buyer.electronic_address_scheme.strip())
        if found := (await session.execute(stmt.order_by(Client.created_at).limit(1))).scalar_one_or_none():
            return found
    return None


def _cut(value: str | None, size: int) -> str | None:
    if value is None or len(value) <= size:
        return value
    return value[: size - 1] + "…"


async def _new_client(session: AsyncSession, org: Organization, buyer: Party) -> Client:
    email = buyer.email.strip().lower() if buyer.email else None
    if email is not None:
        taken = select(Client.id).where(
            Client.organization_id == org.id, Client.email == email, Client.deleted_at.is_(None)
        )
        if (await session.execute(taken.limit(1))).first() is not None:
            # Another client already has this address: the imported buyer differs from it (no VAT id or
            # electronic address matched), and the address stays with the client who had it.
            email = None
    address = {
        key: value
        for key, value in {
            "line1": buyer.line1,
            "line2": buyer.line2,
            "city": buyer.city,
            "postal_code": buyer.postal_code,
            "region": buyer.region,
            "country": buyer.country,
        }.items()
        if value
    }
    client = Client(
        id=uuid.uuid4(),
        organization_id=org.id,
        # BT-44, the buyer's registered name, is who is billed; the trading name (BT-45) is only a fallback.
        name=_cut(buyer.legal_name or buyer.name, 200) or "?",
        email=email,
        phone=_cut(buyer.phone, 40),
        address=address,
        shipping_address=None,
        country=(buyer.country or org.country or "").upper()[:2],
        vat_id=_cut(buyer.vat_id, 30),
        company_id=_cut(buyer.company_id, 50),
        electronic_address_scheme=_cut(buyer.electronic_address_scheme, 10),
        electronic_address=_cut(buyer.electronic_address, 100),
        currency=None,
        language="en",
        notes=None,
    )
    session.add(client)
    await session.flush()
    return client


def _stored(value: Decimal, quantum: Decimal) -> Decimal:
    return value.quantize(quantum, ROUND_HALF_UP)


def _invoice_rows(doc: InvoiceDocument, org_id: uuid.UUID, client_id: uuid.UUID) -> Invoice:
    lines = [
        InvoiceLine(
            id=uuid.uuid4(),
            position=n,
            description=_cut(line.description, 1000) or "",
            quantity=_stored(line.quantity, _SIX),
            unit_code=(line.unit_code or "C62")[:3],
            unit_price=_stored(line.unit_price, _SIX),
            vat_category=line.vat_category,
            vat_rate=_stored(line.vat_rate, _FOUR),
            vat_exemption_reason=_cut(line.vat_exemption_reason, 300),
            line_total=_stored(line.net_amount, _FOUR),
        )
        for n, line in enumerate(doc.lines, start=1)
    ]
    adjustments = [
        InvoiceAllowanceCharge(
            id=uuid.uuid4(),
            position=n,
            is_charge=item.is_charge,
            amount=_stored(item.amount, _FOUR),
            reason=_cut(item.reason, 300),
            reason_code=item.reason_code[:3] if item.reason_code else None,
            vat_category=item.vat_category,
            vat_rate=_stored(item.vat_rate, _FOUR),
            vat_exemption_reason=None,
        )
        for n, item in enumerate(doc.allowances_charges, start=1)
    ]
    return Invoice(
        id=uuid.uuid4(),
        organization_id=org_id,
        kind=doc.kind,
        credited_invoice_id=None,
        client_id=client_id,
        order_id=None,
        invoice_number=doc.number,
        # The document was issued by its seller: it arrives as sent (and can go on to paid or overdue).
        status="sent",
        issue_date=doc.issue_date,
        # A document without a due date (BT-9) is due on issue: payment terms (BT-20) are free text.
        due_date=doc.due_date or doc.issue_date,
        currency=doc.currency,
        notes=_cut(doc.notes, 2000),
        buyer_reference=_cut(doc.buyer_reference, 200),
        external_id=None,
        net_amount=doc.net_total,
        vat_amount=doc.vat_total,
        total_amount=doc.gross_total,
        amount_paid=doc.prepaid_amount,
        rounding_amount=doc.rounding_amount or Decimal(0),
        sent_at=utcnow(),
        lines=lines,
        allowances_charges=adjustments,
    )


def _check_storable(doc: InvoiceDocument) -> None:
    amounts = [
        doc.net_total,
        doc.vat_total,
        doc.gross_total,
        doc.prepaid_amount,
        *(line.net_amount for line in doc.lines),
        *(item.amount for item in doc.allowances_charges),
    ]
    if any(abs(a) > MAX_AMOUNT for a in amounts):
        raise ValidationFailed(f"Amounts above {MAX_AMOUNT} cannot be stored")
    if len(doc.number) > 64:
        raise ValidationFailed("The invoice number (BT-1) is longer than 64 characters")
    if not doc.lines:
        raise ValidationFailed("The document has no invoice lines (BG-25)")
    minor_unit(doc.currency)  # an unknown currency code is refused here, before anything is written


def validation_summary(report: ValidationReport | None, reason: str | None = None) -> dict[str, Any]:
    if report is None:
        return {"status": "skipped", "reason": reason, "findings": []}
    data = report.as_dict()
    return {
        "status": "passed" if report.valid else "failed",
        "findings": data["findings"],
        "layers": data["layers"],
    }


async def import_document(
    session: AsyncSession,
    actor: Actor,
    data: bytes,
    *,
    storage: Storage,
    validator: Validator | None,
    strict: bool = False,
) -> ImportedInvoice:
    body = data.removeprefix(_BOM).lstrip()
    org = (await session.execute(select(Organization).where(Organization.id == actor.organization_id))).scalar_one()
    report: ValidationReport | None = None
    differences: list[dict[str, Any]] = []
    if body.startswith(b"{"):
        seed = _parse_seed(body)
        syntax, specification = "json", None
        client: Client | None = None
        buyer: Client | SeedParty
        if seed.client_id is not None:
            client = await session.get(Client, seed.client_id)
            if client is None or client.organization_id != org.id or client.deleted_at is not None:
                raise ValidationFailed.field("client_id", "client not found", type_="not_found")
            buyer = client
        elif seed.client is not None:
            buyer = seed.client  # matched to a client, or made one, below
        else:
            raise ValidationFailed.field("client", "give the client inline (`client`) or by `client_id`")
        doc = _seed_document(seed, buyer, org)
        validation = validation_summary(None, "seed JSON: checked against the official rules when it is sent")
    elif body.startswith(b"<"):
        root = parse_xml(body)
        if validator is not None:
            report = await asyncio.to_thread(validator.validate_document, root)
            if report.layer_status("xsd") == "failed" or (strict and not report.valid):
                raise refused([(document_kind(root).syntax, report)], "The document")
        parsed = parse_einvoice_root(root)
        doc, syntax, specification = parsed.document, parsed.syntax, parsed.specification_id
        differences = [d.as_dict() for d in parsed.differences]
        validation = validation_summary(report, "INVOICEFLOW_EINVOICE_RULES_DIR is not set")
        client = None
    else:
        raise NotAnInvoiceDocument("Upload a UBL or CII XML document, or a seed JSON invoice")
    _check_storable(doc)

    supplier = supplier_key(doc.seller)
    existing = (
        await session.execute(
            select(ImportedDocument.invoice_id).where(
                ImportedDocument.organization_id == org.id,
                ImportedDocument.supplier_key == supplier,
                ImportedDocument.number == doc.number,
            )
        )
    ).scalar_one_or_none()
    if existing is not None:
        raise duplicate_import(existing, supplier, doc.number)
    taken = (
        await session.execute(
            select(Invoice.id).where(Invoice.organization_id == org.id, Invoice.invoice_number == doc.number)
        )
    ).scalar_one_or_none()
    if taken is not None:
        raise Conflict(
            f"Invoice number {doc.number!r} is already used by another invoice of this organisation",
            code="INVOICE_NUMBER_TAKEN",
            details={"existing_invoice_id": str(taken), "invoice_number": doc.number},
        )

    if client is None:
        client = await _match_client(session, org.id, doc.buyer) or await _new_client(session, org, doc.buyer)
    invoice = _invoice_rows(doc, org.id, client.id)
    digest = hashlib.sha256(data).hexdigest()
    key = f"orgs/{org.id}/imports/{digest}.{'json' if syntax == 'json' else 'xml'}"
    await storage.put(key, data, content_type="application/json" if syntax == "json" else "application/xml")
    record = ImportedDocument(
        id=uuid.uuid4(),
        organization_id=org.id,
        invoice_id=invoice.id,
        supplier_key=supplier,
        number=doc.number,
        syntax=syntax,
        specification_id=_cut(specification, 300),
        storage_key=key,
        sha256=digest,
        size_bytes=len(data),
        document=document_to_json(doc),
        validation=validation,
        differences=differences,
    )
    session.add(invoice)
    await session.flush()
    session.add(record)
    record_event(
        session,
        organization_id=org.id,
        type="InvoiceImported",
        resource_type="invoice",
        resource_id=invoice.id,
        payload={
            "invoice_id": str(invoice.id),
            "invoice_number": invoice.invoice_number,
            "kind": invoice.kind,
            "client_id": str(client.id),
            "currency": invoice.currency,
            "total_amount": str(doc.gross_total),
            "syntax": syntax,
            "validation": validation["status"],
            "differences": len(differences),
        },
    )
    record_audit(
        session,
        actor,
        action="invoice.import",
        resource_type="invoice",
        resource_id=invoice.id,
        details={"syntax": syntax, "sha256": digest, "supplier": supplier, "number": doc.number},
    )
    try:
        await session.flush()
    except IntegrityError:
        # A concurrent import of the same document won the race for the unique keys.
        raise duplicate_import(None, supplier, doc.number) from None
    return ImportedInvoice(invoice, record, doc)


def document_totals(doc: InvoiceDocument) -> dict[str, str]:
    """The document's own totals by EN 16931 business term."""
    return {
        "BT-106": str(doc.line_total),
        "BT-107": str(doc.allowance_total),
        "BT-108": str(doc.charge_total),
        "BT-109": str(doc.net_total),
        "BT-110": str(doc.vat_total),
        "BT-112": str(doc.gross_total),
        "BT-113": str(doc.prepaid_amount),
        "BT-114": str(doc.rounding_amount or 0),
        "BT-115": str(doc.amount_due),
    }


def import_json(result: ImportedInvoice) -> dict[str, Any]:
    return {"invoice": read_json(result.invoice), "import": record_json(result.record, result.document)}


def record_json(record: ImportedDocument, doc: InvoiceDocument) -> dict[str, Any]:
    return {
        "imported": True,
        "id": str(record.id),
        "invoice_id": str(record.invoice_id),
        "syntax": record.syntax,
        "specification_id": record.specification_id,
        "supplier": record.supplier_key,
        "number": record.number,
        "sha256": record.sha256,
        "size_bytes": record.size_bytes,
        "validation": record.validation,
        "differences": record.differences,
        "document_totals": document_totals(doc),
        "created_at": record.created_at.isoformat().replace("+00:00", "Z") if record.created_at else None,
    }
