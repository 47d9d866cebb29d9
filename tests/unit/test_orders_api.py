"""The worker's orders API over an in-memory order book: a real aiohttp server on loopback,
Faust's views, the records it would publish collected (no Kafka in this tier)."""

from __future__ import annotations

import asyncio
import json
import warnings
from collections.abc import Awaitable, Callable
from typing import Any

import faust
import jsonschema_rs
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from aiohttp.web_exceptions import NotAppKeyWarning

from schemas.codec import single_object_codec
from streams.kernel import openapi
from streams.kernel.access.guard import PRINCIPAL
from streams.kernel.access.tokens import ORDERS_APPROVE, ORDERS_READ, ORDERS_WRITE, Principal
from streams.kernel.topics import ORDERS, STOCK_DEADLETTER
from streams.worker import edges
from streams.worker.access import RULES
from streams.worker.order_reads import MemoryOrderBook, OrderBookView
from streams.worker.orders_web import register_order_views
from tests.support.ports import free_port
from tests.unit.schema_samples import SAMPLES

CODEC = single_object_codec()
DOCUMENT = openapi.load(edges.DOCUMENT)
T = 1_795_420_800_000
Sent = list[tuple[str, bytes, dict[str, Any]]]


def state(order_id: str, status: str, updated_at: int = T, **changes: Any) -> dict[str, Any]:
    sample = SAMPLES["stockflow.v1.OrderState"]
    channel = order_id.partition(":")[0]
    return {
        **sample,
        "order_id": order_id,
        "channel": channel,
        "status": status,
        "updated_at": updated_at,
        **changes,
    }


BOOK = [
    state("erp:1", "exception", T + 2, reason="no_plan: no location has desk"),
    state("erp:2", "allocated", T + 1),
    state("web:3", "exception", T + 1, reason="refused: insufficient_stock"),
    state("erp:4", "pending_approval", T, reason="total_above: order 200000 > 100000"),
]


def order(own_id: str = "1001", **changes: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "order_id": own_id,
        "channel": "erp",
        "lines": [
            {"line_id": "1", "sku": "chair", "qty": 2, "unit_price": 4990, "currency": "EUR"}
        ],
        "ship_to": {"country": "FR", "postal_code": "69002"},
    }
    return {**item, **changes}


Call = Callable[..., Awaitable[tuple[int, Any]]]


def run(book: OrderBookView | None, scenario: Callable[[Call, Sent], Awaitable[None]]) -> None:
    """``scenario(call, sent)`` against the orders views on a loopback server; ``call(method,
    path, body=None)`` answers (status, JSON) and checks the answer against the document."""

    async def main() -> None:
        sent: Sent = []
        app = faust.App(f"orders-api-{id(object())}", store="memory://", web_enabled=True)

        async def publish(records: list[tuple[str, bytes, bytes]]) -> None:
            sent.extend((t, k, CODEC.decode(v)[1]) for t, k, v in records)

        register_order_views(app, CODEC, book, publish=publish)
        server: web.Application = edges.web_application(app)

        @web.middleware
        async def authenticate(request: web.Request, handler: Any) -> web.StreamResponse:
            with warnings.catch_warnings():  # a string key, as the guard sets it
                warnings.simplefilter("ignore", NotAppKeyWarning)
                request[PRINCIPAL] = Principal(
                    "ops", frozenset({ORDERS_WRITE, ORDERS_READ, ORDERS_APPROVE}), ("erp",)
                )
            return await handler(request)

        server.middlewares.append(authenticate)
        async with TestClient(TestServer(server)) as client:

            async def call(method: str, path: str, body: Any = None) -> tuple[int, Any]:
                data = None if body is None else json.dumps(body)
                response = await client.request(method, path, data=data)
                answer = await response.json()
                _conforms(method, path, response.status, answer)
                return response.status, answer

            await scenario(call, sent)

    asyncio.run(main())


def _conforms(method: str, path: str, status: int, answer: Any) -> None:
    """The answer matches the OpenAPI document's schema for its route and status."""
    template = next(
        t
        for t in DOCUMENT["paths"]
        if len(t.split("/")) == len(path.split("?")[0].split("/"))
        and all(
            a == b or a.startswith("{")
            for a, b in zip(t.split("/"), path.split("?")[0].split("/"), strict=True)
        )
    )
    response = DOCUMENT["paths"][template][method.lower()]["responses"][str(status)]
    schema = response["content"]["application/json"]["schema"]
    validator = jsonschema_rs.Draft202012Validator({**schema, "components": DOCUMENT["components"]})
    validator.validate(answer)


