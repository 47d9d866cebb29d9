"""One order's lifecycle: pure functions from (state, input) to (new state, outputs).

Inputs are the order's events from ``orders.v1`` (the channel's, the store's and the
operators') and the ledger's Decisions on the order book's reservations; outputs are the
StockEvents to send to ``stock.events.v1`` and the OrderState records to publish on
``orders.state.v1``, one per transition (version + 1). No Kafka here: the worker's order
agent (:mod:`streams.worker.orders`) stores the state and sends the outputs.

Lifecycle::

    placed -> received -> routed --(every line accepted)--> allocated | pending_approval
                             |                                 pending_approval -> released
                             +--(a line refused)--> routed (next plan) ... -> exception
    allocated | released -> partially_shipped -> shipped -> delivered -> returned
    allocated | released | partially_shipped --(rerouted with lines: short pick)--> routed
    pickup: allocated | released -> ready_for_pickup -> picked_up
    cancelled (channel), cancel_requested (operator) -> cancelled; rejected -> rejected

Reservations: each line of a plan is an ``order_placed`` at the planned location
(``ob|{order}|{attempt}|{line}``). The order waits until every line of the attempt has its
Decision, then, by the channel's policy:

- ``all_or_nothing`` (the default): one refused line releases every SKU of the order
  (``order_cancelled`` qty 0 per SKU, ``ob|{order}|{attempt}|{sku}|release``: what the
  ledger holds, even a line a replayed state believes refused) and the next
  best plan is tried (plans tried are excluded), up to ``max_tries`` attempts; then the
  order is an ``exception`` with the refusals as reason. So, once every Decision is in, an
  order holds all its lines or none.
- ``ship_available``: accepted lines stay reserved, refused lines are ``refused``, the order
  is ``partially_allocated`` (nothing accepted: as all_or_nothing).
- ``backorder_rest``: accepted lines stay reserved, refused lines are ``backordered`` and
  wait (nothing is asked of the ledger for them until an operator reroutes the order); the
  order is ``backordered`` (nothing accepted: as all_or_nothing).

A cancellation (channel or operator), a rejection, or an expired approval with ``release``
releases every SKU of the order (``ob|{order}|{attempt}|{sku}|cancel``); shipping a line
sends ``order_shipped`` (``ob|{order}|ship|{order event id}|{line}``). Reservations sent
before a release are on the same SKU partition before it, so a release covers them.

Reservations still without Decision after ``resend_after_seconds`` are sent again (same
ids), at most ``MAX_RESENDS`` times; then the attempt is given up: its SKUs are released and
the order is an ``exception`` ("no decision from the ledger").

Idempotent: an Order event whose id the state has seen, or a Decision for a line already
decided (or of an earlier attempt), changes nothing (``Result.duplicate``). An input that
cannot apply raises :class:`OrderInputError` with a stable reason (the agent dead-letters it).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, cast

from schemas.events import MAX_QTY, MAX_TEXT, stock_event
from streams.orders.approvals import PAYMENT_PENDING, CustomerBook, approval_reason, expired
from streams.orders.routing import Plan
from streams.orders.routing import plan as route
from streams.orders.setup import OrderConfig

__all__ = [
    "FORMAT",
    "Levels",
    "LineState",
    "OrderBookState",
    "OrderInputError",
    "Result",
    "apply_decision",
    "apply_order_event",
    "on_timer",
    "order_id_of_decision",
]

FORMAT = 1  # version of the stored state's JSON
SOURCE = "order-book"
BY = "order-book"
SEEN_LIMIT = 256  # order event ids remembered per order (an order has few events)
HISTORY_LIMIT = 50  # transitions kept for GET /v1/orders/{id}
MAX_RESENDS = 5  # reservations sent again at most this often, then the attempt is given up
ID_ROOM = 40  # characters of a StockEvent id besides the order and line ids

Levels = Callable[[str], Mapping[str, int]]  # sku -> {location: available units}


def _every(channel: str, location: str) -> bool:
    return True


def _no_orders() -> Mapping[str, int]:
    return {}


def _no_preorders(sku: str, channel: str) -> int:
    return 0


@dataclass(frozen=True)
class Network:
    """What routing reads besides the order: the available units per SKU and location,
    which locations serve a channel (the ledger's channel config), and today's orders per
    location (for the daily capacities)."""

    levels: Levels
    serves: Callable[[str, str], bool] = _every
    used_capacity: Callable[[], Mapping[str, int]] = _no_orders
    # the levels as the ledger last published them, when ``levels`` also holds back the
    # units of reservations still undecided: tried when ``levels`` leaves no plan
    settled: Levels | None = None
    # units a channel may still pre-sell of a SKU (StockLevel.preorders): an order that no
    # location can serve is asked of the ledger when pre-orders cover what is missing
    preorders: Callable[[str, str], int] = _no_preorders


PREORDER = "preorder"  # the reason of a ledger Decision taking a line as a pre-order
HOLDING = frozenset({"routed", "allocated", "partially_allocated", "backordered"})
HOLDING |= {"pending_approval", "released", "ready_for_pickup", "partially_shipped"}
SHIPPABLE = frozenset(
    {"allocated", "partially_allocated", "backordered", "released", "partially_shipped"}
) | {"pending_approval", "ready_for_pickup"}
CANCELLABLE = HOLDING | {"received", "exception"}
GONE = frozenset({"shipped", "delivered", "returned", "cancelled"})  # lines that hold nothing
REROUTABLE = frozenset(
    {"exception", "pending_approval", "partially_allocated", "backordered", "allocated"}
)


class OrderInputError(ValueError):
    """An input the order book cannot apply; ``reason`` is a stable code (dead-letter reason)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


@dataclass
class LineState:
    line_id: str
    sku: str
    qty: int
    status: str = "pending"
    location: str | None = None
    lot: str | None = None
    shipped_qty: int = 0
    unit_price: int | None = None
    currency: str | None = None
    refusal: str | None = None  # the ledger's reason, for the last attempt
    # a component line of a bundle sold (streams.bundles.expand): the bundle's SKU, its line
    # on the channel, the component's units per bundle and the definition's version
    bundle: str | None = None
    bundle_line: str | None = None
    per_bundle: int = 0
    bundle_version: int | None = None


@dataclass
class OrderBookState:
    order_id: str
    channel: str
    lines: list[LineState]
    placed_at: int
    status: str = "received"
    version: int = 0
    attempt: int = 0
    tried: list[list[list[str]]] = field(default_factory=list)  # plans tried this round
    round_start: int = 1  # the first attempt of this routing round (a reroute starts one)
    route_reason: str | None = None
    reason: str | None = None
    shipping_cost: int | None = None
    delivery: str = "ship"
    pickup_location: str | None = None
    country: str | None = None
    postal_code: str | None = None
    lat: float | None = None
    lon: float | None = None
    customer_ref: str | None = None
    customer_type: str = "b2c"
    risk: str | None = None
    short: bool = False  # the attempt routes a short pick's missing units only
    seen: list[str] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    routed_at: int = 0  # when the current attempt's reservations were (last) sent
    resends: int = 0  # times the current attempt's reservations were sent again
    waiting_since: int = 0  # when the order started waiting for approval
    updated_at: int = 0
    # the last step's outputs, stored with the state by the agent so that they can be sent
    # again after a crash between storing and sending (every output is idempotent)
    outbox_events: list[dict[str, Any]] = field(default_factory=list)
    outbox_states: list[dict[str, Any]] = field(default_factory=list)
    outbox_at: int = 0

    def to_bytes(self) -> bytes:
        data = asdict(self)
        data["format"] = FORMAT
        return json.dumps(data, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> OrderBookState:
        data = json.loads(raw)
        if data.pop("format", None) != FORMAT:
            raise ValueError("stored order state of an unknown format")
        data["lines"] = [LineState(**line) for line in data["lines"]]
        return cls(**data)

    def total(self) -> int:
        # a bundle's price is on its first component line, per bundle
        return sum(
            (line.qty // line.per_bundle if line.per_bundle else line.qty) * (line.unit_price or 0)
            for line in self.lines
        )

    def as_order(self) -> dict[str, Any]:
        """The order as the routing and approval rules read it."""
        return {
            "order_id": self.order_id,
            "channel": self.channel,
            "lines": [
                {"line_id": ln.line_id, "sku": ln.sku, "qty": ln.qty, "unit_price": ln.unit_price}
                for ln in self.lines
            ],
            "ship_to": {
                "country": self.country,
                "postal_code": self.postal_code,
                "lat": self.lat,
                "lon": self.lon,
            }
            if self.country
            else None,
            "delivery": self.delivery,
            "pickup_location": self.pickup_location,
            "customer_ref": self.customer_ref,
            "customer_type": self.customer_type,
            "risk": self.risk,
            "placed_at": self.placed_at,
        }

    def record(self, transition: dict[str, Any]) -> dict[str, Any]:
        """The OrderState record of this state after ``transition``."""
        return {
            "order_id": self.order_id,
            "version": self.version,
            "channel": self.channel,
            "status": self.status,
            "lines": [
                {
                    "line_id": ln.line_id,
                    "sku": ln.sku,
                    "qty": ln.qty,
                    "location": ln.location,
                    "lot": ln.lot,
                    "status": ln.status,
                    "shipped_qty": ln.shipped_qty,
                    "unit_price": ln.unit_price,
                    "currency": ln.currency,
                    "bundle": ln.bundle,
                    "bundle_line": ln.bundle_line,
                }
                for ln in self.lines
            ],
            "route_reason": self.route_reason,
            "reason": self.reason,
            "attempts": self.attempt,
            "delivery": self.delivery,
            "pickup_location": self.pickup_location,
            "country": self.country,
            "postal_code": self.postal_code,
            "customer_ref": self.customer_ref,
            "customer_type": self.customer_type,
            "risk": self.risk,
            "shipping_cost": self.shipping_cost,
            "transition": transition,
            "placed_at": self.placed_at,
            "updated_at": self.updated_at,
        }


@dataclass
class Result:
    state: OrderBookState | None
    events: list[dict[str, Any]] = field(default_factory=list)  # StockEvents to send
    states: list[dict[str, Any]] = field(default_factory=list)  # OrderState records
    customer: CustomerBook | None = None  # the customer's book, when it changed
    duplicate: bool = False
    changed: bool = False  # the state changed (it must be stored) even without a transition


class _Step:
    """One input applied: collects transitions and stock events."""

    def __init__(
        self,
        state: OrderBookState,
        config: OrderConfig,
        levels: Levels | Network,
        now: int,
        cause: str,
        customer: CustomerBook | None,
    ) -> None:
        self.s = state
        self.config = config
        self.net = levels if isinstance(levels, Network) else Network(levels)
        self.levels = self.net.levels
        self.now = now
        self.cause = cause
        self.customer = customer
        self.customer_changed = False
        self.out = Result(state, changed=True)

    def go(self, status: str, reason: str | None = None, by: str | None = None) -> None:
        s = self.s
        before = s.status if s.version else None
        s.status = status
        s.version += 1
        s.updated_at = self.now
        transition = {
            "from_status": before,
            "to_status": status,
            "event_id": self.cause,
            "reason": reason,
            "by": by or BY,
            "at": self.now,
        }
        s.history.append(transition)
        del s.history[:-HISTORY_LIMIT]
        self.out.states.append(s.record(transition))

    def reserve(self) -> None:
        for line in self.s.lines:
            if line.status == "pending":
                self.out.events.append(self._reservation(line))

    def _reservation(self, line: LineState) -> dict[str, Any]:
        s = self.s
        return stock_event(
            "order_placed",
            line.sku,
            f"ob|{s.order_id}|{s.attempt}|{line.line_id}",
            self.now,
            qty=line.qty,
            location=line.location,
            channel=s.channel,
            order_id=s.order_id,
            source=SOURCE,
            source_ref=_bundle_ref(line),
        )

    def release(self, skus: list[str], kind: str) -> None:
        """Everything the order holds on each SKU (qty 0), once per SKU."""
        s = self.s
        for sku in dict.fromkeys(skus):
            self.out.events.append(
                stock_event(
                    "order_cancelled",
                    sku,
                    f"ob|{s.order_id}|{s.attempt}|{sku}|{kind}",
                    self.now,
                    qty=0,
                    channel=s.channel,
                    order_id=s.order_id,
                    source=SOURCE,
                    reason=kind,
                )
            )

    def ship(self, line: LineState, qty: int, location: str | None, event_id: str) -> None:
        s = self.s
        self.out.events.append(
            stock_event(
                "order_shipped",
                line.sku,
                _ship_id(s.order_id, event_id, line.line_id),
                self.now,
                qty=qty,
                location=location or line.location,
                channel=s.channel,
                order_id=s.order_id,
                source=SOURCE,
                source_ref=_bundle_ref(line),
            )
        )

    def book(self) -> CustomerBook:
        if self.customer is None:
            self.customer = CustomerBook()
        self.customer_changed = True
        return self.customer

    def result(self) -> Result:
        if self.customer_changed:
            self.out.customer = self.customer
        return self.out

    # -- routing --------------------------------------------------------------------------

    def route(self, by: str | None = None, location: str | None = None) -> None:
        """Plan the next attempt and ask for its reservations; an exception when no plan
        is left or the round's tries are spent."""
        s = self.s
        if s.attempt - s.round_start + 1 >= self.config.max_tries:
            self._exception(f"{self._refusals()}; {self.config.max_tries} plans tried", by)
            return
        order = s.as_order()
        available = {ln.sku: self.levels(ln.sku) for ln in s.lines}
        excluded = [frozenset((a, b) for a, b in tried) for tried in s.tried]
        used = self.net.used_capacity()
        if location is not None:
            found = route(
                order, available, self.config.routing, excluded=excluded,
                serves=lambda name: name == location, used_capacity=used,
            )  # fmt: skip
            lines = found.lines if found is not None else {ln.line_id: location for ln in s.lines}
            found = Plan(lines, f"operator: ship from {location}")  # the ledger decides
        else:
            channel, serves = s.channel, self.net.serves
            found = route(
                order, available, self.config.routing, excluded=excluded,
                serves=lambda name: serves(channel, name), used_capacity=used,
            )  # fmt: skip
            if found is None and self.net.settled is not None:
                # the units may be held by reservations still undecided, some of which will
                # be refused or released: ask the ledger anyway, it decides
                available = {ln.sku: self.net.settled(ln.sku) for ln in s.lines}
                found = route(
                    order, available, self.config.routing, excluded=excluded,
                    serves=lambda name: serves(channel, name), used_capacity=used,
                )  # fmt: skip
            published = self.net.settled or self.levels
            if found is None and s.attempt < s.round_start and self._preorderable(published):
                # pre-orders cover what no location has: the ledger chooses and decides
                lines = cast(dict[str, str], dict.fromkeys(ln.line_id for ln in s.lines))
                found = Plan(lines, "pre-orders cover the units no location has")
            unseen = sorted({ln.sku for ln in s.lines if not published(ln.sku)})
            if found is None and s.attempt == 0 and unseen:
                # levels not seen here yet (a first receipt on its way to this worker's
                # view): the ledger chooses among the channel's locations, and decides
                where = s.pickup_location if s.delivery == "pickup" else None
                lines = cast(dict[str, str], {ln.line_id: where for ln in s.lines})
                why = f"no levels here yet for {', '.join(unseen)}: the ledger chooses"
                found = Plan(lines, why)
        if found is None:
            refusals = self._refusals()
            why = "no location has the units of every line"
            self._exception(f"{refusals}; {why}" if s.attempt >= s.round_start else why, by)
            return
        s.attempt += 1
        s.tried.append([[line, loc] for line, loc in sorted(found.lines.items())])
        s.route_reason = found.reason
        s.shipping_cost = found.shipping_cost
        for line in s.lines:
            line.location = found.lines.get(line.line_id)
            line.status = "pending"
            line.refusal = None
        s.reason = None
        s.routed_at = self.now
        s.resends = 0
        self.go("routed", found.reason, by)
        self.reserve()

    def _preorderable(self, published: Levels) -> bool:
        """True when some line needs pre-orders and every line is either available at the
        channel's locations (as published) or within the channel's pre-order figure."""
        s, serves = self.s, self.net.serves
        if s.delivery == "pickup":
            return False
        needs = False
        for ln in s.lines:
            have = sum(u for loc, u in published(ln.sku).items() if serves(s.channel, loc))
            if have < ln.qty:
                if self.net.preorders(ln.sku, s.channel) < ln.qty:
                    return False
                needs = True
        return needs

    def _refusals(self) -> str:
        refused = [
            f"{ln.line_id} ({ln.sku} at {ln.location}: {ln.refusal})"
            for ln in self.s.lines
            if ln.refusal
        ]
        return "refused: " + ", ".join(refused) if refused else "not allocated"

    def _exception(self, reason: str, by: str | None = None) -> None:
        s = self.s
        for line in s.lines:
            if line.status == "pending":  # never asked of the ledger: no plan had it
                line.status = "refused"
        s.reason = reason
        self.go("exception", reason, by)

    def settle(self) -> None:
        """Every line of the attempt has its Decision: allocate, compensate or retry."""
        s = self.s
        accepted = [ln for ln in s.lines if ln.status == "reserved"]
        refused = [ln for ln in s.lines if ln.status in ("refused", "backordered")]
        if s.short:
            self.settle_short(refused)
            return
        if not refused:
            self.allocated()
            return
        if all(ln.status == "backordered" and ln.refusal == PREORDER for ln in refused):
            # pre-orders wait for the goods (the ledger serves them first when they come)
            s.reason = self._refusals()
            self.go("backordered", s.reason)
            return
        policy = self.config.channel(s.channel).policy
        if accepted and policy == "ship_available":
            for ln in refused:
                ln.status = "refused"
            s.reason = self._refusals()
            self.go("partially_allocated", s.reason)
            return
        if accepted and policy == "backorder_rest":
            for ln in refused:
                ln.status = "backordered"
            s.reason = self._refusals()
            self.go("backordered", s.reason)
            return
        # all or nothing: release what the order holds, then the next plan. Every SKU of
        # the order, not only the lines this state saw accepted: after a crash and a replay
        # onto another plan the ledger may hold a line this state has refused, and the next
        # attempt must start from nothing held (a release of a SKU not held is skipped)
        self.release([ln.sku for ln in s.lines], "release")
        for ln in s.lines:
            if ln.status in ("reserved", "backordered"):
                ln.status = "released"
        self.route()

    def route_short(self, by: str | None = None) -> None:
        """Plan the pending lines alone (a short pick's missing units): the other lines keep
        their reservations. No plan: the ledger chooses among the channel's locations."""
        s = self.s
        pending = [ln for ln in s.lines if ln.status == "pending"]
        order = s.as_order()
        order["lines"] = [
            x for x in order["lines"] if x["line_id"] in {ln.line_id for ln in pending}
        ]
        available = {ln.sku: self.levels(ln.sku) for ln in pending}
        excluded = [frozenset((a, b) for a, b in tried) for tried in s.tried]
        channel, serves = s.channel, self.net.serves
        found = route(
            order, available, self.config.routing, excluded=excluded,
            serves=lambda name: serves(channel, name), used_capacity=self.net.used_capacity(),
        )  # fmt: skip
        s.attempt += 1
        plan = found.lines if found is not None else {}
        s.tried.append([[line, loc] for line, loc in sorted(plan.items())])
        for ln in pending:
            ln.location = plan.get(ln.line_id)
            ln.refusal = None
        why = found.reason if found is not None else "short pick: the ledger chooses"
        s.routed_at = self.now
        s.resends = 0
        self.go("routed", f"short pick re-routed: {why}", by)
        self.reserve()

    def settle_short(self, refused: list[LineState]) -> None:
        s = self.s
        if not refused:
            s.short = False
            s.reason = None
            self.go("allocated", "short pick re-routed")
            return
        if s.attempt - s.round_start + 1 < self.config.max_tries and any(
            ln.status == "refused" for ln in refused
        ):
            for ln in refused:
                if ln.status == "refused":
                    ln.status = "pending"
            self.route_short()
            return
        s.short = False
        s.reason = self._refusals()
        backordered = any(ln.status == "backordered" for ln in refused)
        self.go("backordered" if backordered else "partially_allocated", s.reason)

    def allocated(self) -> None:
        s = self.s
        book = self.customer or CustomerBook()
        why = approval_reason(s.as_order(), s.total(), book, self.config.approvals)
        if s.customer_type == "b2b" and s.customer_ref:
            self.book().open_balance += s.total()
        if why:
            s.reason = why
            s.waiting_since = self.now
            self.go("pending_approval", why)
        else:
            s.reason = None
            self.go("allocated", s.route_reason)

    def close_balance(self) -> None:
        s = self.s
        if s.customer_type == "b2b" and s.customer_ref and s.status in HOLDING - {"routed"}:
            book = self.book()
            book.open_balance = max(0, book.open_balance - s.total())

    def cancel(self, status: str, reason: str | None, by: str | None) -> None:
        s = self.s
        self.close_balance()
        # every SKU not wholly shipped, whatever this state believes held (as settle does)
        self.release([ln.sku for ln in s.lines if ln.status not in GONE], "cancel")
        for ln in s.lines:
            if ln.status in ("pending", "reserved", "backordered"):
                ln.status = "cancelled"
        s.reason = reason
        self.go(status, reason, by)


def _bundle_ref(line: LineState) -> str | None:
    """The bundle a component line was sold in, as its movements' reference."""
    return f"bundle:{line.bundle}"[:MAX_TEXT] if line.bundle else None


def _named(state: OrderBookState, lines: list[Mapping[str, Any]]) -> dict[str, int | None]:
    """The lines an event names, by line id, with their quantities: a bundle's line (the
    channel's) stands for its component lines, its quantity in bundles."""
    named: dict[str, int | None] = {}
    for line in lines:
        line_id, qty = line["line_id"], line.get("qty")
        parts = [ln for ln in state.lines if ln.bundle and ln.bundle_line == line_id]
        if any(ln.line_id == line_id for ln in state.lines) or not parts:
            named[line_id] = qty
            continue
        for ln in parts:
            named[ln.line_id] = qty * ln.per_bundle if qty else qty
    return named


def _ship_id(order_id: str, event_id: str, line_id: str) -> str:
    """``ob|{order}|ship|{event id}|{line}``; the event id hashed when that is too long."""
    found = f"ob|{order_id}|ship|{event_id}|{line_id}"
    if len(found) <= MAX_TEXT:
        return found
    digest = hashlib.sha256(event_id.encode()).hexdigest()[:24]
    return f"ob|{order_id}|ship|{digest}|{line_id}"


# -- order events ------------------------------------------------------------------------


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise OrderInputError("invalid_order", f"{name}: required, a non-empty string")
    if len(value) > MAX_TEXT:
        raise OrderInputError("invalid_order", f"{name}: longer than {MAX_TEXT} characters")
    return value


def _placed(event: Mapping[str, Any], now: int) -> OrderBookState:
    lines = event.get("lines") or []
    if not lines:
        raise OrderInputError("invalid_order", "lines: a placed order needs at least one line")
    seen: set[str] = set()
    states = []
    for i, line in enumerate(lines):
        line_id = _text(line.get("line_id"), f"lines[{i}].line_id")
        if line_id in seen:
            raise OrderInputError("invalid_order", f"lines[{i}].line_id: {line_id!r} twice")
        seen.add(line_id)
        qty = line.get("qty")
        if isinstance(qty, bool) or not isinstance(qty, int) or qty <= 0:
            raise OrderInputError("invalid_order", f"lines[{i}].qty: {qty!r} is not above 0")
        if qty > MAX_QTY:
            raise OrderInputError("invalid_order", f"lines[{i}].qty: {qty} is above {MAX_QTY}")
        sku = _text(line.get("sku"), f"lines[{i}].sku")
        if len(str(event.get("order_id"))) + max(len(line_id), len(sku)) + ID_ROOM > MAX_TEXT:
            raise OrderInputError(
                "invalid_order",
                f"lines[{i}]: line_id or sku, with the order id, too long for a stock event "
                f"id ({MAX_TEXT} characters)",
            )
        states.append(
            LineState(
                line_id,
                sku,
                qty,
                unit_price=line.get("unit_price"),
                currency=line.get("currency"),
                bundle=line.get("bundle"),
                bundle_line=line.get("bundle_line"),
                per_bundle=int(line.get("per_bundle") or 0),
                bundle_version=line.get("bundle_version"),
            )
        )
    delivery = event.get("delivery") or "ship"
    if delivery == "pickup" and not event.get("pickup_location"):
        raise OrderInputError("invalid_order", "pickup_location: required for a pickup order")
    ship_to = event.get("ship_to") or {}
    return OrderBookState(
        order_id=_text(event.get("order_id"), "order_id"),
        channel=_text(event.get("channel"), "channel"),
        lines=states,
        placed_at=int(event.get("placed_at") or now),
        delivery=delivery,
        pickup_location=event.get("pickup_location"),
        country=ship_to.get("country"),
        postal_code=ship_to.get("postal_code"),
        lat=ship_to.get("lat"),
        lon=ship_to.get("lon"),
        customer_ref=event.get("customer_ref"),
        customer_type=event.get("customer_type") or "b2c",
        risk=event.get("risk"),
    )


def apply_order_event(
    state: OrderBookState | None,
    event: Mapping[str, Any],
    config: OrderConfig,
    levels: Levels | Network,
    now: int,
    customer: CustomerBook | None = None,
) -> Result:
    """Apply one Order event (``orders.v1``) to the order's state (None: never seen)."""
    event_id = _text(event.get("event_id"), "event_id")
    kind = event.get("type")
    if state is not None and event_id in state.seen:
        return Result(state, duplicate=True)
    if kind == "placed":
        if state is not None:  # placed again under another id (a channel's resend)
            return Result(state, duplicate=True)
        state = _placed(event, now)
        step = _Step(state, config, levels, now, event_id, customer)
        step.book().orders_seen += 1
        step.go("received", None, event.get("by") or event.get("source"))
        step.route()
    else:
        if state is None:
            raise OrderInputError(
                "unknown_order", f"{kind} for order {event.get('order_id')!r} never placed"
            )
        step = _Step(state, config, levels, now, event_id, customer)
        handler = _HANDLERS.get(str(kind))
        if handler is None:
            raise OrderInputError("unknown_type", f"type: {kind!r} is not an order event type")
        handler(step, event)
    state.seen.append(event_id)
    del state.seen[:-SEEN_LIMIT]
    return step.result()


def _need(step: _Step, allowed: frozenset[str] | set[str], kind: str) -> None:
    if step.s.status not in allowed:
        raise OrderInputError(
            "invalid_transition", f"{kind}: not possible for an order {step.s.status}"
        )


def _by(event: Mapping[str, Any]) -> str | None:
    by = event.get("by") or event.get("source")
    return str(by) if by else None


def _cancelled(step: _Step, event: Mapping[str, Any]) -> None:
    if event["type"] == "cancelled" and step.s.status in ("cancelled", "rejected"):
        return  # the channel's echo of a cancellation made here: nothing left to release
    _need(step, CANCELLABLE, str(event["type"]))
    who = "channel" if event["type"] == "cancelled" else "operator"
    step.cancel("cancelled", event.get("note") or f"cancelled by the {who}", _by(event))


def _rejected(step: _Step, event: Mapping[str, Any]) -> None:
    _need(step, {"pending_approval", "exception", "backordered", "partially_allocated"}, "reject")
    step.cancel("rejected", event.get("note") or "rejected by an operator", _by(event))


def _approved(step: _Step, event: Mapping[str, Any]) -> None:
    if str(_by(event)).startswith("connector:"):
        _paid(step, event)
        return
    _need(step, {"pending_approval"}, "approve")
    step.s.reason = None
    step.go("released", event.get("note") or "approved", _by(event))


def _paid(step: _Step, event: Mapping[str, Any]) -> None:
    """The channel's ``approved``: it confirms the payment of an order it placed with
    ``risk: payment_pending``. An order still being allocated will not wait for it; one
    waiting for it is released, unless a rule of the merchant's makes it wait for a person;
    any other order has nothing to do (a channel approves no more than payments)."""
    s = step.s
    if s.risk is None or s.risk.lower() != PAYMENT_PENDING:
        return
    s.risk = None
    if s.status != "pending_approval" or not (s.reason or "").startswith(PAYMENT_PENDING):
        return
    book = step.customer or CustomerBook()
    if s.customer_type == "b2b" and s.customer_ref:  # its own total is in the balance already
        book = CustomerBook(book.orders_seen, max(0, book.open_balance - s.total()))
    why = approval_reason(s.as_order(), s.total(), book, step.config.approvals)
    s.reason = why
    step.go("pending_approval" if why else "released", why or "payment confirmed", _by(event))


def _rerouted(step: _Step, event: Mapping[str, Any]) -> None:
    if event.get("lines"):
        _rerouted_missing(step, event)
        return
    s = step.s
    _need(step, REROUTABLE, "reroute")
    step.close_balance()
    step.release([ln.sku for ln in s.lines], "release")  # every SKU, as settle does
    for ln in s.lines:
        ln.status = "released" if ln.status in ("reserved", "backordered") else ln.status
        ln.refusal = None
    s.tried = []
    s.round_start = s.attempt + 1
    step.route(_by(event), event.get("location"))


def _rerouted_missing(step: _Step, event: Mapping[str, Any]) -> None:
    """Units of reserved lines missing where they were reserved (a short pick): the named
    quantity of each line is released (``ob|{order}|{attempt}|{line}|short``), the line
    keeps the rest, and a new line ``{line}/r{n}`` of the missing units is routed alone."""
    s = step.s
    _need(step, {"allocated", "released", "partially_shipped"}, "reroute lines")
    by_id = {ln.line_id: ln for ln in s.lines}
    moved: list[LineState] = []
    for named in event.get("lines") or []:
        ln = by_id.get(named.get("line_id"))
        if ln is None or ln.status != "reserved":
            raise OrderInputError(
                "unknown_line", f"lines: {named.get('line_id')!r} is not a reserved line"
            )
        missing = min(int(named.get("qty") or 0), ln.qty - ln.shipped_qty)
        if missing <= 0:
            continue
        step.out.events.append(
            stock_event(
                "order_cancelled",
                ln.sku,
                f"ob|{s.order_id}|{s.attempt}|{ln.line_id}|short",
                step.now,
                qty=missing,
                channel=s.channel,
                order_id=s.order_id,
                source=SOURCE,
                reason="short_pick",
            )
        )
        ln.qty -= missing
        if ln.qty <= ln.shipped_qty:
            ln.status = "shipped" if ln.shipped_qty else "released"
        root = ln.line_id.split("/r", 1)[0]
        n = sum(1 for x in s.lines if x.line_id.split("/r", 1)[0] == root)
        moved.append(
            LineState(
                f"{root}/r{n}", ln.sku, missing, unit_price=ln.unit_price, currency=ln.currency
            )
        )
    if not moved:
        return
    s.lines.extend(moved)
    s.short = True
    s.tried = []
    s.round_start = s.attempt + 1
    s.reason = event.get("note")
    step.route_short(_by(event))


def _shipped(step: _Step, event: Mapping[str, Any]) -> None:
    s = step.s
    _need(step, SHIPPABLE | {"exception"}, "shipped")
    named = _named(s, event.get("lines") or [])
    unknown = set(named) - {ln.line_id for ln in s.lines}
    if unknown:
        raise OrderInputError("unknown_line", f"lines: {sorted(unknown)} not in the order")
    # an exception holds nothing, but the channel shipped anyway: a physical fact the ledger
    # records as an unreserved shipment (units leave on_hand)
    shippable: tuple[str, ...] = ("reserved", "shipped", "backordered")
    if s.status == "exception":
        shippable += ("released", "refused", "pending")
    for ln in s.lines:
        if named and ln.line_id not in named:
            continue
        if ln.status not in shippable:
            continue
        qty = min(named.get(ln.line_id) or ln.qty - ln.shipped_qty, ln.qty - ln.shipped_qty)
        if qty <= 0:
            continue
        step.ship(ln, qty, event.get("location"), event["event_id"])
        ln.shipped_qty += qty
        ln.status = "shipped" if ln.shipped_qty >= ln.qty else ln.status
        if event.get("location"):
            ln.location = event["location"]
    live = [ln for ln in s.lines if ln.status in ("reserved", "backordered", "shipped")]
    done = all(ln.shipped_qty >= ln.qty for ln in live) and bool(live)
    if done:
        step.close_balance()
    step.go("shipped" if done else "partially_shipped", event.get("note"), _by(event))


def _delivered(step: _Step, event: Mapping[str, Any]) -> None:
    _need(step, {"shipped", "partially_shipped"}, "delivered")
    for ln in step.s.lines:
        if ln.status == "shipped":
            ln.status = "delivered"
    step.go("delivered", event.get("note"), _by(event))


def _returned(step: _Step, event: Mapping[str, Any]) -> None:
    _need(step, {"shipped", "partially_shipped", "delivered", "picked_up"}, "returned")
    named = set(_named(step.s, event.get("lines") or []))
    for ln in step.s.lines:
        if ln.status in ("shipped", "delivered") and (not named or ln.line_id in named):
            ln.status = "returned"
    step.go("returned", event.get("note"), _by(event))


def _ready(step: _Step, event: Mapping[str, Any]) -> None:
    if step.s.delivery != "pickup":
        raise OrderInputError("invalid_transition", "ready_for_pickup: not a pickup order")
    _need(step, {"allocated", "released"}, "ready_for_pickup")
    step.go("ready_for_pickup", event.get("note"), _by(event))


def _picked_up(step: _Step, event: Mapping[str, Any]) -> None:
    s = step.s
    if s.delivery != "pickup":
        raise OrderInputError("invalid_transition", "picked_up: not a pickup order")
    _need(step, {"allocated", "released", "ready_for_pickup"}, "picked_up")
    for ln in s.lines:
        if ln.status == "reserved":
            step.ship(ln, ln.qty - ln.shipped_qty, s.pickup_location, event["event_id"])
            ln.shipped_qty = ln.qty
            ln.status = "delivered"
    step.close_balance()
    step.go("picked_up", event.get("note"), _by(event))


_HANDLERS: dict[str, Callable[[_Step, Mapping[str, Any]], None]] = {
    "cancelled": _cancelled,
    "cancel_requested": _cancelled,
    "rejected": _rejected,
    "approved": _approved,
    "rerouted": _rerouted,
    "shipped": _shipped,
    "delivered": _delivered,
    "returned": _returned,
    "ready_for_pickup": _ready,
    "picked_up": _picked_up,
}


# -- the ledger's decisions --------------------------------------------------------------


def order_id_of_decision(decision: Mapping[str, Any]) -> str | None:
    """The order a Decision answers, when it answers one of the order book's reservations."""
    event_id = decision.get("event_id") or ""
    if not event_id.startswith("ob|") or not decision.get("order_id"):
        return None
    return str(decision["order_id"])


def apply_decision(
    state: OrderBookState | None,
    decision: Mapping[str, Any],
    config: OrderConfig,
    levels: Levels | Network,
    now: int,
    customer: CustomerBook | None = None,
) -> Result:
    """Apply the ledger's Decision on one of the order's reservations."""
    event_id = str(decision.get("event_id") or "")
    parts = event_id.split("|")
    if state is None:
        raise OrderInputError("unknown_order", f"decision {event_id!r} for an unknown order")
    # ob|{order_id}|{attempt}|{line_id}: the order id may itself hold "|"
    prefix = f"ob|{state.order_id}|"
    if not event_id.startswith(prefix) or len(parts) < 4:
        raise OrderInputError("invalid_decision", f"event_id {event_id!r} is not this order's")
    attempt_text, _, line_id = event_id[len(prefix) :].partition("|")
    if not attempt_text.isdigit():
        raise OrderInputError("invalid_decision", f"event_id {event_id!r}: no attempt number")
    line = next((ln for ln in state.lines if ln.line_id == line_id), None)
    if line is None:
        raise OrderInputError("invalid_decision", f"event_id {event_id!r}: no such line")
    if int(attempt_text) != state.attempt or state.status != "routed" or line.status != "pending":
        return Result(state, duplicate=True)  # decided before, or an earlier attempt's
    outcome = decision.get("outcome")
    step = _Step(state, config, levels, now, event_id, customer)
    if outcome == "accepted":
        line.status = "reserved"
        line.location = decision.get("location") or line.location
        line.lot = decision.get("lot")  # the lots reserved, earliest expiry first (FEFO)
    elif outcome in ("rejected", "backordered"):
        line.status = "refused" if outcome == "rejected" else "backordered"
        line.refusal = str(decision.get("reason") or outcome)
    else:
        raise OrderInputError("invalid_decision", f"outcome: {outcome!r}")
    if all(ln.status != "pending" for ln in state.lines):
        step.settle()
    return step.result()


# -- timers ------------------------------------------------------------------------------


def on_timer(
    state: OrderBookState,
    config: OrderConfig,
    levels: Levels | Network,
    now: int,
    customer: CustomerBook | None = None,
) -> Result:
    """What time does to the order: an approval that expired; reservations still without
    Decision after ``resend_after_seconds`` are sent again (same ids: the ledger drops any it
    applied). ``Result.changed`` is False when nothing happened."""
    if state.status == "routed":
        if now - state.routed_at < config.core.resend_after_seconds * 1000:
            return Result(state)
        step = _Step(state, config, levels, now, f"ob|{state.order_id}|timer|{now}", customer)
        state.routed_at = now
        if state.resends >= MAX_RESENDS and state.short:
            # a short pick's new lines never answered: they are refused; the picked lines
            # keep their reservations (a release per SKU would take theirs too)
            for ln in state.lines:
                if ln.status == "pending":
                    ln.status, ln.refusal = "refused", "no decision from the ledger"
            state.short = False
            state.reason = step._refusals()
            step.go("partially_allocated", state.reason)
            return step.result()
        if state.resends >= MAX_RESENDS:
            # no Decision however often asked (the ledger refused the events as invalid, or
            # its decisions were lost): give up on the attempt, releasing whatever it holds
            step.release([ln.sku for ln in state.lines], "release")  # every SKU, as settle
            for ln in state.lines:
                if ln.status in ("pending", "reserved"):
                    ln.status = "released"
            step._exception(f"no decision from the ledger after {MAX_RESENDS} resends")
            return step.result()
        state.resends += 1
        step.reserve()
        return step.result()
    if state.status == "pending_approval":
        rules = config.approvals
        # the OrderState as published: updated_at is when it started waiting
        what = expired(state.record(state.history[-1] if state.history else {}), now, rules)
        if what is None:
            return Result(state)
        step = _Step(state, config, levels, now, f"ob|{state.order_id}|expired|{now}", customer)
        if what == "release":
            step.cancel("rejected", "approval expired: stock released", BY)
        else:
            state.reason = "approval expired: escalated"
            step.go("exception", state.reason)
        return step.result()
    return Result(state)
