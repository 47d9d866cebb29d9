"""The ledger's batch step: one failing event is dead-lettered and rolled back, never the batch."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from schemas.codec import Codec, CodecError, single_object_codec
from schemas.events import stock_event
from streams.kernel.topics import STOCK_DEADLETTER, STOCK_DECISIONS, STOCK_EVENTS, STOCK_MOVEMENTS
from streams.ledger import DEFAULT_CONFIG, SkuState, apply, parse_config
from streams.worker import agent
from streams.worker.agent import LedgerStep

T0 = 1_795_000_000_000
CODEC = single_object_codec()


@dataclass
class Msg:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


class Outputs:
    """What the step sent, decoded, by topic."""

    def __init__(self, codec: Codec) -> None:
        self.codec = codec
        self.sent: list[tuple[str, bytes | None, bytes]] = []

    async def send(self, topic: str, key: bytes | None, value: bytes) -> Any:
        self.sent.append((topic, key, value))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    def of(self, topic: str) -> list[dict[str, Any]]:
        return [self.codec.decode(v)[1] for t, _, v in self.sent if t == topic]


def _event(eid: str, kind: str, sku: str, qty: int, **fields: Any) -> dict[str, Any]:
    return stock_event(kind, sku, eid, T0, qty=qty, source="test", **fields)


def _run(
    events: list[dict[str, Any]], table: dict[bytes, bytes], codec: Codec = CODEC
) -> tuple[agent.BatchResult, Outputs]:
    out = Outputs(codec)
    step = LedgerStep(codec, DEFAULT_CONFIG, table, out.send)  # type: ignore[arg-type]
    items = [
        (
            Msg(
                STOCK_EVENTS.name,
                0,
                i,
                e["sku"].encode(),
                codec.encode(STOCK_EVENTS.value_schema, e),
            ),
            e,
        )
        for i, e in enumerate(events)
    ]
    result = asyncio.run(step.run(items))
    return result, out


def _on_hand(table: dict[bytes, bytes], sku: str) -> int:
    return SkuState.from_bytes(table[sku.encode()]).locations["default"].on_hand


def _movement_sum(out: Outputs, sku: str) -> int:
    return sum(m["delta_on_hand"] for m in out.of(STOCK_MOVEMENTS.name) if m["sku"] == sku)


def test_a_rule_that_raises_dead_letters_its_event_and_rolls_its_sku_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Given a batch where a rule raises on the third event of SKU a (after it changed the
    state), among good events of a and b, when the step runs, then that event is
    dead-lettered as internal_error with the exception named, none of its outputs is sent,
    a's state is what its other events make, and b is applied."""

    def failing(state: Any, event: dict[str, Any], config: Any, now: int) -> Any:
        if event["event_id"] == "a3":
            state.locations["default"].on_hand += 1_000  # changed in place, then fails
            raise RuntimeError("a defect in a rule")
        return apply(state, event, config, now)

    monkeypatch.setattr(agent, "apply", failing)
    table: dict[bytes, bytes] = {}
    events = [
        _event("a1", "stock_count", "a", 10),
        _event("b1", "receipt", "b", 4),
        _event("a2", "sale", "a", 3),
        _event("a3", "sale", "a", 1),
        _event("a4", "sale", "a", 2),
    ]
    result, out = _run(events, table)
    assert (result.applied, result.internal_errors, result.dead_letters) == (4, 1, 1)
    [dead] = out.of(STOCK_DEADLETTER.name)
    assert dead["reason"] == "internal_error"
    assert dead["event_id"] == "a3"
    assert dead["error"].startswith("RuntimeError: a defect in a rule [at ")
    assert "test_ledger_step.py" in dead["error"]
    assert _on_hand(table, "a") == 10 - 3 - 2 == _movement_sum(out, "a")
    assert _on_hand(table, "b") == 4
    assert not [m for m in out.of(STOCK_MOVEMENTS.name) if m["event_id"] == "a3"]


