"""Wave planning, bins and pick confirmation (streams.fulfilment, pure)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.codec import single_object_codec
from schemas.events import check
from streams.fulfilment.config import FulfilmentConfigError, load_fulfilment, parse, reload_bins
from streams.fulfilment.model import WaveStatus
from streams.fulfilment.picking import PickError, confirm
from streams.fulfilment.planner import finished, pick_list, plan_waves, walk_key, waved_lines
from streams.fulfilment.records import wave_from_record, wave_record

NOW = 1_795_420_800_000


def state(
    order_id: str,
    lines: list[tuple[str, str, int, str]],
    *,
    status: str = "allocated",
    channel: str = "web",
    country: str = "FR",
    placed_at: int = NOW,
    delivery: str = "ship",
) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "channel": channel,
        "status": status,
        "delivery": delivery,
        "country": country,
        "postal_code": "75011",
        "placed_at": placed_at,
        "lines": [
            {
                "line_id": lid,
                "sku": sku,
                "qty": qty,
                "location": loc,
                "lot": None,
                "status": "reserved",
                "shipped_qty": 0,
            }
            for lid, sku, qty, loc in lines
        ],
    }


CONFIG = parse(
    {
        "max_orders_per_wave": 2,
        "max_lines_per_wave": 5,
        "express_channels": ["express"],
        "carriers": [
            {"name": "chronopost", "cutoff": "15:00", "countries": ["FR"]},
            {"name": "dhl", "cutoff": "17:30"},
        ],
        "bins": {"wh": {"a": "A-10-1", "b": "A-2-1", "c": "B-1-1"}},
    }
)


def test_waves_group_by_carrier_and_kind_express_first_within_the_limits() -> None:
    """Given orders at wh (one express, single and multi-line, FR and DE) and one elsewhere
    When waves are planned at wh
    Then express comes first, then chronopost (FR, 15:00) before dhl (17:30); single-line
    and multi-line orders are apart; no wave holds more than 2 orders; the other location's
    order, the pickup and the shipped order are left out."""
    states = [
        state("e:1", [("1", "a", 1, "wh")], channel="express"),
        state("w:1", [("1", "a", 1, "wh")]),
        state("w:2", [("1", "b", 1, "wh")], placed_at=NOW - 5),
        state("w:3", [("1", "c", 1, "wh")]),
        state("w:4", [("1", "a", 1, "wh"), ("2", "c", 2, "wh")]),
        state("w:5", [("1", "a", 1, "wh")], country="DE"),
        state("w:6", [("1", "a", 1, "lyon")]),
        state("w:7", [("1", "a", 1, "wh")], delivery="pickup"),
        state("w:8", [("1", "a", 1, "wh")], status="shipped"),
    ]
    waves = plan_waves(states, "wh", set(), CONFIG, NOW)
    got = [(w.carrier, w.kind, w.order_ids) for w in waves]
    assert got == [
        ("chronopost", "single", ("e:1",)),
        ("chronopost", "multi", ("w:4",)),
        ("chronopost", "single", ("w:2", "w:1")),
        ("chronopost", "single", ("w:3",)),
        ("dhl", "single", ("w:5",)),
    ]
    assert waves[0].orders[0].express and [w.priority for w in waves] == [0, 1, 2, 3, 4]
    assert all(w.status is WaveStatus.PLANNED and w.cutoff for w in waves)
    again = plan_waves(states, "wh", set(), CONFIG, NOW + 1)
    assert [w.wave_id for w in again] == [w.wave_id for w in waves]  # deterministic ids
    assert plan_waves(states, "wh", waved_lines(waves), CONFIG, NOW) == []


def test_pick_lists_walk_the_bins_in_natural_order() -> None:
    """Given a wave whose lines are in bins A-10-1, A-2-1, B-1-1 and one SKU without bin
    When its pick list is made
    Then A-2-1 comes before A-10-1, then B-1-1, the bin-less line last."""
    states = [state("w:1", [("1", "a", 1, "wh"), ("2", "z", 1, "wh"), ("3", "c", 1, "wh"),
                            ("4", "b", 1, "wh")])]  # fmt: skip
    (wave,) = plan_waves(states, "wh", set(), CONFIG, NOW)
    assert [r.bin for r in pick_list(wave)] == ["A-2-1", "A-10-1", "B-1-1", None]


orders_st = st.lists(
    st.tuples(
        st.sampled_from(["web", "express"]),
        st.sampled_from(["FR", "DE"]),
        st.lists(st.tuples(st.sampled_from("abcz"), st.integers(1, 5)), min_size=1, max_size=7),
    ),
    max_size=30,
)


@settings(max_examples=60, deadline=None)
@given(orders_st, st.integers(1, 5), st.integers(1, 8))
def test_every_line_is_waved_once_within_the_limits(
    orders: list[Any], max_orders: int, max_lines: int
) -> None:
    """Given any set of allocated orders and any limits
    When waves are planned
    Then every line is in exactly one wave, no wave exceeds the limits unless it holds a
    single order too big for them, express waves come before the others, and each pick list
    is in walking order."""
    config = parse(
        {"max_orders_per_wave": max_orders, "max_lines_per_wave": max_lines,
         "express_channels": ["express"], "bins": {"wh": {"a": "A-10", "b": "A-2", "c": "C-1"}},
         "carriers": [{"name": "dhl", "cutoff": "17:00"}]}
    )  # fmt: skip
    states = [
        state(f"o:{i}", [(str(j), sku, q, "wh") for j, (sku, q) in enumerate(lines)],
              channel=ch, country=country, placed_at=NOW + i)
        for i, (ch, country, lines) in enumerate(orders)
    ]  # fmt: skip
    waves = plan_waves(states, "wh", set(), config, NOW)
    seen = [(o.order_id, ln.line_id) for w in waves for o in w.orders for ln in o.lines]
    expected = [(s["order_id"], ln["line_id"]) for s in states for ln in s["lines"]]
    assert sorted(seen) == sorted(expected)
    for w in waves:
        lines = sum(len(o.lines) for o in w.orders)
        assert len(w.orders) <= max_orders
        assert lines <= max_lines or len(w.orders) == 1
        keys = [walk_key(r.bin) for r in pick_list(w)]
        assert keys == sorted(keys)
    express = [any(o.express for o in w.orders) for w in waves]
    assert express == sorted(express, reverse=True)


def test_bins_from_a_wms_file_win_over_the_configuration(tmp_path: Path) -> None:
    """Given bins in the configuration and a CSV bins file for the same SKU
    When the configuration is loaded
    Then the file's bin is used; a file without the right header is refused by name."""
    (tmp_path / "bins.csv").write_text("location,sku,bin\nwh,a,Z-9\nwh,d,D-1\n")
    (tmp_path / "config.yaml").write_text(
        "fulfilment:\n  bins: {wh: {a: A-1, b: B-1}}\n  bins_file: bins.csv\n"
    )
    config = load_fulfilment(tmp_path / "config.yaml")
    assert [config.bin_of("wh", s) for s in "abdx"] == ["Z-9", "B-1", "D-1", None]
    assert reload_bins(config) is config  # unchanged file: nothing read
    (tmp_path / "bins.csv").write_text("location,sku,bin\nwh,d,D-7\n")
    os.utime(tmp_path / "bins.csv", (1, 1))
    again = reload_bins(config)  # the WMS dropped a new file: a is back to the config's bin
    assert [again.bin_of("wh", s) for s in "abd"] == ["A-1", "B-1", "D-7"]
    (tmp_path / "bins.csv").write_text("where,sku,bin\nwh,a,Z-9\n")
    with pytest.raises(FulfilmentConfigError, match="location missing"):
        load_fulfilment(tmp_path / "config.yaml")
    with pytest.raises(FulfilmentConfigError, match=r"fulfilment.carriers\[0\].cutoff"):
        parse({"carriers": [{"name": "dhl", "cutoff": "5pm"}]})
    with pytest.raises(FulfilmentConfigError, match="unknown key"):
        parse({"max_order_per_wave": 3})


