"""Avro binary bodies written and read by code specialised from each schema.

fastavro's ``schemaless_writer``/``schemaless_reader`` walk the parsed schema for every
record (a dictionary lookup and a call per field, a validation pass per union): about
7 µs for a ``StockLevel`` and 12-15 µs for a ``StockMovement`` on the ledger's machine, a
sixth of the worker's time per event. Here each record schema becomes one Python function
with every field's encoding written out in line (built once from the schema's text, then
``exec``-compiled): a few µs per record.

These functions only take the common, unambiguous path, and give it up (:class:`UnfitError`,
or any exception) on anything else: a value of another Python type than the one the
schema's type is written from (``bool`` for a long, ``int`` for a double, a tuple for a
union), a key the schema does not have, a value out of range, bytes that are not what
their schema says. The codec (:mod:`schemas.codec`) then does what it did before, through
fastavro, so results and errors stay fastavro's: the bytes written are fastavro's bytes
(``tests/unit/test_specialised_codec.py`` checks every schema in ``schemas/`` and
``schemas/history/`` against fastavro, writing and reading), and a record or body
fastavro refuses is still refused with the same reason.

The reader reads a body with the schema it was written with (no schema resolution): a
record written by an older version of a schema is read by fastavro with both schemas.
A schema with a construct this module does not specialise (a union whose branches one
Python type could fit twice, a ``bytes`` or ``fixed`` default) gets no function: fastavro
does all of it.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

Writer = Callable[[dict[str, Any], bytes], bytes]  # (record, header) -> header + body
Reader = Callable[[bytes, int], tuple[dict[str, Any], int]]

PRIMITIVES = ("null", "boolean", "int", "long", "float", "double", "bytes", "string")
INT_MIN, INT_MAX = -(1 << 31), (1 << 31) - 1
LONG_MIN, LONG_MAX = -(1 << 63), (1 << 63) - 1
_MAX_VARINT_BYTES = 10
# the Python type a value of each Avro type is written from, on the specialised path
_PYTYPE = {
    "null": "NoneType",
    "boolean": "bool",
    "int": "int",
    "long": "int",
    "float": "float",
    "double": "float",
    "bytes": "bytes",
    "string": "str",
    "enum": "str",
    "fixed": "bytes",
    "array": "list",
    "map": "dict",
    "record": "dict",
}


class UnfitError(ValueError):
    """The specialised path does not take this record or body: fastavro does."""


class UnsupportedError(ValueError):
    """A schema construct this module does not specialise (the schema gets no function)."""


def _write_long(buf: bytearray, n: int) -> None:
    if not LONG_MIN <= n <= LONG_MAX:
        raise UnfitError("long out of range")
    z = (n << 1) ^ (n >> 63)  # zigzag
    while z > 0x7F:
        buf.append((z & 0x7F) | 0x80)
        z >>= 7
    buf.append(z)


def _read_long(data: bytes, pos: int) -> tuple[int, int]:
    """A zigzag varint whose first byte (at ``pos``) has its high bit set."""
    z = 0
    shift = 0
    for i in range(_MAX_VARINT_BYTES):
        b = data[pos + i]
        z |= (b & 0x7F) << shift
        if b < 0x80:
            if z >> 64:
                raise UnfitError("varint beyond 64 bits")
            return (z >> 1) ^ -(z & 1), pos + i + 1
        shift += 7
    raise UnfitError("varint longer than 10 bytes")


_FLOAT = struct.Struct("<f")
_DOUBLE = struct.Struct("<d")


class _Builder:
    """Generates the source of one module of functions: one writer and one reader per
    named record, enum and fixed, the top-level record's named ``write_top``/``read_top``."""

    def __init__(self) -> None:
        self.named: dict[str, dict[str, Any]] = {}
        self.funcs: dict[str, str] = {}  # named type -> function suffix
        self.lines: list[str] = []
        self.consts: dict[str, Any] = {}
        self._n = 0

    def fresh(self, prefix: str) -> str:
        self._n += 1
        return f"{prefix}{self._n}"

    def const(self, value: Any) -> str:
        name = self.fresh("K")
        self.consts[name] = value
        return name

    def resolve(self, schema: Any) -> Any:
        """A schema with a named type reference replaced by its definition."""
        if isinstance(schema, str) and schema not in PRIMITIVES:
            if schema not in self.named:
                raise UnsupportedError(f"unknown named type {schema!r}")
            return self.named[schema]
        return schema

    def collect(self, schema: Any) -> None:
        """Remember every named type's definition (fastavro inlines each once)."""
        if isinstance(schema, list):
            for branch in schema:
                self.collect(branch)
        elif isinstance(schema, dict):
            kind = schema.get("type")
            if kind in ("record", "error", "enum", "fixed"):
                self.named[schema["name"]] = schema
            if kind in ("record", "error"):
                for field in schema["fields"]:
                    self.collect(field["type"])
            elif kind == "array":
                self.collect(schema["items"])
            elif kind == "map":
                self.collect(schema["values"])
            elif isinstance(kind, (dict, list)):
                self.collect(kind)

    def kind(self, schema: Any) -> str:
        schema = self.resolve(schema)
        if isinstance(schema, str):
            return schema
        if isinstance(schema, list):
            return "union"
        kind = schema["type"]
        if isinstance(kind, (dict, list)) or kind in self.named:
            return self.kind(kind)
        return "record" if kind == "error" else str(kind)

    def body(self, schema: Any) -> Any:
        schema = self.resolve(schema)
        if isinstance(schema, dict) and (
            isinstance(schema["type"], (dict, list)) or schema["type"] in self.named
        ):
            return self.body(schema["type"])
        return schema

    # ---- writing: lines appending the encoding of the value in variable ``v`` to ``b``

    def write(self, schema: Any, v: str, out: list[str], ind: str) -> None:
        kind = self.kind(schema)
        s = self.body(schema)
        if kind == "null":
            out.append(f"{ind}if {v} is not None: raise UnfitError")
        elif kind == "boolean":
            out.append(f"{ind}if {v} is True: b.append(1)")
            out.append(f"{ind}elif {v} is False: b.append(0)")
            out.append(f"{ind}else: raise UnfitError")
        elif kind in ("int", "long"):
            low, high = (INT_MIN, INT_MAX) if kind == "int" else (LONG_MIN, LONG_MAX)
            out.append(f"{ind}if {v}.__class__ is not int: raise UnfitError")
            out.append(f"{ind}if -64 <= {v} < 64: b.append(({v} << 1) ^ ({v} >> 63))")
            if kind == "int":
                out.append(f"{ind}elif not {low} <= {v} <= {high}: raise UnfitError")
            out.append(f"{ind}else: wl(b, {v})")
        elif kind in ("float", "double"):
            packer = "pf" if kind == "float" else "pd"
            out.append(f"{ind}if {v}.__class__ is not float: raise UnfitError")
            out.append(f"{ind}b += {packer}({v})")
        elif kind in ("string", "bytes"):
            e = self.fresh("e")
            n = self.fresh("n")
            cls = "str" if kind == "string" else "bytes"
            out.append(f"{ind}if {v}.__class__ is not {cls}: raise UnfitError")
            out.append(f"{ind}{e} = {v}.encode()" if kind == "string" else f"{ind}{e} = {v}")
            out.append(f"{ind}{n} = len({e})")
            out.append(f"{ind}if {n} < 64: b.append({n} << 1)")
            out.append(f"{ind}else: wl(b, {n})")
            out.append(f"{ind}b += {e}")
        elif kind == "enum":
            encoded = {}
            for i, symbol in enumerate(s["symbols"]):
                buf = bytearray()
                _write_long(buf, i)
                encoded[symbol] = bytes(buf)
            out.append(f"{ind}if {v}.__class__ is not str: raise UnfitError")
            out.append(f"{ind}b += {self.const(encoded)}[{v}]")
        elif kind == "fixed":
            size = int(s["size"])
            out.append(f"{ind}if {v}.__class__ is not bytes or len({v}) != {size}:")
            out.append(f"{ind}    raise UnfitError")
            out.append(f"{ind}b += {v}")
        elif kind == "array":
            item = self.fresh("x")
            out.append(f"{ind}if {v}.__class__ is not list: raise UnfitError")
            out.append(f"{ind}if {v}:")
            out.append(f"{ind}    wl(b, len({v}))")
            out.append(f"{ind}    for {item} in {v}:")
            self.write(s["items"], item, out, ind + "        ")
            out.append(f"{ind}b.append(0)")
        elif kind == "map":
            key, item = self.fresh("k"), self.fresh("x")
            out.append(f"{ind}if {v}.__class__ is not dict: raise UnfitError")
            out.append(f"{ind}if {v}:")
            out.append(f"{ind}    wl(b, len({v}))")
            out.append(f"{ind}    for {key}, {item} in {v}.items():")
            self.write("string", key, out, ind + "        ")
            self.write(s["values"], item, out, ind + "        ")
            out.append(f"{ind}b.append(0)")
        elif kind == "record":
            out.append(f"{ind}w_{self.function(s)}(b, {v})")
        elif kind == "union":
            self.write_union(s, v, out, ind)
        else:
            raise UnsupportedError(f"type {kind!r}")

    def write_union(self, branches: list[Any], v: str, out: list[str], ind: str) -> None:
        seen: set[str] = set()
        first = True
        for index, branch in enumerate(branches):
            kind = self.kind(branch)
            pytype = _PYTYPE.get(kind)
            if pytype is None or pytype in seen:
                raise UnsupportedError(f"a union with two branches for one Python type ({kind})")
            seen.add(pytype)
            test = f"{v} is None" if kind == "null" else f"{v}.__class__ is {pytype}"
            out.append(f"{ind}{'if' if first else 'elif'} {test}:")
            tag = f"b.append({index << 1})" if index < 64 else f"wl(b, {index})"
            out.append(f"{ind}    {tag}")
            if kind != "null":
                self.write(branch, v, out, ind + "    ")
            first = False
        out.append(f"{ind}else: raise UnfitError")

    # ---- reading: lines setting variable ``v`` from ``d`` at ``p`` (``p`` moved past it)

    def read_long(self, v: str, out: list[str], ind: str) -> None:
        out.append(f"{ind}{v} = d[p]")
        out.append(f"{ind}if {v} < 128:")
        out.append(f"{ind}    p += 1")
        out.append(f"{ind}    {v} = ({v} >> 1) ^ -({v} & 1)")
        out.append(f"{ind}else: {v}, p = rl(d, p)")

    def read(self, schema: Any, v: str, out: list[str], ind: str) -> None:
        kind = self.kind(schema)
        s = self.body(schema)
        if kind == "null":
            out.append(f"{ind}{v} = None")
        elif kind == "boolean":
            out.append(f"{ind}{v} = d[p]")
            out.append(f"{ind}p += 1")
            out.append(f"{ind}if {v} > 1: raise UnfitError")
            out.append(f"{ind}{v} = {v} == 1")
        elif kind in ("int", "long"):
            self.read_long(v, out, ind)
        elif kind in ("float", "double"):
            size, unpack = (4, "uf") if kind == "float" else (8, "ud")
            out.append(f"{ind}if p + {size} > len(d): raise UnfitError")
            out.append(f"{ind}{v} = {unpack}(d, p)[0]")
            out.append(f"{ind}p += {size}")
        elif kind in ("string", "bytes"):
            n = self.fresh("n")
            self.read_long(n, out, ind)
            out.append(f"{ind}if {n} < 0 or p + {n} > len(d): raise UnfitError")
            decode = ".decode()" if kind == "string" else ""
            out.append(f"{ind}{v} = d[p:p + {n}]{decode}")
            out.append(f"{ind}p += {n}")
        elif kind == "enum":
            symbols = self.const(tuple(s["symbols"]))
            self.read_long(v, out, ind)
            out.append(f"{ind}if not 0 <= {v} < {len(s['symbols'])}: raise UnfitError")
            out.append(f"{ind}{v} = {symbols}[{v}]")
        elif kind == "fixed":
            size = int(s["size"])
            out.append(f"{ind}if p + {size} > len(d): raise UnfitError")
            out.append(f"{ind}{v} = d[p:p + {size}]")
            out.append(f"{ind}p += {size}")
        elif kind in ("array", "map"):
            self.read_blocks(kind, s, v, out, ind)
        elif kind == "record":
            out.append(f"{ind}{v}, p = r_{self.function(s)}(d, p)")
        elif kind == "union":
            index = self.fresh("i")
            self.read_long(index, out, ind)
            for i, branch in enumerate(s):
                out.append(f"{ind}{'if' if i == 0 else 'elif'} {index} == {i}:")
                self.read(branch, v, out, ind + "    ")
            out.append(f"{ind}else: raise UnfitError")
        else:
            raise UnsupportedError(f"type {kind!r}")

    def read_blocks(self, kind: str, s: dict[str, Any], v: str, out: list[str], ind: str) -> None:
        count, item, key = self.fresh("c"), self.fresh("x"), self.fresh("k")
        out.append(f"{ind}{v} = {'[]' if kind == 'array' else '{}'}")
        out.append(f"{ind}while True:")
        self.read_long(count, out, ind + "    ")
        out.append(f"{ind}    if {count} == 0: break")
        # a negative count (a block with its size) is fastavro's to read
        out.append(f"{ind}    if {count} < 0 or {count} > len(d): raise UnfitError")
        out.append(f"{ind}    for _ in range({count}):")
        if kind == "array":
            self.read(s["items"], item, out, ind + "        ")
            out.append(f"{ind}        {v}.append({item})")
        else:
            self.read("string", key, out, ind + "        ")
            self.read(s["values"], item, out, ind + "        ")
            out.append(f"{ind}        {v}[{key}] = {item}")

    # ---- one writer and one reader per record

    def function(self, record: dict[str, Any]) -> str:
        name = record["name"]
        if name in self.funcs:
            return self.funcs[name]
        suffix = self.funcs[name] = str(len(self.funcs))
        fields = record["fields"]
        names = self.const(frozenset(f["name"] for f in fields))
        w = [f"def w_{suffix}(b, r):", f"    if not r.keys() <= {names}: raise UnfitError"]
        values: list[str] = []
        for field in fields:
            v = self.fresh("v")
            values.append(v)
            if "default" in field:
                if self.kind(field["type"]) in ("bytes", "fixed"):
                    raise UnsupportedError("a bytes or fixed default")
                default = self.const(field["default"])
                w.append(f"    {v} = r.get({field['name']!r}, {default})")
            else:
                w.append(f"    {v} = r[{field['name']!r}]")
            self.write(field["type"], v, w, "    ")
        r = [f"def r_{suffix}(d, p):"]
        for field, v in zip(fields, values, strict=True):
            self.read(field["type"], v, r, "    ")
        pairs = ", ".join(f"{f['name']!r}: {v}" for f, v in zip(fields, values, strict=True))
        r.append(f"    return {{{pairs}}}, p")
        self.lines.extend([*w, "", *r, ""])
        return suffix


def specialise(parsed: dict[str, Any]) -> tuple[Writer, Reader] | None:
    """The writer and reader of a fastavro-parsed record schema (logical types stripped),
    or None when the schema has a construct left to fastavro."""
    builder = _Builder()
    try:
        builder.collect(parsed)
        top = builder.function(builder.body(parsed))
    except UnsupportedError:
        return None
    namespace: dict[str, Any] = {
        "UnfitError": UnfitError,
        "wl": _write_long,
        "rl": _read_long,
        "pf": _FLOAT.pack,
        "pd": _DOUBLE.pack,
        "uf": _FLOAT.unpack_from,
        "ud": _DOUBLE.unpack_from,
        **builder.consts,
    }
    source = "\n".join(builder.lines)
    # the source is generated above from the schema's field names (repr-quoted) and types
    exec(compile(source, f"<specialised {parsed['name']}>", "exec"), namespace)  # noqa: S102
    write_record = namespace[f"w_{top}"]
    read_record: Reader = namespace[f"r_{top}"]

    def write(record: dict[str, Any], header: bytes = b"") -> bytes:
        buf = bytearray(header)
        write_record(buf, record)
        return bytes(buf)

    return write, read_record
