"""The validation sidecar (`validator_pool`): the same findings as in-process validation, byte for byte, and a
sidecar that survives threads, being killed, failing to start and interpreter exit without leaving zombies."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import pytest
from hypothesis import given, settings

from invoiceflow.core.settings import Settings
from invoiceflow.documents.model import InvoiceDocument
from invoiceflow.einvoicing.cii import to_cii
from invoiceflow.einvoicing.ubl import to_ubl
from invoiceflow.einvoicing.validator import ValidationReport, Validator, _default_workers
from invoiceflow.einvoicing.validator_pool import Job, SchematronSidecar
from tests.einvoicing.documents import BROKEN, ubl_invoice
from tests.einvoicing.test_ubl_export import invoices


@pytest.fixture(scope="module")
def in_process(rules_dir: Path) -> Validator:
    validator = Validator(rules_dir, workers=0)
    validator.warm_up()
    assert validator.sidecar_pid is None
    return validator


@pytest.fixture(scope="module")
def with_sidecar(rules_dir: Path) -> Iterator[Validator]:
    validator = Validator(rules_dir, workers=1)
    validator.warm_up()
    assert validator.sidecar_pid is not None
    yield validator
    pid = validator.sidecar_pid
    validator.close()
    assert validator.sidecar_pid is None
    if pid is not None:
        assert_reaped(pid)


def assert_reaped(pid: int) -> None:
    """The process is gone and was waited for: no zombie left behind."""
    assert not Path(f"/proc/{pid}").exists(), Path(f"/proc/{pid}/status").read_text()


def as_bytes(report: ValidationReport) -> bytes:
    return json.dumps(report.as_dict(), ensure_ascii=False).encode()


def assert_same(data: bytes, in_process: Validator, with_sidecar: Validator, facturx: bool | None = None) -> None:
    expected = in_process.validate(data, facturx=facturx)
    got = with_sidecar.validate(data, facturx=facturx)
    assert got == expected
    assert as_bytes(got) == as_bytes(expected)


def served(validator: Validator) -> int:
    sidecar = validator._sidecar
    assert sidecar is not None
    return sidecar.served


# --- Same findings ---------------------------------------------------------------------------------------


def test_every_example_gets_the_same_findings_both_ways(
    in_process: Validator, with_sidecar: Validator, examples_dir: Path
) -> None:
    examples = sorted(examples_dir.rglob("*.xml"))
    assert len(examples) > 40
    before = served(with_sidecar)
    for path in examples:
        data = path.read_bytes()
        for facturx in (None, False, True):
            assert_same(data, in_process, with_sidecar, facturx)
    for broken in BROKEN:
        assert_same(broken.build(examples_dir), in_process, with_sidecar)
    # The sidecar did run the Peppol and Factur-X layers (not a silent in-process fallback).
    assert served(with_sidecar) - before > len(examples)


@settings(max_examples=25, deadline=None)
@given(doc=invoices())
def test_generated_invoices_get_the_same_findings_both_ways(
    doc: InvoiceDocument, in_process: Validator, with_sidecar: Validator
) -> None:
    before = served(with_sidecar)
    assert_same(to_ubl(doc), in_process, with_sidecar)
    assert_same(to_cii(doc), in_process, with_sidecar, facturx=True)
    assert served(with_sidecar) == before + 2


def test_threads_share_the_sidecar(in_process: Validator, with_sidecar: Validator, examples_dir: Path) -> None:
    documents = [ubl_invoice(examples_dir), *(broken.build(examples_dir) for broken in BROKEN)]
    expected = [as_bytes(in_process.validate(d)) for d in documents]
    jobs = list(range(len(documents))) * 6
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda i: as_bytes(with_sidecar.validate(documents[i])), jobs))
    assert results == [expected[i] for i in jobs]


# --- Robustness ------------------------------------------------------------------------------------------


def test_a_killed_sidecar_is_reaped_the_next_call_validates_in_process_and_a_new_one_takes_over(
    in_process: Validator, with_sidecar: Validator, examples_dir: Path
) -> None:
    data = ubl_invoice(examples_dir)
    expected = as_bytes(in_process.validate(data))
    pid = with_sidecar.sidecar_pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)

    assert as_bytes(with_sidecar.validate(data)) == expected  # noticed, fell back in-process
    assert_reaped(pid)
    # The call after that starts a new sidecar (and validates in-process while it compiles its rules).
    assert as_bytes(with_sidecar.validate(data)) == expected
    assert with_sidecar._sidecar is not None
    assert with_sidecar._sidecar.wait_ready(60)
    new_pid = with_sidecar.sidecar_pid
    assert new_pid is not None
    assert new_pid != pid
    before = served(with_sidecar)
    assert as_bytes(with_sidecar.validate(data)) == expected
    assert served(with_sidecar) == before + 1


def test_a_sidecar_that_cannot_start_leaves_validation_in_process(tmp_path: Path) -> None:
    job: Job = ("missing.xslt", "peppol", "information")
    sidecar = SchematronSidecar(tmp_path, [job])
    assert sidecar.wait_ready(60) is False  # it said why and exited
    assert (sidecar.pid, sidecar.starts) == (None, 1)
    assert sidecar.submit("<a/>", [job]) is None  # the caller validates in-process; a new sidecar starts
    assert sidecar.starts == 2
    assert sidecar.wait_ready(60) is False  # the second one fails too
    assert sidecar.submit("<a/>", [job]) is None
    assert (sidecar.pid, sidecar.starts) == (None, 2)  # backing off: no third process yet
    sidecar.close()
    assert sidecar.pid is None


def test_a_closed_validator_validates_in_process(rules_dir: Path, examples_dir: Path, in_process: Validator) -> None:
    validator = Validator(rules_dir, workers=1)
    data = ubl_invoice(examples_dir)
    # Not warmed up: the first call starts the sidecar and validates in-process meanwhile.
    assert validator.validate(data) == in_process.validate(data)
    pid = validator.sidecar_pid
    assert pid is not None
    validator.close()
    assert_reaped(pid)
    assert validator.validate(data) == in_process.validate(data)
    assert validator.sidecar_pid is None


def test_sidecars_stop_at_interpreter_exit(rules_dir: Path, tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "from invoiceflow.einvoicing.validator import Validator\n"
        "v = Validator(sys.argv[1], workers=1)\n"
        "v.warm_up()\n"
        "print(v.sidecar_pid, flush=True)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(rules_dir)], capture_output=True, text=True, timeout=120, check=True
    )
    pid = int(done.stdout.strip())
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert_reaped(pid)
    assert "Traceback" not in done.stderr, done.stderr


# --- Configuration ---------------------------------------------------------------------------------------


def test_the_setting_defaults_to_one_worker_with_two_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INVOICEFLOW_EINVOICE_VALIDATION_WORKERS", raising=False)
    assert Settings().einvoice_validation_workers == (1 if (os.cpu_count() or 1) >= 2 else 0)
    monkeypatch.setenv("INVOICEFLOW_EINVOICE_VALIDATION_WORKERS", "0")
    assert Settings().einvoice_validation_workers == 0


def test_a_validator_without_workers_starts_no_process(rules_dir: Path, examples_dir: Path) -> None:
    validator = Validator(rules_dir, workers=0)
    validator.validate(ubl_invoice(examples_dir))
    assert validator.sidecar_pid is None
    assert validator._sidecar is None


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="the default is already in-process on one CPU")
def test_pool_workers_validate_in_process_unless_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INVOICEFLOW_EINVOICE_VALIDATION_WORKERS", raising=False)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        assert pool.submit(_default_workers).result(timeout=60) == 0
    monkeypatch.setenv("INVOICEFLOW_EINVOICE_VALIDATION_WORKERS", "1")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        assert pool.submit(_default_workers).result(timeout=60) == 1
