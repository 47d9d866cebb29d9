"""Normalised events are complete StockEvent records the project's codec accepts."""

from __future__ import annotations

from connectors.shopify.inbound import order_events
from connectors.testing.shopify import FakeShopify
from schemas.codec import single_object_codec
from schemas.times import iso_to_ms
from streams.kernel import topics
from tests.fakes.harness import seed_shopify, shopify_mapping


def test_a_normalised_shopify_event_round_trips_through_the_avro_codec() -> None:
    """Given an order_placed event built from a Shopify order, when encoded with the
    StockEvent schema and decoded, then the record comes back unchanged."""
    fake = FakeShopify()
    seed_shopify(fake)
    [event] = order_events(fake.place_order([(10, 2)]), shopify_mapping())
    codec = single_object_codec()
    name, decoded = codec.decode(codec.encode(topics.STOCK_EVENTS.value_schema, event))
    assert name == topics.STOCK_EVENTS.value_schema
    assert decoded == event


def test_times_without_an_offset_are_refused_unless_declared_gmt() -> None:
    """Given '2026-01-01T00:00:00' (WooCommerce *_gmt style), when parsed as GMT it is epoch
    ms of midnight UTC; parsed without that declaration it is an error, not a guess."""
    assert iso_to_ms("2026-01-01T00:00:00", naive_is_utc=True) == 1767225600000
    assert iso_to_ms("2026-01-01T01:00:00+01:00") == 1767225600000
    try:
        iso_to_ms("2026-01-01T00:00:00")
    except ValueError as exc:
        assert "timezone" in str(exc)
    else:
        raise AssertionError("a naive time was accepted")
