"""The order book's rules (streams.orders.book) against the ledger's real rules, in memory.

A small exchange plays the Kafka round trip: the book's StockEvents go to the per-SKU
ledger (``streams.ledger.apply``), the ledger's Decisions come back to the book, in an
order (and with duplicates) the test chooses.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.codec import single_object_codec
from streams.ledger import SkuState, apply, parse_config
from streams.ledger.config import load_config
from streams.orders import book
from streams.orders.book import (
    OrderBookState,
    OrderInputError,
    apply_decision,
    apply_order_event,
    on_timer,
    order_id_of_decision,
)
from streams.orders.config import OrderConfigError
from streams.orders.setup import OrderConfig, load_order_config, parse_order_config

NOW = 1_700_000_000_000
LEDGER = parse_config({"default_location": "a", "locations": [{"name": "a"}, {"name": "b"}]})


def placed(order_id: str, lines: list[tuple[str, str, int]], **extra: Any) -> dict[str, Any]:
    return {
        "event_id": f"{order_id}/placed",
        "type": "placed",
        "order_id": order_id,
        "channel": extra.pop("channel", "web"),
        "lines": [
            {"line_id": lid, "sku": sku, "qty": qty, "unit_price": 100, "currency": "EUR"}
            for lid, sku, qty in lines
        ],
        "ship_to": {"country": "FR", "postal_code": "75001", "lat": None, "lon": None},
        "delivery": extra.pop("delivery", "ship"),
        "pickup_location": extra.pop("pickup_location", None),
        "customer_ref": "c1",
        "customer_type": "b2c",
        "risk": None,
        "location": None,
        "note": None,
        "by": None,
        "source": "test",
        "placed_at": NOW,
        "occurred_at": NOW,
        "ingested_at": NOW,
        **extra,
    }


def action(order_id: str, kind: str, n: int = 1, **extra: Any) -> dict[str, Any]:
    event = placed(order_id, [])
    event.update({"event_id": f"{order_id}/{kind}/{n}", "type": kind, "ship_to": None, **extra})
    return event


class Exchange:
    """The ledger's SKU states and the Decisions on their way back to the book."""

    def __init__(self, stock: Mapping[str, Mapping[str, int]], config: OrderConfig) -> None:
        self.config = config
        self.skus: dict[str, SkuState] = {}
        self.orders: dict[str, OrderBookState | None] = {}
        self.inflight: list[dict[str, Any]] = []  # decisions not yet back
        self.published: list[dict[str, Any]] = []
        for sku, where in stock.items():
            for loc, qty in where.items():
                if not qty:
                    continue
                self.ledger(
                    {
                        "event_id": f"r-{sku}-{loc}",
                        "type": "receipt",
                        "sku": sku,
                        "qty": qty,
                        "location": loc,
                    }
                )
        self.refresh()

    def ledger(self, fields: dict[str, Any]) -> None:
        from schemas.events import stock_event

        fields = dict(fields)
        event = stock_event(fields.pop("type"), fields.pop("sku"), fields.pop("event_id"), NOW)
        event.update(fields)
        self.apply_stock(event)

    def apply_stock(self, event: dict[str, Any]) -> None:
        state, emitted = apply(self.skus.get(event["sku"]), event, LEDGER, NOW)
        self.skus[event["sku"]] = state
        if emitted.decision is not None and order_id_of_decision(emitted.decision):
            self.inflight.append(emitted.decision)

    def refresh(self) -> None:
        """The routing's view of the levels catches up with the ledger (it lags behind)."""
        self.view = {
            sku: {n: max(0, loc.free(0)) for n, loc in state.locations.items()}
            for sku, state in self.skus.items()
        }

    def levels(self, sku: str) -> dict[str, int]:
        return self.view.get(sku, {})

    def take(self, result: Any, order_id: str) -> None:
        if not result.duplicate:
            self.orders[order_id] = result.state
        self.published += result.states
        for event in result.events:
            self.apply_stock(event)

    def order(self, event: dict[str, Any]) -> Any:
        oid = event["order_id"]
        result = apply_order_event(self.orders.get(oid), event, self.config, self.levels, NOW)
        self.take(result, oid)
        return result

    def decide(self, decision: dict[str, Any]) -> Any:
        oid = decision["order_id"]
        result = apply_decision(self.orders.get(oid), decision, self.config, self.levels, NOW)
        self.take(result, oid)
        return result

    def settle(self, rng: random.Random | None = None, duplicates: float = 0.0) -> None:
        while self.inflight:
            i = rng.randrange(len(self.inflight)) if rng else 0
            decision = self.inflight.pop(i)
            self.decide(decision)
            if rng and rng.random() < duplicates:
                self.decide(decision)

    def reserved(self, order_id: str) -> dict[str, int]:
        """Units the ledger holds for the order, per SKU."""
        held = {}
        for sku, state in self.skus.items():
            units = sum((state.orders.get(order_id) or {}).values())
            if units:
                held[sku] = units
        return held

    def state(self, order_id: str) -> OrderBookState:
        found = self.orders[order_id]
        assert found is not None
        return found


