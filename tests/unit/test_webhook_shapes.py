"""Signed webhook deliveries whose shape no channel sends are refused as unreadable (400)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from connectors.framework.signing import sign
from connectors.framework.types import Delivery, InvalidPayloadError
from connectors.shopify.inbound import ShopifyInbound
from connectors.woocommerce.inbound import WooInbound
from tests.fakes.harness import shopify_mapping, woo_mapping


def _shopify(raw: bytes, topic: str | None) -> Delivery:
    headers = {
        "X-Shopify-Hmac-Sha256": sign("shopify-secret", raw),
        "X-Shopify-Shop-Domain": "demo.myshopify.com",
    }
    if topic is not None:
        headers["X-Shopify-Topic"] = topic
    inbound = ShopifyInbound(shopify_mapping(), ("shopify-secret",))
    return asyncio.run(inbound.handle(headers, raw))


def _woo(raw: bytes, topic: str | None) -> Delivery:
    headers = {
        "X-WC-Webhook-Signature": sign("woo-secret", raw),
        "X-WC-Webhook-Source": "https://shop.example/",
    }
    if topic is not None:
        headers["X-WC-Webhook-Topic"] = topic
    return asyncio.run(WooInbound(woo_mapping(), ("woo-secret",)).handle(headers, raw))


CHANNELS: list[tuple[Any, str, str]] = [
    (_shopify, "orders/create", "app/uninstalled"),
    (_woo, "order.created", "product.updated"),
]


@pytest.mark.parametrize(("deliver", "order_topic", "other_topic"), CHANNELS)
@pytest.mark.parametrize("raw", [b"null", b"[]", b"3", b'"text"'])
def test_a_signed_body_that_is_not_a_json_object_is_unreadable(
    deliver: Any, order_topic: str, other_topic: str, raw: bytes
) -> None:
    """Given a correctly signed delivery of an order topic or a topic without stock
    meaning, when its body is JSON but no object, then it is refused as unreadable."""
    for topic in (order_topic, other_topic):
        with pytest.raises(InvalidPayloadError, match="not a JSON object"):
            deliver(raw, topic)


@pytest.mark.parametrize(("deliver", "order_topic", "other_topic"), CHANNELS)
def test_a_signed_delivery_without_a_topic_is_unreadable_and_another_topic_is_ignored(
    deliver: Any, order_topic: str, other_topic: str
) -> None:
    """Given a correctly signed object body, when it names no topic it is refused as
    unreadable; when it names a topic without stock meaning it is taken, with no event."""
    with pytest.raises(InvalidPayloadError, match="header missing"):
        deliver(b"{}", None)
    assert deliver(b"{}", other_topic).events == []
