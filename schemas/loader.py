"""The Avro schemas of ``schemas/`` (current) and ``schemas/history/`` (earlier versions).

Each schema is kept in two parsed forms: as written (for the fingerprint and the registry)
and with its ``logicalType`` annotations removed, which is what the codec reads and writes:
times stay plain integers (epoch ms) instead of becoming datetime objects on every decode.
The Parsing Canonical Form drops logical types anyway, so both forms share one fingerprint.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import fastavro
from fastavro.schema import fingerprint, to_parsing_canonical_form

SCHEMAS_DIR = Path(__file__).resolve().parent
HISTORY_DIR = SCHEMAS_DIR / "history"


class SchemaFileError(ValueError):
    """A schema that cannot be used; the message names where it came from and why."""


@dataclass(frozen=True)
class Schema:
    name: str  # full name, e.g. stockflow.v1.StockEvent
    source: str  # the file it came from, or "registry id N"
    raw: dict[str, Any]  # the JSON as written
    parsed: Any  # fastavro-parsed, logical types stripped
    fingerprint: bytes  # 8 bytes, CRC-64-AVRO of the canonical form, little-endian

    @property
    def json(self) -> str:
        return json.dumps(self.raw, separators=(",", ":"), sort_keys=True)


def strip_logical_types(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: strip_logical_types(v) for k, v in node.items() if k != "logicalType"}
    if isinstance(node, list):
        return [strip_logical_types(v) for v in node]
    return node


def schema_from_json(raw: Any, source: str) -> Schema:
    """A :class:`Schema` from decoded JSON; SchemaFileError if it is no usable Avro record."""
    if not isinstance(raw, dict) or raw.get("type") != "record" or not raw.get("name"):
        raise SchemaFileError(f"{source}: the top level must be a named Avro record")
    name = str(raw["name"])
    if "." not in name and raw.get("namespace"):
        name = f"{raw['namespace']}.{name}"
    try:
        # named_schemas={}: each version gets its own names (old and new share type names)
        canonical = to_parsing_canonical_form(
            fastavro.parse_schema(raw, named_schemas={}, _write_hint=False)
        )
        # Keep fastavro's "already parsed" hint: without it every read parses again (4x slower).
        parsed = fastavro.parse_schema(strip_logical_types(raw), named_schemas={})
    except Exception as exc:  # fastavro raises several types for a bad schema
        raise SchemaFileError(f"{source}: not a valid Avro schema: {exc}") from None
    return Schema(
        name=name,
        source=source,
        raw=raw,
        parsed=parsed,
        fingerprint=bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO")),
    )


def load_schema(path: Path) -> Schema:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SchemaFileError(f"{path}: cannot be read as JSON: {exc}") from None
    return schema_from_json(raw, str(path))


@cache
def current_schemas() -> dict[str, Schema]:
    """Full name -> the current schema of that name."""
    return {s.name: s for s in map(load_schema, sorted(SCHEMAS_DIR.glob("*.avsc")))}


@cache
def historical_schemas() -> list[Schema]:
    """Every earlier version kept under schemas/history/ (``<Name>.v<N>.avsc``)."""
    return [load_schema(p) for p in sorted(HISTORY_DIR.glob("*.avsc"))]


def full_name(name: str) -> str:
    """Accepts ``StockEvent`` or ``stockflow.v1.StockEvent``."""
    return name if "." in name else f"stockflow.v1.{name}"
