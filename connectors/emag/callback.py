"""eMAG's order callback: ``GET /callbacks/<channel>/<key>?order_id=<id>``.

eMAG calls the URL set in the seller account with ``?order_id=`` when an order is new or
cancelled, and signs nothing, so the URL carries a shared secret (``callback_key`` in the
channel's credentials): a call with another key is answered 404 and read no further. The
order is then read from eMAG by id (the callback's word is only a hint) and goes through the
intake like a polled one; the poller catches any callback lost. Answers: 200 done, 400
``order_id`` missing or not a number, 404 wrong key, 503 eMAG unreachable or throttled
(eMAG calls again, the poller catches up).
"""

from __future__ import annotations

import hmac
import logging

from aiohttp import web

from connectors.emag.inbound import EmagInbound
from connectors.framework import metrics
from connectors.framework.intake import Intake
from connectors.framework.types import RejectedError, ThrottledError, UnavailableError

log = logging.getLogger(__name__)


def callback_path(channel: str) -> str:
    return f"/callbacks/{channel}/{{key}}"


def callback_routes(inbound: EmagInbound, intake: Intake, key: str) -> list[web.RouteDef]:
    channel = inbound.channel

    async def called(request: web.Request) -> web.Response:
        if not key or not hmac.compare_digest(request.match_info["key"].encode(), key.encode()):
            metrics.WEBHOOKS.labels(channel, "bad_signature").inc()
            log.warning("emag callback %s: wrong key", channel)
            return web.json_response({"error": "not found"}, status=404)
        raw = request.query.get("order_id", "")
        if not raw.isdigit():
            metrics.WEBHOOKS.labels(channel, "invalid").inc()
            return web.json_response({"error": "order_id: a number expected"}, status=400)
        try:
            delivery = await inbound.called_back(int(raw))
        except (ThrottledError, UnavailableError, RejectedError) as exc:
            metrics.WEBHOOKS.labels(channel, "channel_unavailable").inc()
            log.warning(
                "emag callback %s order %s: eMAG unreadable (%s)", channel, raw, type(exc).__name__
            )
            return web.json_response({"error": "eMAG unreadable, retry later"}, status=503)
        if delivery is None:
            metrics.WEBHOOKS.labels(channel, "invalid").inc()
            return web.json_response({"result": "unknown or unreadable order"})
        try:
            outcome = await intake.accept(delivery)
        except Exception:
            metrics.WEBHOOKS.labels(channel, "publish_failed").inc()
            log.exception("emag callback %s order %s: publishing failed", channel, raw)
            return web.json_response({"error": "could not publish, retry later"}, status=503)
        metrics.WEBHOOKS.labels(channel, outcome.value).inc()
        return web.json_response({"result": outcome.value})

    return [web.get(callback_path(channel), called)]
