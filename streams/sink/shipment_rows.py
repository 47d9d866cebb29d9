"""Shipment → one row of ``shipments``: the carrier, tracking number, status and the cost of
the label per order and channel (the order's shipping cost, as bought). No address.

One row per version; ``ReplacingMergeTree(version)`` keeps the last per shipment id, so a
replayed record collapses into the row it wrote the first time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from streams.sink.rows import Row, RowError, Table, _int, _ms, _opt_text, _text

SHIPMENT = "stockflow.v1.Shipment"

SHIPMENTS = Table(
    "shipments",
    (
        "shipment_id",
        "version",
        "order_id",
        "channel",
        "location",
        "wave_id",
        "carrier",
        "service",
        "tracking_number",
        "status",
        "units",
        "parcels",
        "weight_g",
        "cost_minor",
        "passed_over",
        "currency",
        "country",
        "created_at",
        "created_at_ms",
        "updated_at",
        "updated_at_ms",
        "kafka_partition",
        "kafka_offset",
    ),
)


def shipment_rows(r: Mapping[str, Any], partition: int, offset: int) -> list[Row]:
    cost, version = _int(r, "cost_minor"), _int(r, "version")
    if cost < 0 or version < 1:
        raise RowError("bad_field", f"cost_minor {cost} and version {version}: 0+ and 1+")
    lines = r.get("lines") or []
    if not isinstance(lines, list):
        raise RowError("bad_field", "lines must be a list")
    units = sum(int(ln.get("qty") or 0) for ln in lines if isinstance(ln, Mapping))
    passed_over = r.get("passed_over") or []
    if not isinstance(passed_over, list) or not all(isinstance(c, str) for c in passed_over):
        raise RowError("bad_field", "passed_over must be a list of carrier names")
    created, updated = _ms(r, "created_at"), _ms(r, "updated_at")
    return [
        (
            _text(r, "shipment_id"),
            version,
            _text(r, "order_id"),
            _text(r, "channel"),
            _text(r, "location"),
            _opt_text(r, "wave_id"),
            _text(r, "carrier"),
            _text(r, "service"),
            _text(r, "tracking_number"),
            _text(r, "status"),
            units,
            int(r.get("parcels") or 1),
            int(r.get("weight_g") or 0),
            cost,
            list(passed_over),
            _text(r, "currency"),
            _opt_text(r, "country"),
            created // 1000,
            created,
            updated // 1000,
            updated,
            partition,
            offset,
        )
    ]
