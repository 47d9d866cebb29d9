"""The per-SKU state: byte form and bounds."""

from __future__ import annotations

import struct
from array import array
from dataclasses import replace

import orjson
import pytest

from schemas.events import stock_event
from streams.ledger import SkuState, StateFormatError, apply, parse_config

T0 = 1_700_000_000_000


def _busy_state() -> SkuState:
    config = parse_config({"channels": [{"name": "b2b", "on_insufficient": "backorder"}]})
    state, _ = apply(
        None,
        stock_event("stock_count", "s", "c", T0, qty=5, source_seq=1, source="wms"),
        config,
        T0,
    )
    events = [
        stock_event("order_placed", "s", "o1", T0 + 1, qty=2, order_id="o1", channel="web"),
        stock_event("hold", "s", "h1", T0 + 2, qty=1, order_id="cart", expires_at=T0 + 60),
        stock_event("order_placed", "s", "o2", T0 + 3, qty=9, order_id="o2", channel="b2b"),
        stock_event(
            "return_received", "s", "r", T0 + 4, qty=1, location="b", disposition="damaged"
        ),
    ]
    for ev in events:
        state, _ = apply(state, ev, config, ev["occurred_at"])
    return state


def test_a_state_round_trips_through_bytes_exactly() -> None:
    """Given a state with locations, an order, a hold, a backorder, counts and a journal,
    When it is written to bytes and read back, Then it is equal and encodes the same."""
    state = _busy_state()
    assert state.holds and state.orders and state.backorders and len(state.journal)
    back = SkuState.from_bytes(state.to_bytes())
    assert back == state and back.ids == state.ids
    assert back.to_bytes() == state.to_bytes()


def test_foreign_bytes_are_refused_with_a_named_error() -> None:
    """Given bytes that are not a SKU state, When read, Then StateFormatError says so."""
    with pytest.raises(StateFormatError):
        SkuState.from_bytes(b'{"sku": "x"}')
    with pytest.raises(StateFormatError):
        SkuState.from_bytes(b"SF")


def test_the_applied_id_window_forgets_the_oldest_beyond_its_limit() -> None:
    """Given applied_ids_limit 3, When 5 events are applied,
    Then only the last 3 ids are remembered: the first is no longer a duplicate."""
    config = parse_config({"applied_ids_limit": 3})
    state = None
    for i in range(5):
        state, _ = apply(state, stock_event("receipt", "s", f"e{i}", T0, qty=1), config, T0)
    assert state is not None and len(state.ids_ring) == 3 and len(state.ids) == 3
    assert apply(state, stock_event("receipt", "s", "e4", T0, qty=1), config, T0)[1].duplicate
    assert not apply(state, stock_event("receipt", "s", "e0", T0, qty=1), config, T0)[1].duplicate
    smaller = parse_config({"applied_ids_limit": 2})
    state, _ = apply(state, stock_event("receipt", "s", "e9", T0, qty=1), smaller, T0)
    assert len(state.ids_ring) == 2 and len(state.ids) == 2


def test_the_journal_is_bounded_by_count_and_age() -> None:
    """Given journal_limit 4 and an age of 1 s, When 10 movements arrive,
    Then at most 4 are kept, none older than 1 s before now, and the floor moves."""
    config = parse_config({"journal_limit": 4, "journal_max_age_seconds": 1})
    state = None
    for i in range(10):
        state, _ = apply(
            state, stock_event("receipt", "s", f"e{i}", T0 + i * 300, qty=1), config, T0 + i * 300
        )
    assert state is not None
    times = list(state.journal[0::3])
    assert len(times) <= 4 and min(times) >= T0 + 9 * 300 - 1000
    assert state.journal_floor == max(t for t in range(T0, T0 + 3000, 300) if t not in times)


HOUR = 3_600_000
DAY = 24 * HOUR


def test_event_ids_are_remembered_for_the_window_and_no_longer() -> None:
    """Given a 7-day id window, When an event is applied and its id comes again 6 days later
    and then 8 days later, Then the first return is a duplicate and the second is not; the
    ids a state keeps are only those of its last 7 days, whatever its life."""
    config = parse_config({"applied_ids_window_seconds": 7 * 24 * 3600})
    state, _ = apply(None, stock_event("receipt", "s", "e1", T0, qty=1), config, T0)
    again = stock_event("receipt", "s", "e1", T0, qty=1)
    assert apply(state, again, config, T0 + 6 * DAY)[1].duplicate
    for day in range(1, 30):  # a SKU's life: one event a day
        at = T0 + day * DAY
        state, _ = apply(state, stock_event("receipt", "s", f"d{day}", at, qty=1), config, at)
    assert len(state.ids_ring) <= 8
    assert not apply(state, again, config, T0 + 30 * DAY)[1].duplicate


_OLD_HEADER = struct.Struct("<2sBIII")


def _old_bytes(state: SkuState, fmt: int) -> bytes:
    """``state`` as the previous formats wrote it: every id and journal entry in the record;
    format 2 keeps the ids' arrival runs and input position, format 1 a ring head of 2."""
    ids = array("Q", state.ids_ring)  # oldest first
    dedupe: object = [state.ids_marks, state.in_partition, state.in_offset]
    if fmt == 1:
        ids, dedupe = ids[-2:] + ids[:-2], 2  # a ring whose oldest is at head 2
    doc = orjson.dumps(
        [
            state.sku,
            state.version,
            state.journal_floor,
            dedupe,
            [
                [n, s.on_hand, s.reserved, s.unsellable, s.incoming, s.safety_stock,
                 s.last_count_as_of]
                for n, s in state.locations.items()
            ],
            [[k, h.event_id, h.location, h.qty, h.channel, h.expires_at]
             for k, h in state.holds.items()],
            state.orders,
            [[k, b.qty, b.channel] for k, b in state.backorders.items()],
            state.seq_high,
            state.last_qty,
            state.last_available,
        ]
    )  # fmt: skip
    head = _OLD_HEADER.pack(b"SF", fmt, len(doc), len(ids), len(state.journal))
    return b"".join((head, doc, ids.tobytes(), state.journal.tobytes()))


