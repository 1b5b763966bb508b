"""Worker processes for the crash and scale-out tests: `python -m invoiceflow.cli worker`, for real."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import Engine, text

from invoiceflow.core.failpoints import ENV as FAILPOINTS_ENV


def worker_env(database_url: str, data_dir: Path, smtp_url: str, **extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("INVOICEFLOW_") or key.startswith("INVOICEFLOW_TEST")
    }
    env.update(
        {
            "INVOICEFLOW_DATABASE_URL": database_url,
            "INVOICEFLOW_DATA_DIR": str(data_dir),
            "INVOICEFLOW_SECRET_KEY": "test-secret-key-" + "x" * 32,
            "INVOICEFLOW_SMTP_URL": smtp_url,
            "INVOICEFLOW_SMTP_FROM": "Acme Billing <billing@acme.example>",
            **extra,
        }
    )
    return env


def start_worker(env: dict[str, str], *, executor_id: str, failpoints: str = "", log: Path) -> subprocess.Popen[bytes]:
    env = {**env, "INVOICEFLOW_EXECUTOR_ID": executor_id}
    if failpoints:
        env[FAILPOINTS_ENV] = failpoints
    with log.open("ab") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "invoiceflow.cli", "worker", "--no-migrate"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def stop_worker(process: subprocess.Popen[bytes], timeout: float = 30.0) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def workflow_statuses(engine: Engine, prefix: str = "invoice-") -> dict[str, str]:
    table = "dbos.workflow_status" if engine.dialect.name == "postgresql" else "workflow_status"
    with engine.connect() as conn:
        rows = conn.execute(
            text(f"SELECT workflow_uuid, status FROM {table} WHERE workflow_uuid LIKE :p"), {"p": prefix + "%"}
        ).all()
    return {row[0]: row[1] for row in rows}


def wait_until_all(
    engine: Engine,
    ids: set[str],
    status: str,
    *,
    timeout: float,
    process: subprocess.Popen[bytes] | None = None,
    prefix: str = "invoice-",
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        current = workflow_statuses(engine, prefix)
        if all(current.get(i) == status for i in ids):
            return
        if process is not None and process.poll() is not None:
            raise AssertionError(f"worker exited with {process.returncode}; statuses {current}")
        if time.monotonic() > deadline:
            raise AssertionError(f"not all {status} within {timeout} s: {current}")
        time.sleep(0.1)
