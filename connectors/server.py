"""The webhook receiver: ``POST /webhooks/shopify`` and ``POST /webhooks/woocommerce``.

For each delivery: read the raw bytes, let the channel verify the signature on them (401
and no event when it fails), check the shop it names and its age, normalise, then hand the
result to the ``Intake`` (dedupe, publish). Answers: 200 accepted / duplicate / stale / Woo
ping; 400 unreadable body; 401 bad signature; 403 another shop than the configured one; 410
a delivery older than ``webhook_max_age_s``; 413 a body over 1 MiB (refused on its
``Content-Length``, or as soon as the bytes read pass the limit, never read to the end:
serve the app with :func:`runner`, which does not drain unread bodies); 503 when publishing
failed, so Shopify retries (WooCommerce does not, the poller catches up). ``GET /metrics``
serves Prometheus, ``GET /health`` says alive, ``GET /openapi.json`` describes it all
(``connectors/openapi.json``). Every write (a webhook delivery, refused or not) is audited
to ``stockflow.audit.v1`` (:mod:`streams.kernel.audit`); every error answers JSON.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from connectors.framework import metrics
from connectors.framework.acceptance import AcceptanceGate, acceptance_routes
from connectors.framework.exceptions_view import exceptions_routes
from connectors.framework.intake import Intake
from connectors.framework.refusals import ExceptionsView
from connectors.framework.signing import ExpiredDeliveryError, ForeignSourceError
from connectors.framework.types import (
    Delivery,
    InvalidPayloadError,
    SignatureError,
    ThrottledError,
    UnavailableError,
)
from streams.kernel import openapi
from streams.kernel.audit import Send, audit_middleware, note
from streams.kernel.json_errors import json_errors

log = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024  # 1 MiB: an order with hundreds of lines is a few hundred KB
DOCUMENT = Path(__file__).with_name("openapi.json")
SERVICE = "connectors"


class BodyTooLargeError(ValueError):
    """The delivery is larger than :data:`MAX_BODY`."""


async def read_limited(request: web.Request, limit: int = MAX_BODY) -> bytes:
    """The body, or :class:`BodyTooLargeError` as soon as it is known to pass ``limit``: at
    once from ``Content-Length``, else after at most ``limit`` + one chunk read."""
    if request.content_length is not None and request.content_length > limit:
        raise BodyTooLargeError(f"Content-Length {request.content_length} > {limit}")
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.readany():
        size += len(chunk)
        if size > limit:
            raise BodyTooLargeError(f"body passes {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large() -> web.Response:
    response = web.json_response({"error": f"body over {MAX_BODY} bytes"}, status=413)
    response.force_close()  # the rest of the body is never read: end the connection
    return response


class InboundChannel(Protocol):
    channel: str

    async def handle(self, headers: Mapping[str, str], raw: bytes) -> Delivery: ...


def _route(intake: Intake, inbound: InboundChannel) -> web.RouteDef:
    channel = inbound.channel

    async def receive(request: web.Request) -> web.Response:
        try:
            raw = await read_limited(request)
        except BodyTooLargeError as exc:
            metrics.WEBHOOKS.labels(channel, "too_large").inc()
            log.warning("webhook %s refused: %s", channel, exc)
            return _too_large()
        try:
            delivery = await inbound.handle(request.headers, raw)
        except SignatureError as exc:
            metrics.WEBHOOKS.labels(channel, "bad_signature").inc()
            log.warning("webhook %s rejected: %s", channel, exc)
            return web.json_response({"error": "invalid signature"}, status=401)
        except ForeignSourceError as exc:
            metrics.WEBHOOKS.labels(channel, "foreign_shop").inc()
            log.warning("webhook %s refused: %s", channel, exc)
            return web.json_response({"error": str(exc)}, status=403)
        except ExpiredDeliveryError as exc:
            metrics.WEBHOOKS.labels(channel, "expired").inc()
            log.warning("webhook %s refused: %s", channel, exc)
            return web.json_response({"error": str(exc)}, status=410)
        except InvalidPayloadError as exc:
            metrics.WEBHOOKS.labels(channel, "invalid").inc()
            log.warning("webhook %s unreadable: %s", channel, exc)
            return web.json_response({"error": str(exc)}, status=400)
        except (ThrottledError, UnavailableError) as exc:  # a read of the channel's API
            metrics.WEBHOOKS.labels(channel, "channel_unavailable").inc()
            log.warning(
                "webhook %s: channel API unavailable (%s); the channel retries",
                channel,
                type(exc).__name__,
            )
            return web.json_response({"error": "channel API unavailable, retry later"}, status=503)
        note(request).add(
            [e["sku"] for e in delivery.events], [e["event_id"] for e in delivery.events]
        )
        note(request).add(
            [line["sku"] for o in delivery.orders for line in o["lines"]],
            [o["event_id"] for o in delivery.orders],
        )
        note(request).items = len(delivery.events) + len(delivery.orders)
        try:
            outcome = await intake.accept(delivery)
        except Exception:
            metrics.WEBHOOKS.labels(channel, "publish_failed").inc()
            log.exception("webhook %s topic=%s: publishing failed", channel, delivery.topic)
            return web.json_response({"error": "could not publish, retry later"}, status=503)
        metrics.WEBHOOKS.labels(channel, outcome.value).inc()
        return web.json_response({"result": outcome.value})

    return web.post(f"/webhooks/{channel}", receive)


async def _metrics(request: web.Request) -> web.Response:
    return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})


async def _health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _no_audit(record: dict[str, object]) -> None:
    return None


def create_app(
    intake: Intake,
    *channels: InboundChannel,
    exceptions: ExceptionsView | None = None,
    audit: Send = _no_audit,
    acceptances: AcceptanceGate | None = None,
) -> web.Application:
    """The receiver app for these channels; each is served at ``/webhooks/{channel}``.
    ``exceptions``: serve ``GET /v1/exceptions``; ``acceptances``: the marketplace orders
    ``GET /v1/acceptances`` lists (none when no channel holds orders for the seller);
    ``audit`` sends each write's record."""
    actions = {("POST", f"/webhooks/{c.channel}"): f"webhook.{c.channel}" for c in channels}
    app = web.Application(
        client_max_size=MAX_BODY,
        middlewares=[json_errors, audit_middleware(SERVICE, audit, actions)],
    )
    app.add_routes([_route(intake, c) for c in channels])
    app.add_routes([web.get("/metrics", _metrics), web.get("/health", _health)])
    app.add_routes([web.get(openapi.PATH, openapi.handler(DOCUMENT))])
    if exceptions is not None:
        app.add_routes(exceptions_routes(exceptions))
    app.add_routes(acceptance_routes(acceptances))
    return app


def runner(app: web.Application) -> web.AppRunner:
    """A runner for the receiver that closes a connection whose body was left unread (a
    refused oversized delivery) instead of reading and discarding it."""
    return web.AppRunner(app, access_log=None, lingering_time=0)
