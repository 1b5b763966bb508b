"""Folder source and destination: e-invoice files in a directory of this machine (or a mounted share).

Source: every `*.xml` file (any case) under the folder, subfolders included, in the order of their relative
paths; the cursor is the last relative path handed out, so a run resumes after it. Files whose names sort before
the cursor are not seen again: producers should name files so that new ones sort last (a timestamp prefix) and
move them in atomically (hidden names and `*.tmp` files are skipped). The format comes from the root element;
a file that does not parse is still handed out (as "ubl") so that validation reports it for that file alone.

Path tricks are refused: the configured path may not contain `..` (and must lie inside an allowed root when the
caller gives some), symbolic links that lead out of the folder are skipped with a warning, files are opened
without following a final symlink, and only regular files are read.

Destination: each document is written to `<safe filename>` atomically (a hidden temporary file, fsync, then a
hard link, which never replaces an existing file). An existing file with the same bytes is a duplicate; with
different bytes the push is rejected and nothing is overwritten.
"""

from __future__ import annotations

import asyncio
import bisect
import dataclasses
import errno
import logging
import os
import stat
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path, PurePath
from typing import Literal

from pydantic import field_validator

from invoiceflow.core.errors import AppError
from invoiceflow.einvoicing.xmlsafe import document_kind, parse_xml
from invoiceflow.integrations.connectors.base import (
    ConnectorOptions,
    ExternalApiError,
    PushResult,
    SourceDocument,
    SourcePage,
    check_idempotency_key,
    safe_filename,
)
from invoiceflow.integrations.resilience import CallGuard, ResilienceSettings, RetryPolicy, settings_from

log = logging.getLogger("invoiceflow.integrations")

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # opening a FIFO planted in the folder must not hang


class FolderConfig(ConnectorOptions):
    """`{"type": "folder", "path": "/srv/invoices/in"}`; a relative path is taken inside the first allowed root."""

    type: Literal["folder"] = "folder"
    path: str

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not value.strip() or "\0" in value:
            raise ValueError("path must be a folder path")
        if ".." in PurePath(value).parts:
            raise ValueError("path must not contain '..'")
        return value


def resolve_folder(path: str, allowed_roots: Sequence[Path] | None) -> Path:
    """The folder's real path, checked against the allowed roots (when given)."""
    candidate = Path(path)
    if not candidate.is_absolute():
        if not allowed_roots:
            raise ValueError("path must be absolute")
        candidate = allowed_roots[0] / candidate
    real = candidate.resolve()
    if allowed_roots is not None and not any(real.is_relative_to(root.resolve()) for root in allowed_roots):
        raise ValueError("path must be inside one of the folders allowed for integrations")
    return real


def detect_format(content: bytes) -> str:
    """ "ubl" or "cii" from the root element; "ubl" when it cannot be told (validation will say why)."""
    try:
        return document_kind(parse_xml(content)).syntax
    except AppError:
        return "ubl"


def _is_candidate(name: str) -> bool:
    return not name.startswith(".") and name.lower().endswith(".xml")


