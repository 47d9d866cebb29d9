"""The orders API's reads of the order agent's table (:class:`OrderBookView` over Faust).

The table holds, per order id, the book's state (``streams.orders.book``), and per customer
their book under ``customer|{ref}``; reads see this worker's partitions only (the API
forwards and fans out for the others). A listing walks the local table: fine for the
exception queue of a store or a warehouse, not meant as a search over millions of orders
(ClickHouse's ``orders`` table is).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from streams.orders.book import OrderBookState
from streams.worker.order_reads import sort_key
from streams.worker.orders import CUSTOMER_PREFIX

log = logging.getLogger("stockflow.orders")


def state_answer(state: OrderBookState) -> dict[str, Any]:
    """The order's OrderState record as of its last transition, with its history."""
    last = state.history[-1] if state.history else {}
    return {**state.record(last), "history": list(state.history)}


class TableOrderBook:
    """An :class:`~streams.worker.order_reads.OrderBookView` over the order agent's table."""

    def __init__(self, table: Any) -> None:
        self.table = table

    def get(self, order_id: str) -> Mapping[str, Any] | None:
        raw = self.table.get(order_id.encode())
        if raw is None:
            return None
        return state_answer(OrderBookState.from_bytes(raw))

    def list(self, status: str | None, channel: str | None, limit: int) -> list[Mapping[str, Any]]:
        found: list[Mapping[str, Any]] = []
        for key, raw in list(self.table.items()):
            if raw is None or key.startswith(CUSTOMER_PREFIX):
                continue
            try:
                state = OrderBookState.from_bytes(raw)
            except ValueError as exc:  # a state the agent dead-letters when it meets it
                log.warning("order %r: stored state does not decode: %s", key, exc)
                continue
            if (status is None or state.status == status) and (
                channel is None or state.channel == channel
            ):
                found.append(state_answer(state))
        return sorted(found, key=sort_key)[:limit]
