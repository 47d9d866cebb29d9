"""The specialised Avro writer and reader against fastavro, on every schema and its history."""

from __future__ import annotations

import io
from typing import Any

import fastavro
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.codec import CodecError, single_object_codec
from schemas.loader import Schema, current_schemas, historical_schemas
from schemas.specialised import INT_MAX, INT_MIN, LONG_MAX, LONG_MIN, specialise
from tests.unit.schema_samples import SAMPLES

EVERY_SCHEMA = [*current_schemas().values(), *historical_schemas()]
IDS = [s.source.rsplit("/", 1)[-1] for s in EVERY_SCHEMA]


def _records(parsed: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Records of a fastavro-parsed schema: every type, every union branch, and the fields
    that have a default sometimes left out (the writer fills them in)."""
    named: dict[str, Any] = {}

    def of(schema: Any) -> st.SearchStrategy[Any]:
        if isinstance(schema, list):
            return st.one_of([of(branch) for branch in schema])
        if isinstance(schema, str):
            if schema in named:
                return of(named[schema])
            return {
                "null": st.none(),
                "boolean": st.booleans(),
                "int": st.integers(INT_MIN, INT_MAX),
                "long": st.one_of(st.integers(-70, 70), st.integers(LONG_MIN, LONG_MAX)),
                "float": st.floats(width=32, allow_nan=False),
                "double": st.floats(allow_nan=False),
                "bytes": st.binary(max_size=70),
                "string": st.text(max_size=70),
            }[schema]
        kind = schema["type"]
        if kind in ("record", "enum", "fixed"):
            named[schema["name"]] = schema
        if kind == "record":
            required = {f["name"]: of(f["type"]) for f in schema["fields"] if "default" not in f}
            optional = {f["name"]: of(f["type"]) for f in schema["fields"] if "default" in f}
            return st.fixed_dictionaries(required, optional=optional)
        if kind == "enum":
            return st.sampled_from(schema["symbols"])
        if kind == "fixed":
            return st.binary(min_size=schema["size"], max_size=schema["size"])
        if kind == "array":
            return st.lists(of(schema["items"]), max_size=3)
        if kind == "map":
            return st.dictionaries(st.text(max_size=12), of(schema["values"]), max_size=3)
        return of(kind)

    return of(parsed)


def _fastavro_bytes(schema: Schema, record: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, schema.parsed, record, strict_allow_default=True)
    return buf.getvalue()


def _fastavro_record(schema: Schema, body: bytes) -> Any:
    return fastavro.schemaless_reader(io.BytesIO(body), schema.parsed, None)


@pytest.mark.parametrize("schema", EVERY_SCHEMA, ids=IDS)
def test_every_schema_and_every_earlier_version_is_specialised(schema: Schema) -> None:
    """Given a schema of schemas/ or schemas/history/
    When it is specialised
    Then it gets a writer and a reader (no construct of ours is left to fastavro alone)."""
    assert specialise(schema.parsed) is not None


@pytest.mark.parametrize("schema", EVERY_SCHEMA, ids=IDS)
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_the_specialised_writer_and_reader_agree_with_fastavro_byte_for_byte(
    schema: Schema, data: st.DataObject
) -> None:
    """Given any record of a schema (each version of each schema), some defaulted fields left out
    When the specialised writer writes it and the specialised reader reads it back
    Then the bytes are fastavro's, and the record read is fastavro's reading of those bytes."""
    functions = specialise(schema.parsed)
    assert functions is not None
    write, read = functions
    record = data.draw(_records(schema.parsed))
    expected = _fastavro_bytes(schema, record)
    assert write(record) == expected
    assert write(record, b"\xc3\x01header") == b"\xc3\x01header" + expected
    read_back, end = read(b"xy" + expected, 2)
    assert end == len(expected) + 2
    assert read_back == _fastavro_record(schema, expected)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_the_codec_writes_fastavros_bytes_for_every_sample(name: str) -> None:
    """Given the sample record of each schema
    When the codec encodes it (through the specialised writer)
    Then the body is fastavro's and decoding gives the record back."""
    codec = single_object_codec()
    encoded = codec.encode(name, SAMPLES[name])
    assert encoded[10:] == _fastavro_bytes(codec.schema(name), SAMPLES[name])
    assert codec.decode(encoded) == (name, SAMPLES[name])


def test_a_record_the_specialised_writer_does_not_take_is_written_by_fastavro() -> None:
    """Given a movement whose quantity is a bool (fastavro writes True as the long 1) and
    one whose channel is a tuple in fastavro's union notation
    When the codec encodes them
    Then their bytes are fastavro's, not an error."""
    codec = single_object_codec()
    schema = codec.schema("StockMovement")
    movement = dict(SAMPLES[schema.name], delta_on_hand=True)
    assert codec.encode(schema.name, movement)[10:] == _fastavro_bytes(schema, movement)
    tagged = dict(SAMPLES[schema.name], channel=("string", "shopify"))
    assert codec.encode(schema.name, tagged) == codec.encode(schema.name, SAMPLES[schema.name])


@pytest.mark.parametrize(
    ("change", "hint"),
    [
        ({"typo": 1}, "more fields"),
        ({"delta_on_hand": LONG_MAX + 1}, ""),
        ({"delta_on_hand": "1"}, ""),
        ({"channel": 7}, ""),
    ],
)
def test_a_record_neither_path_can_write_is_still_refused_with_a_codec_error(
    change: dict[str, Any], hint: str
) -> None:
    """Given a movement with an unknown key, a long out of range, a string for a long, or an
    int in a null-or-string union
    When the codec encodes it
    Then it is refused as invalid_record, as before the specialised writer."""
    codec = single_object_codec()
    with pytest.raises(CodecError) as caught:
        codec.encode("StockMovement", {**SAMPLES["stockflow.v1.StockMovement"], **change})
    assert caught.value.reason == "invalid_record"
    assert hint in str(caught.value)


def test_a_body_the_specialised_reader_does_not_take_is_read_by_fastavro() -> None:
    """Given a level whose changed_channels array is written as one block with its byte size
    (a negative count: valid Avro that no writer of ours makes)
    When the codec decodes it
    Then fastavro reads it: the level comes back whole."""
    codec = single_object_codec()
    level = SAMPLES["stockflow.v1.StockLevel"]
    plain = codec.encode("StockLevel", level)
    blocked = codec.encode("StockLevel", dict(level, changed_channels=[]))
    # the empty array is one 0 byte after sku, version and channels: put a sized block there
    head = codec.encode("StockLevel", dict(level, changed_channels=[], default_quantity=0))
    cut = next(i for i in range(len(blocked)) if blocked[i] != head[i]) - 1
    item = b"\x0eshopify"  # "shopify" with its length
    sized = blocked[:cut] + b"\x01" + bytes([len(item) << 1]) + item + blocked[cut:]
    assert codec.decode(sized) == ("stockflow.v1.StockLevel", level)
    assert codec.decode(plain) == ("stockflow.v1.StockLevel", level)


def test_a_bytearray_is_read_by_fastavro_so_bytes_fields_stay_bytes() -> None:
    """Given a dead letter (its original record is a bytes field) encoded, as a bytearray
    When the codec decodes it
    Then the original comes back as bytes, as fastavro gives it."""
    codec = single_object_codec()
    record = SAMPLES["stockflow.v1.DeadLetter"]
    _, back = codec.decode(bytearray(codec.encode("DeadLetter", record)))
    assert back == record
    assert all(type(v) is not bytearray for v in back.values())
