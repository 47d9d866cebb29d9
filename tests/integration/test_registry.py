"""The Confluent wire format through a real schema registry (Apicurio, Confluent API)."""

from __future__ import annotations

import pytest

from schemas.codec import CodecError, registry_codec
from tests.unit.schema_samples import SAMPLES

pytestmark = [pytest.mark.integration, pytest.mark.registry]


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_every_schema_registers_and_round_trips_through_the_real_registry(
    registry_url: str, name: str
) -> None:
    """Given the local Apicurio registry, when a record is encoded (registering its schema)
    and decoded by a second codec with an empty cache, then the record comes back whole."""
    data = registry_codec(registry_url).encode(name, SAMPLES[name])
    assert data[:1] == b"\x00"
    schema_id = int.from_bytes(data[1:5], "big")
    assert schema_id > 0
    assert registry_codec(registry_url).decode(data) == (name, SAMPLES[name])


def test_registering_the_same_schema_twice_gives_the_same_id(registry_url: str) -> None:
    """Given a schema already registered, when another codec registers it, then the id is equal."""
    record = SAMPLES["stockflow.v1.StockLevel"]
    first = registry_codec(registry_url).encode("StockLevel", record)
    second = registry_codec(registry_url).encode("StockLevel", record)
    assert first[:5] == second[:5]


def test_an_id_the_registry_does_not_know_is_a_codec_error(registry_url: str) -> None:
    """Given an id never registered, when a record claims it, then reason unknown_schema_id."""
    with pytest.raises(CodecError) as caught:
        registry_codec(registry_url).decode(b"\x00\x00\x0f\x42\x3f\x02")
    assert caught.value.reason == "unknown_schema_id"
