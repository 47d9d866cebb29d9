"""Avro binary records with framing that any downstream consumer can read.

- Without a registry: Avro single-object encoding (spec): ``C3 01`` + the 8-byte
  little-endian CRC-64-AVRO fingerprint of the schema's Parsing Canonical Form + the body.
  Fingerprints of the current schemas and of every version under ``schemas/history/`` are
  known, so a record written by an older producer is read with the current schema.
- With ``STOCKFLOW_SCHEMA_REGISTRY_URL``: the Confluent wire format, ``00`` + 4-byte
  big-endian schema id + the body; ids come from the registry (subject = record full name).

Every failure to read or write raises :class:`CodecError` with a machine ``reason``, so the
pipeline can dead-letter the record and go on. Times are epoch milliseconds (ints).
"""

from __future__ import annotations

import io
import json
import struct
from typing import Any

import fastavro
from fastavro.read import SchemaResolutionError
from fastavro.schema import fingerprint, to_parsing_canonical_form

from schemas.loader import (
    Schema,
    current_schemas,
    full_name,
    historical_schemas,
    strip_logical_types,
)
from schemas.registry import RegistryClient, RegistryError

SINGLE_OBJECT_MAGIC = b"\xc3\x01"
CONFLUENT_MAGIC = b"\x00"
_ID = struct.Struct(">I")


class CodecError(ValueError):
    """A record that cannot be encoded or decoded; ``reason`` is the dead-letter reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class Codec:
    """Shared encode/decode; framing is the subclass's."""

    def __init__(self) -> None:
        self._current = current_schemas()

    def schema(self, name: str) -> Schema:
        try:
            return self._current[full_name(name)]
        except KeyError:
            known = ", ".join(sorted(self._current))
            raise CodecError(
                "unknown_schema", f"no schema named {name!r}; known: {known}"
            ) from None

    def encode(self, schema_name: str, record: dict[str, Any]) -> bytes:
        schema = self.schema(schema_name)
        buf = io.BytesIO()
        buf.write(self._header(schema))
        try:
            fastavro.schemaless_writer(buf, schema.parsed, record)
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
            raise CodecError(
                "invalid_record", f"record does not fit {schema.name}: {exc}"
            ) from None
        return buf.getvalue()

    def decode(self, data: bytes) -> tuple[str, dict[str, Any]]:
        """(full schema name, record), read with the current schema of that name."""
        writer, offset = self._writer(bytes(data))
        reader = self._current.get(writer.name)
        buf = io.BytesIO(data)
        buf.seek(offset)
        try:
            record = fastavro.schemaless_reader(
                buf,
                writer.parsed,
                reader.parsed if reader is not None and reader is not writer else None,
            )
        except SchemaResolutionError as exc:
            raise CodecError("incompatible_schema", f"{writer.name}: {exc}") from None
        except (
            EOFError,
            ValueError,
            TypeError,
            IndexError,
            KeyError,
            UnicodeDecodeError,
            OverflowError,
            MemoryError,
        ) as exc:
            raise CodecError("truncated", f"{writer.name} body unreadable: {exc!r}") from None
        if buf.tell() != len(data):
            raise CodecError(
                "invalid_record",
                f"{writer.name}: {len(data) - buf.tell()} bytes left after the record",
            )
        if not isinstance(record, dict):
            raise CodecError("invalid_record", f"{writer.name}: not a record")
        return writer.name, record

    def decode_as(self, schema_name: str, data: bytes) -> dict[str, Any]:
        """The record, which must be of ``schema_name`` (any version)."""
        name, record = self.decode(data)
        wanted = full_name(schema_name)
        if name != wanted:
            raise CodecError("wrong_schema", f"expected a {wanted} record, got a {name}")
        return record

    def _header(self, schema: Schema) -> bytes:
        raise NotImplementedError

    def _writer(self, data: bytes) -> tuple[Schema, int]:
        raise NotImplementedError


