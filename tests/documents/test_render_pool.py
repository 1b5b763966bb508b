"""Rendering in a process of its own (documents.render_pool): the same file as in a thread, errors raised
as they are, and a killed render process never fails a render."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path

import pytest
from openpyxl import load_workbook
from pypdf import PdfReader

from invoiceflow.documents import render_pool
from invoiceflow.documents.pdf import render_pdf
from tests.conftest import make_settings
from tests.documents.helpers import five_lines, make_document


@pytest.fixture(autouse=True)
def _fresh_pool() -> Iterator[None]:
    render_pool.shutdown()
    yield
    render_pool.shutdown()


def _pool_pids() -> set[int]:
    pool = render_pool._pool
    assert pool is not None
    return set(pool._processes)


def test_a_pooled_render_is_the_threads_render_byte_for_byte() -> None:
    doc = make_document(five_lines())
    pooled = asyncio.run(render_pool.render("pdf", doc, page_size="A4", workers=1))
    assert pooled == render_pdf(doc, page_size="A4")
    pids = _pool_pids()
    assert pids
    assert os.getpid() not in pids
    assert "INV-2026-00042" in "".join(page.extract_text() for page in PdfReader(BytesIO(pooled)).pages)

    sheet = asyncio.run(render_pool.render("xlsx", doc, page_size="A4", workers=1))
    assert load_workbook(BytesIO(sheet)).active is not None


def test_a_render_error_is_raised_as_it_is() -> None:
    broken = dataclasses.replace(make_document(), logo=b"not an image")
    with pytest.raises(ValueError, match="logo"):
        asyncio.run(render_pool.render("pdf", broken, page_size="A4", workers=1))
    # The pool survives a render's own error.
    assert asyncio.run(render_pool.render("pdf", make_document(), page_size="A4", workers=1)).startswith(b"%PDF")


def test_a_killed_render_process_is_replaced_and_no_render_fails() -> None:
    doc = make_document()
    expected = render_pdf(doc, page_size="LETTER")
    assert asyncio.run(render_pool.render("pdf", doc, page_size="LETTER", workers=1)) == expected
    (victim,) = _pool_pids()
    os.kill(victim, signal.SIGKILL)
    # The render that meets the dead pool is done in a thread; the next one starts a new process.
    assert asyncio.run(render_pool.render("pdf", doc, page_size="LETTER", workers=1)) == expected
    assert asyncio.run(render_pool.render("pdf", doc, page_size="LETTER", workers=1)) == expected
    assert victim not in _pool_pids()


def test_zero_workers_render_in_a_thread_and_start_no_process() -> None:
    doc = make_document()
    assert asyncio.run(render_pool.render("pdf", doc, page_size="A4", workers=0)) == render_pdf(doc)
    assert render_pool._pool is None


def test_the_setting_decides_and_defaults_by_cpu_count(tmp_path: Path) -> None:
    assert render_pool.workers_for(make_settings("sqlite:///x.db", tmp_path, pdf_render_workers=0)) == 0
    assert render_pool.workers_for(make_settings("sqlite:///x.db", tmp_path, pdf_render_workers=3)) == 3
    default = render_pool.workers_for(make_settings("sqlite:///x.db", tmp_path))
    assert default == (1 if (os.cpu_count() or 1) >= 2 else 0)


BROKEN_MAIN = """
import asyncio
from invoiceflow.documents import render_pool
from tests.documents.helpers import make_document

if __name__ != "__main__":
    # What a script doing its work at import does to a spawned render process: it cannot start.
    raise SystemExit(1)
doc = make_document()
renders = [asyncio.run(render_pool.render("pdf", doc, page_size="A4", workers=1)) for _ in range(5)]
print(all(pdf.startswith(b"%PDF") for pdf in renders), render_pool.pool_enabled(), render_pool._pool is None)
"""


def test_render_processes_that_cannot_start_are_given_up_on(tmp_path: Path) -> None:
    """Every render still succeeds (in a thread); after three pools died unborn no fourth is started."""
    script = tmp_path / "no_main_guard.py"
    script.write_text(BROKEN_MAIN)
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "False", "True"], done.stdout
