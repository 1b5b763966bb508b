"""E-invoicing fixtures: the official rules folder (never copied into the repository), one warmed-up
validator per test session, and an app that has the rules configured."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from invoiceflow.einvoicing.validator import Validator, get_validator
from invoiceflow.main import create_app
from tests.conftest import REQUIRE, make_settings

# Where the workplace keeps the official artefacts: beside the repository (tests/einvoicing/conftest.py ->
# the repository root is parents[2]), or, for a checkout made elsewhere (a CI clone), the workplace's own
# shared folder. INVOICEFLOW_EINVOICE_RULES_DIR overrides both.
CANDIDATE_RULES_DIRS = (
    Path(__file__).resolve().parents[2] / ".." / "shared" / "einvoicing",
    Path("/work/shared/einvoicing"),
)
DEFAULT_RULES_DIR = CANDIDATE_RULES_DIRS[0]


def locate_rules_dir() -> Path:
    configured = os.environ.get("INVOICEFLOW_EINVOICE_RULES_DIR")
    if configured:
        return Path(configured).resolve()
    for candidate in CANDIDATE_RULES_DIRS:
        if (candidate / "examples" / "INDEX.tsv").is_file():
            return candidate.resolve()
    return DEFAULT_RULES_DIR.resolve()


@pytest.fixture(scope="session")
def rules_dir() -> Path:
    path = locate_rules_dir()
    if not (path / "examples" / "INDEX.tsv").is_file():
        message = f"e-invoicing rules not found at {path} (set INVOICEFLOW_EINVOICE_RULES_DIR)"
        if REQUIRE:
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def validator(rules_dir: Path) -> Validator:
    """Compiles the XSLTs once for the whole session (about 1.5 s); every test shares the result."""
    validator = get_validator(rules_dir)
    validator.warm_up()
    return validator


@pytest.fixture(scope="session")
def examples_dir(rules_dir: Path) -> Path:
    return rules_dir / "examples"


@pytest.fixture(scope="session")
def einvoice_client(database_url: str, data_dir: Path, rules_dir: Path, validator: Validator) -> Iterator[TestClient]:
    """An app with the rules configured (the shared `client` app has none, which is a test of its own)."""
    settings = make_settings(database_url, data_dir, einvoice_rules_dir=rules_dir)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client
