"""`invoiceflow einvoice validate`: exit status, table output and --json."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from invoiceflow.cli import app
from invoiceflow.einvoicing.cli import short_location
from tests.einvoicing.documents import BROKEN, HOSTILE, UBL_INVOICE

runner = CliRunner()


def invoke(*args: str | Path) -> tuple[int, str]:
    result = runner.invoke(app, ["einvoice", "validate", *map(str, args)], env={"COLUMNS": "200", "NO_COLOR": "1"})
    return result.exit_code, result.output


def test_a_valid_file_exits_0(rules_dir: Path, examples_dir: Path) -> None:
    code, output = invoke("--rules-dir", rules_dir, examples_dir / UBL_INVOICE)
    assert code == 0, output
    assert "valid" in output
    assert "INVALID" not in output


def test_an_invalid_file_exits_1_and_shows_the_rule(rules_dir: Path, examples_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.xml"
    broken.write_bytes(BROKEN[0].build(examples_dir))
    code, output = invoke("--rules-dir", rules_dir, examples_dir / UBL_INVOICE, broken)
    assert code == 1, output
    assert "INVALID" in output
    assert "BR-CO-15" in output
    assert "/Invoice[1]" in output  # the location, without its namespace noise


def test_json_output_parses(rules_dir: Path, examples_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.xml"
    broken.write_bytes(BROKEN[0].build(examples_dir))
    hostile = tmp_path / "xxe.xml"
    hostile.write_bytes(HOSTILE[0][1])
    code, output = invoke("--json", "--rules-dir", rules_dir, examples_dir / UBL_INVOICE, broken, hostile)
    assert code == 1, output
    valid, invalid, refused = json.loads(output)
    assert (valid["file"], valid["valid"]) == (str(examples_dir / UBL_INVOICE), True)
    assert invalid["valid"] is False
    assert "BR-CO-15" in {f["rule_id"] for f in invalid["findings"]}
    assert refused["error"]["code"] == "XML_FORBIDDEN_CONSTRUCT"


def test_missing_rules_exit_2(tmp_path: Path, examples_dir: Path) -> None:
    code, output = invoke("--json", "--rules-dir", tmp_path / "none", examples_dir / UBL_INVOICE)
    assert code == 2
    assert json.loads(output)["error"]["code"] == "EINVOICE_RULES_MISSING"


def test_short_location_drops_namespace_predicates() -> None:
    xpath = "/*:Invoice[namespace-uri()='urn:oasis:names:specification:ubl:schema:xsd:Invoice-2'][1]/Q{urn:x}Party[2]"
    assert short_location(xpath) == "/Invoice[1]/Party[2]"


def test_the_installed_command_reads_the_rules_dir_from_the_environment(rules_dir: Path, examples_dir: Path) -> None:
    """The real entry point, in a fresh process, configured the way an operator configures it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INVOICEFLOW_")}
    env.update({"INVOICEFLOW_EINVOICE_RULES_DIR": str(rules_dir), "COLUMNS": "200", "NO_COLOR": "1"})
    result = subprocess.run(
        [sys.executable, "-m", "invoiceflow.cli", "einvoice", "validate", "--json", str(examples_dir / UBL_INVOICE)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)[0]["valid"] is True
