"""Pre-orders through the order book: an order no location can serve is asked of the
ledger when the channel's pre-order figures cover what is missing, and waits backordered."""

from __future__ import annotations

from typing import Any

from streams.ledger import apply, parse_config
from streams.ledger.availability import preorder_room
from streams.orders.book import Network, apply_decision, apply_order_event
from streams.orders.setup import OrderConfig
from tests.unit.test_order_book import NOW, Exchange, order_id_of_decision, placed

LEDGER = parse_config(
    {
        "default_location": "a",
        "locations": [{"name": "a"}, {"name": "b"}],
        "channels": [{"name": "web"}],
        "preorders": [{"sku": "desk", "channel": "web", "cap": 4}],
    }
)


class PreorderExchange(Exchange):
    """The order book's exchange with a ledger that has a pre-order allowance, and the
    pre-order figures the levels publish."""

    def apply_stock(self, event: dict[str, Any]) -> None:
        state, emitted = apply(self.skus.get(event["sku"]), event, LEDGER, NOW)
        self.skus[event["sku"]] = state
        if emitted.decision is not None and order_id_of_decision(emitted.decision):
            self.inflight.append(emitted.decision)

    def network(self) -> Network:
        def room(sku: str, channel: str) -> int:
            state = self.skus.get(sku)
            caps = LEDGER.preorders.get(sku)
            return preorder_room(state, LEDGER, caps, channel) if state and caps else 0

        return Network(self.levels, preorders=room)

    def order(self, event: dict[str, Any]) -> Any:
        oid = event["order_id"]
        result = apply_order_event(self.orders.get(oid), event, self.config, self.network(), NOW)
        self.take(result, oid)
        return result

    def decide(self, decision: dict[str, Any]) -> Any:
        oid = decision["order_id"]
        result = apply_decision(self.orders.get(oid), decision, self.config, self.network(), NOW)
        self.take(result, oid)
        return result


def test_an_order_short_of_stock_within_the_preorder_figure_waits_backordered() -> None:
    """Given chairs in stock at a, no desk anywhere, and 6 desks on a purchase order (web may
    pre-sell 4), when a web order of 1 chair and 3 desks comes, then the book asks the
    ledger, which reserves the chair and takes the desks as a pre-order, and the order
    waits backordered holding the chair; a second order of 2 desks (1 left to pre-sell) is
    an exception, holding nothing."""
    ex = PreorderExchange({"chair": {"a": 5}}, OrderConfig())
    ex.ledger(
        {"event_id": "po", "type": "purchase_ordered", "sku": "desk", "qty": 6,
         "location": "b", "source_ref": "PO-1"}
    )  # fmt: skip
    ex.refresh()
    ex.order(placed("web:1", [("1", "chair", 1), ("2", "desk", 3)]))
    ex.settle()
    s = ex.state("web:1")
    assert s.status == "backordered"
    assert [(ln.status, ln.refusal) for ln in s.lines] == [
        ("reserved", None),
        ("backordered", "preorder"),
    ]
    assert ex.reserved("web:1") == {"chair": 1}
    assert ex.skus["desk"].backorders["web:1"].preorder
    ex.order(placed("web:2", [("1", "desk", 2)]))
    ex.settle()
    assert ex.state("web:2").status == "exception"
    assert ex.reserved("web:2") == {} and "web:2" not in ex.skus["desk"].backorders


def test_without_a_preorder_figure_the_book_does_not_ask_the_ledger() -> None:
    """Given desks all sold and nothing on order, when a web order of a desk comes, then
    it is an exception at once: no reservation is asked of the ledger."""
    ex = PreorderExchange({"chair": {"a": 5}, "desk": {"a": 1}}, OrderConfig())
    ex.ledger({"event_id": "s1", "type": "sale", "sku": "desk", "qty": 1, "location": "a"})
    ex.refresh()
    result = ex.order(placed("web:3", [("1", "desk", 1)]))
    assert ex.state("web:3").status == "exception"
    assert result.events == []
