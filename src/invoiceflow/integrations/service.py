"""Integration and job use cases: CRUD with write-only secrets, reading jobs, choosing the integration a run
is for. Admins change integrations; members read them and start runs. Running a job is `jobs.py`."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from invoiceflow.core.context import Actor
from invoiceflow.core.db import utcnow
from invoiceflow.core.errors import Conflict, NotFound, ValidationFailed
from invoiceflow.core.listing import page_by_created_at
from invoiceflow.core.records import record_audit
from invoiceflow.core.settings import Settings
from invoiceflow.integrations.connectors.folder import FolderConfig
from invoiceflow.integrations.connectors.http import HttpConfig, HttpSecrets
from invoiceflow.integrations.connectors.s3 import S3Config, S3Secrets
from invoiceflow.integrations.crypto import decrypt_secrets, encrypt_secrets
from invoiceflow.integrations.dedupe import destination_key
from invoiceflow.integrations.models import Integration, IntegrationJob, IntegrationJobItem
from invoiceflow.integrations.schemas import (
    ConnectorIn,
    IntegrationCreate,
    IntegrationFilters,
    IntegrationRead,
    IntegrationUpdate,
    JobError,
    JobFilters,
    JobItemFilters,
    JobRead,
    JobResults,
)
from invoiceflow.webhooks.guard import UrlRefused, check_url

# Connector fields that are secrets: stored encrypted, answered masked (every header value is one too).
SECRET_FIELDS = ("bearer_token", "api_key", "access_key_id", "secret_access_key", "session_token")
SIDES = ("source", "destination")
ERROR_OUTCOMES = ("failed", "invalid", "changed")
MAX_ERRORS_SHOWN = 100
DEFAULT_ESTIMATE = timedelta(seconds=30)


MASK = "****"


def mask(value: str) -> str:
    """Enough to tell two credentials apart, not enough to use one (ASCII: it may be sent back in a header)."""
    return f"{MASK}{value[-4:]}" if len(value) >= 12 else MASK


def _not_found() -> NotFound:
    return NotFound("Integration not found", code="INTEGRATION_NOT_FOUND")


def _name_taken(name: str) -> Conflict:
    return Conflict(
        "An integration with this name already exists", code="DUPLICATE_INTEGRATION_NAME", details={"name": name}
    )


def org_folder(settings: Settings, organization_id: uuid.UUID) -> Path:
    """Where an organisation's folder connectors live: API users name folders relative to it."""
    return settings.data_dir / "integrations" / str(organization_id)