def test_a_state_of_format_1_is_read_and_its_ids_go_at_the_next_event() -> None:
    """Given a state written by an older format (an id ring with its head, no times),
    When it is read, Then its ids are known (a replay is still a duplicate) in oldest-first
    order, and the first event applied after lets them go as older than any window."""
    state = _busy_state()
    ids = list(state.ids_ring)
    back = SkuState.from_bytes(_old_bytes(state, 1))
    assert list(back.ids_ring) == ids and back.ids == set(ids)
    assert (back.in_partition, back.in_offset) == (-1, -1)
    later = T0 + 30 * DAY
    back, _ = apply(back, stock_event("receipt", "s", "new", later, qty=1), parse_config({}), later)
    assert len(back.ids_ring) == 1


def test_a_state_of_format_2_loads_and_its_next_write_moves_it_to_pages() -> None:
    """Given a busy SKU stored in format 2 (106 ids, its journal and 42 open orders in one
    record, at input position 0/99),
    When it is read, an event applied and its records written over the format-2 record,
    Then it read exactly as it was written, the write is the sealed pages and a format-4
    main record (no tombstone: nothing was paged), and reading that back gives the state."""
    config = parse_config({"journal_limit": 50})
    state = _busy_state()
    state, _ = apply(state, stock_event("receipt", "s", "big", T0, qty=100), config, T0)
    for i in range(100):
        kind = "order_placed" if i < 40 else "receipt"
        ev = stock_event(kind, "s", f"x{i}", T0 + i, qty=1, order_id=f"p{i}", channel="web")
        state, _ = apply(state, ev, config, T0 + i)
    state.in_partition, state.in_offset = 0, 99
    old = _old_bytes(state, 2)
    back = SkuState.from_bytes(old)
    assert back.ids_base == back.journal_base == 0  # positions count from the upgrade on
    assert replace(back, ids_base=state.ids_base, journal_base=state.journal_base) == state
    assert back.ids == state.ids and len(state.orders) == 42
    after, _ = apply(back, stock_event("sale", "s", "y", T0 + 200, qty=1), config, T0 + 200)
    written = after.records(old)
    assert all(value is not None for _, value in written)
    table = dict(written)
    assert table[b"s"][:3] == b"SF\x04" and len(table) > 5
    assert SkuState.from_bytes(table[b"s"], table.get) == after


def test_the_input_position_round_trips_and_recognises_redeliveries() -> None:
    """Given a state whose last applied input was partition 3 offset 41, When written and
    read back, Then offsets up to 41 of partition 3 count as applied, 42 and other
    partitions do not."""
    state = _busy_state()
    state.in_partition, state.in_offset = 3, 41
    back = SkuState.from_bytes(state.to_bytes())
    assert back.at_position(3, 41) and back.at_position(3, 0)
    assert not back.at_position(3, 42) and not back.at_position(2, 1)


def test_a_sku_at_its_open_entries_cap_refuses_new_backorders_after_an_alert() -> None:
    """Given max_open_entries 10 and a backorder channel with no stock, When 12 orders are
    backordered, Then the 8th raises an alert (80 % of the cap), the 11th and 12th are
    rejected with reason sku_state_full and not kept, and the state stays at 10 entries."""
    config = parse_config(
        {"max_open_entries": 10, "channels": [{"name": "b2b", "on_insufficient": "backorder"}]}
    )
    state, _ = apply(None, stock_event("stock_count", "s", "c", T0, qty=0), config, T0)
    outcomes, alerts = [], []
    for i in range(12):
        ev = stock_event(
            "order_placed", "s", f"o{i}", T0 + i, qty=1, order_id=f"o{i}", channel="b2b"
        )
        state, out = apply(state, ev, config, T0 + i)
        assert out.decision is not None
        outcomes.append((out.decision["outcome"], out.decision["reason"]))
        alerts += [(i, a["kind"], a["threshold"]) for a in out.alerts if a["kind"] == "other"]
    assert outcomes[:10] == [("backordered", "insufficient_stock")] * 10
    assert outcomes[10:] == [("rejected", "sku_state_full")] * 2
    assert alerts == [(7, "other", 10)]
    assert state.open_entries() == 10 and "o11" not in state.backorders


def test_a_sku_at_its_default_cap_with_the_longest_ids_stays_under_a_megabyte() -> None:
    """Given the default configuration and a backorder channel without stock, When more
    orders than the cap arrive, each with a 256-character order id (the longest the contract
    allows), Then the ones past the cap are refused and the state stays under 1 MB (Kafka's
    default record limit): 50,000 open backorders can never build up."""
    config = parse_config({"channels": [{"name": "b" * 256, "on_insufficient": "backorder"}]})
    cap = config.max_open_entries
    state, _ = apply(None, stock_event("stock_count", "s", "c", T0, qty=0), config, T0)
    refused = 0
    for i in range(cap + 50):
        order = f"{i:08d}".rjust(256, "o")
        ev = stock_event(
            "order_placed", "s", f"e{i}", T0 + i, qty=1, order_id=order, channel="b" * 256
        )
        state, out = apply(state, ev, config, T0 + i)
        refused += out.decision is not None and out.decision["reason"] == "sku_state_full"
    assert refused == 50 and state.open_entries() == cap
    assert len(state.to_bytes()) < 1_000_000
