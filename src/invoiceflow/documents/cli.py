"""`invoiceflow documents …`: render and store an invoice's document, export invoice lists, from a shell.

Both commands use the same settings, database and storage as the API (`INVOICEFLOW_*`), so a document
rendered here is the one the API serves, and the database is migrated first like the other commands do.
The commands act for an organisation rather than a user: with one organisation in the database it is
implied, with several `--organization` picks it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

# Every `invoiceflow` command imports this module; the renderers, the web stack and the database layer
# are imported by the two commands themselves, so `invoiceflow --help` stays quick.
if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from invoiceflow.core.context import Actor
    from invoiceflow.core.db import Database
    from invoiceflow.core.settings import Settings
    from invoiceflow.documents.service import DocumentFormat, StoredDocument
    from invoiceflow.invoices.models import Invoice

app = typer.Typer(help="Invoice documents: stored PDF and Excel renderings, list exports.", no_args_is_help=True)
console = Console()
T = TypeVar("T")


class RenderFormat(StrEnum):
    pdf = "pdf"
    xlsx = "xlsx"


class ExportFormat(StrEnum):
    xlsx = "xlsx"


class _CommandError(Exception):
    """A message for the operator and exit status 1, instead of a traceback."""


def _fail(message: str, code: int = 1) -> NoReturn:
    console.print(f"[red]{escape(message)}[/red]")
    raise typer.Exit(code)


def _run(work: Callable[[Settings, Database, AsyncSession], Awaitable[T]]) -> T:
    """Migrate, then run `work` with a read session; errors become messages and exit status 1."""
    from invoiceflow.core.db import Database
    from invoiceflow.core.errors import AppError
    from invoiceflow.core.migrate import upgrade
    from invoiceflow.core.settings import get_settings
    from invoiceflow.documents.pdf import FontNotFoundError

    settings = get_settings()
    upgrade(settings.effective_database_url)

    async def main() -> T:
        db = Database(settings.effective_database_url)
        try:
            async with db.read_sessions() as session:
                return await work(settings, db, session)
        finally:
            await db.dispose()

    try:
        return asyncio.run(main())
    except (_CommandError, FontNotFoundError) as exc:
        _fail(str(exc))
    except AppError as exc:
        _fail(exc.message)


def _operator(organization_id: uuid.UUID) -> Actor:
    from invoiceflow.core.context import Actor

    # The command line acts with the organisation's full rights, as an operator with shell access does.
    return Actor(organization_id=organization_id, user_id=None, api_key_id=None, role="admin")


async def _organization(session: AsyncSession, wanted: uuid.UUID | None) -> uuid.UUID:
    from sqlalchemy import select

    from invoiceflow.core.models import Organization

    if wanted is not None:
        found = (await session.execute(select(Organization.id).where(Organization.id == wanted))).scalar_one_or_none()
        if found is None:
            raise _CommandError(f"No organisation with id {wanted}")
        return found
    ids = list((await session.execute(select(Organization.id).limit(2))).scalars())
    if not ids:
        raise _CommandError("The database has no organisation yet")
    if len(ids) > 1:
        raise _CommandError("Several organisations exist: pick one with --organization ID")
    return ids[0]


async def _find_invoice(session: AsyncSession, reference: str, organization: uuid.UUID | None) -> Invoice:
    """An invoice by id, or by number (unique per organisation, so possibly ambiguous across them)."""
    from sqlalchemy import select

    from invoiceflow.invoices.models import Invoice

    stmt = select(Invoice).where(Invoice.deleted_at.is_(None))
    try:
        stmt = stmt.where(Invoice.id == uuid.UUID(reference))
    except ValueError:
        stmt = stmt.where(Invoice.invoice_number == reference)
    if organization is not None:
        stmt = stmt.where(Invoice.organization_id == organization)
    found = list((await session.execute(stmt.limit(2))).scalars())
    if not found:
        raise _CommandError(f"No invoice {reference!r}" + (f" in organisation {organization}" if organization else ""))
    if len(found) > 1:
        raise _CommandError(f"Invoice number {reference!r} exists in several organisations: add --organization ID")
    return found[0]


@app.command("render")
def render(
    invoice: Annotated[str, typer.Option("--invoice", help="Invoice number (INV-2026-00042) or id.")],
    fmt: Annotated[RenderFormat, typer.Option("--format", help="Document format.")] = RenderFormat.pdf,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Also write the document to this file.", dir_okay=False)
    ] = None,
    organization: Annotated[
        uuid.UUID | None, typer.Option(help="Organisation id, when the number exists in several.")
    ] = None,
) -> None:
    """Render and store an invoice's document (reused when the invoice is unchanged), optionally save it."""
    from invoiceflow.core.storage import make_storage
    from invoiceflow.documents import service

    chosen: DocumentFormat = "pdf" if fmt is RenderFormat.pdf else "xlsx"

    async def work(settings: Settings, db: Database, session: AsyncSession) -> StoredDocument:
        found = await _find_invoice(session, invoice, organization)
        # One document: rendered in this process (starting a render process would cost more than it saves).
        store = service.DocumentStore(db=db, storage=make_storage(settings), pdf_page_size=settings.pdf_page_size)
        document = await service.ensure_document(session, _operator(found.organization_id), found.id, chosen, store)
        if output is not None:
            data = await store.storage.get(document.storage_key)
            await asyncio.to_thread(output.write_bytes, data)
        return document

    document = _run(work)
    verb = "Rendered" if document.rendered else "Unchanged, reused"
    console.print(f"[green]{verb}[/green] {escape(document.filename)} ({document.size_bytes:,} bytes)")
    console.print(f"  stored as {escape(document.storage_key)}  sha256 {document.sha256}")
    if output is not None:
        console.print(f"  written to {escape(str(output))}")


