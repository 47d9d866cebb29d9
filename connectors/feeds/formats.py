"""A feed file read into StockEvents, with every bad row kept aside (line, reason, text).

Formats, told apart by their content (never by the file's name):

- CSV snapshot ``sku;location;on_hand;as_of;seq`` (a ``gtin`` column is allowed and ignored):
  one ``stock_count`` per row, ``as_of`` the moment the count is true and ``seq`` its
  sequence, so the ledger rebases on it and re-applies later movements; event id
  ``feeds/count/<location>/<sku>/<seq>/<as_of ms>`` (a sequence that starts again
  another day makes new ids).
- CSV delta ``movement_id;sku;location;delta;reason;occurred_at``: one ``adjustment`` per row
  (signed), event id ``feeds/movement/<movement_id>``, so a movement sent twice counts once.
- EDIFACT (the text starts with ``UNA`` or ``UNB``): INVRPT, DESADV, RECADV
  (``connectors.feeds.edifact``).

The delimiter of a CSV is ``;`` (``,`` is taken when the header has no ``;``). Times are ISO
8601 with a timezone. A row is bad when a field is missing or malformed or when the event it
makes is one the ledger would refuse (``schemas.events.problems``); the other rows are kept.
A file is unreadable (``Unreadable``) when its format is not one of these at all.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Mapping
from typing import Any

from connectors.feeds import edifact
from connectors.feeds.rows import SOURCE, BadRow, Parsed, Unreadable
from schemas.events import stock_event
from schemas.times import now_ms, parse_time_ms

SNAPSHOT = ("sku", "location", "on_hand", "as_of", "seq")
DELTA = ("movement_id", "sku", "location", "delta", "reason", "occurred_at")
OPTIONAL = frozenset({"gtin"})


def read(data: bytes, *, locations: Mapping[str, str] | None = None) -> Parsed:
    """The events and bad rows of one feed file; Unreadable when it is no known format.

    ``locations`` maps a code found in the file (an EDIFACT GLN) to a stockflow location."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise Unreadable(
            f"not UTF-8 text (byte {exc.start}); feeds are UTF-8 CSV or EDIFACT"
        ) from None
    head = text.lstrip()
    if head.startswith(("UNA", "UNB")):
        return edifact.read(head, locations or {})
    return read_csv(text)


def read_csv(text: str) -> Parsed:
    lines = text.splitlines()
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None:
        raise Unreadable("the file is empty; a CSV feed starts with its header line")
    delimiter = ";" if ";" in lines[first] or "," not in lines[first] else ","
    header = [name.strip().lower() for name in lines[first].split(delimiter)]
    make: Callable[[dict[str, str], int], dict[str, Any]]
    if _matches(header, SNAPSHOT):
        kind, make = "snapshot", _count
    elif _matches(header, DELTA):
        kind, make = "delta", _movement
    else:
        raise Unreadable(
            f"line {first + 1}: header {';'.join(header)!r} is neither a snapshot "
            f"({';'.join(SNAPSHOT)}) nor a delta ({';'.join(DELTA)})"
        )
    out = Parsed(kind)
    now = now_ms()
    for number in range(first + 2, len(lines) + 1):
        raw = lines[number - 1]
        if not raw.strip():
            continue
        out.rows += 1
        values = next(csv.reader(io.StringIO(raw), delimiter=delimiter))
        if len(values) != len(header):
            out.bad.append(
                BadRow(
                    number,
                    "columns",
                    f"{len(values)} fields where the header has {len(header)}",
                    raw,
                )
            )
            continue
        row = {name: value.strip() for name, value in zip(header, values, strict=True)}
        try:
            event = make(row, now)
        except ValueError as exc:
            name, _, why = str(exc).partition(": ")
            out.bad.append(BadRow(number, f"bad_{name}", f"{name}: {why}", raw))
            continue
        out.keep(number, raw, event)
    return out


def _matches(header: list[str], wanted: tuple[str, ...]) -> bool:
    return set(wanted) <= set(header) and set(header) <= set(wanted) | OPTIONAL


def _required(row: dict[str, str], name: str) -> str:
    value = row[name]
    if not value:
        raise ValueError(f"{name}: empty")
    if "/" in value and name in ("sku", "location", "movement_id"):
        raise ValueError(f"{name}: {value!r} contains '/'")  # the event id's separator
    return value


def _int(row: dict[str, str], name: str) -> int:
    value = _required(row, name)
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{name}: {value!r} is not a whole number") from None


def _count(row: dict[str, str], now: int) -> dict[str, Any]:
    sku, location = _required(row, "sku"), _required(row, "location")
    as_of = parse_time_ms(_required(row, "as_of"), "as_of")
    seq = _int(row, "seq")
    return stock_event(
        "stock_count",
        sku,
        f"feeds/count/{location}/{sku}/{seq}/{as_of}",
        as_of,
        ingested_at=now,
        qty=_int(row, "on_hand"),
        location=location,
        as_of=as_of,
        source=SOURCE,
        source_seq=seq,
    )


def _movement(row: dict[str, str], now: int) -> dict[str, Any]:
    movement = _required(row, "movement_id")
    sku, location = _required(row, "sku"), _required(row, "location")
    return stock_event(
        "adjustment",
        sku,
        f"feeds/movement/{movement}",
        parse_time_ms(_required(row, "occurred_at"), "occurred_at"),
        ingested_at=now,
        qty=_int(row, "delta"),
        location=location,
        reason=row["reason"] or None,
        source=SOURCE,
        source_ref=movement,
    )
