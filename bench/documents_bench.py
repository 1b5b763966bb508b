#!/usr/bin/env python3
"""invoiceflow document rendering benchmark: PDF and Excel, in process, no database.

Measures, after a warm-up render (fonts registered, caches filled):

- PDF of a 5-line invoice and of a 200-line invoice (several pages), min / median / p95 per render;
- the Excel workbook of one invoice;
- the invoice list export at 10,000 and --rows (default 100,000) rows, each in a fresh process so its peak
  RSS growth is its own: seconds, rows per second, file size and peak RSS growth. With `constant_memory`
  the growth must not follow the row count;
- the same export end to end without HTTP (`documents.service.export_invoice_list`: keyset pages from a
  seeded SQLite database, client names per page, the writer in a thread behind a bounded queue), at
  --service-rows (default 100,000; 0 skips it), also in a fresh process.

Usage: .venv/bin/python bench/documents_bench.py [--runs N] [--rows N] [--service-rows N]

The figures only mean something on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from io import BytesIO
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from pypdf import PdfReader

from invoiceflow.core.context import Actor
from invoiceflow.core.db import Database
from invoiceflow.core.migrate import upgrade
from invoiceflow.core.tax import LineInput, compute_totals
from invoiceflow.documents.model import InvoiceDocument, build_document
from invoiceflow.documents.pdf import render_pdf
from invoiceflow.documents.service import export_invoice_list
from invoiceflow.documents.xlsx import render_invoice_xlsx, write_invoice_list_xlsx
from invoiceflow.invoices.schemas import InvoiceFilters

ROOT = Path(__file__).resolve().parent.parent


def document(line_count: int) -> InvoiceDocument:
    lines = [
        SimpleNamespace(
            position=n,
            description=f"Item {n}: consulting and Łódź office supplies, delivered to Ærøskøbing",
            quantity=Decimal(n % 7 + 1),
            unit_code="C62",
            unit_price=Decimal(f"{n}.{n % 100:02d}"),
            vat_category="S",
            vat_rate=Decimal(21 if n % 3 else 9),
            vat_exemption_reason=None,
        )
        for n in range(1, line_count + 1)
    ]
    totals = compute_totals([LineInput(x.quantity, x.unit_price, x.vat_category, x.vat_rate) for x in lines], "EUR")
    invoice = SimpleNamespace(
        invoice_number="INV-2026-00001",
        status="sent",
        issue_date=date(2026, 3, 5),
        due_date=date(2026, 4, 4),
        currency="EUR",
        notes="Thank you.",
        buyer_reference="PO-1",
        net_amount=totals.net_amount,
        vat_amount=totals.vat_amount,
        total_amount=totals.total_amount,
        amount_paid=Decimal(0),
    )
    client = SimpleNamespace(
        name="Müller & Söhne GmbH",
        address={"line1": "Hauptstraße 5", "city": "Łódź", "postal_code": "90-001", "country": "PL"},
        shipping_address=None,
        country="PL",
        language="de",
        email="a@example.com",
        vat_id="PL5260250995",
    )
    org = SimpleNamespace(name="Acme Tools", city="Amsterdam", country="NL", iban="NL91ABNA0417164300")
    return build_document(invoice, lines, client, org, order_number="ORD-1")


def timed(func: Callable[[], object], runs: int) -> dict[str, float]:
    func()  # warm-up
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        func()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return {
        "min_ms": samples[0],
        "median_ms": statistics.median(samples),
        "p95_ms": samples[min(len(samples) - 1, int(len(samples) * 0.95))],
    }


def list_rows(count: int) -> Iterator[dict[str, Any]]:
    for n in range(count):
        net = Decimal(n % 5000) + Decimal("0.45")
        vat = (net * Decimal("0.21")).quantize(Decimal("0.01"))
        yield {
            "invoice_number": f"INV-2026-{n:07d}",
            "status": ("draft", "sent", "paid", "overdue")[n % 4],
            "client_name": f"Client {n % 200}",
            "issue_date": date(2026, 1, 1 + n % 28),
            "due_date": date(2026, 2, 1 + n % 28),
            "currency": "EUR",
            "net_amount": net,
            "vat_amount": vat,
            "total_amount": net + vat,
            "amount_paid": Decimal(0),
        }


def export_child(count: int, target: str) -> None:
    """Runs in a fresh process: one export, its time and its peak RSS growth as JSON on stdout."""
    write_invoice_list_xlsx(list_rows(10), target)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    written = write_invoice_list_xlsx(list_rows(count), target)
    seconds = time.perf_counter() - start
    growth_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    print(json.dumps({"rows": written, "seconds": seconds, "rss_growth_kib": growth_kib}))


def export(count: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / "list.xlsx"
        done = subprocess.run(
            [sys.executable, __file__, "--export-child", str(count), str(target)],
            cwd=ROOT,
            capture_output=True,
            check=True,
            text=True,
            timeout=1800,
        )
        result: dict[str, Any] = json.loads(done.stdout)
        result["file_mib"] = target.stat().st_size / 2**20
    return result


def seed(url: str, count: int) -> uuid.UUID:
    """A migrated SQLite database with one organisation, 200 clients and `count` invoices (no lines)."""
    from sqlalchemy import create_engine, insert

    from invoiceflow.clients.models import Client
    from invoiceflow.core.db import sync_url
    from invoiceflow.core.models import Organization
    from invoiceflow.invoices.models import Invoice

    upgrade(url)
    org = uuid.uuid4()
    clients = [uuid.uuid4() for _ in range(200)]
    start = datetime(2026, 1, 1, tzinfo=UTC)
    engine = create_engine(sync_url(url))
    with engine.begin() as conn:
        conn.execute(insert(Organization), [{"id": org, "name": "Bench BV"}])
        conn.execute(
            insert(Client),
            [
                {
                    "id": c,
                    "organization_id": org,
                    "name": f"Client {n}",
                    "email": f"c{n}@bench.example",
                    "address": {"line1": "Main 1", "city": "Gent", "country": "BE"},
                    "country": "BE",
                }
                for n, c in enumerate(clients)
            ],
        )
        batch: list[dict[str, Any]] = []
        for n, row in enumerate(list_rows(count)):
            created = start + timedelta(seconds=n)
            batch.append(
                {
                    "id": uuid.uuid4(),
                    "organization_id": org,
                    "client_id": clients[n % len(clients)],
                    "invoice_number": row["invoice_number"],
                    "status": row["status"],
                    "issue_date": row["issue_date"],
                    "due_date": row["due_date"],
                    "currency": "EUR",
                    "net_amount": row["net_amount"],
                    "vat_amount": row["vat_amount"],
                    "total_amount": row["total_amount"],
                    "amount_paid": row["amount_paid"],
                    "created_at": created,
                    "updated_at": created,
                }
            )
            if len(batch) == 10_000:
                conn.execute(insert(Invoice), batch)
                batch = []
        if batch:
            conn.execute(insert(Invoice), batch)
    engine.dispose()
    return org


def service_export_child(url: str, org: str, target: str) -> None:
    """Runs in a fresh process: one export through the service, its time and peak RSS growth as JSON."""
    actor = Actor(organization_id=uuid.UUID(org), user_id=None, api_key_id=None, role="admin")

    async def run() -> tuple[int, float, int]:
        db = Database(url)
        try:
            async with db.read_sessions() as session:
                # Warm-up on an empty selection: imports, statement caches, the writer's code paths.
                await export_invoice_list(session, actor, InvoiceFilters(client_id=uuid.uuid4()), Path(target))
                before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                start = time.perf_counter()
                written = await export_invoice_list(session, actor, InvoiceFilters(), Path(target))
                return written, time.perf_counter() - start, before
        finally:
            await db.dispose()

    written, seconds, before = asyncio.run(run())
    growth_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    print(json.dumps({"rows": written, "seconds": seconds, "rss_growth_kib": growth_kib}))


def service_export(count: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'bench.db'}"
        org = seed(url, count)
        target = Path(folder) / "list.xlsx"
        done = subprocess.run(
            [sys.executable, __file__, "--service-export-child", url, str(org), str(target)],
            cwd=ROOT,
            capture_output=True,
            check=True,
            text=True,
            timeout=1800,
        )
        result: dict[str, Any] = json.loads(done.stdout)
        result["file_mib"] = target.stat().st_size / 2**20
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=50, help="renders per PDF/xlsx measurement")
    parser.add_argument("--rows", type=int, default=100_000, help="rows of the large list export")
    parser.add_argument("--service-rows", type=int, default=100_000, help="invoices of the database export (0: skip)")
    parser.add_argument("--export-child", nargs=2, metavar=("ROWS", "TARGET"), help=argparse.SUPPRESS)
    parser.add_argument("--service-export-child", nargs=3, metavar=("URL", "ORG", "TARGET"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.export_child:
        export_child(int(args.export_child[0]), args.export_child[1])
        return
    if args.service_export_child:
        service_export_child(*args.service_export_child)
        return

    small, large = document(5), document(200)
    pages = len(PdfReader(BytesIO(render_pdf(large))).pages)
    print(f"{'measurement':<34} {'min ms':>9} {'median ms':>10} {'p95 ms':>9}")
    for name, func, runs in (
        ("PDF, 5 lines", lambda: render_pdf(small), args.runs),
        (f"PDF, 200 lines ({pages} pages)", lambda: render_pdf(large), max(5, args.runs // 5)),
        ("xlsx, one invoice (5 lines)", lambda: render_invoice_xlsx(small), args.runs),
    ):
        r = timed(func, runs)
        print(f"{name:<34} {r['min_ms']:>9.1f} {r['median_ms']:>10.1f} {r['p95_ms']:>9.1f}")

    print()
    print(f"{'list export':<20} {'seconds':>9} {'rows/s':>9} {'file MiB':>9} {'peak RSS growth MiB':>20}")
    for count in (10_000, args.rows):
        r = export(count)
        print(
            f"{r['rows']:>12,} rows {r['seconds']:>12.2f} {r['rows'] / r['seconds']:>9,.0f} "
            f"{r['file_mib']:>9.1f} {r['rss_growth_kib'] / 1024:>20.1f}"
        )
    if args.service_rows:
        r = service_export(args.service_rows)
        print(
            f"{r['rows']:>12,} rows {r['seconds']:>12.2f} {r['rows'] / r['seconds']:>9,.0f} "
            f"{r['file_mib']:>9.1f} {r['rss_growth_kib'] / 1024:>20.1f}  (SQLite → service → xlsx, no HTTP)"
        )


if __name__ == "__main__":
    main()