def test_an_order_with_stock_is_allocated_at_one_location() -> None:
    """Given stock of both SKUs at b, and only of one at a
    When a two-line order is placed and the ledger answers
    Then both lines are reserved at b, the order is allocated, and its transitions are
    received, routed, allocated with versions 1, 2, 3."""
    ex = Exchange({"x": {"a": 5, "b": 5}, "y": {"b": 5}}, OrderConfig())
    ex.order(placed("web:1", [("1", "x", 2), ("2", "y", 1)]))
    ex.settle()
    s = ex.state("web:1")
    assert s.status == "allocated"
    assert [(ln.location, ln.status) for ln in s.lines] == [("b", "reserved")] * 2
    assert ex.reserved("web:1") == {"x": 2, "y": 1}
    assert [(r["version"], r["status"]) for r in ex.published] == [
        (1, "received"),
        (2, "routed"),
        (3, "allocated"),
    ]
    assert "single location b" in (s.route_reason or "")


def test_a_refused_line_releases_the_other_and_ends_in_exception() -> None:
    """Given an order whose line y looks available to routing but is taken meanwhile
    When the ledger refuses y and accepts x
    Then x is released, the next plans are tried, and the order is an exception with the
    refusal as reason, holding nothing."""
    ex = Exchange({"x": {"a": 5}, "y": {"a": 1}}, OrderConfig())
    ex.order(placed("web:2", [("1", "y", 1)]))  # takes y; the routing's view still has it
    ex.order(placed("web:1", [("1", "x", 1), ("2", "y", 1)]))
    ex.settle()
    loser = ex.state("web:1")
    assert ex.state("web:2").status == "allocated"
    assert loser.status == "exception"
    assert "insufficient_stock" in (loser.reason or "")
    assert ex.reserved("web:1") == {}
    assert {ln.status for ln in loser.lines} == {"released", "refused"}


LOST = {  # a reservation of a plan lost to a crash: the stored state never saw it
    "event_id": "ob|web:1|7|2", "type": "order_placed", "sku": "y", "qty": 1,
    "location": "b", "order_id": "web:1", "channel": "web",
}  # fmt: skip


@pytest.mark.parametrize("y_at_b", [3, 1])
def test_a_reservation_the_state_never_saw_is_released_before_the_next_plan(
    y_at_b: int,
) -> None:
    """Given an order whose stored state was replayed after a crash onto another plan, so
    the ledger holds a unit of y (a reservation of the lost plan) that the state does not
    know of
    When its line y is refused and the order is re-planned
    Then the order is allocated and the ledger holds exactly its lines: the unit of the
    lost plan was released with the rest (with one unit of y at b, that is what lets the
    next plan have it)."""
    ex = Exchange({"x": {"a": 5, "b": 5}, "y": {"a": 1, "b": y_at_b}}, OrderConfig())
    ex.ledger(LOST)
    ex.inflight.clear()  # its decision came back to a state that has since been replaced
    ex.order(placed("web:2", [("1", "y", 1)]))  # takes y at a; the routing still sees it
    ex.order(placed("web:1", [("1", "x", 1), ("2", "y", 1)]))
    ex.settle()
    s = ex.state("web:1")
    want = {ln.sku: ln.qty for ln in s.lines if ln.status == "reserved"}
    assert s.status == "allocated"
    assert ex.reserved("web:1") == want


