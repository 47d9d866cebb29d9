"""Lots and expiry (FEFO) in the ledger: receipts of lots, allocation, the other types."""

from __future__ import annotations

from typing import Any

import pytest

from schemas.events import InvalidEvent, check, stock_event
from schemas.times import parse_date_days
from streams.ledger import ConfigError, SkuState, apply, channel_quantities, parse_config
from streams.ledger.stored import FORMAT
from streams.worker.intake import parse_items

T0 = 1_795_000_000_000  # 2026-11-18
DAY = 86_400_000
TODAY = T0 // DAY
CONFIG = parse_config(
    {
        "locations": [{"name": "wh"}, {"name": "store"}],
        "channels": [
            {"name": "web"},
            {"name": "b2b", "min_shelf_life_days": 30},
        ],
    }
)


class Ledger:
    def __init__(self) -> None:
        self.state: SkuState | None = None
        self.n = 0

    def __call__(self, kind: str, qty: int, at: int = T0, **fields: Any) -> Any:
        self.n += 1
        fields.setdefault("location", "wh")
        if kind in ("order_placed", "order_cancelled", "order_shipped", "hold"):
            fields.setdefault("order_id", "o1")
        ev = stock_event(kind, "milk", f"e{self.n}", at, qty=qty, source="erp", **fields)
        self.state, out = apply(self.state, ev, CONFIG, at)
        return out

    def lots(self, location: str = "wh") -> dict[str, tuple[int, int]]:
        assert self.state is not None
        loc = self.state.locations[location]
        return {n: (lot.on_hand, lot.reserved) for n, lot in loc.lots.items()}


def _received(*lots: tuple[str | None, int, int | None]) -> Ledger:
    ledger = Ledger()
    for lot, qty, days in lots:
        expires = None if days is None else TODAY + days
        ledger("receipt", qty, lot=lot, expires_on=expires)
    return ledger


def test_an_order_takes_the_earliest_expiring_lot_and_names_it() -> None:
    """Given lots A (expires in 20 days) and B (in 10 days) received in that order,
    When an order of 3 is placed,
    Then it is reserved from B, the movement and the Decision name B, and A is untouched."""
    ledger = _received(("A", 5, 20), ("B", 5, 10))
    out = ledger("order_placed", 3, channel="web")
    assert out.decision["outcome"] == "accepted" and out.decision["lot"] == "B"
    assert [(m["lot"], m["delta_reserved"]) for m in out.movements] == [("B", 3)]
    assert ledger.lots() == {"A": (5, 0), "B": (5, 3)}


def test_a_line_over_several_lots_gives_one_movement_per_lot_then_unlotted_last() -> None:
    """Given lot A (5, in 10 days), lot B (2, no date) and 4 unlotted units,
    When an order of 9 is placed,
    Then A gives 5, B 2 and the unlotted part 2, one movement each, and the Decision lists
    "A,B"; cancelling it releases exactly those lots."""
    ledger = _received(("A", 5, 10), ("B", 2, None), (None, 4, None))
    out = ledger("order_placed", 9, channel="web")
    assert [(m["lot"], m["delta_reserved"]) for m in out.movements] == [
        ("A", 5),
        ("B", 2),
        (None, 2),
    ]
    assert out.decision["lot"] == "A,B"
    out = ledger("order_cancelled", 0)
    assert sorted((m["lot"] or "", m["delta_reserved"]) for m in out.movements) == [
        ("", -2),
        ("A", -5),
        ("B", -2),
    ]
    assert ledger.lots() == {"A": (5, 0), "B": (2, 0)}
    assert ledger.state is not None and not ledger.state.order_lots


