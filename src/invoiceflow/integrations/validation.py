"""Checking fetched documents: parse once, validate with the official rules, read the dedupe identity.

Validation is CPU-bound (5-15 ms a document with the EN 16931 and Peppol rules) and the rules hold the GIL,
so a job checks its pages in worker processes, each with the rules compiled once (about 1.5 s at start).
With 0 workers (tests, one-CPU machines) they are checked on a thread of this process instead.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import multiprocessing
import os
import threading
from collections.abc import Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

from invoiceflow.core.errors import AppError
from invoiceflow.einvoicing.validator import Validator, get_validator
from invoiceflow.einvoicing.xmlsafe import parse_xml
from invoiceflow.integrations.dedupe import Identity, NoIdentity, document_sha256, identity_of

log = logging.getLogger("invoiceflow.integrations")

# Rule ids of refusals that are not a rule of the official sets (the document could not be read at all).
NOT_XML = "XML-UNREADABLE"
NO_IDENTITY = "IDENTITY-MISSING"
_MAX_RULE_IDS = 50


@dataclass(frozen=True, slots=True)
class Checked:
    """The verdict on one document. `identity` is None when the document could not be read."""

    sha256: str
    valid: bool
    rule_ids: tuple[str, ...]
    message: str | None
    identity: Identity | None


def check_document(validator: Validator, data: bytes) -> Checked:
    digest = document_sha256(data)
    try:
        root = parse_xml(data)
    except AppError as exc:
        return Checked(digest, False, (NOT_XML,), f"{exc.code}: {exc.message}"[:500], None)
    try:
        identity = identity_of(root)
    except NoIdentity as exc:
        return Checked(digest, False, (NO_IDENTITY,), str(exc), None)
    try:
        report = validator.validate_document(root)
    except AppError as exc:  # not an invoice the rules know (the root element is something else)
        if exc.status_code >= 500:  # the rules themselves are missing: not the document's fault
            raise
        return Checked(digest, False, (exc.code,), exc.message[:500], identity)
    if report.valid:
        return Checked(digest, True, (), None, identity)
    fatal = [f for f in report.findings if f.severity == "fatal"]
    rule_ids = tuple(dict.fromkeys(f.rule_id for f in fatal))[:_MAX_RULE_IDS]
    message = f"{len(fatal)} fatal finding(s): " + "; ".join(f"{f.rule_id}: {f.message}" for f in fatal[:3])
    return Checked(digest, False, rule_ids, message[:2000], identity)


# --- worker processes --------------------------------------------------------------------------------------

_worker_validator: Validator | None = None


def _init_worker(rules_dir: str) -> None:
    global _worker_validator
    _worker_validator = get_validator(Path(rules_dir))
    _worker_validator.warm_up()


def _check_batch_in_worker(documents: list[bytes]) -> list[Checked]:
    assert _worker_validator is not None, "worker started without its initializer"
    return [check_document(_worker_validator, data) for data in documents]


def _check_batch(rules_dir: Path, documents: list[bytes]) -> list[Checked]:
    validator = get_validator(rules_dir)
    return [check_document(validator, data) for data in documents]


_pools: dict[tuple[Path, int], ProcessPoolExecutor] = {}
_pools_lock = threading.Lock()


def _pool(rules_dir: Path, workers: int) -> ProcessPoolExecutor:
    key = (rules_dir.resolve(), workers)
    with _pools_lock:
        pool = _pools.get(key)
        if pool is None:
            # spawn, not fork: this process runs an event loop, threads and the Saxon runtime.
            pool = ProcessPoolExecutor(
                max_workers=workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker,
                initargs=(str(key[0]),),
            )
            _pools[key] = pool
        return pool


def _forget(executor: Executor) -> None:
    with _pools_lock:
        for key, pool in list(_pools.items()):
            if pool is executor:
                del _pools[key]
    executor.shutdown(wait=False, cancel_futures=True)


def shutdown_pools() -> None:
    with _pools_lock:
        pools = list(_pools.values())
        _pools.clear()
    for pool in pools:
        pool.shutdown(wait=True, cancel_futures=True)


atexit.register(shutdown_pools)


def default_workers(configured: int | None) -> int:
    if configured is not None:
        return configured
    cpus = os.cpu_count() or 1
    return cpus if cpus > 1 else 0


class DocumentChecker:
    """Checks batches of documents on `workers` processes (0: a thread of this process)."""

    def __init__(self, rules_dir: Path, workers: int) -> None:
        self.rules_dir = rules_dir
        self.workers = workers
        self._executor: Executor | None = _pool(rules_dir, workers) if workers > 0 else None

    async def check(self, documents: Sequence[bytes]) -> list[Checked]:
        if not documents:
            return []
        if self._executor is None:
            return await asyncio.to_thread(_check_batch, self.rules_dir, list(documents))
        loop = asyncio.get_running_loop()
        # Two chunks per worker: a slow document does not leave the other worker idle for long.
        chunks = max(1, min(len(documents), self.workers * 2))
        size = -(-len(documents) // chunks)
        parts = [list(documents[i : i + size]) for i in range(0, len(documents), size)]
        try:
            results = await asyncio.gather(
                *(loop.run_in_executor(self._executor, _check_batch_in_worker, part) for part in parts)
            )
        except BrokenProcessPool:
            # A worker died (killed, out of memory): the pool is unusable. The next checker starts a new one.
            _forget(self._executor)
            raise
        return [checked for part in results for checked in part]
