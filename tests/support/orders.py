"""The order book on the real stack, for integration and fault tests: a generator of
multi-line orders racing for scarce stock, a follower of ``orders.state.v1`` keeping each
order's last state, the ledger's own record of what every order holds (folded from
``stock.movements.v1``), and the check of the book's invariants against both.

The order book reserves a line with an ``order_placed`` StockEvent whose event id is
``ob|{order_id}|{attempt}|{line_id}`` and releases with ``ob|{order_id}|{attempt}|{sku}|...``:
the movements those events cause name the order in their event id, so what the ledger holds
for each order is known without trusting the order book's own states.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from schemas.codec import Codec, CodecError
from streams.kernel.kafka_config import admin_config, consumer_config, producer_config
from streams.kernel.produce import produce
from streams.kernel.settings import Settings
from streams.kernel.topics import ORDERS, ORDERS_STATE, STOCK_EVENTS
from tests.support.kafka import end_offsets, produce_events, stock_event
from tests.support.ports import free_port
from tests.support.worker import WorkerProcess

ORDER_SCHEMA = ORDERS.value_schema
STATE_SCHEMA = ORDERS_STATE.value_schema
CHANNELS = ("shopify", "woocommerce", "api")
# name -> (lat, lon): two warehouses and a store, all in France
LOCATIONS: dict[str, tuple[float, float]] = {
    "paris-wh": (48.8566, 2.3522),
    "lyon-wh": (45.7640, 4.8357),
    "lille-store": (50.6292, 3.0573),
}
DESTINATIONS = (  # (postal code, lat, lon)
    ("75011", 48.8590, 2.3800),
    ("69002", 45.7500, 4.8300),
    ("59000", 50.6300, 3.0600),
    ("13001", 43.2990, 5.3840),
    ("33000", 44.8400, -0.5800),
    ("67000", 48.5730, 7.7520),
)
SETTLED = frozenset(("allocated", "exception"))  # all-or-nothing orders, no approval rule
OB_PREFIX = "ob|"


def order_record(
    order_id: str,
    channel: str,
    lines: Iterable[tuple[str, str, int]],
    *,
    kind: str = "placed",
    event_id: str | None = None,
    at: int | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A complete Order record: ``lines`` as (line_id, sku, qty), priced 1,990 cents each;
    ``fields`` override the rest (ship_to, delivery, pickup_location, risk, by, note...)."""
    now = at if at is not None else int(time.time() * 1000)
    record: dict[str, Any] = {
        "event_id": event_id or f"{order_id}:{kind}",
        "type": kind,
        "order_id": order_id,
        "channel": channel,
        "lines": [
            {"line_id": lid, "sku": sku, "qty": qty, "unit_price": 1990, "currency": "EUR"}
            for lid, sku, qty in lines
        ],
        "ship_to": None,
        "delivery": "ship",
        "pickup_location": None,
        "customer_ref": None,
        "customer_type": "b2c",
        "risk": None,
        "location": None,
        "note": None,
        "by": None,
        "source": "test",
        "placed_at": now,
        "occurred_at": now,
        "ingested_at": now,
    }
    record.update(fields)
    return record


@dataclass
class Scenario:
    """N orders of 1-4 lines (distinct SKUs, 1-3 units each) from the channels, and a stock
    count per SKU and location that covers about ``scarcity`` of the demand."""

    run: str
    skus: list[str]
    stock: dict[str, dict[str, int]]  # sku -> location -> units counted
    orders: list[dict[str, Any]]  # Order records (type placed), in the order they are sent

    @property
    def order_ids(self) -> set[str]:
        return {o["order_id"] for o in self.orders}

    def lines_of(self) -> dict[str, list[dict[str, Any]]]:
        return {o["order_id"]: o["lines"] for o in self.orders}

    def counts(self) -> list[dict[str, Any]]:
        """The opening stock counts, as StockEvents (one per SKU and location)."""
        return [
            stock_event(f"{self.run}-count-{sku}-{loc}", "stock_count", sku, units, location=loc)
            for sku, per in self.stock.items()
            for loc, units in per.items()
        ]


