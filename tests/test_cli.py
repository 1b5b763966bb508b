"""The real `invoiceflow` command line, run in subprocesses the way a new user or an operator runs it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import Engine, create_engine, func, select

from invoiceflow.auth.models import User
from invoiceflow.core.db import sync_url
from invoiceflow.core.models import Organization
from invoiceflow.demo import DEMO_EMAIL
from invoiceflow.invoices.models import Invoice, InvoiceLine
from tests.conftest import create_pg_database, drop_pg_database, need_service

STATUSES = {"draft", "sent", "paid", "overdue", "cancelled"}


def run_cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """`python -m invoiceflow.cli ...` with only the settings given here (none leak in from the caller)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("INVOICEFLOW_")}
    base.update(
        {
            "INVOICEFLOW_ARGON2_TIME_COST": "1",
            "INVOICEFLOW_ARGON2_MEMORY_KIB": "1024",
            "COLUMNS": "200",
            "NO_COLOR": "1",
            "TERM": "dumb",
        }
    )
    base.update(env or {})
    result = subprocess.run(
        [sys.executable, "-m", "invoiceflow.cli", *args],
        cwd=cwd,
        env=base,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    if check:
        assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture
def engine_for() -> Iterator[list[Engine]]:
    engines: list[Engine] = []
    yield engines
    for engine in engines:
        engine.dispose()


def open_db(url: str, engines: list[Engine]) -> Engine:
    engine = create_engine(sync_url(url))
    engines.append(engine)
    return engine


def assert_demo_invoices(engine: Engine, expected: int) -> None:
    with engine.connect() as conn:
        org_id = conn.execute(select(User.organization_id).where(User.email == DEMO_EMAIL)).scalar_one()
        invoices = conn.execute(select(Invoice).where(Invoice.organization_id == org_id)).all()
        per_invoice = select(InvoiceLine.invoice_id, func.sum(InvoiceLine.line_total)).group_by(InvoiceLine.invoice_id)
        line_sums = dict(conn.execute(per_invoice).all())
    assert len(invoices) == expected
    assert sum(1 for inv in invoices if (inv.external_id or "").startswith("demo-")) == expected
    statuses = Counter(inv.status for inv in invoices)
    assert set(statuses) == STATUSES, statuses
    numbers = [inv.invoice_number for inv in invoices]
    assert None not in numbers
    assert len(set(numbers)) == expected
    for inv in invoices:
        assert isinstance(inv.total_amount, Decimal)
        # EN 16931 BR-CO-15 on every stored row; BR-CO-10 against the stored lines.
        assert inv.net_amount + inv.vat_amount == inv.total_amount, inv.external_id
        assert Decimal(line_sums[inv.id]) == inv.net_amount, inv.external_id
        assert inv.total_amount > 0
        assert inv.due_date >= inv.issue_date


def test_help_lists_the_commands(tmp_path: Path) -> None:
    out = run_cli("--help", cwd=tmp_path).stdout
    for command in ("serve", "db", "users", "demo-data"):
        assert command in out
    # The installed console script is the same application.
    script = Path(sys.executable).with_name("invoiceflow")
    if script.exists():
        installed = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60, check=True)
        for command in ("serve", "db", "users", "demo-data"):
            assert command in installed.stdout


def test_no_arguments_shows_help_not_a_traceback(tmp_path: Path) -> None:
    result = run_cli(cwd=tmp_path, check=False)
    assert "Traceback" not in result.stderr
    assert "demo-data" in result.stdout + result.stderr


def test_db_upgrade_creates_the_embedded_database(tmp_path: Path, engine_for: list[Engine]) -> None:
    data = tmp_path / "data"
    out = run_cli("db", "upgrade", cwd=tmp_path, env={"INVOICEFLOW_DATA_DIR": str(data)}).stdout
    db_file = data / "invoiceflow.db"
    assert db_file.is_file()
    assert "head" in out
    engine = open_db(f"sqlite:///{db_file.as_posix()}", engine_for)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar_one()
    # Running it again is harmless.
    run_cli("db", "upgrade", cwd=tmp_path, env={"INVOICEFLOW_DATA_DIR": str(data)})


def test_zero_configuration_uses_data_in_the_working_directory(tmp_path: Path) -> None:
    run_cli("db", "upgrade", cwd=tmp_path)
    assert (tmp_path / "data" / "invoiceflow.db").is_file()