def _day(value: datetime | None) -> str | None:
    return None if value is None else value.date().isoformat()


@app.command("export")
def export(
    output: Annotated[Path, typer.Option("--output", "-o", help="The workbook to write.", dir_okay=False)],
    fmt: Annotated[ExportFormat, typer.Option("--format", help="Export format.")] = ExportFormat.xlsx,
    status: Annotated[str | None, typer.Option(help="Only invoices in this status.")] = None,
    client_id: Annotated[uuid.UUID | None, typer.Option(help="Only this client's invoices.")] = None,
    issued_from: Annotated[
        datetime | None, typer.Option("--from", formats=["%Y-%m-%d"], help="Issued on or after (YYYY-MM-DD).")
    ] = None,
    issued_to: Annotated[
        datetime | None, typer.Option("--to", formats=["%Y-%m-%d"], help="Issued on or before (YYYY-MM-DD).")
    ] = None,
    organization: Annotated[uuid.UUID | None, typer.Option(help="Organisation id, when there are several.")] = None,
) -> None:
    """Export the invoice list (newest first) to a workbook, with a progress bar."""
    from pydantic import ValidationError
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from invoiceflow.documents import service, xlsx
    from invoiceflow.invoices.schemas import InvoiceFilters

    try:
        filters = InvoiceFilters.model_validate(
            {
                "status": status,
                "client_id": client_id,
                "issue_date_from": _day(issued_from),
                "issue_date_to": _day(issued_to),
            }
        )
    except ValidationError as exc:
        for err in exc.errors():
            console.print(f"[red]{'.'.join(map(str, err['loc']))}: {escape(err['msg'])}[/red]")
        raise typer.Exit(2) from None

    async def work(settings: Settings, db: Database, session: AsyncSession) -> int:
        organization_id = await _organization(session, organization)
        total = await service.count_invoices(
            session,
            organization_id,
            status=filters.status,
            client_id=filters.client_id,
            issued_from=filters.issue_date_from,
            issued_to=filters.issue_date_to,
        )
        if total > xlsx.MAX_LIST_ROWS:
            raise _CommandError(f"{total:,} invoices match; one sheet holds {xlsx.MAX_LIST_ROWS:,}: narrow the filters")
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=console, transient=False) as progress:
            task = progress.add_task("Exporting invoices", total=total)
            return await service.export_invoice_list(
                session,
                _operator(organization_id),
                filters,
                output,
                on_progress=lambda rows: progress.advance(task, rows),
            )

    written = _run(work)
    console.print(f"[green]Exported {written:,} invoices[/green] ({fmt.value}) to {escape(str(output))}")
