"""Signed webhook deliveries whose shape no channel sends are refused as unreadable (400)."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from connectors.framework.signing import sign
from connectors.framework.types import Delivery, InvalidPayloadError, SignatureError
from connectors.shopify.inbound import ShopifyInbound
from connectors.testing.shopify import FakeShopify
from connectors.testing.woocommerce import FakeWooCommerce
from connectors.woocommerce.inbound import WooInbound
from tests.fakes.harness import seed_shopify, seed_woo, shopify_mapping, woo_mapping


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


def test_only_an_unsigned_form_post_of_a_webhook_id_is_a_woocommerce_ping() -> None:
    """Given WooCommerce's ping (an unsigned form post ``webhook_id=7``), when received, it
    is a ping; the same bytes sent as JSON are no ping and fail the signature check."""
    inbound = WooInbound(woo_mapping(), ("woo-secret",))
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    assert asyncio.run(inbound.handle(form, b"webhook_id=7")).ping
    with pytest.raises(SignatureError):
        asyncio.run(inbound.handle({"Content-Type": "application/json"}, b"webhook_id=7"))


def _orders() -> list[tuple[Any, str, dict[str, Any]]]:
    shopify, woo = FakeShopify(), FakeWooCommerce()
    seed_shopify(shopify)
    seed_woo(woo)
    return [
        (_shopify, "orders/create", shopify.place_order([(10, 2)])),
        (_woo, "order.created", woo.place_order([(1, 2)])),
    ]


@pytest.mark.parametrize("broken", [None, [], {}, 3, True, "text"])
def test_a_signed_order_with_a_field_of_another_shape_is_unreadable_not_a_crash(
    broken: Any,
) -> None:
    """Given real orders of both fakes, when one of their times or their lines is replaced
    by a value of another JSON type and the order is sent signed, then the delivery is
    refused as unreadable (400), never an unexpected error (500)."""
    for deliver, topic, order in _orders():
        assert deliver(orjson.dumps(order), topic).events  # the order as sent is fine
        stamp = "updated_at" if "updated_at" in order else "date_modified_gmt"
        lines = "line_items"
        for field in (stamp, lines):
            if field == lines and broken in (None, [], {}):
                continue  # no lines: an order with nothing to reserve, taken as such
            with pytest.raises(InvalidPayloadError, match="unreadable"):
                deliver(orjson.dumps({**order, field: broken}), topic)
