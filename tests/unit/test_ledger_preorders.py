"""Pre-orders in the ledger (streams.ledger.preorders): sold against incoming within a cap,
served first when the goods arrive, at risk when a purchase order is cancelled."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.events import InvalidEvent, check, stock_event
from streams.ledger import ConfigError, SkuState, apply, parse_config
from streams.ledger.availability import preorder_room as room
from streams.worker.intake import parse_items

SKU = "desk"
T = 1_795_000_000_000
DAY = 20_800  # an expected day (days since 1970-01-01)
CONFIG = parse_config(
    {
        "default_location": "wh",
        "locations": [{"name": "wh"}, {"name": "store"}],
        "channels": [
            {"name": "shop"},
            {"name": "market", "on_insufficient": "backorder"},
            {"name": "till", "locations": ["store"]},
        ],
        "preorders": [
            {"sku": SKU, "channel": "shop", "cap": 5},
            {"sku": SKU, "channel": "market", "cap": 8},
        ],
    }
)


class Ledger:
    def __init__(self, config: Any = CONFIG, sku: str = SKU) -> None:
        self.config, self.sku, self.state, self.n = config, sku, None, 0
        self.out: list[Any] = []

    def send(self, kind: str, **fields: Any) -> Any:
        self.n += 1
        event = stock_event(kind, self.sku, f"e{self.n}", T + self.n, **fields)
        self.state, out = apply(self.state, event, self.config, T + self.n)
        self.out.append(out)
        return out

    def po(self, ref: str, qty: int, day: int | None, location: str = "wh") -> Any:
        return self.send(
            "purchase_ordered", qty=qty, location=location, source_ref=ref, expected_on=day
        )

    def order(self, order: str, qty: int, channel: str = "shop") -> Any:
        return self.send("order_placed", qty=qty, channel=channel, order_id=order)

    @property
    def sku_state(self) -> SkuState:
        assert self.state is not None
        return self.state


def test_an_order_line_short_of_available_is_a_preorder_promised_for_the_purchase_orders_day() -> (
    None
):
    """Given 2 units on hand and 10 on a purchase order expected on DAY, when the shop
    orders 4, then the line is backordered as a pre-order promised for DAY, nothing is
    reserved, the two units go to it at once (served first), and the level shows the shop
    may pre-sell 1 more (its cap 5 minus 4)."""
    ledger = Ledger()
    ledger.send("receipt", qty=2, location="wh")
    ledger.po("PO-1", 10, DAY)
    out = ledger.order("o1", 4)
    assert out.decision["outcome"] == "backordered"
    assert out.decision["reason"] == "preorder"
    assert out.decision["preorder"] is True
    assert out.decision["promised_on"] == DAY
    [given] = [m for m in out.movements if m["type"] == "backorder_allocated"]
    assert (given["delta_reserved"], given["reason"]) == (2, "preorder")
    assert out.level is not None and out.level["preorders"] == {"shop": 3, "market": 8}


def test_preorders_never_exceed_the_cap_nor_the_incoming() -> None:
    """Given 6 incoming and no stock, when the shop (cap 5) orders 3, 3, then the market
    (cap 8) 3 and 1, then the first shop line is a pre-order, the second is refused (cap),
    the market's 3 is a pre-order and its 1 a plain backorder (incoming all promised); the
    first pre-order's level shows what each channel may still pre-sell."""
    ledger = Ledger()
    ledger.send("adjustment", qty=1, location="wh", reason="first")
    ledger.send("sale", qty=1, location="wh")
    ledger.po("PO-1", 6, DAY)
    first = ledger.order("s1", 3)
    assert first.decision["preorder"] is True
    assert first.level is not None  # no units moved, the pre-order figures did
    assert first.level["preorders"] == {"shop": 2, "market": 3}
    assert first.level["changed_channels"] == ["shop", "market"]
    second = ledger.order("s2", 3).decision
    assert (second["outcome"], second["preorder"]) == ("rejected", False)
    assert ledger.order("m1", 3, "market").decision["preorder"] is True
    last = ledger.order("m2", 1, "market").decision
    assert (last["outcome"], last["reason"], last["preorder"]) == (
        "backordered",
        "insufficient_stock",
        False,
    )


def test_the_promised_day_follows_the_queue_over_the_purchase_orders() -> None:
    """Given two purchase orders, 3 units expected on DAY + 9 and 3 on DAY, when three
    pre-orders of 2 units come in, then the first is promised for DAY, the second (units
    3-4) for DAY + 9, the third (5-6) for DAY + 9 too."""
    ledger = Ledger()
    ledger.po("PO-late", 3, DAY + 9)
    ledger.po("PO-soon", 3, DAY)
    days = [ledger.order(f"o{i}", 2, "market").decision["promised_on"] for i in range(3)]
    assert days == [DAY, DAY + 9, DAY + 9]


