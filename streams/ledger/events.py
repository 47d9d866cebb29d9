"""Build a StockEvent dict with every field of ``schemas/StockEvent.avsc`` (defaults filled).

For tests, load generators and the HTTP intake: the rules read exactly this shape.
"""

from __future__ import annotations

from typing import Any

__all__ = ["stock_event"]

_DEFAULTS: dict[str, Any] = {
    "qty": 0,
    "location": None,
    "to_location": None,
    "channel": None,
    "order_id": None,
    "source": "unknown",
    "source_ref": None,
    "source_seq": None,
    "reason": None,
    "as_of": None,
    "expires_at": None,
    "disposition": None,
}


def stock_event(
    type: str,  # the Avro field name
    sku: str,
    event_id: str,
    occurred_at: int,
    *,
    ingested_at: int | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A complete StockEvent record; unknown field names raise TypeError."""
    unknown = set(fields) - set(_DEFAULTS)
    if unknown:
        raise TypeError(f"not StockEvent fields: {sorted(unknown)}")
    event: dict[str, Any] = {
        "event_id": event_id,
        "type": type,
        "sku": sku,
        "occurred_at": occurred_at,
        "ingested_at": occurred_at if ingested_at is None else ingested_at,
    }
    event.update(_DEFAULTS)
    event.update(fields)
    return event
