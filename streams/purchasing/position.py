"""Stock positions per SKU x location, and the last purchase orders, read from ClickHouse.

A position is the ledger's figures after the last movement *applied* at that location
(``on_hand_after``, ``reserved_after``, ``unsellable_after`` of the movement with the highest
``(applied_at_ms, kafka_offset)``: the ledger's own order) and ``incoming``, the sum of every
movement's ``delta_incoming`` there (purchase_ordered raises it, receipts and
purchase_cancelled lower it; stock_movements keeps no incoming-after figure). Every movement
counts once however many copies ClickHouse holds (grouped by ``movement_id`` first, as the
reports do). SQL stays within what ClickHouse 18.16 and current releases share; filters sit
in an inner ``SELECT *`` (18.16 substitutes SELECT aliases into WHERE).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any, Protocol

from streams.replenishment.plan import Position

__all__ = ["last_orders", "positions", "unsent_orders"]

# Statuses of a proposal that was really ordered from the supplier.
ORDERED = ("sent", "partially_received", "received")
# Approved by a person or the auto-send rule but not sent yet (or the send failed and waits
# for a retry): no purchase_ordered event raised incoming yet, yet the units are on their way.
UNSENT = ("approved", "send_failed")


class Query(Protocol):
    def execute(self, query: str, params: Any = None) -> Any: ...


_FILTERS = (
    "location != '' AND (%(any_sku)s = 1 OR sku IN %(skus)s)"
    " AND (%(any_location)s = 1 OR location IN %(locations)s)"
)

_POSITIONS = """
SELECT sku, location,
       argMax(on_hand_after, (applied_at_ms, kafka_offset)),
       argMax(reserved_after, (applied_at_ms, kafka_offset)),
       argMax(unsellable_after, (applied_at_ms, kafka_offset)),
       sum(delta_incoming)
FROM (
    SELECT movement_id, any(sku) AS sku, any(location) AS location,
           any(on_hand_after) AS on_hand_after, any(reserved_after) AS reserved_after,
           any(unsellable_after) AS unsellable_after, any(delta_incoming) AS delta_incoming,
           any(applied_at_ms) AS applied_at_ms, min(kafka_offset) AS kafka_offset
    FROM (SELECT * FROM {db}.stock_movements WHERE {filters})
    GROUP BY movement_id
) GROUP BY sku, location
"""


def _params(skus: Collection[str] | None, locations: Collection[str] | None) -> dict[str, Any]:
    return {
        "any_sku": int(skus is None),
        "skus": tuple(skus or ("",)),
        "any_location": int(locations is None),
        "locations": tuple(locations or ("",)),
    }


def positions(
    client: Query,
    db: str,
    *,
    skus: Collection[str] | None = None,
    locations: Collection[str] | None = None,
    safety: Callable[[str], int] = lambda location: 0,
) -> dict[tuple[str, str], Position]:
    """Per (sku, location) with movements: its position now. ``safety(location)``: the
    ledger's safety stock kept back there. ``db`` must be a checked identifier."""
    if (skus is not None and not skus) or (locations is not None and not locations):
        return {}
    rows = client.execute(_POSITIONS.format(db=db, filters=_FILTERS), _params(skus, locations))
    return {
        (sku, location): Position(
            on_hand=int(on_hand),
            reserved=int(reserved),
            unsellable=int(unsellable),
            incoming=max(0, int(incoming)),
            safety_stock=safety(location),
        )
        for sku, location, on_hand, reserved, unsellable, incoming in rows
    }


# The lines of each proposal's last version, for proposals that were ordered; per supplier,
# location and SKU the line of the most recently created one.
_LAST_ORDERS = """
SELECT supplier, location, sku, argMax(qty, (created_at_ms, proposal_id)) FROM (
    SELECT proposal_id, supplier, location, sku, qty, created_at_ms
    FROM {db}.purchase_order_lines
    WHERE (proposal_id, version) IN (
        SELECT proposal_id, max(version) FROM {db}.purchase_orders GROUP BY proposal_id
    ) AND status IN %(ordered)s AND qty > 0
) GROUP BY supplier, location, sku
"""


def last_orders(client: Query, db: str) -> dict[tuple[str, str, str], int]:
    """Units of the last purchase order per (supplier, location, sku): the reference of the
    auto-send rule's change limit. Proposals never sent do not count."""
    rows = client.execute(_LAST_ORDERS.format(db=db), {"ordered": ORDERED})
    return {(supplier, location, sku): int(qty) for supplier, location, sku, qty in rows}


_UNSENT = """
SELECT sku, location, sum(qty) FROM (
    SELECT proposal_id, sku, any(location) AS location, any(qty) AS qty
    FROM {db}.purchase_order_lines
    WHERE (proposal_id, version) IN (
        SELECT proposal_id, max(version) FROM {db}.purchase_orders GROUP BY proposal_id
    ) AND status IN %(unsent)s
    GROUP BY proposal_id, sku
) GROUP BY sku, location
"""


def unsent_orders(client: Query, db: str) -> dict[tuple[str, str], int]:
    """Units per (sku, location) on purchase orders approved but not sent yet: the planner
    counts them as incoming, so a plan made meanwhile does not order them twice."""
    rows = client.execute(_UNSENT.format(db=db), {"unsent": UNSENT})
    return {(sku, location): int(qty) for sku, location, qty in rows if qty > 0}
