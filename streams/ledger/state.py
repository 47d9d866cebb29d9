"""Per-SKU ledger state and its compact, deterministic byte form for the Faust changelog.

One :class:`SkuState` value holds everything the rules need for one SKU, including the
dedupe record, so that "applied" and "seen" land in the same changelog write (DESIGN.md,
conflict rule 2: one record, or sealed pages written before the record that names them).
The dedupe record is bounded by time, not by the SKU's life:

* Kafka redeliveries (a replay after a crash or a rebalance) are recognised by input
  position: the partition and offset of ``stock.events.v1`` of the last event applied
  (``in_partition``, ``in_offset``; set by the agent, which knows the position);
* event ids, for producers that send one event twice (webhook redeliveries, polling,
  retried HTTP posts, the hold timer's resend), are remembered for
  ``applied_ids_window_seconds`` (7 days by default) and at most ``applied_ids_limit`` of
  them: 8 bytes per id, their arrival times kept as run lengths per hour.

State is **mutable**: :func:`streams.ledger.rules.apply` changes it in place and returns the
same object, which the agent stores. Nothing is deep-copied per event.

Byte form in the changelog, format 4 (:mod:`streams.ledger.stored`). A hot SKU's window
holds thousands of ids and up to ``journal_limit`` journal entries; rewriting them all on
every write cost ~86 KB per event. Both are append-only logs trimmed at their old end, so
they are cut into **pages** by position: each id (and each journal entry) has a position
counted over the SKU's life (``ids_base`` / ``journal_base`` say where the kept part
starts); page *n* holds positions ``n*size`` to ``(n+1)*size - 1`` (32 ids, 16 journal
entries). The newest, unfilled page is the *open* page and lives in the main record; a
filled page is *sealed*: written once under its own key and never rewritten; a page whose
entries all left the window (time, cap or journal bounds) gets a tombstone. A write of a
SKU is thus: pages sealed since the last write, the main record, then tombstones, in that
order, to the SKU's own partition (:meth:`SkuState.records`)::

    main record, key = the SKU (UTF-8)
      header  <2sBBBIHqqqq  magic b"SF", 4, ids per page, entries per page, len(json),
                            open runs, ids_base, ids_end, journal_base, journal_end
      json    orjson of the structured part (locations, holds, orders, ..., input position)
      ids     uint64 event-id hashes of the open page, oldest first
      runs    int64 pairs (hour start ms, ids) of the open page's arrival times
      journal int64 triples (occurred_at, location index, delta_on_hand) of the open page
    sealed page, key = SKU + 0xFF + b"i", b"j" or b"o" + page number in ASCII digits
      header  <2sBBqIH  magic b"SP", 3 or 4, kind, first position held, entries, runs
      then its ids and runs, or its journal entries, as above, or orjson of its orders

Open orders are no log (any may close), so they are paged by age instead: orders the main
record holds are sealed 16 to a page once there are 16 of them; the main record's JSON
then names each live order page with a bit mask of its orders closed since, and holds the
lines of its orders that changed (a partial shipment). A page with more than half of its
orders closed is dropped (tombstone) and its open orders go back to the main record, so
a SKU with ~100 open orders writes a few hundred bytes of them per write, not all of them.

No SKU's key contains the byte 0xFF (it is not valid UTF-8), so page keys never meet a
SKU's; whatever iterates the table skips them (:func:`streams.ledger.stored.is_page_key`).
Loading reads the main record and every live page it names (the live range follows from
the bases, ends and page sizes in its header), so the rules always see the whole window:
dedupe, count rebase and orders are exactly what they were. A hot SKU writes per event
about its structured part plus half an open page, and one page per 32 ids, 16 journal
entries or 16 orders (``stockflow bench --only state``: 787 bytes per event, from 85,911).

Format 4 is format 3 plus lots (:mod:`streams.ledger.lots`): a location with lots has an
8th item, its lots ``[[name, on_hand, reserved, expires_on], ...]``, and a SKU with orders
reserved from lots has a 12th item in the JSON, ``{order: {location: {lot: units}}}``. A
SKU without lots writes exactly what format 3 wrote (but the format byte), so it costs
what it did; format-3 records and pages are read as they are. Formats 1 and 2 (every id
and entry in the one record) are still read, and rewritten as format 4 on the SKU's next
write. Format 1 (an id ring without times or position): its
ids count as arrived at time 0, so the first event applied after an upgrade lets them go.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from hashlib import blake2b
from typing import Any

from streams.ledger import stored
from streams.ledger.stored import PageReader, StateFormatError

__all__ = [
    "Backorder",
    "Hold",
    "LocationStock",
    "Lot",
    "PageReader",
    "SkuState",
    "StateFormatError",
    "event_key",
]

ID_BUCKET_MS = 3_600_000  # arrival times of remembered ids, to the hour


def event_key(event_id: str) -> int:
    """64-bit key of an event id for the dedupe window (collision odds ~ n/2**64 per event)."""
    return int.from_bytes(blake2b(event_id.encode(), digest_size=8).digest(), "little")


@dataclass(slots=True)
class Lot:
    """Units of one lot at one location (:mod:`streams.ledger.lots`). The location's
    quantities include them; what no lot holds is the location's *unlotted* part."""

    on_hand: int = 0
    reserved: int = 0  # reserved by order lines allocated from this lot
    expires: int | None = None  # expires_on: days since 1970-01-01; None: never expires

    def free(self) -> int:
        return self.on_hand - self.reserved


