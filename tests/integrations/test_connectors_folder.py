"""The folder connectors on a real temporary directory: paging by relative path, format detection, path tricks,
atomic writes, duplicates and flagged conflicts."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from invoiceflow.integrations.connectors import (
    ConnectorConfigError,
    ExternalApiError,
    Source,
    make_destination,
    make_source,
)
from invoiceflow.integrations.connectors.base import safe_filename
from tests.einvoicing.conftest import locate_rules_dir

pytestmark = pytest.mark.anyio

EXAMPLES = locate_rules_dir() / "examples"
UBL = EXAMPLES / "ubl" / "peppol__base-example.xml"
CII = EXAMPLES / "cii" / "en16931__CII_example1.xml"


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    if not UBL.is_file():
        pytest.skip(f"e-invoicing examples not found at {EXAMPLES}")
    root = tmp_path / "inbox"
    (root / "2026" / "03").mkdir(parents=True)
    (root / "2026" / "03" / "b.xml").write_bytes(UBL.read_bytes())
    (root / "2026" / "03" / "a.XML").write_bytes(CII.read_bytes())
    (root / "2026" / "01.xml").write_bytes(b"<Invoice>not closed")
    (root / "0-first.xml").write_bytes(UBL.read_bytes())
    (root / "notes.txt").write_text("not an invoice")
    (root / ".hidden.xml").write_bytes(UBL.read_bytes())
    (root / ".partial").mkdir()
    (root / ".partial" / "c.xml").write_bytes(UBL.read_bytes())
    (root / "z.xml.tmp").write_bytes(UBL.read_bytes())
    return root


def folder_source(path: Path | str, **config: object) -> Source:
    return make_source({"type": "folder", "path": str(path), **config}, {})


async def test_files_page_in_path_order_with_their_format(inbox: Path) -> None:
    source = folder_source(inbox)
    first = await source.fetch_page(None, 2)
    assert [(d.source_id, d.format) for d in first.documents] == [("0-first.xml", "ubl"), ("2026/01.xml", "ubl")]
    assert first.next_cursor == "2026/01.xml"
    assert first.documents[0].content == UBL.read_bytes()
    second = await source.fetch_page(first.next_cursor, 2)
    assert [(d.source_id, d.format) for d in second.documents] == [("2026/03/a.XML", "cii"), ("2026/03/b.xml", "ubl")]
    done = await source.fetch_page(second.next_cursor, 2)
    assert (done.documents, done.next_cursor) == ([], second.next_cursor)

    (inbox / "2027.xml").write_bytes(UBL.read_bytes())  # sorts after the cursor: picked up next time
    later = await source.fetch_page(second.next_cursor, 2)
    assert [d.source_id for d in later.documents] == ["2027.xml"]


async def test_links_out_of_the_folder_and_special_files_are_skipped(inbox: Path, tmp_path: Path) -> None:
    outside = tmp_path / "secret"
    outside.mkdir()
    (outside / "passwd.xml").write_bytes(UBL.read_bytes())
    (inbox / "1-escape.xml").symlink_to(outside / "passwd.xml")
    (inbox / "1-dir").symlink_to(outside, target_is_directory=True)
    (inbox / "1-inside.xml").symlink_to(inbox / "0-first.xml")
    os.mkfifo(inbox / "1-fifo.xml")
    page = await folder_source(inbox).fetch_page(None, 10)
    ids = [d.source_id for d in page.documents]
    assert ids == ["0-first.xml", "1-inside.xml", "2026/01.xml", "2026/03/a.XML", "2026/03/b.xml"]


async def test_skipped_files_do_not_end_a_page_early(inbox: Path, tmp_path: Path) -> None:
    for n in range(3):
        (inbox / f"00-{n}.xml").symlink_to(tmp_path)
    page = await folder_source(inbox).fetch_page(None, 2)
    assert [d.source_id for d in page.documents] == ["0-first.xml", "2026/01.xml"]


def test_paths_with_dot_dot_or_outside_the_allowed_roots_are_refused(tmp_path: Path) -> None:
    allowed = tmp_path / "integrations"
    (allowed / "acme").mkdir(parents=True)
    with pytest.raises(ConnectorConfigError, match=r"'\.\.'"):
        make_source({"type": "folder", "path": f"{allowed}/../etc"}, {})
    with pytest.raises(ConnectorConfigError, match="inside one of the folders allowed"):
        make_source({"type": "folder", "path": str(tmp_path)}, {}, folder_roots=[allowed])
    (allowed / "link").symlink_to(tmp_path)
    with pytest.raises(ConnectorConfigError, match="inside one of the folders allowed"):
        make_destination({"type": "folder", "path": "link"}, {}, folder_roots=[allowed])
    with pytest.raises(ConnectorConfigError, match="must be absolute"):
        make_source({"type": "folder", "path": "acme"}, {})
    source = make_source({"type": "folder", "path": "acme"}, {}, folder_roots=[allowed])
    assert getattr(source, "root") == (allowed / "acme").resolve()  # noqa: B009 - not on the Source protocol


async def test_a_missing_folder_and_an_oversized_file_are_errors(tmp_path: Path) -> None:
    with pytest.raises(ExternalApiError, match="does not exist"):
        await folder_source(tmp_path / "nope").fetch_page(None, 10)
    (tmp_path / "big.xml").write_bytes(b"<a>" + b"x" * 5000 + b"</a>")
    with pytest.raises(ExternalApiError, match="over the 2048 byte limit") as caught:
        await folder_source(tmp_path, max_document_bytes=2048).fetch_page(None, 10)
    assert caught.value.retryable is False


async def test_the_destination_writes_once_and_flags_a_changed_document(tmp_path: Path) -> None:
    outbox = tmp_path / "out"
    dest = make_destination({"type": "folder", "path": str(outbox)}, {})
    document = UBL.read_bytes()

    written = await dest.push(document, idempotency_key="k1", filename="INV 2026/001.xml")
    assert (written.outcome, written.remote_id, written.attempts) == ("accepted", "001.xml", 1)
    assert (outbox / "001.xml").read_bytes() == document

    again = await dest.push(document, idempotency_key="k1", filename="INV 2026/001.xml")
    assert (again.outcome, again.remote_id) == ("duplicate", "001.xml")

    changed = await dest.push(document + b"<!-- edited -->", idempotency_key="k2", filename="001.xml")
    assert (changed.outcome, changed.remote_id) == ("rejected", None)
    assert "different document already exists" in changed.response
    assert (outbox / "001.xml").read_bytes() == document
    assert sorted(p.name for p in outbox.iterdir()) == ["001.xml"]  # no temporary files left behind


async def test_the_destination_cannot_be_steered_out_of_its_folder(tmp_path: Path) -> None:
    outbox = tmp_path / "out"
    outbox.mkdir()
    victim = tmp_path / "victim.xml"
    victim.write_bytes(b"precious")
    (outbox / "victim.xml").symlink_to(victim)
    dest = make_destination({"type": "folder", "path": str(outbox)}, {})

    escaped = await dest.push(b"<x/>", idempotency_key="k1", filename="../../victim.xml")
    assert escaped.outcome == "rejected"
    assert "not a regular file" in escaped.response
    assert victim.read_bytes() == b"precious"

    hidden = await dest.push(b"<x/>", idempotency_key="k2", filename="..")
    assert (hidden.outcome, hidden.remote_id) == ("accepted", "k2.xml")


async def test_concurrent_pushes_of_one_name_write_it_once(tmp_path: Path) -> None:
    dest = make_destination({"type": "folder", "path": str(tmp_path), "max_concurrency": 8}, {})
    results = await asyncio.gather(
        *(dest.push(b"<x/>", idempotency_key=f"k{n}", filename="same.xml") for n in range(8))
    )
    assert sorted(r.outcome for r in results) == ["accepted"] + ["duplicate"] * 7


def test_safe_filenames() -> None:
    assert safe_filename("../../etc/passwd", fallback="k") == "passwd.xml"
    assert safe_filename("C:\\temp\\Facture été.XML", fallback="k") == "Facture_ete.XML"
    assert safe_filename("...", fallback="key/1") == "1.xml"
    assert safe_filename("", fallback="") == "document.xml"
    assert len(safe_filename("a" * 500 + ".xml", fallback="k")) == 200