class SingleObjectCodec(Codec):
    def __init__(self) -> None:
        super().__init__()
        known = [*historical_schemas(), *self._current.values()]  # current wins on a tie
        self._by_fingerprint = {s.fingerprint: s for s in known}

    def _header(self, schema: Schema) -> bytes:
        return SINGLE_OBJECT_MAGIC + schema.fingerprint

    def _writer(self, data: bytes) -> tuple[Schema, int]:
        if len(data) >= 2 and data[:2] != SINGLE_OBJECT_MAGIC:
            raise CodecError(
                "bad_magic",
                f"starts with {data[:2].hex()}, not c301: not Avro single-object encoding "
                "(a Confluent-framed record? set STOCKFLOW_SCHEMA_REGISTRY_URL)",
            )
        if len(data) < 10:
            raise CodecError("truncated", f"{len(data)} bytes: shorter than a single-object header")
        schema = self._by_fingerprint.get(data[2:10])
        if schema is None:
            raise CodecError(
                "unknown_fingerprint",
                f"schema fingerprint {data[2:10].hex()} is not in schemas/ or schemas/history/",
            )
        return schema, 10


class RegistryCodec(Codec):
    """Confluent wire format; schema ids from a registry, cached for the process."""

    def __init__(self, client: RegistryClient) -> None:
        super().__init__()
        self.client = client
        self._ids: dict[str, int] = {}
        self._by_id: dict[int, Schema] = {}

    def _header(self, schema: Schema) -> bytes:
        schema_id = self._ids.get(schema.name)
        if schema_id is None:
            try:
                schema_id = self.client.register(schema.name, schema.json)
            except RegistryError as exc:
                raise CodecError("registry_unavailable", str(exc)) from None
            self._ids[schema.name] = schema_id
            self._by_id[schema_id] = schema
        return CONFLUENT_MAGIC + _ID.pack(schema_id)

    def _writer(self, data: bytes) -> tuple[Schema, int]:
        if len(data) < 5:
            raise CodecError("truncated", f"{len(data)} bytes: shorter than a Confluent header")
        if data[:1] != CONFLUENT_MAGIC:
            raise CodecError(
                "bad_magic", f"starts with {data[:1].hex()}, not 00: not the Confluent wire format"
            )
        (schema_id,) = _ID.unpack_from(data, 1)
        schema = self._by_id.get(schema_id)
        if schema is None:
            schema = self._fetch(schema_id)
        return schema, 5

    def _fetch(self, schema_id: int) -> Schema:
        try:
            text = self.client.schema_by_id(schema_id)
        except RegistryError as exc:
            if exc.status == 404:
                raise CodecError(
                    "unknown_schema_id", f"schema id {schema_id} unknown to the registry"
                ) from None
            raise CodecError("registry_unavailable", str(exc)) from None
        raw = json.loads(text)
        name = full_name(f"{raw.get('namespace', 'stockflow.v1')}.{raw['name']}")
        current = self._current.get(name)
        if current is not None and _same(raw, current):
            self._by_id[schema_id] = current  # read without resolution: the common case
            return current
        schema = Schema(
            name=name,
            source=self.current_source(name),
            raw=raw,
            parsed=fastavro.parse_schema(strip_logical_types(raw), _write_hint=False),
            fingerprint=b"",
        )
        self._by_id[schema_id] = schema
        return schema

    def current_source(self, name: str) -> Any:
        current = self._current.get(name)
        return current.source if current is not None else None


def _same(raw: dict[str, Any], schema: Schema) -> bool:
    canonical = to_parsing_canonical_form(fastavro.parse_schema(raw, _write_hint=False))
    return bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO")) == schema.fingerprint


def single_object_codec() -> Codec:
    return SingleObjectCodec()


def registry_codec(url: str) -> Codec:
    return RegistryCodec(RegistryClient(url))


def codec_for(settings: Any) -> Codec:
    """The registry codec when ``settings.schema_registry_url`` is set, else single-object."""
    url = getattr(settings, "schema_registry_url", "")
    return registry_codec(url) if url else single_object_codec()
