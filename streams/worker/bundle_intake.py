"""Bundles at the worker's HTTP intake (``POST /v1/events``, the tills' routes): an event of
a bundle SKU is published as its components' events (:mod:`streams.bundles.expand`)."""

from __future__ import annotations

from typing import Any

import faust

from schemas.codec import Codec
from streams.bundles.catalogue import Catalogue
from streams.bundles.expand import BundleEventError, expand_event
from streams.kernel.deadletter import dead_letter
from streams.kernel.topics import STOCK_DEADLETTER, STOCK_EVENTS
from streams.worker import metrics


async def bundles_expanded(
    app: faust.App, codec: Codec, events: list[dict[str, Any]], catalogue: Catalogue
) -> list[dict[str, Any]]:
    """A bundle's events as its components'; one a bundle cannot have (a till's count of a
    bundle SKU) is dead-lettered (component ``api``, reason ``bundle_not_stocked``)."""
    if not catalogue:
        return events
    out: list[dict[str, Any]] = []
    for event in events:
        try:
            out.extend(expand_event(event, catalogue))
        except BundleEventError as exc:
            record = dead_letter(
                metrics.DEAD_LETTERS,
                component="api",
                reason=exc.reason,
                error=exc.message,
                original=codec.encode(STOCK_EVENTS.value_schema, event),
                key=str(event["sku"]).encode(),
                event_id=str(event["event_id"]),
            )
            value = codec.encode(STOCK_DEADLETTER.value_schema, record)
            await app.producer.send(
                STOCK_DEADLETTER.name, str(event["sku"]).encode(), value, None, None, None
            )
    return out
