"""A SKU's state stored as a small main record and sealed pages (streams.ledger.stored)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deploy.bench.state_size import TARGET_BYTES, run_state_size
from schemas.codec import single_object_codec
from schemas.events import stock_event
from streams.kernel.topics import STOCK_DEADLETTER, STOCK_EVENTS
from streams.ledger import SkuState, StateFormatError, apply, parse_config
from streams.ledger.state import event_key
from streams.ledger.stored import decode, is_page_key, page_key, records
from streams.worker import agent
from streams.worker.agent import LedgerStep

SKU = "lamp"
KEY = SKU.encode()
T0 = 1_795_000_000_000
HOUR = 3_600_000
SMALL = {"ids_page": 4, "journal_page": 3, "orders_page": 2}  # pages fill every few events
CONFIG = parse_config(
    {
        "applied_ids_limit": 12,
        "applied_ids_window_seconds": 3 * 3600,
        "journal_limit": 5,
        "journal_max_age_seconds": 4 * 3600,
        "discrepancy_alert_threshold": 1,
        "locations": [{"name": "a"}, {"name": "b"}],
    }
)
Store = dict[bytes, bytes]
KINDS = [
    "receipt",
    "sale",
    "adjustment",
    "stock_count",
    "order_placed",
    "order_shipped",
    "order_cancelled",
    "duplicate",
]

event_ops = st.tuples(
    st.sampled_from(KINDS),
    st.integers(0, 4),  # qty
    st.sampled_from(["a", "b"]),
    st.integers(0, 6),  # order number, or which earlier event is sent again (from the end)
    st.integers(0, 2 * HOUR),  # time advance; how far in the past a count is
    st.booleans(),  # the batch ends after this event
)


def _events(ops: list[tuple[Any, ...]]) -> list[tuple[dict[str, Any], bool]]:
    """The events of ``ops``, each with whether its batch ends after it."""
    out: list[tuple[dict[str, Any], bool]] = []
    now = T0
    for n, (kind, qty, loc, number, advance, ends) in enumerate(ops):
        now += advance
        if kind == "duplicate":
            if out:
                earlier = out[-1 - number * number % len(out)][0]
                out.append(({**earlier, "occurred_at": now}, ends))
            continue
        fields: dict[str, Any] = {"location": loc, "source": "wms"}
        if kind.startswith("order_"):
            fields.update(order_id=f"o{number}", channel="web")
            fields["location"] = loc if kind != "order_placed" else None
        if kind == "adjustment":
            qty, fields["reason"] = qty - 2 or 1, "correction"
        if kind == "stock_count":
            fields.update(as_of=now - advance // 2, source_seq=n)
        if kind in ("receipt", "sale", "order_placed"):
            qty = max(qty, 1)
        out.append((stock_event(kind, SKU, f"e{n}", now, qty=qty, **fields), ends))
    return out


def _write(store: Store, state: SkuState, **sizes: int) -> int:
    """Apply the records of ``state`` to ``store`` as Kafka and the table would; returns
    the bytes written (keys, values; a tombstone is its key)."""
    written = 0
    for key, value in records(state, store.get(KEY), **sizes):
        written += len(key) + (len(value) if value is not None else 0)
        if value is None:
            assert key in store, "a tombstone for a page that was never written"
            del store[key]
        else:
            store[key] = value
    return written


def _named(store: Store) -> set[bytes]:
    """The page keys the stored main record reads."""
    read: set[bytes] = set()

    def page(key: bytes) -> bytes | None:
        read.add(key)
        return store.get(key)

    decode(store[KEY], page)
    return read


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(event_ops, min_size=1, max_size=120))
def test_paged_states_decide_exactly_as_one_state_kept_in_memory(ops: list[Any]) -> None:
    """Given random receipts, sales, counts as of the past, orders placed, shipped in part
    and cancelled, and earlier events sent again, over hours that expire ids and journal
    entries, cut into random batches,
    When one run keeps a single state in memory and the other stores the state after each
    batch as a main record and pages (4 ids, 3 journal entries, 2 orders each) and reads it
    back before the next batch,
    Then both give the same outcome for every event (movements, decisions, alerts, levels,
    duplicates, skips) and the same state after every batch, and the store holds exactly
    the pages the main record names: every page that left the window was deleted."""
    memory: SkuState | None = None
    paged: SkuState | None = None
    store: Store = {}
    for event, ends in _events(ops):
        now = event["occurred_at"]
        memory, expected = apply(memory, event, CONFIG, now)
        paged, got = apply(paged, event, CONFIG, now)
        assert got == expected
        if ends:
            _write(store, paged, **SMALL)
            assert {k for k in store if is_page_key(k)} == _named(store)
            paged = SkuState.from_bytes(store[KEY], store.get)
            assert paged == memory and paged.ids == memory.ids
            assert paged.orders == memory.orders
    if paged is not None:
        _write(store, paged, **SMALL)
        assert SkuState.from_bytes(store[KEY], store.get) == memory


def test_an_id_in_any_live_page_is_a_duplicate_and_a_dropped_page_is_deleted() -> None:
    """Given a SKU that took 40 receipts (an id window of 12, pages of 4 ids), stored after
    each one,
    When each of the 40 events is sent again to the state read back from the store,
    Then the 12 newest (in sealed pages and in the open page) are duplicates, the 28 older
    are not, and no page of the forgotten ids is left in the store."""
    store: Store = {}
    state: SkuState | None = None
    events = [stock_event("receipt", SKU, f"r{i}", T0 + i, qty=1) for i in range(40)]
    for ev in events:
        state, _ = apply(state, ev, CONFIG, T0 + 100)
        _write(store, state, **SMALL)
    assert state is not None and state.ids_base == 28
    duplicates = []
    for ev in events:
        back = SkuState.from_bytes(store[KEY], store.get)
        duplicates.append(apply(back, ev, CONFIG, T0 + 100)[1].duplicate)
    assert duplicates == [False] * 28 + [True] * 12
    sealed = {k for k in store if k.startswith(KEY + b"\xffi")}
    assert sealed == {page_key(KEY, ord("i"), n) for n in range(7, 10)}  # ids 28 to 39


def test_an_order_in_a_sealed_page_keeps_the_order_of_its_lines() -> None:
    """Given order o1 reserved at a then b, sealed in an order page, whose line at a is then
    cancelled and placed again (lines now b then a: same units, another order),
    When the state is stored and read back and o1 is cancelled by one unit,
    Then the unit is released at b, as the state kept in memory releases it."""
    events = [
        stock_event("receipt", SKU, "ra", T0, qty=5, location="a"),
        stock_event("receipt", SKU, "rb", T0, qty=5, location="b"),
        *(
            stock_event("order_placed", SKU, f"p{i}", T0, qty=1, order_id=f"o{i}", location="a")
            for i in range(1, 3)
        ),
        stock_event("order_placed", SKU, "p1b", T0, qty=1, order_id="o1", location="b"),
    ]
    store: Store = {}
    state: SkuState | None = None
    for ev in events:
        state, _ = apply(state, ev, CONFIG, T0)
    assert state is not None
    _write(store, state, **SMALL)
    assert state.order_pages and list(state.orders["o1"]) == ["a", "b"]
    for ev in (
        stock_event("order_cancelled", SKU, "c1", T0, qty=1, order_id="o1"),
        stock_event("order_placed", SKU, "p1a", T0, qty=1, order_id="o1", location="a"),
    ):
        state, _ = apply(state, ev, CONFIG, T0)
    assert list(state.orders["o1"]) == ["b", "a"]
    _write(store, state, **SMALL)
    back = SkuState.from_bytes(store[KEY], store.get)
    cancel = stock_event("order_cancelled", SKU, "c2", T0, qty=1, order_id="o1")
    [moved] = apply(back, cancel, CONFIG, T0)[1].movements
    assert moved["location"] == "b" == apply(state, cancel, CONFIG, T0)[1].movements[0]["location"]


def test_many_orders_placed_in_one_batch_are_sealed_in_pages_of_their_size() -> None:
    """Given 100 orders placed in one batch (as a flash sale does),
    When the state is stored, then 10 orders are cancelled and it is stored again,
    Then the orders are sealed in pages of 16 (4 left in the main record), and the state
    read back holds the 90 open orders and nothing else."""
    store: Store = {}
    state, _ = apply(None, stock_event("receipt", SKU, "r", T0, qty=500, location="a"), CONFIG, T0)
    for i in range(100):
        ev = stock_event("order_placed", SKU, f"p{i}", T0, qty=1, order_id=f"o{i}")
        state, _ = apply(state, ev, CONFIG, T0)
    _write(store, state)
    assert [len(page) for page in state.order_pages.values()] == [16] * 6
    for i in range(0, 100, 10):
        ev = stock_event("order_cancelled", SKU, f"c{i}", T0, qty=0, order_id=f"o{i}")
        state, _ = apply(state, ev, CONFIG, T0)
    _write(store, state)
    back = SkuState.from_bytes(store[KEY], store.get)
    assert back == state and len(back.orders) == 90 and "o10" not in back.orders


def test_a_write_repeats_no_sealed_order_page_and_deletes_a_dropped_one() -> None:
    """Given a SKU whose four orders are sealed in two pages of two, stored,
    When it is written again unchanged, then after both orders of the first page are
    cancelled,
    Then the first write is its main record alone, the second its main record and the
    first page's tombstone, and the state read back equals the state kept in memory."""
    store: Store = {}
    state, _ = apply(None, stock_event("receipt", SKU, "r", T0, qty=50, location="a"), CONFIG, T0)
    for i in range(4):
        ev = stock_event("order_placed", SKU, f"p{i}", T0, qty=1, order_id=f"o{i}")
        state, _ = apply(state, ev, CONFIG, T0)
    _write(store, state, **SMALL)
    assert sorted(state.order_pages) == [0, 1]
    again = records(state, store[KEY], **SMALL)
    assert [key for key, _ in again] == [KEY]
    for i in range(2):
        ev = stock_event("order_cancelled", SKU, f"c{i}", T0, qty=0, order_id=f"o{i}")
        state, _ = apply(state, ev, CONFIG, T0)
    written = records(state, store[KEY], **SMALL)
    assert [(key, value is None) for key, value in written] == [
        (KEY, False),
        (page_key(KEY, ord("o"), 0), True),
    ]
    _write(store, state, **SMALL)
    assert SkuState.from_bytes(store[KEY], store.get) == state