def scenario(
    run: str,
    orders: int,
    skus: int,
    *,
    seed: int = 13,
    scarcity: float = 0.5,
    channels: tuple[str, ...] = CHANNELS,
    locations: tuple[str, ...] = tuple(LOCATIONS),
) -> Scenario:
    rng = random.Random(seed)
    names = [f"{run}-sku{k}" for k in range(skus)]
    demand: Counter[str] = Counter()
    records = []
    t0 = int(time.time() * 1000)
    for i in range(orders):
        channel = channels[i % len(channels)]
        picked = rng.sample(names, rng.randint(1, min(4, skus)))
        lines = [(str(n + 1), sku, rng.randint(1, 3)) for n, sku in enumerate(picked)]
        for _, sku, qty in lines:
            demand[sku] += qty
        postal, lat, lon = rng.choice(DESTINATIONS)
        records.append(
            order_record(
                f"{channel}:{run}-{i}",
                channel,
                lines,
                at=t0 + i,
                ship_to={"country": "FR", "postal_code": postal, "lat": lat, "lon": lon},
                customer_ref=f"c{rng.randrange(orders // 3 + 1)}",
                source=channel,
                by=channel,
            )
        )
    stock: dict[str, dict[str, int]] = {}
    for sku in names:
        units = int(demand[sku] * scarcity)
        cuts = sorted(rng.randint(0, units) for _ in range(len(locations) - 1))
        bounds = [0, *cuts, units]
        stock[sku] = {loc: bounds[k + 1] - bounds[k] for k, loc in enumerate(locations)}
    return Scenario(run, names, stock, records)


def ledger_yaml(path: Path, extra: str = "", locations: Iterable[str] = LOCATIONS) -> Path:
    """A ledger configuration with ``locations`` (the first one the default; ``extra``: more
    YAML, such as an ``orders:`` section), written to ``path``."""
    names = list(locations)
    lines = [f"default_location: {names[0]}", "locations:"]
    lines += [f"  - name: {name}" for name in names]
    path.write_text("\n".join(lines) + "\n" + extra)
    return path


def send_orders(
    settings: Settings,
    codec: Codec,
    records: Iterable[dict[str, Any]],
    *,
    rate: float | None = None,
    p: Producer | None = None,
) -> int:
    """Order records to orders.v1 (key: order id), at most ``rate`` a second; acknowledged
    on return."""
    p = p or Producer(producer_config(settings))
    began = time.monotonic()
    n = 0
    for record in records:
        produce(p, ORDERS.name, record["order_id"].encode(), codec.encode(ORDER_SCHEMA, record))
        n += 1
        if n % 50 == 0:
            p.poll(0)
            if rate:
                time.sleep(max(0.0, began + n / rate - time.monotonic()))
    assert p.flush(120) == 0, "orders not acknowledged by the broker"
    return n


def race(
    settings: Settings, codec: Codec, sc: Scenario, rate: float, channels: tuple[str, ...]
) -> float:
    """One producer thread per channel sends that channel's orders at once (``rate`` orders a
    second in all); returns the seconds they took."""
    failures: list[str] = []

    def one(channel: str) -> None:
        try:
            mine = [o for o in sc.orders if o["channel"] == channel]
            send_orders(settings, codec, mine, rate=rate / len(channels))
        except Exception as exc:  # reported by the caller
            failures.append(f"{channel}: {exc!r}")

    threads = [threading.Thread(target=one, args=(c,)) for c in channels]
    began = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, failures
    return time.monotonic() - began


def count_stock(settings: Settings, codec: Codec, sc: Scenario) -> None:
    produce_events(settings, codec, sc.counts())


