#!/usr/bin/env python3
"""invoiceflow e-invoicing benchmark: export, import, official validation and Factur-X of a 20-line invoice.

Measured in one process pinned to one CPU core, each step after a warm-up call, the steps taking turns run
by run so they all see the same machine:

1. UBL export: `einvoicing.ubl.to_ubl` of the 20-line document model (and `to_cii` beside it).
2. Import: `einvoicing.importer.parse_einvoice` (safe parse + map to the document model + recomputation
   check) of that UBL, and of the official 20-line CEN example `en16931__ubl-tc434-example1.xml`.
3. Full validation: XSD + EN 16931 + Peppol BIS 3 of the UBL, and XSD + EN 16931 of the CII, after the
   one-off compilation of the rules (timed separately: it happens once per process). Both ways: all layers
   in-process (`workers=0`), and with the validation sidecar (`workers=1`, the default on two or more CPUs),
   which runs the Peppol layer in a second process, pinned to another CPU than this one, while this process
   runs the XSD and EN 16931. `sidecar_round_trip` is the sidecar's pure IPC cost: the 20-line UBL's text
   sent and an empty answer received.
4. Factur-X: the whole PDF/A-3 build (render the PDF + CII + embed + XMP and output intent), without
   validation, through `einvoicing.facturx.render_facturx`.

Bars (issue 4): UBL export <= 2 ms; import (parse + map) <= 2 ms; full validation <= 15 ms after the
one-off compilation; Factur-X PDF/A-3 <= 30 ms.

Usage: .venv/bin/python bench/einvoicing_bench.py [--runs N] [--cpu N] [--rules-dir DIR] [--json]

The rules folder defaults to $INVOICEFLOW_EINVOICE_RULES_DIR, else ../shared/einvoicing beside the
repository. The figures only mean something on an otherwise idle machine: the load average is printed
before and after (the sidecar needs the second core to itself).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from documents_bench import cpu_model, document, pin, timed  # bench/, beside this script
from invoiceflow.einvoicing.cii import to_cii
from invoiceflow.einvoicing.facturx import render_facturx
from invoiceflow.einvoicing.importer import parse_einvoice
from invoiceflow.einvoicing.ubl import to_ubl
from invoiceflow.einvoicing.validator import Validator

ROOT = Path(__file__).resolve().parent.parent
BARS = {
    "ubl_export": 2.0,
    "import_own_ubl": 2.0,
    "import_cen_example": 2.0,
    "validate_ubl": 15.0,
    "validate_ubl_sidecar": 15.0,
    "facturx": 30.0,
}


def rules_dir(given: str | None) -> Path:
    for candidate in (
        given,
        os.environ.get("INVOICEFLOW_EINVOICE_RULES_DIR"),
        str(ROOT.parent / "shared" / "einvoicing"),
    ):
        if candidate and (Path(candidate) / "schematron").is_dir():
            return Path(candidate).resolve()
    sys.exit("e-invoicing rules not found: pass --rules-dir or set INVOICEFLOW_EINVOICE_RULES_DIR")


def peppol_ready_document(lines: int = 20) -> Any:
    """The documents benchmark's invoice (20 lines by default), with the electronic addresses Peppol requires."""
    doc = document(lines)
    seller = dataclasses.replace(doc.seller, electronic_address_scheme="9930", electronic_address="DE123456789")
    buyer = dataclasses.replace(doc.buyer, electronic_address_scheme="9945", electronic_address="PL5260250995")
    return dataclasses.replace(doc, seller=seller, buyer=buyer)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=300, help="calls per measurement (default 300)")
    parser.add_argument("--cpu", type=int, default=1, help="CPU to pin to, -1 for none (default 1)")
    parser.add_argument("--rules-dir", help="the official XSD/schematron folder")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = parser.parse_args()

    load_before = load_average()
    pinned = pin(args.cpu)
    rules = rules_dir(args.rules_dir)
    validator = Validator(rules, workers=0)
    start = time.perf_counter()
    compile_times = validator.warm_up()
    compile_s = time.perf_counter() - start
    with_sidecar = Validator(rules, workers=1)
    sidecar = with_sidecar._sidecar
    assert sidecar is not None
    start = time.perf_counter()
    sidecar.start()  # started first, so that it is pinned before it compiles its rules
    sidecar_pinned = pin_sidecar(with_sidecar.sidecar_pid)
    with_sidecar.warm_up()
    sidecar_compile_s = time.perf_counter() - start

    doc = peppol_ready_document()
    ubl, cii = to_ubl(doc), to_cii(doc)
    cen_example = (rules / "examples" / "ubl" / "en16931__ubl-tc434-example1.xml").read_bytes()
    created = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    ubl_report, cii_report = validator.validate(ubl), validator.validate(cii)
    assert with_sidecar.validate(ubl) == ubl_report
    assert with_sidecar.validate(cii) == cii_report
    ubl_text = ubl.decode()

    def round_trip() -> None:
        pending = sidecar.submit(ubl_text, [])
        assert pending is not None, "the sidecar is not running"
        pending.result()

    served = sidecar.served
    assert len(parse_einvoice(ubl).document.lines) == 20
    assert len(parse_einvoice(cen_example).document.lines) == 20

    figures = timed(
        {
            "ubl_export": lambda: to_ubl(doc),
            "cii_export": lambda: to_cii(doc),
            "import_own_ubl": lambda: parse_einvoice(ubl),
            "import_cen_example": lambda: parse_einvoice(cen_example),
            "validate_ubl": lambda: validator.validate(ubl),
            "validate_ubl_sidecar": lambda: with_sidecar.validate(ubl),
            "sidecar_round_trip": round_trip,
            "validate_cii": lambda: validator.validate(cii),
            "validate_cii_sidecar": lambda: with_sidecar.validate(cii),
            "facturx": lambda: render_facturx(doc, to_cii(doc), created_at=created),
        },
        args.runs,
    )

    # Every sidecar call above went to the sidecar (none fell back in-process): 2 per run and the warm-up.
    assert sidecar.served - served == 2 * (args.runs + 1), "the sidecar did not answer every call"
    print(f"invoiceflow e-invoicing benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(f"{cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}, {pinned}, {args.runs} runs")
    print(f"validation sidecar: pid {with_sidecar.sidecar_pid}, {sidecar_pinned}")
    slowest = max(compile_times, key=lambda name: compile_times[name])
    print(f"rules compiled once in {compile_s:.2f} s (slowest: {Path(slowest).name}, {compile_times[slowest]:.2f} s)")
    print(f"with the sidecar compiling its rules on the other core meanwhile: {sidecar_compile_s:.2f} s")
    print(
        f"20-line UBL: {len(ubl):,} bytes, layers {'+'.join(ubl_report.layers_run)}, valid={ubl_report.valid}; "
        f"CII: {len(cii):,} bytes, layers {'+'.join(cii_report.layers_run)}, valid={cii_report.valid}"
    )
    print(f"{'step':<22} {'min ms':>8} {'median ms':>10} {'bar ms':>8}  verdict")
    for name, values in figures.items():
        bar = BARS.get(name)
        verdict = "" if bar is None else ("pass" if values["median"] <= bar else "FAIL")
        print(f"{name:<22} {values['min']:>8.2f} {values['median']:>10.2f} {bar or '':>8}  {verdict}")
    # The official XSLTs walk the whole tree once per pattern, so validation grows with the invoice.
    sizes = {n: to_ubl(peppol_ready_document(n)) for n in (1, 5, 10, 20, 50)}
    funcs: dict[str, Callable[[], object]] = {}
    for n, data in sizes.items():
        funcs[f"validate_ubl_{n}_lines"] = lambda data=data: validator.validate(data)
        funcs[f"validate_ubl_{n}_lines_sidecar"] = lambda data=data: with_sidecar.validate(data)
    by_size = timed(funcs, max(args.runs // 3, 30))
    print("full UBL validation (XSD + EN 16931 + Peppol) by invoice size, min / median ms:")
    print(f"  {'lines':<6} {'in-process':>16} {'with sidecar':>16}")
    for n in sizes:
        alone, beside = by_size[f"validate_ubl_{n}_lines"], by_size[f"validate_ubl_{n}_lines_sidecar"]
        print(
            f"  {n:<6} {alone['min']:>7.2f} / {alone['median']:<6.2f} {beside['min']:>7.2f} / {beside['median']:<6.2f}"
        )
    figures.update(by_size)
    load_after = load_average()
    print(f"load average (1, 5, 15 min): before {load_before}, after {load_after}")
    with_sidecar.close()
    if args.json:
        print(
            json.dumps({"compile_s": compile_s, "sidecar_compile_s": sidecar_compile_s, "figures": figures}, indent=2)
        )


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def pin_sidecar(pid: int | None) -> str:
    """Pin the sidecar to a CPU this process is not pinned to (it inherited this process's affinity)."""
    if pid is None or not hasattr(os, "sched_setaffinity"):
        return "not pinned"
    mine = os.sched_getaffinity(0)
    others = sorted(set(range(os.cpu_count() or 1)) - mine)
    if not others:
        return "sharing this process's CPUs (no other CPU free to pin it to)"
    os.sched_setaffinity(pid, {others[0]})
    return f"pinned to CPU {others[0]}"


if __name__ == "__main__":
    main()