def test_a_cancellation_releases_what_the_state_never_saw() -> None:
    """Given an order in exception holding nothing as far as its state knows, while the
    ledger holds a unit of y for it (a reservation of a plan lost to a crash)
    When the channel cancels the order
    Then the ledger holds nothing for it."""
    ex = Exchange({"x": {"a": 5}, "y": {"a": 0, "b": 1}}, OrderConfig())
    ex.order(placed("web:1", [("1", "x", 1), ("2", "y", 5)]))
    ex.settle()
    assert ex.state("web:1").status == "exception"
    ex.ledger(LOST)
    ex.inflight.clear()
    ex.order(action("web:1", "cancelled"))
    assert ex.state("web:1").status == "cancelled"
    assert ex.reserved("web:1") == {}


def test_ship_available_keeps_what_was_reserved() -> None:
    """Given the channel's policy ship_available
    When one line is refused
    Then the other stays reserved and the order is partially_allocated."""
    config = parse_order_config({"channels": [{"name": "web", "policy": "ship_available"}]})
    ex = Exchange({"x": {"a": 5}, "y": {"a": 1}}, config)
    ex.order(placed("web:2", [("1", "y", 1)]))
    ex.order(placed("web:1", [("1", "x", 1), ("2", "y", 1)]))
    ex.settle()
    assert ex.state("web:1").status == "partially_allocated"
    assert ex.reserved("web:1") == {"x": 1}


def test_backorder_rest_lets_refused_lines_wait() -> None:
    """Given the channel's policy backorder_rest
    When one line is refused
    Then the other stays reserved, the refused line waits backordered."""
    config = parse_order_config({"channels": [{"name": "web", "policy": "backorder_rest"}]})
    ex = Exchange({"x": {"a": 5}, "y": {"a": 1}}, config)
    ex.order(placed("web:2", [("1", "y", 1)]))
    ex.order(placed("web:1", [("1", "x", 1), ("2", "y", 1)]))
    ex.settle()
    s = ex.state("web:1")
    assert s.status == "backordered"
    assert [ln.status for ln in s.lines] == ["reserved", "backordered"]
    assert ex.reserved("web:1") == {"x": 1}


def test_a_refused_plan_is_followed_by_the_next_best() -> None:
    """Given y at a (2 units) and b (1 unit), x at both
    When the single-location plan at a is refused (y taken at a meanwhile)
    Then the order is routed again to b and allocated there."""
    ex = Exchange({"x": {"a": 5, "b": 5}, "y": {"a": 2, "b": 1}}, OrderConfig())
    ex.ledger({"event_id": "sold", "type": "sale", "sku": "y", "qty": 2, "location": "a"})
    ex.order(placed("web:1", [("1", "x", 1), ("2", "y", 1)]))  # the view still has 2 at a
    ex.settle()
    s = ex.state("web:1")
    assert s.status == "allocated", s.reason
    assert s.attempt == 2
    assert [ln.location for ln in s.lines] == ["b", "b"]
    assert ex.reserved("web:1") == {"x": 1, "y": 1}


def test_duplicates_change_nothing() -> None:
    """Given an allocated order
    When its placed event and a decision come again
    Then nothing changes and nothing is sent or published."""
    ex = Exchange({"x": {"a": 5}}, OrderConfig())
    ex.order(placed("web:1", [("1", "x", 1)]))
    decision = ex.inflight[0]
    ex.settle()
    before = ex.state("web:1").to_bytes()
    again = ex.order(placed("web:1", [("1", "x", 1)]))
    assert again.duplicate and not again.events and not again.states
    again = ex.decide(decision)
    assert again.duplicate and not again.events and not again.states
    assert ex.state("web:1").to_bytes() == before


def test_cancel_releases_everything_and_names_who() -> None:
    """Given an order still waiting for the ledger's decisions
    When an operator cancels it, and then the decisions arrive
    Then the order holds nothing, is cancelled by the operator, and the late decisions
    change nothing."""
    ex = Exchange({"x": {"a": 5}, "y": {"a": 5}}, OrderConfig())
    ex.order(placed("web:1", [("1", "x", 1), ("2", "y", 1)]))
    ex.order(action("web:1", "cancel_requested", by="alice"))
    ex.settle()
    s = ex.state("web:1")
    assert s.status == "cancelled"
    assert ex.published[-1]["transition"]["by"] == "alice"
    assert ex.reserved("web:1") == {}