def test_a_receipt_serves_preorders_oldest_first_before_new_orders() -> None:
    """Given pre-orders o1 (2) then o2 (3) waiting on PO-1, when 4 units are received,
    then o1 gets 2 and o2 gets 2 (oldest first), and a new order for 1 is refused: nothing
    is available and the last unit on its way is promised to o2."""
    ledger = Ledger()
    ledger.po("PO-1", 5, DAY)
    ledger.order("o1", 2)
    ledger.order("o2", 3, "market")
    out = ledger.send("receipt", qty=4, location="wh", source_ref="PO-1")
    given = [(m["delta_reserved"], m["reason"]) for m in out.movements if m["delta_reserved"]]
    assert given == [(2, "preorder"), (2, "preorder")]
    state = ledger.sku_state
    assert state.orders == {"o1": {"wh": 2}, "o2": {"wh": 2}}
    assert state.backorders["o2"].qty == 1
    assert state.purchases == {"PO-1": ["wh", 1, DAY]}
    late = ledger.order("o3", 1).decision
    assert (late["outcome"], late["preorder"]) == ("rejected", False)


def test_a_receipt_naming_no_purchase_order_keeps_the_promises_within_incoming() -> None:
    """Given PO-a (3 units, DAY) and PO-b (3 units, DAY + 4), when 2 units are received
    naming no purchase order, then the earliest expected order gives way (PO-a 1 open),
    so a pre-order of 2 is promised for PO-b's day."""
    ledger = Ledger()
    ledger.po("PO-a", 3, DAY)
    ledger.po("PO-b", 3, DAY + 4)
    ledger.send("receipt", qty=2, location="wh")
    ledger.send("sale", qty=2, location="wh")
    assert ledger.sku_state.purchases == {"PO-a": ["wh", 1, DAY], "PO-b": ["wh", 3, DAY + 4]}
    assert ledger.order("o1", 2).decision["promised_on"] == DAY + 4


def test_a_cancelled_purchase_order_lists_the_preorders_it_leaves_uncovered() -> None:
    """Given pre-orders o1 (2), o2 (2), o3 (1) on 6 incoming, when 3 units of the purchase
    order are cancelled, then one preorder_at_risk alert names o3 and o2 (the newest) and
    not o1, and carries no personal data, just order ids."""
    ledger = Ledger()
    ledger.po("PO-1", 6, DAY)
    ledger.order("o1", 2)
    ledger.order("o2", 2, "market")
    ledger.order("o3", 1)
    out = ledger.send("purchase_cancelled", qty=3, location="wh", source_ref="PO-1")
    [alert] = [a for a in out.alerts if a["kind"] == "preorder_at_risk"]
    assert "o2" in alert["message"] and "o3" in alert["message"]
    assert "o1" not in alert["message"]
    assert (alert["value"], alert["threshold"]) == (2, 3)
    assert out.level is not None and out.level["preorders"] == {"shop": 0, "market": 0}


def test_a_late_purchase_order_lists_the_preorders_waiting_for_its_units() -> None:
    """Given PO-soon (2 units, DAY) and PO-late (3 units, DAY + 5), and pre-orders o1 (2:
    from PO-soon), o2 (2: one from each... no, places 3-4: PO-late) and o3 (1: place 5),
    when the purchasing service says PO-late is late, then one preorder_at_risk alert names
    o2 and o3, not o1; said again (same event id) nothing more is raised; said of PO-soon,
    only o1 is named."""
    ledger = Ledger()
    ledger.po("PO-soon", 2, DAY)
    ledger.po("PO-late", 3, DAY + 5)
    ledger.order("o1", 2)
    ledger.order("o2", 2, "market")
    ledger.order("o3", 1)
    late = {"qty": 3, "location": "wh", "source_ref": "PO-late"}
    out = ledger.send("purchase_late", **late)
    [alert] = out.alerts
    assert alert["kind"] == "preorder_at_risk"
    assert "o2, o3" in alert["message"] and "o1" not in alert["message"]
    assert (alert["value"], out.movements, out.level) == (3, [], None)
    event = stock_event("purchase_late", SKU, "e6", T + 6, **late)  # the same id again
    _, again = apply(ledger.state, event, CONFIG, T + 7)
    assert again.duplicate and not again.alerts
    soon = ledger.send("purchase_late", qty=2, location="wh", source_ref="PO-soon")
    assert "o1" in soon.alerts[0]["message"] and "o2" not in soon.alerts[0]["message"]


def test_a_sku_without_an_allowance_stores_and_emits_what_it_did() -> None:
    """Given a SKU with no pre-order allowance, when a purchase order and an order beyond
    the stock arrive, then the order is refused as before, no purchase order is kept in the
    state, its stored record has no pre-order part, and the level's preorders is empty."""
    ledger = Ledger(sku="lamp")
    ledger.send("receipt", qty=1, location="wh")
    ledger.po("PO-1", 10, DAY)
    out = ledger.order("o1", 3)
    assert (out.decision["outcome"], out.decision["preorder"]) == ("rejected", False)
    state = ledger.sku_state
    assert state.purchases == {} and state.last_preorders == {}
    assert len(state.structure([])) == 11
    first = ledger.out[0].level
    assert first is not None and first["preorders"] == {}


