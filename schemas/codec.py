"""Avro binary records with framing that any downstream consumer can read.

- Without a registry: Avro single-object encoding (spec): ``C3 01`` + the 8-byte
  little-endian CRC-64-AVRO fingerprint of the schema's Parsing Canonical Form + the body.
  Fingerprints of the current schemas and of every version under ``schemas/history/`` are
  known, so a record written by an older producer is read with the current schema.
- With ``STOCKFLOW_SCHEMA_REGISTRY_URL``: the Confluent wire format, ``00`` + 4-byte
  big-endian schema id + the body; ids come from the registry (subject = record full name,
  so one schema is one subject whatever topic carries it). This codec also reads
  single-object records, so topics written before the registry was switched on stay readable.

Every failure to read or write raises :class:`CodecError` with a machine ``reason``, so the
pipeline can dead-letter the record and go on. Times are epoch milliseconds (ints), enums
are ``str``.
"""

from __future__ import annotations

import io
import json
import struct
import time
from collections.abc import Iterable
from functools import cache
from typing import Any, Literal, NamedTuple

import fastavro
from fastavro.read import SchemaResolutionError

from schemas.loader import (
    Schema,
    current_schemas,
    full_name,
    historical_schemas,
    schema_from_json,
)
from schemas.registry import RegistryClient, RegistryError
from schemas.specialised import Reader, Writer, specialise

SINGLE_OBJECT_MAGIC = b"\xc3\x01"
CONFLUENT_MAGIC = b"\x00"
_ID = struct.Struct(">I")
_BYTES = (bytes, bytearray, memoryview)

Reason = Literal[
    "truncated",
    "bad_magic",
    "unknown_fingerprint",
    "unknown_schema_id",
    "invalid_record",
    "unknown_schema",
    "registry_unavailable",
]


