"""Real server processes for tests that must cross a process boundary (concurrency, shared Redis budget)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def run_server(
    *, database_url: str, data_dir: Path, workers: int = 1, extra_env: dict[str, str] | None = None
) -> Iterator[str]:
    """Start `invoiceflow serve` (uvicorn) on a free loopback port; yield its base URL."""
    port = free_port()
    env = {
        **os.environ,
        "INVOICEFLOW_DATABASE_URL": database_url,
        "INVOICEFLOW_DATA_DIR": str(data_dir),
        "INVOICEFLOW_SECRET_KEY": "test-secret-key-" + "x" * 32,
        "INVOICEFLOW_ARGON2_TIME_COST": "1",
        "INVOICEFLOW_ARGON2_MEMORY_KIB": "1024",
        **(extra_env or {}),
    }
    cmd = [
        sys.executable,
        "-m",
        "invoiceflow.cli",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log-level",
        "warning",
    ]
    log_path = data_dir / f"server-{port}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{log_path.read_text()}")
            try:
                if httpx.get(base + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server did not become ready:\n{log_path.read_text()}")
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
