"""The API's tokens, guard and per-event rules, without Kafka: the guard in front of a real
aiohttp server on loopback, its store filled the way the follower fills it."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from schemas.codec import single_object_codec
from streams.kernel.access.guard import OPEN, Limits, guard, need, principal_of
from streams.kernel.access.limits import TokenBuckets, retry_after
from streams.kernel.access.store import TokenStore
from streams.kernel.access.tokens import (
    EVENTS_WRITE,
    SCOPES,
    STOCK_READ,
    Principal,
    TokenError,
    TokenRecord,
    new_token,
)
from streams.kernel.topics import API_TOKENS
from streams.worker.access import refusals
from streams.worker.intake import parse_items


def test_a_new_token_is_kept_only_as_its_hash_in_the_stored_record() -> None:
    """Given a token made for "erp", when its record is encoded for the token topic,
    then the bytes hold the token's SHA-256 and never the token, and decode to the record."""
    token, record = new_token("erp", [EVENTS_WRITE], ["erp"])
    value = single_object_codec().encode(API_TOKENS.value_schema, record.to_avro())
    assert token.encode() not in value
    assert token.split("_", 1)[1].encode() not in value
    assert record.sha256 == hashlib.sha256(token.encode()).hexdigest()
    assert record.sha256.encode() in value
    decoded = single_object_codec().decode_as(API_TOKENS.value_schema, value)
    assert TokenRecord.from_avro(decoded) == record


@pytest.mark.parametrize("source", ["connector:shopify", "connector:woocommerce", "ledger-timer"])
def test_a_token_cannot_be_given_a_source_of_the_connectors_or_the_ledger(source: str) -> None:
    """Given a source that only the connectors or the ledger write, when a token is made
    for it, then it is refused with the reason."""
    with pytest.raises(TokenError, match="reserved"):
        new_token("forger", [EVENTS_WRITE], [source])


def test_a_token_without_sources_writes_under_its_own_name() -> None:
    """Given a token made without --sources, then it may write only api:NAME."""
    _, record = new_token("wms", [EVENTS_WRITE])
    assert record.sources == ("api:wms",)
    assert record.principal().default_source == "api:wms"


def test_unknown_scopes_and_bad_names_are_refused() -> None:
    """Given a scope that does not exist or a name with spaces, then creation is refused."""
    with pytest.raises(TokenError, match="unknown scope"):
        new_token("erp", ["stock:write"])
    with pytest.raises(TokenError, match="token name"):
        new_token("my erp", [EVENTS_WRITE])


def test_a_bucket_lets_the_burst_through_then_says_how_long_to_wait() -> None:
    """Given 1 request/s and a burst of 2, when 3 requests come at once, then the third
    waits 1 s (Retry-After 1), and one more may go a second later."""
    buckets = TokenBuckets()
    assert buckets.take("t", 1.0, 2, now=100.0) == 0
    assert buckets.take("t", 1.0, 2, now=100.0) == 0
    wait = buckets.take("t", 1.0, 2, now=100.0)
    assert wait == pytest.approx(1.0)
    assert retry_after(wait) == "1"
    assert retry_after(0.2) == "1"
    assert retry_after(2.1) == "3"
    assert buckets.take("t", 1.0, 2, now=101.0) == 0


def _principal(*scopes: str, sources: tuple[str, ...] = ("erp",)) -> Principal:
    return Principal("erp", frozenset(scopes), sources)


def test_an_event_of_a_source_the_token_is_not_bound_to_is_forbidden() -> None:
    """Given an ERP token (source erp), when it posts an event claiming connector:shopify,
    then that item is forbidden with the reason; its own source passes."""
    items = [
        {"event_id": "a", "type": "receipt", "sku": "s", "qty": 1, "source": "connector:shopify"},
        {"event_id": "b", "type": "receipt", "sku": "s", "qty": 1},
    ]
    results = parse_items(items, source="erp")
    [refused] = refusals(_principal(EVENTS_WRITE), results)
    assert refused["index"] == 0
    assert "connector:shopify" in refused["errors"][0]
    assert results[1].event is not None and results[1].event["source"] == "erp"


def test_an_event_id_of_the_connectors_namespace_is_forbidden() -> None:
    """Given an id shaped like a connector's (channel/account/...), when posted through
    the API, then it is forbidden whatever the token's scopes."""
    item = {"event_id": "shopify/demo.myshopify.com/order/5/line/9/placed", "type": "receipt"}
    results = parse_items({**item, "sku": "s", "qty": 1}, source="erp")
    [refused] = refusals(_principal(*SCOPES), results)
    assert "belong to the connectors" in refused["errors"][0]


