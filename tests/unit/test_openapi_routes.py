"""The OpenAPI documents of the worker and the connectors match the routes they serve."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import faust
import pytest
import schemathesis
from aiohttp import web

from connectors.emag.callback import callback_routes
from connectors.emag.inbound import EmagInbound
from connectors.emag.mapping import EmagMapping
from connectors.framework.acceptance import AcceptanceGate
from connectors.framework.intake import Intake
from connectors.framework.refusals import ExceptionsView
from connectors.framework.types import Delivery
from connectors.server import DOCUMENT as CONNECTORS_DOCUMENT
from connectors.server import create_app
from schemas.codec import single_object_codec
from streams.kernel import openapi
from streams.ledger.config import DEFAULT_CONFIG
from streams.worker import edges
from streams.worker.web import register_views


class _Inbound:
    def __init__(self, channel: str) -> None:
        self.channel = channel

    async def handle(self, headers: Mapping[str, str], raw: bytes) -> Delivery:
        return Delivery(channel=self.channel, topic="ping", ping=True)


async def _publish(events: Any) -> None:
    return None


def worker_router() -> web.UrlDispatcher:
    """The routes of a worker's web server, built as ``stockflow worker`` builds them."""
    app = faust.App(f"openapi-{id(object())}", store="memory://", web_enabled=True)
    table = app.Table("skus", default=None, key_type=bytes, value_type=bytes)
    register_views(app, table, single_object_codec(), DEFAULT_CONFIG)
    return edges.web_application(app).router  # type: ignore[no-any-return]


def connectors_app() -> web.Application:
    """The receiver as ``stockflow connectors serve`` builds it with both channels and a
    marketplace that holds orders for the seller (the acceptances route) and eMAG's order
    callback."""
    inbounds = (_Inbound("shopify"), _Inbound("woocommerce"))
    app = create_app(
        Intake(_publish),
        *inbounds,
        exceptions=ExceptionsView(),
        acceptances=AcceptanceGate({}, _publish),
    )
    emag = EmagMapping.from_config(
        {"channel": "emag", "account": "seller", "products": [{"sku": "chair", "offer_id": 1}]}
    )
    app.add_routes(callback_routes(EmagInbound(emag), Intake(_publish), "callback-key"))
    return app


def test_every_route_of_the_worker_is_documented_and_every_documented_one_is_served() -> None:
    """Given the worker's routes and streams/worker/openapi.json, when compared, then every
    (method, path) of one is in the other."""
    assert openapi.undocumented(worker_router(), openapi.load(edges.DOCUMENT)) == []


def test_every_route_of_the_connectors_is_documented_and_every_documented_one_is_served() -> None:
    """Given the receiver's routes with both channels and connectors/openapi.json, when
    compared, then every (method, path) of one is in the other."""
    router = connectors_app().router
    assert openapi.undocumented(router, openapi.load(CONNECTORS_DOCUMENT)) == []


def test_a_route_added_without_documentation_is_found() -> None:
    """Given the receiver with one more route that its document lacks, and a document
    naming a route that is not served, when compared, then both are named."""
    app = connectors_app()

    async def extra(request: web.Request) -> web.Response:
        return web.json_response({})

    app.router.add_post("/v1/undocumented", extra)
    document = openapi.load(CONNECTORS_DOCUMENT)
    ghost = {**document, "paths": {**document["paths"], "/v1/ghost": {"delete": {}}}}
    assert openapi.undocumented(app.router, ghost) == [
        "served, not documented: POST /v1/undocumented",
        "documented, not served: DELETE /v1/ghost",
    ]


@pytest.mark.parametrize("path", [edges.DOCUMENT, CONNECTORS_DOCUMENT], ids=lambda p: p.parent.name)
def test_each_document_is_valid_openapi_with_bearer_auth_on_all_but_health(path: Any) -> None:
    """Given a service's document, when schemathesis loads every operation, then none is
    invalid, bearer auth is declared for the whole API and only /health opts out."""
    document = openapi.load(path)
    schema = schemathesis.openapi.from_dict(document)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == len(openapi.documented(document))
    assert document["components"]["securitySchemes"]["bearer"] == {
        **document["components"]["securitySchemes"]["bearer"],
        "type": "http",
        "scheme": "bearer",
    }
    assert document["security"] == [{"bearer": []}]
    open_routes = [
        path
        for path, item in document["paths"].items()
        for op in item.values()
        if op.get("security") == []
    ]
    assert open_routes == ["/health"]
