"""The validator on deliberately broken documents, its configuration errors, its use from threads, and its
Factur-X layer (against the Factur-X column of the rules' INDEX.tsv)."""

from __future__ import annotations

import asyncio
import csv
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from invoiceflow.core.settings import Settings
from invoiceflow.einvoicing.errors import EInvoiceRulesMissing
from invoiceflow.einvoicing.validator import (
    FACTURX_GUIDELINES,
    SCHEMATRON_FILES,
    Validator,
    _svrl_findings,
    facturx_profile,
    get_validator,
    names_facturx,
)
from tests.einvoicing.conftest import locate_rules_dir
from tests.einvoicing.documents import (
    BROKEN,
    PEPPOL_BILLING_3,
    Broken,
    cii_invoice,
    edit,
    ubl_invoice,
    without_buyer_party,
)
from tests.einvoicing.test_examples import observed


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


# --- The Factur-X layer ----------------------------------------------------------------------------


def _cii_rows() -> list[Any]:
    index = locate_rules_dir() / "examples" / "INDEX.tsv"
    if not index.is_file():
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"{index} not found"))]
    with index.open(newline="", encoding="utf-8") as f:
        rows = [row for row in csv.DictReader(f, delimiter="\t") if row["syntax"] == "cii"]
    return [pytest.param(row, id=row["file"].rsplit("/", 1)[-1]) for row in rows]


@pytest.mark.parametrize("row", _cii_rows())
def test_the_facturx_layer_gives_the_recorded_verdict(row: dict[str, str], validator: Validator) -> None:
    report = validator.validate((validator.rules_dir / row["file"]).read_bytes(), facturx=True)

    expected, got = row["facturx"], observed(report, "facturx")
    if expected == "fail:?":  # INDEX names no rule: the Factur-X reports that fail these have no id
        assert got == "fail:(unnamed rule)"
        [message] = {f.message[:16] for f in report.findings if f.layer == "facturx" and f.severity == "fatal"}
        assert message == "Element variant "
    elif expected.startswith("fail:"):
        assert got == "fail:" + ",".join(sorted(expected[5:].split(",")))
    else:
        assert got == expected, [f for f in report.findings if f.layer == "facturx"]
    if expected == "n/a":
        [skipped] = [s for s in report.layers_skipped if s.layer == "facturx"]
        assert skipped.reason.startswith("not applicable")
    # EXTENDED is only EN 16931-"conformant": its EN 16931 findings are warnings once the Factur-X rules run.
    downgraded = facturx_profile(row["customization_id"]) == "EXTENDED"
    en16931_ok = row["en16931"] == "pass" or downgraded
    assert report.valid == (row["xsd"] == "pass" and en16931_ok and expected in ("pass", "n/a"))
    if downgraded:
        en16931 = {f.rule_id for f in report.findings if f.layer == "en16931"}
        assert set(row["en16931"][5:].split(",")) <= en16931
        assert all(f.severity != "fatal" for f in report.findings if f.layer == "en16931")
    for finding in report.findings:
        assert finding.location.startswith("/")
        assert finding.message


def test_the_facturx_layer_runs_by_itself_when_the_guideline_names_factur_x(
    validator: Validator, examples_dir: Path
) -> None:
    basic = (examples_dir / "cii" / "mustang__Factur-X_basic.xml").read_bytes()
    assert validator.validate(basic).layers_run == ("xsd", "en16931", "facturx")
    assert validator.validate(basic, facturx=False).layers_run == ("xsd", "en16931")
    # A bare EN 16931 GuidelineID is Factur-X EN16931 only when asked: plenty of CII is not Factur-X.
    plain = validator.validate(cii_invoice(examples_dir))
    assert (plain.layers_run, [s.layer for s in plain.layers_skipped]) == (("xsd", "en16931"), ["peppol"])
    assert validator.validate(cii_invoice(examples_dir), facturx=True).layers_run == ("xsd", "en16931", "facturx")
    # Without the Factur-X layer, EXTENDED's EN 16931 findings stay fatal.
    extended = (examples_dir / "cii" / "mustang__factur-x-extended.xml").read_bytes()
    without = validator.validate(extended, facturx=False)
    assert without.fatal_rule_ids("en16931") == {"BR-S-08", "BR-CO-12", "CII-DT-027"}
    assert validator.validate(extended).valid is True


