"""Schema compatibility: can data written with one version be read with another?

Checked two ways, because either alone misses cases: a structural check of Avro's
resolution rules (new fields need defaults, enums may only lose symbols if the reader has a
default, types may only be promoted, named types keep their names), and a round trip of
generated records written with one schema and read with the other through fastavro.

- backward: the current schema of each name reads every version in ``schemas/history/``
  (the ledger reads events an older connector wrote, and replays old topics);
- forward: every version in history reads the current schema's data (a consumer not yet
  upgraded during a rolling deploy).
"""

from __future__ import annotations

import io
from typing import Any

import fastavro
from fastavro.utils import generate_many

from schemas.loader import current_schemas, historical_schemas

_PROMOTIONS = {
    "int": {"long", "float", "double"},
    "long": {"float", "double"},
    "float": {"double"},
    "string": {"bytes"},
    "bytes": {"string"},
}
_NAMED = ("record", "enum", "fixed")


class IncompatibleSchemaError(ValueError):
    """A schema change that would make records unreadable; the message says where."""


def problems(writer: Any, reader: Any) -> list[str]:
    """Why ``reader`` cannot read data written with ``writer``, by Avro's rules; [] if it can."""
    # expand: references to named types become their definitions, names fully qualified
    writer, reader = (
        fastavro.parse_schema(s, named_schemas={}, expand=True, _write_hint=False)
        for s in (writer, reader)
    )
    return _problems_at(writer, reader, _short(writer) or "<root>")


def check_pair(writer: dict[str, Any], reader: dict[str, Any], *, samples: int = 100) -> None:
    """Raise IncompatibleSchemaError if ``reader`` cannot read data written with ``writer``."""
    found = problems(writer, reader)
    if not found:
        found = _sample_problems(writer, reader, samples)
    if found:
        raise IncompatibleSchemaError("; ".join(found))


def check_repository(direction: str = "backward") -> list[str]:
    """Every historical schema against the current one of its name; the list of problems.

    ``direction`` is "backward" (current reads history) or "forward" (history reads current).
    """
    current = current_schemas()
    found = []
    for old in historical_schemas():
        new = current.get(old.name)
        if new is None:
            found.append(f"{old.source}: no current schema named {old.name}")
            continue
        writer, reader = (old, new) if direction == "backward" else (new, old)
        try:
            check_pair(writer.raw, reader.raw)
        except IncompatibleSchemaError as exc:
            found.append(f"{reader.source} cannot read {writer.source}: {exc}")
    return found


def _sample_problems(writer: dict[str, Any], reader: dict[str, Any], samples: int) -> list[str]:
    parsed_writer = fastavro.parse_schema(writer, named_schemas={})
    parsed_reader = fastavro.parse_schema(reader, named_schemas={})
    for record in generate_many(parsed_writer, samples):
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, parsed_writer, record)
        buf.seek(0)
        try:
            fastavro.schemaless_reader(buf, parsed_writer, parsed_reader)
        except Exception as exc:  # any failure to resolve is the finding
            return [f"{_short(reader)}: a generated record failed to resolve: {exc}"]
    return []


def _check(writer: Any, reader: Any, path: str, found: list[str]) -> None:
    w_type, r_type = _kind(writer), _kind(reader)
    if w_type == "union":  # every branch the writer may have used must be readable
        for branch in _branches(writer):
            _check(branch, reader, path, found)
        return
    if r_type == "union":
        if not any(not _problems_at(writer, branch, path) for branch in _branches(reader)):
            found.append(f"{path}: no branch of the reader's union reads a {_label(writer)}")
        return
    if w_type != r_type and r_type not in _PROMOTIONS.get(w_type, set()):
        found.append(f"{path}: type changed from {_label(writer)} to {_label(reader)}")
        return
    if w_type in _NAMED and not _same_name(writer, reader):
        found.append(f"{path}: {w_type} renamed from {_short(writer)} to {_short(reader)}")
        return
    if w_type == "record":
        _check_record(writer, reader, path, found)
    elif w_type == "enum":
        removed = [s for s in writer["symbols"] if s not in reader["symbols"]]
        if removed and "default" not in reader:
            found.append(
                f"{path}: enum symbols {removed} unknown to the reader, which has no default"
            )
    elif w_type == "fixed" and writer["size"] != reader["size"]:
        found.append(f"{path}: fixed size changed from {writer['size']} to {reader['size']}")
    elif w_type == "array":
        _check(writer["items"], reader["items"], f"{path}[]", found)
    elif w_type == "map":
        _check(writer["values"], reader["values"], f"{path}{{}}", found)


def _check_record(writer: Any, reader: Any, path: str, found: list[str]) -> None:
    old_fields = {f["name"]: f for f in writer["fields"]}
    for field in reader["fields"]:
        names = [field["name"], *field.get("aliases", [])]
        old = next((old_fields[n] for n in names if n in old_fields), None)
        if old is not None:
            _check(old["type"], field["type"], f"{path}.{field['name']}", found)
        elif "default" not in field:
            found.append(
                f"{path}.{field['name']}: field missing from the writer and without a "
                "default; give it a default"
            )


def _problems_at(writer: Any, reader: Any, path: str) -> list[str]:
    found: list[str] = []
    _check(writer, reader, path, found)
    return found


def _branches(node: Any) -> list[Any]:
    return node if isinstance(node, list) else list(node["type"])


def _kind(node: Any) -> str:
    if isinstance(node, list):
        return "union"
    if isinstance(node, dict):
        inner = node["type"]
        return _kind(inner) if isinstance(inner, (dict, list)) else str(inner)
    return str(node)


def _label(node: Any) -> str:
    kind = _kind(node)
    return f"{kind} {_short(node)}" if kind in _NAMED and _short(node) else kind


def _short(node: Any) -> str:
    return str(node.get("name", "")).rsplit(".", 1)[-1] if isinstance(node, dict) else ""


def _same_name(writer: Any, reader: Any) -> bool:
    aliases = {str(a).rsplit(".", 1)[-1] for a in reader.get("aliases", [])}
    return _short(writer) == _short(reader) or _short(writer) in aliases
