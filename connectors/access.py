"""Who may call the connectors' HTTP API.

The webhook receivers stay open to the network: each delivery is authenticated by its
channel's HMAC signature (401 without a valid one, :mod:`connectors.server`), eMAG's
order callbacks by the secret key in their path (404 without it,
:mod:`connectors.emag.callback`). Everything else needs a bearer token: ``GET /metrics``
the scope ``metrics:read``, ``GET /v1/exceptions``, ``GET /v1/acceptances`` and any route
without a rule ``admin``; ``GET /health`` is open.
"""

from __future__ import annotations

from collections.abc import Iterable

from aiohttp import web

from streams.kernel.access.guard import ADMIN_ONLY, OPEN, Limits, Rule, guard, need
from streams.kernel.access.store import TokenFollower, TokenStore
from streams.kernel.access.tokens import METRICS_READ
from streams.kernel.settings import Settings


def rules(channels: Iterable[str]) -> dict[tuple[str, str], Rule]:
    """The rule of every route of the receiver serving ``channels``."""
    return {
        **{("POST", f"/webhooks/{channel}"): OPEN for channel in channels},
        # eMAG's order callbacks: the key in the path is checked by the route itself
        **{("GET", f"/callbacks/{channel}/{{key}}"): OPEN for channel in channels},
        ("GET", "/health"): OPEN,
        ("GET", "/openapi.json"): OPEN,  # the API's description: no secret in it
        ("GET", "/metrics"): need(METRICS_READ),
        ("GET", "/v1/exceptions"): ADMIN_ONLY,
        ("GET", "/v1/acceptances"): ADMIN_ONLY,
    }


def protect(app: web.Application, settings: Settings, channels: Iterable[str]) -> TokenFollower:
    """Put the guard in front of ``app``'s routes; returns the token follower, started."""
    store = TokenStore()
    limits = Limits(settings.api_rate, settings.api_burst, settings.tokens_stale_s)
    app.middlewares.append(guard(store, rules(channels), limits))
    follower = TokenFollower(settings, store)
    follower.start()
    return follower
