"""Who may call the worker's HTTP API, and which events a caller may post.

Routes and their scopes (anything else, Faust's own pages included, needs ``admin``):

- ``GET /v1/stock/{sku}``: ``stock:read``
- ``POST /v1/events``: per event, ``orders:write`` for ``order_*``, ``holds:write`` for
  ``hold*``, ``events:write`` for the other types
- ``POST /v1/pos/changes``: ``events:write``, for a store among the token's locations
- ``POST /v1/holds``, ``DELETE /v1/holds/{hold_id}``: ``holds:write``
- ``POST /v1/orders``: ``orders:write``; ``GET /v1/orders``, ``GET /v1/orders/{order_id}``:
  ``orders:read``; ``POST /v1/orders/{order_id}/approve|reject|reroute|cancel``:
  ``orders:approve``
- ``GET /metrics``: ``metrics:read``
- ``GET /health``, ``GET /openapi.json``: open

An event posted by a token must carry one of the token's sources (an event without
``source`` gets its first) and an id outside the connectors' namespace; one item failing
these refuses the whole request with 403, nothing published.
"""

from __future__ import annotations

from typing import Any

import faust
from aiohttp import web

from schemas.events import CONNECTOR_ID_SEPARATOR, is_connector_event_id
from schemas.orders import ACTIONS as ORDER_ACTIONS
from streams.kernel.access.guard import OPEN, Limits, Rule, Rules, guard, need
from streams.kernel.access.store import TokenFollower, TokenStore
from streams.kernel.access.tokens import (
    EVENTS_WRITE,
    HOLDS_WRITE,
    METRICS_READ,
    ORDERS_APPROVE,
    ORDERS_READ,
    ORDERS_WRITE,
    STOCK_READ,
    Principal,
)
from streams.kernel.settings import Settings
from streams.worker.intake import IntakeResult

RULES: dict[tuple[str, str], Rule] = {
    ("GET", "/v1/stock/{sku}"): need(STOCK_READ),
    ("POST", "/v1/events"): need(EVENTS_WRITE, ORDERS_WRITE, HOLDS_WRITE, write=True),
    ("POST", "/v1/holds"): need(HOLDS_WRITE, write=True),
    ("POST", "/v1/pos/changes"): need(EVENTS_WRITE, write=True),  # and the store's location
    ("DELETE", "/v1/holds/{hold_id}"): need(HOLDS_WRITE, write=True),
    ("POST", "/v1/orders"): need(ORDERS_WRITE, write=True),
    ("GET", "/v1/orders"): need(ORDERS_READ),
    ("GET", "/v1/orders/{order_id}"): need(ORDERS_READ),
    **{
        ("POST", f"/v1/orders/{{order_id}}/{action}"): need(ORDERS_APPROVE, write=True)
        for action in ORDER_ACTIONS
    },
    ("GET", "/metrics"): need(METRICS_READ),
    ("GET", "/health"): OPEN,
    ("GET", "/openapi.json"): OPEN,  # the API's description: no secret in it
}

_ORDER_TYPES = frozenset({"order_placed", "order_cancelled", "order_shipped"})
_HOLD_TYPES = frozenset({"hold", "hold_released"})


def scope_of(event_type: str) -> str:
    """The scope posting an event of this type needs."""
    if event_type in _ORDER_TYPES:
        return ORDERS_WRITE
    if event_type in _HOLD_TYPES:
        return HOLDS_WRITE
    return EVENTS_WRITE


def refusals(principal: Principal, results: list[IntakeResult]) -> list[dict[str, Any]]:
    """Per item the caller may not post: ``{"index", "errors"}``; empty when all may go."""
    out = []
    for result in results:
        event = result.event
        if event is None:
            continue
        errors = []
        needed = scope_of(event["type"])
        if needed not in principal.scopes:
            errors.append(f"type {event['type']}: needs the scope {needed}")
        if event["source"] not in principal.sources:
            errors.append(
                f"source {event['source']!r}: token {principal.name!r} may write only "
                f"{', '.join(principal.sources)}"
            )
        if is_connector_event_id(event["event_id"]):
            errors.append(
                f"event_id: ids containing {CONNECTOR_ID_SEPARATOR!r} belong to the connectors "
                "(channel/account/...) and are never accepted from the API"
            )
        if errors:
            out.append({"index": result.index, "status": "forbidden", "errors": errors})
    return out


def protect(app: faust.App, settings: Settings, rules: Rules = RULES) -> TokenStore:
    """Put the guard in front of every route of ``app`` and follow the token store while
    the app runs; returns the store."""
    store = TokenStore()
    limits = Limits(settings.api_rate, settings.api_burst, settings.tokens_stale_s)
    server: web.Application = app.web.web_app  # type: ignore[attr-defined]  # aiohttp driver
    server.middlewares.append(guard(store, rules, limits))
    follower = TokenFollower(settings, store)

    @app.task
    async def follow_tokens() -> None:
        follower.start()

    return store
