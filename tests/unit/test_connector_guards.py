"""Guards of the connectors: no secret in any error text, log line or dead letter; https
only (loopback excepted); webhooks refused when too large, from another shop or too old."""

from __future__ import annotations

import asyncio
import base64
import io
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest

from connectors.config import ConnectorConfigError, parse_connectors_config
from connectors.framework import redact
from connectors.framework.engine import LanePolicy, OutboundEngine
from connectors.framework.types import PushItem, UnavailableError
from connectors.shopify.inbound import ShopifyInbound
from connectors.shopify.outbound import ShopifyPusher
from connectors.testing.shopify import FakeShopify
from connectors.testing.woocommerce import FakeWooCommerce
from connectors.woocommerce.inbound import WooInbound
from connectors.woocommerce.outbound import WooPusher
from tests.fakes.harness import (
    receiver,
    seed_shopify,
    seed_woo,
    shopify_client,
    shopify_mapping,
    woo_client,
    woo_mapping,
)
from tests.unit.test_outbound_engine import level

WOO_BASIC = base64.b64encode(b"ck_test:cs_test").decode()
SECRETS = ("shpat_test", "ck_test", "cs_test", WOO_BASIC)


@asynccontextmanager
async def _both_shops(**shopify: Any) -> AsyncIterator[tuple[FakeShopify, FakeWooCommerce, Any]]:
    """Both fakes, seeded, and a receiver of their webhooks (the real inbound handlers)."""
    async with (
        FakeShopify(seed=1, **shopify) as shop,
        FakeWooCommerce(seed=2) as woo,
        receiver(
            ShopifyInbound(shopify_mapping(), ("shopify-secret",)),
            WooInbound(woo_mapping(), ("woo-secret",)),
        ) as rx,
    ):
        seed_shopify(shop)
        seed_woo(woo)
        yield shop, woo, rx


def _channel(base_url: str) -> dict[str, Any]:
    return {
        "name": "shopify",
        "kind": "shopify",
        "base_url": base_url,
        "credentials": {"token": "t", "webhook_secrets": ["s"]},
        "mapping": {"shop": "demo.myshopify.com", "push_location_id": 1},
    }


@pytest.mark.parametrize(
    "url", ["https://demo.myshopify.com", "http://127.0.0.1:8701", "http://localhost:9"]
)
def test_https_and_loopback_base_urls_are_accepted(url: str) -> None:
    """Given a channel whose base_url is https, or http to a loopback address (a local
    fake), when the configuration is parsed, then it is accepted."""
    config = parse_connectors_config({"channels": [_channel(url)]})
    assert config.channels[0].base_url == url


@pytest.mark.parametrize(
    "url", ["http://demo.myshopify.com", "http://10.0.0.5", "ftp://x", "https://"]
)
def test_a_plain_http_base_url_off_this_machine_is_refused_with_the_fix(url: str) -> None:
    """Given a channel whose base_url is plain http to another machine (or not a URL), when
    the configuration is parsed, then it is refused naming the key and saying use https."""
    with pytest.raises(ConnectorConfigError) as raised:
        parse_connectors_config({"channels": [_channel(url)]})
    assert raised.value.path == "channels[0].base_url"
    assert "https://" in str(raised.value)