class FolderSource:
    def __init__(self, root: Path, config: FolderConfig, *, guard: CallGuard | None = None) -> None:
        self.root = root
        self.config = config
        self.endpoint = root.as_uri()
        self._guard = guard or CallGuard("folder", folder_settings(config))

    async def fetch_page(self, cursor: str | None, limit: int) -> SourcePage:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        attempted = await self._guard.call("fetch", self.endpoint, lambda: asyncio.to_thread(self._page, cursor, limit))
        return attempted.value

    def _list(self) -> list[str]:
        if not self.root.is_dir():
            raise ExternalApiError(f"the folder {self.root} does not exist", api_endpoint=self.endpoint)
        names: list[str] = []
        for dirpath, dirnames, filenames in os.walk(self.root, followlinks=False):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            base = Path(dirpath)
            for filename in filenames:
                if _is_candidate(filename):
                    names.append((base / filename).relative_to(self.root).as_posix())
        names.sort()
        return names

    def _page(self, cursor: str | None, limit: int) -> SourcePage:
        names = self._list()
        start = bisect.bisect_right(names, cursor) if cursor is not None else 0
        documents: list[SourceDocument] = []
        last = cursor
        for relative in names[start:]:
            if len(documents) == limit:
                break
            last = relative
            content = self._read(relative)
            if content is not None:
                documents.append(SourceDocument(source_id=relative, format=detect_format(content), content=content))
        return SourcePage(documents=documents, next_cursor=last)

    def _read(self, relative: str) -> bytes | None:
        """The file's bytes; None (skipped) when it vanished, is not a regular file or leads out of the folder."""
        real = Path(os.path.realpath(self.root / relative))
        if not real.is_relative_to(self.root):
            log.warning("skipped %s in %s: it is a link to outside the folder", relative, self.root)
            return None
        try:
            fd = os.open(real, os.O_RDONLY | _NOFOLLOW | _NONBLOCK)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # swapped for a symlink since it was resolved
                log.warning("skipped %s in %s: it became a symbolic link", relative, self.root)
                return None
            raise ExternalApiError(
                f"could not read {relative}: {exc.strerror}", api_endpoint=self.endpoint, retryable=False
            ) from exc
        with os.fdopen(fd, "rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode):
                log.warning("skipped %s in %s: not a regular file", relative, self.root)
                return None
            cap = self.config.max_document_bytes
            if info.st_size > cap:
                raise ExternalApiError(
                    f"{relative} has {info.st_size} bytes, over the {cap} byte limit",
                    api_endpoint=self.endpoint,
                    retryable=False,
                )
            return handle.read(cap + 1)[:cap]

    async def aclose(self) -> None:
        return None


class FolderDestination:
    def __init__(self, root: Path, config: FolderConfig, *, guard: Callable[[], CallGuard]) -> None:
        self.root = root
        self.config = config
        self.endpoint = root.as_uri()
        self._guard_source = guard
        self._guard: CallGuard | None = None

    async def push(
        self, document: bytes, *, idempotency_key: str, filename: str, content_type: str = "application/xml"
    ) -> PushResult:
        check_idempotency_key(idempotency_key)
        name = safe_filename(filename, fallback=idempotency_key)
        if self._guard is None:
            self._guard = self._guard_source()
        attempted = await self._guard.call(
            "push",
            self.endpoint,
            lambda: asyncio.to_thread(self._write, name, document),
            result_label=lambda result: result.outcome,
        )
        return dataclasses.replace(attempted.value, attempts=attempted.attempts)

    def _write(self, name: str, document: bytes) -> PushResult:
        target = self.root / name
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(dir=self.root, prefix=f".{name}.", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(document)
                    out.flush()
                    os.fsync(out.fileno())
                try:
                    os.link(tmp_name, target)  # fails when the name exists, unlike os.replace
                except FileExistsError:
                    return self._compare(target, name, document)
                except OSError as exc:
                    if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
                        raise
                    # A file system without hard links: check, then rename over (a concurrent writer of the same
                    # name could slip in between, which the link above rules out).
                    if os.path.lexists(target):
                        return self._compare(target, name, document)
                    os.replace(tmp_name, target)
                _fsync_dir(self.root)
            finally:
                Path(tmp_name).unlink(missing_ok=True)
        except OSError as exc:
            raise ExternalApiError(
                f"could not write {name}: {exc.strerror or exc}",
                api_endpoint=self.endpoint,
                retryable=not isinstance(exc, PermissionError),
            ) from exc
        return PushResult("accepted", None, name, f"written as {name}", 0)

    def _compare(self, target: Path, name: str, document: bytes) -> PushResult:
        not_a_file = f"{name} exists and is not a regular file; it was not overwritten"
        try:
            fd = os.open(target, os.O_RDONLY | _NOFOLLOW | _NONBLOCK)
        except OSError:
            return PushResult("rejected", None, None, not_a_file, 0)
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                return PushResult(
                    "rejected", None, None, f"{name} exists and is not a regular file; not overwritten", 0
                )
            existing = handle.read(len(document) + 1)
        if existing == document:
            return PushResult("duplicate", None, name, f"the same document already exists as {name}", 0)
        return PushResult(
            "rejected", None, None, f"a different document already exists as {name}; it was not overwritten", 0
        )

    async def aclose(self) -> None:
        return None


def _fsync_dir(path: Path) -> None:
    if os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def folder_settings(config: FolderConfig) -> ResilienceSettings:
    # Local I/O has nothing to retry: an OSError is reported as it is.
    return dataclasses.replace(settings_from(config), retry=RetryPolicy(max_attempts=1))
