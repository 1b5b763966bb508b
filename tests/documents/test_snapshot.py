"""Document snapshots: JSON in, the very same document out, for imported e-invoices, for documents built from
rows, and for generated documents that set every field the model has."""

from __future__ import annotations

import dataclasses
import json
import types
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from invoiceflow.documents.model import InvoiceDocument
from invoiceflow.documents.snapshot import SnapshotError, document_from_json, document_to_json
from invoiceflow.einvoicing.importer import parse_einvoice
from tests.documents.helpers import make_document
from tests.einvoicing.conftest import locate_rules_dir


def through_json(doc: InvoiceDocument) -> tuple[InvoiceDocument, dict[str, Any]]:
    """The document after a trip through the text a database stores."""
    text = json.dumps(document_to_json(doc), allow_nan=False, sort_keys=True)
    data = json.loads(text)
    return document_from_json(data), data


def assert_lossless(doc: InvoiceDocument) -> None:
    back, data = through_json(doc)
    assert back == doc
    # Dataclass equality compares Decimals by value; the JSON compares their digits and exponents too.
    assert document_to_json(back) == data
    assert repr(back) == repr(doc)


def example_files() -> list[Any]:
    examples = locate_rules_dir() / "examples"
    files = sorted([*examples.glob("ubl/*"), *examples.glob("cii/*")])
    if not files:
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"no examples under {examples}"))]
    return [pytest.param(path, id=path.name) for path in files]


@pytest.mark.parametrize("path", example_files())
def test_every_imported_example_survives_a_snapshot(path: Path) -> None:
    assert_lossless(parse_einvoice(path.read_bytes()).document)


def test_a_document_built_from_rows_survives_a_snapshot() -> None:
    doc = dataclasses.replace(make_document(), logo=b"\x89PNG\r\n\x1a\n\x00\xff")
    assert_lossless(doc)


def test_the_encoding_is_plain_readable_json() -> None:
    doc = dataclasses.replace(
        make_document(),
        logo=b"\x00\x01",
        rounding_amount=Decimal("-0.10"),
        tax_currency_vat_total=Decimal("1E+2"),
    )
    data = document_to_json(doc)
    assert data["rounding_amount"] == "-0.10"
    assert data["tax_currency_vat_total"] == "1E+2"  # the exponent is kept, not expanded to "100"
    assert data["issue_date"] == doc.issue_date.isoformat()
    assert data["logo"] == "AAE="
    assert data["lines"][0]["quantity"] == str(doc.lines[0].quantity)
    assert data["seller"]["name"] == doc.seller.name
    assert data["ship_to"] is None or isinstance(data["ship_to"], dict)
    assert data["payment_means"] is None
    assert isinstance(data["lines"], list)
    assert not any(isinstance(value, float) for value in _leaves(data))


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in _leaves(item)]
    if isinstance(value, list):
        return [leaf for item in value for leaf in _leaves(item)]
    return [value]


# ----------------------------------------------------------------------------------------- refused input


def test_a_snapshot_that_does_not_fit_the_model_is_refused() -> None:
    data = document_to_json(make_document())
    for broken, message in [
        ({**data, "net_total": 12.5}, r"\$\.net_total: expected a string, got float"),
        ({**data, "net_total": "twelve"}, r"\$\.net_total: 'twelve' is not a decimal"),
        ({**data, "issue_date": "01.03.2026"}, r"\$\.issue_date: '01.03.2026' is not an ISO date"),
        ({**data, "issue_date": "20260301"}, r"\$\.issue_date: '20260301' is not an ISO date"),
        ({**data, "kind": "receipt"}, r"\$\.kind: 'receipt' is not one of"),
        ({**data, "currency": None}, r"\$\.currency: expected a string, got NoneType"),
        ({**data, "surprise": 1}, r"\$: unknown field\(s\) surprise for InvoiceDocument"),
        ({**data, "lines": {}}, r"\$\.lines: expected an array, got dict"),
        ({**data, "logo": "not base64!"}, r"\$\.logo: not base64"),
        ({**data, "lines": [{**data["lines"][0], "position": "1"}]}, r"\$\.lines\[0\]\.position: expected an integer"),
        (
            {
                **data,
                "allowances_charges": [
                    {"is_charge": 1, "amount": "1", "reason": None, "vat_category": "S", "vat_rate": "21"}
                ],
            },
            r"\$\.allowances_charges\[0\]\.is_charge: expected true or false, got int",
        ),
        ({key: value for key, value in data.items() if key != "number"}, r"\$\.number: missing"),
    ]:
        with pytest.raises(SnapshotError, match=message):
            document_from_json(broken)


def test_fields_added_later_take_their_defaults_in_old_snapshots() -> None:
    doc = make_document()
    data = document_to_json(doc)
    old = {key: value for key, value in data.items() if key not in ("payment_means", "rounding_amount", "payee")}
    old["seller"] = {key: value for key, value in data["seller"].items() if key != "trading_name"}
    assert document_from_json(old) == doc


# ------------------------------------------------------------------------------------ generated documents


# Any finite Decimal, with any exponent ("1E+5", "0.000", "-0"): the snapshot keeps them all as they are.
ANY_DECIMAL = st.decimals(allow_nan=False, allow_infinity=False)


def document_strategy(annotation: Any, decimals: st.SearchStrategy[Decimal] = ANY_DECIMAL) -> st.SearchStrategy[Any]:
    """Values for any type the model uses, read from its annotations: every optional field gets both None and a
    value, every tuple zero to two items, every nested dataclass all of its own fields."""
    origin = get_origin(annotation)
    if origin is Union or origin is types.UnionType:
        return st.one_of(*(document_strategy(option, decimals) for option in get_args(annotation)))
    if origin is tuple:
        return st.lists(document_strategy(get_args(annotation)[0], decimals), max_size=2).map(tuple)
    if origin is Literal:
        return st.sampled_from(get_args(annotation))
    if annotation is type(None):
        return st.none()
    if dataclasses.is_dataclass(annotation):
        hints = get_type_hints(annotation)
        fields = {
            field.name: document_strategy(hints[field.name], decimals) for field in dataclasses.fields(annotation)
        }
        return st.builds(annotation, **fields)
    simple: dict[Any, st.SearchStrategy[Any]] = {
        str: st.text(max_size=12),
        int: st.integers(min_value=-(10**12), max_value=10**12),
        bool: st.booleans(),
        Decimal: decimals,
        date: st.dates(),
        bytes: st.binary(max_size=16),
    }
    return simple[annotation]


@settings(max_examples=60, deadline=None)
@given(doc=document_strategy(InvoiceDocument))
def test_generated_documents_survive_a_snapshot(doc: InvoiceDocument) -> None:
    assert_lossless(doc)
