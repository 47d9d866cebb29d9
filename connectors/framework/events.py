"""Building StockEvent dicts: deterministic ids and times in epoch milliseconds."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from connectors.framework.types import StockEventDict


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def iso_to_ms(value: str, *, naive_is_utc: bool = False) -> int:
    """Epoch ms from an ISO 8601 time. Channels that send GMT without an offset
    (WooCommerce ``*_gmt`` fields) pass ``naive_is_utc=True``; otherwise a missing offset is an
    error, because guessing a timezone would reorder events."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        if not naive_is_utc:
            raise ValueError(f"time {value!r} has no timezone offset")
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


def ms_to_iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat().replace("+00:00", "Z")


def event_id(channel: str, account: str, *parts: object) -> str:
    """A readable id made only of the channel's own ids, so every redelivery or poll of the
    same fact yields the same id, e.g. ``shopify/shop.myshopify.com/order/5/line/9/placed``."""
    return "/".join([channel, account, *(str(p) for p in parts)])


def stock_event(
    *,
    event_id: str,
    type: str,
    sku: str,
    qty: int,
    channel: str,
    occurred_at: int,
    order_id: str | None = None,
    location: str | None = None,
    source_ref: str | None = None,
    reason: str | None = None,
    disposition: str | None = None,
    ingested_at: int | None = None,
) -> StockEventDict:
    """Every field of ``stockflow.v1.StockEvent``, ready for the codec."""
    record: dict[str, Any] = {
        "event_id": event_id,
        "type": type,
        "sku": sku,
        "qty": qty,
        "location": location,
        "to_location": None,
        "channel": channel,
        "order_id": order_id,
        "occurred_at": occurred_at,
        "ingested_at": now_ms() if ingested_at is None else ingested_at,
        "source": f"connector:{channel}",
        "source_ref": source_ref,
        "source_seq": None,
        "reason": reason,
        "as_of": None,
        "expires_at": None,
        "disposition": disposition,
    }
    return record