class CodecError(ValueError):
    """A record that cannot be encoded or decoded; ``reason`` is the dead-letter reason."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason: Reason = reason


class Reading(NamedTuple):
    """How to read one writer schema: with the current schema of its name as reader."""

    name: str
    writer: Any  # fastavro-parsed writer schema
    reader: Any  # fastavro-parsed current schema, or None when the writer is the current one
    # the writer's specialised reader (:mod:`schemas.specialised`) when it is the current one
    fast: Reader | None = None


@cache
def _specialised(name: str, fingerprint: bytes) -> tuple[Writer, Reader] | None:
    """The specialised writer and reader of the current schema ``name``, made once."""
    schema = current_schemas()[name]
    assert schema.fingerprint == fingerprint
    return specialise(schema.parsed)


def current_reading(schema: Schema) -> Reading:
    """How to read a record written with the current ``schema`` (no resolution)."""
    functions = _specialised(schema.name, schema.fingerprint)
    return Reading(schema.name, schema.parsed, None, functions[1] if functions else None)


class Codec:
    """Shared encode/decode; the framing (header and header lookup) is the subclass's."""

    def __init__(self) -> None:
        self._current = current_schemas()
        self._headers: dict[str, bytes] = {}  # full name -> header, filled on first encode
        # name as given to encode -> (specialised writer, header), or None: fastavro only
        self._writers: dict[str, tuple[Writer, bytes] | None] = {}

    def schema(self, name: str) -> Schema:
        """The current schema of a full or short name; CodecError("unknown_schema") if none."""
        schema = self._current.get(name) or self._current.get(full_name(name))
        if schema is None:
            known = ", ".join(sorted(self._current))
            raise CodecError(
                "unknown_schema",
                f"no schema named {name!r}; known: {known}. Use one of them, or add the "
                ".avsc file to schemas/",
            )
        return schema

    def preload(self) -> None:
        """Compute every header now (registering schemas), so a bad registry shows at start."""
        for schema in self._current.values():
            self._header_of(schema)

    def needs_registry(self, values: Iterable[bytes | None]) -> bool:
        """True when encoding, or decoding one of ``values``, would call a schema registry.

        An asyncio caller then runs :meth:`resolve` in a thread first: a registry call
        blocks for up to its timeout, and must not stop the event loop (heartbeats, web)."""
        return False

    def resolve(self, values: Iterable[bytes | None]) -> None:
        """Fetch now what :meth:`needs_registry` found missing; CodecError
        ``registry_unavailable`` while the registry does not answer. Ids the registry does
        not know are left for :meth:`decode` to report, record by record."""

    def encode(self, schema_name: str, record: dict[str, Any]) -> bytes:
        fast = self._writers.get(schema_name)
        if fast is not None:
            try:
                return fast[0](record, fast[1])
            except Exception:  # noqa: S110 (not the specialised path's: fastavro's, below)
                pass
        schema = self.schema(schema_name)
        header = self._headers.get(schema.name) or self._header_of(schema)
        if schema_name not in self._writers:
            functions = _specialised(schema.name, schema.fingerprint)
            self._writers[schema_name] = (functions[0], header) if functions else None
        buf = io.BytesIO()
        buf.write(header)
        try:
            # strict_allow_default: an unknown key (a typo) is an error, not silently dropped.
            fastavro.schemaless_writer(buf, schema.parsed, record, strict_allow_default=True)
        except Exception as exc:  # fastavro raises many types for a record that does not fit
            raise CodecError(
                "invalid_record",
                f"record does not fit {schema.name}: {exc}; fix the producer so the record "
                f"matches schemas/{schema.name.rsplit('.', 1)[-1]}.avsc (times as epoch-ms ints)",
            ) from None
        return buf.getvalue()

    def decode(self, data: bytes) -> tuple[str, dict[str, Any]]:
        """(full schema name, record), read with the current schema of that name."""
        if not data:
            raise CodecError(
                "truncated",
                "empty value: nothing to decode (a tombstone, or a producer that sent no "
                "bytes); skip tombstones before decoding",
            )
        if not isinstance(data, _BYTES):
            raise CodecError("invalid_record", f"expected bytes, got {type(data).__name__}")
        reading, offset = self._reading(data)
        if reading.fast is not None and data.__class__ is bytes:  # bytes fields as bytes
            try:
                fast, end = reading.fast(data, offset)
                if end == len(data):
                    return reading.name, fast
            except Exception:  # noqa: S110 (not the specialised path's: fastavro's, below)
                pass
        buf = io.BytesIO(data)
        buf.seek(offset)
        try:
            record = fastavro.schemaless_reader(buf, reading.writer, reading.reader)
        except Exception as exc:  # garbage makes fastavro raise almost anything
            if isinstance(exc, SchemaResolutionError):
                raise CodecError(
                    "invalid_record",
                    f"{reading.name} was written with a version the current schema cannot "
                    f"read: {exc}; keep schema changes compatible (tests/unit/"
                    "test_schema_evolution.py checks the versions in schemas/history/)",
                ) from None
            if isinstance(exc, EOFError) or buf.tell() >= len(data):
                raise CodecError(
                    "truncated",
                    f"{reading.name} body ends early ({len(data)} bytes): the record was cut "
                    "in transit or by the producer; dead-letter it",
                ) from None
            raise CodecError(
                "invalid_record",
                f"{reading.name} body unreadable at byte {buf.tell()}: {exc!r}; the bytes are "
                "not what their header says (corrupt, or framed by another tool)",
            ) from None
        if buf.tell() != len(data):
            raise CodecError(
                "invalid_record",
                f"{reading.name}: {len(data) - buf.tell()} bytes left after the record; the "
                "bytes are not what their header says (corrupt, or framed by another tool)",
            )
        if not isinstance(record, dict):
            raise CodecError("invalid_record", f"{reading.name}: not a record")
        return reading.name, record

    def decode_as(self, schema_name: str, data: bytes) -> dict[str, Any]:
        """The record, which must be of ``schema_name`` (any version of it)."""
        wanted = self.schema(schema_name).name
        name, record = self.decode(data)
        if name != wanted:
            raise CodecError(
                "invalid_record",
                f"expected a {wanted} record, got a {name}: a producer wrote to the wrong "
                "topic; fix that producer",
            )
        return record

    def _header_of(self, schema: Schema) -> bytes:
        header = self._header(schema)
        self._headers[schema.name] = header
        return header

    def _header(self, schema: Schema) -> bytes:
        raise NotImplementedError

    def _reading(self, data: bytes) -> tuple[Reading, int]:
        """How to read ``data`` and where its body starts; CodecError on a bad header."""
        raise NotImplementedError


class SingleObjectCodec(Codec):
    def __init__(self) -> None:
        super().__init__()
        self._by_fingerprint: dict[bytes, Reading] = {}
        for old in historical_schemas():
            new = self._current.get(old.name)
            if new is not None:
                self._by_fingerprint[old.fingerprint] = Reading(old.name, old.parsed, new.parsed)
        for schema in self._current.values():  # current wins on a tie
            self._by_fingerprint[schema.fingerprint] = current_reading(schema)

    def _header(self, schema: Schema) -> bytes:
        return SINGLE_OBJECT_MAGIC + schema.fingerprint

    def _reading(self, data: bytes) -> tuple[Reading, int]:
        if data[:2] != SINGLE_OBJECT_MAGIC[: len(data)]:
            hint = (
                " (a Confluent-framed record? set STOCKFLOW_SCHEMA_REGISTRY_URL)"
                if data[:1] == CONFLUENT_MAGIC
                else ""
            )
            raise CodecError(
                "bad_magic",
                f"starts with {bytes(data[:2]).hex()}, not c301: not Avro single-object "
                f"encoding{hint}",
            )
        if len(data) < 10:
            raise CodecError("truncated", f"{len(data)} bytes: shorter than a single-object header")
        fp = bytes(data[2:10])
        reading = self._by_fingerprint.get(fp)
        if reading is None:
            raise CodecError(
                "unknown_fingerprint",
                f"schema fingerprint {fp.hex()} is neither a schema in schemas/ nor in "
                "schemas/history/: a newer producer? deploy its schema, or keep the old "
                "version in schemas/history/",
            )
        return reading, 10


