"""Schema evolution: earlier versions stay readable; an incompatible change fails the suite."""

from __future__ import annotations

import copy
import io
from typing import Any

import fastavro
import pytest

from schemas.codec import single_object_codec
from schemas.compat import IncompatibleSchemaError, check_pair, check_repository
from schemas.loader import HISTORY_DIR, current_schemas, historical_schemas, strip_logical_types

EVENT = current_schemas()["stockflow.v1.StockEvent"].raw


def test_history_holds_an_earlier_version_of_the_event_schema() -> None:
    """Given schemas/history, when listed, then a previous StockEvent is there to check."""
    assert any(s.name == "stockflow.v1.StockEvent" for s in historical_schemas()), HISTORY_DIR


def test_every_current_schema_reads_every_earlier_version() -> None:
    """Given the repository's schemas, when each historical version is checked against the
    current schema of its name, then no incompatibility is found."""
    assert check_repository() == []


def test_a_record_written_with_the_previous_event_schema_decodes_with_the_current_one() -> None:
    """Given a StockEvent framed with the v0 fingerprint and written with the v0 schema,
    when the codec decodes it, then it is read with the current schema (new fields at their
    defaults)."""
    old = next(s for s in historical_schemas() if s.name == "stockflow.v1.StockEvent")
    record: dict[str, Any] = {
        "event_id": "old-1",
        "type": "sale",
        "sku": "chair",
        "qty": 1,
        "location": "paris",
        "to_location": None,
        "channel": "till",
        "order_id": None,
        "occurred_at": 1_700_000_000_000,
        "ingested_at": 1_700_000_000_001,
        "source": "till",
        "source_ref": None,
        "reason": None,
        "as_of": None,
        "expires_at": None,
    }
    buf = io.BytesIO()
    buf.write(b"\xc3\x01" + old.fingerprint)
    fastavro.schemaless_writer(buf, fastavro.parse_schema(strip_logical_types(old.raw)), record)
    name, decoded = single_object_codec().decode(buf.getvalue())
    assert name == "stockflow.v1.StockEvent"
    assert decoded == {**record, "source_seq": None, "disposition": None}


def _variant(change: str) -> dict[str, Any]:
    new = copy.deepcopy(EVENT)
    fields = new["fields"]
    if change == "field without default":
        fields.append({"name": "tenant", "type": "string", "doc": "d"})
    elif change == "type changed":
        next(f for f in fields if f["name"] == "sku")["type"] = "long"
    elif change == "enum symbol removed":
        kind = next(f for f in fields if f["name"] == "type")["type"]
        kind["symbols"] = [s for s in kind["symbols"] if s != "sale"]
        kind.pop("default")
    return new


@pytest.mark.parametrize("change", ["field without default", "type changed", "enum symbol removed"])
def test_the_checker_refuses_an_incompatible_change(change: str) -> None:
    """Given the current event schema as the old version and an incompatible new one,
    when checked, then IncompatibleSchemaError names the problem."""
    with pytest.raises(IncompatibleSchemaError):
        check_pair(EVENT, _variant(change))


def test_the_checker_accepts_a_compatible_change() -> None:
    """Given a new optional field with a default, when checked, then it passes."""
    new = copy.deepcopy(EVENT)
    new["fields"].append(
        {"name": "tenant", "type": ["null", "string"], "default": None, "doc": "d"}
    )
    check_pair(EVENT, new)


def _undocumented(node: Any, path: str) -> list[str]:
    missing = []
    if isinstance(node, dict):
        if node.get("type") in ("record", "enum") and not node.get("doc"):
            missing.append(path)
        for field in node.get("fields", []):
            if not field.get("doc"):
                missing.append(f"{path}.{field['name']}")
            missing += _undocumented(field["type"], f"{path}.{field['name']}")
        for key in ("items", "values"):
            if key in node:
                missing += _undocumented(node[key], path)
    elif isinstance(node, list):
        for branch in node:
            missing += _undocumented(branch, path)
    return missing


@pytest.mark.parametrize("name", sorted(current_schemas()))
def test_every_field_of_every_schema_is_documented(name: str) -> None:
    """Given a schema, when walked, then every record, enum and field has a doc."""
    assert _undocumented(current_schemas()[name].raw, name) == []
