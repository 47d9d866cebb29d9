"""The fakes themselves keep the channels' contracts: limits, status codes, error shapes."""

from __future__ import annotations

import asyncio
import base64

import aiohttp

from connectors.testing.shopify import FakeShopify
from connectors.testing.woocommerce import FakeWooCommerce
from tests.fakes.harness import seed_shopify, seed_woo

SET = (
    "mutation($input: InventorySetQuantitiesInput!) {"
    " inventorySetQuantities(input: $input) %s { userErrors { code } } }"
)


def _set(qty: int, change_from: int | None) -> dict[str, object]:
    return {
        "input": {
            "name": "available",
            "reason": "correction",
            "quantities": [
                {
                    "inventoryItemId": "gid://shopify/InventoryItem/101",
                    "locationId": "gid://shopify/Location/1",
                    "quantity": qty,
                    "changeFromQuantity": change_from,
                }
            ],
        }
    }


def test_fake_shopify_rest_bucket_fills_at_40_and_answers_429_with_retry_after() -> None:
    """Given the REST bucket of 40 leaking 2/s, when 45 order listings are sent at once, then
    the first answers carry X-Shopify-Shop-Api-Call-Limit n/40 and the overflow gets 429 with
    Retry-After."""

    async def scenario() -> None:
        async with FakeShopify() as fake, aiohttp.ClientSession() as session:
            url = f"{fake.url}/admin/api/2026-01/orders.json"
            statuses, limits, retry = [], [], None
            for _ in range(45):
                async with session.get(url, headers={"X-Shopify-Access-Token": fake.token}) as resp:
                    statuses.append(resp.status)
                    limits.append(resp.headers.get("X-Shopify-Shop-Api-Call-Limit"))
                    retry = resp.headers.get("Retry-After") or retry
            assert statuses[:40] == [200] * 40 and statuses[-1] == 429
            assert limits[0] == "1/40" and limits[39] == "40/40"
            assert retry is not None and float(retry) > 0

    asyncio.run(scenario())


def test_fake_shopify_graphql_enforces_cost_cas_and_idempotency() -> None:
    """Given the fake Shopify, when a write has a stale changeFromQuantity, a key is replayed,
    a key is reused with other variables, and the cost bucket runs dry, then it answers with
    CHANGE_FROM_QUANTITY_STALE, the first result, an error, and THROTTLED with
    extensions.cost (actualQueryCost null)."""

    async def scenario() -> None:
        async with (
            FakeShopify(gql_capacity=35, gql_restore=1) as fake,
            aiohttp.ClientSession() as s,
        ):
            seed_shopify(fake, qty=50)
            url = f"{fake.url}/admin/api/2026-01/graphql.json"
            headers = {"X-Shopify-Access-Token": fake.token}

            async def call(query: str, variables: dict[str, object]) -> dict[str, object]:
                async with s.post(
                    url, json={"query": query, "variables": variables}, headers=headers
                ) as r:
                    body: dict[str, object] = await r.json()
                    return body

            stale = await call(SET % '@idempotent(key: "k1")', _set(10, 49))
            assert (
                stale["data"]["inventorySetQuantities"]["userErrors"][0]["code"]
                == "CHANGE_FROM_QUANTITY_STALE"
            )  # type: ignore[index]
            ok = await call(SET % '@idempotent(key: "k2")', _set(10, 50))
            assert ok["data"]["inventorySetQuantities"]["userErrors"] == []  # type: ignore[index]
            replay = await call(SET % '@idempotent(key: "k2")', _set(10, 50))
            assert replay["data"] == ok["data"] and fake.replays == 1 and len(fake.writes) == 1
            throttled = await call(SET % '@idempotent(key: "k3")', _set(11, 10))
            assert throttled["errors"][0]["extensions"]["code"] == "THROTTLED"  # type: ignore[index]
            cost = throttled["extensions"]["cost"]  # type: ignore[index]
            assert (
                cost["actualQueryCost"] is None and cost["throttleStatus"]["maximumAvailable"] == 35
            )
            fake.gql_restore = 1000
            conflict = await call(SET % '@idempotent(key: "k2")', _set(12, 10))
            assert "errors" in conflict and fake.stock[(101, 1)] == 10

    asyncio.run(scenario())


def test_fake_shopify_2026_04_requires_idempotency_and_wrong_tokens_get_401() -> None:
    """Given the fake on API 2026-04, when a mutation has no @idempotent key, then it is an
    error; when the token is wrong, then 401."""

    async def scenario() -> None:
        async with FakeShopify(api_version="2026-04") as fake, aiohttp.ClientSession() as s:
            seed_shopify(fake)
            url = f"{fake.url}/admin/api/2026-04/graphql.json"
            body = {"query": SET % "", "variables": _set(1, 50)}
            async with s.post(url, json=body, headers={"X-Shopify-Access-Token": fake.token}) as r:
                assert "errors" in await r.json()
            async with s.post(url, json=body, headers={"X-Shopify-Access-Token": "nope"}) as r:
                assert r.status == 401
            assert fake.writes == []

    asyncio.run(scenario())


def test_fake_woo_rejects_batches_over_100_and_reports_item_errors_inside_a_200() -> None:
    """Given the fake WooCommerce, when a batch of 101 updates is sent, then 413
    woocommerce_rest_request_entity_too_large; when a batch names an unknown id, then the
    answer is 200 with an error for that item only; without credentials, 401."""

    async def scenario() -> None:
        async with FakeWooCommerce() as fake, aiohttp.ClientSession() as s:
            seed_woo(fake)
            auth = {"Authorization": "Basic " + base64.b64encode(b"ck_test:cs_test").decode()}
            url = f"{fake.url}/wp-json/wc/v3/products/batch"
            big = {"update": [{"id": 1, "stock_quantity": n} for n in range(101)]}
            async with s.post(url, json=big, headers=auth) as r:
                assert r.status == 413
                assert (await r.json())["code"] == "woocommerce_rest_request_entity_too_large"
            mixed = {"update": [{"id": 1, "stock_quantity": 4}, {"id": 999, "stock_quantity": 4}]}
            async with s.post(url, json=mixed, headers=auth) as r:
                answer = (await r.json())["update"]
                assert r.status == 200
                assert answer[0]["stock_quantity"] == 4
                assert answer[1]["error"]["code"] == "woocommerce_rest_product_invalid_id"
            async with s.post(url, json=mixed) as r:
                assert r.status == 401

    asyncio.run(scenario())


def test_fake_switches_fail_storm_and_slow_requests() -> None:
    """Given fail_next(2, 503, retry_after=2), then the next two requests fail with 503 and
    Retry-After 2 and the third passes; given a storm, 429 until it ends."""

    async def scenario() -> None:
        async with FakeWooCommerce() as fake, aiohttp.ClientSession() as s:
            auth = {"Authorization": "Basic " + base64.b64encode(b"ck_test:cs_test").decode()}
            url = f"{fake.url}/wp-json/wc/v3/products"
            fake.fail_next(2, status=503, retry_after=2)
            seen = []
            for _ in range(3):
                async with s.get(url, headers=auth) as r:
                    seen.append((r.status, r.headers.get("Retry-After")))
            assert seen == [(503, "2"), (503, "2"), (200, None)]
            fake.storm(0.2)
            async with s.get(url, headers=auth) as r:
                assert r.status == 429
            await asyncio.sleep(0.25)
            async with s.get(url, headers=auth) as r:
                assert r.status == 200

    asyncio.run(scenario())
