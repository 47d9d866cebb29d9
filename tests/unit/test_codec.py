"""The Avro codec without a registry: single-object encoding; bad bytes raise CodecError only."""

from __future__ import annotations

import contextlib
import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.codec import CodecError, codec_for, single_object_codec
from schemas.loader import current_schemas
from streams.kernel.settings import Settings
from tests.unit.schema_samples import SAMPLES

CODEC = single_object_codec()
EVENT = "stockflow.v1.StockEvent"


def test_there_is_a_sample_for_every_schema() -> None:
    """Given the schemas folder, when compared with the samples, then none is untested."""
    assert set(SAMPLES) == set(current_schemas())


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_single_object_encoding_round_trips_every_schema(name: str) -> None:
    """Given a valid record, when encoded and decoded, then the same record comes back,
    framed as C3 01 + the schema's 8-byte fingerprint."""
    data = CODEC.encode(name, SAMPLES[name])
    assert data[:2] == b"\xc3\x01"
    assert data[2:10] == current_schemas()[name].fingerprint
    assert CODEC.decode(data) == (name, SAMPLES[name])
    assert CODEC.decode_as(name.rsplit(".", 1)[1], data) == SAMPLES[name]


def test_times_stay_integers_and_enums_stay_strings() -> None:
    """Given an event with timestamp-millis fields and enums, when decoded,
    then times are plain ints (not datetimes) and enums are str."""
    _, event = CODEC.decode(CODEC.encode("StockEvent", SAMPLES[EVENT]))
    assert type(event["occurred_at"]) is int
    assert type(event["ingested_at"]) is int
    assert type(event["type"]) is str
    assert type(event["disposition"]) is str


def test_the_fingerprint_is_the_published_crc_64_avro_of_the_canonical_form() -> None:
    """Given the Avro spec's test vector, when fingerprinted like our schemas, then it matches:
    the 8 bytes are little-endian."""
    from fastavro.schema import fingerprint

    assert int.from_bytes(bytes.fromhex(fingerprint('"null"', "CRC-64-AVRO")), "little") == (
        7195948357588979594
    )


def test_without_a_registry_url_the_settings_choose_single_object_encoding() -> None:
    """Given settings without STOCKFLOW_SCHEMA_REGISTRY_URL, when a codec is chosen,
    then it writes single-object records."""
    codec = codec_for(Settings(schema_registry_url=""))
    assert codec.encode("Alert", SAMPLES["stockflow.v1.Alert"])[:2] == b"\xc3\x01"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "truncated"),
        (b"\xc3", "truncated"),
        (b"\xc3\x01\x00", "truncated"),
        (b"\x00\x00\x00\x00\x01\x02", "bad_magic"),
        (b'{"sku": "chair"}', "bad_magic"),
        (b"\xc3\x01" + b"\xff" * 8 + b"\x02", "unknown_fingerprint"),
    ],
)
def test_bad_framing_gives_a_reason_the_pipeline_can_dead_letter(data: bytes, reason: str) -> None:
    """Given empty, truncated, wrongly framed or unknown-schema bytes, when decoded,
    then a CodecError with the matching reason is raised."""
    with pytest.raises(CodecError) as caught:
        CODEC.decode(data)
    assert caught.value.reason == reason


def test_a_confluent_framed_record_is_refused_with_a_hint_to_set_the_registry_url() -> None:
    """Given Confluent wire-format bytes, when the single-object codec reads them,
    then bad_magic, and the message says which setting fixes it."""
    with pytest.raises(CodecError, match="STOCKFLOW_SCHEMA_REGISTRY_URL"):
        CODEC.decode(b"\x00\x00\x00\x00\x01\x02")


def test_a_tombstone_is_a_codec_error_not_a_type_error() -> None:
    """Given a None value (a compacted topic's tombstone), when decoded, then reason truncated."""
    with pytest.raises(CodecError) as caught:
        CODEC.decode(None)  # type: ignore[arg-type]
    assert caught.value.reason == "truncated"