@dataclass(slots=True)
class LocationStock:
    """Quantities of one SKU at one location (DESIGN.md, stock model)."""

    index: int  # position in SkuState.locations; the journal refers to locations by it
    on_hand: int = 0
    reserved: int = 0
    unsellable: int = 0
    incoming: int = 0
    safety_stock: int | None = None  # per-SKU override; None: the location's configured value
    last_count_as_of: int | None = None  # as_of of the last count applied here
    lots: dict[str, Lot] = field(default_factory=dict)  # lot name -> its units; {}: unlotted

    def free(self, default_safety: int) -> int:
        """Units not reserved, not unsellable, not kept as safety stock; negative when
        reservations are no longer covered. ``default_safety``: the location's configured
        safety stock, used unless this SKU overrides it."""
        safety = self.safety_stock if self.safety_stock is not None else default_safety
        return self.on_hand - self.reserved - self.unsellable - safety

    def available(self, default_safety: int) -> int:
        """What may still be sold here (the stock model's ``available``)."""
        return max(0, self.free(default_safety))

    def uncovered(self) -> int:
        """Reserved units that the sellable units on hand no longer cover (0 when all are)."""
        return max(0, self.reserved - (self.on_hand - self.unsellable))


@dataclass(slots=True)
class Hold:
    """A live checkout hold (keyed by its order_id in SkuState.holds)."""

    event_id: str
    location: str
    qty: int
    channel: str | None
    expires_at: int


@dataclass(slots=True)
class Backorder:
    """Units of an order accepted against future stock; never counted in ``reserved``.
    A pre-order (:mod:`streams.ledger.preorders`) is one, sold against incoming units
    within the channel's allowance and promised for ``promised`` (days since 1970-01-01)."""

    qty: int
    channel: str | None
    preorder: bool = False
    promised: int | None = None

    def stored(self, order_id: str) -> list[Any]:
        if not self.preorder:
            return [order_id, self.qty, self.channel]
        return [order_id, self.qty, self.channel, 1, self.promised]


def _ring() -> array[int]:
    return array("Q")


def _journal() -> array[int]:
    return array("q")


