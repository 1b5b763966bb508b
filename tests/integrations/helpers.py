"""Helpers for the integration job tests: the examples and what a job must make of them, organisations and
integrations made through the service, and running jobs.

What a job must do with the official examples is worked out here independently of the code under test: an
example's validity and failing rules come from `examples/INDEX.tsv` (its Peppol column), its identity from the
full e-invoice import mapping (`importer.parse_einvoice`), not from `integrations.dedupe`.
"""

from __future__ import annotations

import csv
import hashlib
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

from invoiceflow.core.context import system_actor
from invoiceflow.core.db import Database
from invoiceflow.core.models import Organization
from invoiceflow.core.settings import Settings
from invoiceflow.einvoicing.importer import parse_einvoice
from invoiceflow.integrations import jobs, service
from invoiceflow.integrations.models import Integration, IntegrationJob
from invoiceflow.integrations.schemas import IntegrationCreate
from tests.einvoicing.conftest import locate_rules_dir
from tests.integrations.partners import (
    DEFAULT_DESTINATION_TOKEN,
    DEFAULT_SOURCE_TOKEN,
    Document,
    example_documents,
)

RULES_DIR = locate_rules_dir()
EXAMPLES_DIR = RULES_DIR / "examples"


@dataclass(frozen=True)
class Expected:
    source_id: str
    valid: bool
    rule_ids: frozenset[str]
    supplier: str
    number: str
    sha256: str


def _index() -> dict[str, str]:
    with (EXAMPLES_DIR / "INDEX.tsv").open(encoding="utf-8") as handle:
        return {row["file"].removeprefix("examples/"): row["peppol"] for row in csv.DictReader(handle, delimiter="\t")}


def expectations(documents: list[Document]) -> list[Expected]:
    index = _index()
    found = []
    for source_id, _fmt, body in documents:
        peppol = index[source_id]
        parsed = parse_einvoice(body.encode())
        failing = frozenset(peppol.removeprefix("fail:").split(",")) if peppol.startswith("fail:") else frozenset()
        found.append(
            Expected(
                source_id,
                not failing,
                failing,
                parsed.supplier_key(),
                parsed.document.number,
                hashlib.sha256(body.encode()).hexdigest(),
            )
        )
    return found


def outcomes(expected: list[Expected], *, sent_before: dict[tuple[str, str], str] | None = None) -> dict[str, str]:
    """What a job must record for each document, in order: invalid; else the first copy of a supplier's number
    is sent, a later identical one is a duplicate, a later different one "changed"."""
    seen = dict(sent_before or {})
    result = {}
    for doc in expected:
        if not doc.valid:
            result[doc.source_id] = "invalid"
            continue
        key = (doc.supplier, doc.number)
        if key not in seen:
            seen[key] = doc.sha256
            result[doc.source_id] = "sent"
        else:
            result[doc.source_id] = "duplicate" if seen[key] == doc.sha256 else "changed"
    return result


def examples() -> list[Document]:
    return example_documents(EXAMPLES_DIR)


def valid_unique_examples(count: int | None = None) -> list[Document]:
    """Examples that are valid and name distinct invoices (so every one of them must be sent)."""
    chosen: list[Document] = []
    expected = outcomes(expectations(examples()))
    for doc in examples():
        if expected[doc[0]] == "sent":
            chosen.append(doc)
    return chosen[:count] if count is not None else chosen


def renumbered(document: Document, number: str, *, source_id: str | None = None) -> Document:
    """A copy of a UBL example under another invoice number (the first `<cbc:ID>`)."""
    import re

    source, fmt, body = document
    body = re.sub(r"(<cbc:ID>)[^<]*(</cbc:ID>)", rf"\g<1>{number}\g<2>", body, count=1)
    return (source_id or f"{source}#{number}", fmt, body)


# --- rows ---------------------------------------------------------------------------------------------------


async def make_org(db: Database, name: str | None = None) -> uuid.UUID:
    async with db.write_sessions() as session:
        org = Organization(id=uuid.uuid4(), name=name or f"Org {uuid.uuid4().hex[:8]}", legal_name="Org BV")
        session.add(org)
        await session.commit()
        return org.id


def http_integration(source_url: str, dest_url: str, *, name: str = "partners", **overrides: Any) -> IntegrationCreate:
    destination = {
        "type": "http",
        "url": dest_url,
        "bearer_token": DEFAULT_DESTINATION_TOKEN,
        "max_attempts": 4,
        "retry_base_delay_seconds": 0.01,
        "retry_max_delay_seconds": 0.05,
        "timeout_seconds": 1.0,
        **overrides.pop("destination", {}),
    }
    body: dict[str, Any] = {
        "name": name,
        "source": {"type": "http", "url": source_url, "headers": {"Authorization": f"Bearer {DEFAULT_SOURCE_TOKEN}"}},
        "destination": destination,
        "page_size": 20,
        **overrides,
    }
    return IntegrationCreate.model_validate(body)


async def make_integration(db: Database, settings: Settings, org_id: uuid.UUID, data: IntegrationCreate) -> Integration:
    async with db.write_sessions() as session:
        integration = await service.create_integration(session, system_actor(org_id), data, settings=settings)
        await session.commit()
        return integration


async def make_job(
    db: Database,
    integration: Integration,
    *,
    job_type: str = "manual",
    force: bool = False,
    invoice_ids: list[str] | None = None,
    trigger: str = "test",
) -> uuid.UUID:
    async with db.write_sessions() as session:
        job = await jobs.create_job(
            session,
            system_actor(integration.organization_id),
            integration,
            job_type=job_type,
            force_processing=force,
            invoice_ids=invoice_ids,
            trigger=trigger,
        )
        await session.commit()
        return job.id


async def load_job(db: Database, job_id: uuid.UUID) -> IntegrationJob:
    async with db.read_sessions() as session:
        job = await session.get(IntegrationJob, job_id)
        assert job is not None
        return job


def item_outcomes(engine: Engine, job_id: uuid.UUID) -> dict[str, tuple[str, list[str] | None]]:
    """source id → (outcome, rule ids) of a job's items, read with plain SQL."""
    import json

    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT source_id, outcome, rule_ids FROM integration_job_items WHERE job_id = :job"),
            {"job": job_id if engine.dialect.name == "postgresql" else job_id.hex},
        ).all()
    return {row[0]: (row[1], json.loads(row[2]) if isinstance(row[2], str) else row[2]) for row in rows}


def ledger_size(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM sent_records")).scalar_one())


def settings_for(database_url: str, data_dir: Path, **overrides: Any) -> Settings:
    from tests.conftest import make_settings

    values: dict[str, Any] = {
        "einvoice_rules_dir": RULES_DIR,
        "webhook_allow_private_networks": True,
        "integration_validation_workers": 0,
    }
    values.update(overrides)
    return make_settings(database_url, data_dir, **values)
