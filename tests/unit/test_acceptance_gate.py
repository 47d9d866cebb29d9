"""Marketplace orders awaiting acceptance: accepted only when the ledger reserved every line;
otherwise every line released and the order refused, at the latest before its deadline."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from connectors.framework.acceptance import AcceptanceGate, AwaitedLine, AwaitedOrder
from connectors.framework.types import StockEventDict, ThrottledError
from schemas.codec import single_object_codec

AT = 1_767_225_600_000  # 2026-01-01T00:00:00Z


class Marketplace:
    """The marketplace's side: what it was told, in order; ``throttle`` answers 429 first."""

    channel = "cdiscount"
    account = "seller-1"

    def __init__(self, throttle: int = 0, refuses_calls: bool = False) -> None:
        self.calls: list[tuple[str, str, str]] = []
        self.throttle = throttle
        self.refuses_calls = refuses_calls

    async def accept(self, order: AwaitedOrder) -> None:
        self._take("accept", order, "")

    async def refuse(self, order: AwaitedOrder, reason: str) -> None:
        self._take("refuse", order, reason)

    def _take(self, what: str, order: AwaitedOrder, reason: str) -> None:
        if self.throttle:
            self.throttle -= 1
            raise ThrottledError("429", retry_after=0.01)
        if self.refuses_calls:
            raise ValueError("order no longer awaiting acceptance")
        self.calls.append((what, order.order_id, reason))


class Clock:
    def __init__(self) -> None:
        self.now = AT

    def __call__(self) -> int:
        return self.now


def _order(order_id: str = "A1", lines: int = 2, deadline_ms: int | None = None) -> AwaitedOrder:
    return AwaitedOrder(
        channel="cdiscount",
        account="seller-1",
        order_id=order_id,
        lines=tuple(AwaitedLine(f"L{i}", f"sku-{i}", i + 1) for i in range(lines)),
        deadline_ms=deadline_ms,
    )


def _decision(order: AwaitedOrder, line: AwaitedLine, outcome: str) -> dict[str, Any]:
    return {
        "decision_id": f"d-{order.order_id}-{line.line_id}",
        "event_id": order.placed_id(line),
        "channel": order.channel,
        "sku": line.sku,
        "qty": line.qty,
        "outcome": outcome,
        "reason": "" if outcome == "accepted" else "insufficient_stock",
        "at": AT,
    }


def _gate(market: Marketplace, published: list[StockEventDict], **kwargs: Any) -> AcceptanceGate:
    async def publish(events: Sequence[StockEventDict]) -> None:
        published.extend(events)

    kwargs.setdefault("backoff_s", 0.01)
    return AcceptanceGate({market.channel: market}, publish, **kwargs)


def test_an_order_whose_every_line_is_reserved_is_accepted_and_nothing_is_released() -> None:
    """Given an awaited order of two lines, when the ledger reserves both, then the
    marketplace is told to accept it once, no release is published, and the answer is
    listed."""

    async def run() -> None:
        market, published = Marketplace(), []
        gate = _gate(market, published)
        order = _order()
        gate.expect(order)
        assert await gate.on_decision(_decision(order, order.lines[0], "accepted"))
        await gate.answer_due()
        assert market.calls == []  # one line still undecided
        assert await gate.on_decision(_decision(order, order.lines[1], "accepted"))
        await gate.answer_due()
        await gate.answer_due()
        assert market.calls == [("accept", "A1", "")]
        assert published == []
        assert [r["outcome"] for r in gate.rows()] == ["accepted"]
        gate.expect(order)  # polled again after the answer
        await gate.answer_due()
        assert market.calls == [("accept", "A1", "")]

    asyncio.run(run())


def test_an_order_with_a_line_refused_releases_every_line_and_is_refused() -> None:
    """Given an awaited order of two lines, when the ledger reserves the first and refuses
    the second, then both lines are released with the ids the inbound uses for a cancelled
    line (valid StockEvents without personal data), and the marketplace is told to refuse
    the order with the ledger's reason."""

    async def run() -> None:
        market, published = Marketplace(), []
        gate = _gate(market, published)
        order = _order()
        gate.expect(order)
        await gate.on_decision(_decision(order, order.lines[0], "accepted"))
        await gate.on_decision(_decision(order, order.lines[1], "rejected"))
        await gate.answer_due()
        assert market.calls == [("refuse", "A1", "insufficient_stock")]
        assert [(e["type"], e["sku"], e["qty"], e["event_id"]) for e in published] == [
            ("order_cancelled", "sku-0", 1, "cdiscount/seller-1/order/A1/line/L0/cancelled"),
            ("order_cancelled", "sku-1", 2, "cdiscount/seller-1/order/A1/line/L1/cancelled"),
        ]
        assert {e["order_id"] for e in published} == {"cdiscount:A1"}
        codec = single_object_codec()
        for event in published:
            codec.encode("stockflow.v1.StockEvent", event)
        row = gate.rows()[0]
        assert (row["outcome"], row["reason"]) == ("refused", "insufficient_stock")
        assert [line["ledger"] for line in row["lines"]] == ["accepted", "rejected"]

    asyncio.run(run())


