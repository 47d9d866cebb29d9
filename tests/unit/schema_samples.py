"""One valid record per schema, for codec tests."""

from __future__ import annotations

from typing import Any

from schemas.events import stock_event

T = 1_795_420_800_000

SAMPLES: dict[str, dict[str, Any]] = {
    "stockflow.v1.StockEvent": stock_event(
        "return_received",
        "chair",
        "shopify:refund:77",
        T,
        qty=2,
        location="paris",
        channel="shopify",
        order_id="shopify:1001",
        source="shopify",
        source_ref="77",
        source_seq=5,
        disposition="quarantine",
    ),
    "stockflow.v1.StockLevel": {
        "sku": "chair",
        "version": 42,
        "channels": {"shopify": 10, "amazon": 8},
        "changed_channels": ["shopify"],
        "default_quantity": 12,
        "cause_event_id": "e1",
        "occurred_at": T,
        "at": T + 3,
    },
    "stockflow.v1.StockMovement": {
        "movement_id": "e1:0",
        "event_id": "e1",
        "sku": "chair",
        "location": "paris",
        "channel": "shopify",
        "type": "order_shipped",
        "reason": None,
        "delta_on_hand": -1,
        "delta_reserved": -1,
        "delta_unsellable": 0,
        "delta_incoming": 0,
        "on_hand_after": 99,
        "reserved_after": 0,
        "unsellable_after": 0,
        "occurred_at": T,
        "applied_at": T + 1,
        "source_ref": "1001",
    },
    "stockflow.v1.Decision": {
        "decision_id": "e2",
        "event_id": "e2",
        "sku": "chair",
        "order_id": "amazon:9",
        "channel": "amazon",
        "location": None,
        "qty": 3,
        "outcome": "rejected",
        "reason": "insufficient_stock",
        "available_before": 1,
        "occurred_at": T,
        "at": T + 1,
    },
    "stockflow.v1.Alert": {
        "alert_id": "e2:oversell_attempt:amazon",
        "kind": "oversell_attempt",
        "sku": "chair",
        "location": None,
        "channel": "amazon",
        "value": 3,
        "threshold": 1,
        "message": "3 asked, 1 available",
        "event_id": "e2",
        "at": T + 1,
    },
    "stockflow.v1.DeadLetter": {
        "component": "ledger",
        "reason": "bad_magic",
        "error": "not Avro",
        "topic": "stock.events.v1",
        "partition": 3,
        "offset": 1234,
        "key": b"chair",
        "original": b"\x00\x01garbage",
        "event_id": None,
        "at": T,
    },
}