def test_every_cut_of_a_valid_record_is_a_codec_error() -> None:
    """Given a valid record cut short at every length, when decoded,
    then CodecError (never EOFError or IndexError), mostly with reason truncated."""
    data = CODEC.encode("StockEvent", SAMPLES[EVENT])
    reasons = []
    for cut in range(len(data)):
        with pytest.raises(CodecError) as caught:
            CODEC.decode(data[:cut])
        reasons.append(caught.value.reason)
    assert set(reasons) <= {"truncated", "invalid_record"}
    assert reasons.count("truncated") > len(reasons) // 2


def test_bytes_left_after_the_record_are_invalid() -> None:
    """Given a valid record with a trailing byte, when decoded, then reason invalid_record."""
    data = CODEC.encode("StockLevel", SAMPLES["stockflow.v1.StockLevel"])
    with pytest.raises(CodecError) as caught:
        CODEC.decode(data + b"\x00")
    assert caught.value.reason == "invalid_record"


def test_a_record_of_another_schema_is_refused_by_decode_as() -> None:
    """Given a StockLevel, when read as a StockEvent, then reason invalid_record naming both."""
    data = CODEC.encode("StockLevel", SAMPLES["stockflow.v1.StockLevel"])
    with pytest.raises(CodecError, match=r"StockEvent.*StockLevel") as caught:
        CODEC.decode_as("StockEvent", data)
    assert caught.value.reason == "invalid_record"


@pytest.mark.parametrize(
    ("change", "value"),
    [
        ("outcome", "maybe"),  # not an enum symbol
        ("qty", "3"),  # string for long
        ("at", dt.datetime(2026, 1, 1, tzinfo=dt.UTC)),  # times are ints, not datetimes
        ("sku", None),  # null for a required string
        ("outcom", "accepted"),  # a typo: unknown field
    ],
)
def test_a_record_that_does_not_fit_its_schema_is_refused_on_encode(
    change: str, value: object
) -> None:
    """Given a Decision with one wrong field, when encoded, then reason invalid_record."""
    record = {**SAMPLES["stockflow.v1.Decision"], change: value}
    with pytest.raises(CodecError) as caught:
        CODEC.encode("Decision", record)
    assert caught.value.reason == "invalid_record"


def test_a_missing_field_with_a_default_is_filled_in_on_encode() -> None:
    """Given an event without its optional fields, when encoded and decoded,
    then they come back at their defaults."""
    event = {"event_id": "e", "type": "sale", "sku": "chair", "occurred_at": 1, "ingested_at": 2}
    _, decoded = CODEC.decode(CODEC.encode("StockEvent", event))
    assert decoded["qty"] == 0
    assert decoded["source"] == "unknown"
    assert decoded["disposition"] is None


def test_an_unknown_schema_name_is_refused_on_encode() -> None:
    """Given a name no .avsc defines, when encoding, then reason unknown_schema listing names."""
    with pytest.raises(CodecError, match=r"stockflow\.v1\.StockEvent") as caught:
        CODEC.encode("StockEvnt", {})
    assert caught.value.reason == "unknown_schema"


@given(st.binary(max_size=200))
def test_random_bytes_never_escape_as_anything_but_codec_error(data: bytes) -> None:
    """Given any bytes at all, when decoded, then either a record or a CodecError."""
    with contextlib.suppress(CodecError):
        CODEC.decode(data)


@given(st.sampled_from(sorted(SAMPLES)), st.binary(max_size=150))
def test_random_bodies_behind_a_valid_header_only_raise_codec_error(name: str, body: bytes) -> None:
    """Given a valid header of any schema followed by random bytes, when decoded,
    then either a record of that schema or a CodecError."""
    header = b"\xc3\x01" + current_schemas()[name].fingerprint
    try:
        decoded_name, _ = CODEC.decode(header + body)
    except CodecError:
        return
    assert decoded_name == name


@given(st.sampled_from(sorted(SAMPLES)), st.data())
def test_flipping_any_byte_of_a_valid_record_only_raises_codec_error(
    name: str, data: st.DataObject
) -> None:
    """Given a valid record with one byte changed, when decoded,
    then either a record or a CodecError."""
    encoded = bytearray(CODEC.encode(name, SAMPLES[name]))
    index = data.draw(st.integers(0, len(encoded) - 1))
    encoded[index] = data.draw(st.integers(0, 255))
    with contextlib.suppress(CodecError):
        CODEC.decode(bytes(encoded))