def test_a_state_whose_page_is_missing_does_not_load() -> None:
    """Given a stored state with sealed pages, When one page is missing, Then reading it
    raises StateFormatError naming the page (its SKU's events are dead-lettered, never
    applied to a state without its dedupe window)."""
    store: Store = {}
    state: SkuState | None = None
    for i in range(10):
        state, _ = apply(state, stock_event("receipt", SKU, f"r{i}", T0, qty=1), CONFIG, T0)
        _write(store, state, **SMALL)
    lost = page_key(KEY, ord("i"), 1)
    del store[lost]
    with pytest.raises(StateFormatError, match="missing"):
        SkuState.from_bytes(store[KEY], store.get)
    with pytest.raises(StateFormatError, match="names sealed pages"):
        SkuState.from_bytes(store[KEY])


@given(st.text(min_size=1, max_size=256), st.sampled_from([ord("i"), ord("j"), ord("o")]))
def test_no_sku_key_is_a_page_key(sku: str, kind: int) -> None:
    """Given any SKU the contract allows (any text), When its key and a page key are made,
    Then the SKU's key is never a page key and a page key always is (0xFF is not UTF-8)."""
    assert not is_page_key(sku.encode())
    assert is_page_key(page_key(sku.encode(), kind, 12))


def test_a_sku_with_100000_events_writes_at_most_1_kb_per_event() -> None:
    """Given the bench's SKU (100,000 receipts, sales, orders placed, shipped and cancelled
    at 1,000 a day: 7,000 ids in the window, 1,000 journal entries, ~100 open orders),
    When it is written after every event as the ledger does (main record, pages sealed,
    tombstones), Then the bytes written per event, keys included, are at most 1 KB."""
    row = run_state_size()
    assert row.value <= TARGET_BYTES