def test_demo_data_is_complete_and_safe_to_rerun(tmp_path: Path, engine_for: list[Engine]) -> None:
    data = tmp_path / "data"
    env = {"INVOICEFLOW_DATA_DIR": str(data)}
    first = run_cli("demo-data", "--invoices", "40", cwd=tmp_path, env=env).stdout
    assert "+40 invoices (40 in total)" in first
    assert DEMO_EMAIL in first
    second = run_cli("demo-data", "--invoices", "40", cwd=tmp_path, env=env).stdout
    assert "+0 clients, +0 orders, +0 invoices (40 in total)" in second
    engine = open_db(f"sqlite:///{(data / 'invoiceflow.db').as_posix()}", engine_for)
    assert_demo_invoices(engine, 40)


def test_demo_data_refuses_a_negative_count(tmp_path: Path) -> None:
    env = {"INVOICEFLOW_DATA_DIR": str(tmp_path)}
    result = run_cli("demo-data", "--invoices", "-1", cwd=tmp_path, env=env, check=False)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_users_create_admin_then_refuses_a_duplicate(tmp_path: Path, engine_for: list[Engine]) -> None:
    data = tmp_path / "data"
    env = {"INVOICEFLOW_DATA_DIR": str(data)}
    args = ("users", "create", "--email", "Ops.Admin@Example.com", "--name", "Ops Admin")
    args += ("--organization", "Northwind BV", "--admin", "--password", "a-long-enough-passphrase")
    out = run_cli(*args, cwd=tmp_path, env=env).stdout
    assert "Created admin" in out

    engine = open_db(f"sqlite:///{(data / 'invoiceflow.db').as_posix()}", engine_for)
    with engine.connect() as conn:
        user = conn.execute(select(User)).one()
        org = conn.execute(select(Organization).where(Organization.id == user.organization_id)).one()
    assert user.email == "ops.admin@example.com"
    assert user.role == "admin"
    assert org.name == "Northwind BV"
    assert user.password_hash != "a-long-enough-passphrase"
    assert PasswordHasher().verify(user.password_hash, "a-long-enough-passphrase")

    again = run_cli(*args, cwd=tmp_path, env=env, check=False)
    assert again.returncode != 0
    assert "already exists" in again.stdout
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(User)).scalar_one() == 1

    # A member in the same organisation: no second organisation appears.
    member = ("users", "create", "--email", "clerk@example.com", "--name", "Clerk", "--organization", "Northwind BV")
    out = run_cli(*member, cwd=tmp_path, env={**env, "INVOICEFLOW_NEW_PASSWORD": "another-long-passphrase"}).stdout
    assert "Created member" in out
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Organization)).scalar_one() == 1
        roles = dict(conn.execute(select(User.email, User.role)).all())
    assert roles == {"ops.admin@example.com": "admin", "clerk@example.com": "member"}


def test_users_create_rejects_invalid_input_without_a_traceback(tmp_path: Path) -> None:
    args = ("users", "create", "--email", "not-an-email", "--name", "X", "--organization", "O", "--password", "short")
    result = run_cli(*args, cwd=tmp_path, env={"INVOICEFLOW_DATA_DIR": str(tmp_path / "data")}, check=False)
    assert result.returncode == 2
    assert "email" in result.stdout
    assert "Traceback" not in result.stderr


def test_demo_data_on_postgresql_needs_only_the_url(tmp_path: Path, engine_for: list[Engine]) -> None:
    need_service("PostgreSQL", 5432)
    name = f"invoiceflow_cli_{uuid.uuid4().hex[:12]}"
    url = create_pg_database(name)
    try:
        # A fresh, empty database: no `db upgrade` first, no data folder, no secret.
        out = run_cli("demo-data", "--invoices", "16", cwd=tmp_path, env={"INVOICEFLOW_DATABASE_URL": url}).stdout
        assert "+16 invoices (16 in total)" in out
        assert not (tmp_path / "data" / "invoiceflow.db").exists()
        engine = open_db(url, engine_for)
        assert_demo_invoices(engine, 16)
        engine.dispose()
    finally:
        drop_pg_database(name)


def test_schedules_list_shows_each_schedule_with_its_next_runs(tmp_path: Path) -> None:
    run_cli("db", "upgrade", cwd=tmp_path)
    out = run_cli("schedules", "list", "--count", "2", cwd=tmp_path).stdout
    for name, cron in (("overdue-sweep", "0 5 0 * * *"), ("payment-reminders", "0 0 9 * * *")):
        line = next(row for row in out.splitlines() if name in row)
        assert cron in line
        assert "not applied yet" in line  # no process has run workflows on this database
    assert "integration-runs" in out
    assert len(re.findall(r"T00:05\+0[12]:00", out)) >= 2  # the next two sweeps, Brussels wall-clock time
