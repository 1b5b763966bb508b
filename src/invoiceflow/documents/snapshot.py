"""The document model as JSON and back, losslessly: an imported invoice is stored this way (a JSON column) and
rendered and re-exported from it, so what comes back must be the very document that went in.

The encoding is plain JSON, readable in the database:
  * every field of every dataclass, by name, nested dataclasses as objects, tuples as arrays, None as null;
  * a Decimal as its string, which keeps its exponent ("2337.5" and "2337.50" stay apart, "1E+2" stays so);
    never a JSON number, which a reader would take for a float (ADR 0003);
  * a date in ISO form, bytes (logo, attachments) in standard base64.

Reading is strict, because a snapshot that does not fit the model is a bug to see, not to paper over: an
unknown key, a missing required field or a value of the wrong JSON type raises `SnapshotError` naming the
path. A field the snapshot lacks but the model gives a default (a field added after the snapshot was written)
takes that default, which is how the model's additions stay readable in old snapshots.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import types
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from invoiceflow.documents.model import InvoiceDocument


class SnapshotError(ValueError):
    """A stored document snapshot does not fit the document model."""


def document_to_json(doc: InvoiceDocument) -> dict[str, Any]:
    """A JSON-ready dict (only dicts, lists, strings, integers, booleans and None) of the whole document."""
    encoded = _encode(doc, "$")
    assert isinstance(encoded, dict)
    return encoded


def document_from_json(data: Mapping[str, Any]) -> InvoiceDocument:
    """The document a `document_to_json` dict describes; raises SnapshotError when it does not fit."""
    document = _decode(InvoiceDocument, data, "$")
    assert isinstance(document, InvoiceDocument)
    return document


def _encode(value: Any, path: str) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            field.name: _encode(getattr(value, field.name), f"{path}.{field.name}") for field in _fields(type(value))
        }
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date) and not isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, tuple):
        return [_encode(item, f"{path}[{index}]") for index, item in enumerate(value)]
    raise SnapshotError(f"{path}: no JSON form for {type(value).__name__}")


@cache
def _fields(cls: type) -> tuple[dataclasses.Field[Any], ...]:
    return dataclasses.fields(cls)


@cache
def _hints(cls: type) -> dict[str, Any]:
    return get_type_hints(cls)


def _decode(annotation: Any, value: Any, path: str) -> Any:
    origin = get_origin(annotation)
    if origin is Union or origin is types.UnionType:
        options = get_args(annotation)
        if value is None and type(None) in options:
            return None
        (inner,) = [option for option in options if option is not type(None)]  # the model's unions are `X | None`
        return _decode(inner, value, path)
    if origin is tuple:
        item_type, ellipsis = get_args(annotation)
        assert ellipsis is Ellipsis, annotation
        if not isinstance(value, list):
            raise SnapshotError(f"{path}: expected an array, got {type(value).__name__}")
        return tuple(_decode(item_type, item, f"{path}[{index}]") for index, item in enumerate(value))
    if origin is Literal:
        if value not in get_args(annotation):
            raise SnapshotError(f"{path}: {value!r} is not one of {get_args(annotation)}")
        return value
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        return _decode_dataclass(annotation, value, path)
    decoder = _SCALARS.get(annotation)
    if decoder is None:
        raise SnapshotError(f"{path}: the model's type {annotation!r} has no JSON form")
    return decoder(value, path)


def _decode_dataclass(cls: type, value: Any, path: str) -> Any:
    if not isinstance(value, Mapping):
        raise SnapshotError(f"{path}: expected an object, got {type(value).__name__}")
    hints = _hints(cls)
    known = {field.name for field in _fields(cls)}
    unknown = sorted(set(value) - known)
    if unknown:
        raise SnapshotError(f"{path}: unknown field(s) {', '.join(map(str, unknown))} for {cls.__name__}")
    arguments: dict[str, Any] = {}
    for field in _fields(cls):
        if field.name in value:
            arguments[field.name] = _decode(hints[field.name], value[field.name], f"{path}.{field.name}")
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise SnapshotError(f"{path}.{field.name}: missing")
    return cls(**arguments)


def _string(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise SnapshotError(f"{path}: expected a string, got {type(value).__name__}")
    return value


def _integer(value: Any, path: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise SnapshotError(f"{path}: expected an integer, got {type(value).__name__}")
    return value


def _boolean(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise SnapshotError(f"{path}: expected true or false, got {type(value).__name__}")
    return value


def _decimal(value: Any, path: str) -> Decimal:
    # A JSON number is refused even when integral: amounts are written as strings, so a number here means the
    # snapshot was written by something else, possibly through a float.
    try:
        return Decimal(_string(value, path))
    except InvalidOperation:
        raise SnapshotError(f"{path}: {value!r} is not a decimal") from None


def _date(value: Any, path: str) -> date:
    text = _string(value, path)
    try:
        parsed = date.fromisoformat(text)
    except ValueError:
        raise SnapshotError(f"{path}: {text!r} is not an ISO date") from None
    if parsed.isoformat() != text:  # fromisoformat also takes "20260301" and week dates; only one form is written
        raise SnapshotError(f"{path}: {text!r} is not an ISO date (YYYY-MM-DD)")
    return parsed


def _bytes(value: Any, path: str) -> bytes:
    try:
        return base64.b64decode(_string(value, path), validate=True)
    except (binascii.Error, ValueError):
        raise SnapshotError(f"{path}: not base64") from None


_SCALARS: dict[Any, Any] = {
    str: _string,
    int: _integer,
    bool: _boolean,
    Decimal: _decimal,
    date: _date,
    bytes: _bytes,
}
