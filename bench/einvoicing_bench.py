#!/usr/bin/env python3
"""invoiceflow e-invoicing benchmark: export, import, official validation and Factur-X of a 20-line invoice.

Measured in one process pinned to one CPU core, each step after a warm-up call, the steps taking turns run
by run so they all see the same machine:

1. UBL export: `einvoicing.ubl.to_ubl` of the 20-line document model (and `to_cii` beside it).
2. Import: `einvoicing.importer.parse_einvoice` (safe parse + map to the document model + recomputation
   check) of that UBL, and of the official 20-line CEN example `en16931__ubl-tc434-example1.xml`.
3. Full validation: XSD + EN 16931 + Peppol BIS 3 of the UBL, and XSD + EN 16931 of the CII, after the
   one-off compilation of the rules (timed separately: it happens once per process).
4. Factur-X: the whole PDF/A-3 build (render the PDF + CII + embed + XMP and output intent), without
   validation, through `einvoicing.facturx.render_facturx`.

Bars (issue 4): UBL export <= 2 ms; import (parse + map) <= 2 ms; full validation <= 15 ms after the
one-off compilation; Factur-X PDF/A-3 <= 30 ms.

Usage: .venv/bin/python bench/einvoicing_bench.py [--runs N] [--cpu N] [--rules-dir DIR] [--json]

The rules folder defaults to $INVOICEFLOW_EINVOICE_RULES_DIR, else ../shared/einvoicing beside the
repository. The figures only mean something on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import time
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
BARS = {"ubl_export": 2.0, "import_own_ubl": 2.0, "import_cen_example": 2.0, "validate_ubl": 15.0, "facturx": 30.0}


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

    pinned = pin(args.cpu)
    rules = rules_dir(args.rules_dir)
    validator = Validator(rules)
    start = time.perf_counter()
    compile_times = validator.warm_up()
    compile_s = time.perf_counter() - start

    doc = peppol_ready_document()
    ubl, cii = to_ubl(doc), to_cii(doc)
    cen_example = (rules / "examples" / "ubl" / "en16931__ubl-tc434-example1.xml").read_bytes()
    created = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    ubl_report, cii_report = validator.validate(ubl), validator.validate(cii)
    assert len(parse_einvoice(ubl).document.lines) == 20
    assert len(parse_einvoice(cen_example).document.lines) == 20

    figures = timed(
        {
            "ubl_export": lambda: to_ubl(doc),
            "cii_export": lambda: to_cii(doc),
            "import_own_ubl": lambda: parse_einvoice(ubl),
            "import_cen_example": lambda: parse_einvoice(cen_example),
            "validate_ubl": lambda: validator.validate(ubl),
            "validate_cii": lambda: validator.validate(cii),
            "facturx": lambda: render_facturx(doc, to_cii(doc), created_at=created),
        },
        args.runs,
    )

    print(f"invoiceflow e-invoicing benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(f"{cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}, {pinned}, {args.runs} runs")
    slowest = max(compile_times, key=lambda name: compile_times[name])
    print(f"rules compiled once in {compile_s:.2f} s (slowest: {Path(slowest).name}, {compile_times[slowest]:.2f} s)")
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
    by_size = timed(
        {f"validate_ubl_{n}_lines": (lambda data=data: validator.validate(data)) for n, data in sizes.items()},
        max(args.runs // 3, 30),
    )
    print("full UBL validation (XSD + EN 16931 + Peppol) by invoice size:")
    for name, values in by_size.items():
        print(f"  {name:<22} {values['min']:>8.2f} {values['median']:>10.2f}")
    figures.update(by_size)
    if args.json:
        print(json.dumps({"compile_s": compile_s, "figures": figures}, indent=2))


if __name__ == "__main__":
    main()
