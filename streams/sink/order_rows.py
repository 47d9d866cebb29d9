"""OrderState → rows of ``orders``, ``order_lines`` and ``order_transitions``: one pure function.

One record of orders.state.v1 is one version of one order, written after one transition. It
becomes one ``orders`` row, one ``order_lines`` row per line and one ``order_transitions`` row,
all keyed by (order id, version), so a replayed or duplicated record collapses into the rows
it wrote the first time (see streams/warehouse/schema.py). Like the other mappers it checks
what ClickHouse would refuse or silently wrap, so a bad record is dead-lettered with a reason
rather than poisoning an insert.

Of the ship-to only the country is stored: the postal code and the customer's opaque ref stay
in Kafka (the reports need neither), and no name, street, email or phone exists in the record.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from streams.sink.delivery_rows import ALERT_DELIVERIES, ALERT_DELIVERY, delivery_rows
from streams.sink.purchase_rows import PROPOSAL, proposal_key, proposal_rows
from streams.sink.rows import (
    Row,
    RowError,
    Table,
    _int,
    _int_or_zero,
    _ms,
    _opt_text,
    _text,
    to_rows,
)
from streams.sink.shipment_rows import SHIPMENT, SHIPMENTS, shipment_rows

ORDER_STATE = "stockflow.v1.OrderState"
MAX_QTY = 2**62  # far above any real quantity; keeps qty x unit_price inside Int64 sums

ORDERS = Table(
    "orders",
    (
        "order_id",
        "version",
        "channel",
        "status",
        "route_reason",
        "reason",
        "attempts",
        "delivery",
        "pickup_location",
        "country",
        "customer_type",
        "risk",
        "shipping_cost",
        "lines",
        "units",
        "placed_at",
        "placed_at_ms",
        "updated_at",
        "updated_at_ms",
        "kafka_partition",
        "kafka_offset",
    ),
)
ORDER_LINES = Table(
    "order_lines",
    (
        "order_id",
        "version",
        "line_id",
        "channel",
        "sku",
        "qty",
        "location",
        "lot",
        "status",
        "shipped_qty",
        "unit_price",
        "currency",
        "placed_at",
        "placed_at_ms",
        "updated_at_ms",
        "kafka_partition",
        "kafka_offset",
    ),
)
ORDER_TRANSITIONS = Table(
    "order_transitions",
    (
        "order_id",
        "version",
        "channel",
        "from_status",
        "to_status",
        "event_id",
        "reason",
        "actor",
        "at",
        "at_ms",
        "placed_at_ms",
        "kafka_partition",
        "kafka_offset",
    ),
)
ORDER_TABLES: tuple[Table, ...] = (ORDERS, ORDER_LINES, ORDER_TRANSITIONS)

Parts = list[tuple[Table, list[Row]]]


def _count(record: Mapping[str, Any], name: str, *, low: int = 0) -> int:
    value = _int(record, name)
    if not low <= value <= MAX_QTY:
        raise RowError("bad_field", f"{name} must be between {low} and {MAX_QTY}, got {value}")
    return value


def _opt_count(record: Mapping[str, Any], name: str) -> int | None:
    return None if record.get(name) is None else _count(record, name)


def _attempts(record: Mapping[str, Any]) -> int:
    value = _int_or_zero(record, "attempts")
    if not 0 <= value <= 2**32 - 1:
        raise RowError("bad_field", f"attempts must be between 0 and 2**32-1, got {value}")
    return value


def _mapping(record: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = record.get(name)
    if not isinstance(value, Mapping):
        raise RowError("bad_field", f"{name} must be a record, got {value!r}")
    return value


def _line_row(
    line: Mapping[str, Any], head: tuple[str, int, str], times: tuple[int, int], where: Row
) -> Row:
    order_id, version, channel = head
    placed, updated = times
    return (
        order_id,
        version,
        _text(line, "line_id"),
        channel,
        _text(line, "sku"),
        _count(line, "qty", low=1),
        _opt_text(line, "location"),
        _opt_text(line, "lot"),
        _text(line, "status"),
        _count(line, "shipped_qty") if line.get("shipped_qty") is not None else 0,
        _opt_count(line, "unit_price"),
        _opt_text(line, "currency"),
        placed // 1000,
        placed,
        updated,
        *where,
    )


def order_state_rows(r: Mapping[str, Any], partition: int, offset: int) -> Parts:
    """The rows of one order state: (table, rows) for each of the three order tables."""
    order_id, channel, status = _text(r, "order_id"), _text(r, "channel"), _text(r, "status")
    version = _count(r, "version", low=1)
    placed, updated = _ms(r, "placed_at"), _ms(r, "updated_at")
    lines = r.get("lines")
    if not isinstance(lines, list) or not lines:
        raise RowError("bad_field", f"lines must be a non-empty list, got {lines!r}")
    if not all(isinstance(line, Mapping) for line in lines):
        raise RowError("bad_field", "every line must be a record")
    ids = [line.get("line_id") for line in lines]
    if len(set(ids)) != len(ids):
        raise RowError("bad_field", f"line ids repeat: {ids!r}")
    where: Row = (partition, offset)
    head = (order_id, version, channel)
    line_rows = [_line_row(line, head, (placed, updated), where) for line in lines]
    transition = _mapping(r, "transition")
    at = _ms(transition, "at")
    to_status = _text(transition, "to_status")
    if to_status != status:
        raise RowError(
            "bad_field", f"transition.to_status {to_status!r} differs from status {status!r}"
        )
    order_row = (
        order_id,
        version,
        channel,
        status,
        _opt_text(r, "route_reason"),
        _opt_text(r, "reason"),
        _attempts(r),
        _opt_text(r, "delivery") or "ship",
        _opt_text(r, "pickup_location"),
        _opt_text(r, "country"),
        _opt_text(r, "customer_type") or "b2c",
        _opt_text(r, "risk"),
        _opt_count(r, "shipping_cost"),
        len(line_rows),
        sum(row[5] for row in line_rows),
        placed // 1000,
        placed,
        updated // 1000,
        updated,
        *where,
    )
    transition_row = (
        order_id,
        version,
        channel,
        _opt_text(transition, "from_status"),
        to_status,
        _text(transition, "event_id"),
        _opt_text(transition, "reason") or _opt_text(r, "reason"),
        _opt_text(transition, "by"),
        at // 1000,
        at,
        placed,
        *where,
    )
    return [(ORDERS, [order_row]), (ORDER_LINES, line_rows), (ORDER_TRANSITIONS, [transition_row])]


def table_rows(schema: str, record: Mapping[str, Any], partition: int, offset: int) -> Parts:
    """Every (table, rows) one decoded record becomes: the order tables for an order state,
    the purchase order tables for a proposal, else the one table of
    :func:`streams.sink.rows.to_rows`."""
    if schema == ORDER_STATE:
        return order_state_rows(record, partition, offset)
    if schema == PROPOSAL:
        return proposal_rows(record, partition, offset)
    if schema == ALERT_DELIVERY:
        return [(ALERT_DELIVERIES, delivery_rows(record, partition, offset))]
    if schema == SHIPMENT:
        return [(SHIPMENTS, shipment_rows(record, partition, offset))]
    table, rows = to_rows(schema, record, partition, offset)
    return [(table, rows)]


def order_key(record: Mapping[str, Any]) -> str | None:
    """The id to log and dead-letter an order state with: ``order_id@version`` (a proposal:
    ``proposal_id@version``)."""
    order_id, version = record.get("order_id"), record.get("version")
    if not isinstance(order_id, str):
        return proposal_key(record)
    return f"{order_id}@{version}" if isinstance(version, int) else order_id
