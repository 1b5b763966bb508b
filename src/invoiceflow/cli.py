"""`invoiceflow` command line."""

from __future__ import annotations

import asyncio
import getpass
import uuid
from typing import Annotated

import typer
from rich.console import Console
from sqlalchemy import select

from invoiceflow.core.settings import get_settings
from invoiceflow.documents.cli import app as documents_app
from invoiceflow.einvoicing.cli import app as einvoice_app
from invoiceflow.integrations.cli import app as sync_app

app = typer.Typer(help="invoiceflow: invoicing and e-invoicing platform.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
users_app = typer.Typer(help="User accounts.", no_args_is_help=True)
schedules_app = typer.Typer(help="Scheduled jobs.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")
app.add_typer(schedules_app, name="schedules")
app.add_typer(einvoice_app, name="einvoice")
app.add_typer(documents_app, name="documents")
app.add_typer(sync_app, name="sync")
console = Console()


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes (scale-out mode).")] = 1,
    migrate: Annotated[bool, typer.Option(help="Apply pending migrations first.")] = True,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Serve the API and its docs (/docs)."""
    import uvicorn

    settings = get_settings()
    if migrate:
        from invoiceflow.core.migrate import upgrade

        upgrade(settings.effective_database_url)
    if workers > 1 and settings.is_sqlite:
        console.print("[yellow]SQLite is single-process: use PostgreSQL for several workers.[/yellow]")
        workers = 1
    console.print(f"invoiceflow on http://{host}:{port}  (docs: http://{host}:{port}/docs)")
    if workers > 1:
        from invoiceflow.server import run_workers

        run_workers(host, port, workers, {"log_level": log_level, "proxy_headers": False})
        return
    uvicorn.run(
        "invoiceflow.main:create_app",
        factory=True,
        host=host,
        port=port,
        log_level=log_level,
        proxy_headers=False,
    )


@app.command()
def worker(
    executor_id: Annotated[
        str | None,
        typer.Option(help="Stable id of this worker (default: INVOICEFLOW_EXECUTOR_ID, else <host>-worker)."),
    ] = None,
    migrate: Annotated[bool, typer.Option(help="Apply pending migrations first.")] = True,
) -> None:
    """Run workflows (invoice journeys, uploads, schedules) and deliver events, until SIGINT/SIGTERM."""
    import logging

    from invoiceflow.workflows.worker import run_worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = get_settings()
    if migrate:
        from invoiceflow.core.migrate import upgrade

        upgrade(settings.effective_database_url)
    asyncio.run(run_worker(settings, executor_id=executor_id))


@schedules_app.command("list")
def schedules_list(count: Annotated[int, typer.Option(min=1, max=20, help="Next runs to show.")] = 3) -> None:
    """The scheduled jobs, their cron (Europe/Brussels) and their next runs."""
    from datetime import UTC, datetime

    from rich.table import Table

    from invoiceflow.workflows.engine import make_client
    from invoiceflow.workflows.schedules import SCHEDULE_ZONE, SCHEDULES

    settings = get_settings()
    last_fired: dict[str, str] = {}
    try:
        client = make_client(settings)
        try:
            for row in client.list_schedules():
                last_fired[row["schedule_name"]] = row["last_fired_at"] or ""
        finally:
            client.destroy()
    except Exception as exc:  # noqa: BLE001 - an unmigrated or unreachable database: show the plan alone
        console.print(f"[yellow]Could not read the applied schedules: {exc}[/yellow]")
    table = Table(title=f"Schedules ({SCHEDULE_ZONE})")
    for column in ("name", "cron", "what", "last fired", "next runs"):
        table.add_column(column)
    now = datetime.now(UTC)
    for schedule in SCHEDULES:
        runs = ", ".join(run.isoformat(timespec="minutes") for run in schedule.next_runs(now, count))
        fired = last_fired.get(schedule.name, "never" if last_fired else "not applied yet")
        table.add_row(schedule.name, schedule.cron, schedule.description, fired or "never", runs)
    console.print(table)


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    from invoiceflow.core.migrate import upgrade

    settings = get_settings()
    upgrade(settings.effective_database_url, revision)
    console.print(f"[green]Database at {revision}[/green] ({settings.effective_database_url.split('@')[-1]})")


async def _with_session(fn, *, migrate: bool = True):  # type: ignore[no-untyped-def]
    from invoiceflow.core.db import Database
    from invoiceflow.core.migrate import upgrade

    settings = get_settings()
    if migrate:
        upgrade(settings.effective_database_url)
    db = Database(settings.effective_database_url)
    try:
        async with db.write_sessions() as session:
            result = await fn(session, settings)
            await session.commit()
            return result
    finally:
        await db.dispose()


@app.command("demo-data")
def demo_data(invoices: Annotated[int, typer.Option(min=0, max=100_000, help="Invoices to create.")] = 100) -> None:
    """Load a demo organisation with clients, orders and invoices in every status (safe to re-run)."""
    from invoiceflow.auth.security import Passwords
    from invoiceflow.demo import DEMO_EMAIL, DEMO_PASSWORD, load_demo_data

    async def run(session, settings):  # type: ignore[no-untyped-def]
        passwords = Passwords(time_cost=settings.argon2_time_cost, memory_kib=settings.argon2_memory_kib)
        return await load_demo_data(session, passwords, invoices=invoices)

    summary = asyncio.run(_with_session(run))
    console.print(
        f"[green]Demo data ready[/green]: +{summary.created_clients} clients, +{summary.created_orders} orders, "
        f"+{summary.created_invoices} invoices ({summary.total_invoices} in total)."
    )
    console.print(f"Log in as [bold]{DEMO_EMAIL}[/bold] / [bold]{DEMO_PASSWORD}[/bold]")


@users_app.command("create")
def users_create(
    email: Annotated[str, typer.Option(prompt=True, help="Login email.")],
    name: Annotated[str, typer.Option(prompt=True, help="Display name.")],
    organization: Annotated[str, typer.Option(prompt=True, help="Organisation name (created when new).")],
    admin: Annotated[bool, typer.Option("--admin", help="Give the admin role.")] = False,
    password: Annotated[
        str | None, typer.Option(help="Password (asked when omitted).", envvar="INVOICEFLOW_NEW_PASSWORD")
    ] = None,
) -> None:
    """Create a user, in an existing organisation or a new one."""
    from pydantic import ValidationError

    from invoiceflow.auth.models import User
    from invoiceflow.auth.schemas import UserCreate
    from invoiceflow.auth.security import Passwords
    from invoiceflow.core.models import Organization

    if password is None:
        password = getpass.getpass("Password: ")
    try:
        data = UserCreate(email=email, name=name, password=password, role="admin" if admin else "member")
    except ValidationError as exc:
        for err in exc.errors():
            console.print(f"[red]{'.'.join(map(str, err['loc']))}: {err['msg']}[/red]")
        raise typer.Exit(2) from None

    async def run(session, settings):  # type: ignore[no-untyped-def]
        email_norm = str(data.email).lower()
        if (await session.execute(select(User.id).where(User.email == email_norm))).first():
            return None
        org = (await session.execute(select(Organization).where(Organization.name == organization))).scalars().first()
        if org is None:
            org = Organization(id=uuid.uuid4(), name=organization, legal_name=organization)
            session.add(org)
            await session.flush()
        passwords = Passwords(time_cost=settings.argon2_time_cost, memory_kib=settings.argon2_memory_kib)
        user = User(
            id=uuid.uuid4(),
            organization_id=org.id,
            email=email_norm,
            name=data.name,
            password_hash=passwords.hash(data.password),
            role=data.role,
        )
        session.add(user)
        await session.flush()
        return user.id

    user_id = asyncio.run(_with_session(run))
    if user_id is None:
        console.print(f"[red]A user with email {email} already exists.[/red]")
        raise typer.Exit(1)
    console.print(f"[green]Created {'admin' if admin else 'member'} {email}[/green] ({user_id})")


if __name__ == "__main__":
    app()