def test_the_channels_echo_of_a_cancellation_made_here_changes_nothing() -> None:
    """Given an order an operator cancelled here (the connector then cancels it on the
    channel)
    When the channel's own cancellation of it comes back as an Order event
    Then it is no error and publishes nothing: the order stays cancelled by the operator."""
    ex = Exchange({"x": {"a": 5}}, OrderConfig())
    ex.order(placed("web:1", [("1", "x", 1)]))
    ex.settle()
    ex.order(action("web:1", "cancel_requested", by="alice"))
    ex.settle()
    published = len(ex.published)
    echo = ex.order(action("web:1", "cancelled", by="connector:web"))
    assert echo.events == [] and len(ex.published) == published
    assert ex.state("web:1").status == "cancelled"
    assert ex.published[-1]["transition"]["by"] == "alice"


def test_shipping_in_parts_then_delivery() -> None:
    """Given an allocated two-line order
    When line 1 ships, then line 2 ships, then it is delivered
    Then partially_shipped, shipped, delivered; the ledger's reservations are consumed."""
    ex = Exchange({"x": {"a": 5}, "y": {"a": 5}}, OrderConfig())
    ex.order(placed("web:1", [("1", "x", 2), ("2", "y", 1)]))
    ex.settle()
    ship = action("web:1", "shipped", lines=[{"line_id": "1", "sku": "x", "qty": 2}])
    assert ex.order(ship).events[0]["event_id"] == "ob|web:1|ship|web:1/shipped/1|1"
    assert ex.state("web:1").status == "partially_shipped"
    ex.order(action("web:1", "shipped", 2))
    assert ex.state("web:1").status == "shipped"
    ex.order(action("web:1", "delivered"))
    assert ex.state("web:1").status == "delivered"
    assert ex.reserved("web:1") == {}
    assert ex.skus["x"].locations["a"].on_hand == 3


def test_an_exception_shipped_by_the_channel_still_leaves_the_stock() -> None:
    """Given an order in exception (it holds nothing: the ledger knows no y)
    When the channel ships it anyway
    Then the order is shipped and the units leave on_hand at the ledger."""
    ex = Exchange({"x": {"a": 1}}, OrderConfig())
    ex.order(placed("web:1", [("1", "x", 1), ("2", "y", 1)]))
    ex.settle()
    assert ex.state("web:1").status == "exception"
    assert ex.reserved("web:1") == {}
    ex.order(action("web:1", "shipped", location="a"))
    assert ex.state("web:1").status == "shipped"
    assert ex.skus["x"].locations["a"].on_hand == 0


def test_pickup_reserves_at_the_store_only() -> None:
    """Given stock at a (many) and at store b (enough)
    When a pickup order at b is placed, is ready and picked up
    Then it reserves at b, and the units leave b."""
    ex = Exchange({"x": {"a": 9, "b": 1}}, OrderConfig())
    ex.order(placed("web:1", [("1", "x", 1)], delivery="pickup", pickup_location="b"))
    ex.settle()
    assert [ln.location for ln in ex.state("web:1").lines] == ["b"]
    ex.order(action("web:1", "ready_for_pickup"))
    ex.order(action("web:1", "picked_up"))
    assert ex.state("web:1").status == "picked_up"
    assert ex.skus["x"].locations["b"].on_hand == 0


def test_bad_inputs_give_a_reason() -> None:
    """Given the book
    When inputs cannot apply (no lines, an unknown order, a wrong transition)
    Then OrderInputError with a stable reason."""
    ex = Exchange({"x": {"a": 5}}, OrderConfig())
    with pytest.raises(OrderInputError) as err:
        ex.order(placed("web:1", []))
    assert err.value.reason == "invalid_order"
    with pytest.raises(OrderInputError) as err:
        ex.order(action("web:9", "approved"))
    assert err.value.reason == "unknown_order"
    ex.order(placed("web:1", [("1", "x", 1)]))
    ex.settle()
    with pytest.raises(OrderInputError) as err:
        ex.order(action("web:1", "delivered"))
    assert err.value.reason == "invalid_transition"


