#!/usr/bin/env python3
"""invoiceflow API benchmark: the real server (uvicorn via `invoiceflow serve`) on SQLite and PostgreSQL.

For each backend the script

1. creates a fresh database (PostgreSQL: `invoiceflow_bench`, dropped and recreated; SQLite: a temporary
   data folder) and migrates it with `invoiceflow db upgrade`;
2. starts `python -m invoiceflow.cli serve` on a free loopback port (PostgreSQL: 2 workers; SQLite: 1);
3. registers an account and creates a client through the API;
4. **create**: POST /api/v1/invoices (5 lines, one organisation) from 32 concurrent connections, then checks
   in SQL that the invoices match the acknowledged responses and that their numbers are gapless;
5. **list**: bulk-loads N invoices (PostgreSQL 1,000,000; SQLite 200,000 unless --rows) over 200 clients and
   5 statuses, ANALYZE, restarts the server, and measures
   GET /api/v1/invoices?client_id=..&status=..&limit=50 at 1 and at 16 concurrent connections.

The load generator runs in its own process: `wrk` (C, one thread, a generated Lua script) when it is
installed, otherwise a small asyncio HTTP/1.1 keep-alive client in a separate Python process
(`--loadgen python`). The CPU time of the server, of PostgreSQL and of the load generator is measured
for every run, so a saturated load generator is visible in the output.

Before each measured run the script waits (at most --quiet-wait seconds) until other processes use less than
--quiet-threshold cores, and it reports the CPU that anything else used during the run ("other"), because
the figures only mean something on an otherwise idle machine.

Usage: .venv/bin/python bench/api_bench.py [--backend sqlite|postgresql|both] [--duration S] [--rows N]
       [--profile] [--loadgen auto|wrk|python] (see --help)

Results are printed as a table and written to bench/results/ as JSON. `--profile` adds one extra run per
scenario under `py-spy record` and prints the hottest functions (install: `.venv/bin/pip install py-spy`).

All traffic goes to 127.0.0.1; every loop is bounded in time; every process started here is stopped here.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import platform
import queue
import random
import re
import resource
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from array import array
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
HOST = "127.0.0.1"
PYTHON = sys.executable
PG_ADMIN_URL = os.environ.get("INVOICEFLOW_BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_DB_NAME = "invoiceflow_bench"
STATUSES = ("draft", "sent", "paid", "overdue", "cancelled")
# A realistic mix (most invoices end up paid); every (client, status) pair still holds > 50 rows at 200k rows.
STATUS_WEIGHTS = (0.10, 0.20, 0.50, 0.10, 0.10)
N_CLIENTS = 200
TARGET_CREATE_RPS = 400.0
TARGET_LIST_P95_1_MS = 5.0
TARGET_LIST_P95_16_MS = 50.0
CLK_TCK = os.sysconf("SC_CLK_TCK")
SERVER_READY_TIMEOUT = 60.0


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


# --------------------------------------------------------------------------------------------------
# CPU accounting from /proc: who used the two cores during a run.
# --------------------------------------------------------------------------------------------------


def _proc_table() -> dict[int, tuple[int, str, float]]:
    """pid -> (ppid, comm, cpu seconds used so far) for every process we can read."""
    table: dict[int, tuple[int, str, float]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                data = f.read()
        except OSError:
            continue
        comm = data[data.index("(") + 1 : data.rindex(")")]
        rest = data[data.rindex(")") + 2 :].split()
        table[int(entry)] = (int(rest[1]), comm, (int(rest[11]) + int(rest[12])) / CLK_TCK)
    return table


def _descendants(root: int, table: dict[int, tuple[int, str, float]]) -> set[int]:
    children: dict[int, list[int]] = defaultdict(list)
    for pid, (ppid, _, _) in table.items():
        children[ppid].append(pid)
    out, todo = {root}, [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in out:
                out.add(child)
                todo.append(child)
    return out


def _machine_ticks() -> tuple[int, int]:
    with open("/proc/stat") as f:
        parts = [int(x) for x in f.readline().split()[1:]]
    idle = parts[3] + parts[4]
    return sum(parts[:8]) - idle, sum(parts[:8])


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


@dataclass
class CpuSnapshot:
    table: dict[int, tuple[int, str, float]]
    machine_busy: int
    machine_total: int
    wall: float


def cpu_snapshot() -> CpuSnapshot:
    busy, total = _machine_ticks()
    return CpuSnapshot(_proc_table(), busy, total, time.monotonic())


def cpu_usage(
    before: CpuSnapshot, after: CpuSnapshot, *, server_pid: int, pg_db: str | None, loadgen_cpu: float | None
) -> dict[str, Any]:
    """Cores used during the run by: the server (master + workers), PostgreSQL (the bench database's backends
    and the shared WAL writer / checkpointer), the load generator, and everything else on the machine."""
    wall = max(after.wall - before.wall, 1e-9)
    server_pids = _descendants(server_pid, after.table)
    own = os.getpid()
    groups: Counter[str] = Counter()
    others: Counter[str] = Counter()
    per_server_process: dict[int, float] = {}
    for pid, (_, comm, cpu) in after.table.items():
        delta = cpu - (before.table[pid][2] if pid in before.table else 0.0)
        if delta <= 0:
            continue
        if pid in server_pids:
            groups["server"] += delta
            per_server_process[pid] = delta
        elif comm.startswith("postgres"):
            cmd = _cmdline(pid)
            if pg_db and f" {pg_db} " in cmd:
                groups["postgres"] += delta
            elif re.search(
                r"postgres: [^ ]+: (walwriter|checkpointer|background writer|autovacuum launcher|logical)", cmd
            ):
                groups["postgres_shared"] += delta
            else:
                others[cmd[:80] or comm] += delta
        elif pid == own:
            groups["bench_driver"] += delta
        else:
            others[(_cmdline(pid) or comm)[:80]] += delta
    machine_cores = (after.machine_busy - before.machine_busy) / CLK_TCK / wall
    accounted = sum(groups.values()) / wall + (loadgen_cpu or 0.0) / wall
    return {
        "server_cores": round(groups["server"] / wall, 2),
        # Per process (master and workers): shows whether the kernel spread the connections evenly.
        "server_process_cores": sorted((round(v / wall, 2) for v in per_server_process.values()), reverse=True),
        "postgres_cores": round(groups["postgres"] / wall, 2),
        "postgres_shared_cores": round(groups["postgres_shared"] / wall, 2),
        "loadgen_cores": round((loadgen_cpu or 0.0) / wall, 3),
        "machine_busy_cores": round(machine_cores, 2),
        "other_cores": round(max(0.0, machine_cores - accounted), 2),
        "other_top": [[k, round(v / wall, 2)] for k, v in others.most_common(4) if v / wall >= 0.02],
    }


def wait_for_quiet(threshold_cores: float, max_wait: float) -> dict[str, Any]:
    """Other work shares this machine (test suites...): wait, bounded, until the machine is nearly idle."""
    start = time.monotonic()
    busy = float("nan")
    while True:
        b0, _ = _machine_ticks()
        time.sleep(1.0)
        b1, _ = _machine_ticks()
        busy = (b1 - b0) / CLK_TCK
        waited = time.monotonic() - start
        if busy <= threshold_cores or waited >= max_wait:
            break
    if busy > threshold_cores:
        log(f"  machine still busy ({busy:.2f} cores used by other processes) after {waited:.0f}s; measuring anyway")
    elif waited > 1.5:
        log(f"  waited {waited:.0f}s for the machine to be quiet")
    return {"background_cores_before": round(busy, 2), "waited_s": round(waited, 1)}


# --------------------------------------------------------------------------------------------------
# Load generators (each runs in its own process).
# --------------------------------------------------------------------------------------------------


@dataclass
class LoadSpec:
    method: str
    paths: list[str]
    headers: dict[str, str]
    body: bytes = b""


@dataclass
class LoadResult:
    tool: str
    connections: int
    duration_s: float
    completed: int
    ok: int
    statuses: dict[str, int]
    errors: int  # socket errors and timeouts (non-2xx answers are counted in statuses)
    rps: float
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    loadgen_cpu_s: float
    cpu: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        return (
            f"{self.rps:8.1f} req/s  p50 {self.p50_ms:7.2f} ms  p95 {self.p95_ms:7.2f} ms  "
            f"p99 {self.p99_ms:7.2f} ms  ok {self.ok}  non-2xx {self.completed - self.ok}  errors {self.errors}"
        )


def _lua_str(s: str) -> str:
    return "[==[" + s + "]==]"


def wrk_script(spec: LoadSpec) -> str:
    headers = "\n".join(f"wrk.headers[ {_lua_str(k)} ] = {_lua_str(v)}" for k, v in spec.headers.items())
    paths = ",\n".join(_lua_str(p) for p in spec.paths)
    body = f"wrk.body = {_lua_str(spec.body.decode())}" if spec.body else ""
    return f"""
