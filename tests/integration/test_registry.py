"""The Confluent wire format through a real schema registry (Apicurio, Confluent API)."""

from __future__ import annotations

import io
import json

import fastavro
import pytest
from fastavro.utils import generate_many

from schemas.codec import CodecError, registry_codec
from schemas.loader import Schema, current_schemas, historical_schemas
from schemas.registry import RegistryClient
from tests.unit.schema_samples import SAMPLES

pytestmark = [pytest.mark.integration, pytest.mark.registry]


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_every_schema_registers_and_round_trips_through_the_real_registry(
    registry_url: str, name: str
) -> None:
    """Given the local Apicurio registry, when a record is encoded (registering its schema
    under the subject named after the record) and decoded by a second codec with an empty
    cache, then the record comes back whole, and the id names that schema in the registry."""
    data = registry_codec(registry_url).encode(name, SAMPLES[name])
    assert data[:1] == b"\x00"
    schema_id = int.from_bytes(data[1:5], "big")
    stored = json.loads(RegistryClient(registry_url).schema_by_id(schema_id))
    assert f"{stored['namespace']}.{stored['name']}" == name
    assert registry_codec(registry_url).decode(data) == (name, SAMPLES[name])
    assert registry_codec(registry_url).decode_as(name, data) == SAMPLES[name]


def test_registering_the_same_schema_twice_gives_the_same_id(registry_url: str) -> None:
    """Given a schema already registered, when another codec registers it, then the id is equal."""
    record = SAMPLES["stockflow.v1.StockLevel"]
    first = registry_codec(registry_url).encode("StockLevel", record)
    second = registry_codec(registry_url).encode("StockLevel", record)
    assert first[:5] == second[:5]


def test_preload_registers_every_current_schema(registry_url: str) -> None:
    """Given a fresh codec, when preloaded at start, then the registry answers for all."""
    registry_codec(registry_url).preload()


@pytest.mark.parametrize("old", historical_schemas(), ids=lambda s: s.name)
def test_a_record_of_an_older_registered_version_is_read_with_the_current_schema(
    registry_url: str, old: Schema
) -> None:
    """Given an older producer that registered a historical version and wrote with it,
    when a fresh codec decodes its record, then it is read in the current shape: every
    value written is there, fields added since (in nested records too) with defaults."""
    schema_id = RegistryClient(registry_url).register(old.name, old.json)
    record = next(iter(generate_many(old.parsed, 1)))
    buf = io.BytesIO()
    buf.write(b"\x00" + schema_id.to_bytes(4, "big"))
    fastavro.schemaless_writer(buf, old.parsed, record)
    name, read = registry_codec(registry_url).decode(buf.getvalue())
    assert name == old.name
    assert set(read) == {f["name"] for f in current_schemas()[old.name].raw["fields"]}
    assert _holds(read, record)


def _holds(read: object, written: object) -> bool:
    """``read`` carries everything ``written`` did; records (nested ones too) may have
    gained fields, read with their defaults."""
    if isinstance(written, dict):
        return isinstance(read, dict) and all(
            k in read and _holds(read[k], v) for k, v in written.items()
        )
    if isinstance(written, list):
        return (
            isinstance(read, list)
            and len(read) == len(written)
            and all(_holds(r, w) for r, w in zip(read, written, strict=True))
        )
    return read == written


def test_an_id_the_registry_does_not_know_is_a_codec_error(registry_url: str) -> None:
    """Given an id never registered, when a record claims it, then reason unknown_schema_id."""
    with pytest.raises(CodecError) as caught:
        registry_codec(registry_url).decode(b"\x00\x7f\xff\xff\xf0\x02")
    assert caught.value.reason == "unknown_schema_id"
