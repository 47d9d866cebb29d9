"""The changelog byte form of a SKU's state: one small main record and sealed pages.

See :mod:`streams.ledger.state` for the layout and why. This module only converts: a
state to the records a write produces (:func:`records`), and a main record plus its pages
back to the state's parts (:func:`decode`). Pure: pages are read through a callable.
"""

from __future__ import annotations

import struct
import sys
from array import array
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

import orjson

__all__ = [
    "IDS_PAGE",
    "JOURNAL_PAGE",
    "ORDERS_PAGE",
    "PageReader",
    "Paged",
    "Parts",
    "StateFormatError",
    "decode",
    "encode_main",
    "is_page_key",
    "page_key",
    "records",
]

IDS_PAGE = 32  # event ids per sealed page (8 bytes each, with their arrival hours)
JOURNAL_PAGE = 16  # journal entries per sealed page (24 bytes each)
PAGE_MARK = b"\xff"  # never in a SKU's key: UTF-8 has no 0xFF byte
ORDERS_PAGE = 16  # open orders per sealed page
MAX_ORDERS_PAGE = 63  # a page's closed orders are a bit mask in a JSON integer
IDS = ord("i")
JOURNAL = ord("j")
ORDERS = ord("o")

FORMAT = 4  # 3 and 4 share the layout; 4 may add lots (a location's 8th item, doc[11])
PAGED = (3, FORMAT)  # formats of the paged layout (main records and sealed pages)
_MAGIC = b"SF"
_PAGE_MAGIC = b"SP"
# magic, format, ids per page, entries per page, len(json), open runs,
# ids_base, ids_end, journal_base, journal_end
_MAIN = struct.Struct("<2sBBBIHqqqq")
_OLD = struct.Struct("<2sBIII")  # formats 1 and 2: magic, format, len(json), ids, journal
_PAGE = struct.Struct("<2sBBqIH")  # magic, format, kind, first index, entries, runs
_BIG_ENDIAN = sys.byteorder == "big"

Layout = tuple[int, int, int, int, int, int]  # per log: page size, base, end
PageReader = Callable[[bytes], bytes | None]  # a sealed page's bytes by its key
Orders = dict[str, dict[str, int]]  # order id -> location -> units reserved


class StateFormatError(ValueError):
    """Stored bytes are not a stockflow SKU state; the changelog holds foreign or corrupt data."""


class Paged(Protocol):
    """What is stored of a SKU's state (:class:`streams.ledger.state.SkuState`)."""

    sku: str
    ids_ring: array[int]
    ids_marks: list[list[int]]
    ids_base: int
    journal: array[int]
    journal_base: int
    orders: Orders
    order_pages: dict[int, Orders]
    order_pages_next: int

    def structure(self, orders: list[Any]) -> list[Any]:
        """The structured part as JSON values, with ``orders`` as its orders."""
        ...


class Parts(NamedTuple):
    """A stored state read back: the structured part (orders assembled) and the logs."""

    doc: list[Any]
    ids: array[int]
    marks: list[list[int]]
    journal: array[int]
    ids_base: int
    journal_base: int
    order_pages: dict[int, Orders]
    order_pages_next: int


def page_key(key: bytes, kind: int, number: int) -> bytes:
    """Key of a SKU's sealed page: its key, 0xFF, the kind (``i`` or ``j``), the number."""
    return b"%b%b%c%d" % (key, PAGE_MARK, kind, number)


def is_page_key(key: bytes) -> bool:
    """True for a sealed page's key, False for a SKU's main record."""
    return PAGE_MARK in key


# -- writing -----------------------------------------------------------------------------


def _ends(state: Paged) -> tuple[int, int]:
    return state.ids_base + len(state.ids_ring), state.journal_base + len(state.journal) // 3


def _le(values: array[int]) -> bytes:
    if _BIG_ENDIAN:  # pragma: no cover - the format is little-endian everywhere
        values = array(values.typecode, values)
        values.byteswap()
    return values.tobytes()


def _runs(marks: list[list[int]], a: int, b: int, n: int) -> array[int]:
    """Arrival-hour runs (bucket, count)* of the ring's ids at positions ``a`` to ``b``
    (``marks`` covers the ``n`` ids of the ring), read from the newest end."""
    got: list[tuple[int, int]] = []
    end = n
    for bucket, count in reversed(marks):
        start = end - count
        lo, hi = max(start, a), min(end, b)
        if hi > lo:
            got.append((bucket, hi - lo))
        if start <= a:
            break
        end = start
    out: array[int] = array("q")
    for bucket, count in reversed(got):
        out.append(bucket)
        out.append(count)
    return out


