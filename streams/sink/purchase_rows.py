"""Proposal → rows of ``purchase_orders`` and ``purchase_order_lines``: one pure function.

One record of replenishment.proposals.v1 is one version of one proposal (the purchase order
it becomes once sent). It becomes one ``purchase_orders`` row and one ``purchase_order_lines``
row per line, keyed by (proposal id, version), so a replayed or duplicated record collapses
into the rows it wrote the first time (see streams/warehouse/schema.py, migration 6). Like the
other mappers it checks what ClickHouse would refuse or silently wrap, so a bad record is
dead-lettered with a reason rather than poisoning an insert. The record holds supplier and
location ids only, never a contact.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

from streams.sink.rows import Row, RowError, Table, _int, _ms, _opt_text, _text

PROPOSAL = "stockflow.v1.Proposal"
MAX_QTY = 2**62
EPOCH = date(1970, 1, 1)

PURCHASE_ORDERS = Table(
    "purchase_orders",
    (
        "proposal_id",
        "version",
        "status",
        "supplier",
        "location",
        "currency",
        "total",
        "lines",
        "units",
        "auto",
        "review_reason",
        "send_via",
        "send_ref",
        "expected_on",
        "actor",
        "note",
        "created_at",
        "created_at_ms",
        "updated_at",
        "updated_at_ms",
        "kafka_partition",
        "kafka_offset",
    ),
)
PURCHASE_ORDER_LINES = Table(
    "purchase_order_lines",
    (
        "proposal_id",
        "version",
        "sku",
        "supplier",
        "location",
        "status",
        "supplier_sku",
        "qty",
        "proposed_qty",
        "pack_size",
        "moq",
        "unit_cost",
        "currency",
        "policy",
        "available",
        "incoming",
        "projected_available",
        "forecast_lead_time",
        "safety_stock",
        "forecast_method",
        "reason",
        "last_order_qty",
        "received_qty",
        "cancelled_qty",
        "created_at",
        "created_at_ms",
        "updated_at_ms",
        "kafka_partition",
        "kafka_offset",
    ),
)
PURCHASE_TABLES: tuple[Table, ...] = (PURCHASE_ORDERS, PURCHASE_ORDER_LINES)

Parts = list[tuple[Table, list[Row]]]


def _count(record: Mapping[str, Any], name: str, *, low: int = 0) -> int:
    value = _int(record, name)
    if not low <= value <= MAX_QTY:
        raise RowError("bad_field", f"{name} must be between {low} and {MAX_QTY}, got {value}")
    return value


def _signed(record: Mapping[str, Any], name: str) -> int:
    value = record.get(name, 0)
    if value is None:
        value = 0
    if isinstance(value, bool) or not isinstance(value, int) or abs(value) > MAX_QTY:
        raise RowError("bad_field", f"{name} must be a whole number within ±2**62, got {value!r}")
    return value


def _day(record: Mapping[str, Any], name: str) -> date | None:
    value = record.get(name)
    if value is None:
        return None
    if isinstance(value, date):
        return value
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 49_710:
        raise RowError("bad_field", f"{name} must be a day between 1970 and 2106, got {value!r}")
    return EPOCH + timedelta(days=value)


def _float(record: Mapping[str, Any], name: str) -> float:
    value = record.get(name, 0.0)
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise RowError("bad_field", f"{name} must be a number, got {value!r}")
    return float(value)


def _line_row(line: Mapping[str, Any], head: tuple[Any, ...], tail: tuple[Any, ...]) -> Row:
    proposal_id, version, supplier, location, status, currency = head
    return (
        proposal_id,
        version,
        _text(line, "sku"),
        supplier,
        location,
        status,
        _text(line, "supplier_sku"),
        _count(line, "qty"),
        _count(line, "proposed_qty"),
        _count(line, "pack_size", low=1) if line.get("pack_size") is not None else 1,
        _count(line, "moq") if line.get("moq") is not None else 0,
        _count(line, "unit_cost"),
        currency,
        _text(line, "policy"),
        _signed(line, "available"),
        _signed(line, "incoming"),
        _signed(line, "projected_available"),
        _float(line, "forecast_lead_time"),
        _signed(line, "safety_stock"),
        _opt_text(line, "forecast_method"),
        _opt_text(line, "reason") or "",
        None if line.get("last_order_qty") is None else _count(line, "last_order_qty"),
        _signed(line, "received_qty"),
        _signed(line, "cancelled_qty"),
        *tail,
    )


def proposal_rows(r: Mapping[str, Any], partition: int, offset: int) -> Parts:
    """The rows of one proposal version: (table, rows) for both purchase order tables."""
    proposal_id, status = _text(r, "proposal_id"), _text(r, "status")
    supplier, location, currency = _text(r, "supplier"), _text(r, "location"), _text(r, "currency")
    version = _count(r, "version", low=1)
    created, updated = _ms(r, "created_at"), _ms(r, "updated_at")
    lines = r.get("lines")
    if not isinstance(lines, list) or not all(isinstance(x, Mapping) for x in lines):
        raise RowError("bad_field", f"lines must be a list of records, got {lines!r}")
    skus = [line.get("sku") for line in lines]
    if len(set(skus)) != len(skus):
        raise RowError("bad_field", f"a SKU appears on two lines: {skus!r}")
    where: Row = (partition, offset)
    head = (proposal_id, version, supplier, location, status, currency)
    line_rows = [_line_row(x, head, (created // 1000, created, updated, *where)) for x in lines]
    auto = r.get("auto", False)
    order_row = (
        proposal_id,
        version,
        status,
        supplier,
        location,
        currency,
        _signed(r, "total"),
        len(line_rows),
        sum(row[7] for row in line_rows),
        1 if auto is True else 0,
        _opt_text(r, "review_reason"),
        _opt_text(r, "send_via"),
        _opt_text(r, "send_ref"),
        _day(r, "expected_on"),
        _text(r, "by"),
        _opt_text(r, "note"),
        created // 1000,
        created,
        updated // 1000,
        updated,
        *where,
    )
    return [(PURCHASE_ORDERS, [order_row]), (PURCHASE_ORDER_LINES, line_rows)]


def proposal_key(record: Mapping[str, Any]) -> str | None:
    """The id to log and dead-letter a proposal with: ``proposal_id@version``."""
    proposal_id, version = record.get("proposal_id"), record.get("version")
    if not isinstance(proposal_id, str):
        return None
    return f"{proposal_id}@{version}" if isinstance(version, int) else proposal_id
