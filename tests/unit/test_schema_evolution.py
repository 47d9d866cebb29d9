"""Schema evolution: earlier versions stay readable; an incompatible change fails the suite."""

from __future__ import annotations

import copy
import io
import re
from collections.abc import Iterator
from typing import Any

import fastavro
import pytest
from fastavro.utils import generate_many

from schemas.codec import registry_codec, single_object_codec
from schemas.compat import IncompatibleSchemaError, check_pair, check_repository, problems
from schemas.loader import (
    HISTORY_DIR,
    Schema,
    current_schemas,
    historical_schemas,
    load_schema,
    strip_logical_types,
)
from tests.unit.fake_registry import FakeRegistry, fake_registry

EVENT = current_schemas()["stockflow.v1.StockEvent"].raw
HISTORY = historical_schemas()


@pytest.fixture(scope="module")
def registry() -> Iterator[FakeRegistry]:
    with fake_registry() as fake:
        yield fake


def test_history_holds_earlier_versions_that_really_differ() -> None:
    """Given schemas/history, when listed, then a previous StockEvent is there, and every
    file is named <Record>.v<N>.avsc and differs from the current schema of its name."""
    assert any(s.name == "stockflow.v1.StockEvent" for s in HISTORY), HISTORY_DIR
    for old in HISTORY:
        stem = old.source.rsplit("/", 1)[-1]
        assert re.fullmatch(rf"{old.name.rsplit('.', 1)[-1]}\.v\d+\.avsc", stem), stem
        assert old.fingerprint != current_schemas()[old.name].fingerprint, stem


def test_every_current_schema_reads_every_earlier_version() -> None:
    """Given the repository's schemas, when each historical version is checked against the
    current schema of its name (backward), then no incompatibility is found."""
    assert check_repository("backward") == []


def test_every_earlier_version_reads_the_current_schema() -> None:
    """Given the repository's schemas, when each historical version reads data of the current
    one (forward: a consumer not yet upgraded during a rolling deploy), then it can."""
    assert check_repository("forward") == []


def _old_records(old: Schema, count: int = 30) -> list[dict[str, Any]]:
    plain = fastavro.parse_schema(strip_logical_types(old.raw), named_schemas={})
    return list(generate_many(plain, count))


def _write(old: Schema, header: bytes, record: dict[str, Any]) -> bytes:
    buf = io.BytesIO(header)
    buf.seek(len(header))
    fastavro.schemaless_writer(buf, old.parsed, record)
    return buf.getvalue()


def _assert_read_with_current(old: Schema, written: dict[str, Any], read: dict[str, Any]) -> None:
    current = current_schemas()[old.name].raw
    assert sorted(read) == sorted(f["name"] for f in current["fields"])  # the current shape
    for field in current["fields"]:
        expected = written[field["name"]] if field["name"] in written else field["default"]
        assert _kept(expected, read[field["name"]]), field["name"]


def _kept(written: Any, read: Any) -> bool:
    """``read`` holds what was ``written``; records nested in it (array items, record fields)
    may have gained fields, read with their defaults."""
    if isinstance(written, dict) and isinstance(read, dict):
        return all(k in read and _kept(v, read[k]) for k, v in written.items())
    if isinstance(written, list) and isinstance(read, list):
        return len(written) == len(read) and all(map(_kept, written, read))
    return bool(written == read)


@pytest.mark.parametrize("old", HISTORY, ids=lambda s: s.source.rsplit("/", 1)[-1])
def test_single_object_records_of_every_earlier_version_decode_with_the_current_schema(
    old: Schema,
) -> None:
    """Given records written with a historical schema and framed with its fingerprint,
    when the codec decodes them, then they come back in the current shape: old fields kept,
    new fields at their defaults."""
    codec = single_object_codec()
    for record in _old_records(old):
        name, read = codec.decode(_write(old, b"\xc3\x01" + old.fingerprint, record))
        assert name == old.name
        _assert_read_with_current(old, record, read)


@pytest.mark.parametrize("old", HISTORY, ids=lambda s: s.source.rsplit("/", 1)[-1])
def test_registry_records_of_every_earlier_version_decode_with_the_current_schema(
    registry: FakeRegistry, old: Schema
) -> None:
    """Given an older producer that registered its schema version and wrote records with it,
    when a codec with an empty cache decodes them, then it fetches that version by id and
    reads them in the current shape."""
    schema_id = registry.add(old.json, old.name)
    header = b"\x00" + schema_id.to_bytes(4, "big")
    codec = registry_codec(registry.url)
    for record in _old_records(old):
        name, read = codec.decode(_write(old, header, record))
        assert name == old.name
        _assert_read_with_current(old, record, read)