def test_a_backordered_line_is_not_a_reservation() -> None:
    """Given an awaited order of one line, when the ledger backorders it, then the order is
    refused: a marketplace order is accepted only against stock on hand."""

    async def run() -> None:
        market, published = Marketplace(), []
        gate = _gate(market, published)
        order = _order(lines=1)
        gate.expect(order)
        await gate.on_decision(_decision(order, order.lines[0], "backordered"))
        await gate.answer_due()
        assert market.calls == [("refuse", "A1", "insufficient_stock")]
        assert len(published) == 1

    asyncio.run(run())


def test_an_order_undecided_near_its_deadline_is_refused_and_released() -> None:
    """Given an awaited order due in 10 minutes and a 60 s margin, when only one line is
    decided, then nothing is answered before the margin, and at the margin the order is
    refused (``deadline``) and every line released; a decision arriving after that changes
    nothing."""

    async def run() -> None:
        market, published, clock = Marketplace(), [], Clock()
        gate = _gate(market, published, clock=clock, margin_s=60)
        order = _order(deadline_ms=AT + 600_000)
        gate.expect(order)
        await gate.on_decision(_decision(order, order.lines[0], "accepted"))
        clock.now = AT + 539_000
        await gate.answer_due()
        assert market.calls == []
        clock.now = AT + 540_000
        await gate.answer_due()
        assert market.calls == [("refuse", "A1", "deadline")]
        assert len(published) == 2
        assert await gate.on_decision(_decision(order, order.lines[1], "accepted")) is False
        await gate.answer_due()
        assert market.calls == [("refuse", "A1", "deadline")]

    asyncio.run(run())


def test_a_throttled_answer_is_given_again_and_a_refused_call_is_recorded() -> None:
    """Given a marketplace that throttles twice, when an order is decided, then the answer
    is retried until it is taken (once); given a marketplace that refuses the call (the
    order left the waiting state), then the outcome says so with the error's class."""

    async def run() -> None:
        market, published = Marketplace(throttle=2), []
        gate = _gate(market, published)
        order = _order(lines=1)
        gate.expect(order)
        await gate.on_decision(_decision(order, order.lines[0], "accepted"))
        for _ in range(3):
            await gate.answer_due()
        assert market.calls == [("accept", "A1", "")]
        assert gate.rows()[0]["outcome"] == "accepted"

        refusing = Marketplace(refuses_calls=True)
        gate = _gate(refusing, published)
        gate.expect(order)
        await gate.on_decision(_decision(order, order.lines[0], "accepted"))
        await gate.answer_due()
        row = gate.rows()[0]
        assert (row["outcome"], row["error"]) == ("accept_failed", "ValueError")

    asyncio.run(run())


def test_decisions_of_other_orders_are_left_to_the_refusal_policies() -> None:
    """Given an awaited order, when a decision of another order (or another channel) comes,
    then the gate says it is not its own."""

    async def run() -> None:
        gate = _gate(Marketplace(), [])
        order = _order()
        gate.expect(order)
        other = _order("B2")
        assert await gate.on_decision(_decision(other, other.lines[0], "rejected")) is False
        assert await gate.on_decision({"event_id": "api-1", "outcome": "rejected"}) is False

    asyncio.run(run())


def test_a_restart_answers_the_orders_that_were_waiting_once(tmp_path: Path) -> None:
    """Given a gate that recorded one line's decision of a two-line order and answered
    another order, when the process restarts (a new gate on the same file), then the
    remaining decision completes the waiting order, which is accepted, and the answered
    order is not answered again."""

    async def run() -> None:
        path = tmp_path / "acceptance.json"
        market, published = Marketplace(), []
        first = _gate(market, published, path=path)
        done, waiting = _order("D1", lines=1), _order("W1")
        first.expect(done)
        first.expect(waiting)
        await first.on_decision(_decision(done, done.lines[0], "accepted"))
        await first.on_decision(_decision(waiting, waiting.lines[0], "accepted"))
        await first.answer_due()
        assert market.calls == [("accept", "D1", "")]

        again = Marketplace()
        second = _gate(again, published, path=path)
        second.expect(done)
        assert await second.on_decision(_decision(waiting, waiting.lines[1], "accepted"))
        await second.answer_due()
        assert again.calls == [("accept", "W1", "")]

    asyncio.run(run())


def test_an_order_of_a_channel_without_actions_is_a_wiring_error() -> None:
    """Given a gate for one marketplace, when an order of another channel is expected, then
    it is refused loudly (a wiring mistake, not a silent wait)."""
    gate = _gate(Marketplace(), [])
    with pytest.raises(ValueError, match="no acceptance actions"):
        gate.expect(AwaitedOrder("mirakl", "x", "1", (AwaitedLine("1", "s", 1),), None))


