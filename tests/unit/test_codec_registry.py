"""The Avro codec with a registry: Confluent wire format against an in-process fake registry."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.codec import CodecError, codec_for, registry_codec, single_object_codec
from schemas.loader import current_schemas
from streams.kernel.settings import Settings
from tests.unit.fake_registry import FakeRegistry, fake_registry
from tests.unit.schema_samples import SAMPLES

LEVEL = "stockflow.v1.StockLevel"


@pytest.fixture(scope="module")
def registry() -> Iterator[FakeRegistry]:
    with fake_registry() as fake:
        yield fake


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_confluent_framing_round_trips_every_schema_through_a_registry(
    registry: FakeRegistry, name: str
) -> None:
    """Given a registry, when a record is encoded, then it is 00 + the 4-byte big-endian id the
    registry gave under the subject named after the record, and a second codec with an empty
    cache decodes it by looking the id up."""
    data = registry_codec(registry.url).encode(name, SAMPLES[name])
    schema_id = int.from_bytes(data[1:5], "big")
    assert data[:1] == b"\x00"
    assert schema_id in registry.subjects[name]
    fresh = registry_codec(registry.url)
    assert fresh.decode(data) == (name, SAMPLES[name])
    assert fresh.decode_as(name, data) == SAMPLES[name]


def test_a_codec_registers_each_schema_once_and_then_needs_no_registry() -> None:
    """Given a codec that has encoded a record, when it encodes and decodes many more,
    then it asked the registry once."""
    with fake_registry() as fake:
        codec = registry_codec(fake.url)
        for _ in range(50):
            codec.decode(codec.encode("StockLevel", SAMPLES[LEVEL]))
        assert fake.requests == [("POST", "/subjects/stockflow.v1.StockLevel/versions")]


def test_preload_registers_every_schema_up_front() -> None:
    """Given a fresh codec, when preloaded, then every current schema has a subject."""
    with fake_registry() as fake:
        registry_codec(fake.url).preload()
        assert set(fake.subjects) == set(current_schemas())


def test_the_settings_choose_the_registry_codec_when_a_url_is_set(
    registry: FakeRegistry,
) -> None:
    """Given STOCKFLOW_SCHEMA_REGISTRY_URL, when a codec is chosen, then it writes 00 + id."""
    codec = codec_for(Settings(schema_registry_url=registry.url))
    assert codec.encode("Alert", SAMPLES["stockflow.v1.Alert"])[:1] == b"\x00"


def test_the_registry_codec_still_reads_single_object_records(registry: FakeRegistry) -> None:
    """Given a topic written before the registry was switched on, when the registry codec
    reads its single-object records, then they decode without asking the registry."""
    data = single_object_codec().encode("StockLevel", SAMPLES[LEVEL])
    assert registry_codec(registry.url).decode(data) == (LEVEL, SAMPLES[LEVEL])


def test_an_unknown_schema_id_is_a_codec_error_and_asked_once(registry: FakeRegistry) -> None:
    """Given a registry without id 999, when records claim it again and again,
    then reason unknown_schema_id, and the registry is asked only once for a while."""
    codec = registry_codec(registry.url)
    before = len(registry.requests)
    for _ in range(5):
        with pytest.raises(CodecError) as caught:
            codec.decode(b"\x00\x00\x00\x03\xe7\x02")
        assert caught.value.reason == "unknown_schema_id"
    assert len(registry.requests) == before + 1


def test_an_id_of_a_schema_stockflow_does_not_have_is_unknown_schema(
    registry: FakeRegistry,
) -> None:
    """Given an id the registry holds for another application's record, when a record
    claims it, then reason unknown_schema naming that record."""
    other = {"type": "record", "name": "Order", "namespace": "shop", "fields": []}
    schema_id = registry.add(json.dumps(other), "shop.Order")
    with pytest.raises(CodecError, match=r"shop\.Order") as caught:
        registry_codec(registry.url).decode(b"\x00" + schema_id.to_bytes(4, "big"))
    assert caught.value.reason == "unknown_schema"


def test_an_unreachable_registry_is_a_codec_error_naming_the_url() -> None:
    """Given no registry listening, when encoding, then reason registry_unavailable."""
    with pytest.raises(CodecError, match=r"127\.0\.0\.1:9") as caught:
        registry_codec("http://127.0.0.1:9").encode("StockLevel", SAMPLES[LEVEL])
    assert caught.value.reason == "registry_unavailable"


def test_an_unreachable_registry_on_decode_is_registry_unavailable() -> None:
    """Given no registry listening, when a record with an uncached id is decoded,
    then reason registry_unavailable (the record is not declared unknown)."""
    with pytest.raises(CodecError) as caught:
        registry_codec("http://127.0.0.1:9").decode(b"\x00\x00\x00\x00\x07\x02")
    assert caught.value.reason == "registry_unavailable"


def test_a_registry_error_is_registry_unavailable_and_the_next_call_retries() -> None:
    """Given a registry answering 503 once, when encoding, then registry_unavailable;
    when encoding again, then it works (nothing bad was cached)."""
    with fake_registry() as fake:
        codec = registry_codec(fake.url)
        fake.fail_next(1, status=503)
        with pytest.raises(CodecError) as caught:
            codec.encode("StockLevel", SAMPLES[LEVEL])
        assert caught.value.reason == "registry_unavailable"
        assert "503" in str(caught.value)
        assert codec.decode(codec.encode("StockLevel", SAMPLES[LEVEL]))[0] == LEVEL


def test_a_url_without_the_api_path_is_explained() -> None:
    """Given a URL answering HTML (the registry's UI, not its Confluent API), when encoding,
    then registry_unavailable with a hint about the ccompat base path."""
    with fake_registry() as fake:
        fake.fail_next(1, status=200, body="<html>registry UI</html>")
        with pytest.raises(CodecError, match="apis/ccompat/v7") as caught:
            registry_codec(fake.url).encode("StockLevel", SAMPLES[LEVEL])
    assert caught.value.reason == "registry_unavailable"


def test_a_url_that_is_not_http_is_refused_with_the_setting_to_fix() -> None:
    """Given a registry URL without http://, when a codec is made, then registry_unavailable
    naming STOCKFLOW_SCHEMA_REGISTRY_URL."""
    with pytest.raises(CodecError, match="STOCKFLOW_SCHEMA_REGISTRY_URL") as caught:
        registry_codec("localhost:8081")
    assert caught.value.reason == "registry_unavailable"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "truncated"),
        (b"\x00\x00\x01", "truncated"),
        (b"\x07\x00\x00\x00\x01\x02", "bad_magic"),
        (b"\xc3\x01" + b"\xff" * 8, "unknown_fingerprint"),
    ],
)
def test_bad_framing_through_the_registry_codec_gives_a_reason(
    registry: FakeRegistry, data: bytes, reason: str
) -> None:
    """Given empty, short, wrongly framed or unknown-fingerprint bytes, when the registry
    codec decodes them, then CodecError with the matching reason."""
    with pytest.raises(CodecError) as caught:
        registry_codec(registry.url).decode(data)
    assert caught.value.reason == reason


@settings(max_examples=100)
@given(st.binary(max_size=60))
def test_random_confluent_framed_bytes_only_raise_codec_error(
    registry: FakeRegistry, body: bytes
) -> None:
    """Given 00 + the id of a registered StockLevel + random bytes, when decoded,
    then either a StockLevel or a CodecError."""
    codec = registry_codec(registry.url)
    header = codec.encode("StockLevel", SAMPLES[LEVEL])[:5]
    with contextlib.suppress(CodecError):
        assert codec.decode(header + body)[0] == LEVEL


def test_an_unreachable_registry_is_registry_unavailable_and_never_shows_its_password() -> None:
    """Given a registry URL with credentials and nothing listening, when a record is decoded,
    then the error is registry_unavailable (retried by its callers, not dead-lettered) and
    neither its text nor its repr holds the password."""
    from tests.support.ports import free_port

    codec = registry_codec(f"http://stock:s3cr3t-pw@127.0.0.1:{free_port()}/apis/ccompat/v7")
    with pytest.raises(CodecError) as raised:
        codec.decode(b"\x00\x00\x00\x00\x07body")
    assert raised.value.reason == "registry_unavailable"
    assert "s3cr3t-pw" not in str(raised.value) and "s3cr3t-pw" not in repr(raised.value)
    assert "***@127.0.0.1" in str(raised.value)


def test_what_a_batch_needs_from_the_registry_is_resolved_ahead_of_use() -> None:
    """Given a fresh registry codec and records framed with a known and an unknown id, when
    asked, then it needs the registry; after resolve() it needs it no more: encoding and
    decoding the known record ask nothing, and the unknown id is reported by decode."""
    with fake_registry() as fake:
        level = registry_codec(fake.url).encode("StockLevel", SAMPLES[LEVEL])
        unknown = b"\x00" + (999).to_bytes(4, "big") + level[5:]
        codec = registry_codec(fake.url)
        assert codec.needs_registry([level, unknown])
        codec.resolve([level, unknown])
        asked = len(fake.requests)
        assert not codec.needs_registry([level, unknown])
        assert codec.decode(level) == (LEVEL, SAMPLES[LEVEL])
        codec.encode("Alert", SAMPLES["stockflow.v1.Alert"])
        with pytest.raises(CodecError) as err:
            codec.decode(unknown)
        assert err.value.reason == "unknown_schema_id"
        assert len(fake.requests) == asked


def test_resolve_reports_a_registry_that_does_not_answer() -> None:
    """Given a registry that answers 503, when a fresh codec resolves, then
    registry_unavailable, and the codec still needs the registry afterwards."""
    with fake_registry() as fake:
        fake.fail_next(50)
        codec = registry_codec(fake.url)
        with pytest.raises(CodecError) as err:
            codec.resolve([])
        assert err.value.reason == "registry_unavailable"
        assert codec.needs_registry([])


def test_a_single_object_codec_never_needs_a_registry() -> None:
    """Given the single-object codec, when asked about any records, then no registry."""
    codec = single_object_codec()
    assert not codec.needs_registry([codec.encode("StockLevel", SAMPLES[LEVEL]), b"\x00\x00"])
