"""The webhook receiver: ``POST /webhooks/shopify`` and ``POST /webhooks/woocommerce``.

For each delivery: read the raw bytes, let the channel verify the signature on them (401
and no event when it fails), normalise, then hand the result to the ``Intake`` (dedupe,
publish). Answers: 200 accepted / duplicate / stale / Woo ping; 400 unreadable body; 401
bad signature; 503 when publishing failed, so Shopify retries (WooCommerce does not, the
poller catches up). ``GET /metrics`` serves Prometheus, ``GET /health`` says alive.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Protocol

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from connectors.framework import metrics
from connectors.framework.intake import Intake
from connectors.framework.types import Delivery, InvalidPayloadError, SignatureError

log = logging.getLogger(__name__)


class InboundChannel(Protocol):
    channel: str

    async def handle(self, headers: Mapping[str, str], raw: bytes) -> Delivery: ...


def _route(intake: Intake, inbound: InboundChannel) -> web.RouteDef:
    channel = inbound.channel

    async def receive(request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            delivery = await inbound.handle(request.headers, raw)
        except SignatureError as exc:
            metrics.WEBHOOKS.labels(channel, "bad_signature").inc()
            log.warning("webhook %s rejected: %s", channel, exc)
            return web.json_response({"error": "invalid signature"}, status=401)
        except InvalidPayloadError as exc:
            metrics.WEBHOOKS.labels(channel, "invalid").inc()
            log.warning("webhook %s unreadable: %s", channel, exc)
            return web.json_response({"error": str(exc)}, status=400)
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


def create_app(intake: Intake, *channels: InboundChannel) -> web.Application:
    """The receiver app for these channels; each is served at ``/webhooks/{channel}``."""
    app = web.Application(client_max_size=5 * 1024 * 1024)
    app.add_routes([_route(intake, c) for c in channels])
    app.add_routes([web.get("/metrics", _metrics), web.get("/health", _health)])
    return app