class StateFollower:
    """Follows orders.state.v1 from given offsets in a thread and keeps, per order whose id
    contains ``marker``, the state of highest version (and how many records it read)."""

    def __init__(self, settings: Settings, codec: Codec, marker: str) -> None:
        self.settings = settings
        self.codec = codec
        self.marker = marker
        self.start_offsets = end_offsets(settings, ORDERS_STATE.name)
        self.last: dict[str, dict[str, Any]] = {}
        self.history: dict[str, list[tuple[str | None, str]]] = defaultdict(list)
        self.records = 0
        self.regressions = 0  # a record of lower version after a higher one (a replay)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="state-follower", daemon=True)

    def __enter__(self) -> StateFollower:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        consumer = Consumer(consumer_config(self.settings, f"state-follower-{time.time_ns()}"))
        consumer.assign(
            [TopicPartition(ORDERS_STATE.name, p, o) for p, o in self.start_offsets.items()]
        )
        try:
            while not self._stop.is_set():
                for msg in consumer.consume(num_messages=5000, timeout=0.3):
                    if msg.error() is not None or msg.value() is None:
                        continue
                    try:
                        _, state = self.codec.decode(msg.value())
                    except CodecError:
                        continue
                    if self.marker not in state["order_id"]:
                        continue
                    self._keep(state)
        finally:
            consumer.close()

    def _keep(self, state: dict[str, Any]) -> None:
        with self._lock:
            self.records += 1
            oid = state["order_id"]
            t = state["transition"]
            self.history[oid].append((t.get("from_status"), t["to_status"]))
            had = self.last.get(oid)
            if had is not None and had["version"] > state["version"]:
                self.regressions += 1
                return
            self.last[oid] = state

    def snapshot(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return dict(self.last)

    def statuses(self) -> Counter[str]:
        return Counter(s["status"] for s in self.snapshot().values())

    def wait(
        self, ids: set[str], statuses: frozenset[str], *, timeout: float, what: str = ""
    ) -> None:
        """Until every order of ``ids`` has a last state among ``statuses``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            last = self.snapshot()
            if all(last.get(i, {}).get("status") in statuses for i in ids):
                return
            time.sleep(0.3)
        last = self.snapshot()
        missing = [i for i in ids if i not in last]
        other = Counter(last[i]["status"] for i in ids if i in last)
        raise AssertionError(
            f"timed out after {timeout} s waiting for {what or sorted(statuses)}: "
            f"{len(missing)} orders without a state (e.g. {missing[:3]}), statuses {dict(other)}"
        )


def group_lag(settings: Settings, group: str) -> dict[str, int]:
    """Per topic, the records ``group`` has not committed yet, over every partition it has
    committed on."""
    admin = AdminClient(admin_config(settings))
    found = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])
    committed = found[group].result().topic_partitions or []
    probe = Consumer(consumer_config(settings, f"lag-probe-{time.time_ns()}"))
    try:
        lag: dict[str, int] = defaultdict(int)
        for tp in committed:
            if tp.offset < 0:
                continue
            _, high = probe.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), 10)
            lag[tp.topic] += max(0, high - tp.offset)
        return dict(lag)
    finally:
        probe.close()


def quiesce(
    settings: Settings,
    group: str,
    follower: StateFollower,
    ids: set[str],
    statuses: frozenset[str] = SETTLED,
    *,
    timeout: float,
    quiet_s: float = 3.0,
) -> float:
    """Until every order has a settled state, the group has committed all it reads, and no
    state record came for ``quiet_s``; returns the seconds it took."""
    began = time.monotonic()
    follower.wait(ids, statuses, timeout=timeout, what="every order settled")
    while time.monotonic() - began < timeout:
        seen = follower.records
        lag = group_lag(settings, group)
        if not any(lag.values()):
            time.sleep(quiet_s)
            if follower.records == seen and not any(group_lag(settings, group).values()):
                follower.wait(ids, statuses, timeout=30, what="every order settled again")
                return time.monotonic() - began
        else:
            time.sleep(0.5)
    raise AssertionError(
        f"group {group} still behind after {timeout} s: {group_lag(settings, group)}"
    )


def group_to_end(settings: Settings, group: str, specs: Iterable[Any]) -> None:
    """Commit ``group`` at the end of each topic of ``specs``: a new group sees only what
    comes next, never other tests' records on the shared topics."""
    admin = AdminClient(admin_config(settings))
    for spec in specs:
        ends = end_offsets(settings, spec.name)
        request = ConsumerGroupTopicPartitions(
            group, [TopicPartition(spec.name, p, o) for p, o in ends.items()]
        )
        admin.alter_consumer_group_offsets([request])[group].result()


# ---- what the ledger holds per order: the reservation oracle -------------------------


def order_of(event_id: str) -> str | None:
    """The order an order-book event id names (``ob|{order}|...``); None for others."""
    if not event_id.startswith(OB_PREFIX):
        return None
    return event_id.split("|")[1]


def ledger_holdings(
    movements: Iterable[dict[str, Any]],
) -> dict[str, dict[tuple[str, str], int]]:
    """Per order, the units the ledger holds for it per (sku, location): the sum of the
    reserved deltas of the movements its order-book events caused (each movement counted
    once: a movement read twice after a crash is the same movement_id)."""
    seen: set[str] = set()
    held: dict[str, dict[tuple[str, str], int]] = defaultdict(lambda: defaultdict(int))
    for m in movements:
        oid = order_of(m["event_id"])
        if oid is None or m["movement_id"] in seen:
            continue
        seen.add(m["movement_id"])
        held[oid][(m["sku"], m["location"])] += m["delta_reserved"]
    return {o: {k: v for k, v in per.items() if v} for o, per in held.items()}


@dataclass
class BookCheck:
    """The figures and the breaches of the order book's invariants."""

    orders: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    allocated_units: int = 0
    stock_units: int = 0
    lost: list[str] = field(default_factory=list)  # an order without a state
    unsettled: list[str] = field(default_factory=list)  # a state outside the settled ones
    half: list[str] = field(default_factory=list)  # the ledger holds part of an order
    doubled: list[str] = field(default_factory=list)  # the ledger holds more than ordered
    leaked: list[str] = field(default_factory=list)  # the ledger holds for a refused order
    short: list[str] = field(default_factory=list)  # allocated, the ledger holds less
    wrong_state: list[str] = field(default_factory=list)  # lines disagree with the status
    no_reason: list[str] = field(default_factory=list)  # an exception without its reason
    oversold: list[str] = field(default_factory=list)  # sku/location reserved > on hand
    sum_mismatch: list[str] = field(default_factory=list)  # reserved != sum of allocated
    multi_location: int = 0  # allocated orders shipped from more than one location
    retried: int = 0  # orders that needed more than one plan (a line refused: compensation)
    servable: int = 0  # exceptions whose every line the stock left at the end could serve
    trails: list[str] = field(default_factory=list)  # what a breached order went through

    def breaches(self) -> dict[str, list[str]]:
        names = (
            "lost unsettled half doubled leaked short wrong_state no_reason oversold sum_mismatch"
        )
        return {n: getattr(self, n)[:5] for n in names.split() if getattr(self, n)}

    def figures(self) -> str:
        return (
            f"{self.orders:,} orders: {dict(self.statuses)}; exceptions by reason "
            f"{dict(self.reasons.most_common(5))}; {self.allocated_units:,} units allocated of "
            f"{self.stock_units:,} counted; split orders {self.multi_location}; orders retried "
            f"after a refusal {self.retried}; exceptions the stock left could serve "
            f"{self.servable} (a figure, not a breach); lost "
            f"{len(self.lost)}, doubled {len(self.doubled)}, half-reserved {len(self.half)}, "
            f"leaked {len(self.leaked)}, short {len(self.short)}, oversold {len(self.oversold)}"
            f", reserved != sum of allocated {len(self.sum_mismatch)}"
        )


def check_book(
    sc: Scenario,
    states: Mapping[str, dict[str, Any]],
    holdings: Mapping[str, Mapping[tuple[str, str], int]],
    stock_views: Mapping[str, dict[str, Any] | None],
    settled: frozenset[str] = SETTLED,
) -> BookCheck:
    """The invariants, once things settled: every order has a settled state; an allocated
    order has every line reserved at a location and the ledger holds exactly its lines
    there; any other order holds nothing in the ledger, and an exception says why; per SKU
    and location the ledger's reserved (``stock_views``: GET /v1/stock answers) is the sum
    over allocated orders' lines, and never more than was counted there."""
    out = BookCheck(orders=len(sc.orders))
    out.stock_units = sum(sum(per.values()) for per in sc.stock.values())
    wanted: dict[tuple[str, str], int] = defaultdict(int)
    for order in sc.orders:
        oid = order["order_id"]
        state = states.get(oid)
        held = dict(holdings.get(oid, {}))
        if state is None:
            out.lost.append(oid)
            continue
        status = state["status"]
        out.statuses[status] += 1
        out.retried += state.get("attempts", 0) > 1
        if status not in settled:
            out.unsettled.append(f"{oid}: {status}")
        ordered = {ln["line_id"]: ln for ln in order["lines"]}
        lines = {ln["line_id"]: ln for ln in state["lines"]}
        if status == "allocated":
            plan: dict[tuple[str, str], int] = defaultdict(int)
            ok = set(lines) == set(ordered)
            for lid, ln in lines.items():
                ok = ok and ln["status"] == "reserved" and ln["location"] in LOCATIONS
                ok = ok and lid in ordered and ln["qty"] == ordered[lid]["qty"]
                plan[(ln["sku"], ln["location"] or "?")] += ln["qty"]
            if not ok:
                out.wrong_state.append(f"{oid}: allocated with lines {state['lines']}")
            if len({loc for _, loc in plan}) > 1:
                out.multi_location += 1
            for key, units in plan.items():
                wanted[key] += units
                out.allocated_units += units
            if held != dict(plan):
                found = f"{oid}: allocated {dict(plan)}, the ledger holds {held}"
                if any(held.get(k, 0) > v for k, v in plan.items()) or set(held) - set(plan):
                    out.doubled.append(found)
                elif set(plan) - set(held):
                    out.half.append(found)
                else:
                    out.short.append(found)
        else:
            if any(ln["status"] == "reserved" for ln in lines.values()):
                out.wrong_state.append(f"{oid}: {status} with reserved lines {state['lines']}")
            if held:  # every line's units held: fully reserved; else half-reserved
                per_sku: Counter[str] = Counter()
                for (sku, _), units in held.items():
                    per_sku[sku] += units
                every = all(per_sku[ln["sku"]] >= ln["qty"] for ln in ordered.values())
                (out.leaked if every else out.half).append(
                    f"{oid}: {status}, the ledger holds {held}"
                )
            if status == "exception":
                reason = state.get("reason") or (state.get("transition") or {}).get("reason")
                if not reason:
                    out.no_reason.append(oid)
                out.reasons[str(reason).split(":")[0]] += 1
    left = {  # units not reserved at the end, per SKU and location
        sku: {
            loc: v.get("on_hand", 0) - v.get("reserved", 0)
            for loc, v in ((stock_views.get(sku) or {}).get("locations") or {}).items()
        }
        for sku in sc.stock
    }
    for order in sc.orders:
        state = states.get(order["order_id"])
        if state is not None and state["status"] == "exception":
            out.servable += all(
                max(left.get(ln["sku"], {}).values(), default=0) >= ln["qty"]
                for ln in order["lines"]
            )
    for sku, per in sc.stock.items():
        view = stock_views.get(sku)
        locations = (view or {}).get("locations", {})
        for loc, counted in per.items():
            got = locations.get(loc, {})
            reserved, on_hand = got.get("reserved"), got.get("on_hand")
            if reserved is None or on_hand != counted or reserved > on_hand:
                out.oversold.append(f"{sku}@{loc}: counted {counted}, ledger {got}")
            if reserved != wanted.get((sku, loc), 0):
                out.sum_mismatch.append(
                    f"{sku}@{loc}: ledger reserved {reserved}, allocated orders "
                    f"{wanted.get((sku, loc), 0)}"
                )
    return out


def fmt_breaches(check: BookCheck) -> str:
    return "; ".join(f"{k}: {v}" for k, v in check.breaches().items()) + "".join(
        f"\n  {t}" for t in check.trails
    )


TRAILS = 3  # breached orders whose movements and transitions a failure prints


def _trails(
    check: BookCheck,
    movements: list[tuple[int, dict[str, Any]]],
    history: Mapping[str, list[tuple[str | None, str]]],
) -> list[str]:
    """For the first breached orders: each movement the ledger made for the order (event id,
    SKU at location, reserved delta, partition) and the order's transitions as followed."""
    breached = [f.split(": ", 1)[0] for f in (*check.doubled, *check.half, *check.leaked)]
    out = []
    for oid in list(dict.fromkeys(breached))[:TRAILS]:
        moves = [
            f"{m['event_id']} {m['sku']}@{m['location']} {m['delta_reserved']:+d} (p{p})"
            for p, m in movements
            if order_of(m["event_id"]) == oid
        ]
        steps = " > ".join(to for _, to in history.get(oid, []))
        out.append(f"{oid}: movements [{'; '.join(moves)}]; transitions {steps}")
    return out


# the topics an order-book worker's group reads: committed at their end before a new group
# starts (the levels view reads stock.levels.v1 whole, outside the group; the ledger's
# replies topic is the app's own, new with the group)
def input_specs() -> tuple[Any, ...]:
    return (STOCK_EVENTS, ORDERS)


def wait_counted(stock: Any, sc: Scenario, *, timeout: float = 120) -> None:
    """Until the ledger (``stock(sku)``: a GET /v1/stock answer or None) shows every count."""
    deadline = time.monotonic() + timeout
    todo = set(sc.skus)
    while todo and time.monotonic() < deadline:
        for sku in list(todo):
            view = stock(sku) or {}
            got = {k: v.get("on_hand") for k, v in view.get("locations", {}).items()}
            if all(got.get(loc) == units for loc, units in sc.stock[sku].items()):
                todo.discard(sku)
        time.sleep(0.3)
    assert not todo, f"stock counts not applied after {timeout} s: {sorted(todo)[:5]}"


def settled_check(
    settings: Settings,
    codec: Codec,
    sc: Scenario,
    follower: StateFollower,
    movements_from: dict[int, int],
    stock: Any,
) -> BookCheck:
    """The invariants over the ledger's movements since ``movements_from``, its stock
    answers (``stock(sku)``) and the followed states."""
    from streams.kernel.topics import STOCK_MOVEMENTS
    from tests.support.group import read_from

    skus = set(sc.skus)
    movements = read_from(
        settings, codec, STOCK_MOVEMENTS, movements_from, lambda r: r["sku"] in skus
    )
    holdings = ledger_holdings(m for _, m in movements)
    views = {sku: stock(sku) for sku in sc.skus}
    check = check_book(sc, follower.snapshot(), holdings, views)
    check.trails = _trails(check, movements, follower.history)
    return check


def final_states(
    settings: Settings, codec: Codec, expected: Mapping[str, str], *, timeout: float = 20
) -> dict[str, str]:
    """Each order's last status on ``orders.state.v1``, read from the start until every
    order of ``expected`` has reached its expected status (partitions come in any order)."""
    from tests.support.kafka import read_topic

    wanted = set(expected.items())
    states = read_topic(
        settings,
        codec,
        ORDERS_STATE,
        lambda r: r["order_id"] in expected,
        until=lambda found: {(r["order_id"], r["status"]) for r in found} >= wanted,
        timeout=timeout,
    )
    return {r["order_id"]: r["status"] for r in states}


@contextmanager
def book_worker(
    settings: Settings, app_id: str, folder: Path, locations: Iterable[str] = LOCATIONS
) -> Iterator[WorkerProcess]:
    """One worker (ledger and order book) of a new group ``app_id`` with ``locations`` (the
    three by default), committed at the end of every topic it reads; stopped on exit."""
    group_to_end(settings, app_id, input_specs())
    config = ledger_yaml(folder / "ledger.yaml", locations=locations)
    proc = WorkerProcess(
        app_id, free_port(), settings.state_dir / "logs", STOCKFLOW_CONFIG=str(config)
    )
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


def location_levels(worker: WorkerProcess, sku: str) -> dict[str, tuple[int, int]]:
    """(on hand, reserved) per location of ``sku``, as the worker's stock route answers."""
    got = (worker.stock(sku) or {}).get("locations", {})
    return {loc: (v["on_hand"], v["reserved"]) for loc, v in got.items()}
