"""Marketplace orders the seller must accept: accepted only when the ledger reserved every line.

Cdiscount, Fnac Darty, eMAG and Mirakl operators hold a new order until the seller accepts
or refuses it, within a window, and punish the seller who accepts and then cancels. So an
order awaiting acceptance is reserved first and answered after:

1. the marketplace's inbound calls :meth:`AcceptanceGate.expect` with the order, then hands
   its Delivery (one ``order_placed`` per line, ids ``…/order/<id>/line/<id>/placed``) to the
   intake;
2. the ledger answers each line on ``stock.decisions.v1``; the gate reads them
   (:meth:`AcceptanceGate.on_decision`);
3. every line ``accepted`` (reserved in full) → the marketplace's ``accept``; any line
   refused or backordered → every line released (``order_cancelled``, ids
   ``…/line/<id>/cancelled``, the ids the inbound uses when it later sees the order
   refused, so the ledger counts the release once) and the marketplace's ``refuse`` with its
   out-of-stock reason. A refused order keeps nothing reserved.
4. an order still undecided ``margin_s`` before its deadline is refused the same way
   (``deadline``): late is refused, never accepted blind.

With ``orders: book`` (the order is an Order record for the order book, not per-line
events) the same gate learns the outcome from the order's state on ``orders.state.v1``
(:meth:`AcceptanceGate.on_state`): ``allocated`` or ``released`` → accept; ``exception``,
``rejected``, ``backordered``, ``partially_allocated`` (or ``cancelled`` in the book by an
operator) → refuse, after an Order
``cancelled`` (id ``…/order/<id>/cancelled``, the id the inbound uses when it later sees the
order refused) so the book releases what it holds. One gate, two ways to learn the outcome:
the order says which (``AwaitedOrder.book``).

Releasing every line, not only the reserved ones, needs no bookkeeping of which were: the
release of a line follows its ``order_placed`` on the SKU's partition, so the ledger applies
it after the reservation, and a line that was never reserved is skipped (``unknown_order``).

Wiring: a marketplace's ``build_*`` returns its :class:`AcceptanceActions` as the
``acceptance`` part of the runtime's ``Channel``; the runtime builds one gate for every such
channel and sets it on the channel's inbound as ``inbound.acceptance_gate`` before polling
starts (the inbound declares ``acceptance_gate: AcceptanceGate | None = None``).

The pending orders and the answers recorded are kept in ``acceptance.json`` in the
connectors' state folder, written before a decision's offset is counted as done: a
restart answers the orders that were waiting, once. Outcomes are counted
(``stockflow_connector_acceptance_total``), logged and listed at ``GET /v1/acceptances``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from aiohttp import web
from prometheus_client import Counter

from connectors.framework import events as channel_events
from connectors.framework.orders import order_record
from connectors.framework.state import read_json, write_json
from connectors.framework.types import StockEventDict, ThrottledError, UnavailableError
from schemas.times import ms_to_iso, now_ms
from streams.bundles.catalogue import Catalogue
from streams.bundles.expand import component_event_id, expand_event

log = logging.getLogger(__name__)

ACCEPTANCES = Counter(
    "stockflow_connector_acceptance_total",
    "Marketplace orders answered, by outcome (accepted, refused, accept_failed, refuse_failed).",
    ["channel", "outcome"],
)

RESERVED = "accepted"  # the ledger's outcome for a line reserved in full


@dataclass(frozen=True, slots=True)
class AwaitedLine:
    line_id: str  # the marketplace's line id
    sku: str
    qty: int


@dataclass(frozen=True, slots=True)
class AwaitedOrder:
    """An order the marketplace holds until the seller answers (the channel's own ids only)."""

    channel: str
    account: str
    order_id: str
    lines: tuple[AwaitedLine, ...]
    deadline_ms: int | None  # when the marketplace stops waiting (None: it did not say)
    book: bool = False  # the order book holds it: its outcome comes from orders.state.v1

    @property
    def book_id(self) -> str:
        """The order's id in the order book (``<channel>:<channel's id>``)."""
        return f"{self.channel}:{self.order_id}"

    def book_cancelled_id(self) -> str:
        return channel_events.event_id(
            self.channel, self.account, "order", self.order_id, "cancelled"
        )

    def placed_id(self, line: AwaitedLine) -> str:
        return channel_events.event_id(
            self.channel, self.account, "order", self.order_id, "line", line.line_id, "placed"
        )

    def cancelled_id(self, line: AwaitedLine) -> str:
        return channel_events.event_id(
            self.channel, self.account, "order", self.order_id, "line", line.line_id, "cancelled"
        )

    @property
    def key(self) -> str:
        return f"{self.channel}/{self.order_id}"


class AcceptanceActions(Protocol):
    """A marketplace's answers; both idempotent on the marketplace. Raise
    :class:`ThrottledError` / :class:`UnavailableError` to be tried again; any other
    exception means the marketplace refused the call (recorded, not retried)."""

    channel: str
    account: str

    async def accept(self, order: AwaitedOrder) -> None: ...

    async def refuse(self, order: AwaitedOrder, reason: str) -> None:
        """Refuse every line with the marketplace's own out-of-stock reason; ``reason`` is
        stockflow's (``insufficient_stock``, ``deadline``…), for notes and logs."""
        ...


Publish = Callable[[Sequence[StockEventDict]], Awaitable[None]]
PublishOrders = Callable[[Sequence[dict[str, Any]]], Awaitable[None]]

BOOK_ACCEPT = frozenset({"allocated", "released"})
"""Order states of the book meaning every unit is held for the order: accept it."""
BOOK_REFUSE = frozenset(
    {"exception", "rejected", "backordered", "partially_allocated", "cancelled"}
)
"""Order states meaning the book cannot hold it all (or an operator cancelled it there):
refuse it (and release what it holds)."""


@dataclass
class _Pending:
    order: AwaitedOrder
    outcomes: dict[str, str] = field(default_factory=dict)  # line id → ledger outcome
    reasons: dict[str, str] = field(default_factory=dict)  # line id → ledger reason
    answer: str | None = None  # "accept" | "refuse" once decided, until the channel took it
    why: str = ""
    released: bool = False  # the lines' releases were published (a retried refusal skips it)


def _lines(pending: _Pending) -> list[dict[str, Any]]:
    """Each line with the ledger's answer so far (``undecided`` until it comes)."""
    return [
        {
            "line_id": line.line_id,
            "sku": line.sku,
            "qty": line.qty,
            "ledger": _outcome(pending, line.line_id),
        }
        for line in pending.order.lines
    ]


def _outcome(pending: _Pending, line_id: str) -> str:
    """The ledger's answer on a line; a bundle's line: its components' (the first refusal)."""
    if line_id in pending.outcomes:
        return pending.outcomes[line_id]
    parts = [o for i, o in pending.outcomes.items() if i.startswith(f"{line_id}~")]
    if not parts:
        return "undecided"
    return next((o for o in parts if o != RESERVED), RESERVED)


def _order_doc(order: AwaitedOrder) -> dict[str, Any]:
    return {
        "channel": order.channel,
        "account": order.account,
        "order_id": order.order_id,
        "lines": [[line.line_id, line.sku, line.qty] for line in order.lines],
        "deadline_ms": order.deadline_ms,
        "book": order.book,
    }


def _order_from(doc: Mapping[str, Any]) -> AwaitedOrder:
    return AwaitedOrder(
        channel=str(doc["channel"]),
        account=str(doc["account"]),
        order_id=str(doc["order_id"]),
        lines=tuple(AwaitedLine(str(i), str(s), int(q)) for i, s, q in doc["lines"]),
        deadline_ms=None if doc.get("deadline_ms") is None else int(doc["deadline_ms"]),
        book=bool(doc.get("book")),
    )


class AcceptanceGate:
    """Answers the awaited orders of ``actions``' marketplaces from the ledger's decisions."""

    def __init__(
        self,
        actions: Mapping[str, AcceptanceActions],
        publish: Publish,
        *,
        path: Path | None = None,
        margin_s: float = 60.0,
        attempts: int = 6,
        backoff_s: float = 1.0,
        max_rows: int = 10_000,
        clock: Callable[[], int] = now_ms,
        bundles: Catalogue | None = None,
        publish_orders: PublishOrders | None = None,
    ) -> None:
        self.actions = dict(actions)
        # a bundle's line waits for its components' decisions (the intake expanded it)
        self._bundles = bundles or Catalogue()
        self._publish = publish
        self._publish_orders = publish_orders
        self._path = path
        self._margin_ms = int(margin_s * 1000)
        self._attempts = attempts
        self._backoff = backoff_s
        self._clock = clock
        self._pending: dict[str, _Pending] = {}
        self._by_event: dict[str, tuple[str, str]] = {}  # placed event id → (order key, line)
        self._answered: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._max_rows = max_rows
        self._wake = asyncio.Event()
        self._load()

    # ---- what the inbound and the decisions feed call -------------------------------
    def expect(self, order: AwaitedOrder) -> None:
        """Wait for the ledger on ``order``; a second call for it (polled again, answered or
        not) changes nothing."""
        if order.channel not in self.actions:
            raise ValueError(f"{order.channel}: no acceptance actions wired for this channel")
        if order.key in self._pending or order.key in self._answered:
            return
        if order.book and self._publish_orders is None:
            raise ValueError(f"{order.channel}: book orders need publish_orders to be released")
        self._track(_Pending(order))
        self._save()
        self._wake.set()

    def awaits(self, channel: str, order_id: str) -> bool:
        return f"{channel}/{order_id}" in self._pending

    async def on_decision(self, decision: Mapping[str, Any]) -> bool:
        """Record the ledger's answer to a line of an awaited order; True when it was one
        (the refusal policies then leave it alone: the gate answers the marketplace)."""
        found = self._by_event.get(str(decision.get("event_id") or ""))
        if found is None:
            return False
        key, line_id = found
        pending = self._pending.get(key)
        if pending is None or pending.answer is not None:
            return True
        pending.outcomes[line_id] = str(decision.get("outcome"))
        pending.reasons[line_id] = str(decision.get("reason") or "")
        if len(pending.outcomes) == len(self._waited(pending.order)):
            refused = [i for i, o in pending.outcomes.items() if o != RESERVED]
            if refused:
                pending.answer = "refuse"
                pending.why = pending.reasons[refused[0]] or "insufficient_stock"
            else:
                pending.answer = "accept"
        self._save()
        self._wake.set()
        return True

    async def on_state(self, state: Mapping[str, Any]) -> bool:
        """Learn a book order's outcome from its state on ``orders.state.v1``; True when the
        state was of an awaited book order (decided or not yet)."""
        channel = str(state.get("channel") or "")
        order_id = str(state.get("order_id") or "")
        if not order_id.startswith(f"{channel}:"):
            return False
        pending = self._pending.get(f"{channel}/{order_id.removeprefix(f'{channel}:')}")
        if pending is None or not pending.order.book:
            return False
        if pending.answer is not None:
            return True
        status = str(state.get("status") or "")
        if status in BOOK_ACCEPT:
            pending.answer = "accept"
        elif status in BOOK_REFUSE:
            pending.answer = "refuse"
            pending.why = str(state.get("reason") or "") or status
        else:
            return True  # received, routed…: the book has not decided yet
        for line in pending.order.lines:
            pending.outcomes[line.line_id] = status
        self._save()
        self._wake.set()
        return True

    # ---- the answering loop -----------------------------------------------------------
    async def run(self, tick_s: float = 1.0) -> None:
        """Answer decided orders and refuse those at their deadline, until cancelled."""
        while True:
            self._wake.clear()
            await self.answer_due()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), tick_s)

    async def answer_due(self) -> None:
        now = self._clock()
        for key, pending in list(self._pending.items()):
            deadline = pending.order.deadline_ms
            if (
                pending.answer is None
                and deadline is not None
                and now >= deadline - self._margin_ms
            ):
                pending.answer, pending.why = "refuse", "deadline"
            if pending.answer is not None:
                await self._answer(key, pending)

    async def _answer(self, key: str, pending: _Pending) -> None:
        order = pending.order
        actions = self.actions[order.channel]
        if pending.answer == "refuse" and not pending.released:
            if order.book:
                assert self._publish_orders is not None  # checked by expect
                await self._publish_orders([self._book_release(order)])
            else:
                await self._publish(self._releases(order))
            pending.released = True
            self._save()
        call = (
            actions.accept(order)
            if pending.answer == "accept"
            else actions.refuse(order, pending.why)
        )
        outcome = "accepted" if pending.answer == "accept" else "refused"
        error = await self._call(call, order)
        if error == "retry":
            return  # still pending: the next tick tries again, the refusal stays decided
        if error is not None:
            outcome = f"{pending.answer}_failed"
        self._finish(key, pending, outcome, error)

    async def _call(self, call: Awaitable[None], order: AwaitedOrder) -> str | None:
        """None once the marketplace took it; ``retry`` after a throttle or outage (the
        deadline loop tries again); the error's class when the marketplace refused it."""
        try:
            await call
            return None
        except (ThrottledError, UnavailableError) as exc:
            wait = getattr(exc, "retry_after", None) or self._backoff
            log.info(
                "acceptance %s/%s: %s, again in %.1fs",
                order.channel,
                order.order_id,
                type(exc).__name__,
                wait,
            )
            await asyncio.sleep(min(float(wait), 30.0))
            return "retry"
        except Exception as exc:  # refused by the marketplace (4xx): retrying will not help
            return type(exc).__name__  # the class only: texts may carry request details

    def _releases(self, order: AwaitedOrder) -> list[StockEventDict]:
        at = self._clock()
        releases = [
            channel_events.stock_event(
                event_id=order.cancelled_id(line),
                type="order_cancelled",
                sku=line.sku,
                qty=line.qty,
                channel=order.channel,
                occurred_at=at,
                order_id=f"{order.channel}:{order.order_id}",
                reason="refused_by_seller",
            )
            for line in order.lines
        ]
        return [e for release in releases for e in expand_event(release, self._bundles)]

    def _book_release(self, order: AwaitedOrder) -> dict[str, Any]:
        """The Order ``cancelled`` that makes the book release what it holds for ``order``."""
        at = self._clock()
        return order_record(
            event_id=order.book_cancelled_id(),
            type="cancelled",
            order_id=order.book_id,
            channel=order.channel,
            placed_at=at,
            occurred_at=at,
            note="refused_by_seller",
        )

    def _finish(self, key: str, pending: _Pending, outcome: str, error: str | None) -> None:
        order = pending.order
        del self._pending[key]
        for event_id in self._waited(order):
            self._by_event.pop(event_id, None)
        row: dict[str, Any] = {
            "channel": order.channel,
            "order_id": order.order_id,
            "outcome": outcome,
            "reason": pending.why if pending.answer == "refuse" else "",
            "lines": _lines(pending),
            "at": ms_to_iso(self._clock()),
        }
        if error is not None:
            row["error"] = error
        self._answered[key] = row
        while len(self._answered) > self._max_rows:
            self._answered.popitem(last=False)
        self._save()
        ACCEPTANCES.labels(order.channel, outcome).inc()
        log.info(
            "acceptance channel=%s order=%s lines=%d outcome=%s%s%s",
            order.channel,
            order.order_id,
            len(order.lines),
            outcome,
            f" reason={row['reason']}" if row["reason"] else "",
            f" error={error}" if error else "",
        )

    # ---- view and persistence ---------------------------------------------------------
    def rows(self) -> list[dict[str, Any]]:
        """The answered orders (oldest first), then the ones still waiting."""
        waiting = [
            {
                "channel": p.order.channel,
                "order_id": p.order.order_id,
                "outcome": "pending",
                "reason": "",
                "lines": _lines(p),
                "deadline": None if p.order.deadline_ms is None else ms_to_iso(p.order.deadline_ms),
            }
            for p in self._pending.values()
        ]
        return [*self._answered.values(), *waiting]

    def _track(self, pending: _Pending) -> None:
        order = pending.order
        self._pending[order.key] = pending
        for event_id, line_id in self._waited(order).items():
            self._by_event[event_id] = (order.key, line_id)

    def _waited(self, order: AwaitedOrder) -> dict[str, str]:
        """The reservations the order waits for: event id -> line (a bundle's line: one per
        component, ``{line}~{component}``)."""
        waited: dict[str, str] = {}
        if order.book:
            return waited  # learnt from the order's state, not from per-line decisions
        for line in order.lines:
            bundle = self._bundles.get(line.sku)
            if bundle is None:
                waited[order.placed_id(line)] = line.line_id
                continue
            for sku in bundle.for_channel(order.channel):
                waited[component_event_id(order.placed_id(line), sku)] = f"{line.line_id}~{sku}"
        return waited

    def _save(self) -> None:
        if self._path is None:
            return
        write_json(
            self._path,
            {
                "pending": [
                    {
                        "order": _order_doc(p.order),
                        "outcomes": p.outcomes,
                        "reasons": p.reasons,
                        "answer": p.answer,
                        "why": p.why,
                        "released": p.released,
                    }
                    for p in self._pending.values()
                ],
                "answered": list(self._answered.items()),
            },
        )

    def _load(self) -> None:
        if self._path is None:
            return
        raw = read_json(self._path)
        if not isinstance(raw, dict):
            return
        try:
            for doc in raw.get("pending", []):
                pending = _Pending(
                    _order_from(doc["order"]),
                    outcomes={str(k): str(v) for k, v in doc.get("outcomes", {}).items()},
                    reasons={str(k): str(v) for k, v in doc.get("reasons", {}).items()},
                    answer=doc.get("answer"),
                    why=str(doc.get("why") or ""),
                    released=bool(doc.get("released")),
                )
                if pending.order.channel in self.actions:
                    self._track(pending)
            for key, row in raw.get("answered", []):
                self._answered[str(key)] = dict(row)
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("%s unreadable (%s); starting without it", self._path, exc)
        if self._pending:
            log.info("acceptance: %d orders still awaiting an answer restored", len(self._pending))


def acceptance_routes(gate: AcceptanceGate | None) -> list[web.RouteDef]:
    """``GET /v1/acceptances``: each marketplace order answered (channel ids only), then the
    ones waiting for the ledger; an empty list where no configured channel holds orders."""

    async def list_acceptances(request: web.Request) -> web.Response:
        return web.json_response([] if gate is None else gate.rows())

    return [web.get("/v1/acceptances", list_acceptances)]