def test_a_hand_written_v0_event_decodes_with_the_new_fields_at_their_defaults() -> None:
    """Given a StockEvent written with the v0 schema (no source_seq, no disposition),
    when the codec decodes it, then source_seq and disposition are None."""
    old = load_schema(HISTORY_DIR / "StockEvent.v0.avsc")
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
    _, decoded = single_object_codec().decode(_write(old, b"\xc3\x01" + old.fingerprint, record))
    assert decoded == {
        **record,
        "source_seq": None,
        "disposition": None,
        "lot": None,
        "expires_on": None,
        "expected_on": None,
    }


def _field(schema: dict[str, Any], name: str) -> dict[str, Any]:
    return next(f for f in schema["fields"] if f["name"] == name)


def _variant(change: str) -> dict[str, Any]:
    new = copy.deepcopy(EVENT)
    if change == "field added without default":
        new["fields"].append({"name": "tenant", "type": "string", "doc": "d"})
    elif change == "type changed string to long":
        _field(new, "sku")["type"] = "long"
    elif change == "enum symbol removed without default":
        kind = _field(new, "type")["type"]
        kind["symbols"].remove("sale")
        del kind["default"]
    elif change == "null dropped from a union":
        _field(new, "location")["type"] = "string"
        del _field(new, "location")["default"]
    elif change == "enum renamed":
        _field(new, "type")["type"]["name"] = "EventKind"
    return new


@pytest.mark.parametrize(
    "change",
    [
        "field added without default",
        "type changed string to long",
        "enum symbol removed without default",
        "null dropped from a union",
        "enum renamed",
    ],
)
def test_the_checker_refuses_an_incompatible_change(change: str) -> None:
    """Given the current event schema as the writer and an incompatible new reader,
    when checked, then IncompatibleSchemaError names the problem."""
    with pytest.raises(IncompatibleSchemaError, match="StockEvent"):
        check_pair(EVENT, _variant(change))


def test_a_removed_enum_symbol_is_caught_even_when_no_sample_uses_it() -> None:
    """Given an enum that lost a symbol and has no default, when checked structurally,
    then the problem names the symbol (random samples might never draw it)."""
    found = problems(EVENT, _variant("enum symbol removed without default"))
    assert found == [
        "StockEvent.type: enum symbols ['sale'] unknown to the reader, which has no default"
    ]


@pytest.mark.parametrize(
    "change",
    ["optional field added", "int promoted to long", "enum symbol added", "field removed"],
)
def test_the_checker_accepts_a_compatible_change(change: str) -> None:
    """Given a change Avro resolution allows, when checked, then it passes."""
    old, new = copy.deepcopy(EVENT), copy.deepcopy(EVENT)
    if change == "optional field added":
        new["fields"].append({"name": "t", "type": ["null", "string"], "default": None})
    elif change == "int promoted to long":
        old["fields"].append({"name": "n", "type": "int"})
        new["fields"].append({"name": "n", "type": "long"})
    elif change == "enum symbol added":
        _field(new, "type")["type"]["symbols"].append("write_off")
    elif change == "field removed":
        new["fields"].remove(_field(new, "reason"))
    check_pair(old, new)


def _undocumented(node: Any, path: str) -> list[str]:
    missing = []
    if isinstance(node, dict):
        if node.get("type") in ("record", "enum", "fixed") and not node.get("doc"):
            missing.append(path)
        for field in node.get("fields", []):
            if not field.get("doc"):
                missing.append(f"{path}.{field['name']}")
            missing += _undocumented(field["type"], f"{path}.{field['name']}")
        for key in ("items", "values"):
            if key in node:
                missing += _undocumented(node[key], f"{path}.{key}")
        if isinstance(node.get("type"), (dict, list)):
            missing += _undocumented(node["type"], path)
    elif isinstance(node, list):
        for branch in node:
            missing += _undocumented(branch, path)
    return missing


@pytest.mark.parametrize(
    "schema",
    [*current_schemas().values(), *HISTORY],
    ids=lambda s: s.source.rsplit("/", 1)[-1],
)
def test_every_record_enum_and_field_of_every_schema_is_documented(schema: Schema) -> None:
    """Given a schema (current or historical), when walked recursively, then every record,
    enum and field has a doc."""
    assert _undocumented(schema.raw, schema.name) == []


def test_the_doc_walk_finds_a_missing_doc_deep_inside() -> None:
    """Given an enum inside a union inside an array without a doc, when walked,
    then it is reported, so the test above can fail."""
    schema = {
        "type": "record",
        "name": "R",
        "doc": "r",
        "fields": [
            {
                "name": "xs",
                "doc": "x",
                "type": {
                    "type": "array",
                    "items": ["null", {"type": "enum", "name": "E", "symbols": ["a"]}],
                },
            }
        ],
    }
    assert _undocumented(schema, "R") == ["R.xs.items"]
