"""The worker API's edges: ``/openapi.json``, JSON errors, and the access audit of writes.

The audit records go to ``stockflow.audit.v1`` through Faust's producer, keyed by who.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import faust
from faust import web

from schemas.codec import Codec
from schemas.orders import ACTIONS as ORDER_ACTIONS
from streams.kernel import openapi
from streams.kernel.audit import audit_middleware
from streams.kernel.json_errors import json_errors
from streams.kernel.topics import STOCKFLOW_AUDIT
from streams.worker.registry import resolve_off_loop

DOCUMENT = Path(__file__).with_name("openapi.json")
SERVICE = "worker"
ACTIONS = {
    ("POST", "/v1/events"): "events.post",
    ("POST", "/v1/holds"): "hold.place",
    ("DELETE", "/v1/holds/{hold_id}"): "hold.release",
    ("POST", "/v1/orders"): "orders.post",
    **{("POST", f"/v1/orders/{{order_id}}/{a}"): f"order.{a}" for a in ORDER_ACTIONS},
}


def install(app: faust.App, codec: Codec, forwarded_header: str) -> None:
    """Serve the document and put the JSON errors and the audit before every route of
    ``app``'s web server (call before the server starts)."""

    async def send(record: dict[str, Any]) -> None:
        await resolve_off_loop(codec)
        value = codec.encode(STOCKFLOW_AUDIT.value_schema, record)
        future = await app.producer.send(
            STOCKFLOW_AUDIT.name, record["who"].encode(), value, None, None, None
        )
        await future

    @app.page(openapi.PATH)
    async def openapi_document(view: web.View, request: web.Request) -> web.Response:
        return view.json(openapi.load(DOCUMENT))

    middlewares = web_application(app).middlewares
    middlewares.append(json_errors)  # outermost: the audit sees the status it answers
    middlewares.append(audit_middleware(SERVICE, send, ACTIONS, forwarded_header=forwarded_header))


def web_application(app: faust.App) -> Any:
    """The aiohttp application behind Faust's web server."""
    return app.web.web_app  # type: ignore[attr-defined]