def _wave() -> Any:
    states = [state("w:1", [("1", "a", 3, "wh"), ("2", "b", 1, "wh")])]
    (wave,) = plan_waves(states, "wh", set(), CONFIG, NOW)
    return wave


def test_a_full_pick_sends_nothing_and_a_short_pick_corrects_reroutes_and_alerts() -> None:
    """Given a wave of one order (3 a, 1 b)
    When b is picked in full and a short by 2
    Then the wave is picking then picked; the short pick gives an adjustment of -2 at wh
    (reason short_pick), a rerouted Order event naming line 1 with 2 units, and a short_pick
    alert; all valid records of their schemas with ids derived from the wave and line."""
    wave = _wave()
    full = confirm(wave, "w:1", "2", 1, NOW + 1)
    assert full.wave.status is WaveStatus.PICKING and full.wave.version == 2
    assert not (full.stock_events or full.order_events or full.alerts)
    short = confirm(full.wave, "w:1", "1", 1, NOW + 2, by="picker-1")
    assert short.wave.status is WaveStatus.PICKED
    assert short.wave.orders[0].picked and short.wave.orders[0].picked_units == 2
    (adj,) = short.stock_events
    assert (adj["type"], adj["qty"], adj["location"], adj["reason"]) == (
        "adjustment", -2, "wh", "short_pick"
    )  # fmt: skip
    assert check(adj) == "adjustment"
    (reroute,) = short.order_events
    assert reroute["type"] == "rerouted" and reroute["lines"][0]["qty"] == 2
    assert reroute["by"] == "picker-1"
    (alert,) = short.alerts
    assert alert["kind"] == "short_pick" and alert["value"] == 2
    codec = single_object_codec()
    codec.decode_as("stockflow.v1.Order", codec.encode("stockflow.v1.Order", reroute))
    codec.decode_as("stockflow.v1.Alert", codec.encode("stockflow.v1.Alert", alert))
    back = codec.decode_as(
        "stockflow.v1.Wave", codec.encode("stockflow.v1.Wave", wave_record(short.wave))
    )
    assert wave_from_record(back) == short.wave


