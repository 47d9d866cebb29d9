"""Backward compatibility: the current schema of each name reads every earlier version.

Checked two ways, because either alone misses cases: a structural check of Avro's
resolution rules (new fields need defaults, enums may only lose symbols if the reader has a
default, types may only be promoted), and a round trip of generated records written with
the old schema and read with the new one.
"""

from __future__ import annotations

import io
from typing import Any

import fastavro
from fastavro.utils import generate_many

from schemas.loader import Schema, current_schemas, historical_schemas

_PROMOTIONS = {
    "int": {"long", "float", "double"},
    "long": {"float", "double"},
    "float": {"double"},
    "string": {"bytes"},
    "bytes": {"string"},
}


class IncompatibleSchemaError(ValueError):
    """A schema change that would make earlier records unreadable; the message says where."""


def check_pair(writer: dict[str, Any], reader: dict[str, Any], *, samples: int = 200) -> None:
    """Raise IncompatibleSchemaError if ``reader`` cannot read data written with ``writer``."""
    _check(writer, reader, writer.get("name", "<root>"))
    parsed_writer = fastavro.parse_schema(writer, _write_hint=False)
    parsed_reader = fastavro.parse_schema(reader, _write_hint=False)
    for record in generate_many(parsed_writer, samples):
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, parsed_writer, record)
        buf.seek(0)
        try:
            fastavro.schemaless_reader(buf, parsed_writer, parsed_reader)
        except Exception as exc:  # any failure to resolve is the finding
            raise IncompatibleSchemaError(
                f"{reader.get('name')}: a generated record failed: {exc}"
            ) from None


def check_repository() -> list[str]:
    """Every historical schema against the current one of its name; the list of problems."""
    current = current_schemas()
    problems = []
    for old in historical_schemas():
        new: Schema | None = current.get(old.name)
        if new is None:
            problems.append(f"{old.source.name}: no current schema named {old.name}")
            continue
        try:
            check_pair(old.raw, new.raw)
        except IncompatibleSchemaError as exc:
            problems.append(f"{old.source.name} -> {new.source.name}: {exc}")
    return problems


def _check(writer: Any, reader: Any, path: str) -> None:
    w_type, r_type = _kind(writer), _kind(reader)
    if r_type == "union":
        branches = reader if isinstance(reader, list) else reader["type"]
        if w_type == "union":
            for branch in writer if isinstance(writer, list) else writer["type"]:
                _match_any(branch, branches, path)
        else:
            _match_any(writer, branches, path)
        return
    if w_type == "union":
        for branch in writer if isinstance(writer, list) else writer["type"]:
            _check(branch, reader, path)
        return
    if w_type != r_type and r_type not in _PROMOTIONS.get(w_type, set()):
        raise IncompatibleSchemaError(f"{path}: type changed from {w_type} to {r_type}")
    if w_type == "record":
        old_fields = {f["name"]: f for f in writer["fields"]}
        for field in reader["fields"]:
            old = old_fields.get(field["name"])
            if old is None:
                if "default" not in field:
                    raise IncompatibleSchemaError(
                        f"{path}.{field['name']}: new field without a default"
                    )
            else:
                _check(old["type"], field["type"], f"{path}.{field['name']}")
    elif w_type == "enum":
        missing = set(writer["symbols"]) - set(reader["symbols"])
        if missing and "default" not in reader:
            raise IncompatibleSchemaError(
                f"{path}: enum symbols {sorted(missing)} removed and the enum has no default"
            )
    elif w_type == "array":
        _check(writer["items"], reader["items"], f"{path}[]")
    elif w_type == "map":
        _check(writer["values"], reader["values"], f"{path}{{}}")


def _match_any(writer: Any, branches: list[Any], path: str) -> None:
    for branch in branches:
        try:
            _check(writer, branch, path)
            return
        except IncompatibleSchemaError:
            continue
    raise IncompatibleSchemaError(f"{path}: no branch of the new union reads {_kind(writer)}")


def _kind(node: Any) -> str:
    if isinstance(node, list):
        return "union"
    if isinstance(node, dict):
        inner = node["type"]
        return _kind(inner) if isinstance(inner, (dict, list)) else str(inner)
    return str(node)