@dataclass(slots=True)
class SkuState:
    sku: str
    locations: dict[str, LocationStock] = field(default_factory=dict)
    holds: dict[str, Hold] = field(default_factory=dict)
    orders: dict[str, dict[str, int]] = field(default_factory=dict)  # order -> location -> qty
    # the part of an order's reservation taken from lots: order -> location -> lot -> qty
    order_lots: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    backorders: dict[str, Backorder] = field(default_factory=dict)  # FIFO by insertion
    seq_high: dict[str, int] = field(default_factory=dict)  # "source|location" -> source_seq
    # only for a SKU with a pre-order allowance (streams.ledger.preorders): open purchase
    # orders {po: [location, open units, expected_on]} and the pre-order figures last shown
    purchases: dict[str, list[Any]] = field(default_factory=dict)
    last_preorders: dict[str, int] = field(default_factory=dict)
    version: int = 0  # version of the last emitted StockLevel
    last_qty: dict[str, int] = field(default_factory=dict)  # channel ("*": default) -> qty
    last_available: dict[str, int] = field(default_factory=dict)  # location -> available
    journal: array[int] = field(default_factory=_journal)  # (occurred_at, loc index, delta)*
    journal_floor: int = -(2**62)  # newest occurred_at dropped from the journal
    ids_ring: array[int] = field(default_factory=_ring)  # applied event keys, oldest first
    ids_marks: list[list[int]] = field(default_factory=list)  # [hour start ms, ids] runs
    in_partition: int = -1  # input position of the last event applied (-1: none known)
    in_offset: int = -1
    ids_base: int = 0  # how many ids were forgotten before ids_ring[0] (the ring's position)
    journal_base: int = 0  # how many journal entries were dropped before journal[0]
    ids: set[int] = field(default_factory=set, compare=False, repr=False)  # == set(ids_ring)
    # open orders as their sealed pages hold them (page number -> orders), and the next
    # page number: how the state is stored, not what it is (streams.ledger.stored)
    order_pages: dict[int, dict[str, dict[str, int]]] = field(
        default_factory=dict, compare=False, repr=False
    )
    order_pages_next: int = field(default=0, compare=False, repr=False)

    # -- locations -----------------------------------------------------------------------

    def location(self, name: str) -> LocationStock:
        """The location's quantities, created at zero on first use."""
        loc = self.locations.get(name)
        if loc is None:
            loc = self.locations[name] = LocationStock(index=len(self.locations))
        return loc

    # -- dedupe window -------------------------------------------------------------------

    def seen(self, key: int) -> bool:
        return key in self.ids

    def remember(self, key: int, limit: int, now: int = 0, window_ms: int | None = None) -> None:
        """Record an applied event key arriving at ``now``; forget ids that arrived more than
        ``window_ms`` ago (whole hours) and the oldest beyond ``limit``."""
        marks = self.ids_marks
        if window_ms is not None:
            expired = 0
            while marks and marks[0][0] + ID_BUCKET_MS <= now - window_ms:
                expired += marks.pop(0)[1]
            if expired:
                self._drop_ids(expired)
        if len(self.ids_ring) >= limit + limit // 16:  # trimmed in steps: no copy per event
            self._forget(len(self.ids_ring) + 1 - limit)
        self.ids_ring.append(key)
        self.ids.add(key)
        bucket = now - now % ID_BUCKET_MS
        if marks and marks[-1][0] == bucket:
            marks[-1][1] += 1
        else:
            marks.append([bucket, 1])

    def _drop_ids(self, n: int) -> None:
        ring = self.ids_ring
        n = min(n, len(ring))
        for old in ring[:n]:
            self.ids.discard(old)
        del ring[:n]
        self.ids_base += n
        if len(self.ids) != len(ring):  # two events with one key hash: rebuild exactly
            self.ids = set(ring)

    def _forget(self, n: int) -> None:
        """Drop the ``n`` oldest remembered ids and their arrival times."""
        marks = self.ids_marks
        n = min(n, len(self.ids_ring))
        self._drop_ids(n)
        left = n
        while left and marks:
            if marks[0][1] <= left:
                left -= marks.pop(0)[1]
            else:
                marks[0][1] -= left
                left = 0

    def at_position(self, partition: int, offset: int) -> bool:
        """True when the input record at ``partition``/``offset`` was applied already."""
        return partition == self.in_partition and offset <= self.in_offset

    # -- journal -------------------------------------------------------------------------

    def journal_add(self, occurred_at: int, loc: LocationStock, delta: int) -> None:
        self.journal.extend((occurred_at, loc.index, delta))

    def journal_trim(self, limit: int, oldest_ms: int) -> None:
        """Keep at most ``limit`` entries and drop leading entries older than ``oldest_ms``."""
        j = self.journal
        drop = max(0, len(j) // 3 - limit)
        while drop * 3 < len(j) and j[drop * 3] < oldest_ms:
            drop += 1
        if drop:
            floor = max(j[0 : drop * 3 : 3])
            if floor > self.journal_floor:
                self.journal_floor = floor
            del j[: drop * 3]
            self.journal_base += drop

    def on_hand_moved_after(self, loc: LocationStock, as_of: int) -> int:
        """Sum of journalled on_hand deltas at ``loc`` that occurred strictly after ``as_of``."""
        j, idx, total = self.journal, loc.index, 0
        for i in range(0, len(j), 3):
            if j[i + 1] == idx and j[i] > as_of:
                total += j[i + 2]
        return total

    def open_entries(self) -> int:
        """Open orders, backorders and holds: what makes a SKU's state grow."""
        return len(self.orders) + len(self.backorders) + len(self.holds)

    @property
    def next_hold_expiry(self) -> int | None:
        """Earliest expires_at among live holds (for the agent's timer index)."""
        return min((h.expires_at for h in self.holds.values()), default=None)

    # -- bytes ---------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """The SKU's main record (format 4): what :meth:`records` writes under its key."""
        return stored.encode_main(self)

    def records(self, before: bytes | None) -> list[tuple[bytes, bytes | None]]:
        """The changelog records of this state over ``before`` (its main record as stored,
        None when nothing is): pages sealed since, the main record, then the tombstones
        (value None) of pages that left the window."""
        return stored.records(self, before)

    def structure(self, orders: list[Any]) -> list[Any]:
        """The structured part of the main record as JSON values (``orders``: how the
        record holds the orders)."""
        doc: list[Any] = [
            self.sku,
            self.version,
            self.journal_floor,
            [self.in_partition, self.in_offset],
            [
                [n, s.on_hand, s.reserved, s.unsellable, s.incoming, s.safety_stock,
                 s.last_count_as_of]
                if not s.lots else
                [n, s.on_hand, s.reserved, s.unsellable, s.incoming, s.safety_stock,
                 s.last_count_as_of, [[k, t.on_hand, t.reserved, t.expires]
                                      for k, t in s.lots.items()]]
                for n, s in self.locations.items()
            ],
            [[k, h.event_id, h.location, h.qty, h.channel, h.expires_at]
             for k, h in self.holds.items()],
            orders,
            [b.stored(k) for k, b in self.backorders.items()],
            self.seq_high,
            self.last_qty,
            self.last_available,
        ]  # fmt: skip
        if self.order_lots or self.purchases or self.last_preorders:
            doc.append(self.order_lots)  # format 4; a SKU without lots stores format 3's
        if self.purchases or self.last_preorders:  # pre-orders: a 13th item
            doc.append([self.purchases, self.last_preorders])
        return doc

    @classmethod
    def from_bytes(cls, data: bytes, pages: PageReader | None = None) -> SkuState:
        """The state of a main record (format 1 to 4) and of the sealed pages it names,
        read with ``pages(page key)``; StateFormatError when a page is missing or corrupt,
        or when the record names pages and ``pages`` is None."""
        parts = stored.decode(data, pages)
        try:
            return cls._from_parts(parts)
        except (ValueError, TypeError, IndexError, KeyError) as exc:
            raise StateFormatError(
                f"stockflow SKU state with an unreadable body ({exc}); "
                "the changelog record is corrupt"
            ) from None

    @classmethod
    def _from_parts(cls, parts: stored.Parts) -> SkuState:
        sku, version, floor, position, locs, holds, orders, backs, seq_high, last_qty, last_av = (
            parts.doc[:11]
        )
        return cls(
            sku=sku,
            locations={
                r[0]: LocationStock(
                    i,
                    r[1],
                    r[2],
                    r[3],
                    r[4],
                    r[5],
                    r[6],
                    {t[0]: Lot(t[1], t[2], t[3]) for t in r[7]} if len(r) > 7 else {},
                )
                for i, r in enumerate(locs)
            },
            order_lots=parts.doc[11] if len(parts.doc) > 11 else {},
            holds={r[0]: Hold(r[1], r[2], r[3], r[4], r[5]) for r in holds},
            orders=orders,
            backorders={
                r[0]: Backorder(r[1], r[2], len(r) > 3 and bool(r[3]), r[4] if len(r) > 4 else None)
                for r in backs
            },
            purchases=parts.doc[12][0] if len(parts.doc) > 12 else {},
            last_preorders=parts.doc[12][1] if len(parts.doc) > 12 else {},
            seq_high=seq_high,
            version=version,
            last_qty=last_qty,
            last_available=last_av,
            journal=parts.journal,
            journal_floor=floor,
            ids_ring=parts.ids,
            ids_marks=parts.marks,
            in_partition=position[0],
            in_offset=position[1],
            ids_base=parts.ids_base,
            journal_base=parts.journal_base,
            ids=set(parts.ids),
            order_pages=parts.order_pages,
            order_pages_next=parts.order_pages_next,
        )