def _relative_path(side: str, raw: str) -> str:
    path = PurePosixPath(raw.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or any(":" in part for part in path.parts):
        raise ValidationFailed.field(f"{side}.path", "must be a relative path inside the organisation's folder")
    return path.as_posix()


async def _checked_url(field: str, url: str, *, allow_private: bool) -> str:
    try:
        return await check_url(url, allow_private=allow_private)
    except UrlRefused as exc:
        raise ValidationFailed.field(field, str(exc)) from None


def _config_errors(side: str, exc: ValidationError) -> ValidationFailed:
    fields = [
        {
            "field": ".".join([side, *(str(part) for part in error["loc"])]),
            "message": error["msg"],
            "type": error["type"],
        }
        for error in exc.errors(include_input=False, include_url=False)
    ]
    names = ", ".join(dict.fromkeys(f["field"] for f in fields))
    return ValidationFailed(f"Invalid input: {names}", details={"fields": fields})


_MODELS: dict[str, tuple[type[BaseModel], type[BaseModel] | None]] = {
    "http": (HttpConfig, HttpSecrets),
    "folder": (FolderConfig, None),
    "s3": (S3Config, S3Secrets),
}


class _OwnConfig(BaseModel):
    """The `invoiceflow` kind takes no settings."""

    model_config = ConfigDict(extra="forbid")

    type: str = "invoiceflow"


async def _split(
    side: str,
    data: ConnectorIn,
    *,
    previous: tuple[dict[str, Any], dict[str, Any]] | None,
    allow_private: bool,
    trusted: bool,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(config as stored and shown: secrets masked; the secrets). Both are checked with the connector kind's
    own settings models, so a typo fails when the integration is saved, not at 02:00. A masked value sent
    back (as an answer showed it) keeps the stored secret."""
    old_config, old_secrets = previous or ({}, {})
    same_kind = old_config.get("type") == data.type
    if not same_kind:
        old_secrets = {}
    old_headers: dict[str, str] = old_secrets.get("headers", {})
    headers: dict[str, str] = {}
    for name, value in data.headers.items():
        kept = next((v for k, v in old_headers.items() if k.lower() == name.lower() and mask(v) == value), None)
        headers[name] = kept if kept is not None else value
    secrets: dict[str, Any] = {"headers": headers} if headers else {}
    for field in SECRET_FIELDS:
        value = getattr(data, field)
        if value is not None:
            old = old_secrets.get(field)
            secrets[field] = old if old is not None and mask(old) == value else value

    options = dict(data.model_extra or {})
    config: dict[str, Any] = {"type": data.type, **options}
    config_model, secrets_model = _MODELS.get(data.type, (_OwnConfig, None))
    try:
        validated = config_model.model_validate(config)
    except ValidationError as exc:
        raise _config_errors(side, exc) from None
    if secrets_model is None and secrets:
        raise ValidationFailed.field(f"{side}.{next(iter(secrets))}", f"a {data.type} connector takes no credentials")
    if secrets_model is not None:
        try:
            secrets_model.model_validate(secrets)
        except ValidationError as exc:
            raise _config_errors(side, exc) from None
    config = validated.model_dump(mode="json", exclude_unset=True) | {"type": data.type}
    if isinstance(config.get("url"), str):
        config["url"] = await _checked_url(f"{side}.url", config["url"], allow_private=allow_private)
    if isinstance(config.get("endpoint_url"), str):
        config["endpoint_url"] = await _checked_url(
            f"{side}.endpoint_url", config["endpoint_url"], allow_private=allow_private
        )
    if isinstance(config.get("path"), str) and not trusted:
        config["path"] = _relative_path(side, config["path"])
    shown = dict(config)
    if headers:
        shown["headers"] = {name: mask(value) for name, value in headers.items()}
    for field in SECRET_FIELDS:
        if field in secrets:
            shown[field] = mask(secrets[field])
    return shown, secrets


@dataclass(frozen=True, slots=True)
class ConnectorSettings:
    """One side as the connectors take it: real credentials, and the folders a folder connector may use."""

    config: dict[str, Any]
    secrets: dict[str, Any]
    folder_roots: list[Path] | None


def connector_settings(settings: Settings, integration: Integration, side: str) -> ConnectorSettings:
    stored: dict[str, Any] = getattr(integration, side)
    config = {k: v for k, v in stored.items() if k != "headers" and k not in SECRET_FIELDS}
    secrets = dict(decrypt_secrets(settings, integration.secrets).get(side, {}))
    roots: list[Path] | None = [org_folder(settings, integration.organization_id)]
    # An absolute folder was set from the command line (the API takes relative ones only): an operator's choice.
    if config.get("type") == "folder" and Path(str(config.get("path", ""))).is_absolute():
        roots = None
    return ConnectorSettings(config, secrets, roots)


def to_read(integration: Integration) -> IntegrationRead:
    return IntegrationRead.model_validate(integration)


async def _unset_other_defaults(session: AsyncSession, integration: Integration) -> None:
    await session.execute(
        update(Integration)
        .where(
            Integration.organization_id == integration.organization_id,
            Integration.id != integration.id,
            Integration.is_default.is_(True),
        )
        .values(is_default=False)
    )


async def create_integration(
    session: AsyncSession, actor: Actor, data: IntegrationCreate, *, settings: Settings, trusted: bool = False
) -> Integration:
    """`trusted` (the command line, an operator): folder paths may be absolute."""
    allow_private = settings.webhook_allow_private_networks or trusted
    source, source_secrets = await _split(
        "source", data.source, previous=None, allow_private=allow_private, trusted=trusted
    )
    destination, destination_secrets = await _split(
        "destination", data.destination, previous=None, allow_private=allow_private, trusted=trusted
    )
    now = utcnow()
    integration = Integration(
        id=uuid.uuid4(),
        organization_id=actor.organization_id,
        name=data.name,
        description=data.description,
        source=source,
        destination=destination,
        secrets=encrypt_secrets(settings, {"source": source_secrets, "destination": destination_secrets}),
        destination_key=destination_key(actor.organization_id, destination),
        schedule=data.schedule,
        timezone=data.timezone,
        enabled=data.enabled,
        is_default=data.is_default,
        notify_on_success=data.notify_on_success,
        page_size=data.page_size,
        created_at=now,
        updated_at=now,
    )
    if data.is_default:
        await _unset_other_defaults(session, integration)
    session.add(integration)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:
        raise _name_taken(data.name) from None
    record_audit(
        session,
        actor,
        action="integration.create",
        resource_type="integration",
        resource_id=integration.id,
        details={"name": data.name, "source": source["type"], "destination": destination["type"]},
    )
    return integration


async def get_integration(session: AsyncSession, actor: Actor, integration_id: uuid.UUID) -> Integration:
    integration = await session.get(Integration, integration_id)
    if integration is None or integration.organization_id != actor.organization_id or integration.deleted_at:
        raise _not_found()
    return integration


async def list_integrations(
    session: AsyncSession, actor: Actor, filters: IntegrationFilters
) -> tuple[list[Integration], str | None]:
    stmt = select(Integration).where(
        Integration.organization_id == actor.organization_id, Integration.deleted_at.is_(None)
    )
    if filters.enabled is not None:
        stmt = stmt.where(Integration.enabled.is_(filters.enabled))
    return await page_by_created_at(session, stmt, Integration, cursor=filters.cursor, limit=filters.limit)


async def update_integration(
    session: AsyncSession,
    actor: Actor,
    integration_id: uuid.UUID,
    data: IntegrationUpdate,
    *,
    settings: Settings,
    trusted: bool = False,
) -> Integration:
    integration = await get_integration(session, actor, integration_id)
    changes = data.model_dump(exclude_unset=True)
    for field in ("name", "source", "destination", "timezone", "enabled", "is_default", "page_size"):
        if field in changes and changes[field] is None:
            raise ValidationFailed.field(field, "may not be null")
    allow_private = settings.webhook_allow_private_networks or trusted
    secrets = decrypt_secrets(settings, integration.secrets)
    for side in SIDES:
        connector: ConnectorIn | None = getattr(data, side)
        if connector is None:
            continue
        previous = (getattr(integration, side), secrets.get(side, {}))
        config, side_secrets = await _split(
            side, connector, previous=previous, allow_private=allow_private, trusted=trusted
        )
        setattr(integration, side, config)
        secrets[side] = side_secrets
    if data.source is not None or data.destination is not None:
        integration.secrets = encrypt_secrets(settings, secrets)
        integration.destination_key = destination_key(integration.organization_id, integration.destination)
    for field in ("name", "description", "schedule", "timezone", "enabled", "notify_on_success", "page_size"):
        if field in changes:
            setattr(integration, field, changes[field])
    if changes.get("is_default") is not None:
        integration.is_default = changes["is_default"]
        if integration.is_default:
            await _unset_other_defaults(session, integration)
    if data.reset_cursor:
        integration.cursor = None
    integration.updated_at = utcnow()
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:
        raise _name_taken(integration.name) from None
    record_audit(
        session,
        actor,
        action="integration.update",
        resource_type="integration",
        resource_id=integration.id,
        # Names of what changed only: never the values (they may hold credentials).
        details={"changed": sorted(changes)},
    )
    return integration


async def delete_integration(session: AsyncSession, actor: Actor, integration_id: uuid.UUID) -> Integration:
    """Soft delete: no more runs; its jobs stay readable, the dedupe ledger stays with the destination."""
    integration = await get_integration(session, actor, integration_id)
    integration.deleted_at = integration.updated_at = utcnow()
    integration.is_default = False
    integration.secrets = None
    await session.flush()
    record_audit(session, actor, action="integration.delete", resource_type="integration", resource_id=integration.id)
    return integration


async def integration_for_run(session: AsyncSession, actor: Actor, integration_id: uuid.UUID | None) -> Integration:
    """The integration a run is for: the one named, else the organisation's default (or its only one)."""
    if integration_id is not None:
        integration = await get_integration(session, actor, integration_id)
    else:
        live = list(
            (
                await session.execute(
                    select(Integration)
                    .where(Integration.organization_id == actor.organization_id, Integration.deleted_at.is_(None))
                    .order_by(Integration.is_default.desc(), Integration.created_at)
                    .limit(2)
                )
            ).scalars()
        )
        if not live:
            raise NotFound(
                "This organisation has no integration yet: create one at /api/v1/integrations",
                code="INTEGRATION_NOT_FOUND",
            )
        if not live[0].is_default and len(live) > 1:
            raise ValidationFailed(
                "Several integrations and none is the default: pass ?integration_id= or set one `is_default`",
                code="NO_DEFAULT_INTEGRATION",
                details={"fields": [{"field": "integration_id", "message": "required: no default integration"}]},
            )
        integration = live[0]
    if not integration.enabled:
        raise Conflict(
            "The integration is disabled; enable it first",
            code="INTEGRATION_DISABLED",
            details={"integration_id": str(integration.id)},
        )
    return integration


# --- jobs --------------------------------------------------------------------------------------------------


def _job_not_found() -> NotFound:
    return NotFound("Job not found", code="JOB_NOT_FOUND")


def job_read(job: IntegrationJob, errors: list[IntegrationJobItem] | None = None) -> JobRead:
    duration = None
    if job.started_at is not None and job.completed_at is not None:
        duration = round((job.completed_at - job.started_at).total_seconds(), 3)
    return JobRead(
        job_id=job.id,
        integration_id=job.integration_id,
        job_type=job.job_type,
        trigger=job.trigger,
        status=job.status,
        force_processing=job.force_processing,
        invoice_ids=job.invoice_ids,
        workflow_id=job.workflow_id,
        created_at=job.created_at,
        started_at=job.started_at,
        completed_at=job.completed_at,
        cancel_requested_at=job.cancel_requested_at,
        duration_seconds=duration,
        results=JobResults(
            total_invoices=job.total,
            processed=job.processed,
            failed=job.failed,
            duplicates=job.duplicates,
            invalid=job.invalid,
            changed=job.changed,
        ),
        error=job.error,
        errors=[
            JobError(
                invoice_id=item.source_id,
                error=item.error or item.outcome,
                outcome=item.outcome,
                rule_ids=item.rule_ids,
                timestamp=item.updated_at,
            )
            for item in errors or ()
        ],
    )


async def get_job(session: AsyncSession, actor: Actor, job_id: uuid.UUID) -> IntegrationJob:
    job = await session.get(IntegrationJob, job_id, populate_existing=True)
    if job is None or job.organization_id != actor.organization_id:
        raise _job_not_found()
    return job


async def job_errors(session: AsyncSession, job_id: uuid.UUID) -> list[IntegrationJobItem]:
    stmt = (
        select(IntegrationJobItem)
        .where(IntegrationJobItem.job_id == job_id, IntegrationJobItem.outcome.in_(ERROR_OUTCOMES))
        .order_by(IntegrationJobItem.page_no, IntegrationJobItem.position)
        .limit(MAX_ERRORS_SHOWN)
    )
    return list((await session.execute(stmt)).scalars())


async def list_jobs(
    session: AsyncSession, actor: Actor, filters: JobFilters
) -> tuple[list[IntegrationJob], str | None]:
    stmt = select(IntegrationJob).where(IntegrationJob.organization_id == actor.organization_id)
    if filters.status is not None:
        stmt = stmt.where(IntegrationJob.status == filters.status)
    if filters.integration_id is not None:
        stmt = stmt.where(IntegrationJob.integration_id == filters.integration_id)
    return await page_by_created_at(session, stmt, IntegrationJob, cursor=filters.cursor, limit=filters.limit)


async def list_job_items(
    session: AsyncSession, actor: Actor, job_id: uuid.UUID, filters: JobItemFilters
) -> tuple[list[IntegrationJobItem], str | None]:
    job = await get_job(session, actor, job_id)
    stmt = select(IntegrationJobItem).where(IntegrationJobItem.job_id == job.id)
    if filters.outcome is not None:
        stmt = stmt.where(IntegrationJobItem.outcome == filters.outcome)
    return await page_by_created_at(
        session, stmt, IntegrationJobItem, cursor=filters.cursor, limit=filters.limit, descending=False
    )


async def estimated_completion(session: AsyncSession, integration_id: uuid.UUID) -> datetime:
    """Now plus the mean duration of the integration's last five finished runs (30 s without history)."""
    rows = (
        await session.execute(
            select(IntegrationJob.started_at, IntegrationJob.completed_at)
            .where(
                IntegrationJob.integration_id == integration_id,
                IntegrationJob.completed_at.is_not(None),
                IntegrationJob.started_at.is_not(None),
            )
            .order_by(IntegrationJob.created_at.desc())
            .limit(5)
        )
    ).all()
    durations = [row.completed_at - row.started_at for row in rows]
    estimate = sum(durations, timedelta()) / len(durations) if durations else DEFAULT_ESTIMATE
    return utcnow() + max(estimate, timedelta(seconds=1))