def test_shipping_consumes_the_lots_the_order_reserved() -> None:
    """Given an order reserved from lot A, and lot C expiring earlier received afterwards,
    When the order ships,
    Then A's units leave (not C's), and A is forgotten once empty."""
    ledger = _received(("A", 2, 10))
    ledger("order_placed", 2, channel="web")
    ledger("receipt", 4, lot="C", expires_on=TODAY + 1)
    out = ledger("order_shipped", 0)
    assert [(m["lot"], m["delta_on_hand"], m["delta_reserved"]) for m in out.movements] == [
        ("A", -2, -2)
    ]
    assert ledger.lots() == {"C": (4, 0)}


def test_expired_lots_are_neither_allocated_nor_shown() -> None:
    """Given lot A that expired yesterday (5 units) and lot B expiring today (1 unit),
    When the level is computed and an order of 2 then of 1 is placed,
    Then every channel and the level's split by location show 1, the order of 2 is
    rejected and the order of 1 takes B."""
    ledger = _received(("A", 5, -1))
    level = ledger("receipt", 1, lot="B", expires_on=TODAY).level
    assert level["locations"] == {"wh": 1} and level["default_quantity"] == 1
    assert ledger.state is not None
    assert channel_quantities(ledger.state, CONFIG, TODAY) == {"web": 1, "b2b": 0, "*": 1}
    assert ledger("order_placed", 2, channel="web", order_id="o1").decision["outcome"] == "rejected"
    out = ledger("order_placed", 1, channel="web", order_id="o2")
    assert out.decision["outcome"] == "accepted" and out.decision["lot"] == "B"


def test_a_channel_gets_only_lots_with_its_minimum_shelf_life_and_is_shown_only_those() -> None:
    """Given b2b needs 30 days of shelf life, lot A has 10 days left (4 units) and lot B 40
    days (3 units),
    When levels are computed and b2b orders 3 then 1 more, and web orders 4,
    Then b2b is shown 3 (web 7), b2b's 3 come from B, its next unit is refused, and web's 4
    come from A."""
    ledger = _received(("A", 4, 10), ("B", 3, 40))
    out = ledger("receipt", 1, lot="B", expires_on=TODAY + 40)  # the level after a receipt
    assert out.level["channels"] == {"web": 8, "b2b": 4}
    ledger("adjustment", -1, lot="B", reason="damaged")
    assert ledger.state is not None
    assert channel_quantities(ledger.state, CONFIG, TODAY) == {"web": 7, "b2b": 3, "*": 7}
    out = ledger("order_placed", 3, channel="b2b", order_id="b1")
    assert out.decision["lot"] == "B"
    refused = ledger("order_placed", 1, channel="b2b", order_id="b2").decision
    assert refused["outcome"] == "rejected" and refused["available_before"] == 0
    assert ledger("order_placed", 4, channel="web", order_id="w1").decision["lot"] == "A"


def test_a_sale_takes_fefo_a_count_rebases_the_unlotted_part_and_a_transfer_moves_lots() -> None:
    """Given lots A (3, in 5 days), B (3, in 9 days) and 4 unlotted units at wh,
    When a till sells 4, a count finds 8 (2 fewer), and 3 units are transferred to store,
    Then the sale takes A's 3 then 1 of B; the count takes the 2 from the unlotted part;
    the transfer moves B's 2 then 1 unlotted, and B arrives at store with its date."""
    ledger = _received(("A", 3, 5), ("B", 3, 9), (None, 4, None))
    out = ledger("sale", 4)
    assert [(m["lot"], m["delta_on_hand"]) for m in out.movements] == [("A", -3), ("B", -1)]
    out = ledger("stock_count", 4, as_of=T0 + 1, at=T0 + 2)
    assert [(m["lot"], m["delta_on_hand"]) for m in out.movements] == [(None, -2)]
    out = ledger("transfer", 3, to_location="store")
    assert [(m["location"], m["lot"], m["delta_on_hand"]) for m in out.movements] == [
        ("wh", "B", -2),
        ("wh", None, -1),
        ("store", "B", 2),
        ("store", None, 1),
    ]
    assert ledger.state is not None
    assert ledger.state.locations["store"].lots["B"].expires == TODAY + 9
    assert ledger.lots("wh") == {}