# ---- orders: book (the outcome from the order book's state) -------------------------------


def _book_order(order_id: str = "B1", deadline_ms: int | None = None) -> AwaitedOrder:
    return AwaitedOrder(
        channel="cdiscount",
        account="seller-1",
        order_id=order_id,
        lines=(AwaitedLine("L0", "sku-0", 1), AwaitedLine("L1", "sku-1", 2)),
        deadline_ms=deadline_ms,
        book=True,
    )


def _state(order: AwaitedOrder, status: str, reason: str | None = None) -> dict[str, Any]:
    return {
        "order_id": f"{order.channel}:{order.order_id}",
        "channel": order.channel,
        "status": status,
        "reason": reason,
    }


def _book_gate(
    market: Marketplace, published: list[StockEventDict], orders: list[dict[str, Any]], **kw: Any
) -> AcceptanceGate:
    async def publish_orders(records: Sequence[dict[str, Any]]) -> None:
        orders.extend(records)

    return _gate(market, published, publish_orders=publish_orders, **kw)


@pytest.mark.parametrize("status", ["allocated", "released"])
def test_a_book_order_the_book_holds_in_full_is_accepted(status: str) -> None:
    """Given an awaited order the order book holds (``orders: book``), when its state goes
    routed then ``allocated`` (or ``released`` to picking), then the marketplace is told to
    accept it once and nothing is released; a ledger decision never decides it."""

    async def run() -> None:
        market, published, orders = Marketplace(), [], []
        gate = _book_gate(market, published, orders)
        order = _book_order()
        gate.expect(order)
        assert not await gate.on_decision(_decision(order, order.lines[0], "rejected"))
        assert await gate.on_state(_state(order, "routed"))
        await gate.answer_due()
        assert market.calls == []  # the book has not decided yet
        assert await gate.on_state(_state(order, status))
        await gate.answer_due()
        await gate.on_state(_state(order, status))  # redelivered
        await gate.answer_due()
        assert market.calls == [("accept", "B1", "")]
        assert published == [] and orders == []
        assert [r["outcome"] for r in gate.rows()] == ["accepted"]
        assert not await gate.on_state({**_state(order, status), "order_id": "cdiscount:B9"})

    asyncio.run(run())


@pytest.mark.parametrize(
    "status", ["exception", "rejected", "backordered", "partially_allocated", "cancelled"]
)
def test_a_book_order_the_book_cannot_hold_is_cancelled_in_the_book_and_refused(
    status: str,
) -> None:
    """Given an awaited book order, when the book says it cannot hold it all, then one
    valid Order ``cancelled`` (the id the inbound uses for a refused order, by the
    connector) is published so the book releases what it holds, no per-line StockEvent,
    and the marketplace is told to refuse it with the book's reason."""

    async def run() -> None:
        market, published, orders = Marketplace(throttle=1), [], []
        gate = _book_gate(market, published, orders)
        order = _book_order()
        gate.expect(order)
        assert await gate.on_state(_state(order, status, reason="insufficient_stock"))
        await gate.answer_due()  # throttled: the release is not published twice
        await gate.answer_due()
        assert market.calls == [("refuse", "B1", "insufficient_stock")]
        assert published == []
        assert [(o["type"], o["order_id"], o["event_id"], o["by"]) for o in orders] == [
            (
                "cancelled",
                "cdiscount:B1",
                "cdiscount/seller-1/order/B1/cancelled",
                "connector:cdiscount",
            )
        ]
        codec = single_object_codec()
        codec.encode("stockflow.v1.Order", orders[0])

    asyncio.run(run())


def test_a_book_order_undecided_at_its_deadline_is_refused_and_survives_a_restart(
    tmp_path: Path,
) -> None:
    """Given a book order awaiting the book, when the gate restarts and then its deadline
    comes with no state, then the restored gate refuses it and cancels it in the book; a
    gate with no way to publish Order records will not take a book order."""

    async def run() -> None:
        clock = Clock()
        market, published, orders = Marketplace(), [], []
        path = tmp_path / "acceptance.json"
        gate = _book_gate(market, published, orders, path=path, clock=clock, margin_s=60)
        gate.expect(_book_order(deadline_ms=AT + 600_000))
        again = _book_gate(market, published, orders, path=path, clock=clock, margin_s=60)
        clock.now = AT + 540_000
        await again.answer_due()
        assert market.calls == [("refuse", "B1", "deadline")]
        assert [o["type"] for o in orders] == ["cancelled"] and published == []
        with pytest.raises(ValueError, match="publish_orders"):
            _gate(market, published).expect(_book_order("B2"))

    asyncio.run(run())
