"""AlertDelivery → one row of ``alert_deliveries``: one pure function, like the other mappers.

The record carries recipient ids only (never an address), so the row does too. Its id is
(delivery_id, status): a held or digested delivery has a second record once sent, and a
replayed record collapses into the row it wrote the first time (streams/warehouse/schema.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from streams.sink.rows import Row, RowError, Table, _int_or_zero, _ms, _opt_text, _text

ALERT_DELIVERY = "stockflow.v1.AlertDelivery"

ALERT_DELIVERIES = Table(
    "alert_deliveries",
    (
        "delivery_id",
        "alert_id",
        "kind",
        "sku",
        "location",
        "rule",
        "recipient",
        "channel",
        "mode",
        "status",
        "severity",
        "message",
        "attempts",
        "error",
        "alert_at",
        "alert_at_ms",
        "at",
        "at_ms",
        "kafka_partition",
        "kafka_offset",
        "ver",
    ),
)


def delivery_rows(r: Mapping[str, Any], partition: int, offset: int) -> list[Row]:
    alert_at, at = _ms(r, "alert_at"), _ms(r, "at")
    attempts = _int_or_zero(r, "attempts")
    if not 0 <= attempts <= 2**32 - 1:
        raise RowError("bad_field", f"attempts must be between 0 and 2**32-1, got {attempts}")
    message = r.get("message") or ""
    if not isinstance(message, str):
        raise RowError("bad_field", f"message must be a string, got {message!r}")
    return [
        (
            _text(r, "delivery_id"),
            _text(r, "alert_id"),
            _text(r, "kind"),
            _text(r, "sku"),
            _opt_text(r, "location"),
            _text(r, "rule"),
            _text(r, "recipient"),
            _text(r, "channel"),
            _text(r, "mode"),
            _text(r, "status"),
            _opt_text(r, "severity") or "warning",
            message,
            attempts,
            _opt_text(r, "error"),
            alert_at // 1000,
            alert_at,
            at // 1000,
            at,
            partition,
            offset,
            at,
        )
    ]
