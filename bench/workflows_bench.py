"""Invoice workflow throughput and latency (issue 5): render PDF + store + email to a local SMTP server + events.

    .venv/bin/python bench/workflows_bench.py --backend sqlite --invoices 300
    .venv/bin/python bench/workflows_bench.py --backend postgresql --workers 2 --invoices 400

Throughput: N invoices are issued first (their workflows wait in the queue), then the workflow processes
start: one `invoiceflow worker` on SQLite (the embedded mode's runner, alone in its process), or
`--workers` of them on PostgreSQL. The rate is measured between the first and the last email the SMTP
server accepted.
Latency: with the processes running, invoices are issued through the API (in this process) at
`--rate` per second; the latency is from the issuing response to the SMTP server accepting the email.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from invoiceflow.core.db import sync_url  # noqa: E402
from invoiceflow.core.migrate import upgrade  # noqa: E402
from invoiceflow.core.settings import Settings  # noqa: E402
from invoiceflow.main import create_app  # noqa: E402

SECRET = "bench-secret-key-" + "x" * 32


class Recorder:
    def __init__(self) -> None:
        self.accepted: dict[str, float] = {}  # subject -> time accepted
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        subject = str(message_from_bytes(envelope.content, policy=policy.default)["Subject"])
        with self.lock:
            self.accepted.setdefault(subject, time.perf_counter())
        return "250 OK"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(processes: list[subprocess.Popen[bytes]]) -> float:
    """User + system CPU time of the worker processes so far (Linux /proc; 0 elsewhere)."""
    total = 0
    for process in processes:
        try:
            fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def database(backend: str, folder: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{folder / 'bench.db'}"
    admin = create_engine("postgresql+psycopg://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text("DROP DATABASE IF EXISTS invoiceflow_wf_bench WITH (FORCE)"))
        conn.execute(text("CREATE DATABASE invoiceflow_wf_bench"))
    admin.dispose()
    return "postgresql://postgres@127.0.0.1:5432/invoiceflow_wf_bench"


def issue(client: TestClient, headers: dict[str, str], client_id: str, n: int, lines: int) -> list[tuple[str, float]]:
    out = []
    today = time.strftime("%Y-%m-%d")
    for _ in range(n):
        items = [
            {"description": f"Consulting block {i}", "quantity": "1.5", "unit_price": "120.00", "vat_rate": "21"}
            for i in range(lines)
        ]
        payload = {"client_id": client_id, "issue_date": today, "due_date": today, "currency": "EUR", "items": items}
        created = client.post("/api/v1/invoices", json=payload, headers=headers)
        assert created.status_code == 201, created.text
        invoice_id = created.json()["data"]["id"]
        sent = client.post(f"/api/v1/invoices/{invoice_id}/send", headers=headers)
        assert sent.status_code == 200, sent.text
        out.append((sent.json()["data"]["invoice_number"], time.perf_counter()))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--invoices", type=int, default=300)
    parser.add_argument("--lines", type=int, default=5)
    parser.add_argument("--rate", type=float, default=10.0, help="invoices per second in the latency phase")
    parser.add_argument("--latency-invoices", type=int, default=100)
    parser.add_argument(
        "--concurrency", type=int, default=0, help="workflows at once per worker (default: the setting's)"
    )
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="wf-bench-"))
    url = database(args.backend, folder)
    upgrade(url)
    recorder = Recorder()
    smtp_port = free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    smtp_url = f"smtp://127.0.0.1:{smtp_port}?starttls=false&timeout=10"
    settings = Settings(
        database_url=url,
        data_dir=folder,
        secret_key=SECRET,  # type: ignore[arg-type]
        smtp_url=smtp_url,
        run_workflows=False,
        argon2_time_cost=1,
        argon2_memory_kib=1024,
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("INVOICEFLOW_")},
        "INVOICEFLOW_DATABASE_URL": url,
        "INVOICEFLOW_DATA_DIR": str(folder),
        "INVOICEFLOW_SECRET_KEY": SECRET,
        "INVOICEFLOW_SMTP_URL": smtp_url,
        **({"INVOICEFLOW_WORKFLOW_CONCURRENCY": str(args.concurrency)} if args.concurrency else {}),
    }
    workers: list[subprocess.Popen[bytes]] = []
    try:
        with TestClient(create_app(settings)) as client:
            reg = client.post(
                "/api/v1/auth/register",
                json={
                    "email": "bench@acme.example",
                    "password": "bench-password-1",
                    "name": "Bench",
                    "organization_name": "Acme",
                },
            )
            assert reg.status_code == 201, reg.text
            headers = {"Authorization": f"Bearer {reg.json()['data']['tokens']['access_token']}"}
            buyer = client.post(
                "/api/v1/clients",
                json={"name": "Müller GmbH", "email": "billing@mueller.example", "address": {"country": "DE"}},
                headers=headers,
            )
            assert buyer.status_code == 201, buyer.text
            client_id = buyer.json()["data"]["id"]

            print(f"issuing {args.invoices} invoices ({args.lines} lines each) ...", flush=True)
            issue(client, headers, client_id, args.invoices, args.lines)
            with (folder / "workers.log").open("ab") as log:
                for index in range(args.workers):
                    workers.append(
                        subprocess.Popen(
                            [sys.executable, "-m", "invoiceflow.cli", "worker", "--no-migrate"],
                            env={**env, "INVOICEFLOW_EXECUTOR_ID": f"bench-{index}"},
                            stdout=log,
                            stderr=subprocess.STDOUT,
                        )
                    )
            deadline = time.monotonic() + 600
            cpu_at: dict[int, float] = {}  # emails accepted -> the workers' CPU seconds then
            while len(recorder.accepted) < args.invoices and time.monotonic() < deadline:
                if recorder.accepted:
                    cpu_at.setdefault(len(recorder.accepted), cpu_seconds(workers))
                time.sleep(0.05)
            cpu_at[len(recorder.accepted)] = cpu_seconds(workers)
            first, last = min(cpu_at), max(cpu_at)
            cpu_ms = (cpu_at[last] - cpu_at[first]) * 1000 / max(1, last - first)
            times = sorted(recorder.accepted.values())
            assert len(times) == args.invoices, f"only {len(times)} of {args.invoices} emails arrived"
            rate = (len(times) - 1) / (times[-1] - times[0])

            print(f"latency phase: {args.latency_invoices} invoices at {args.rate}/s ...", flush=True)
            before = dict(recorder.accepted)
            issued: list[tuple[str, float]] = []
            for _ in range(args.latency_invoices):
                started = time.perf_counter()
                issued += issue(client, headers, client_id, 1, args.lines)
                time.sleep(max(0.0, 1 / args.rate - (time.perf_counter() - started)))
            while len(recorder.accepted) < len(before) + args.latency_invoices and time.monotonic() < deadline + 60:
                time.sleep(0.05)
            latencies = []
            for number, at in issued:
                subject = next(s for s in recorder.accepted if number in s and s not in before)
                latencies.append((recorder.accepted[subject] - at) * 1000)
            latencies.sort()
            p50 = statistics.median(latencies)
            p95 = latencies[int(len(latencies) * 0.95) - 1]
        # The last workflows publish InvoiceProcessed just after their email was accepted: give them a moment.
        total = args.invoices + args.latency_invoices
        counted = create_engine(sync_url(url))
        for _ in range(100):
            with counted.connect() as conn:
                deliveries = conn.execute(text("SELECT count(*) FROM notification_deliveries")).scalar_one()
                events = conn.execute(text("SELECT count(*) FROM events WHERE type = 'InvoiceProcessed'")).scalar_one()
            if deliveries >= total and events >= total:
                break
            time.sleep(0.1)
        counted.dispose()
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(timeout=60)
        controller.stop()

    print(
        f"\n{platform.node()} · {os.cpu_count()} cores · load {os.getloadavg()[0]:.2f} · backend {args.backend}, "
        f"{args.workers} worker process(es), {args.lines}-line invoices"
    )
    print(f"throughput: {rate:.1f} invoices/s ({args.invoices} workflows: PDF + store + email + events)")
    print(f"worker CPU per invoice: {cpu_ms:.1f} ms (all worker processes, during the throughput phase)")
    print(f"latency issued → email accepted at {args.rate}/s: p50 {p50:.0f} ms, p95 {p95:.0f} ms")
    print(f"rows: {deliveries} deliveries, {events} InvoiceProcessed events")


if __name__ == "__main__":
    main()
