"""A shipped Shipment on ``fulfilment.shipments.v1``, as ``stockflow ship run`` writes it: what
a channel's shipper confirms in the marketplaces' end-to-end tests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from schemas.codec import Codec
from streams.kernel.settings import Settings
from streams.kernel.topics import FULFILMENT_SHIPMENTS
from tests.support.kafka import produce_raw
from tests.unit.schema_samples import SAMPLES


def publish_shipment(
    settings: Settings,
    codec: Codec,
    *,
    order_id: str,
    channel: str,
    location: str,
    lines: Sequence[tuple[str, str, int]],
    carrier: str,
    tracking_number: str,
) -> dict[str, Any]:
    """The shipment ``ship|e2e|{order_id}`` of ``lines`` (line id, SKU, units), acknowledged
    by Kafka; returns the record."""
    shipment = {
        **SAMPLES["stockflow.v1.Shipment"],
        "shipment_id": f"ship|e2e|{order_id}",
        "order_id": order_id,
        "channel": channel,
        "location": location,
        "lines": [{"line_id": line, "sku": sku, "qty": qty} for line, sku, qty in lines],
        "carrier": carrier,
        "tracking_number": tracking_number,
    }
    value = codec.encode(FULFILMENT_SHIPMENTS.value_schema, shipment)
    produce_raw(settings, [(shipment["shipment_id"].encode(), value)], FULFILMENT_SHIPMENTS)
    return shipment
