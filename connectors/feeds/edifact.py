"""EANCOM INVRPT, DESADV and RECADV read with pydifact into StockEvents.

Per message (``UNH`` ... ``UNT``): ``BGM`` gives the document number, ``DTM+137`` (or
``DTM+366``, the report date, for INVRPT) its time, ``RFF+ON`` the purchase order, ``LOC`` or
``NAD+DP``/``NAD+ST`` the place. Per item: ``LIN+n++<GTIN>:SRV``; a ``PIA+1+<sku>:IN`` (the
buyer's item number, as stockflow's own ORDERS carry it) names the SKU, else the GTIN is the
SKU. A ``LOC`` after a ``LIN`` is the place of the quantities that follow it.

- INVRPT ``QTY+145`` (actual stock) → ``stock_count`` at the place, as of the report time
  (also its sequence); id ``feeds/invrpt/<doc>/<place>/<sku>`` (the report time when
  ``BGM`` has no number).
- DESADV ``QTY+12`` (despatched) → ``purchase_ordered`` at the destination: ``incoming``
  until the goods are received; source_ref the purchase order (else the DESADV number); id
  ``feeds/desadv/<doc>/<line>/<sku>``.
- RECADV ``QTY+194`` (received and accepted; else ``QTY+48``, received) → ``receipt`` at the
  destination, which also lowers ``incoming``; id ``feeds/recadv/<doc>/<line>/<sku>``.

Places are mapped through ``locations`` (code → stockflow location), else used as they are.
Bad segments (a quantity that is not a whole number, a quantity before any ``LIN`` or of an
item without an id, a message without a date) are bad rows with the segment's line in the
file; other messages are skipped.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydifact.exceptions import EDISyntaxError, MissingImplementationWarning
from pydifact.parser import Parser
from pydifact.segmentcollection import Interchange
from pydifact.segments import Segment

from connectors.feeds.rows import SOURCE, BadRow, Parsed, Unreadable
from schemas.events import stock_event
from schemas.times import now_ms

KINDS = {"INVRPT": "invrpt", "DESADV": "desadv", "RECADV": "recadv"}
HEADER_PLACES = ("DP", "ST")  # NAD parties that are the place of delivery


def read(text: str, locations: Mapping[str, str]) -> Parsed:
    try:
        with warnings.catch_warnings():
            # pydifact ships no segment tables for most directories and says so per segment
            warnings.simplefilter("ignore", MissingImplementationWarning)
            segments = list(Parser().parse(text))  # UNA (when present), UNB, ..., UNZ
            Interchange.from_segments(iter(segments))  # checks the UNB header
    except (EDISyntaxError, ValueError, IndexError, AssertionError) as exc:
        raise Unreadable(f"EDIFACT that pydifact cannot read: {exc}") from None
    lines = _segment_lines(text, len(segments))
    kinds = {_message_type(s) for s in segments if s.tag == "UNH"}
    known = sorted(KINDS[k] for k in kinds if k in KINDS)
    if not known:
        raise Unreadable(
            f"EDIFACT messages {sorted(kinds) or 'none'}; a feed carries INVRPT, DESADV or RECADV"
        )
    out = Parsed("+".join(known))
    reader: _Message | None = None
    for index, segment in enumerate(segments):
        line, raw = lines[index]
        if segment.tag == "UNH":
            kind = KINDS.get(_message_type(segment))
            reader = _Message(kind, locations, out) if kind else None
        elif segment.tag == "UNT":
            if reader is not None:
                reader.flush()
            reader = None
        elif reader is not None:
            reader.take(segment, line, raw)
    return out


def _message_type(unh: Segment) -> str:
    return _part(unh, 1).upper()


def _part(segment: Segment, index: int, sub: int = 0) -> str:
    """Component ``sub`` of element ``index``, or "" when absent."""
    elements = segment.elements
    if index >= len(elements):
        return ""
    value = elements[index]
    if isinstance(value, list):
        return str(value[sub]) if sub < len(value) and value[sub] is not None else ""
    return str(value) if sub == 0 and value is not None else ""


def _segment_lines(text: str, count: int) -> list[tuple[int, str]]:
    """The 1-based line where each segment starts and its text, in pydifact's order (UNA
    first when present): only to report bad rows where they are in the file."""
    release, terminator, start = "?", "'", 0
    found: list[tuple[int, str]] = []
    if text.startswith("UNA") and len(text) >= 9:
        release, terminator = text[6], text[8]
        found.append((1, text[:9]))
        start = 9
    line, i, begun = 1 + text.count("\n", 0, start), start, -1
    begun_line = line
    while i < len(text):
        char = text[i]
        if char == "\n":
            line += 1
        elif begun < 0 and not char.isspace():
            begun, begun_line = i, line
        if char == release and begun >= 0:
            i += 2
            continue
        if char == terminator and begun >= 0:
            found.append((begun_line, text[begun : i + 1]))
            begun = -1
        i += 1
    return (found + [(line, "")] * count)[:count]


def _time_ms(segment: Segment) -> int | None:
    """DTM's time: formats 102 (CCYYMMDD), 203 (CCYYMMDDHHMM), 204 (with seconds), UTC."""
    value, fmt = _part(segment, 0, 1), _part(segment, 0, 2) or "102"
    pattern = {"102": "%Y%m%d", "203": "%Y%m%d%H%M", "204": "%Y%m%d%H%M%S"}.get(fmt)
    if pattern is None:
        return None
    try:
        moment = datetime.strptime(value, pattern).replace(tzinfo=UTC)
    except ValueError:
        return None
    return int(moment.timestamp() * 1000)


