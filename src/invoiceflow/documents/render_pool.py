"""Rendering PDF and Excel files in processes of their own.

ReportLab holds the GIL for a whole render (about 6 ms for a five-line invoice, more for long ones), so
in a process that also answers requests and runs workflows every render stalls all of them, and the
process never uses more than one core. With `pdf_render_workers` ≥ 1 (by default 1 on a machine with two
or more CPUs) renders run in that many spawned processes; with 0 they run in a thread of the caller.

The pool is one per process, started on the first render. A render that finds the pool broken (its
process was killed) is done in a thread instead and the next one starts a new pool: rendering never fails
because of the pool. Pools that die three times in a row before rendering anything (processes that cannot
start here) are given up on: the process renders in threads from then on. A render's own error (a layout
that does not fit, say) is raised as it is.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Literal

from reportlab.platypus.doctemplate import LayoutError

from invoiceflow.core.errors import AppError
from invoiceflow.core.settings import Settings
from invoiceflow.documents import pdf, xlsx
from invoiceflow.documents.model import InvoiceDocument

log = logging.getLogger("invoiceflow.documents")

RenderFormat = Literal["pdf", "xlsx"]


class DocumentTooLarge(AppError):
    """Something in the invoice (an address, a description) is taller than a page: no retry will fit it."""

    status_code = 422
    code = "DOCUMENT_TOO_LARGE_TO_RENDER"


# Pools that broke before rendering anything, in a row: processes that cannot start here (a main module
# that runs its work on import, say). After this many the process renders in threads for good.
GIVE_UP_AFTER = 3

_lock = threading.Lock()
_pool: ProcessPoolExecutor | None = None
_pool_size = 0
_pool_rendered = False
_stillborn = 0


def render_document(fmt: RenderFormat, doc: InvoiceDocument, page_size: pdf.PageSize) -> bytes:
    """The file itself; what the pool's processes run."""
    if fmt == "pdf":
        return pdf.render_pdf(doc, page_size=page_size)
    return xlsx.render_invoice_xlsx(doc)


def workers_for(settings: Settings) -> int:
    """The `pdf_render_workers` setting. Unless it is set explicitly, a process that multiprocessing started
    (a render process itself, a batch pipeline's pool process) renders in threads: it was started to share
    the cores out already."""
    if "pdf_render_workers" not in settings.model_fields_set and multiprocessing.parent_process() is not None:
        return 0
    return settings.pdf_render_workers


def _executor(workers: int) -> ProcessPoolExecutor:
    global _pool, _pool_size, _pool_rendered
    with _lock:
        if _pool is None or _pool_size != workers:
            _pool_rendered = False
            if _pool is not None:
                _pool.shutdown(wait=False)
            # Spawned, never forked: the caller has threads (DBOS, the database drivers) a fork would copy
            # mid-state.
            _pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
            _pool_size = workers
        return _pool


def _discard(pool: ProcessPoolExecutor) -> None:
    global _pool, _stillborn
    with _lock:
        if _pool is pool:
            _pool = None
            _stillborn = 0 if _pool_rendered else _stillborn + 1
            if _stillborn == GIVE_UP_AFTER:
                log.error("render processes died %s times before rendering anything: rendering in threads", _stillborn)
    pool.shutdown(wait=False)


def pool_enabled() -> bool:
    """False once render processes proved unable to start in this process."""
    return _stillborn < GIVE_UP_AFTER


async def render(fmt: RenderFormat, doc: InvoiceDocument, *, page_size: pdf.PageSize, workers: int) -> bytes:
    """Render `doc` as `fmt`: in the pool when `workers` ≥ 1, else in a thread. Raises `DocumentTooLarge`
    (422) for content that cannot be laid out on a page."""
    try:
        return await _render(fmt, doc, page_size, workers)
    except LayoutError as exc:
        raise DocumentTooLarge(
            f"Invoice {doc.number or ''} is too large to lay out on one {page_size} page: shorten the longest "
            "address, description or note".replace("  ", " "),
            details={"format": fmt, "reason": str(exc)[:200]},
        ) from None


async def _render(fmt: RenderFormat, doc: InvoiceDocument, page_size: pdf.PageSize, workers: int) -> bytes:
    global _pool_rendered
    if workers > 0 and pool_enabled():
        pool = _executor(workers)
        try:
            data = await asyncio.wrap_future(pool.submit(render_document, fmt, doc, page_size))
        except BrokenProcessPool:
            log.warning("the render process died; rendering in a thread and starting a new one next time")
            _discard(pool)
        else:
            _pool_rendered = True
            return data
    return await asyncio.to_thread(render_document, fmt, doc, page_size)


def warm_up(workers: int) -> None:
    """Start the render processes now (a process that will render soon: the first render then does not
    wait about a second for an interpreter to start)."""
    if workers > 0 and pool_enabled():
        _executor(workers).submit(int)


def shutdown() -> None:
    """Stop the pool and forget past failures (tests; at interpreter exit concurrent.futures stops it)."""
    global _pool, _stillborn
    with _lock:
        pool, _pool = _pool, None
        _stillborn = 0
    if pool is not None:
        pool.shutdown(wait=True)
