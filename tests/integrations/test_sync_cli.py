"""`invoiceflow sync run | jobs | show`, run as an operator runs them (subprocesses, a fresh SQLite database)."""

from __future__ import annotations

from pathlib import Path

from lxml import etree

from tests.integrations.helpers import RULES_DIR, examples, valid_unique_examples
from tests.integrations.partners import DEFAULT_SOURCE_TOKEN, SourceServer
from tests.test_cli import run_cli


def test_sync_runs_a_job_with_progress_then_lists_and_shows_it(tmp_path: Path) -> None:
    env = {
        "INVOICEFLOW_DATA_DIR": str(tmp_path / "data"),
        "INVOICEFLOW_EINVOICE_RULES_DIR": str(RULES_DIR),
        "INVOICEFLOW_INTEGRATION_VALIDATION_WORKERS": "0",
        "INVOICEFLOW_SECRET_KEY": "cli-test-secret-" + "z" * 32,
    }
    invalid = next(doc for doc in examples() if doc[0] == "ubl/en16931__issue116.xml")
    documents = [*valid_unique_examples(4), invalid]
    out = tmp_path / "out"
    run_cli(
        "users", "create", "--email", "ops@acme.example", "--name", "Ops", "--organization", "Acme BV",
        "--admin", "--password", "correct-horse-battery", cwd=tmp_path, env=env,
    )  # fmt: skip
    with SourceServer(documents) as source:
        first = run_cli(
            "sync", "run", "--source", source.url, "--source-token", DEFAULT_SOURCE_TOKEN, "--dest", str(out),
            cwd=tmp_path, env=env,
        )  # fmt: skip
        assert "5 invoices: 4 sent, 0 duplicates, 0 changed, 1 invalid, 0 failed" in first.stdout, first.stdout
        assert "completed_with_errors" in first.stdout
        written = [path for path in out.iterdir() if path.suffix.lower() == ".xml"]
        assert len(written) == 4
        assert all(etree.parse(str(path)).getroot() is not None for path in written)

        refused = run_cli(
            "sync", "run", "--integration", "wrong-token", "--source", source.url, "--source-token", "nope",
            "--dest", str(out), cwd=tmp_path, env=env, check=False,
        )  # fmt: skip
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert "failed" in refused.stdout
        assert "401" in refused.stdout

    listed = run_cli("sync", "jobs", cwd=tmp_path, env=env)
    assert "completed_with_errors" in listed.stdout
    assert "failed" in listed.stdout
    job_id = first.stdout.split("job ", 1)[1].split()[0]
    shown = run_cli("sync", "show", job_id, cwd=tmp_path, env=env)
    assert "en16931__issue116.xml" in shown.stdout
    assert "PEPPOL-COMMON-R049" in shown.stdout

    usage = run_cli("sync", "run", cwd=tmp_path, env=env, check=False)
    assert usage.returncode == 2
    assert "--integration" in usage.stdout