class _Msg:
    def __init__(self, offset: int, value: bytes) -> None:
        self.topic, self.partition, self.offset = STOCK_EVENTS.name, 0, offset
        self.key, self.value = KEY, value


def test_the_batch_step_stores_pages_deletes_dropped_ones_and_rolls_back_with_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Given a SKU fed 300 receipts in batches of 25 through the batch step (a plain dict as
    the table, an id window of 100), where one event in the last batch fails in the rules,
    When every batch is stored,
    Then the table holds the main record and exactly the pages it names (those of forgotten
    ids deleted), the failed event is dead-lettered and its SKU rolled back over its pages,
    and the newest ids applied (the window) are known, no other."""
    codec = single_object_codec()
    sent: list[tuple[str, bytes | None, bytes]] = []

    async def send(topic: str, key: bytes | None, value: bytes) -> Any:
        sent.append((topic, key, value))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    def failing(state: Any, event: dict[str, Any], config: Any, now: int) -> Any:
        if event["event_id"] == "r290":
            state.locations["default"].on_hand += 1_000  # changed in place, then fails
            raise RuntimeError("a defect in a rule")
        return agent_apply(state, event, config, now)

    agent_apply = agent.apply
    monkeypatch.setattr(agent, "apply", failing)
    config = parse_config({"applied_ids_limit": 100})
    table: Store = {}
    step = LedgerStep(codec, config, table, send)  # type: ignore[arg-type]
    events = [stock_event("receipt", SKU, f"r{i}", T0 + i, qty=1) for i in range(300)]
    for start in range(0, 300, 25):
        batch = [
            (_Msg(i, codec.encode(STOCK_EVENTS.value_schema, e)), e)
            for i, e in enumerate(events[start : start + 25], start=start)
        ]
        asyncio.run(step.run(batch))
    assert {k for k in table if is_page_key(k)} == _named(table) != set()
    state = SkuState.from_bytes(table[KEY], table.get)
    assert state.locations["default"].on_hand == 299
    dead = [codec.decode(v)[1] for t, _, v in sent if t == STOCK_DEADLETTER.name]
    assert [d["event_id"] for d in dead] == ["r290"]
    applied = [e for e in events if e["event_id"] != "r290"]
    known = [state.seen(event_key(e["event_id"])) for e in applied]
    kept = len(state.ids_ring)  # the limit, and up to 1/16 more until trimmed in one step
    assert 100 <= kept < 299 and known == [False] * (299 - kept) + [True] * kept
