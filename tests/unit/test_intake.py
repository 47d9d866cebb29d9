"""JSON intake for systems that cannot speak Kafka: each item on its own."""

from __future__ import annotations

from streams.worker.hold_ids import hold_id_for, sku_of_hold
from streams.worker.intake import parse_items


def test_a_valid_item_becomes_a_stock_event_with_times_in_epoch_milliseconds() -> None:
    """Given a receipt with an ISO 8601 time, when parsed, then occurred_at is epoch ms UTC."""
    [result] = parse_items(
        {
            "event_id": "erp-1",
            "type": "receipt",
            "sku": "chair",
            "qty": 20,
            "location": "paris",
            "occurred_at": "2026-11-23T08:00:00Z",
        }
    )
    assert result.ok
    assert result.event is not None
    assert result.event["occurred_at"] == 1795420800000
    assert result.event["source"] == "api"
    assert result.event["qty"] == 20


def test_bad_items_are_reported_one_by_one_and_good_items_still_pass() -> None:
    """Given a batch of one good and three bad items, when parsed, then only the good one has
    an event and each bad one lists what is wrong with it."""
    results = parse_items(
        [
            {"event_id": "a", "type": "sale", "sku": "chair", "qty": 1},
            {"event_id": "b", "type": "teleport", "sku": "chair", "qty": 1},
            {"event_id": "c", "type": "sale", "sku": "chair", "qty": -3},
            "not an object",
        ]
    )
    assert [r.ok for r in results] == [True, False, False, False]
    assert "teleport" in results[1].errors[0]
    assert any("negative" in e for e in results[2].errors)
    assert results[3].errors == ("item is not a JSON object",)


def test_type_specific_fields_are_required() -> None:
    """Given an order without order_id, a transfer without destination, an adjustment without
    reason, when parsed, then each names its missing field; a hold without expiry is accepted,
    as the ledger gives it the configured hold TTL."""
    results = parse_items(
        [
            {"event_id": "1", "type": "order_placed", "sku": "s", "qty": 1},
            {"event_id": "2", "type": "transfer", "sku": "s", "qty": 1, "location": "a"},
            {"event_id": "3", "type": "adjustment", "sku": "s", "qty": -1},
            {"event_id": "4", "type": "hold", "sku": "s", "qty": 1, "order_id": "h"},
        ]
    )
    assert "order_id" in results[0].errors[0]
    assert "to_location" in results[1].errors[0]
    assert "reason" in results[2].errors[0]
    assert results[3].ok and results[3].event is not None
    assert results[3].event["expires_at"] is None


def test_naive_times_and_booleans_are_refused() -> None:
    """Given a time without timezone and a boolean quantity, when parsed, then both are errors."""
    [result] = parse_items(
        {
            "event_id": "x",
            "type": "sale",
            "sku": "s",
            "qty": True,
            "occurred_at": "2026-01-01T00:00",
        }
    )
    assert not result.ok
    assert any("qty" in e for e in result.errors)
    assert any("timezone" in e for e in result.errors)


def test_a_hold_id_carries_its_sku_so_a_release_finds_the_partition() -> None:
    """Given a SKU with unusual characters, when a hold id is made, then the SKU comes back."""
    hold = hold_id_for("chair/ÉCO 42")
    assert sku_of_hold(hold) == "chair/ÉCO 42"
    assert sku_of_hold("nonsense") is None
    assert sku_of_hold("h.!!!.x") is None
