"""`invoiceflow documents render|export`, run in subprocesses against a demo database, as an operator would."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path

import pytest
from openpyxl import load_workbook
from pypdf import PdfReader
from sqlalchemy import Engine, create_engine, func, select

from invoiceflow.core.db import sync_url
from invoiceflow.documents.models import Document
from invoiceflow.invoices.models import Invoice
from tests.test_cli import run_cli


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str], Engine]]:
    """A data folder with the demo organisation and 30 invoices; its env and an engine on its database."""
    folder = tmp_path_factory.mktemp("documents-cli")
    env = {"INVOICEFLOW_DATA_DIR": str(folder / "data")}
    run_cli("demo-data", "--invoices", "30", cwd=folder, env=env)
    engine = create_engine(sync_url(f"sqlite:///{(folder / 'data' / 'invoiceflow.db').as_posix()}"))
    yield folder, env, engine
    engine.dispose()


def live_invoices(engine: Engine, status: str | None = None) -> int:
    stmt = select(func.count()).select_from(Invoice).where(Invoice.deleted_at.is_(None))
    if status is not None:
        stmt = stmt.where(Invoice.status == status)
    with engine.connect() as conn:
        return int(conn.execute(stmt).scalar_one())


def test_render_by_number_writes_the_pdf_and_stores_it_once(demo: tuple[Path, dict[str, str], Engine]) -> None:
    folder, env, engine = demo
    with engine.connect() as conn:
        invoice_id, number = conn.execute(select(Invoice.id, Invoice.invoice_number).limit(1)).one()
    target = folder / "out.pdf"

    first = run_cli("documents", "render", "--invoice", number, "-o", str(target), cwd=folder, env=env).stdout

    assert "Rendered" in first
    text = "\n".join(page.extract_text() for page in PdfReader(BytesIO(target.read_bytes())).pages)
    assert number in text
    with engine.connect() as conn:
        [row] = conn.execute(select(Document).where(Document.invoice_id == invoice_id)).all()
    assert (folder / "data" / "documents" / row.storage_key).read_bytes() == target.read_bytes()

    second = run_cli("documents", "render", "--invoice", number, cwd=folder, env=env).stdout
    assert "Unchanged, reused" in second
    with engine.connect() as conn:
        assert conn.execute(select(Document).where(Document.invoice_id == invoice_id)).all() == [row]


def test_render_an_invoice_as_xlsx_by_id(demo: tuple[Path, dict[str, str], Engine]) -> None:
    folder, env, engine = demo
    with engine.connect() as conn:
        invoice_id, number = conn.execute(select(Invoice.id, Invoice.invoice_number).limit(1)).one()
    target = folder / "out.xlsx"

    run_cli(
        "documents", "render", "--invoice", str(invoice_id), "--format", "xlsx", "-o", str(target), cwd=folder, env=env
    )

    sheet = load_workbook(target).worksheets[0]
    assert number in str(sheet["A1"].value)


def test_render_an_invoice_of_another_organisation_fails_cleanly(demo: tuple[Path, dict[str, str], Engine]) -> None:
    folder, env, engine = demo
    with engine.connect() as conn:
        number = conn.execute(select(Invoice.invoice_number).limit(1)).scalar_one()
    args = ("documents", "render", "--invoice", number, "--organization", str(uuid.uuid4()))
    result = run_cli(*args, cwd=folder, env=env, check=False)
    assert result.returncode == 1
    assert f"No invoice '{number}' in organisation" in result.stdout
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("status", [None, "paid"])
def test_export_writes_one_row_per_matching_invoice(
    demo: tuple[Path, dict[str, str], Engine], status: str | None
) -> None:
    folder, env, engine = demo
    target = folder / f"list-{status}.xlsx"
    args = ["documents", "export", "--format", "xlsx", "-o", str(target)]
    if status:
        args += ["--status", status]

    out = run_cli(*args, cwd=folder, env=env).stdout

    expected = live_invoices(engine, status)
    assert expected > 0
    assert f"Exported {expected:,} invoices" in out
    book = load_workbook(target, read_only=True)
    rows = list(book.worksheets[0].iter_rows(values_only=True))
    book.close()  # read-only workbooks keep their file open until closed
    assert rows[0][0] == "Number"
    assert len(rows) - 1 == expected
    if status:
        assert {row[1] for row in rows[1:]} == {status}


def test_export_rejects_an_unknown_status(demo: tuple[Path, dict[str, str], Engine]) -> None:
    folder, env, _ = demo
    target = folder / "bad.xlsx"
    result = run_cli("documents", "export", "--status", "archived", "-o", str(target), cwd=folder, env=env, check=False)
    assert result.returncode == 2
    assert "status" in result.stdout
    assert not target.exists()
