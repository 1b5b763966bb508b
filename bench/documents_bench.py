#!/usr/bin/env python3
"""invoiceflow document benchmark: PDF and Excel side by side with a bare ReportLab canvas, in one run.

Measured in this order, pinned to one CPU core (child processes inherit the pin):

1. The one-page, 20-line invoice drawn by `bench/bare_canvas_invoice.py` (a plain canvas script, the
   baseline) and by invoiceflow's renderer, alternately, so both see the same machine: min and median
   milliseconds, renders per second, and invoiceflow's time as a multiple of the baseline's.
2. invoiceflow's 200-line invoice (several pages) and 5-line invoice, and the one-invoice workbook.
3. The invoice list export of --rows invoices (default 100,000), each run in a fresh process so its peak
   RSS growth is its own: the Excel writer alone, then end to end through
   `documents.service.export_invoice_list` (keyset pages from a seeded database, client names, the writer
   in a thread behind a bounded queue) on SQLite and, when it is reachable, PostgreSQL. Seconds and peak
   RSS growth, min and median over --export-repeats runs.

Bars (issue 3): 20-line PDF >= 100 per second and <= 1.2x the bare canvas; 200-line PDF <= 60 ms;
100,000-row export <= 10 s with <= 100 MB peak memory growth.

Usage: .venv/bin/python bench/documents_bench.py [--runs N] [--rows N] [--export-repeats N]
                                                  [--databases sqlite,postgresql] [--cpu N] [--no-export]

PostgreSQL: a scratch database is created and dropped through --pg-admin-url (default
$INVOICEFLOW_BENCH_PG_ADMIN_URL or postgresql://postgres@127.0.0.1:5432/postgres); it is skipped with a
note when the server is not reachable. The figures only mean something on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from io import BytesIO
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

from pypdf import PdfReader

from bare_canvas_invoice import draw_invoice  # bench/, beside this script
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
DEFAULT_PG_ADMIN_URL = os.environ.get("INVOICEFLOW_BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")

# (description, UN/ECE unit, unit price, VAT %): one line each in the item table, as most invoices are.
ITEMS = (
    ("Beratung Softwarearchitektur", "HUR", "120.00", "19"),
    ("Bürostuhl Łódź, ergonomisch", "C62", "349.95", "19"),
    ("Gedruckte Handbücher", "C62", "0.125", "19"),
    ("Fachbücher (ermäßigter Satz)", "C62", "12.50", "7"),
    ("Schreibtischleuchte Müller, LED", "C62", "89.90", "19"),
    ("Fracht Ærøskøbing, Palette", "C62", "85.00", "19"),
    ("Cloud-Hosting", "MON", "49.00", "19"),
    ("Schulung vor Ort", "DAY", "950.00", "19"),
    ("Wartungsvertrag Server", "MON", "180.00", "19"),
    ("Netzwerkkabel Cat. 6, 5 m", "C62", "7.49", "19"),
)


def document(line_count: int) -> InvoiceDocument:
    """A German invoice to a Polish client shipped to Denmark, with `line_count` one-line items."""
    lines = []
    for n in range(1, line_count + 1):
        description, unit, price, rate = ITEMS[(n - 1) % len(ITEMS)]
        lines.append(
            SimpleNamespace(
                position=n,
                description=description,
                quantity=Decimal(n % 7 + 1),
                unit_code=unit,
                unit_price=Decimal(price),
                vat_category="S",
                vat_rate=Decimal(rate),
                vat_exemption_reason=None,
            )
        )
    totals = compute_totals([LineInput(x.quantity, x.unit_price, x.vat_category, x.vat_rate) for x in lines], "EUR")
    invoice = SimpleNamespace(
        invoice_number="RE-2026-00042",
        status="sent",
        issue_date=date(2026, 11, 21),
        due_date=date(2026, 12, 21),
        currency="EUR",
        notes="Vielen Dank für Ihren Auftrag.",
        buyer_reference="PO-7781",
        net_amount=totals.net_amount,
        vat_amount=totals.vat_amount,
        total_amount=totals.total_amount,
        amount_paid=Decimal(0),
    )
    client = SimpleNamespace(
        name="Müller & Söhne Sp. z o.o.",
        address={"line1": "ul. Piotrkowska 120", "city": "Łódź", "postal_code": "90-006", "country": "PL"},
        shipping_address={"line1": "Havnegade 12", "city": "Ærøskøbing", "postal_code": "5970", "country": "DK"},
        country="PL",
        language="de",
        vat_id="PL5260250995",
        company_id="0000012345",
    )
    org = SimpleNamespace(
        name="Acme Werkzeuge",
        legal_name="Acme Werkzeuge GmbH",
        address_line1="Friedrichstraße 10",
        city="Berlin",
        postal_code="10117",
        country="DE",
        vat_id="DE123456789",
        company_id="HRB 12345 B",
        email="rechnung@acme.example",
        phone="+49 30 1234567",
        iban="DE89370400440532013000",
        bic="COBADEFFXXX",
        payment_terms_text="Zahlbar innerhalb von 30 Tagen ohne Abzug.",
    )
    return build_document(invoice, lines, client, org, order_number="AB-2026-00007")


def pages_of(pdf: bytes) -> int:
    return len(PdfReader(BytesIO(pdf)).pages)


def summary(samples: list[float]) -> dict[str, float]:
    return {"min": min(samples), "median": statistics.median(samples)}


def timed(funcs: dict[str, Callable[[], object]], runs: int) -> dict[str, dict[str, float]]:
    """Milliseconds per call, after one warm-up call each; the functions take turns, run by run."""
    for func in funcs.values():
        func()
    samples: dict[str, list[float]] = {name: [] for name in funcs}
    for _ in range(runs):
        for name, func in funcs.items():
            start = time.perf_counter()
            func()
            samples[name].append((time.perf_counter() - start) * 1000)
    return {name: summary(values) for name, values in samples.items()}


# --------------------------------------------------------------------------------------------- exports


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


def max_rss_kib() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak  # bytes on macOS, KiB elsewhere


def rss_kib() -> int | None:
    try:
        resident_pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return resident_pages * (os.sysconf("SC_PAGE_SIZE") // 1024)


class RssGrowth:
    """Peak resident memory above its level on entry, in KiB.

    A thread samples /proc/self/statm every 5 ms: the process's high-water mark (ru_maxrss) alone would
    hide the measured part behind whatever peak importing and warming up reached before it. Where there is
    no /proc, the growth of the high-water mark is all there is.
    """

    def __enter__(self) -> RssGrowth:
        self.base, self.base_max = rss_kib(), max_rss_kib()
        self.peak = self.base or 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, rss_kib() or 0)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        sampled = self.peak - self.base if self.base is not None else 0
        self.kib = max(sampled, max_rss_kib() - self.base_max)


def writer_child(count: int, target: str) -> None:
    """In a fresh process: the writer alone, fed from a generator; time and peak RSS growth as JSON."""
    write_invoice_list_xlsx(list_rows(10), target)
    with RssGrowth() as growth:
        start = time.perf_counter()
        written = write_invoice_list_xlsx(list_rows(count), target)
        seconds = time.perf_counter() - start
    print(json.dumps({"rows": written, "seconds": seconds, "rss_growth_kib": growth.kib}))


def seed(url: str, count: int) -> uuid.UUID:
    """A migrated database with one organisation, 200 clients and `count` invoices (no lines)."""
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


def service_child(url: str, org: str, target: str) -> None:
    """In a fresh process: one export through the service; time and peak RSS growth as JSON."""
    actor = Actor(organization_id=uuid.UUID(org), user_id=None, api_key_id=None, role="admin")

    async def run() -> tuple[int, float, int]:
        db = Database(url)
        try:
            async with db.read_sessions() as session:
                # Warm-up on an empty selection: imports, statement caches, the writer's code paths.
                await export_invoice_list(session, actor, InvoiceFilters(client_id=uuid.uuid4()), Path(target))
                with RssGrowth() as growth:
                    start = time.perf_counter()
                    written = await export_invoice_list(session, actor, InvoiceFilters(), Path(target))
                    seconds = time.perf_counter() - start
                return written, seconds, growth.kib
        finally:
            await db.dispose()

    written, seconds, growth_kib = asyncio.run(run())
    print(json.dumps({"rows": written, "seconds": seconds, "rss_growth_kib": growth_kib}))


def in_child(*args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, *args], cwd=ROOT, capture_output=True, check=True, text=True, timeout=1800
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def repeated(make: Callable[[], dict[str, Any]], repeats: int) -> dict[str, Any]:
    results = [make() for _ in range(repeats)]
    seconds = [r["seconds"] for r in results]
    growth = [r["rss_growth_kib"] / 1024 for r in results]
    return {
        "rows": results[0]["rows"],
        "seconds": summary(seconds),
        "growth_mib": {"min": min(growth), "median": statistics.median(growth), "max": max(growth)},
    }


def port_open(url: str) -> bool:
    parts = urlsplit(url)
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((parts.hostname or "127.0.0.1", parts.port or 5432)) == 0


def pg_scratch(admin_url: str, name: str, *, create: bool) -> str:
    from sqlalchemy import create_engine, text

    from invoiceflow.core.db import sync_url

    admin = create_engine(sync_url(admin_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        if create:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return admin_url.rsplit("/", 1)[0] + "/" + name


def service_export(database: str, count: int, repeats: int, pg_admin_url: str) -> dict[str, Any] | str:
    """The end-to-end export on a freshly seeded database; a string says why it was skipped."""
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / "list.xlsx"
        if database == "sqlite":
            url = f"sqlite:///{Path(folder) / 'bench.db'}"
        else:
            if not port_open(pg_admin_url):
                return f"skipped: PostgreSQL is not reachable at {urlsplit(pg_admin_url).netloc}"
            name = f"invoiceflow_bench_{os.getpid()}"
            url = pg_scratch(pg_admin_url, name, create=True)
        try:
            org = seed(url, count)
            result = repeated(lambda: in_child("--service-child", url, str(org), str(target)), repeats)
            result["file_mib"] = target.stat().st_size / 2**20
            return result
        finally:
            if database == "postgresql":
                pg_scratch(pg_admin_url, name, create=False)


# --------------------------------------------------------------------------------------------- report


def pin(cpu: int) -> str:
    if cpu < 0 or not hasattr(os, "sched_setaffinity"):
        return "not pinned"
    allowed = sorted(os.sched_getaffinity(0))
    chosen = cpu if cpu in allowed else allowed[0]
    os.sched_setaffinity(0, {chosen})
    return f"pinned to CPU {chosen}"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def row(name: str, figure: str, median: str = "", extra: str = "", bar: str = "") -> None:
    print(f"{name:<44} {figure:>10} {median:>10} {extra:>20}  {bar}")


def verdict(ok: bool) -> str:
    return "pass" if ok else "FAIL"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=60, help="renders per PDF/xlsx measurement (default 60)")
    parser.add_argument("--rows", type=int, default=100_000, help="invoices in the list export (default 100,000)")
    parser.add_argument("--export-repeats", type=int, default=3, help="runs of each export (default 3)")
    parser.add_argument(
        "--databases", default="sqlite,postgresql", help="end-to-end exports to run (default sqlite,postgresql)"
    )
    parser.add_argument("--pg-admin-url", default=DEFAULT_PG_ADMIN_URL, help="creates the scratch PostgreSQL db")
    parser.add_argument("--cpu", type=int, default=0, help="CPU core to pin the run to; -1: do not pin (default 0)")
    parser.add_argument("--no-export", action="store_true", help="only the PDF and one-invoice xlsx measurements")
    parser.add_argument("--writer-child", nargs=2, metavar=("ROWS", "TARGET"), help=argparse.SUPPRESS)
    parser.add_argument("--service-child", nargs=3, metavar=("URL", "ORG", "TARGET"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.writer_child:
        writer_child(int(args.writer_child[0]), args.writer_child[1])
        return
    if args.service_child:
        service_child(*args.service_child)
        return

    pinned = pin(args.cpu)
    print(f"invoiceflow documents benchmark · {cpu_model()} · {os.cpu_count()} CPUs, {pinned}")
    print(f"{args.runs} renders per PDF/xlsx measurement, taking turns; exports in fresh processes\n")

    twenty, large, small = document(20), document(200), document(5)
    pages = {name: pages_of(render_pdf(doc)) for name, doc in (("20", twenty), ("200", large))}
    bare_pages = pages_of(draw_invoice(twenty))

    row("measurement", "min", "median", "per s / ratio / MB", "bar")
    side = timed({"bare": lambda: draw_invoice(twenty), "ours": lambda: render_pdf(twenty)}, args.runs)
    bare, ours = side["bare"], side["ours"]
    row(
        f"bare canvas PDF, 20 lines ({bare_pages} page)",
        f"{bare['min']:.2f} ms",
        f"{bare['median']:.2f} ms",
        f"{1000 / bare['median']:.0f}/s",
    )
    ratio = ours["median"] / bare["median"]
    per_second = 1000 / ours["median"]
    row(
        f"invoiceflow PDF, 20 lines ({pages['20']} page)",
        f"{ours['min']:.2f} ms",
        f"{ours['median']:.2f} ms",
        f"{per_second:.0f}/s · {ratio:.2f}x bare",
        f">=100/s, <=1.2x bare: {verdict(per_second >= 100 and ratio <= 1.2 and pages['20'] == 1)}",
    )
    rest = timed(
        {
            "200": lambda: render_pdf(large),
            "5": lambda: render_pdf(small),
            "xlsx": lambda: render_invoice_xlsx(twenty),
        },
        max(10, args.runs // 2),
    )
    row(
        f"invoiceflow PDF, 200 lines ({pages['200']} pages)",
        f"{rest['200']['min']:.2f} ms",
        f"{rest['200']['median']:.2f} ms",
        "",
        f"<=60 ms: {verdict(rest['200']['median'] <= 60)}",
    )
    row("invoiceflow PDF, 5 lines", f"{rest['5']['min']:.2f} ms", f"{rest['5']['median']:.2f} ms")
    row("xlsx, one invoice (20 lines)", f"{rest['xlsx']['min']:.2f} ms", f"{rest['xlsx']['median']:.2f} ms")
    if args.no_export:
        return

    print()
    row(f"list export, {args.rows:,} rows", "min s", "median s", "peak growth MiB", "bar")
    with tempfile.TemporaryDirectory() as folder:
        target = str(Path(folder) / "list.xlsx")
        writer = repeated(lambda: in_child("--writer-child", str(args.rows), target), args.export_repeats)
    row(
        "xlsx writer alone (no database)",
        f"{writer['seconds']['min']:.2f}",
        f"{writer['seconds']['median']:.2f}",
        f"{writer['growth_mib']['max']:.1f}",
    )
    for database in [name.strip() for name in args.databases.split(",") if name.strip()]:
        result = service_export(database, args.rows, args.export_repeats, args.pg_admin_url)
        label = f"{database} -> export_invoice_list -> xlsx"
        if isinstance(result, str):
            row(label, "", "", "", result)
            continue
        seconds, growth = result["seconds"], result["growth_mib"]
        ok = seconds["median"] <= 10 and growth["max"] <= 100 and result["rows"] == args.rows
        row(
            label,
            f"{seconds['min']:.2f}",
            f"{seconds['median']:.2f}",
            f"{growth['max']:.1f}",
            f"<=10 s, <=100 MB: {verdict(ok)} ({result['rows']:,} rows, {result['file_mib']:.1f} MiB file)",
        )


if __name__ == "__main__":
    main()
