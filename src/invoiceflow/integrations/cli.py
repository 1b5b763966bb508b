"""`invoiceflow sync …`: integration runs from the command line (in this process, with a progress bar).

`sync run` runs one job to its end: for an integration named by `--integration` (name or id), or for a source
and destination given as `--source` / `--dest` (an http(s) URL, a folder path, or `invoiceflow`), which are
saved as an integration (named by `--integration`, default "cli") so that its cursor and the dedupe ledger
carry over to the next run. Exit status: 0 when the job completed (also with invoice errors) or was
cancelled, 1 when it failed, 2 for a usage error.

`sync cancel JOB` stops a job (as `POST /api/v1/jobs/{id}/cancel` does).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from invoiceflow.core.context import system_actor
from invoiceflow.core.db import Database
from invoiceflow.core.errors import AppError
from invoiceflow.core.models import Organization
from invoiceflow.core.settings import Settings, get_settings
from invoiceflow.integrations import jobs, service
from invoiceflow.integrations.jobs import core as jobs_core
from invoiceflow.integrations.models import Integration, IntegrationJob
from invoiceflow.integrations.schemas import ConnectorIn, IntegrationCreate, IntegrationUpdate

app = typer.Typer(
    help="Integration runs: pull invoices from a source, push them to a destination.", no_args_is_help=True
)
console = Console()
T = TypeVar("T")


def _fail(message: str, code: int = 2) -> NoReturn:
    console.print(f"[red]{escape(message)}[/red]")
    raise typer.Exit(code)


def _connector(value: str, token: str | None) -> ConnectorIn:
    if value.startswith(("http://", "https://")):
        return ConnectorIn.model_validate({"type": "http", "url": value, "bearer_token": token})
    if token is not None:
        _fail("a token goes with an http(s) URL only")
    if value == "invoiceflow":
        return ConnectorIn.model_validate({"type": "invoiceflow"})
    return ConnectorIn.model_validate({"type": "folder", "path": str(Path(value).expanduser().resolve())})


async def _with_db(settings: Settings, work: Callable[[Database], Awaitable[T]]) -> T:
    from invoiceflow.core.migrate import upgrade

    upgrade(settings.effective_database_url)
    db = Database(settings.effective_database_url)
    try:
        return await work(db)
    finally:
        await db.dispose()


async def _organization(session: AsyncSession, org: str | None) -> Organization:
    stmt = select(Organization)
    if org is not None:
        try:
            stmt = stmt.where(Organization.id == uuid.UUID(org))
        except ValueError:
            stmt = stmt.where(Organization.name == org)
    rows = list((await session.execute(stmt.limit(2))).scalars())
    if not rows:
        _fail("no such organisation" if org else "no organisation yet: create one with `invoiceflow users create`")
    if len(rows) > 1:
        _fail("several organisations: name one with --org (name or id)")
    return rows[0]


async def _find(session: AsyncSession, name_or_id: str, organization_id: uuid.UUID | None) -> Integration | None:
    stmt = select(Integration).where(Integration.deleted_at.is_(None))
    try:
        stmt = stmt.where(Integration.id == uuid.UUID(name_or_id))
    except ValueError:
        stmt = stmt.where(Integration.name == name_or_id)
    if organization_id is not None:
        stmt = stmt.where(Integration.organization_id == organization_id)
    rows = list((await session.execute(stmt.limit(2))).scalars())
    if len(rows) > 1:
        _fail(f"several organisations have an integration {name_or_id!r}: give its id, or --org")
    return rows[0] if rows else None


async def _prepare(
    db: Database,
    settings: Settings,
    *,
    name: str | None,
    source: str | None,
    dest: str | None,
    source_token: str | None,
    dest_token: str | None,
    org: str | None,
    force: bool,
) -> uuid.UUID:
    """The integration (found, created or updated from --source/--dest) and a queued job for it, committed."""
    async with db.locked_write_session() as session:
        organization = await _organization(session, org) if (org or source or dest) else None
        org_id = organization.id if organization is not None else None
        integration = await _find(session, name or "cli", org_id) if (name or source or dest) else None
        if source or dest:
            assert organization is not None
            actor = system_actor(organization.id)
            if integration is None:
                if not (source and dest):
                    _fail("a new integration needs both --source and --dest")
                data = IntegrationCreate(
                    name=name or "cli",
                    source=_connector(source, source_token),
                    destination=_connector(dest, dest_token),
                )
                integration = await service.create_integration(session, actor, data, settings=settings, trusted=True)
            else:
                update = IntegrationUpdate(
                    source=_connector(source, source_token) if source else None,
                    destination=_connector(dest, dest_token) if dest else None,
                )
                integration = await service.update_integration(
                    session, actor, integration.id, update, settings=settings, trusted=True
                )
        elif integration is None:
            if name:
                _fail(f"no integration {name!r}")
            _fail("name an integration (--integration NAME|ID) or give --source and --dest")
        if not integration.enabled:
            _fail(f"the integration {integration.name!r} is disabled")
        job = await jobs.create_job(
            session,
            system_actor(integration.organization_id),
            integration,
            job_type="manual",
            force_processing=force,
            trigger="cli",
        )
        await session.commit()
        return job.id


def _results_table(job: IntegrationJob) -> Table:
    table = Table(show_header=True, header_style="bold")
    for column in ("total", "sent", "duplicates", "changed", "invalid", "failed"):
        table.add_column(column, justify="right")
    table.add_row(*(str(v) for v in (job.total, job.processed, job.duplicates, job.changed, job.invalid, job.failed)))
    return table


@app.command("run")
def sync_run(
    integration: Annotated[
        str | None, typer.Option("--integration", "-i", help="Integration name or id (with --source/--dest: its name).")
    ] = None,
    source: Annotated[str | None, typer.Option(help="Source: http(s) URL, folder path, or `invoiceflow`.")] = None,
    dest: Annotated[str | None, typer.Option(help="Destination: http(s) URL, folder path, or `invoiceflow`.")] = None,
    source_token: Annotated[
        str | None, typer.Option(envvar="INVOICEFLOW_SYNC_SOURCE_TOKEN", help="Bearer token.")
    ] = None,
    dest_token: Annotated[str | None, typer.Option(envvar="INVOICEFLOW_SYNC_DEST_TOKEN", help="Bearer token.")] = None,
    org: Annotated[str | None, typer.Option(help="Organisation name or id (when there are several).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Re-send invoices the destination already has.")] = False,
) -> None:
    """Run an integration job now, in this process, with a progress bar."""
    settings = get_settings()

    async def work(db: Database) -> IntegrationJob:
        job_id = await _prepare(
            db,
            settings,
            name=integration,
            source=source,
            dest=dest,
            source_token=source_token,
            dest_token=dest_token,
            org=org,
            force=force,
        )
        console.print(f"job [bold]{job_id}[/bold]")
        columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
        with Progress(*columns, console=console, transient=False) as progress:
            task = progress.add_task("fetching…", total=None)
            seen = {"total": 0, "sent": 0, "duplicates": 0, "invalid": 0, "failed": 0, "changed": 0}

            def advance(page: jobs.PageResult) -> None:
                for key, value in (
                    ("total", page.fetched),
                    ("sent", page.sent),
                    ("duplicates", page.duplicates),
                    ("invalid", page.invalid),
                    ("failed", page.failed),
                    ("changed", page.changed),
                ):
                    seen[key] += value
                progress.update(
                    task,
                    advance=page.fetched,
                    description=(
                        f"{seen['total']} invoices: {seen['sent']} sent, {seen['duplicates']} duplicates, "
                        f"{seen['changed']} changed, {seen['invalid']} invalid, {seen['failed']} failed"
                    ),
                )

            await jobs.run_job(db, job_id, settings=settings, progress=advance)
            progress.update(task, total=seen["total"] or 1, completed=seen["total"] or 1)
        async with db.read_sessions() as session:
            row = await session.get(IntegrationJob, job_id)
            assert row is not None
            return row

    try:
        job = asyncio.run(_with_db(settings, work))
    except AppError as exc:
        _fail(f"{exc.code}: {exc.message}")
    console.print(_results_table(job))
    style = {"completed": "green", "completed_with_errors": "yellow", "cancelled": "yellow"}.get(job.status, "red")
    console.print(f"[{style}]{job.status}[/{style}]" + (f": {escape(job.error)}" if job.error else ""))
    if job.status == "failed":
        raise typer.Exit(1)


@app.command("jobs")
def sync_jobs(
    integration: Annotated[str | None, typer.Option("--integration", "-i", help="Integration name or id.")] = None,
    status: Annotated[str | None, typer.Option(help="Only jobs in this status.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 20,
) -> None:
    """The latest integration jobs, newest first."""
    settings = get_settings()

    async def work(db: Database) -> list[Any]:
        async with db.read_sessions() as session:
            stmt = (
                select(IntegrationJob, Integration.name)
                .join(Integration, Integration.id == IntegrationJob.integration_id)
                .order_by(IntegrationJob.created_at.desc())
                .limit(limit)
            )
            if integration is not None:
                found = await _find(session, integration, None)
                if found is None:
                    _fail(f"no integration {integration!r}")
                stmt = stmt.where(IntegrationJob.integration_id == found.id)
            if status is not None:
                stmt = stmt.where(IntegrationJob.status == status)
            return list((await session.execute(stmt)).all())

    rows = asyncio.run(_with_db(settings, work))
    table = Table(show_header=True, header_style="bold")
    for column in (
        "job",
        "integration",
        "type",
        "status",
        "created (UTC)",
        "total",
        "sent",
        "dup",
        "invalid",
        "failed",
    ):
        table.add_column(column)
    for job, name in rows:
        table.add_row(
            str(job.id),
            escape(name),
            job.job_type,
            job.status,
            job.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            str(job.total),
            str(job.processed),
            str(job.duplicates),
            str(job.invalid),
            str(job.failed),
        )
    console.print(table)


@app.command("cancel")
def sync_cancel(job_id: Annotated[str, typer.Argument(help="The job's id.")]) -> None:
    """Stop a job: a queued one is cancelled now; a running one records the page it is pushing, fetches no
    other and ends `cancelled`. Exit status 1 when the job had ended already."""
    settings = get_settings()
    try:
        wanted = uuid.UUID(job_id)
    except ValueError:
        _fail("not a job id")

    async def work(db: Database) -> tuple[IntegrationJob, bool]:
        async with jobs_core.write_session(db) as session:
            job = await session.get(IntegrationJob, wanted)
            if job is None:
                _fail("no such job")
            return await jobs_core.cancel_job(session, system_actor(job.organization_id), job)

    try:
        job, cancelled_now = asyncio.run(_with_db(settings, work))
    except jobs_core.JobFinished as exc:
        _fail(f"{exc.code}: {exc.message}", 1)
    if cancelled_now:
        console.print(f"job [bold]{job.id}[/bold] [yellow]cancelled[/yellow] (it had not started)")
    else:
        console.print(f"job [bold]{job.id}[/bold] [yellow]stopping[/yellow]: it ends after the page it is pushing")


@app.command("show")
def sync_show(job_id: Annotated[str, typer.Argument(help="The job's id.")]) -> None:
    """One job: its results, and the invoices that were not sent (with the failing rules)."""
    settings = get_settings()
    try:
        wanted = uuid.UUID(job_id)
    except ValueError:
        _fail("not a job id")

    async def work(db: Database) -> tuple[IntegrationJob, list[Any]]:
        async with db.read_sessions() as session:
            job = await session.get(IntegrationJob, wanted)
            if job is None:
                _fail("no such job")
            return job, await service.job_errors(session, job.id)

    job, errors = asyncio.run(_with_db(settings, work))
    read = service.job_read(job)
    console.print(f"[bold]job {job.id}[/bold] ({job.job_type}, {job.trigger}) [bold]{job.status}[/bold]")
    console.print(
        f"started {read.started_at or '-'}  completed {read.completed_at or '-'}  "
        f"duration {read.duration_seconds if read.duration_seconds is not None else '-'} s"
    )
    if job.error:
        console.print(f"[red]{escape(job.error)}[/red]")
    console.print(_results_table(job))
    if errors:
        table = Table(show_header=True, header_style="bold", title="Not sent")
        for column in ("invoice", "outcome", "rules", "error"):
            table.add_column(column)
        for item in errors:
            table.add_row(
                escape(item.source_id),
                item.outcome,
                ", ".join(item.rule_ids or []),
                escape((item.error or "")[:200]),
            )
        console.print(table)