def encode_main(state: Paged, ids_page: int = IDS_PAGE, journal_page: int = JOURNAL_PAGE) -> bytes:
    """The main record: header, structured part, then the open pages (ids, their arrival
    runs, journal entries)."""
    ids_end, journal_end = _ends(state)
    a = max(state.ids_base, ids_end - ids_end % ids_page) - state.ids_base
    j = max(state.journal_base, journal_end - journal_end % journal_page) - state.journal_base
    runs = _runs(state.ids_marks, a, len(state.ids_ring), len(state.ids_ring))
    body = orjson.dumps(state.structure(_open_orders(state)))
    head = _MAIN.pack(
        _MAGIC,
        FORMAT,
        ids_page,
        journal_page,
        len(body),
        len(runs) // 2,
        state.ids_base,
        ids_end,
        state.journal_base,
        journal_end,
    )
    return b"".join((head, body, _le(state.ids_ring[a:]), _le(runs), _le(state.journal[j * 3 :])))


def _page(state: Paged, kind: int, number: int, size: int) -> bytes:
    if kind == IDS:
        first = max(number * size, state.ids_base)
        a, b = first - state.ids_base, (number + 1) * size - state.ids_base
        ring = state.ids_ring
        entries, runs = ring[a:b], _runs(state.ids_marks, a, b, len(ring))
        count = len(entries)
    else:
        first = max(number * size, state.journal_base)
        a, b = first - state.journal_base, (number + 1) * size - state.journal_base
        entries, runs = state.journal[a * 3 : b * 3], array("q")
        count = len(entries) // 3
    head = _PAGE.pack(_PAGE_MAGIC, FORMAT, kind, first, count, len(runs) // 2)
    return b"".join((head, _le(entries), _le(runs)))


def _same(a: dict[str, int] | None, b: dict[str, int]) -> bool:
    # equal, and in the same order: the rules walk an order's lines in order
    return a == b and (len(b) == 1 or list(a) == list(b))


def _open_orders(state: Paged) -> list[Any]:
    """The orders part of the main record: [orders in no page, {order of a page: its lines
    now} for those changed since sealed, [[page number, bit i set when the page's i-th
    order is closed], ...], next page number]."""
    orders = state.orders
    if not state.order_pages:  # no page: every order is in the main record
        return [orders, {}, [], state.order_pages_next]
    changed: dict[str, dict[str, int]] = {}
    live: list[list[int]] = []
    paged: set[str] = set()
    for number, content in state.order_pages.items():
        paged.update(content)
        closed = 0
        for i, (order_id, lines) in enumerate(content.items()):
            now = orders.get(order_id)
            if now is None:
                closed |= 1 << i
            elif not _same(now, lines):
                changed[order_id] = now
        live.append([number, closed])
    fresh = {k: v for k, v in orders.items() if k not in paged}
    return [fresh, changed, live, state.order_pages_next]


def _seal_orders(state: Paged, size: int) -> list[int]:
    """Pages to write: a page whose orders are mostly closed is dropped (its open orders
    go back to the main record), and the main record's orders form new pages of ``size``
    orders while there are that many (the rest stay in the main record). Changes
    ``state``'s page bookkeeping only."""
    if not 0 < size <= MAX_ORDERS_PAGE:
        raise ValueError(f"orders per page: 1 to {MAX_ORDERS_PAGE} (a closed-order bit mask)")
    pages, orders = state.order_pages, state.orders
    if not pages and len(orders) < size:  # nothing to drop, too few orders to seal
        return []
    for number, content in list(pages.items()):
        if 2 * sum(order_id in orders for order_id in content) < len(content):
            del pages[number]
    paged = {order_id for content in pages.values() for order_id in content}
    fresh = [k for k in orders if k not in paged]
    sealed = []
    for start in range(0, len(fresh) - size + 1, size):
        number = state.order_pages_next
        pages[number] = {k: dict(orders[k]) for k in fresh[start : start + size]}
        state.order_pages_next = number + 1
        sealed.append(number)
    return sealed


def _orders_page(content: dict[str, dict[str, int]]) -> bytes:
    body = orjson.dumps(content)
    return _PAGE.pack(_PAGE_MAGIC, FORMAT, ORDERS, 0, len(body), 0) + body


def _stored_order_pages(before: bytes | None) -> list[int]:
    if before is None or len(before) < _MAIN.size or before[2] not in PAGED:
        return []
    n_body = _MAIN.unpack_from(before)[4]
    live: list[list[int]] = orjson.loads(before[_MAIN.size : _MAIN.size + n_body])[6][2]
    return [number for number, _ in live]


def _layout(before: bytes | None) -> Layout | None:
    """Page sizes, bases and ends of a stored main record; None when it names no pages."""
    if before is None or len(before) < _MAIN.size or before[2] not in PAGED:
        return None
    _, _, ids_page, journal_page, _, _, ids_base, ids_end, j_base, j_end = _MAIN.unpack_from(before)
    return ids_page, ids_base, ids_end, journal_page, j_base, j_end


def records(
    state: Paged,
    before: bytes | None,
    ids_page: int = IDS_PAGE,
    journal_page: int = JOURNAL_PAGE,
    orders_page: int = ORDERS_PAGE,
) -> list[tuple[bytes, bytes | None]]:
    """What writing ``state`` over the stored main record ``before`` takes, in this order:
    the pages sealed since (each written once), the main record, then a tombstone (None)
    for each stored page that no longer holds a live entry. A reader that sees the main
    record sees its pages; a tombstone lands only after the record that stopped naming it.
    """
    key = state.sku.encode()
    prev = _layout(before)
    ids_end, journal_end = _ends(state)
    new: list[tuple[bytes, bytes | None]] = []
    dead: list[tuple[bytes, bytes | None]] = []
    for kind, size, base, end, stored in (
        (IDS, ids_page, state.ids_base, ids_end, prev and prev[:3]),
        (JOURNAL, journal_page, state.journal_base, journal_end, prev and prev[3:]),
    ):
        lo, hi = base // size, end // size  # live sealed pages: lo <= number < hi
        if not stored:
            fresh, gone = range(lo, hi), range(0)
        elif stored[0] != size:  # written with other page sizes: rewrite them all
            fresh = range(lo, hi)
            gone = range(stored[1] // stored[0], stored[2] // stored[0])
        else:
            done_lo, done_hi = stored[1] // size, stored[2] // size
            if done_lo == lo and done_hi == hi:  # the usual write: no page sealed or dropped
                continue
            fresh, gone = range(max(lo, done_hi), hi), range(done_lo, min(done_hi, lo))
        new.extend((page_key(key, kind, n), _page(state, kind, n, size)) for n in fresh)
        dead.extend((page_key(key, kind, n), None) for n in gone if n not in fresh)
    _seal_orders(state, orders_page)
    # the pages ``before`` names; none when no page was ever sealed (``state`` is ``before``
    # and what was applied since: its page numbering only grows)
    written = set(_stored_order_pages(before)) if state.order_pages_next else set()
    for number, content in state.order_pages.items():
        if number not in written:
            new.append((page_key(key, ORDERS, number), _orders_page(content)))
    dead.extend((page_key(key, ORDERS, n), None) for n in written if n not in state.order_pages)
    return [*new, (key, encode_main(state, ids_page, journal_page)), *dead]


# -- reading -----------------------------------------------------------------------------


def decode(data: bytes, pages: PageReader | None) -> Parts:
    """The state of a main record of format 1 to 4 and of the pages it names."""
    if len(data) < 3 or data[:2] != _MAGIC or data[2] not in (1, 2, *PAGED):
        raise StateFormatError(
            f"not a stockflow SKU state of format 1 to {FORMAT} (starts {data[:3]!r}); "
            "the changelog topic holds foreign data: point the app at its own topic"
        )
    try:
        return _decode_main(data, pages) if data[2] in PAGED else _decode_old(data)
    except StateFormatError:
        raise
    except (ValueError, TypeError, IndexError, KeyError, struct.error) as exc:
        raise StateFormatError(
            f"stockflow SKU state of format {data[2]} with an unreadable body ({exc}); "
            "the changelog record is corrupt"
        ) from None


def _array(typecode: str, data: bytes) -> array[int]:
    values: array[int] = array(typecode)
    values.frombytes(data)
    if _BIG_ENDIAN:  # pragma: no cover
        values.byteswap()
    return values


def _decode_old(data: bytes) -> Parts:
    """Formats 1 and 2: every id and journal entry in the record itself."""
    _, fmt, n_body, n_ids, n_journal = _OLD.unpack_from(data)
    end_body = _OLD.size + n_body
    end_ids = end_body + 8 * n_ids
    if len(data) != end_ids + 8 * n_journal:  # the journal counted in int64s
        raise StateFormatError(f"stockflow SKU state of format {fmt} of a wrong length")
    doc: list[Any] = orjson.loads(data[_OLD.size : end_body])
    ids = _array("Q", data[end_body:end_ids])
    journal = _array("q", data[end_ids:])
    if fmt == 1:  # dedupe was the ring's head: oldest first from there, arrived "at 0"
        ids = ids[doc[3] :] + ids[: doc[3]]
        marks, position = ([[0, len(ids)]] if ids else []), [-1, -1]
    else:
        marks, position = doc[3][0], doc[3][1:]
    doc[3] = position
    return Parts(doc, ids, marks, journal, 0, 0, {}, 0)


def _decode_main(data: bytes, pages: PageReader | None) -> Parts:
    head = _MAIN.unpack_from(data)
    _, _, ids_page, journal_page, n_body, n_runs, ids_base, ids_end, j_base, j_end = head
    if not (ids_page and journal_page and 0 <= ids_base <= ids_end and 0 <= j_base <= j_end):
        raise StateFormatError(f"stockflow SKU state of format {data[2]} with a bad header")
    open_ids = max(ids_base, ids_end - ids_end % ids_page)
    open_journal = max(j_base, j_end - j_end % journal_page)
    end_body = _MAIN.size + n_body
    end_ids = end_body + 8 * (ids_end - open_ids)
    end_runs = end_ids + 16 * n_runs
    if len(data) != end_runs + 24 * (j_end - open_journal):
        raise StateFormatError(f"stockflow SKU state of format {data[2]} of a wrong length")
    doc: list[Any] = orjson.loads(data[_MAIN.size : end_body])
    key = str(doc[0]).encode()
    ids = _Piecewise("Q", 1)
    for n in range(ids_base // ids_page, ids_end // ids_page):
        ids.add_page(_read(pages, key, IDS, n), IDS)
    ids.add(open_ids, _array("Q", data[end_body:end_ids]), _array("q", data[end_ids:end_runs]))
    journal = _Piecewise("q", 3)
    for n in range(j_base // journal_page, j_end // journal_page):
        journal.add_page(_read(pages, key, JOURNAL, n), JOURNAL)
    journal.add(open_journal, _array("q", data[end_runs:]), array("q"))
    ring, marks = ids.since(ids_base)
    entries, _ = journal.since(j_base)
    fresh, changed, live, next_number = doc[6]
    orders: dict[str, dict[str, int]] = {}
    sealed: dict[int, dict[str, dict[str, int]]] = {}
    for number, closed in live:
        content = _orders_of(_read(pages, key, ORDERS, number))
        sealed[number] = content
        for i, (order_id, lines) in enumerate(content.items()):
            if not closed >> i & 1:
                orders[order_id] = dict(lines)
    orders.update(changed)
    orders.update(fresh)
    doc[6] = orders
    return Parts(doc, ring, marks, entries, ids_base, j_base, sealed, next_number)


def _orders_of(data: bytes) -> dict[str, dict[str, int]]:
    magic, fmt, kind, _, size, _ = _PAGE.unpack_from(data)
    if magic != _PAGE_MAGIC or fmt not in PAGED or kind != ORDERS or len(data) != _PAGE.size + size:
        raise StateFormatError("a state page of orders does not decode")
    content: dict[str, dict[str, int]] = orjson.loads(data[_PAGE.size :])
    return content


def _read(pages: PageReader | None, key: bytes, kind: int, number: int) -> bytes:
    name = page_key(key, kind, number)
    if pages is None:
        raise StateFormatError(
            f"sku={key!r}: the state names sealed pages and none were read; "
            "pass the table's get as pages"
        )
    value = pages(name)
    if value is None:
        raise StateFormatError(
            f"sku={key!r}: page {name!r} named by the state is missing from the table; "
            "the changelog lost it (compacted too early, or written by a failed batch)"
        )
    return value


class _Piecewise:
    """Consecutive pieces (sealed pages, then the open page) of one log, assembled."""

    def __init__(self, typecode: str, width: int) -> None:
        self.values: array[int] = array(typecode)
        self.width = width  # ints per entry
        self.first: int | None = None
        self.runs: list[list[int]] = []

    def add_page(self, data: bytes, kind: int) -> None:
        magic, fmt, got, first, count, n_runs = _PAGE.unpack_from(data)
        end = _PAGE.size + 8 * self.width * count
        if (
            magic != _PAGE_MAGIC
            or fmt not in PAGED
            or got != kind
            or len(data) != end + 16 * n_runs
        ):
            raise StateFormatError(f"a state page of kind {chr(kind)} does not decode")
        typecode = self.values.typecode
        self.add(first, _array(typecode, data[_PAGE.size : end]), _array("q", data[end:]))

    def add(self, first: int, values: array[int], runs: array[int]) -> None:
        if self.first is None:
            self.first = first
        elif first != self.first + len(self.values) // self.width:
            raise StateFormatError("state pages are not consecutive")
        self.values.extend(values)
        mine = self.runs
        for i in range(0, len(runs), 2):
            if mine and mine[-1][0] == runs[i]:
                mine[-1][1] += runs[i + 1]
            else:
                mine.append([runs[i], runs[i + 1]])

    def since(self, base: int) -> tuple[array[int], list[list[int]]]:
        """The entries from index ``base`` on, and their runs."""
        drop = base - (self.first if self.first is not None else base)
        if drop < 0 or drop * self.width > len(self.values):
            raise StateFormatError("state pages do not reach the state's first entry")
        del self.values[: drop * self.width]
        runs = self.runs
        while drop and runs:
            if runs[0][1] <= drop:
                drop -= runs.pop(0)[1]
            else:
                runs[0][1] -= drop
                drop = 0
        return self.values, runs
