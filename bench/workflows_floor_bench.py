"""What DBOS Transact itself costs per workflow in invoiceflow's configuration: the floor under issue 5's bars.

    .venv/bin/python bench/workflows_floor_bench.py --backend sqlite --workflows 1000 --steps 0 3
    .venv/bin/python bench/workflows_floor_bench.py --backend postgresql --workflows 1000 --steps 0 3
    .venv/bin/python bench/workflows_floor_bench.py --backend postgresql --processes 2 --steps 3

For each step count, N workflows whose steps do nothing are enqueued on the `invoices` queue (as issuing an
invoice does), then `--processes` worker processes launch DBOS as `invoiceflow worker` does
(`workflows.engine.Engine`: same queue settings, same SQLite engine) and drain them. Reported: workflows per
second, from the first dequeue to the last completion as DBOS recorded them, and the workers' CPU time per
workflow (their start-up included; the database server's not).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dbos import DBOS, EnqueueOptions
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from invoiceflow.core.db import sync_url  # noqa: E402
from invoiceflow.core.migrate import upgrade  # noqa: E402
from invoiceflow.core.settings import Settings  # noqa: E402
from invoiceflow.workflows.engine import WORKFLOWS_VERSION, Engine  # noqa: E402

PG_DATABASE = "invoiceflow_wf_floor_bench"


@DBOS.step(name="floor_step")
async def floor_step(index: int) -> int:
    return index


@DBOS.workflow(name="floor_workflow")
async def floor_workflow(steps: int) -> int:
    for index in range(steps):
        await floor_step(index)
    return steps


def database(backend: str, folder: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{folder / 'floor.db'}"
    admin = create_engine("postgresql+psycopg://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)"))
        conn.execute(text(f"CREATE DATABASE {PG_DATABASE}"))
    admin.dispose()
    return f"postgresql://postgres@127.0.0.1:5432/{PG_DATABASE}"


def cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


async def child(url: str, folder: Path, workflows: int, executor: str) -> None:
    """One worker process: launch DBOS, run queued workflows until all `workflows` have finished, print the
    CPU seconds this took."""
    settings = Settings(database_url=url, data_dir=folder, secret_key="floor-bench-" + "x" * 40)  # type: ignore[arg-type]
    engine = Engine.create(settings, role="worker", executor_id=executor)
    before = cpu_seconds()
    await engine.launch()
    try:
        await asyncio.to_thread(_wait_until_finished, url, workflows)
    finally:
        await asyncio.to_thread(engine.shutdown)
    print(f"cpu {cpu_seconds() - before:.3f}", flush=True)


def _table(url: str) -> str:
    return "workflow_status" if url.startswith("sqlite") else "dbos.workflow_status"


def _wait_until_finished(url: str, workflows: int) -> None:
    while _finished(url) < workflows:
        time.sleep(0.05)


def _finished(url: str) -> int:
    engine = create_engine(sync_url(url))
    try:
        with engine.connect() as conn:
            sql = f"SELECT count(*) FROM {_table(url)} WHERE status = 'SUCCESS'"
            return int(conn.execute(text(sql)).scalar_one())
    finally:
        engine.dispose()


def measure(backend: str, workflows: int, steps: int, processes: int) -> tuple[float, float]:
    folder = Path(tempfile.mkdtemp(prefix="wf-floor-"))
    url = database(backend, folder)
    upgrade(url)
    settings = Settings(database_url=url, data_dir=folder, secret_key="floor-bench-" + "x" * 40)  # type: ignore[arg-type]
    engine = Engine.create(settings, role="client")
    for i in range(workflows):
        option = EnqueueOptions(
            workflow_name="floor_workflow",
            queue_name="invoices",
            workflow_id=f"floor-{i}",
            app_version=WORKFLOWS_VERSION,
        )
        engine.client.enqueue(option, steps)
    engine.shutdown()
    command = [sys.executable, __file__, "--child", url, str(folder), str(workflows)]
    children = [
        subprocess.Popen([*command, f"floor-{index}"], stdout=subprocess.PIPE, text=True) for index in range(processes)
    ]
    cpu = 0.0
    for process in children:
        out, _ = process.communicate(timeout=900)
        assert process.returncode == 0, out
        cpu += float(out.split()[-1])
    db = create_engine(sync_url(url))
    with db.connect() as conn:
        first, last = conn.execute(text(f"SELECT min(started_at_epoch_ms), max(completed_at) FROM {_table(url)}")).one()
    db.dispose()
    return (workflows - 1) / ((last - first) / 1000), cpu * 1000 / workflows


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        url, folder, workflows, executor = sys.argv[2:6]
        asyncio.run(child(url, Path(folder), int(workflows), executor))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--workflows", type=int, default=1000)
    parser.add_argument("--steps", type=int, nargs="+", default=[0, 3])
    parser.add_argument("--processes", type=int, default=1, help="worker processes (PostgreSQL: any; SQLite: 1)")
    args = parser.parse_args()
    print(
        f"{os.cpu_count()} cores · load {os.getloadavg()[0]:.2f} · backend {args.backend}, {args.processes} process(es)"
    )
    for steps in args.steps:
        rate, cpu_ms = measure(args.backend, args.workflows, steps, args.processes)
        print(f"{steps} empty steps: {rate:6.1f} workflows/s, {cpu_ms:5.1f} ms of worker CPU per workflow")


if __name__ == "__main__":
    main()