def test_reservations_without_decision_are_sent_again_with_the_same_ids() -> None:
    """Given an order routed whose reservations were lost (a crash before they were sent)
    When the timer runs after resend_after_seconds
    Then the same reservations are sent again."""
    ex = Exchange({"x": {"a": 5}}, OrderConfig())
    result = apply_order_event(None, placed("web:1", [("1", "x", 1)]), ex.config, ex.levels, NOW)
    assert result.state is not None
    assert not on_timer(result.state, ex.config, ex.levels, NOW + 1000).events
    again = on_timer(result.state, ex.config, ex.levels, NOW + 31_000)
    assert [e["event_id"] for e in again.events] == [e["event_id"] for e in result.events]


def test_an_attempt_never_answered_is_given_up_and_released() -> None:
    """Given an order whose reservations reached the ledger but whose decisions never come
    When the timer has sent them again MAX_RESENDS times, and runs once more
    Then every SKU of the attempt is released and the order is an exception."""
    ex = Exchange({"x": {"a": 5}, "y": {"a": 5}}, OrderConfig())
    ex.order(placed("web:1", [("1", "x", 1), ("2", "y", 1)]))
    ex.inflight.clear()  # the decisions are lost
    assert ex.reserved("web:1") == {"x": 1, "y": 1}
    at = NOW
    for _ in range(book.MAX_RESENDS + 1):
        at += 31_000
        ex.take(on_timer(ex.state("web:1"), ex.config, ex.levels, at), "web:1")
    s = ex.state("web:1")
    assert s.status == "exception"
    assert "no decision" in (s.reason or "")
    assert ex.reserved("web:1") == {}


def test_state_and_records_encode() -> None:
    """Given an allocated order
    Then its stored bytes come back equal, and every OrderState published encodes."""
    ex = Exchange({"x": {"a": 5}}, OrderConfig())
    ex.order(placed("web:1", [("1", "x", 1)]))
    ex.settle()
    s = ex.state("web:1")
    assert OrderBookState.from_bytes(s.to_bytes()) == s
    codec = single_object_codec()
    for record in ex.published:
        assert codec.decode_as("stockflow.v1.OrderState", codec.encode(
            "stockflow.v1.OrderState", record))["status"] == record["status"]  # fmt: skip


def test_configuration(tmp_path: Any) -> None:
    """Given a ledger YAML with an orders key
    Then the ledger accepts it and the order book reads it; errors name the key path."""
    path = tmp_path / "c.yaml"
    path.write_text(
        "default_location: a\norders:\n  max_tries: 2\n  channels:\n"
        "    - {name: web, policy: ship_available, fee_percent: 2.5, fee_fixed: 30}\n"
    )
    assert load_config(path).default_location == "a"
    config = load_order_config(path)
    assert config.max_tries == 2
    assert config.channel("web").policy == "ship_available"
    assert config.channel("web").fee_fixed == 30
    assert config.channel("other").policy == "all_or_nothing"
    with pytest.raises(OrderConfigError) as err:
        parse_order_config({"channels": [{"name": "web", "policy": "some"}]})
    assert err.value.path == "orders.channels[0].policy"
    with pytest.raises(OrderConfigError) as err:
        parse_order_config({"retries": 1})
    assert err.value.path == "orders.retries"


def test_approval_holds_the_stock_until_approved(monkeypatch: pytest.MonkeyPatch) -> None:
    """Given an approval rule that asks for every order
    When an order is allocated, then approved
    Then it waits pending_approval with its stock held, then is released."""
    monkeypatch.setattr(book, "approval_reason", lambda order, total, cb, rules: "total above")
    ex = Exchange({"x": {"a": 5}}, OrderConfig())
    ex.order(placed("web:1", [("1", "x", 2)]))
    ex.settle()
    assert ex.state("web:1").status == "pending_approval"
    assert ex.state("web:1").reason == "total above"
    assert ex.reserved("web:1") == {"x": 2}
    ex.order(action("web:1", "approved", by="alice"))
    assert ex.state("web:1").status == "released"
    assert ex.published[-1]["transition"]["by"] == "alice"
    assert ex.reserved("web:1") == {"x": 2}