def test_a_batch_publishes_its_good_orders_keyed_by_id_and_dead_letters_each_bad_one() -> None:
    """Given three orders, one with qty 0 and one with an email, when posted as one batch,
    then the good one is published to orders.v1 keyed erp:1001, the two bad ones are
    answered with their reasons and dead-lettered without the email, and the answer is 400
    with every item's result."""

    async def scenario(call: Call, sent: Sent) -> None:
        bad_qty = order("1002", lines=[{"line_id": "1", "sku": "chair", "qty": 0}])
        personal = order("1003", email="jane@example.com")
        status, answer = await call("POST", "/v1/orders", [order(), bad_qty, personal])
        assert status == 400
        assert (answer["accepted"], answer["rejected"]) == (1, 2)
        assert answer["results"][0] == {"index": 0, "status": "accepted", "order_id": "erp:1001"}
        assert answer["results"][1]["reasons"] == ["bad_qty"]
        assert answer["results"][2]["reasons"] == ["personal_data"]
        orders = [(k, v) for t, k, v in sent if t == ORDERS.name]
        assert [(k, v["order_id"], v["type"], v["source"]) for k, v in orders] == [
            (b"erp:1001", "erp:1001", "placed", "erp")
        ]
        dead = [v for t, _, v in sent if t == STOCK_DEADLETTER.name]
        assert [(d["reason"], d["event_id"]) for d in dead] == [
            ("bad_qty", "erp:1002"),
            ("personal_data", "erp:1003"),
        ]
        assert b"jane@example.com" not in dead[1]["original"]
        assert b"erp" in dead[1]["original"]

    run(MemoryOrderBook(), scenario)


def test_one_valid_order_is_accepted_with_202() -> None:
    """Given one valid order as an object, when posted, then 202 and one record."""

    async def scenario(call: Call, sent: Sent) -> None:
        status, answer = await call("POST", "/v1/orders", order())
        assert status == 202 and answer["accepted"] == 1
        assert len(sent) == 1

    run(MemoryOrderBook(), scenario)


def test_orders_of_a_connectors_channel_are_refused() -> None:
    """Given an order claiming channel shopify, when posted through the API, then it is
    refused (connector_channel): the shopify connector alone names shopify:* orders."""

    async def scenario(call: Call, sent: Sent) -> None:
        status, answer = await call("POST", "/v1/orders", order(channel="shopify"))
        assert status == 400
        assert answer["results"][0]["reasons"] == ["connector_channel"]
        assert [t for t, _, _ in sent] == [STOCK_DEADLETTER.name]

    run(MemoryOrderBook(), scenario)


def test_an_order_reads_with_its_lines_and_history_and_an_unknown_one_is_404() -> None:
    """Given erp:2 allocated in the book, when read, then its status, lines and history;
    erp:404 is unknown."""

    async def scenario(call: Call, sent: Sent) -> None:
        status, answer = await call("GET", "/v1/orders/erp:2")
        assert status == 200
        assert (answer["order_id"], answer["status"], answer["channel"]) == (
            "erp:2",
            "allocated",
            "erp",
        )
        assert answer["lines"][0]["location"] == "lyon"
        assert answer["history"][0]["to_status"] == "allocated"
        assert (await call("GET", "/v1/orders/erp:404"))[0] == 404

    run(MemoryOrderBook(BOOK), scenario)


def test_the_exception_queue_lists_exceptions_longest_waiting_first_by_channel() -> None:
    """Given two exceptions (erp:1 newer, web:3 older) and others, when listed with
    status=exception, then both, web:3 first; with channel=erp, erp:1 alone; a status that
    does not exist is a 400."""

    async def scenario(call: Call, sent: Sent) -> None:
        status, answer = await call("GET", "/v1/orders?status=exception")
        assert status == 200
        assert [o["order_id"] for o in answer["orders"]] == ["web:3", "erp:1"]
        assert answer["orders"][1]["reason"].startswith("no_plan")
        assert answer["complete"] is True and answer["missing"] == []
        _, answer = await call("GET", "/v1/orders?status=exception&channel=erp")
        assert [o["order_id"] for o in answer["orders"]] == ["erp:1"]
        _, answer = await call("GET", "/v1/orders?limit=2")
        assert answer["count"] == 2
        assert (await call("GET", "/v1/orders?status=lost"))[0] == 400
        assert (await call("GET", "/v1/orders?status="))[0] == 400
        assert (await call("GET", "/v1/orders?limit=0"))[0] == 400

    run(MemoryOrderBook(BOOK), scenario)


@pytest.mark.parametrize(
    ("action", "order_id", "expected"),
    [
        ("approve", "erp:4", 202),
        ("approve", "erp:1", 409),
        ("reject", "erp:1", 202),
        ("reject", "erp:2", 409),
        ("reroute", "erp:1", 202),
        ("reroute", "erp:2", 409),
        ("cancel", "erp:2", 202),
        ("approve", "erp:404", 404),
    ],
)
def test_an_action_fits_the_orders_status_or_is_refused(
    action: str, order_id: str, expected: int
) -> None:
    """Given orders in exception, allocated and pending approval, when an operator acts on
    one, then 202 and an action event by the token's name on orders.v1 keyed by the order
    id when its status takes the action; 409 (nothing sent) when not; 404 when unknown."""

    async def scenario(call: Call, sent: Sent) -> None:
        status, answer = await call("POST", f"/v1/orders/{order_id}/{action}", {"note": "ok"})
        assert status == expected, answer
        if expected != 202:
            assert sent == []
            return
        [(topic, key, event)] = sent
        assert (topic, key) == (ORDERS.name, order_id.encode())
        kinds = {"approve": "approved", "reject": "rejected", "reroute": "rerouted"}
        assert event["type"] == kinds.get(action, "cancel_requested")
        assert (event["by"], event["note"], event["order_id"]) == ("ops", "ok", order_id)
        assert answer["event_id"] == event["event_id"]

    run(MemoryOrderBook(BOOK), scenario)