def test_a_redirect_loop_carrying_the_credentials_leaks_them_nowhere(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Given both fakes answering every request with a redirect to itself (aiohttp raises
    TooManyRedirects, whose repr prints the request headers: the Shopify token and the Woo
    Basic credentials), when a level is pushed until it is dead-lettered and the errors are
    logged through the connectors' log filter, then no secret appears in any exception
    text, dead-letter error or log line; the failure is still described."""
    dead: list[tuple[PushItem, str]] = []
    messages: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(self.format(record))

    handler = Keep()
    handler.addFilter(redact.RedactingFilter())
    log = logging.getLogger("stockflow.test.guards")
    log.addHandler(handler)

    async def dead_letter(item: PushItem, error: str) -> None:
        dead.append((item, error))
        log.warning("dead-lettered %s: %s", item.sku, error)

    async def scenario() -> None:
        async with (
            FakeShopify(seed=1) as shop,
            FakeWooCommerce(seed=2) as woo,
            aiohttp.ClientSession() as session,
        ):
            seed_shopify(shop)
            seed_woo(woo)
            shop.fail_next(100, status=302)
            woo.fail_next(100, status=302)
            client = woo_client(session, woo)
            with pytest.raises(UnavailableError) as raised:
                await client.request("GET", "/products")
            assert "TooManyRedirects" in str(raised.value)
            try:
                await client.request("GET", "/products")
            except UnavailableError:
                log.exception("woo request failed")
            policy = LanePolicy(coalesce_s=0.01, backoff_base_s=0.01, max_attempts=2)
            engine = OutboundEngine(
                [
                    ShopifyPusher(shopify_client(session, shop), shopify_mapping()),
                    WooPusher(client, woo_mapping()),
                ],
                policies={"shopify": policy, "woocommerce": policy},
                dead_letter=dead_letter,
            )
            async with engine:
                engine.offer(level("chair", 1, 5))
                await engine.drained()
            texts = [str(raised.value), *(e for _, e in dead), *messages]
            # the unredacted repr would have carried them: prove the test can see a leak
            leaky = repr(aiohttp.TooManyRedirects(_request_info(), ()))
            assert "cs_test" in leaky
            assert {i.channel for i, _ in dead} == {"shopify", "woocommerce"}
            for text in texts:
                for secret in SECRETS:
                    assert secret not in text, (secret, text)

    try:
        asyncio.run(scenario())
    finally:
        log.removeHandler(handler)


def _request_info() -> Any:
    from multidict import CIMultiDict, CIMultiDictProxy
    from yarl import URL

    headers = CIMultiDictProxy(CIMultiDict({"Authorization": f"Basic {WOO_BASIC}"}))
    url = URL("http://127.0.0.1/x?consumer_secret=cs_test")
    return aiohttp.RequestInfo(url, "GET", headers, url)


def test_the_log_filter_scrubs_a_registered_secret_from_message_and_traceback() -> None:
    """Given a registered secret, when a record mentions it in its message and its
    exception, then the formatted line shows stars instead."""
    redact.register("s3cr3t-value")
    try:
        raise RuntimeError("token s3cr3t-value refused")
    except RuntimeError:
        import sys

        record = logging.LogRecord(
            "x", logging.ERROR, __file__, 1, "call with %s", ("s3cr3t-value",), sys.exc_info()
        )
    assert redact.RedactingFilter().filter(record)
    line = logging.Formatter().format(record)
    assert "s3cr3t-value" not in line
    assert "call with ****" in line and "RuntimeError: token **** refused" in line


def test_the_fakes_send_the_shop_and_time_headers_of_the_real_channels() -> None:
    """Given both fakes, when they deliver a webhook, then Shopify's carries
    X-Shopify-Shop-Domain and X-Shopify-Triggered-At and WooCommerce's X-WC-Webhook-Source."""

    async def scenario() -> None:
        async with _both_shops() as (shop, woo, rx):
            s = await shop.deliver(
                "orders/create", shop.place_order([(10, 1)]), target=rx.url("shopify")
            )
            w = await woo.deliver(
                "order.created", woo.place_order([(1, 1)]), target=rx.url("woocommerce")
            )
            assert s.headers["X-Shopify-Shop-Domain"] == "demo.myshopify.com"
            assert s.headers["X-Shopify-Triggered-At"].endswith("+00:00")
            assert w.headers["X-WC-Webhook-Source"] == "https://shop.example/"
            assert s.statuses == [200] and w.statuses == [200]
            assert len(rx.published.events) == 2

    asyncio.run(scenario())


def test_a_delivery_naming_another_shop_is_refused_with_403_and_publishes_nothing() -> None:
    """Given deliveries correctly signed (an app secret shared by two shops) but naming
    other-shop.myshopify.com / https://other.example/, when received, then both get 403 and
    nothing is published."""

    async def scenario() -> None:
        async with _both_shops(webhook_retries=0) as (shop, woo, rx):
            s = await shop.deliver(
                "orders/create",
                shop.place_order([(10, 1)]),
                target=rx.url("shopify"),
                headers={"X-Shopify-Shop-Domain": "other-shop.myshopify.com"},
            )
            w = await woo.deliver(
                "order.created",
                woo.place_order([(1, 1)]),
                target=rx.url("woocommerce"),
                headers={"X-WC-Webhook-Source": "https://other.example/"},
            )
            assert s.statuses == [403] and w.statuses == [403]
            assert rx.published.events == []
            # the same shop written with another case or without the final slash is the same
            w2 = await woo.deliver(
                "order.created",
                woo.place_order([(1, 1)]),
                target=rx.url("woocommerce"),
                headers={"X-WC-Webhook-Source": "https://Shop.example"},
            )
            assert w2.statuses == [200]

    asyncio.run(scenario())


def test_a_shopify_delivery_triggered_longer_ago_than_the_window_is_refused_with_410() -> None:
    """Given a window of one hour, when a signed delivery triggered 2 hours ago arrives (the
    fake's clock set back), then it gets 410 and publishes nothing; one triggered 30 minutes
    ago is accepted."""

    async def scenario() -> None:
        async with (
            FakeShopify(seed=1, webhook_retries=0) as shop,
            receiver(ShopifyInbound(shopify_mapping(), ("shopify-secret",), max_age_s=3600)) as rx,
        ):
            seed_shopify(shop)
            shop.clock_offset_s = -2 * 3600
            old = await shop.deliver(
                "orders/create", shop.place_order([(10, 1)]), target=rx.url("shopify")
            )
            assert old.statuses == [410]
            assert rx.published.events == []
            shop.clock_offset_s = -30 * 60
            recent = await shop.deliver(
                "orders/create", shop.place_order([(10, 1)]), target=rx.url("shopify")
            )
            assert recent.statuses == [200]
            assert len(rx.published.events) == 1

    asyncio.run(scenario())


def test_a_body_over_1_mib_is_refused_with_413_before_it_is_read_to_the_end() -> None:
    """Given the receiver, when a 2 MiB body is posted with its Content-Length, and another
    one chunked (no length) that never ends, then both get 413, the chunked one after at
    most 1 MiB plus a chunk was sent (the sender is not made to send it all), and nothing is
    published."""

    async def scenario() -> None:
        async with receiver(ShopifyInbound(shopify_mapping(), ("shopify-secret",))) as rx:
            url = rx.url("shopify")
            async with aiohttp.ClientSession() as session:
                body = io.BytesIO(b"x" * (2 * 1024 * 1024))
                async with session.post(url, data=body) as response:
                    assert response.status == 413
                sent = 0

                async def endless() -> Any:
                    nonlocal sent
                    chunk = b"y" * 65536
                    while sent < 64 * 1024 * 1024:
                        sent += len(chunk)
                        yield chunk

                try:
                    async with session.post(url, data=endless()) as response:
                        status = response.status
                except aiohttp.ClientError:
                    status = 0  # the server closed the connection while we still sent
                assert status in (413, 0)
                assert sent < 8 * 1024 * 1024
            assert rx.published.events == []

    asyncio.run(scenario())