wrk.method = "{spec.method}"
{headers}
{body}
local paths = {{
{paths}
}}
local threads = {{}}
local counter = 0
setup = function(thread)
  counter = counter + 1
  thread:set("tid", counter)
  table.insert(threads, thread)
end
init = function(args)
  math.randomseed(os.time() * 1000 + tid)
  statuses = {{}}
end
request = function()
  return wrk.format(nil, paths[math.random(#paths)])
end
response = function(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
done = function(summary, latency, requests)
  local agg = {{}}
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("statuses")) do agg[k] = (agg[k] or 0) + v end
  end
  local parts = {{}}
  for k, v in pairs(agg) do table.insert(parts, string.format('"%d": %d', k, v)) end
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {{"requests": %d, "duration_us": %d, "err_connect": %d, "err_read": %d, "err_write": %d, '
    .. '"err_status": %d, "err_timeout": %d, "mean_us": %.1f, "max_us": %d, "p50_us": %d, "p90_us": %d, '
    .. '"p95_us": %d, "p99_us": %d, "statuses": {{%s}}}}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.max, latency:percentile(50), latency:percentile(90), latency:percentile(95),
    latency:percentile(99), table.concat(parts, ", ")))
end
"""


def run_wrk(base: str, spec: LoadSpec, connections: int, duration: float, workdir: Path) -> LoadResult:
    script = workdir / f"wrk-{uuid.uuid4().hex[:8]}.lua"
    script.write_text(wrk_script(spec))
    secs = max(1, round(duration))
    cmd = ["wrk", "-t", "1", "-c", str(connections), "-d", f"{secs}s", "--timeout", "30s", "-s", str(script), base]
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=secs + 90, check=False)
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    script.unlink(missing_ok=True)
    match = re.search(r"^WRK_RESULT (.*)$", proc.stdout, re.M)
    if proc.returncode != 0 or match is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    r = json.loads(match.group(1))
    dur = r["duration_us"] / 1e6
    statuses = {str(k): v for k, v in r["statuses"].items()}
    ok = sum(v for k, v in statuses.items() if k.startswith("2"))
    errors = r["err_connect"] + r["err_read"] + r["err_write"] + r["err_timeout"]
    return LoadResult(
        tool="wrk",
        connections=connections,
        duration_s=round(dur, 3),
        completed=r["requests"],
        ok=ok,
        statuses=statuses,
        errors=errors,
        rps=round(ok / dur, 1),
        p50_ms=r["p50_us"] / 1000,
        p90_ms=r["p90_us"] / 1000,
        p95_ms=r["p95_us"] / 1000,
        p99_ms=r["p99_us"] / 1000,
        max_ms=r["max_us"] / 1000,
        mean_ms=round(r["mean_us"] / 1000, 3),
        loadgen_cpu_s=round((ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime), 3),
    )


async def _py_connection(
    port: int, requests: list[bytes], deadline: float, lat: array, statuses: Counter[int], errors: list[int]
) -> None:
    import time as _t

    rng = random.Random()
    reader = writer = None
    while _t.monotonic() < deadline:
        try:
            if writer is None:
                reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), 10)
            req = requests[rng.randrange(len(requests))]
            t0 = _t.perf_counter()
            writer.write(req)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)  # type: ignore[union-attr]
            status = int(head[9:12])
            m = re.search(rb"\r\ncontent-length: *(\d+)", head, re.I)
            if m is None:
                raise RuntimeError("response without content-length")
            await asyncio.wait_for(reader.readexactly(int(m.group(1))), 30)  # type: ignore[union-attr]
            lat.append(_t.perf_counter() - t0)
            statuses[status] += 1
            if re.search(rb"\r\nconnection: *close", head, re.I):
                writer.close()
                reader = writer = None
        except (TimeoutError, OSError, asyncio.IncompleteReadError, RuntimeError):
            errors[0] += 1
            if writer is not None:
                writer.close()
            reader = writer = None
            await asyncio.sleep(0.05)
    if writer is not None:
        writer.close()


def _py_loadgen_main(port: int, requests: list[bytes], connections: int, duration: float, out: Any) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass

    async def main() -> tuple[float, array, Counter[int], int]:
        lat: array = array("d")
        statuses: Counter[int] = Counter()
        errors = [0]
        start = time.monotonic()
        deadline = start + duration
        tasks = [_py_connection(port, requests, deadline, lat, statuses, errors) for _ in range(connections)]
        # Every connection stops issuing at the deadline and finishes its request in flight (<= 30 s more).
        await asyncio.wait_for(asyncio.gather(*tasks), duration + 90)
        return time.monotonic() - start, lat, statuses, errors[0]

    elapsed, lat, statuses, errors = asyncio.run(main())
    ru = resource.getrusage(resource.RUSAGE_SELF)
    out.put((elapsed, lat.tobytes(), dict(statuses), errors, ru.ru_utime + ru.ru_stime))


def _pct(sorted_vals: list[float], p: float) -> float:
    if not sorted_vals:
        return float("nan")
    k = max(0, min(len(sorted_vals) - 1, round(p / 100.0 * len(sorted_vals) + 0.5) - 1))
    return sorted_vals[k]


def run_python_loadgen(base: str, spec: LoadSpec, connections: int, duration: float) -> LoadResult:
    port = int(base.rsplit(":", 1)[1])
    requests = []
    for path in spec.paths:
        head = [f"{spec.method} {path} HTTP/1.1", f"Host: {HOST}:{port}"]
        head += [f"{k}: {v}" for k, v in spec.headers.items()]
        if spec.body:
            head.append(f"Content-Length: {len(spec.body)}")
        requests.append(("\r\n".join(head) + "\r\n\r\n").encode() + spec.body)
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_py_loadgen_main, args=(port, requests, connections, duration, q), daemon=True)
    p.start()
    try:
        deadline = time.monotonic() + duration + 120
        while True:
            try:
                elapsed, raw, statuses, errors, cpu = q.get(timeout=1.0)
                break
            except queue.Empty:
                if not p.is_alive() or time.monotonic() > deadline:
                    raise RuntimeError(f"the Python load generator failed (exit code {p.exitcode})") from None
    finally:
        p.join(timeout=30)
        if p.is_alive():
            p.kill()
            p.join()
    lat = array("d")
    lat.frombytes(raw)
    vals = sorted(x * 1000 for x in lat)
    ok = sum(v for k, v in statuses.items() if 200 <= k < 300)
    return LoadResult(
        tool="python",
        connections=connections,
        duration_s=round(elapsed, 3),
        completed=len(vals),
        ok=ok,
        statuses={str(k): v for k, v in statuses.items()},
        errors=errors,
        rps=round(ok / elapsed, 1),
        p50_ms=round(_pct(vals, 50), 3),
        p90_ms=round(_pct(vals, 90), 3),
        p95_ms=round(_pct(vals, 95), 3),
        p99_ms=round(_pct(vals, 99), 3),
        max_ms=round(vals[-1], 3) if vals else float("nan"),
        mean_ms=round(sum(vals) / len(vals), 3) if vals else float("nan"),
        loadgen_cpu_s=round(cpu, 3),
    )


# --------------------------------------------------------------------------------------------------
# The server process.
# --------------------------------------------------------------------------------------------------


class Server:
    def __init__(self, database_url: str, data_dir: Path, workers: int) -> None:
        self.database_url = database_url
        self.data_dir = data_dir
        self.workers = workers
        self.proc: subprocess.Popen[bytes] | None = None
        self.base = ""
        self.log_path = data_dir / "server.log"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "INVOICEFLOW_DATABASE_URL": self.database_url,
            "INVOICEFLOW_DATA_DIR": str(self.data_dir),
            "INVOICEFLOW_SECRET_KEY": "bench-secret-key-" + "x" * 32,
            # Registration is not what is measured: keep password hashing cheap.
            "INVOICEFLOW_ARGON2_TIME_COST": "1",
            "INVOICEFLOW_ARGON2_MEMORY_KIB": "1024",
            "INVOICEFLOW_ACCESS_TOKEN_TTL_SECONDS": "86400",
            "PYTHONUNBUFFERED": "1",
        }

    def start(self) -> str:
        port = free_port()
        cmd = [
            PYTHON,
            "-m",
            "invoiceflow.cli",
            "serve",
            "--host",
            HOST,
            "--port",
            str(port),
            "--workers",
            str(self.workers),
            "--log-level",
            "warning",
            "--no-migrate",
        ]
        with open(self.log_path, "ab") as logf:
            self.proc = subprocess.Popen(
                cmd, env=self.env(), stdout=logf, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True
            )
        self.base = f"http://{HOST}:{port}"
        deadline = time.monotonic() + SERVER_READY_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log_path.read_text()[-4000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.base + "/readyz", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"server not ready after {SERVER_READY_TIMEOUT}s:\n{self.log_path.read_text()[-4000:]}"
                )
            time.sleep(0.1)
        if self.workers > 1:  # wait until every worker answers (the master forks them one by one)
            deadline = time.monotonic() + SERVER_READY_TIMEOUT
            while len(self.worker_pids()) < self.workers and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(1.0)
        return self.base

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def worker_pids(self) -> list[int]:
        if self.workers == 1:
            return [self.pid]
        table = _proc_table()
        out = []
        for pid, (ppid, comm, _) in table.items():
            if ppid != self.pid or not comm.startswith("python"):
                continue
            with contextlib.suppress(OSError):
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                if b"resource_tracker" not in cmdline:
                    out.append(pid)
        return sorted(out)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            self.proc = None
            return
        pgid = self.proc.pid  # start_new_session: the server and its workers are in their own group
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        # workers that outlived the master (should not happen) are in the same group
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        self.proc = None


@contextlib.contextmanager
def running(server: Server) -> Iterator[str]:
    base = server.start()
    try:
        yield base
    finally:
        server.stop()


# --------------------------------------------------------------------------------------------------
# Databases.
# --------------------------------------------------------------------------------------------------


def _weighted_status(r: float) -> str:
    acc = 0.0
    for status, w in zip(STATUSES, STATUS_WEIGHTS, strict=True):
        acc += w
        if r < acc:
            return status
    return STATUSES[-1]


class PostgresBackend:
    name = "postgresql"
    workers = 2
    default_rows = 1_000_000

    def __init__(self, admin_url: str, db_name: str) -> None:
        self.admin_url = admin_url
        self.db_name = db_name
        self.url = admin_url.rsplit("/", 1)[0] + "/" + db_name
        self.data_dir = Path(tempfile.mkdtemp(prefix="invoiceflow-bench-pg-"))

    def _connect(self, url: str | None = None, autocommit: bool = False) -> Any:
        import psycopg

        return psycopg.connect(url or self.url, autocommit=autocommit)

    def create(self) -> None:
        with self._connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{self.db_name}"')

    def drop(self) -> None:
        with self._connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def info(self) -> dict[str, Any]:
        with self._connect() as conn:
            version = conn.execute("SHOW server_version").fetchone()[0]
            settings = dict(
                conn.execute(
                    "SELECT name, current_setting(name) FROM pg_settings WHERE name = ANY(%s)",
                    (["shared_buffers", "synchronous_commit", "fsync", "max_connections", "work_mem", "jit"],),
                ).fetchall()
            )
        return {"server_version": version, "settings": settings}

    def verify_creates(self, org_id: str) -> dict[str, Any]:
        with self._connect() as conn:
            n, distinct, lo, hi = conn.execute(
                "SELECT count(*), count(DISTINCT invoice_number), min(seq), max(seq) FROM ("
                " SELECT invoice_number, split_part(invoice_number, '-', 3)::int AS seq FROM invoices"
                " WHERE organization_id = %s AND invoice_number LIKE 'INV-%%') t",
                (org_id,),
            ).fetchone()
            nulls = conn.execute(
                "SELECT count(*) FROM invoices WHERE organization_id = %s AND invoice_number IS NULL", (org_id,)
            ).fetchone()[0]
            last = conn.execute(
                "SELECT coalesce(max(last_value), 0) FROM number_sequences"
                " WHERE organization_id = %s AND series = 'invoice'",
                (org_id,),
            ).fetchone()[0]
            lines = conn.execute(
                "SELECT count(*) FROM invoice_lines l JOIN invoices i ON i.id = l.invoice_id"
                " WHERE i.organization_id = %s AND i.invoice_number LIKE 'INV-%%'",
                (org_id,),
            ).fetchone()[0]
            events = conn.execute(
                "SELECT count(*) FROM events WHERE organization_id = %s AND type = 'InvoiceCreated'", (org_id,)
            ).fetchone()[0]
        return {
            "invoices": n,
            "distinct_numbers": distinct,
            "min_seq": lo,
            "max_seq": hi,
            "null_numbers": nulls,
            "sequence_last_value": last,
            "lines": lines,
            "events": events,
        }

    def bulk_load(self, org_id: str, rows: int) -> list[str]:
        """1 statement for clients, chunks of INSERT ... SELECT generate_series for invoices."""
        w = STATUS_WEIGHTS
        cuts = [sum(w[: i + 1]) for i in range(len(w))]
        status_case = (
            "CASE "
            + " ".join(f"WHEN r_status < {c:.4f} THEN '{s}'" for s, c in zip(STATUSES[:-1], cuts[:-1], strict=True))
            + f" ELSE '{STATUSES[-1]}' END"
        )
        with self._connect() as conn:
            conn.execute(
                "INSERT INTO clients (id, organization_id, name, email, address, country, currency, language,"
                " created_at, updated_at)"
                " SELECT gen_random_uuid(), %s, 'Bulk client ' || lpad(g::text, 3, '0'),"
                " 'bulk-client-' || g || '@example.com',"
                " json_build_object('line1', g || ' Rue de la Loi', 'city', 'Brussels', 'postal_code', '1000',"
                "   'country', 'BE'), 'BE', 'EUR', 'en', now() - interval '800 days', now() - interval '800 days'"
                " FROM generate_series(1, %s) g",
                (org_id, N_CLIENTS),
            )
            client_ids = [
                str(r[0])
                for r in conn.execute(
                    "SELECT id FROM clients WHERE organization_id = %s AND email LIKE 'bulk-client-%%' ORDER BY name",
                    (org_id,),
                ).fetchall()
            ]
            conn.commit()
            try:  # skip the per-row FK triggers while loading (superuser only); the data is consistent by construction
                conn.execute("SET session_replication_role = replica")
            except Exception:  # noqa: BLE001
                conn.rollback()
            chunk = 250_000
            for start in range(1, rows + 1, chunk):
                stop = min(rows, start + chunk - 1)
                conn.execute(
                    f"""
                    WITH ids AS (SELECT array_agg(id ORDER BY name) AS a FROM clients
                                 WHERE organization_id = %(org)s AND email LIKE 'bulk-client-%%'),
                    base AS (
                      SELECT g, random() AS r_status, 1 + floor(random() * {N_CLIENTS})::int AS ci,
                             now() - random() * interval '730 days' AS ts,
                             round((20 + power(random(), 2) * 9980)::numeric, 2) AS net,
                             (ARRAY[21, 21, 21, 6, 12])[1 + floor(random() * 5)::int] AS rate
                      FROM generate_series(%(lo)s::int, %(hi)s::int) g),
                    r AS (SELECT *, {status_case} AS status, round(net * rate / 100, 2) AS vat FROM base)
                    INSERT INTO invoices (id, organization_id, client_id, invoice_number, status, issue_date, due_date,
                      currency, notes, buyer_reference, net_amount, vat_amount, total_amount, amount_paid,
                      sent_at, paid_at, created_at, updated_at)
                    SELECT gen_random_uuid(), %(org)s, ids.a[ci], 'BULK-' || lpad(g::text, 7, '0'), status,
                      ts::date, ts::date + 30, 'EUR', NULL, 'PO-' || g, net, vat, net + vat,
                      CASE WHEN status = 'paid' THEN net + vat ELSE 0 END,
                      CASE WHEN status IN ('sent', 'paid', 'overdue') THEN ts + interval '1 hour' END,
                      CASE WHEN status = 'paid' THEN ts + random() * interval '40 days' END,
                      ts, ts
                    FROM r, ids
                    """,
                    {"org": org_id, "lo": start, "hi": stop},
                )
                conn.commit()
                log(f"  postgresql: loaded {stop:,} / {rows:,} invoices")
        with self._connect(autocommit=True) as conn:
            conn.execute("VACUUM (ANALYZE) invoices")
            conn.execute("ANALYZE clients")
        return client_ids

    def sql_only(self, org_id: str, pairs: list[tuple[str, str]], n: int) -> dict[str, Any]:
        """The endpoint's query alone (same SQL shape as SQLAlchemy emits), sequential, through psycopg."""
        sql = (
            "SELECT * FROM invoices WHERE organization_id = %s AND deleted_at IS NULL AND status = %s"
            " AND client_id = %s ORDER BY created_at DESC, id DESC LIMIT 51"
        )
        rng = random.Random(7)
        times = []
        with self._connect() as conn:
            for c, s in pairs[:20]:
                conn.execute(sql, (org_id, s, c), prepare=True).fetchall()
            deadline = time.monotonic() + 30
            for _ in range(n):
                c, s = pairs[rng.randrange(len(pairs))]
                t0 = time.perf_counter()
                conn.execute(sql, (org_id, s, c), prepare=True).fetchall()
                times.append((time.perf_counter() - t0) * 1000)
                if time.monotonic() > deadline:
                    break
            c, s = pairs[0]
            plan = "\n".join(
                r[0]
                for r in conn.execute(
                    "EXPLAIN (ANALYZE, BUFFERS) " + sql.replace("%s", "{}").format(f"'{org_id}'", f"'{s}'", f"'{c}'")
                ).fetchall()
            )
        times.sort()
        return {
            "n": len(times),
            "p50_ms": round(_pct(times, 50), 3),
            "p95_ms": round(_pct(times, 95), 3),
            "p99_ms": round(_pct(times, 99), 3),
            "plan": plan,
        }

    def table_sizes(self) -> dict[str, Any]:
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT relname, n_live_tup, pg_size_pretty(pg_total_relation_size(relid)) FROM pg_stat_user_tables"
                " WHERE relname IN ('invoices', 'invoice_lines', 'clients') ORDER BY relname"
            ).fetchall()
        return {r[0]: {"rows": r[1], "total_size": r[2]} for r in rows}


class ActivitySampler:
    """Samples pg_stat_activity of the bench database during a run: where do the server's backends wait?"""

    def __init__(self, url: str, db_name: str, interval: float = 0.05) -> None:
        self.url = url
        self.db_name = db_name
        self.interval = interval
        self.samples = 0
        self.counts: Counter[str] = Counter()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _run(self, max_seconds: float) -> None:
        import psycopg

        deadline = time.monotonic() + max_seconds
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self._stop.is_set() and time.monotonic() < deadline:
                rows = conn.execute(
                    "SELECT state, wait_event_type, wait_event, count(*) FROM pg_stat_activity"
                    " WHERE datname = %s AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
                    " GROUP BY 1, 2, 3",
                    (self.db_name,),
                ).fetchall()
                self.samples += 1
                for state, wtype, wevent, n in rows:
                    key = state or "?"
                    if wtype:
                        key += f" / {wtype}:{wevent}"
                    self.counts[key] += n
                self._stop.wait(self.interval)

    def start(self, max_seconds: float) -> None:
        self._thread = threading.Thread(target=self._run, args=(max_seconds,), daemon=True)
        self._thread.start()

    def stop(self) -> dict[str, float]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if not self.samples:
            return {}
        return {k: round(v / self.samples, 2) for k, v in self.counts.most_common()}


def _sqlite_ts(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%d %H:%M:%S.%f")


class SqliteBackend:
    name = "sqlite"
    workers = 1
    default_rows = 200_000

    def __init__(self) -> None:
        self.data_dir = Path(tempfile.mkdtemp(prefix="invoiceflow-bench-sqlite-"))
        self.path = self.data_dir / "invoiceflow.db"
        self.url = f"sqlite:///{self.path.as_posix()}"

    def create(self) -> None:
        self.path.unlink(missing_ok=True)

    def drop(self) -> None:
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def info(self) -> dict[str, Any]:
        return {"sqlite_version": sqlite3.sqlite_version}

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        conn.execute("PRAGMA busy_timeout=30000")
        return conn

    def verify_creates(self, org_id: str) -> dict[str, Any]:
        org = uuid.UUID(org_id).hex
        conn = self._connect()
        try:
            nums = [
                r[0]
                for r in conn.execute(
                    "SELECT invoice_number FROM invoices WHERE organization_id = ? AND invoice_number LIKE 'INV-%'",
                    (org,),
                )
            ]
            seqs = [int(x.rsplit("-", 1)[1]) for x in nums]
            nulls = conn.execute(
                "SELECT count(*) FROM invoices WHERE organization_id = ? AND invoice_number IS NULL", (org,)
            ).fetchone()[0]
            last = conn.execute(
                "SELECT coalesce(max(last_value), 0) FROM number_sequences"
                " WHERE organization_id = ? AND series = 'invoice'",
                (org,),
            ).fetchone()[0]
            lines = conn.execute(
                "SELECT count(*) FROM invoice_lines l JOIN invoices i ON i.id = l.invoice_id"
                " WHERE i.organization_id = ? AND i.invoice_number LIKE 'INV-%'",
                (org,),
            ).fetchone()[0]
            events = conn.execute(
                "SELECT count(*) FROM events WHERE organization_id = ? AND type = 'InvoiceCreated'", (org,)
            ).fetchone()[0]
        finally:
            conn.close()
        return {
            "invoices": len(nums),
            "distinct_numbers": len(set(nums)),
            "min_seq": min(seqs, default=None),
            "max_seq": max(seqs, default=None),
            "null_numbers": nulls,
            "sequence_last_value": last,
            "lines": lines,
            "events": events,
        }

    def bulk_load(self, org_id: str, rows: int) -> list[str]:
        """executemany in big transactions. Storage follows core/db.py: UUIDs as 32-char hex, Amount as
        integers scaled by 10^4, timestamps as naive UTC text, dates as ISO text."""
        org = uuid.UUID(org_id).hex
        rng = random.Random(42)
        now = datetime.now(UTC).replace(tzinfo=None)
        long_ago = _sqlite_ts(now - timedelta(days=800))
        clients = [uuid.UUID(int=rng.getrandbits(128), version=4) for _ in range(N_CLIENTS)]
        conn = self._connect()
        try:
            conn.execute("PRAGMA synchronous=OFF")
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                "INSERT INTO clients (id, organization_id, name, email, address, country, currency, language,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'BE', 'EUR', 'en', ?, ?)",
                [
                    (
                        c.hex,
                        org,
                        f"Bulk client {i:03d}",
                        f"bulk-client-{i}@example.com",
                        json.dumps(
                            {"line1": f"{i} Rue de la Loi", "city": "Brussels", "postal_code": "1000", "country": "BE"}
                        ),
                        long_ago,
                        long_ago,
                    )
                    for i, c in enumerate(clients, start=1)
                ],
            )
            conn.execute("COMMIT")
            chunk = 50_000
            for start in range(1, rows + 1, chunk):
                stop = min(rows, start + chunk - 1)
                batch = []
                for g in range(start, stop + 1):
                    status = _weighted_status(rng.random())
                    ts = now - timedelta(seconds=rng.random() * 730 * 86400)
                    net_cents = 2000 + int(rng.random() ** 2 * 998000)
                    rate = rng.choice((21, 21, 21, 6, 12))
                    vat_cents = (net_cents * rate + 50) // 100
                    total = (net_cents + vat_cents) * 100  # cents -> 10^-4 units
                    issue = ts.date()
                    batch.append(
                        (
                            uuid.UUID(int=rng.getrandbits(128), version=4).hex,
                            org,
                            clients[rng.randrange(N_CLIENTS)].hex,
                            f"BULK-{g:07d}",
                            status,
                            issue.isoformat(),
                            (issue + timedelta(days=30)).isoformat(),
                            "EUR",
                            f"PO-{g}",
                            net_cents * 100,
                            vat_cents * 100,
                            total,
                            total if status == "paid" else 0,
                            _sqlite_ts(ts + timedelta(hours=1)) if status in ("sent", "paid", "overdue") else None,
                            _sqlite_ts(ts + timedelta(days=rng.random() * 40)) if status == "paid" else None,
                            _sqlite_ts(ts),
                            _sqlite_ts(ts),
                        )
                    )
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany(
                    "INSERT INTO invoices (id, organization_id, client_id, invoice_number, status, issue_date,"
                    " due_date, currency, buyer_reference, net_amount, vat_amount, total_amount, amount_paid,"
                    " sent_at, paid_at, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    batch,
                )
                conn.execute("COMMIT")
                log(f"  sqlite: loaded {stop:,} / {rows:,} invoices")
            conn.execute("ANALYZE")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()
        return [str(c) for c in clients]

    def sql_only(self, org_id: str, pairs: list[tuple[str, str]], n: int) -> dict[str, Any]:
        org = uuid.UUID(org_id).hex
        sql = (
            "SELECT * FROM invoices WHERE organization_id = ? AND deleted_at IS NULL AND status = ?"
            " AND client_id = ? ORDER BY created_at DESC, id DESC LIMIT 51"
        )
        rng = random.Random(7)
        times = []
        conn = self._connect()
        try:
            deadline = time.monotonic() + 30
            for _ in range(n):
                c, s = pairs[rng.randrange(len(pairs))]
                t0 = time.perf_counter()
                conn.execute(sql, (org, s, uuid.UUID(c).hex)).fetchall()
                times.append((time.perf_counter() - t0) * 1000)
                if time.monotonic() > deadline:
                    break
            c, s = pairs[0]
            plan = "\n".join(str(r[-1]) for r in conn.execute("EXPLAIN QUERY PLAN " + sql, (org, s, uuid.UUID(c).hex)))
        finally:
            conn.close()
        times.sort()
        return {
            "n": len(times),
            "p50_ms": round(_pct(times, 50), 3),
            "p95_ms": round(_pct(times, 95), 3),
            "p99_ms": round(_pct(times, 99), 3),
            "plan": plan,
        }

    def table_sizes(self) -> dict[str, Any]:
        conn = self._connect()
        try:
            out = {
                t: {"rows": conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]}
                for t in ("clients", "invoices", "invoice_lines")
            }
        finally:
            conn.close()
        out["file_size_mb"] = round(self.path.stat().st_size / 1e6, 1)  # type: ignore[assignment]
        return out


# --------------------------------------------------------------------------------------------------
# Profiling with py-spy.
# --------------------------------------------------------------------------------------------------


def pyspy_path() -> str | None:
    local = Path(PYTHON).parent / "py-spy"
    return str(local) if local.exists() else shutil.which("py-spy")


_FRAME_RE = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def _short_file(path: str) -> str:
    # py-spy prints paths relative to sys.path ("sqlalchemy/orm/session.py", "asyncio/runners.py")
    for marker in ("site-packages/", "/src/", "lib/python3.11/", "lib/python3.12/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


_STDLIB = set(getattr(sys, "stdlib_module_names", ()))


def _package(path: str) -> str:
    short = _short_file(path)
    top = short.split("/", 1)[0].removesuffix(".py")
    if top == "invoiceflow":
        return "invoiceflow"
    if top in _STDLIB or path.startswith("<"):
        return "stdlib"
    return top or "other"


def summarize_profile(raw_file: Path, top: int = 20) -> dict[str, Any]:
    """Top self-time and inclusive-time functions from py-spy's collapsed stacks."""
    self_t: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    pkg_self: Counter[str] = Counter()
    total = 0
    for line in raw_file.read_text().splitlines():
        if not line.strip():
            continue
        stack, _, count_s = line.rpartition(" ")
        try:
            count = int(count_s)
        except ValueError:
            continue
        frames = []
        for fr in stack.split(";"):
            m = _FRAME_RE.match(fr.strip())
            if m is None:
                continue  # process / thread labels
            frames.append((m.group("func"), m.group("file")))
        if not frames:
            continue
        total += count
        func, file = frames[-1]
        self_t[f"{func} ({_short_file(file)})"] += count
        pkg_self[_package(file)] += count
        for key in {f"{fn} ({_short_file(fl)})" for fn, fl in frames}:
            incl[key] += count
    if not total:
        return {"samples": 0}

    def pct(c: Counter[str], n: int) -> list[list[Any]]:
        return [[k, round(100.0 * v / total, 1)] for k, v in c.most_common(n)]

    interesting = Counter(
        {
            k: v
            for k, v in incl.items()
            if "invoiceflow/" in k
            or "sqlalchemy/" in k
            or "fastapi/" in k
            or "pydantic" in k
            or "asyncpg/" in k
            or "aiosqlite/" in k
            or "starlette/" in k
            or "uvicorn/" in k
        }
    )
    return {
        "samples": total,
        "self_top": pct(self_t, top),
        "inclusive_top": pct(interesting, top + 10),
        "self_by_package": pct(pkg_self, 12),
    }


def profile_run(
    ctx: RunContext, server: Server, spec: LoadSpec, connections: int, duration: float, label: str
) -> dict[str, Any] | None:
    tool = pyspy_path()
    if tool is None:
        log("  py-spy not found: skipping the profile (.venv/bin/pip install py-spy)")
        return None
    out = ctx.results_dir / f"profile-{ctx.stamp}-{label}.txt"
    secs = max(2, int(duration))
    # --gil: only samples where a thread holds the GIL, i.e. Python (or C called from Python) doing work;
    # waiting in epoll, in the thread pool or in SQLite's C code (GIL released) is left out.
    cmd = [
        tool,
        "record",
        "--pid",
        str(server.pid),
        "--format",
        "raw",
        "--rate",
        "250",
        "--duration",
        str(secs),
        "--nonblocking",
        "--gil",
        "--output",
        str(out),
    ]
    if server.workers > 1:
        cmd.insert(2, "--subprocesses")
    spy = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    time.sleep(0.5)
    try:
        res = ctx.load(server.base, spec, connections, secs)
    finally:
        try:
            spy_out, _ = spy.communicate(timeout=secs + 60)
        except subprocess.TimeoutExpired:
            os.killpg(spy.pid, signal.SIGKILL)
            spy_out, _ = spy.communicate()
    if not out.exists():
        log(f"  py-spy produced nothing: {spy_out.decode(errors='replace')[-500:]}")
        return None
    summary = summarize_profile(out)
    summary["raw_file"] = str(out.relative_to(ROOT))
    summary["load_during_profile"] = res.summary()
    return summary


# --------------------------------------------------------------------------------------------------
# The scenarios.
# --------------------------------------------------------------------------------------------------


@dataclass
class RunContext:
    args: argparse.Namespace
    loadgen: str
    results_dir: Path
    stamp: str
    workdir: Path
    pg_db: str | None = None

    def load(self, base: str, spec: LoadSpec, connections: int, duration: float) -> LoadResult:
        if self.loadgen == "wrk":
            return run_wrk(base, spec, connections, duration, self.workdir)
        return run_python_loadgen(base, spec, connections, duration)


def measured(
    ctx: RunContext,
    server: Server,
    spec: LoadSpec,
    connections: int,
    duration: float,
    sampler: ActivitySampler | None = None,
) -> LoadResult:
    quiet = wait_for_quiet(ctx.args.quiet_threshold, ctx.args.quiet_wait)
    before = cpu_snapshot()
    if sampler is not None:
        sampler.start(duration + 30)
    res = ctx.load(server.base, spec, connections, duration)
    after = cpu_snapshot()
    res.cpu = cpu_usage(before, after, server_pid=server.pid, pg_db=ctx.pg_db, loadgen_cpu=res.loadgen_cpu_s)
    res.cpu.update(quiet)
    if res.rps > 0:  # CPU cost per request: barely affected by other load on the machine, unlike req/s
        res.cpu["server_cpu_ms_per_req"] = round(1000 * res.cpu["server_cores"] / res.rps, 2)
        pg = res.cpu["postgres_cores"] + res.cpu["postgres_shared_cores"]
        res.cpu["postgres_cpu_ms_per_req"] = round(1000 * pg / res.rps, 2)
    return res


def register(base: str, backend: str) -> tuple[str, str]:
    with httpx.Client(base_url=base, timeout=30) as http:
        r = http.post(
            "/api/v1/auth/register",
            json={
                "email": f"bench-{backend}-{uuid.uuid4().hex[:8]}@example.com",
                "password": "bench-password-123",
                "name": "Bench User",
                "organization_name": f"Bench {backend}",
            },
        )
        r.raise_for_status()
        data = r.json()["data"]
        return data["tokens"]["access_token"], data["organization"]["id"]


def create_client(base: str, token: str) -> str:
    with httpx.Client(base_url=base, timeout=30, headers={"Authorization": f"Bearer {token}"}) as http:
        r = http.post(
            "/api/v1/clients",
            json={
                "name": "Acme Benchmarks NV",
                "email": "billing@acme.example",
                "vat_id": "BE0123456749",
                "currency": "EUR",
                "address": {"line1": "Rue de la Loi 16", "city": "Brussels", "postal_code": "1000", "country": "BE"},
            },
        )
        r.raise_for_status()
        return str(r.json()["data"]["id"])


def invoice_body(client_id: str) -> bytes:
    items = [
        {
            "description": "Consulting, senior (hours)",
            "quantity": "7.5",
            "unit_code": "HUR",
            "unit_price": "120.00",
            "vat_category": "S",
            "vat_rate": "21",
        },
        {
            "description": "Consulting, junior (hours)",
            "quantity": "12",
            "unit_code": "HUR",
            "unit_price": "75.50",
            "vat_category": "S",
            "vat_rate": "21",
        },
        {
            "description": "Travel expenses",
            "quantity": "1",
            "unit_price": "84.37",
            "vat_category": "S",
            "vat_rate": "21",
        },
        {
            "description": "Printed manuals",
            "quantity": "3",
            "unit_price": "19.99",
            "vat_category": "S",
            "vat_rate": "6",
        },
        {
            "description": "Export shipment handling",
            "quantity": "1",
            "unit_price": "45.00",
            "vat_category": "Z",
            "vat_rate": "0",
        },
    ]
    return json.dumps(
        {
            "client_id": client_id,
            "currency": "EUR",
            "buyer_reference": "PO-BENCH",
            "notes": "Benchmark invoice",
            "items": items,
        },
        separators=(",", ":"),
    ).encode()


def bench_create(
    ctx: RunContext, backend: Any, server: Server, token: str, org_id: str, client_id: str
) -> dict[str, Any]:
    args = ctx.args
    spec = LoadSpec(
        "POST",
        ["/api/v1/invoices"],
        {"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        invoice_body(client_id),
    )
    # one request by hand: the body is valid and the answer is what we expect
    with httpx.Client(base_url=server.base, timeout=30) as http:
        r = http.post(spec.paths[0], content=spec.body, headers=spec.headers)
        if r.status_code != 201:
            raise RuntimeError(f"create invoice failed: {r.status_code} {r.text[:500]}")
        first = r.json()["data"]
    acknowledged = 1
    runs = 1
    c = args.create_connections
    log(f"  create: warm-up {args.warmup}s at {c} connections")
    warm = ctx.load(server.base, spec, c, args.warmup)
    acknowledged += warm.statuses.get("201", 0)
    runs += 1
    sampler = ActivitySampler(backend.url, PG_DB_NAME) if backend.name == "postgresql" else None
    log(f"  create: measuring {args.duration}s at {c} connections")
    res = measured(ctx, server, spec, c, args.duration, sampler)
    waits = sampler.stop() if sampler else None
    acknowledged += res.statuses.get("201", 0)
    runs += 1
    log(f"  create: {res.summary()}  cpu {res.cpu}")
    # requests cut off at the load generator's deadline still finish on the server: wait until the count settles
    v = backend.verify_creates(org_id)
    settle_deadline = time.monotonic() + 30
    while time.monotonic() < settle_deadline:
        time.sleep(0.5)
        again = backend.verify_creates(org_id)
        if again["invoices"] == v["invoices"]:
            break
        v = again
    # wrk drops the requests in flight when its time is up; the server still commits them, so the database
    # may hold up to `connections` more invoices per wrk run than the acknowledged responses.
    slack = 0 if ctx.loadgen == "python" else c * (runs - 1)
    slack += warm.errors + res.errors
    extra = v["invoices"] - acknowledged
    gapless = (
        v["invoices"] == v["distinct_numbers"]
        and v["null_numbers"] == 0
        and (v["invoices"] == 0 or (v["min_seq"] == 1 and v["max_seq"] == v["invoices"]))
        and v["sequence_last_value"] == v["invoices"]
    )
    v.update(
        {
            "acknowledged_201": acknowledged,
            "unacknowledged_in_db": extra,
            "allowed_unacknowledged": slack,
            "count_matches": 0 <= extra <= slack,
            "gapless": gapless,
            "lines_match": v["lines"] == 5 * v["invoices"],
            "events_match": v["events"] == v["invoices"],
        }
    )
    ok = v["count_matches"] and gapless and v["lines_match"] and v["events_match"]
    log(f"  create: verification {'OK' if ok else 'FAILED'}: {v}")
    out: dict[str, Any] = {
        "first_response_invoice_number": first["invoice_number"],
        "first_response_total": first["total_amount"],
        "warmup": warm.__dict__,
        "result": res.__dict__,
        "verification": v,
        "verification_ok": ok,
        "pg_backend_states_avg": waits,
    }
    if args.profile:
        log(f"  create: profiling {args.profile_duration}s under py-spy")
        out["profile"] = profile_run(ctx, server, spec, c, args.profile_duration, f"{backend.name}-create")
    return out


def bench_list(
    ctx: RunContext, backend: Any, server: Server, token: str, org_id: str, client_ids: list[str]
) -> dict[str, Any]:
    args = ctx.args
    pairs = [(c, s) for c in client_ids for s in STATUSES]
    paths = [f"/api/v1/invoices?client_id={c}&status={s}&limit=50" for c, s in pairs]
    spec = LoadSpec("GET", paths, {"Authorization": f"Bearer {token}"})
    with httpx.Client(base_url=server.base, timeout=30, headers=spec.headers) as http:
        sizes = []
        for path in random.Random(3).sample(paths, 20):
            r = http.get(path)
            if r.status_code != 200:
                raise RuntimeError(f"list failed: {r.status_code} {r.text[:500]}")
            page = r.json()["data"]
            sizes.append(len(page["items"]))
        body_bytes = len(r.content)
    log(f"  list: sample page sizes {sorted(set(sizes))}, response ~{body_bytes / 1024:.0f} KiB")
    sql = backend.sql_only(org_id, pairs, 2000)
    log(f"  list: SQL alone p50 {sql['p50_ms']} ms p95 {sql['p95_ms']} ms")
    out: dict[str, Any] = {"page_sizes_sample": sizes, "response_bytes": body_bytes, "sql_only": sql, "runs": {}}
    for c in args.list_connections:
        log(f"  list: warm-up {args.warmup}s at {c} connection(s)")
        ctx.load(server.base, spec, c, args.warmup)
        log(f"  list: measuring {args.duration}s at {c} connection(s)")
        res = measured(ctx, server, spec, c, args.duration)
        log(f"  list@{c}: {res.summary()}  cpu {res.cpu}")
        out["runs"][str(c)] = res.__dict__
    if args.profile:
        c = max(args.list_connections)
        log(f"  list: profiling {args.profile_duration}s at {c} connections under py-spy")
        out["profile"] = profile_run(ctx, server, spec, c, args.profile_duration, f"{backend.name}-list")
    return out


def migrate(backend: Any, server: Server) -> None:
    subprocess.run(
        [PYTHON, "-m", "invoiceflow.cli", "db", "upgrade"],
        env=server.env(),
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=120,
    )


def run_backend(ctx: RunContext, backend: Any) -> dict[str, Any]:
    args = ctx.args
    rows = args.rows or backend.default_rows
    log(f"{backend.name}: fresh database ({backend.url})")
    backend.create()
    server = Server(backend.url, backend.data_dir, backend.workers)
    result: dict[str, Any] = {"backend": backend.name, "workers": backend.workers, "database_url": backend.url}
    try:
        migrate(backend, server)
        result["database"] = backend.info()
        with running(server) as base:
            log(f"{backend.name}: server on {base} (pid {server.pid}, workers {server.worker_pids()})")
            token, org_id = register(base, backend.name)
            client_id = create_client(base, token)
            if "create" in args.scenarios:
                result["create"] = bench_create(ctx, backend, server, token, org_id, client_id)
        if "list" in args.scenarios:
            log(f"{backend.name}: bulk-loading {rows:,} invoices over {N_CLIENTS} clients")
            t0 = time.monotonic()
            client_ids = backend.bulk_load(org_id, rows)
            load_s = time.monotonic() - t0
            log(f"{backend.name}: bulk load + ANALYZE took {load_s:.1f}s; {backend.table_sizes()}")
            with running(server) as base:
                log(f"{backend.name}: server restarted on {base}")
                result["list"] = bench_list(ctx, backend, server, token, org_id, client_ids)
            result["list"]["rows_loaded"] = rows
            result["list"]["bulk_load_seconds"] = round(load_s, 1)
            result["list"]["table_sizes"] = backend.table_sizes()
    finally:
        server.stop()
        log_tail = server.log_path.read_text()[-3000:] if server.log_path.exists() else ""
        if log_tail.strip():
            result["server_log_tail"] = log_tail
        if not args.keep:
            backend.drop()
        else:
            log(f"{backend.name}: kept {backend.url} (data dir {backend.data_dir})")
    return result


# --------------------------------------------------------------------------------------------------
# Output.
# --------------------------------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    cpu_model = "?"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with contextlib.suppress(OSError), open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    wrk_version = None
    if shutil.which("wrk"):
        out = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
        wrk_version = (out.stdout or out.stderr).splitlines()[0].strip() if (out.stdout or out.stderr) else "?"
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model,
        "mem_gib": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "wrk": wrk_version,
    }


def git_state() -> dict[str, Any]:
    def git(*a: str) -> str:
        out = subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True, check=False, timeout=30)
        return out.stdout.strip()

    return {"head": git("rev-parse", "--short", "HEAD"), "uncommitted": git("status", "--short", "src").splitlines()}


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def _cpu_cell(cpu: dict[str, Any]) -> str:
    pg = cpu["postgres_cores"] + cpu.get("postgres_shared_cores", 0.0)
    return f"{cpu['server_cores']:.2f}/{pg:.2f}/{cpu['loadgen_cores']:.2f}/{cpu.get('other_cores', 0.0):.2f}"


def table_rows(results: list[dict[str, Any]]) -> list[list[str]]:
    rows = []
    for r in results:
        b = r["backend"]
        if "create" in r:
            res = r["create"]["result"]
            cpu = res["cpu"]
            rows.append(
                [
                    b,
                    "create invoice, 5 lines",
                    str(res["connections"]),
                    f"{res['rps']:.0f}",
                    f"{res['p50_ms']:.1f}",
                    f"{res['p95_ms']:.1f}",
                    f"{res['p99_ms']:.1f}",
                    str(res["completed"] - res["ok"] + res["errors"]),
                    _cpu_cell(cpu),
                    f"{cpu.get('server_cpu_ms_per_req', float('nan')):.1f}",
                    f">= {TARGET_CREATE_RPS:.0f} req/s",
                    _verdict(res["rps"] >= TARGET_CREATE_RPS),
                ]
            )
        if "list" in r:
            for c, res in r["list"]["runs"].items():
                target = TARGET_LIST_P95_1_MS if c == "1" else TARGET_LIST_P95_16_MS
                cpu = res["cpu"]
                rows.append(
                    [
                        b,
                        f"list 50 by client+status ({r['list']['rows_loaded'] // 1000}k)",
                        c,
                        f"{res['rps']:.0f}",
                        f"{res['p50_ms']:.1f}",
                        f"{res['p95_ms']:.1f}",
                        f"{res['p99_ms']:.1f}",
                        str(res["completed"] - res["ok"] + res["errors"]),
                        _cpu_cell(cpu),
                        f"{cpu.get('server_cpu_ms_per_req', float('nan')):.1f}",
                        f"p95 <= {target:.0f} ms",
                        _verdict(res["p95_ms"] <= target),
                    ]
                )
    return rows


def print_table(results: list[dict[str, Any]]) -> str:
    header = [
        "backend",
        "scenario",
        "conns",
        "req/s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "errors",
        "cores srv/pg/gen/other",
        "srv CPU ms/req",
        "target",
        "result",
    ]
    rows = [header, *table_rows(results)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = []
    for n, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(widths[i]) if i < 2 else cell.rjust(widths[i]) for i, cell in enumerate(row)))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    text = "\n".join(lines)
    print()
    print(text)
    print(
        "cores srv/pg/gen/other = CPU cores used during the run by the server processes / PostgreSQL (the bench"
        " database's backends + WAL writer, checkpointer) / the load generator / anything else on the machine"
    )
    for r in results:
        if "create" in r:
            v = r["create"]["verification"]
            print(
                f"{r['backend']}: create verification {'OK' if r['create']['verification_ok'] else 'FAILED'}: "
                f"{v['invoices']} invoices in the database, {v['acknowledged_201']} acknowledged "
                f"(+{v['unacknowledged_in_db']} cut off by the load generator's deadline, allowed "
                f"{v['allowed_unacknowledged']}), numbers 1..{v['max_seq']} gapless={v['gapless']}, "
                f"{v['lines']} lines"
            )
            waits = r["create"].get("pg_backend_states_avg")
            if waits:
                top = ", ".join(f"{k} {v}" for k, v in list(waits.items())[:4])
                print(f"{r['backend']}: create, average PostgreSQL backends per state during the run: {top}")
        if "list" in r:
            s = r["list"]["sql_only"]
            print(f"{r['backend']}: list query alone (driver, sequential): p50 {s['p50_ms']} ms, p95 {s['p95_ms']} ms")
        for key in ("create", "list"):
            prof = r.get(key, {}).get("profile") if isinstance(r.get(key), dict) else None
            if prof and prof.get("samples"):
                print(f"\n{r['backend']} {key}: py-spy top self time ({prof['samples']} samples, {prof['raw_file']})")
                for name, p in prof["self_top"][:12]:
                    print(f"  {p:5.1f}%  {name}")
                print("  by package: " + ", ".join(f"{k} {v}%" for k, v in prof["self_by_package"]))
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per measured run (default 15)")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of warm-up before each run (default 3)")
    parser.add_argument(
        "--rows",
        type=int,
        default=None,
        help="invoices to bulk-load for the list scenario (default: PostgreSQL 1,000,000; SQLite 200,000)",
    )
    parser.add_argument("--scenarios", default="create,list", help="comma-separated: create,list")
    parser.add_argument("--create-connections", type=int, default=32)
    parser.add_argument("--list-connections", default="1,16", help="comma-separated connection counts")
    parser.add_argument(
        "--loadgen",
        choices=["auto", "wrk", "python"],
        default="auto",
        help="auto = wrk when installed (apt-get install wrk), else the Python generator",
    )
    parser.add_argument("--profile", action="store_true", help="one extra run per scenario under py-spy record")
    parser.add_argument("--profile-duration", type=float, default=10.0)
    parser.add_argument("--pg-admin-url", default=PG_ADMIN_URL)
    parser.add_argument("--keep", action="store_true", help="keep the databases afterwards")
    parser.add_argument(
        "--quiet-threshold",
        type=float,
        default=0.25,
        help="before each measured run, wait until other processes use at most this many cores",
    )
    parser.add_argument("--quiet-wait", type=float, default=30.0, help="longest wait for a quiet machine (s)")
    args = parser.parse_args(argv)
    args.scenarios = {s.strip() for s in args.scenarios.split(",") if s.strip()}
    args.list_connections = [int(x) for x in str(args.list_connections).split(",") if x.strip()]
    loadgen = args.loadgen
    if loadgen == "auto":
        loadgen = "wrk" if shutil.which("wrk") else "python"
    elif loadgen == "wrk" and not shutil.which("wrk"):
        parser.error("wrk is not installed (apt-get install -y wrk)")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    workdir = Path(tempfile.mkdtemp(prefix="invoiceflow-bench-"))
    ctx = RunContext(
        args=args, loadgen=loadgen, results_dir=RESULTS_DIR, stamp=stamp, workdir=workdir, pg_db=PG_DB_NAME
    )
    backends: list[Any] = []
    if args.backend in ("sqlite", "both"):
        backends.append(SqliteBackend())
    if args.backend in ("postgresql", "both"):
        backends.append(PostgresBackend(args.pg_admin_url, PG_DB_NAME))
    report: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(PYTHON).name, *sys.argv]),
        "machine": machine_info(),
        "git": git_state(),
        "loadgen": loadgen,
        "settings": {k: (sorted(v) if isinstance(v, set) else v) for k, v in vars(args).items()},
        "targets": {
            "create_rps": TARGET_CREATE_RPS,
            "list_p95_ms_1_conn": TARGET_LIST_P95_1_MS,
            "list_p95_ms_16_conn": TARGET_LIST_P95_16_MS,
        },
        "results": [],
    }
    log(f"load generator: {loadgen}; machine: {report['machine']}")
    try:
        for backend in backends:
            report["results"].append(run_backend(ctx, backend))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        out = RESULTS_DIR / f"api_bench-{stamp}.json"
        out.write_text(json.dumps(report, indent=2, default=str))
        (RESULTS_DIR / "latest.json").write_text(json.dumps(report, indent=2, default=str))
    report["table"] = print_table(report["results"])
    out.write_text(json.dumps(report, indent=2, default=str))
    (RESULTS_DIR / "latest.json").write_text(json.dumps(report, indent=2, default=str))
    print(f"\nresults: {out.relative_to(ROOT)}")
    failed_verification = any(r.get("create", {}).get("verification_ok") is False for r in report["results"])
    return 1 if failed_verification else 0


if __name__ == "__main__":
    sys.exit(main())