@pytest.mark.parametrize(
    ("kind", "scope"),
    [("order_placed", "orders:write"), ("hold", "holds:write"), ("receipt", "events:write")],
)
def test_each_event_type_needs_its_own_scope(kind: str, scope: str) -> None:
    """Given a token with every scope but the one the type needs, then the item is
    forbidden naming that scope; with it, the item passes."""
    item = {"event_id": "x", "type": kind, "sku": "s", "qty": 1, "order_id": "o"}
    results = parse_items(item, source="erp")
    assert results[0].event is not None, results[0].errors
    [refused] = refusals(_principal(*(set(SCOPES) - {scope})), results)
    assert scope in refused["errors"][0]
    assert refusals(_principal(scope), results) == []


Echo = Callable[[web.Request], Awaitable[web.Response]]


async def _echo(request: web.Request) -> web.Response:
    who = principal_of(request)
    return web.json_response({"name": who.name, "scopes": sorted(who.scopes)})


@asynccontextmanager
async def _served(
    store: TokenStore, limits: Limits, *, follow: bool = True
) -> AsyncIterator[TestClient[Any, Any]]:
    """An app with an open, a read and a write route behind the guard; ``follow``: keep
    the store fresh as the follower would."""
    app = web.Application()
    rules = {
        ("GET", "/health"): OPEN,
        ("GET", "/read"): need(STOCK_READ),
        ("POST", "/write"): need(EVENTS_WRITE, write=True),
    }
    app.middlewares.append(guard(store, rules, limits))
    app.router.add_get("/health", _echo)
    app.router.add_get("/read", _echo)
    app.router.add_post("/write", _echo)
    app.router.add_get("/hidden", _echo)

    async def keep_fresh() -> None:
        while True:
            store.mark_fresh(time.monotonic())
            await asyncio.sleep(0.01)

    fresh = asyncio.ensure_future(keep_fresh()) if follow else None
    async with TestClient(TestServer(app)) as client:
        try:
            yield client
        finally:
            if fresh is not None:
                fresh.cancel()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_the_guard_answers_401_403_429_and_puts_the_principal_on_the_request() -> None:
    """Given a reader token and a writer token (1 write/s, burst 2) in a fresh store,
    when routes are called without a token, with an unknown one, with the wrong scope,
    with the right one, three writes at once, and a route without a rule,
    then 401, 401, 403, 200 with the principal, 429 with Retry-After, 403 (admin)."""
    store = TokenStore()
    reader, reader_record = new_token("reader", [STOCK_READ])
    writer, writer_record = new_token("writer", [EVENTS_WRITE], ["erp"], rate=1, burst=2)
    store.apply(reader_record)
    store.apply(writer_record)

    async def scenario() -> None:
        async with _served(store, Limits(rate=50, burst=100, stale_s=5)) as client:
            health = await client.get("/health")
            assert health.status == 200
            assert (await health.json())["name"] == "anonymous"
            missing = await client.get("/read")
            assert missing.status == 401
            assert missing.headers["WWW-Authenticate"].startswith("Bearer")
            assert (await client.get("/read", headers=_bearer("sft_unknown"))).status == 401
            assert (await client.post("/write", headers=_bearer(reader))).status == 403
            ok = await client.get("/read", headers=_bearer(reader))
            assert ok.status == 200
            assert await ok.json() == {"name": "reader", "scopes": ["stock:read"]}
            statuses = [(await client.post("/write", headers=_bearer(writer))) for _ in range(3)]
            assert [r.status for r in statuses] == [200, 200, 429]
            assert statuses[2].headers["Retry-After"] == "1"
            assert (await client.get("/read", headers=_bearer(reader))).status == 200  # reads
            hidden = await client.get("/hidden", headers=_bearer(reader))
            assert hidden.status == 403 and "admin" in (await hidden.json())["error"]

    asyncio.run(scenario())


def test_a_revoked_token_is_refused_and_a_stale_store_accepts_none() -> None:
    """Given a token that works, when its revocation reaches the store, then 401; given a
    store last current longer ago than the bound, then every token gets 503."""
    store = TokenStore()
    token, record = new_token("reader", [STOCK_READ])
    store.apply(record)

    async def scenario() -> None:
        async with _served(store, Limits(rate=50, burst=100, stale_s=5)) as client:
            assert (await client.get("/read", headers=_bearer(token))).status == 200
            store.apply(record.revoke())
            refused = await client.get("/read", headers=_bearer(token))
            assert refused.status == 401
            assert "revoked" in (await refused.json())["error"]
        other, other_record = new_token("other", [STOCK_READ])
        store.apply(other_record)
        store.mark_fresh(time.monotonic() - 6)
        async with _served(store, Limits(rate=50, burst=100, stale_s=5), follow=False) as client:
            stale = await client.get("/read", headers=_bearer(other))
            assert stale.status == 503
            assert stale.headers["Retry-After"] == "1"

    asyncio.run(scenario())
