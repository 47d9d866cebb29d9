"""What the order book reads of the whole cluster, not only of its own partitions.

Routing decides optimistically from two views, each a compacted topic read whole (every
partition, from its start) and followed from a thread, like the token store: the latest
``locations`` split of every SKU (``stock.levels.v1``), and today's orders per location
(``orders.state.v1``, for the daily capacities). The ledger stays the arbiter of stock;
capacity is counted from what every worker's book published, so two workers allocating
at the same instant can both take a location's last slot (a capacity is a planning figure,
not a stock: an order over it is never refused by the ledger).
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition
from rocksdict import Options, Rdict, WriteBatch, WriteOptions

from schemas.codec import Codec, CodecError
from schemas.times import now_ms
from streams.kernel.kafka_config import consumer_config
from streams.kernel.settings import Settings
from streams.kernel.topics import ORDERS_STATE, STOCK_LEVELS, TopicSpec

log = logging.getLogger("stockflow.orders")

DAY_MS = 86_400_000
VIEW_WRITE_BUFFER = 8 * 1024 * 1024  # the levels view's RocksDB memtable
VIEW_READY = "view ready"  # logged, after the view's name, once it read its topic to its end

# an order counts against a location's daily capacity from its first allocation on
ALLOCATED = frozenset({"allocated", "partially_allocated", "pending_approval", "released"})


class WholeTopicView:
    """A compacted topic read whole and followed from a thread; ``ready`` once read up to
    the ends Kafka had at the start. Subclasses apply each decoded record."""

    wait_s = 0.2  # a read waits this long for a batch to fill (the view's added delay)

    def __init__(self, settings: Settings, codec: Codec, spec: TopicSpec, name: str) -> None:
        self.settings = settings
        self.codec = codec
        self.spec = spec
        self.name = name
        self.ready = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def apply(self, record: Mapping[str, Any]) -> None:
        raise NotImplementedError

    def on_ready(self) -> None:
        """Called once read up to the ends Kafka had at the start (in the view's thread)."""

    def take(self, key: bytes | None, value: bytes) -> None:
        """One record as read from the topic: decoded and applied (a subclass may keep the
        bytes and decode them when read)."""
        try:
            self.apply(self.codec.decode_as(self.spec.value_schema, value))
        except (CodecError, KeyError, TypeError, ValueError) as exc:
            log.debug("%s: record skipped (%s)", self.name, exc)

    def taken(self) -> None:
        """Called after each batch of records read (in the view's thread)."""

    def _set_ready(self, records: int, began: float) -> None:
        if not self.ready.is_set():
            self.ready.set()
            self.on_ready()
            log.info(
                "%s %s: %s read to its end (%d records in %.1f s); following it",
                self.name,
                VIEW_READY,
                self.spec.name,
                records,
                time.monotonic() - began,
            )

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._follow()
            except Exception as exc:  # Kafka away: routing uses what it has
                log.warning(
                    "%s: following %s failed (%s); retrying", self.name, self.spec.name, exc
                )
                self._stop.wait(1.0)

    def _follow(self) -> None:
        name = self.spec.name
        consumer = Consumer(
            consumer_config(
                self.settings,
                # never joins (assign() only); the app id's prefix: the worker's group rights
                f"{self.settings.app_id}-{self.name}-{uuid.uuid4().hex[:8]}",
                **{"fetch.wait.max.ms": 50, "enable.partition.eof": False},
            )
        )
        try:
            topic = consumer.list_topics(name, timeout=10).topics[name]
            parts = [TopicPartition(name, p) for p in sorted(topic.partitions)]
            ends: dict[int, int] = {}
            for tp in parts:
                low, high = consumer.get_watermark_offsets(tp, timeout=10, cached=False)
                tp.offset, ends[tp.partition] = int(low), int(high)
            consumer.assign(parts)
            position = {tp.partition: tp.offset for tp in parts}
            began, records = time.monotonic(), 0
            if all(position[p] >= ends[p] for p in ends):
                self._set_ready(records, began)
            while not self._stop.is_set():
                batch = consumer.consume(500, self.wait_s)
                records += len(batch)
                for msg in batch:
                    if msg.error():
                        raise KafkaException(msg.error())
                    position[msg.partition() or 0] = (msg.offset() or 0) + 1
                    value = msg.value()
                    if value is None:
                        continue
                    self.take(msg.key(), value)
                self.taken()
                if not self.ready.is_set() and all(position[p] >= ends[p] for p in ends):
                    self._set_ready(records, began)
        finally:
            consumer.close()


class LevelsView(WholeTopicView):
    """The latest ``locations`` split of every SKU, from ``stock.levels.v1``.

    Every worker follows every level the cluster writes (one per event applied), and routing
    reads few of them. The latest record of each SKU is kept as bytes, by its key (the SKU),
    in a RocksDB database of the worker's own (``directory``, emptied at each start by the
    view's thread: the view is read whole again each time), and decoded when its SKU is
    read. Kept in the process, the records took about 240 MB a million SKUs in every
    worker; decoded in the thread, they took the worker's interpreter from the ledger for as
    long (a tenth of its time per event). The thread writes each batch it reads as one
    RocksDB write batch.

    A SKU's levels are written to one partition in the order of their versions (a replay
    writes the same versions again, in order); the version check still refuses one older
    than the version last read. The SKUs read are remembered (bytes and split) up to
    ``read_max``; past it the memory is emptied, and with it the version floor of those
    SKUs, which only a replay of older versions under way at that instant would need."""

    read_max = 100_000

    def __init__(self, settings: Settings, codec: Codec, directory: Path) -> None:
        super().__init__(settings, codec, STOCK_LEVELS, "levels")
        self.directory = directory
        self.levels: dict[str, tuple[int, dict[str, int]]] = {}  # sku -> (version, split)
        self.preorders: dict[str, dict[str, int]] = {}  # sku -> channel -> pre-order figure
        self._read: dict[str, bytes] = {}  # sku -> the record its split was decoded from
        self._db: Rdict | None = None
        self._batch: WriteBatch | None = None  # written by the thread after each read
        self._opening = threading.Lock()
        self._unlogged = WriteOptions()
        # rebuilt from the topic at every start anyway (a property; the stub says method)
        self._unlogged.disable_wal = True  # type: ignore[method-assign,assignment]

    def _open(self) -> Rdict:
        """Empties the folder and opens the database, at the first batch read: in the view's
        thread, never on the caller of ``start`` (the worker's event loop), which a big
        folder left by the last run would hold for as long."""
        with self._opening:
            if self._db is None:
                shutil.rmtree(self.directory, ignore_errors=True)
                self.directory.parent.mkdir(parents=True, exist_ok=True)
                options = Options(raw_mode=True)
                options.create_if_missing(True)
                options.set_write_buffer_size(VIEW_WRITE_BUFFER)
                self._db = Rdict(str(self.directory), options)
            return self._db

    def take(self, key: bytes | None, value: bytes) -> None:
        if key is None:  # not the ledger's (it keys levels by SKU): decoded at once
            super().take(key, value)
            return
        if self._batch is None:
            self._batch = WriteBatch(raw_mode=True)
        self._batch.put(key, value)

    def taken(self) -> None:
        batch, self._batch = self._batch, None
        if batch is not None:
            self._open().write(batch, self._unlogged)

    def __call__(self, sku: str) -> Mapping[str, int]:
        db = self._db
        value = db.get(sku.encode()) if db is not None else None
        if value is not None and value != self._read.get(sku):
            if len(self._read) >= self.read_max:
                self._read.clear()
                self.levels.clear()
                self.preorders.clear()
            self._read[sku] = value
            super().take(None, value)
        found = self.levels.get(sku)
        return found[1] if found is not None else {}

    def apply(self, record: Mapping[str, Any]) -> None:
        old = self.levels.get(record["sku"])
        if old is None or record["version"] >= old[0]:
            self.levels[record["sku"]] = (record["version"], dict(record.get("locations") or {}))
            if record.get("preorders") or record["sku"] in self.preorders:
                self.preorders[record["sku"]] = dict(record.get("preorders") or {})

    def preorder_room(self, sku: str, channel: str) -> int:
        """Units ``channel`` may still pre-sell of ``sku`` as last published (0: none)."""
        self(sku)  # decodes the SKU's latest record if it changed
        return self.preorders.get(sku, {}).get(channel, 0)


class CapacityView(WholeTopicView):
    """Today's orders per location (UTC day), from ``orders.state.v1``: an order counts at
    each location its lines ship from, on the day of its first allocation, once. Counted as
    records arrive, so routing reads a day's counts without walking the orders."""

    def __init__(self, settings: Settings, codec: Codec) -> None:
        super().__init__(settings, codec, ORDERS_STATE, "capacity")
        self.counted: dict[str, int] = {}  # order id -> the day it counts on
        self.per_day: dict[int, Counter[str]] = {}  # day -> orders per location
        self._lock = threading.Lock()

    def apply(self, record: Mapping[str, Any]) -> None:
        if record["status"] not in ALLOCATED or record["order_id"] in self.counted:
            return
        places = {ln["location"] for ln in record["lines"] if ln.get("location")}
        day = int(record["transition"]["at"]) // DAY_MS
        with self._lock:
            self.counted[record["order_id"]] = day
            self.per_day.setdefault(day, Counter()).update(places)

    def __call__(self) -> Mapping[str, int]:
        today = now_ms() // DAY_MS
        with self._lock:
            if any(day < today - 1 for day in self.per_day):
                # kept a day longer: a late record of yesterday's order is not counted again
                self.per_day = {d: c for d, c in self.per_day.items() if d >= today - 1}
                self.counted = {o: d for o, d in self.counted.items() if d >= today - 1}
            return Counter(self.per_day.get(today, ()))


class InFlight:
    """Reservations this worker's book asked of the ledger and has no Decision for yet.

    The levels view shows a reservation only once the ledger applied it; orders routed in
    the meantime (the same batch, the next one) would all see the same free units and pile
    onto one location, to be refused and routed again. Routing reads the levels less these.
    An entry the Decision never clears (a crash between send and answer) lapses after
    ``ttl_ms``."""

    def __init__(self, ttl_ms: int = 60_000) -> None:
        self.ttl_ms = ttl_ms
        self.asked: dict[str, tuple[str, str, int, int]] = {}  # event id -> sku, loc, qty, at
        self.units: Counter[tuple[str, str]] = Counter()

    def sent(self, events: list[dict[str, Any]], now: int) -> None:
        for event in events:
            eid, location = event["event_id"], event.get("location")
            if event["type"] != "order_placed" or location is None or eid in self.asked:
                continue
            self.asked[eid] = (event["sku"], location, int(event["qty"]), now)
            self.units[(event["sku"], location)] += int(event["qty"])

    def decided(self, event_id: str) -> None:
        found = self.asked.pop(event_id, None)
        if found is not None:
            sku, location, qty, _ = found
            self.units[(sku, location)] -= qty
            if self.units[(sku, location)] <= 0:
                del self.units[(sku, location)]

    def lapse(self, now: int) -> None:
        for eid, (_, _, _, at) in list(self.asked.items()):
            if now - at > self.ttl_ms:
                self.decided(eid)

    def less(self, sku: str, levels: Mapping[str, int]) -> dict[str, int]:
        """``levels`` of ``sku`` without the units still asked of the ledger."""
        return {loc: max(0, n - self.units.get((sku, loc), 0)) for loc, n in levels.items()}