def test_a_reroute_carries_its_location_and_other_actions_refuse_one() -> None:
    """Given erp:1 in exception, when rerouted to lyon, then the event names lyon; an
    approve with a location, or a body that is not an object, is a 400."""

    async def scenario(call: Call, sent: Sent) -> None:
        status, _ = await call("POST", "/v1/orders/erp:1/reroute", {"location": "lyon"})
        assert status == 202 and sent[0][2]["location"] == "lyon"
        assert (await call("POST", "/v1/orders/erp:4/approve", {"location": "lyon"}))[0] == 400
        assert (await call("POST", "/v1/orders/erp:4/approve", [1]))[0] == 400
        assert (await call("POST", "/v1/orders/erp:4/approve"))[0] == 202

    run(MemoryOrderBook(BOOK), scenario)


def test_without_an_order_book_reads_and_actions_answer_503_and_posting_still_works() -> None:
    """Given a worker that does not run the order book, when orders are read or acted on,
    then 503 with Retry-After's message; posting an order is still published."""

    async def scenario(call: Call, sent: Sent) -> None:
        assert (await call("GET", "/v1/orders/erp:1"))[0] == 503
        assert (await call("GET", "/v1/orders"))[0] == 503
        assert (await call("POST", "/v1/orders/erp:1/cancel"))[0] == 503
        assert (await call("POST", "/v1/orders", order()))[0] == 202

    run(None, scenario)


def test_each_orders_route_needs_its_scope() -> None:
    """Given the worker's access rules, then posting orders needs orders:write, reading them
    orders:read and acting on them orders:approve (rate-limited writes)."""
    assert RULES[("POST", "/v1/orders")].scopes == {ORDERS_WRITE}
    assert RULES[("GET", "/v1/orders")].scopes == {ORDERS_READ}
    assert RULES[("GET", "/v1/orders/{order_id}")].scopes == {ORDERS_READ}
    for action in ("approve", "reject", "reroute", "cancel"):
        rule = RULES[("POST", f"/v1/orders/{{order_id}}/{action}")]
        assert rule.scopes == {ORDERS_APPROVE} and rule.write


def test_a_list_asks_every_worker_of_the_group_and_says_what_it_covers() -> None:
    """Given two workers, A holding partition 0 (erp:1 in exception) and B partition 1 (web:3
    in exception), as the group's assignment says, when A is asked for the exception queue,
    then it answers both (B's asked with the forwarded mark), partitions [0, 1], complete;
    with B down, then A's own, complete false naming B."""

    async def main() -> None:
        ports = [free_port(), free_port()]
        urls = [f"http://127.0.0.1:{p}" for p in ports]
        books = [MemoryOrderBook([BOOK[0], BOOK[1]]), MemoryOrderBook([BOOK[2], BOOK[3]])]
        servers = []
        for name, url, book in zip(("a", "b"), urls, books, strict=True):
            app = faust.App(f"orders-{name}-{id(object())}", canonical_url=url, web_enabled=True)
            table = app.Table("orders", default=None, key_type=bytes, value_type=bytes)
            topic = table.changelog_topic.get_topic_name()
            app.assignor.changelog_distribution = {urls[0]: {topic: [0]}, urls[1]: {topic: [1]}}

            async def publish(records: list[tuple[str, bytes, bytes]]) -> None:
                return None

            register_order_views(app, CODEC, book, table=table, publish=publish)
            server = TestServer(
                edges.web_application(app), host="127.0.0.1", port=int(url.rsplit(":", 1)[1])
            )
            servers.append((app, server))
        for _, server in servers:
            await server.start_server()
        try:
            a = servers[0][1]
            async with TestClient(a) as client:
                response = await client.get("/v1/orders?status=exception")
                answer = await response.json()
                _conforms("GET", "/v1/orders", response.status, answer)
                assert [o["order_id"] for o in answer["orders"]] == ["web:3", "erp:1"]
                assert (answer["partitions"], answer["complete"]) == ([0, 1], True)
                await servers[1][1].close()
                response = await client.get("/v1/orders?status=exception")
                answer = await response.json()
                assert [o["order_id"] for o in answer["orders"]] == ["erp:1"]
                assert (answer["partitions"], answer["complete"]) == ([0], False)
                assert answer["missing"] == [urls[1]]
        finally:
            for app, server in servers:
                await server.close()
                if app._http_client is not None:
                    await app.http_client.close()

    asyncio.run(main())
