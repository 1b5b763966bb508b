"""Every official example gets, layer by layer, the verdict recorded for it in the rules' INDEX.tsv."""

from __future__ import annotations

import csv
import hashlib
from typing import Any

import pytest

from invoiceflow.einvoicing.validator import Layer, ValidationReport, Validator
from tests.einvoicing.conftest import locate_rules_dir

LAYERS: tuple[Layer, ...] = ("xsd", "en16931", "peppol")
KINDS = {
    "ubl-invoice": ("Invoice", "ubl"),
    "ubl-creditnote": ("CreditNote", "ubl"),
    "cii": ("CrossIndustryInvoice", "cii"),
}


def _rows() -> list[Any]:
    index = locate_rules_dir() / "examples" / "INDEX.tsv"
    if not index.is_file():
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"{index} not found"))]
    with index.open(newline="", encoding="utf-8") as f:
        return [pytest.param(row, id=row["file"].rsplit("/", 1)[-1]) for row in csv.DictReader(f, delimiter="\t")]


def observed(report: ValidationReport, layer: Layer) -> str:
    """The INDEX.tsv notation: pass, n/a (layer not applicable) or fail:RULE,RULE."""
    status = report.layer_status(layer)
    if status == "skipped":
        return "n/a"
    if status == "passed":
        return "pass"
    return "fail:" + ",".join(sorted(report.fatal_rule_ids(layer)))


@pytest.mark.parametrize("row", _rows())
def test_example_matches_the_recorded_verdict(row: dict[str, str], validator: Validator) -> None:
    path = validator.rules_dir / row["file"]
    data = path.read_bytes()
    assert hashlib.sha256(data).hexdigest() == row["sha256"], "the example differs from the one INDEX.tsv describes"

    # These columns are the verdicts without the Factur-X layer (which would downgrade EN 16931 findings on
    # EXTENDED documents); test_validator.py checks the Factur-X column.
    report = validator.validate(data, facturx=False)

    assert (report.document_type, report.syntax) == KINDS[row["syntax"]]
    assert report.customization_id == row["customization_id"]
    for layer in LAYERS:
        expected = row[layer]
        got = observed(report, layer)
        if expected == "fail:?":  # INDEX names no rule: only the verdict is recorded
            assert got.startswith("fail:"), (layer, got)
        elif expected.startswith("fail:"):
            assert got == "fail:" + ",".join(sorted(expected[5:].split(","))), layer
        else:
            assert got == expected, (layer, got, [f for f in report.findings if f.layer == layer])
    assert report.valid == all(row[layer] in ("pass", "n/a") for layer in LAYERS)
    for finding in report.findings:
        assert finding.rule_id
        assert finding.message
        assert finding.location.startswith("/")
