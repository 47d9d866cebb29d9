"""What the orders API reads of the order book: a small protocol over the order table.

The order agent keeps each order's state in a Faust table keyed by order id (its bytes);
the API reads it only through :class:`OrderBookView`, so the views are tested with
:class:`MemoryOrderBook` and the table's own reader plugs in at the worker.

A state is the ``OrderState`` record as the codec gives it (JSON-able: ids, statuses,
integers), plus ``history``: the list of its transitions (``{from_status, to_status,
event_id, reason, by, at}``), oldest first, where the book keeps them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

__all__ = ["MAX_LIST", "MemoryOrderBook", "OrderBookView", "order_answer", "order_summary"]

MAX_LIST = 1000  # orders in one answer of GET /v1/orders
_LINE_KEYS = ("line_id", "sku", "qty", "location", "lot", "status", "shipped_qty")
_SUMMARY_KEYS = (
    "order_id",
    "channel",
    "status",
    "reason",
    "route_reason",
    "attempts",
    "delivery",
    "pickup_location",
    "shipping_cost",
    "placed_at",
    "updated_at",
    "version",
)


class OrderBookView(Protocol):
    """The orders this worker's table holds (its partitions of orders.v1)."""

    def get(self, order_id: str) -> Mapping[str, Any] | None:
        """The order's state; None when the table does not hold it."""

    def list(self, status: str | None, channel: str | None, limit: int) -> list[Mapping[str, Any]]:
        """At most ``limit`` states with that status and channel (None: any), the longest
        unchanged first (``updated_at`` ascending, then order id)."""


class MemoryOrderBook:
    """An :class:`OrderBookView` over a dict of states (tests, tools)."""

    def __init__(self, states: Iterable[Mapping[str, Any]] = ()) -> None:
        self.states: dict[str, Mapping[str, Any]] = {s["order_id"]: s for s in states}

    def put(self, state: Mapping[str, Any]) -> None:
        self.states[state["order_id"]] = state

    def get(self, order_id: str) -> Mapping[str, Any] | None:
        return self.states.get(order_id)

    def list(self, status: str | None, channel: str | None, limit: int) -> list[Mapping[str, Any]]:
        found = (
            s
            for s in self.states.values()
            if (status is None or s.get("status") == status)
            and (channel is None or s.get("channel") == channel)
        )
        return sorted(found, key=sort_key)[:limit]


def sort_key(state: Mapping[str, Any]) -> tuple[int, str]:
    return int(state.get("updated_at") or 0), str(state.get("order_id"))


def order_summary(state: Mapping[str, Any]) -> dict[str, Any]:
    """An order in ``GET /v1/orders``: its state and lines, without history."""
    answer = {key: state.get(key) for key in _SUMMARY_KEYS}
    answer["lines"] = [
        {key: line.get(key) for key in _LINE_KEYS} for line in state.get("lines") or ()
    ]
    return answer


def order_answer(state: Mapping[str, Any]) -> dict[str, Any]:
    """The body of ``GET /v1/orders/{order_id}``: the summary and the history of its
    transitions (the last one alone when the book keeps no history)."""
    history = state.get("history")
    if history is None:
        history = [state["transition"]] if state.get("transition") else []
    return {**order_summary(state), "history": list(history)}
