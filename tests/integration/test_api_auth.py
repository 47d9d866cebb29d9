"""Authentication of the worker's and the connectors' HTTP APIs, against real processes:
a ledger worker and ``stockflow connectors serve`` on the local Kafka, tokens created in
the real token topic.

Routes are enumerated from the applications' own routers (built in this process exactly
as the processes build them), so a route added without a rule fails here.
"""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any, cast

import pytest
from confluent_kafka import Consumer, TopicPartition

from connectors.access import rules as connector_rules
from connectors.framework.refusals import ExceptionsView
from connectors.runtime import receiver_app
from deploy.local.children import http_json
from schemas.codec import single_object_codec
from streams.kernel.access.command import create, revoke
from streams.kernel.access.guard import ADMIN_ONLY, Rule
from streams.kernel.access.store import publish
from streams.kernel.access.tokens import (
    ADMIN,
    EVENTS_WRITE,
    METRICS_READ,
    SCOPES,
    STOCK_READ,
    TokenRecord,
)
from streams.kernel.kafka_config import consumer_config
from streams.kernel.settings import Settings
from streams.kernel.topics import API_TOKENS
from streams.ledger.config import load_config
from streams.worker.access import RULES as WORKER_RULES
from streams.worker.app import Ledger
from tests.fakes.e2e import Stack, e2e_stack
from tests.support.ports import free_port

pytestmark = pytest.mark.integration

RUN = uuid.uuid4().hex[:8]
Route = tuple[str, str]  # (method, pattern)