def test_confirmations_again_count_once_and_bad_ones_are_refused() -> None:
    """Given a line confirmed with 1 picked
    When the same confirmation comes again, then another quantity, an unknown line, more
    than ordered or a negative quantity
    Then the repeat changes nothing and the others are refused with a stable reason."""
    wave = confirm(_wave(), "w:1", "1", 1, NOW).wave
    assert confirm(wave, "w:1", "1", 1, NOW).duplicate
    for args, reason in [
        (("w:1", "1", 2), "conflict"),
        (("w:1", "9", 1), "unknown_line"),
        (("w:9", "1", 1), "unknown_line"),
        (("w:1", "2", 5), "invalid_pick"),
        (("w:1", "2", -1), "invalid_pick"),
        (("w:1", "2", "1"), "invalid_pick"),
    ]:
        with pytest.raises(PickError) as err:
            confirm(wave, *args, NOW)
        assert err.value.reason == reason


def test_a_picked_wave_closes_once_every_order_left() -> None:
    """Given a picked wave of two orders
    When one order is shipped, then the other cancelled
    Then the wave is to close only after both."""
    states = [state("w:1", [("1", "a", 1, "wh")]), state("w:2", [("1", "b", 1, "wh")])]
    (wave,) = plan_waves(states, "wh", set(), parse({"split_single_line": False}), NOW)
    assert finished([wave], {}) == []  # planned, not picked
    for oid in ("w:1", "w:2"):
        wave = confirm(wave, oid, "1", 1, NOW).wave
    assert finished([wave], {"w:1": {"status": "shipped"}, "w:2": {"status": "allocated"}}) == []
    left = {"w:1": {"status": "shipped"}, "w:2": {"status": "cancelled"}}
    assert finished([wave], left) == [wave]