def test_an_event_whose_outputs_overflow_their_avro_fields_is_rolled_back() -> None:
    """Given SKU a stored with on_hand 5 below the largest 64-bit integer, when a batch
    receives 1, then 10 (whose movement cannot be encoded), then sells 1, then the receipt
    of 10 is dead-lettered as internal_error and on_hand equals the stored figure + 1 - 1."""
    big = 2**63 - 1 - 5
    state = SkuState(sku="a")
    state.location("default").on_hand = big
    table = {b"a": state.to_bytes()}
    events = [
        _event("r1", "receipt", "a", 1),
        _event("r10", "receipt", "a", 10),
        _event("s1", "sale", "a", 1),
    ]
    result, out = _run(events, table)
    assert (result.applied, result.internal_errors) == (2, 1)
    [dead] = out.of(STOCK_DEADLETTER.name)
    assert (dead["event_id"], dead["reason"]) == ("r10", "internal_error")
    assert "CodecError" in dead["error"]
    assert _on_hand(table, "a") == big
    assert _movement_sum(out, "a") == 0


def test_a_stored_state_that_does_not_decode_dead_letters_its_events_only() -> None:
    """Given SKU a stored as bytes that are no SKU state, when a batch has events of a and
    b, then a's event is dead-lettered as internal_error, a's stored bytes stay as they are
    (nothing overwrites them), and b's event is applied."""
    table = {b"a": b"not a state"}
    result, out = _run([_event("a1", "receipt", "a", 1), _event("b1", "receipt", "b", 2)], table)
    assert (result.applied, result.internal_errors) == (1, 1)
    [dead] = out.of(STOCK_DEADLETTER.name)
    assert dead["reason"] == "internal_error" and "StateFormatError" in dead["error"]
    assert table[b"a"] == b"not a state"
    assert _on_hand(table, "b") == 2


class FailingEncoder(Codec):
    """The single-object codec, except that it cannot encode a movement of SKU ``bad``."""

    def __init__(self) -> None:
        self.inner = single_object_codec()
        super().__init__()

    def encode(self, schema_name: str, record: dict[str, Any]) -> bytes:
        if schema_name == STOCK_MOVEMENTS.value_schema and record.get("sku") == "bad":
            raise ValueError("encoder broke")
        return self.inner.encode(schema_name, record)

    def decode(self, data: bytes) -> tuple[str, dict[str, Any]]:
        return self.inner.decode(data)


def test_an_encoder_error_dead_letters_the_event_and_the_batch_goes_on() -> None:
    """Given an encoder that fails on SKU bad's movements, when a batch mixes bad and good,
    then each event of bad is dead-lettered as internal_error, bad has no stored state, and
    good is applied with its movements sent."""
    events = [
        _event("g1", "receipt", "good", 2),
        _event("x1", "receipt", "bad", 2),
        _event("g2", "receipt", "good", 3),
        _event("x2", "sale", "bad", 1),
    ]
    table: dict[bytes, bytes] = {}
    result, out = _run(events, table, FailingEncoder())
    assert (result.applied, result.internal_errors) == (2, 2)
    assert b"bad" not in table
    assert _on_hand(table, "good") == 5 == _movement_sum(out, "good")


def test_each_key_is_read_under_its_own_events_context() -> None:
    """Given a batch with SKUs of two partitions, when the step reads each SKU's stored
    state, then the framework's current event is that SKU's own event (a partitioned store
    serves a key from the current event's partition)."""
    current: list[Any] = [None]
    seen: dict[bytes, int] = {}

    class Table(dict[bytes, bytes]):
        def get(self, key: bytes, default: Any = None) -> Any:
            seen[key] = current[0].partition
            return super().get(key, default)

    @contextmanager
    def as_current(handle: Any) -> Iterator[None]:
        before, current[0] = current[0], handle
        try:
            yield
        finally:
            current[0] = before

    out = Outputs(CODEC)
    step = LedgerStep(CODEC, DEFAULT_CONFIG, Table(), out.send)  # type: ignore[arg-type]
    items = []
    for i, (sku, partition) in enumerate([("a", 0), ("b", 1), ("c", 2), ("a", 0)]):
        e = _event(f"{sku}{i}", "receipt", sku, 1)
        msg = Msg(
            STOCK_EVENTS.name,
            partition,
            i,
            sku.encode(),
            CODEC.encode(STOCK_EVENTS.value_schema, e),
        )
        items.append((msg, msg))
    asyncio.run(step.run(items, as_current))
    assert seen == {b"a": 0, b"b": 1, b"c": 2}


