"""The validator on deliberately broken documents, its configuration errors and its use from threads."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from invoiceflow.core.settings import Settings
from invoiceflow.einvoicing.errors import EInvoiceRulesMissing
from invoiceflow.einvoicing.validator import (
    SCHEMATRON_FILES,
    Validator,
    _svrl_findings,
    get_validator,
)
from tests.einvoicing.documents import (
    BROKEN,
    PEPPOL_BILLING_3,
    Broken,
    cii_invoice,
    edit,
    ubl_invoice,
    without_buyer_party,
)


@pytest.mark.parametrize("broken", BROKEN, ids=[b.name for b in BROKEN])
def test_a_broken_document_names_the_rule_it_breaks(broken: Broken, validator: Validator, examples_dir: Path) -> None:
    report = validator.validate(broken.build(examples_dir))

    assert report.valid is False
    assert report.layer_status(broken.layer) == "failed"
    hits = [f for f in report.findings if f.rule_id == broken.rule_id]
    assert hits, [f.rule_id for f in report.findings]
    for finding in hits:
        assert finding.severity == "fatal"
        assert finding.layer == broken.layer
        assert finding.location.startswith("/")
        assert finding.message


def test_the_unbroken_documents_pass(validator: Validator, examples_dir: Path) -> None:
    ubl = validator.validate(ubl_invoice(examples_dir))
    assert (ubl.valid, ubl.findings, ubl.layers_run) == (True, (), ("xsd", "en16931", "peppol"))
    cii = validator.validate(cii_invoice(examples_dir))
    assert (cii.valid, cii.findings, cii.layers_run) == (True, (), ("xsd", "en16931"))
    assert [s.layer for s in cii.layers_skipped] == ["peppol"]


def test_schema_errors_stop_before_the_schematron(validator: Validator, examples_dir: Path) -> None:
    report = validator.validate(without_buyer_party(examples_dir))

    assert report.layers_run == ("xsd",)
    assert {s.layer for s in report.layers_skipped} == {"en16931", "peppol"}
    assert all("not schema-valid" in s.reason for s in report.layers_skipped)
    [finding] = report.findings
    assert (finding.layer, finding.severity, finding.rule_id) == ("xsd", "fatal", "SCHEMAV_ELEMENT_CONTENT")
    assert finding.line is not None
    assert finding.location.startswith("/")
    layers = {entry["layer"]: entry for entry in report.as_dict()["layers"]}
    assert layers["xsd"]["status"] == "failed"
    assert layers["en16931"]["status"] == "skipped"
    assert layers["en16931"]["reason"]


def test_warnings_do_not_make_a_document_invalid(validator: Validator, examples_dir: Path) -> None:
    # UBL-CR-005 (warning): a UBL invoice should not include a UUID.
    data = edit(ubl_invoice(examples_dir), b"<cbc:IssueDate>", b"<cbc:UUID>6e4f6a2c</cbc:UUID><cbc:IssueDate>")
    report = validator.validate(data)
    assert report.valid is True
    assert [(f.rule_id, f.severity) for f in report.findings] == [("UBL-CR-005", "warning")]


def test_cii_claiming_peppol_gets_the_peppol_cii_rules(validator: Validator, examples_dir: Path) -> None:
    data = edit(
        cii_invoice(examples_dir),
        b"<ram:ID>urn:cen.eu:en16931:2017</ram:ID>",
        b"<ram:ID>" + PEPPOL_BILLING_3 + b"</ram:ID>",
    )
    report = validator.validate(data)
    assert report.layers_run == ("xsd", "en16931", "peppol")
    # The CEN example has no Peppol business process (ProfileID): Peppol R001.
    assert "PEPPOL-EN16931-R001" in report.fatal_rule_ids("peppol")


def test_report_shape(validator: Validator, examples_dir: Path) -> None:
    body = validator.validate(BROKEN[0].build(examples_dir)).as_dict()
    assert set(body) == {"valid", "document_type", "syntax", "customization_id", "findings", "layers"}
    assert set(body["findings"][0]) == {"rule_id", "severity", "message", "location", "layer", "line"}
    assert [entry["layer"] for entry in body["layers"]] == ["xsd", "en16931", "peppol"]


def test_svrl_flags_map_to_severities() -> None:
    svrl = """<?xml version="1.0" encoding="UTF-8"?>
    <svrl:schematron-output xmlns:svrl="http://purl.oclc.org/dsdl/svrl">
      <svrl:failed-assert id="A" flag="fatal" location="/a"><svrl:text>  first
         line </svrl:text></svrl:failed-assert>
      <svrl:failed-assert id="B" flag="warning" location="/b"><svrl:text>b</svrl:text></svrl:failed-assert>
      <svrl:failed-assert id="C" location="/c"><svrl:text>c</svrl:text></svrl:failed-assert>
      <svrl:successful-report id="D" location="/d"><svrl:text>d</svrl:text></svrl:successful-report>
      <svrl:successful-report id="E" flag="information" location="/e"><svrl:text>e</svrl:text></svrl:successful-report>
      <svrl:fired-rule context="/"/>
    </svrl:schematron-output>"""
    findings = list(_svrl_findings(svrl, "en16931"))
    assert [(f.rule_id, f.severity) for f in findings] == [
        ("A", "fatal"),
        ("B", "warning"),
        ("C", "fatal"),
        ("D", "information"),
        ("E", "information"),
    ]
    assert findings[0].message == "first line"


# --- Configuration ---------------------------------------------------------------------------------


def test_unset_rules_dir_is_a_clear_503() -> None:
    with pytest.raises(EInvoiceRulesMissing) as info:
        Validator.from_settings(Settings(einvoice_rules_dir=None))
    error = info.value
    assert (error.status_code, error.code) == (503, "EINVOICE_RULES_MISSING")
    assert "INVOICEFLOW_EINVOICE_RULES_DIR" in error.message


def test_missing_rules_dir_names_it(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(EInvoiceRulesMissing) as info:
        get_validator(missing)
    assert str(missing) in info.value.message
    assert info.value.details["rules_dir"] == str(missing)


def test_incomplete_rules_dir_names_the_missing_file(tmp_path: Path, rules_dir: Path) -> None:
    (tmp_path / "xsd").symlink_to(rules_dir / "xsd")  # the schemas, but no schematron at all
    with pytest.raises(EInvoiceRulesMissing) as info:
        Validator.from_settings(Settings(einvoice_rules_dir=tmp_path))
    error = info.value
    expected = SCHEMATRON_FILES[("en16931", "ubl")]
    assert error.details == {
        "rules_dir": str(tmp_path),
        "missing": expected,
        "setting": "INVOICEFLOW_EINVOICE_RULES_DIR",
    }
    assert expected in error.message
    assert str(tmp_path) in error.message


def test_one_validator_per_folder(rules_dir: Path, validator: Validator) -> None:
    assert get_validator(rules_dir / "xsd" / "..") is validator
    assert Validator.from_settings(Settings(einvoice_rules_dir=rules_dir)) is validator


# --- Concurrency -----------------------------------------------------------------------------------


def test_worker_threads_get_the_same_results_as_one_thread(validator: Validator, examples_dir: Path) -> None:
    documents = [
        ubl_invoice(examples_dir),
        cii_invoice(examples_dir),
        *(broken.build(examples_dir) for broken in BROKEN),
        (examples_dir / "ubl" / "en16931__issue116.xml").read_bytes(),
    ]
    expected = [validator.validate(d).as_dict() for d in documents]
    jobs = list(range(len(documents))) * 4
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda i: validator.validate(documents[i]).as_dict(), jobs))
    assert results == [expected[i] for i in jobs]


def test_validate_async_runs_off_the_event_loop(validator: Validator, examples_dir: Path) -> None:
    data = BROKEN[0].build(examples_dir)

    async def main() -> tuple[object, int]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        task = asyncio.create_task(ticker())
        try:
            report = await validator.validate_async(data)
        finally:
            task.cancel()
        return report, ticks

    report, ticks = asyncio.run(main())
    assert report == validator.validate(data)
    assert ticks > 1  # the loop kept running while the validation ran in a worker thread
