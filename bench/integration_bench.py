#!/usr/bin/env python3
"""Integration pipeline benchmark (issue 6): 10,000 UBL invoices from a local source system to a local accounting
API, with full validation and deduplication against 1,000,000 already-sent records, on PostgreSQL.

1. creates the database `invoiceflow_bench_integration` (dropped first) and migrates it;
2. makes the invoices: every UBL example of `einvoicing/examples/ubl` that passes the rules is a template, and
   invoice n is template n mod T with its number (the first `<cbc:ID>`) set to `BENCH-nnnnnnn`. One copy of each
   template, renumbered, is validated here first: the set is valid by construction;
3. starts the fake source (serving them, 100 a page) and the fake accounting API (`tests/integrations/
   partners.py`), each in a process of its own, so the job's process has its interpreter to itself;
4. creates an organisation and an integration, and seeds 1,000,000 rows into `sent_records` for its
   destination with one `INSERT … SELECT generate_series` (other invoice numbers: every lookup misses, the
   expensive case), then ANALYZE;
5. runs one real job (`jobs.run_job`, validation on --workers processes) and times it; checks that the
   destination accepted every invoice exactly once; and measures the dedupe lookup of a page (100 invoices)
   against the 1,000,000 rows with EXPLAIN ANALYZE;
6. drops the database (unless --keep).

Usage: .venv/bin/python bench/integration_bench.py [--count 10000] [--seed-rows 1000000] [--workers 2]
       [--pg-admin-url postgresql://postgres@127.0.0.1:5432/postgres] [--json]

The figures only mean something on an otherwise quiet machine: the script reports the load average before the
run and the CPU time of every process involved. Every process started here is stopped here.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

from invoiceflow.core.context import system_actor  # noqa: E402
from invoiceflow.core.db import Database, sync_url  # noqa: E402
from invoiceflow.core.migrate import upgrade  # noqa: E402
from invoiceflow.core.models import Organization  # noqa: E402
from invoiceflow.core.settings import Settings  # noqa: E402
from invoiceflow.einvoicing.validator import Validator  # noqa: E402
from invoiceflow.einvoicing.xmlsafe import parse_xml  # noqa: E402
from invoiceflow.integrations import jobs, service  # noqa: E402
from invoiceflow.integrations.dedupe import Identity, identity_of, lookup_sent  # noqa: E402
from invoiceflow.integrations.schemas import IntegrationCreate  # noqa: E402

DB_NAME = "invoiceflow_bench_integration"
SOURCE_TOKEN = "bench-source-token"
DEST_TOKEN = "bench-destination-token"
_FIRST_ID = re.compile(r"(<cbc:ID>)[^<]*(</cbc:ID>)")


def numbered(template: str, n: int) -> str:
    return _FIRST_ID.sub(rf"\g<1>BENCH-{n:07d}\g<2>", template, count=1)


def templates(rules_dir: Path) -> list[str]:
    """The valid UBL examples, each checked once renumbered (the renumbered copy must stay valid and must
    carry the new number as its BT-1)."""
    validator = Validator(rules_dir, workers=0)
    chosen: list[str] = []
    for path in sorted((rules_dir / "examples" / "ubl").iterdir()):
        if path.suffix.lower() != ".xml":
            continue
        body = path.read_text(encoding="utf-8")
        if not validator.validate(body.encode()).valid:
            continue
        sample = numbered(body, 1).encode()
        if not validator.validate(sample).valid or identity_of(parse_xml(sample)).invoice_number != "BENCH-0000001":
            raise SystemExit(f"{path.name}: a renumbered copy is not valid or keeps its number")
        chosen.append(body)
    return chosen


# --- the source, in its own process -----------------------------------------------------------------------


def serve_source(rules_dir: Path, count: int) -> None:
    from tests.integrations.partners import SourceServer

    bodies = list(_valid_bodies(rules_dir))

    def provider(offset: int, limit: int) -> list[tuple[str, str, str]]:
        end = min(offset + limit, count)
        return [(f"BENCH-{n:07d}", "ubl", numbered(bodies[n % len(bodies)], n)) for n in range(offset, end)]

    with SourceServer(provider, token=SOURCE_TOKEN, page_size=100) as server:
        print(server.url, flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


def _valid_bodies(rules_dir: Path) -> list[str]:
    listed = Path(os.environ["BENCH_TEMPLATES"]).read_text(encoding="utf-8").splitlines()
    return [(rules_dir / "examples" / "ubl" / name).read_text(encoding="utf-8") for name in listed]


def start(args: list[str], env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, *args], stdout=subprocess.PIPE, text=True, cwd=ROOT, env={**os.environ, **(env or {})}
    )
    assert process.stdout is not None
    url = process.stdout.readline().strip()
    if not url.startswith("http"):
        process.kill()
        raise SystemExit(f"{args}: did not start")
    return process, url


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])) / ticks


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int(Path(entry, "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if parent == pid:
                found.append(int(entry.name))
    return found


def postgres_cpu() -> float:
    total = 0.0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if Path(entry, "comm").read_text().strip().startswith("postgres"):
                    total += cpu_seconds(int(entry.name))
            except OSError:
                continue
    return total


# --- the run ------------------------------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> dict[str, Any]:
    rules_dir = args.rules_dir.resolve()
    admin = create_engine(sync_url(args.pg_admin_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{DB_NAME}"'))
    admin.dispose()
    url = args.pg_admin_url.rsplit("/", 1)[0] + "/" + DB_NAME
    upgrade(url)

    started = time.perf_counter()
    bodies = templates(rules_dir)
    names = [
        p.name
        for p in sorted((rules_dir / "examples" / "ubl").iterdir())
        if p.suffix.lower() == ".xml" and p.read_text(encoding="utf-8") in bodies
    ]
    listing = Path("/tmp") / f"bench-templates-{os.getpid()}.txt"
    listing.write_text("\n".join(names), encoding="utf-8")
    print(f"{len(bodies)} valid UBL templates (renumbered copies validated) in {time.perf_counter() - started:.1f} s")

    source, source_url = start(
        [__file__, "--serve-source", "--count", str(args.count), "--rules-dir", str(rules_dir)],
        {"BENCH_TEMPLATES": str(listing)},
    )
    destination, dest_url = start(["-m", "tests.integrations.partners", "destination", "--token", DEST_TOKEN])
    settings = Settings(
        database_url=url,
        data_dir=Path("/tmp") / f"bench-data-{os.getpid()}",
        secret_key="bench-secret-" + "x" * 32,  # type: ignore[arg-type]
        einvoice_rules_dir=rules_dir,
        webhook_allow_private_networks=True,
        integration_validation_workers=args.workers,
        db_pool_size=5,
    )
    db = Database(url, pool_size=5, max_overflow=5)
    try:
        async with db.write_sessions() as session:
            org = Organization(id=uuid.uuid4(), name="Bench BV", legal_name="Bench BV")
            session.add(org)
            await session.flush()
            integration = await service.create_integration(
                session,
                system_actor(org.id),
                IntegrationCreate.model_validate(
                    {
                        "name": "bench",
                        "source": {"type": "http", "url": source_url, "bearer_token": SOURCE_TOKEN},
                        "destination": {
                            "type": "http",
                            "url": dest_url,
                            "bearer_token": DEST_TOKEN,
                            "max_concurrency": args.concurrency,
                        },
                        "page_size": 100,
                    }
                ),
                settings=settings,
            )
            await session.commit()

        mark = time.perf_counter()
        async with db.write_sessions() as session:
            await session.execute(
                text(
                    "INSERT INTO sent_records (destination_key, supplier_key, invoice_number, organization_id, "
                    "document_sha256, job_id, remote_id, sent_at) "
                    "SELECT :dk, 'vat:SEED' || (g % 5000), 'SEED-' || g, :org, md5(g::text) || md5(g::text), "
                    "NULL, 'acc-' || g, now() FROM generate_series(1, :rows) AS g"
                ),
                {"dk": integration.destination_key, "org": org.id, "rows": args.seed_rows},
            )
            await session.commit()
        async with db.write_engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("ANALYZE sent_records"))
        seeded = time.perf_counter() - mark
        print(f"seeded {args.seed_rows:,} sent_records in {seeded:.1f} s")

        # Warm the validation processes (compiling the rules takes ~2 s each) before the clock starts.
        from invoiceflow.integrations.validation import DocumentChecker, default_workers

        mark = time.perf_counter()
        checker = DocumentChecker(rules_dir, default_workers(args.workers))
        await checker.check([numbered(bodies[i % len(bodies)], 10_000_000 + i).encode() for i in range(8)])
        print(f"validation workers ready in {time.perf_counter() - mark:.1f} s")

        async with db.write_sessions() as session:
            job = await jobs.create_job(session, system_actor(org.id), integration, trigger="bench")
            await session.commit()

        load = os.getloadavg()
        pages: list[jobs.PageResult] = []
        procs = {"source": source.pid, "destination": destination.pid}
        workers = children_of(os.getpid())
        cpu_before = {name: cpu_seconds(pid) for name, pid in procs.items()}
        workers_before = sum(cpu_seconds(pid) for pid in workers)
        pg_before = postgres_cpu()
        self_before = resource.getrusage(resource.RUSAGE_SELF)
        profiler = None
        if args.profile:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        mark = time.perf_counter()
        summary = await jobs.run_job(db, job.id, settings=settings, progress=pages.append)
        wall = time.perf_counter() - mark
        if profiler is not None:
            import pstats

            profiler.disable()
            stats = pstats.Stats(profiler).sort_stats("tottime")
            stats.print_stats(35)
            stats.print_callers("client.py:.*\\(stream\\)|_find_and_load\\b")
        self_after = resource.getrusage(resource.RUSAGE_SELF)
        cpu = {name: cpu_seconds(pid) - cpu_before[name] for name, pid in procs.items()}
        cpu["job process"] = (self_after.ru_utime + self_after.ru_stime) - (self_before.ru_utime + self_before.ru_stime)
        cpu["validation workers"] = sum(cpu_seconds(pid) for pid in workers) - workers_before
        cpu["postgresql"] = postgres_cpu() - pg_before

        async with httpx.AsyncClient(timeout=10) as http:
            stats = (await http.get(f"{dest_url}/_stats")).json()

        # One page's dedupe lookup against the seeded ledger (plus this run's 10,000), as the job runs it.
        probe = [Identity("vat:SEED" + str(n % 5000), f"SEED-{n}") for n in range(1000, 1100)]
        async with db.read_sessions() as session:
            lookup_times = []
            for _ in range(20):
                t0 = time.perf_counter()
                hits = await lookup_sent(session, integration.destination_key, probe)
                lookup_times.append((time.perf_counter() - t0) * 1000)
            plan = (
                await session.execute(
                    text(
                        "EXPLAIN (ANALYZE, BUFFERS) SELECT r.supplier_key, r.invoice_number, r.document_sha256 "
                        "FROM sent_records r JOIN unnest(CAST(:s AS varchar[]), CAST(:n AS varchar[])) "
                        "AS k(supplier_key, invoice_number) ON r.supplier_key = k.supplier_key "
                        "AND r.invoice_number = k.invoice_number WHERE r.destination_key = :dk"
                    ),
                    {
                        "s": [i.supplier_key for i in probe],
                        "n": [i.invoice_number for i in probe],
                        "dk": integration.destination_key,
                    },
                )
            ).scalars()
            plan_text = "\n".join(plan)
            ledger_rows = (await session.execute(text("SELECT count(*) FROM sent_records"))).scalar_one()
    finally:
        await db.dispose()
        for process in (source, destination):
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        listing.unlink(missing_ok=True)
        if not args.keep:
            admin = create_engine(sync_url(args.pg_admin_url), isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)'))
            admin.dispose()

    split = {
        key: round(sum(page.timings.get(key, 0.0) for page in pages), 2)
        for key in ("fetch", "validate", "wait", "dedupe", "push", "record")
    }
    return {
        "invoices": args.count,
        "seed_rows": args.seed_rows,
        "ledger_rows_after": ledger_rows,
        "workers": args.workers,
        "push_concurrency": args.concurrency,
        "templates": len(bodies),
        "status": summary.status,
        "sent": summary.processed,
        "duplicates": summary.duplicates,
        "invalid": summary.invalid,
        "failed": summary.failed,
        "changed": summary.changed,
        "wall_seconds": round(wall, 2),
        "invoices_per_second": round(args.count / wall, 1),
        "pages": len(pages),
        "split_seconds": split,
        "cpu_seconds": {name: round(value, 1) for name, value in cpu.items()},
        "load_before": [round(x, 2) for x in load],
        "destination": stats,
        "dedupe_lookup_ms": {
            "min": round(min(lookup_times), 2),
            "median": round(sorted(lookup_times)[len(lookup_times) // 2], 2),
            "hits": len(hits),
        },
        "dedupe_plan": plan_text,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--seed-rows", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=2, help="validation processes (0: a thread)")
    parser.add_argument(
        "--concurrency", type=int, default=2, help="pushes in flight (the destination's max_concurrency)"
    )
    parser.add_argument("--rules-dir", type=Path, default=ROOT.parent / "shared" / "einvoicing")
    parser.add_argument(
        "--pg-admin-url",
        default=os.environ.get("INVOICEFLOW_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
    )
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--keep", action="store_true", help=f"keep the database {DB_NAME} afterwards")
    parser.add_argument("--profile", action="store_true", help="cProfile the job's process (slows it down)")
    parser.add_argument("--serve-source", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_source:
        serve_source(args.rules_dir, args.count)
        return
    result = asyncio.run(run(args))
    if args.json:
        print(json.dumps(result, indent=2))
        return
    plan = result.pop("dedupe_plan")
    for key, value in result.items():
        print(f"{key:22} {value}")
    print("dedupe lookup plan (100 invoices):")
    print("  " + plan.replace("\n", "\n  "))
    ok = result["status"] == "completed" and result["destination"]["accepted_count"] == result["invoices"]
    print("PASS" if ok and result["invoices_per_second"] >= 170 else "BELOW BAR" if ok else "FAILED")


if __name__ == "__main__":
    main()