def test_the_profile_xsd_refuses_what_the_profile_leaves_out(validator: Validator, examples_dir: Path) -> None:
    # The document name (ExchangedDocument/Name) exists in CII D16B and in EXTENDED, not in EN16931's schema.
    data = edit(
        cii_invoice(examples_dir),
        b"<ram:TypeCode>380</ram:TypeCode>",
        b"<ram:Name>Rechnung</ram:Name><ram:TypeCode>380</ram:TypeCode>",
    )
    assert validator.validate(data).valid is True  # EN 16931 only warns (CII-SR-013)
    report = validator.validate(data, facturx=True)
    assert report.valid is False
    [finding] = [f for f in report.findings if f.severity == "fatal"]
    assert (finding.layer, finding.rule_id) == ("facturx", "SCHEMAV_ELEMENT_CONTENT")
    assert finding.location == "/rsm:CrossIndustryInvoice/rsm:ExchangedDocument/ram:Name"
    assert finding.line is not None


def test_the_facturx_layer_waits_for_a_schema_valid_document(validator: Validator, examples_dir: Path) -> None:
    data = edit(cii_invoice(examples_dir), b"<ram:TypeCode>380</ram:TypeCode>", b"<ram:Nonsense>380</ram:Nonsense>")
    report = validator.validate(data, facturx=True)
    assert report.layers_run == ("xsd",)
    reasons = {s.layer: s.reason for s in report.layers_skipped}
    assert "not schema-valid" in reasons["facturx"]
    assert "not schema-valid" in reasons["en16931"]


def test_ubl_has_no_facturx_layer(validator: Validator, examples_dir: Path) -> None:
    report = validator.validate(ubl_invoice(examples_dir), facturx=True)
    assert report.valid is True
    assert "facturx" not in report.layers_run
    [skipped] = [s for s in report.layers_skipped if s.layer == "facturx"]
    assert skipped.reason == "not applicable: the document is not CII of Factur-X 1.0"


def test_factur_x_guideline_ids() -> None:
    assert set(FACTURX_GUIDELINES.values()) == {"MINIMUM", "BASIC-WL", "BASIC", "EN16931", "EXTENDED"}
    assert facturx_profile("urn:cen.eu:en16931:2017#conformant#urn:factur-x.eu:1p0:extended") == "EXTENDED"
    assert facturx_profile("urn:ferd:CrossIndustryDocument:invoice:1p0:comfort") is None
    assert facturx_profile(None) is None
    assert names_facturx("urn:factur-x.eu:1p0:minimum")
    assert names_facturx("urn:cen.eu:en16931:2017#compliant#urn:Factur-X.eu:1p0:basic")
    assert not names_facturx("urn:cen.eu:en16931:2017")
    assert not names_facturx(None)


def test_unflagged_reports_are_fatal_in_the_facturx_rules() -> None:
    svrl = """<svrl:schematron-output xmlns:svrl="http://purl.oclc.org/dsdl/svrl">
      <svrl:successful-report test="true()" location="/a"><svrl:text>Element variant not allowed</svrl:text>
      </svrl:successful-report>
      <svrl:successful-report test="@schemeID" location="/b"><svrl:text>not used</svrl:text></svrl:successful-report>
      <svrl:failed-assert id="W" flag="warning" location="/c"><svrl:text>w</svrl:text></svrl:failed-assert>
    </svrl:schematron-output>"""
    findings = list(_svrl_findings(svrl, "facturx", report_severity="fatal"))
    assert [(f.rule_id, f.severity, f.layer) for f in findings] == [
        ("(unnamed rule)", "fatal", "facturx"),
        ("@schemeID", "fatal", "facturx"),
        ("W", "warning", "facturx"),
    ]