def test_two_receipts_of_one_lot_keep_the_earlier_date() -> None:
    """Given a lot received with a date in 20 days, When it is received again dated in 10
    days, Then the lot expires in 10 days."""
    ledger = _received(("A", 1, 20), ("A", 1, 10))
    assert ledger.state is not None
    assert ledger.state.locations["wh"].lots["A"].expires == TODAY + 10


def test_a_state_with_lots_round_trips_and_a_format_3_record_still_loads() -> None:
    """Given a SKU with lots and an order reserved from one, and a busy lotless SKU,
    When stored and read back, and the lotless SKU's records (main record and sealed
    pages) relabelled format 3 are read,
    Then both are what they were: a lotless SKU's records are byte for byte format 3's."""
    ledger = _received(("A", 5, 10), ("B", 2, None))
    ledger("order_placed", 3, channel="web")
    assert ledger.state is not None
    stored = dict(ledger.state.records(None))
    assert SkuState.from_bytes(stored[b"milk"], stored.get) == ledger.state
    plain = Ledger()
    plain("receipt", 400)
    for i in range(40):  # enough ids, journal entries and orders to seal pages
        plain("order_placed", 1, channel="web", order_id=f"p{i}")
    assert plain.state is not None
    records = dict(plain.state.records(None))
    assert len(records) > 3 and all(v is not None and v[2] == FORMAT == 4 for v in records.values())
    old = {k: v[:2] + b"\x03" + v[3:] for k, v in records.items() if v is not None}
    assert SkuState.from_bytes(old[b"milk"], old.get) == plain.state


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"type": "receipt", "expires_on": TODAY}, "expires_on_without_lot"),
        ({"type": "sale", "lot": "A"}, "lot_not_applicable"),
        ({"type": "receipt", "lot": "A,B"}, "bad_lot"),
        ({"type": "receipt", "lot": "x" * 300}, "too_long"),
        ({"type": "adjustment", "lot": "A", "expires_on": TODAY, "reason": "x"}, "expires_on"),
        ({"type": "receipt", "lot": "A", "expires_on": 10}, "bad_expires_on"),
    ],
)
def test_the_contract_refuses_misplaced_lots_and_dates(fields: dict[str, Any], reason: str) -> None:
    """Given an event with a lot or an expiry date where it does not belong, When checked,
    Then it is refused with a named reason."""
    kind = fields.pop("type")
    ev = stock_event(kind, "milk", "e1", T0, qty=1, source="erp", **fields)
    with pytest.raises(InvalidEvent) as err:
        check(ev)
    assert err.value.reason.startswith(reason)


def test_the_http_intake_takes_a_lot_with_an_iso_date() -> None:
    """Given a JSON receipt with lot and expires_on "2026-12-01", When parsed,
    Then the event carries the day number; a malformed date is an error naming the field."""
    good, bad = parse_items(
        [
            {"event_id": "r1", "type": "receipt", "sku": "milk", "qty": 2, "lot": "L1",
             "expires_on": "2026-12-01"},
            {"event_id": "r2", "type": "receipt", "sku": "milk", "qty": 2, "lot": "L1",
             "expires_on": "01/12/2026"},
        ]
    )  # fmt: skip
    assert good.event is not None and good.event["expires_on"] == parse_date_days("2026-12-01", "")
    assert good.event["lot"] == "L1"
    assert not bad.ok and any("expires_on" in e for e in bad.errors)


def test_a_minimum_shelf_life_that_is_not_a_day_count_is_a_clear_config_error() -> None:
    """Given min_shelf_life_days of -1, "30d" or 100,000, When parsed, Then ConfigError
    names channels[0].min_shelf_life_days."""
    for bad in (-1, "30d", 100_000):
        with pytest.raises(ConfigError, match=r"channels\[0\]\.min_shelf_life_days"):
            parse_config({"channels": [{"name": "b2b", "min_shelf_life_days": bad}]})