def test_a_rejected_or_expired_approval_releases_the_stock(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Given two orders waiting for approval
    When one is rejected and the other's approval expires with on_expiry release
    Then both are rejected and hold nothing."""
    monkeypatch.setattr(book, "approval_reason", lambda order, total, cb, rules: "risk high")
    ex = Exchange({"x": {"a": 5}}, OrderConfig())
    ex.order(placed("web:1", [("1", "x", 1)]))
    ex.order(placed("web:2", [("1", "x", 1)]))
    ex.settle()
    ex.order(action("web:1", "rejected"))
    assert ex.state("web:1").status == "rejected"
    assert ex.reserved("web:1") == {}
    monkeypatch.setattr(book, "expired", lambda state, now, rules: "release")
    result = on_timer(ex.state("web:2"), ex.config, ex.levels, NOW + 1)
    ex.take(result, "web:2")
    assert ex.state("web:2").status == "rejected"
    assert ex.reserved("web:2") == {}


def test_an_exception_rerouted_to_a_location_is_allocated_there() -> None:
    """Given an order in exception (nothing anywhere when placed)
    When stock arrives at b and an operator reroutes it to b
    Then it is routed to b and allocated."""
    ex = Exchange({"x": {"a": 1}}, OrderConfig())
    ex.order(placed("web:1", [("1", "x", 3)]))
    assert ex.state("web:1").status == "exception"
    ex.ledger({"event_id": "r-b", "type": "receipt", "sku": "x", "qty": 3, "location": "b"})
    ex.order(action("web:1", "rerouted", location="b", by="bob"))
    ex.settle()
    s = ex.state("web:1")
    assert s.status == "allocated"
    assert s.route_reason == "operator: ship from b"
    assert ex.reserved("web:1") == {"x": 3}


def test_b2b_open_balance_follows_allocation_and_shipment() -> None:
    """Given a B2B customer
    When its order is allocated, then shipped
    Then its open balance rises by the order's total, then falls back."""
    ex = Exchange({"x": {"a": 5}}, OrderConfig())
    event = placed("web:1", [("1", "x", 2)], customer_type="b2b")
    first = apply_order_event(None, event, ex.config, ex.levels, NOW)
    assert first.customer is not None and first.customer.orders_seen == 1
    ex.take(first, "web:1")
    decision = ex.inflight.pop()
    allocated = apply_decision(
        ex.state("web:1"), decision, ex.config, ex.levels, NOW, first.customer
    )
    assert allocated.customer is not None and allocated.customer.open_balance == 200
    ex.take(allocated, "web:1")
    shipped = apply_order_event(
        ex.state("web:1"), action("web:1", "shipped"), ex.config, ex.levels, NOW, allocated.customer
    )
    assert shipped.customer is not None and shipped.customer.open_balance == 0


# -- the property ------------------------------------------------------------------------

STEP = st.tuples(
    st.sampled_from(["place", "decide", "decide", "decide", "dup", "cancel", "sell", "refresh"]),
    st.integers(0, 10**6),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    stock=st.dictionaries(
        st.sampled_from(["x", "y", "z"]),
        st.fixed_dictionaries({"a": st.integers(0, 3), "b": st.integers(0, 3)}),
        min_size=1,
    ),
    orders=st.lists(
        st.lists(
            st.tuples(st.sampled_from(["x", "y", "z"]), st.integers(1, 3)), min_size=1, max_size=3
        ),
        min_size=1,
        max_size=6,
    ),
    steps=st.lists(STEP, max_size=40),
    seed=st.integers(0, 2**32),
)
def test_no_order_ends_half_reserved(
    stock: dict[str, dict[str, int]],
    orders: list[list[tuple[str, int]]],
    steps: list[tuple[str, int]],
    seed: int,
) -> None:
    """Given random stock and random multi-line orders under all_or_nothing
    When placements, decisions (in any order, some twice), cancellations and sales by other
    channels interleave, and then every decision comes back
    Then each order holds at the ledger either all its lines' units or none: all of them
    exactly when it is allocated, none when it is an exception or cancelled."""
    ex = Exchange(stock, OrderConfig())
    rng = random.Random(seed)
    pending = list(enumerate(orders))
    placed_ids: list[str] = []
    for kind, n in steps:
        if kind == "place" and pending:
            i, lines = pending.pop(0)
            oid = f"web:{i}"
            ex.order(placed(oid, [(str(j), sku, q) for j, (sku, q) in enumerate(lines)]))
            placed_ids.append(oid)
        elif kind in ("decide", "dup") and ex.inflight:
            decision = ex.inflight.pop(n % len(ex.inflight))
            ex.decide(decision)
            if kind == "dup":
                ex.decide(decision)
        elif kind == "cancel" and placed_ids:
            oid = placed_ids[n % len(placed_ids)]
            with contextlib.suppress(OrderInputError):  # not cancellable any more
                ex.order(action(oid, "cancelled", n))
        elif kind == "refresh":
            ex.refresh()
        elif kind == "sell":
            sku = sorted(stock)[n % len(stock)]
            ex.ledger(
                {"event_id": f"sale-{n}", "type": "sale", "sku": sku, "qty": 1, "location": "a"}
            )
    for i, lines in pending:
        oid = f"web:{i}"
        ex.order(placed(oid, [(str(j), sku, q) for j, (sku, q) in enumerate(lines)]))
        placed_ids.append(oid)
    ex.settle(rng, duplicates=0.3)
    for oid in placed_ids:
        s = ex.state(oid)
        held = ex.reserved(oid)
        wanted: dict[str, int] = {}
        for ln in s.lines:
            wanted[ln.sku] = wanted.get(ln.sku, 0) + ln.qty
        assert s.status in ("allocated", "exception", "cancelled"), s.status
        if s.status == "allocated":
            assert held == wanted, (oid, held, wanted)
        else:
            assert held == {}, (oid, s.status, held)


def test_routing_keeps_to_the_channels_locations_and_the_daily_capacities() -> None:
    """Given a SKU with 5 units at a and at b, and a at its daily capacity of 1 order
    When an order is placed on a channel both serve, on a channel only b serves, and
    (capacity counted) on a channel both serve
    Then the first reserves at a (first by name), the second and the third at b."""
    config = parse_order_config(
        {"routing": {"locations": [{"name": "a", "daily_capacity": 1}, {"name": "b"}]}}
    )

    def levels(sku: str) -> dict[str, int]:
        return {"a": 5, "b": 5}

    def where(network: book.Network, channel: str) -> str:
        event = placed(f"{channel}:1", [("1", "x", 1)], channel=channel)
        result = apply_order_event(None, event, config, network, NOW)
        [reserve] = result.events
        return str(reserve["location"])

    assert where(book.Network(levels), "web") == "a"
    only_b = book.Network(levels, serves=lambda channel, loc: channel != "shop" or loc == "b")
    assert where(only_b, "shop") == "b"
    assert where(only_b, "web") == "a"
    full = book.Network(levels, used_capacity=lambda: {"a": 1})
    assert where(full, "web") == "b"


def test_the_lot_the_ledger_reserved_is_the_lines_lot() -> None:
    """Given an order asked of the ledger
    When the ledger accepts its line from lot L7 (FEFO)
    Then the line reads reserved at that location and lot, in the state published."""
    placed_result = apply_order_event(
        None, placed("web:1", [("1", "x", 2)]), OrderConfig(), lambda sku: {"a": 5}, NOW
    )
    [reserve] = placed_result.events
    decision = {
        "decision_id": reserve["event_id"],
        "event_id": reserve["event_id"],
        "sku": "x",
        "order_id": "web:1",
        "channel": "web",
        "location": "a",
        "lot": "L7",
        "qty": 2,
        "outcome": "accepted",
        "reason": None,
        "available_before": 5,
        "occurred_at": NOW,
        "at": NOW,
    }
    result = apply_decision(placed_result.state, decision, OrderConfig(), lambda sku: {}, NOW)
    assert [(ln["location"], ln["lot"], ln["status"]) for ln in result.states[-1]["lines"]] == [
        ("a", "L7", "reserved")
    ]


def test_units_held_by_undecided_reservations_are_still_asked_for_when_nothing_else_serves() -> (
    None
):
    """Given levels that hold back every unit of x for reservations still undecided, and the
    levels the ledger last published (5 at a)
    When an order of x is placed
    Then it is not an exception on the spot: it asks the ledger at a, which decides."""
    network = book.Network(lambda sku: {"a": 0}, settled=lambda sku: {"a": 5})
    result = apply_order_event(None, placed("web:1", [("1", "x", 1)]), OrderConfig(), network, NOW)
    assert result.state is not None and result.state.status == "routed"
    assert [e["location"] for e in result.events] == ["a"]


def test_an_order_for_a_sku_whose_levels_have_not_reached_the_book_lets_the_ledger_choose() -> None:
    """Given 5 units of x at b in the ledger, and a book whose view of the levels has not
    seen x yet (its first receipt just applied)
    When an order of x is placed
    Then the book asks the ledger with no location, the ledger reserves at b, and the order
    reads allocated at b, its route reason saying the levels were not known."""
    ex = Exchange({"x": {"b": 5}}, OrderConfig())
    ex.view = {}
    result = ex.order(placed("web:1", [("1", "x", 2)]))
    assert [e["location"] for e in result.events] == [None]
    ex.settle()
    state = ex.state("web:1")
    assert state.status == "allocated"
    assert [(ln.location, ln.status) for ln in state.lines] == [("b", "reserved")]
    assert "no levels here yet for x" in (state.route_reason or "")


def _paid(order_id: str) -> dict[str, Any]:
    return action(order_id, "approved", by="connector:amazon", source="connector:amazon")


def test_an_order_not_paid_yet_waits_with_its_stock_held_until_the_channel_is_paid() -> None:
    """Given a channel without approval rules
    When it places an order as payment_pending (Amazon's Pending), then confirms the payment
    Then the order waits pending_approval with its stock held (never waved unpaid), and is
    released once paid; an order placed paid never waits, and its channel's approval
    changes nothing."""
    ex = Exchange({"x": {"a": 5}}, OrderConfig())
    ex.order(placed("amazon:1", [("1", "x", 2)], channel="amazon", risk="payment_pending"))
    ex.order(placed("amazon:2", [("1", "x", 1)], channel="amazon"))
    ex.settle()
    unpaid = ex.state("amazon:1")
    assert (unpaid.status, (unpaid.reason or "").split(":")[0]) == (
        "pending_approval",
        "payment_pending",
    )
    assert ex.reserved("amazon:1") == {"x": 2}
    ex.order(_paid("amazon:1"))
    ex.order(_paid("amazon:2"))
    assert ex.state("amazon:1").status == "released"
    assert ex.state("amazon:2").status == "allocated"
    assert ex.reserved("amazon:1") == {"x": 2} and ex.reserved("amazon:2") == {"x": 1}


def test_a_payment_confirmed_during_allocation_or_under_a_merchant_rule() -> None:
    """Given an order placed as payment_pending whose payment is confirmed before its
    allocation ended, and one that also meets a merchant's approval rule (total above)
    When their allocations end and the second is paid
    Then the first is allocated without waiting; the second waits for the payment, then
    for a person (the channel approves payments only)."""
    config = parse_order_config(
        {"approvals": {"channels": [{"name": "amazon", "total_above": 250}]}}
    )
    ex = Exchange({"x": {"a": 5}}, config)
    ex.order(placed("amazon:1", [("1", "x", 1)], channel="amazon", risk="payment_pending"))
    ex.order(_paid("amazon:1"))  # its decision is still on the way
    ex.order(placed("amazon:2", [("1", "x", 3)], channel="amazon", risk="payment_pending"))
    ex.settle()
    assert ex.state("amazon:1").status == "allocated"
    assert (ex.state("amazon:2").reason or "").startswith("payment_pending")
    ex.order(_paid("amazon:2"))
    second = ex.state("amazon:2")
    assert second.status == "pending_approval"
    assert (second.reason or "").startswith("total_above")
    ex.order(action("amazon:2", "approved", 2, by="ops"))
    assert ex.state("amazon:2").status == "released"
