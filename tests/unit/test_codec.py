"""The Avro codec: both framings round-trip every schema; bad bytes raise CodecError only."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.codec import CodecError, registry_codec, single_object_codec
from schemas.loader import current_schemas
from tests.unit.fake_registry import fake_registry
from tests.unit.schema_samples import SAMPLES


def test_there_is_a_sample_for_every_schema() -> None:
    """Given the schemas folder, when compared with the samples, then none is untested."""
    assert set(SAMPLES) == set(current_schemas())


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_single_object_encoding_round_trips_every_schema(name: str) -> None:
    """Given a valid record, when encoded and decoded, then the same record comes back,
    framed as C3 01 + the schema's 8-byte fingerprint, times as plain integers."""
    codec = single_object_codec()
    data = codec.encode(name, SAMPLES[name])
    assert data[:2] == b"\xc3\x01"
    assert data[2:10] == current_schemas()[name].fingerprint
    assert codec.decode(data) == (name, SAMPLES[name])
    assert codec.decode_as(name.rsplit(".", 1)[1], data) == SAMPLES[name]


def test_the_fingerprint_is_the_published_crc_64_avro_of_the_canonical_form() -> None:
    """Given the Avro spec's test vector, when fingerprinted like our schemas, then it matches:
    the 8 bytes are little-endian."""
    from fastavro.schema import fingerprint

    assert int.from_bytes(bytes.fromhex(fingerprint('"null"', "CRC-64-AVRO")), "little") == (
        7195948357588979594
    )


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_confluent_framing_round_trips_every_schema_through_a_registry(name: str) -> None:
    """Given a registry, when a record is encoded, then it is 00 + a 4-byte id + body, and a
    second codec with an empty cache decodes it by looking the id up."""
    with fake_registry() as url:
        data = registry_codec(url).encode(name, SAMPLES[name])
        assert data[:1] == b"\x00"
        assert registry_codec(url).decode(data) == (name, SAMPLES[name])


def test_an_unknown_schema_id_is_a_codec_error() -> None:
    """Given a registry without id 999, when a record claims it, then reason unknown_schema_id."""
    with fake_registry() as url, pytest.raises(CodecError) as caught:
        registry_codec(url).decode(b"\x00\x00\x00\x03\xe7\x02")
    assert caught.value.reason == "unknown_schema_id"


def test_an_unreachable_registry_is_a_codec_error_naming_the_url() -> None:
    """Given no registry listening, when encoding, then reason registry_unavailable."""
    with pytest.raises(CodecError) as caught:
        registry_codec("http://127.0.0.1:9").encode(
            "StockLevel", SAMPLES["stockflow.v1.StockLevel"]
        )
    assert caught.value.reason == "registry_unavailable"
    assert "127.0.0.1:9" in str(caught.value)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "truncated"),
        (b"\xc3\x01\x00", "truncated"),
        (b"\x00\x00\x00\x00\x01\x02", "bad_magic"),
        (b"\xc3\x01" + b"\xff" * 8 + b"\x02", "unknown_fingerprint"),
    ],
)
def test_bad_framing_gives_a_reason_the_pipeline_can_dead_letter(data: bytes, reason: str) -> None:
    """Given empty, truncated, wrongly framed or unknown-schema bytes, when decoded,
    then a CodecError with the matching reason is raised."""
    with pytest.raises(CodecError) as caught:
        single_object_codec().decode(data)
    assert caught.value.reason == reason


def test_a_truncated_body_is_a_codec_error() -> None:
    """Given a valid record cut short, when decoded, then CodecError (never EOFError)."""
    codec = single_object_codec()
    data = codec.encode("StockEvent", SAMPLES["stockflow.v1.StockEvent"])
    for cut in range(10, len(data)):
        with pytest.raises(CodecError):
            codec.decode(data[:cut])


def test_a_record_of_another_schema_is_refused_by_decode_as() -> None:
    """Given a StockLevel, when read as a StockEvent, then reason wrong_schema."""
    codec = single_object_codec()
    data = codec.encode("StockLevel", SAMPLES["stockflow.v1.StockLevel"])
    with pytest.raises(CodecError) as caught:
        codec.decode_as("StockEvent", data)
    assert caught.value.reason == "wrong_schema"


def test_a_record_that_does_not_fit_its_schema_is_refused_on_encode() -> None:
    """Given a record missing a required field, when encoded, then reason invalid_record."""
    record = dict(SAMPLES["stockflow.v1.Decision"])
    record["outcome"] = "maybe"
    with pytest.raises(CodecError) as caught:
        single_object_codec().encode("Decision", record)
    assert caught.value.reason == "invalid_record"


@given(st.binary(max_size=200))
def test_random_bytes_never_escape_as_anything_but_codec_error(data: bytes) -> None:
    """Given any bytes at all, when decoded, then either a record or a CodecError."""
    with contextlib.suppress(CodecError):
        single_object_codec().decode(data)


@given(st.binary(min_size=0, max_size=120))
def test_random_bodies_behind_a_valid_header_only_raise_codec_error(body: bytes) -> None:
    """Given a valid StockEvent header followed by random bytes, when decoded,
    then either a record or a CodecError."""
    header = b"\xc3\x01" + current_schemas()["stockflow.v1.StockEvent"].fingerprint
    with contextlib.suppress(CodecError):
        single_object_codec().decode(header + body)
