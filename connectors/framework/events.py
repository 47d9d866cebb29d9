"""Stock events of the connectors: ids made of the channel's own ids, built by the contract."""

from __future__ import annotations

from connectors.framework.types import StockEventDict
from schemas import events
from schemas.times import now_ms


def event_id(channel: str, account: str, *parts: object) -> str:
    """A readable id made only of the channel's own ids, so every redelivery or poll of the
    same fact yields the same id, e.g. ``shopify/shop.myshopify.com/order/5/line/9/placed``;
    the separator marks the connectors' namespace, which the HTTP API refuses."""
    return events.CONNECTOR_ID_SEPARATOR.join([channel, account, *(str(p) for p in parts)])


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
    """A StockEvent from ``channel``'s connector (``source`` = ``connector:{channel}``)."""
    return events.stock_event(
        type,
        sku,
        event_id,
        occurred_at,
        ingested_at=now_ms() if ingested_at is None else ingested_at,
        qty=qty,
        channel=channel,
        order_id=order_id,
        location=location,
        source_ref=source_ref,
        reason=reason,
        disposition=disposition,
        source=f"connector:{channel}",
    )