class FlakyRegistry(Codec):
    """The single-object codec behind a registry that fails the first ``outages`` lookups."""

    def __init__(self, outages: int) -> None:
        self.inner = single_object_codec()
        self.outages = outages
        super().__init__()

    def _lookup(self) -> None:
        if self.outages:
            self.outages -= 1
            raise CodecError("registry_unavailable", "registry at http://r did not answer")

    def encode(self, schema_name: str, record: dict[str, Any]) -> bytes:
        self._lookup()
        return self.inner.encode(schema_name, record)

    def decode(self, data: bytes) -> tuple[str, dict[str, Any]]:
        self._lookup()
        return self.inner.decode(data)


@pytest.mark.parametrize("outages", [1, 4, 7])
def test_a_registry_that_does_not_answer_pauses_the_batch_and_dead_letters_nothing(
    monkeypatch: pytest.MonkeyPatch, outages: int
) -> None:
    """Given a schema registry that fails its next lookups (on decoding an event or encoding
    an output), when a batch of good events runs, then it waits and retries until the
    registry answers, every event is applied once, and nothing is dead-lettered."""
    monkeypatch.setattr(agent, "PAUSE_FIRST_S", 0.0)
    events = [_event(f"r{i}", "receipt", "a", 1) for i in range(3)]
    items = [
        (Msg(STOCK_EVENTS.name, 0, i, b"a", CODEC.encode(STOCK_EVENTS.value_schema, e)), e)
        for i, e in enumerate(events)
    ]
    codec = FlakyRegistry(outages)
    out = Outputs(CODEC)
    table: dict[bytes, bytes] = {}
    step = LedgerStep(codec, DEFAULT_CONFIG, table, out.send)  # type: ignore[arg-type]
    result = asyncio.run(step.run(items))
    assert (result.applied, result.dead_letters) == (3, 0)
    assert out.of(STOCK_DEADLETTER.name) == []
    assert _on_hand(table, "a") == 3 == _movement_sum(out, "a")


def test_a_kafka_redelivery_is_recognised_by_its_position_when_its_id_is_forgotten() -> None:
    """Given a ledger that remembers a single event id, when a batch of three receipts at
    offsets 0..2 is applied and the same records are delivered again (a replay after a
    crash), then the replay is recognised by input position and changes nothing; a new
    record at offset 3 is applied."""
    config = parse_config({"applied_ids_limit": 1})
    table: dict[bytes, bytes] = {}
    out = Outputs(CODEC)
    step = LedgerStep(CODEC, config, table, out.send)  # type: ignore[arg-type]
    events = [_event(f"r{i}", "receipt", "a", 1) for i in range(4)]
    items = [
        (Msg(STOCK_EVENTS.name, 5, i, b"a", CODEC.encode(STOCK_EVENTS.value_schema, e)), e)
        for i, e in enumerate(events)
    ]
    asyncio.run(step.run(items[:3]))
    replay = asyncio.run(step.run(items[:3]))
    assert (replay.applied, replay.duplicates) == (0, 3)
    assert _on_hand(table, "a") == 3
    assert asyncio.run(step.run(items[1:])).applied == 1
    assert _on_hand(table, "a") == 4


def test_a_decision_on_an_order_book_reservation_is_also_sent_to_the_book_keyed_by_order() -> None:
    """Given a SKU counted at 5 and a step told the order book's replies topic, when the
    book's reservation (an ``ob|`` event of order o-1) and a shop's order (order s-1) are
    decided, then both Decisions go to ``stock.decisions.v1`` keyed by SKU, and only the
    book's goes to the replies topic too, keyed by its order id, with the same bytes."""
    out = Outputs(CODEC)
    step = LedgerStep(CODEC, DEFAULT_CONFIG, {}, out.send, replies="app-order-decisions")  # type: ignore[arg-type]
    events = [
        _event("c1", "stock_count", "a", 5),
        _event("ob|o-1|1|l1", "order_placed", "a", 2, channel="web", order_id="o-1"),
        _event("shop-1", "order_placed", "a", 1, channel="web", order_id="s-1"),
    ]
    items = [
        (Msg(STOCK_EVENTS.name, 0, i, b"a", CODEC.encode(STOCK_EVENTS.value_schema, e)), e)
        for i, e in enumerate(events)
    ]
    asyncio.run(step.run(items))
    decided = [(k, v) for t, k, v in out.sent if t == STOCK_DECISIONS.name]
    replies = [(k, v) for t, k, v in out.sent if t == "app-order-decisions"]
    assert [k for k, _ in decided] == [b"a", b"a"]
    assert replies == [(b"o-1", decided[0][1])]
    assert CODEC.decode(replies[0][1])[1]["outcome"] == "accepted"