@pytest.fixture(scope="module")
def stack(local_stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    folder = tmp_path_factory.mktemp("auth")
    with e2e_stack(
        local_stack,
        folder,
        worker_port=free_port(),
        connectors_port=free_port(),
        n_skus=1,
    ) as s:
        yield s


CREATED: list[TokenRecord] = []


@pytest.fixture(scope="module", autouse=True)
def revoke_at_the_end(local_stack: Settings) -> Iterator[None]:
    """No token of these tests stays valid after them."""
    yield
    publish(local_stack, [r.revoke() for r in CREATED])


def token(settings: Settings, label: str, scopes: list[str], **kwargs: Any) -> str:
    secret, record = create(settings, f"test-{label}-{RUN}", scopes, replace=True, **kwargs)
    CREATED.append(record)
    return secret


def call(url: str, route: Route, secret: str | None = None, body: Any = None) -> tuple[int, Any]:
    method, pattern = route
    path = re.sub(r"\{[^}]+\}", "x", pattern)
    data = None if method in ("GET", "DELETE") else body
    return http_json(url + path, method, data, timeout=30, token=secret)


def worker_routes(settings: Settings) -> list[Route]:
    """Every (method, pattern) the worker's web server serves (HEAD goes as GET)."""
    probe = dataclasses.replace(settings, app_id=f"routes-{RUN}")
    web = Ledger(probe, load_config(None), single_object_codec()).app.web
    web.init_server()
    server = web.web_app  # type: ignore[attr-defined]
    return sorted(
        {(r.method, r.resource.canonical) for r in server.router.routes() if r.method != "HEAD"}
    )


async def _unaudited(record: dict[str, object]) -> None:
    """No audit here: the routes are only listed."""


def connector_routes() -> list[Route]:
    channels = [SimpleNamespace(channel="shopify"), SimpleNamespace(channel="woocommerce")]
    app = receiver_app(cast(Any, None), cast(Any, channels), ExceptionsView(), audit=_unaudited)
    return sorted(
        {
            (r.method, r.resource.canonical)
            for r in app.router.routes()
            if r.resource and r.method != "HEAD"
        }
    )


def without(settings: Settings, rule: Rule, cache: dict[frozenset[str], str]) -> str:
    """A token with every scope but the ones ``rule`` accepts."""
    if rule.scopes not in cache:
        others = [s for s in SCOPES if s not in rule.scopes]
        cache[rule.scopes] = token(settings, f"not-{len(cache)}", others)
    return cache[rule.scopes]


def test_every_worker_route_but_health_refuses_a_request_without_a_token(stack: Stack) -> None:
    """Given every route of the worker's router (Faust's own pages included),
    when each is called without a token, then each answers 401 except GET /health and the
    API's description."""
    routes = worker_routes(stack.settings)
    assert ("POST", "/v1/events") in routes and ("GET", "/") in routes
    answers = {route: call(stack.worker.url, route)[0] for route in routes}
    print(f"\n[auth] worker routes: {answers}")
    assert {r for r, status in answers.items() if status != 401} == {
        ("GET", "/health"),
        ("GET", "/openapi.json"),
    }


def test_every_worker_route_refuses_a_token_without_its_scope_and_takes_one_with_it(
    stack: Stack,
) -> None:
    """Given every route of the worker's router and, for each, a token holding every scope
    but the ones the route accepts, when called with it, then 403; with a token holding
    exactly the route's scopes, then neither 401 nor 403."""
    settings = stack.settings
    tokens: dict[frozenset[str], str] = {}
    right: dict[frozenset[str], str] = {}
    for route in worker_routes(settings):
        rule = WORKER_RULES.get(route, ADMIN_ONLY)
        if rule.open:
            continue
        status, body = call(stack.worker.url, route, without(settings, rule, tokens), [])
        assert status == 403, (route, status, body)
        if rule.scopes not in right:
            right[rule.scopes] = token(settings, f"only-{len(right)}", sorted(rule.scopes))
        status, body = call(stack.worker.url, route, right[rule.scopes], [])
        assert status not in (401, 403), (route, status, body)


def test_fausts_table_and_router_pages_are_locked(stack: Stack) -> None:
    """Given Faust's /table and /router pages, when asked without a token, with every
    scope but admin, and with admin, then 401, 403, and 404 (they are switched off)."""
    settings = stack.settings
    no_admin = token(settings, "no-admin", [s for s in SCOPES if s != ADMIN])
    admin = token(settings, "admin", [ADMIN])
    for path in ("/table", "/table/sku-state/", "/router", "/router/sku-state/x/"):
        route = ("GET", path)
        assert call(stack.worker.url, route)[0] == 401, path
        assert call(stack.worker.url, route, no_admin)[0] == 403, path
        assert call(stack.worker.url, route, admin)[0] == 404, path


def test_every_connectors_route_but_webhooks_and_health_needs_a_token(stack: Stack) -> None:
    """Given every route of the connectors' receiver, when called without a token, then
    401 except the webhooks (which refuse an unsigned delivery with 401 of their own),
    /health and the API's description; with a token lacking the route's scope, 403."""
    settings = stack.settings
    url = stack.connectors.url
    rules = connector_rules(["shopify", "woocommerce"])
    tokens: dict[frozenset[str], str] = {}
    opened = set()
    for route in connector_routes():
        rule = rules.get(route, ADMIN_ONLY)
        status, body = call(url, route, None, {})
        if rule.open:
            opened.add(route)
            continue
        assert status == 401, (route, status, body)
        assert call(url, route, without(settings, rule, tokens))[0] == 403, route
    assert opened == {
        ("GET", "/health"),
        ("GET", "/openapi.json"),
        ("POST", "/webhooks/shopify"),
        ("POST", "/webhooks/woocommerce"),
    }
    status, body = http_json(url + "/webhooks/shopify", "POST", {"id": 1})
    assert (status, body) == (401, {"error": "invalid signature"})


def test_a_token_cannot_post_events_of_another_source(stack: Stack) -> None:
    """Given an ERP token bound to source erp, when it posts a batch in which one receipt
    claims source connector:shopify, then 403 naming that item and nothing of the batch is
    applied; its own receipts go through, stamped source erp."""
    settings = stack.settings
    erp = token(settings, "erp", [EVENTS_WRITE, STOCK_READ], sources=["erp"])
    sku = f"auth-src-{RUN}"
    forged = [
        {"event_id": f"{sku}-f", "type": "receipt", "sku": sku, "qty": 5},
        {
            "event_id": f"{sku}-g",
            "type": "receipt",
            "sku": sku,
            "qty": 7,
            "source": "connector:shopify",
        },
    ]
    status, body = http_json(stack.worker.url + "/v1/events", "POST", forged, token=erp)
    assert status == 403, body
    assert [r["index"] for r in body["results"]] == [1]
    own = {"event_id": f"{sku}-r", "type": "receipt", "sku": sku, "qty": 2}
    assert http_json(stack.worker.url + "/v1/events", "POST", own, token=erp)[0] == 202
    stock = _wait_stock(stack, sku, erp)
    assert stock["locations"]["main"]["on_hand"] == 2  # neither 5 nor 7 was published


def test_an_event_id_of_the_connectors_namespace_is_refused_by_the_api(stack: Stack) -> None:
    """Given the operator's token (every scope), when it posts an event whose id is shaped
    like a connector's (shopify/shop/order/...), then 403: the API never writes there."""
    sku = f"auth-ns-{RUN}"
    event = {
        "event_id": f"shopify/demo.myshopify.com/order/1/line/{RUN}/placed",
        "type": "receipt",
        "sku": sku,
        "qty": 1,
    }
    status, body = stack.worker.request("POST", "/v1/events", event)
    assert status == 403, body
    assert "belong to the connectors" in body["results"][0]["errors"][0]


def test_a_revoked_token_is_refused_by_the_worker_and_the_connectors_within_the_bound(
    stack: Stack,
) -> None:
    """Given a token created a moment ago and accepted at once by the worker and the
    connectors, when it is revoked (Kafka acknowledged the revocation), then both refuse it
    with 401 within STOCKFLOW_TOKENS_STALE_SECONDS."""
    settings = stack.settings
    name = f"test-revoked-{RUN}"
    secret, record = create(settings, name, [STOCK_READ, METRICS_READ], replace=True)
    CREATED.append(record)
    worker_route, connectors_route = ("GET", "/v1/stock/x"), ("GET", "/metrics")
    assert call(stack.worker.url, worker_route, secret)[0] == 404
    assert call(stack.connectors.url, connectors_route, secret)[0] == 200
    revoke(settings, name)
    revoked = time.monotonic()
    took = {}
    for label, url, route in (
        ("worker", stack.worker.url, worker_route),
        ("connectors", stack.connectors.url, connectors_route),
    ):
        while call(url, route, secret)[0] != 401:
            assert time.monotonic() - revoked <= settings.tokens_stale_s, label
            time.sleep(0.01)
        took[label] = time.monotonic() - revoked
    print(f"\n[auth] revoked token refused after: {took} (bound {settings.tokens_stale_s} s)")


def test_a_token_past_its_rate_gets_429_with_retry_after(stack: Stack) -> None:
    """Given a token allowed 0.5 write requests/s with a burst of 2, when it posts three
    times at once, then the third gets 429 with Retry-After; reads are not limited; after
    waiting that long a write goes through again."""
    settings = stack.settings
    slow = token(settings, "slow", [EVENTS_WRITE, STOCK_READ], sources=["erp"], rate=0.5, burst=2)
    url = stack.worker.url + "/v1/events"
    statuses = [http_json(url, "POST", [], token=slow)[0] for _ in range(2)]
    refused = _raw_post(url, slow)
    assert statuses == [202, 202]
    assert refused[0] == 429, refused
    wait = int(refused[1]["Retry-After"])
    assert 1 <= wait <= 2
    assert call(stack.worker.url, ("GET", "/v1/stock/x"), slow)[0] == 404
    time.sleep(wait)
    assert http_json(url, "POST", [], token=slow)[0] == 202


def test_a_created_token_is_printed_once_and_stored_only_as_its_hash(stack: Stack) -> None:
    """Given `stockflow token create`, when it runs, then it prints the token once on
    stdout, the token works, `token list` does not show it, and no record of the token
    topic holds it (one holds its SHA-256)."""
    import hashlib

    name = f"test-printed-{RUN}"
    created = _cli("token", "create", name, "--scopes", "stock:read")
    secret = created.stdout.strip()
    assert re.fullmatch(r"sft_[A-Za-z0-9_-]{43}", secret), created.stdout
    assert secret not in created.stderr
    assert call(stack.worker.url, ("GET", "/v1/stock/x"), secret)[0] == 404
    listed = _cli("token", "list").stdout
    assert name in listed and secret not in listed
    values = _topic_values(stack.settings)
    assert not [v for v in values if secret.encode() in v]
    assert [v for v in values if hashlib.sha256(secret.encode()).hexdigest().encode() in v]
    _cli("token", "revoke", name)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "streams.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done


def _topic_values(settings: Settings) -> list[bytes]:
    consumer = Consumer(consumer_config(settings, f"auth-read-{RUN}"))
    try:
        tp = TopicPartition(API_TOKENS.name, 0)
        low, high = consumer.get_watermark_offsets(tp, timeout=10)
        consumer.assign([TopicPartition(API_TOKENS.name, 0, low)])
        values: list[bytes] = []
        deadline = time.monotonic() + 30
        while len(values) < high - low and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and not msg.error():
                values.append(msg.value() or b"")
                if (msg.offset() or 0) >= high - 1:
                    break
        return values
    finally:
        consumer.close()


def _raw_post(url: str, secret: str) -> tuple[int, dict[str, str]]:
    """(status, headers) of one POST of an empty batch."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        url, data=b"[]", method="POST", headers={"Authorization": f"Bearer {secret}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, dict(answer.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers)


def _wait_stock(stack: Stack, sku: str, secret: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, body = http_json(f"{stack.worker.url}/v1/stock/{sku}", token=secret)
        if status == 200:
            time.sleep(1)  # a forged receipt published alongside would be applied by now
            status, body = http_json(f"{stack.worker.url}/v1/stock/{sku}", token=secret)
            return cast(dict[str, Any], body)
        time.sleep(0.1)
    raise AssertionError(f"{sku} never appeared")