class RegistryCodec(Codec):
    """Confluent wire format; schema ids from a registry, cached for the process."""

    MISSING_TTL = 30.0  # seconds an unknown id is not asked again: a poison burst is one call

    def __init__(self, client: RegistryClient) -> None:
        super().__init__()
        self.client = client
        self._by_id: dict[int, Reading] = {}
        self._missing: dict[int, float] = {}  # unknown id -> monotonic time to ask again
        self._single_object = SingleObjectCodec()

    def needs_registry(self, values: Iterable[bytes | None]) -> bool:
        if len(self._headers) < len(self._current):
            return True
        return bool(self._unfetched(values))

    def resolve(self, values: Iterable[bytes | None]) -> None:
        for schema in self._current.values():
            if schema.name not in self._headers:
                self._header_of(schema)
        for schema_id in self._unfetched(values):
            try:
                self._fetch(schema_id)
            except CodecError as exc:
                if exc.reason == "registry_unavailable":
                    raise

    def _unfetched(self, values: Iterable[bytes | None]) -> set[int]:
        """Schema ids of Confluent-framed ``values`` neither cached nor known to be missing."""
        now = time.monotonic()
        ids: set[int] = set()
        for data in values:
            if data and data[:1] == CONFLUENT_MAGIC and len(data) >= 5:
                (schema_id,) = _ID.unpack_from(data, 1)
                if schema_id not in self._by_id and self._missing.get(schema_id, 0.0) <= now:
                    ids.add(schema_id)
        return ids

    def _header(self, schema: Schema) -> bytes:
        try:
            schema_id = self.client.register(schema.name, schema.json)
        except RegistryError as exc:
            raise CodecError("registry_unavailable", str(exc)) from None
        self._by_id[schema_id] = current_reading(schema)
        return CONFLUENT_MAGIC + _ID.pack(schema_id)

    def _reading(self, data: bytes) -> tuple[Reading, int]:
        if data[:1] == SINGLE_OBJECT_MAGIC[:1]:
            return self._single_object._reading(data)
        if data[:1] != CONFLUENT_MAGIC:
            raise CodecError(
                "bad_magic",
                f"starts with {bytes(data[:1]).hex()}, not 00 (Confluent) nor c301 "
                "(single-object): not a stockflow Avro record",
            )
        if len(data) < 5:
            raise CodecError("truncated", f"{len(data)} bytes: shorter than a Confluent header")
        (schema_id,) = _ID.unpack_from(data, 1)
        reading = self._by_id.get(schema_id)
        return (reading or self._fetch(schema_id)), 5

    def _fetch(self, schema_id: int) -> Reading:
        if self._missing.get(schema_id, 0.0) > time.monotonic():
            raise self._unknown_id(schema_id)
        try:
            text = self.client.schema_by_id(schema_id)
        except RegistryError as exc:
            if exc.status == 404:
                self._missing[schema_id] = time.monotonic() + self.MISSING_TTL
                raise self._unknown_id(schema_id) from None
            raise CodecError("registry_unavailable", str(exc)) from None
        try:
            writer = schema_from_json(json.loads(text), f"registry id {schema_id}")
        except ValueError as exc:
            raise CodecError(
                "unknown_schema",
                f"registry id {schema_id} holds a schema this codec cannot use: {exc}",
            ) from None
        current = self._current.get(writer.name)
        if current is None:
            raise CodecError(
                "unknown_schema",
                f"registry id {schema_id} is {writer.name}, which schemas/ does not have: "
                "a record of another application, or a schema this version has dropped",
            )
        if writer.fingerprint == current.fingerprint:  # the common case: no resolution
            reading = current_reading(current)
        else:
            reading = Reading(current.name, writer.parsed, current.parsed)
        self._by_id[schema_id] = reading
        return reading

    def _unknown_id(self, schema_id: int) -> CodecError:
        return CodecError(
            "unknown_schema_id",
            f"schema id {schema_id} is unknown to the registry at {self.client.shown}: written "
            "against another registry, or the registry lost its data (in-memory storage?)",
        )


def single_object_codec() -> Codec:
    return SingleObjectCodec()


def registry_codec(url: str) -> Codec:
    try:
        return RegistryCodec(RegistryClient(url))
    except RegistryError as exc:
        raise CodecError("registry_unavailable", str(exc)) from None


def codec_for(settings: Any) -> Codec:
    """The registry codec when ``settings.schema_registry_url`` is set, else single-object."""
    url = getattr(settings, "schema_registry_url", "")
    return registry_codec(url) if url else single_object_codec()