def test_preorder_state_survives_its_byte_form() -> None:
    """Given a SKU with waiting pre-orders and open purchase orders, when its state is
    written and read back, then pre-orders, promised days and purchase orders are kept."""
    ledger = Ledger()
    ledger.po("PO-1", 6, DAY)
    ledger.order("o1", 2)
    ledger.order("b1", 1, "till")  # refused: till has no allowance and no stock
    state = ledger.sku_state
    back = SkuState.from_bytes(state.to_bytes())
    assert back.backorders == state.backorders
    assert back.backorders["o1"].preorder and back.backorders["o1"].promised == DAY
    assert back.purchases == {"PO-1": ["wh", 6, DAY]}
    assert back.last_preorders == state.last_preorders


def test_the_preorders_section_is_checked() -> None:
    """Given preorders entries with an unknown channel, no cap, or a key typo, when parsed,
    then each stops with its key path."""
    base: dict[str, Any] = {"channels": [{"name": "shop"}]}
    for entry, path in (
        ({"sku": "a", "channel": "nope", "cap": 1}, "preorders[0].channel"),
        ({"sku": "a", "channel": "shop"}, "preorders[0].cap"),
        ({"sku": "a", "channel": "shop", "cap": 1, "caps": 2}, "preorders[0].caps"),
        ({"sku": "a", "channel": "shop", "cap": 0}, "preorders[0].cap"),
    ):
        with pytest.raises(ConfigError) as err:
            parse_config({**base, "preorders": [entry]})
        assert err.value.path == path


ops = st.lists(
    st.tuples(
        st.sampled_from(
            ["po", "po", "order", "order", "order", "receipt", "cancel_po", "cancel", "ship"]
        ),
        st.integers(1, 5),
        st.sampled_from(["shop", "market", "till"]),
        st.integers(0, 5),
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops)
def test_preorders_stay_within_cap_and_incoming_and_receipts_serve_them_first(
    steps: list[tuple[str, int, str, int]],
) -> None:
    """Given any sequence of purchase orders, orders, receipts, cancellations and
    shipments, when applied, then after every step (1) each channel's waiting pre-orders
    are at most its cap, (2) the pre-order units accepted while waiting never exceeded the
    incoming, (3) after a receipt either no backorder waits or nothing is available (the
    goods went to the waiting pre-orders first), reserved never exceeds on_hand, and the
    purchase orders followed never promise more than the location's incoming."""
    ledger = Ledger()
    for kind, qty, channel, n in steps:
        if kind == "po":
            out = ledger.po(f"PO-{n}", qty, DAY + n)
        elif kind == "order":
            out = ledger.order(f"o{n}", qty, channel)
        elif kind == "receipt":  # may name an order never placed, or received already
            out = ledger.send("receipt", qty=qty, location="wh", source_ref=f"PO-{n}")
        elif kind == "cancel_po":
            out = ledger.send("purchase_cancelled", qty=qty, location="wh", source_ref=f"PO-{n}")
        elif kind == "cancel":
            out = ledger.send("order_cancelled", qty=0, order_id=f"o{n}")
        else:
            out = ledger.send("order_shipped", qty=0, order_id=f"o{n}", location="wh")
        state = ledger.state
        if state is None:
            continue
        pre = [b for b in state.backorders.values() if b.preorder]
        for ch, cap in CONFIG.preorders[SKU].items():
            assert sum(b.qty for b in pre if b.channel == ch) <= cap
        decision = out.decision
        if decision is not None and decision["preorder"]:
            incoming = sum(loc.incoming for loc in state.locations.values())
            assert sum(b.qty for b in state.backorders.values()) <= incoming
        for name, loc in state.locations.items():
            assert loc.reserved <= loc.on_hand
            assert sum(p[1] for p in state.purchases.values() if p[0] == name) <= loc.incoming
        if kind == "receipt" and state.backorders:
            wh = state.locations["wh"]
            assert wh.available(0) == 0
        for ch in CONFIG.preorders[SKU]:
            assert room(state, CONFIG, CONFIG.preorders[SKU], ch) >= 0


def test_expected_on_is_a_day_on_purchase_ordered_only() -> None:
    """Given events naming expected_on, when checked (the API and the ledger share the
    check), then a purchase_ordered with a day passes, and a sale with one, a day out of
    range or a text are refused with their reason; the API takes YYYY-MM-DD."""
    ok = stock_event("purchase_ordered", SKU, "p", T, qty=1, source_ref="PO", expected_on=DAY)
    assert check(ok) == "purchase_ordered"
    for fields, reason in (
        ({"type": "sale", "expected_on": DAY}, "expected_on_not_applicable"),
        ({"expected_on": 5}, "bad_expected_on"),
        ({"expected_on": "2026-12-01"}, "bad_expected_on"),
    ):
        with pytest.raises(InvalidEvent) as err:
            check({**ok, **fields})
        assert err.value.reason == reason
    [parsed] = parse_items(
        {"event_id": "p1", "type": "purchase_ordered", "sku": SKU, "qty": 2,
         "source_ref": "PO", "expected_on": "2026-12-01"}
    )  # fmt: skip
    assert parsed.event is not None and parsed.event["expected_on"] == 20_788