class _Message:
    """One message's segments, in order, to events (see the module's mapping)."""

    def __init__(self, kind: str, locations: Mapping[str, str], out: Parsed) -> None:
        self.kind = kind
        self.locations = locations
        self.out = out
        self.doc = ""
        self.at: int | None = None
        self.po = ""
        self.place = ""  # header place
        self.in_lin = False  # after the first LIN: item-level segments
        self.item = ""  # current LIN's id (GTIN) or its PIA SKU
        self.item_line = ""  # LIN's line number
        self.item_place = ""
        self.received: dict[str, tuple[Segment, int, str]] = {}  # RECADV: 194 / 48 of a LIN
        self.now = now_ms()

    def take(self, segment: Segment, line: int, raw: str) -> None:
        tag = segment.tag
        if tag == "BGM":
            self.doc = _part(segment, 1)
        elif tag == "DTM" and _part(segment, 0) in ("137", "366"):
            when = _time_ms(segment)
            if when is not None and (self.at is None or _part(segment, 0) == "366"):
                self.at = when
        elif tag == "RFF" and _part(segment, 0) == "ON":
            self.po = _part(segment, 0, 1)
        elif tag == "NAD" and _part(segment, 0) in HEADER_PLACES and not self.place:
            self.place = _part(segment, 1)
        elif tag == "LOC":
            self.flush()
            if self.in_lin:
                self.item_place = _part(segment, 1)
            else:
                self.place = _part(segment, 1)
        elif tag == "LIN":
            self.flush()
            self.in_lin, self.item_place = True, ""
            self.item, self.item_line = _part(segment, 2), _part(segment, 0)
        elif tag == "PIA" and self.in_lin and _part(segment, 1, 1) == "IN":
            self.item = _part(segment, 1) or self.item
        elif tag == "QTY" and self.kind == "recadv" and _part(segment, 0) in ("194", "48"):
            self.received[_part(segment, 0)] = (segment, line, raw)
        elif tag == "QTY":
            self._quantity(segment, line, raw)

    def flush(self) -> None:
        """A RECADV item's receipt: its accepted quantity (194), else the received one (48)."""
        if self.received:
            self._quantity(*(self.received.get("194") or self.received["48"]))
            self.received.clear()

    def _quantity(self, segment: Segment, line: int, text: str) -> None:
        qualifier = _part(segment, 0)
        wanted = {"invrpt": ("145",), "desadv": ("12",), "recadv": ("194", "48")}[self.kind]
        if qualifier not in wanted:
            return
        self.out.rows += 1
        if not self.in_lin:
            self.out.bad.append(BadRow(line, "qty_before_lin", "QTY: before any LIN", text))
            return
        if not self.item:
            self.out.bad.append(
                BadRow(
                    line,
                    "missing_item",
                    "LIN: no item number (LIN+n++GTIN:SRV) nor PIA+1+sku:IN",
                    text,
                )
            )
            return
        raw = _part(segment, 0, 1)
        try:
            qty = int(raw)
        except ValueError:
            try:
                number = float(raw)
            except ValueError:
                number = 0.5  # not a number at all
            if not number.is_integer():
                self.out.bad.append(
                    BadRow(line, "bad_qty", f"QTY: {raw!r} is not a whole number", text)
                )
                return
            qty = int(number)
        if self.at is None:
            self.out.bad.append(
                BadRow(line, "missing_date", "DTM+137: the message has no date", text)
            )
            return
        place = self.item_place or self.place
        location = self.locations.get(place, place) or None
        self.out.keep(line, text, self._event(qty, location))

    def _event(self, qty: int, location: str | None) -> dict[str, Any]:
        assert self.at is not None
        sku, at = self.item, self.at
        if self.kind == "invrpt":
            return stock_event(
                "stock_count",
                sku,
                f"feeds/invrpt/{self.doc or at}/{location or '-'}/{sku}",
                at,
                ingested_at=self.now,
                qty=qty,
                location=location,
                as_of=at,
                source=SOURCE,
                source_seq=at,
                source_ref=self.doc or None,
            )
        kind = "purchase_ordered" if self.kind == "desadv" else "receipt"
        return stock_event(
            kind,
            sku,
            f"feeds/{self.kind}/{self.doc}/{self.item_line}/{sku}",
            at,
            ingested_at=self.now,
            qty=qty,
            location=location,
            source=SOURCE,
            source_ref=self.po or self.doc or None,
        )
