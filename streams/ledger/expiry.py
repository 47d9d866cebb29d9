"""Checkout holds past their expiry, as the events that release them.

The one expiry path: the worker's timer publishes these ``hold_released`` events (reason
``expired``) to the SKU's own partition, where :func:`streams.ledger.apply` releases the
hold in order with the SKU's other events. Each id derives from the event that placed the
hold, so a release sent twice (two ticks, a restart) is applied once, and a hold placed
again under the same id gets a release of its own.
"""

from __future__ import annotations

from typing import Any

from schemas.events import stock_event
from streams.ledger.state import SkuState

SOURCE = "ledger-timer"


def expiry_events(state: SkuState, now_ms: int) -> list[dict[str, Any]]:
    """A release for every hold of ``state`` due at ``now_ms``."""
    return [
        stock_event(
            "hold_released",
            state.sku,
            f"{hold.event_id}:expired",
            now_ms,
            order_id=hold_id,
            source=SOURCE,
            reason="expired",
        )
        for hold_id, hold in state.holds.items()
        if hold.expires_at <= now_ms
    ]
