"""The request guard of the HTTP APIs (an aiohttp middleware, so Faust's web too).

Each route names the scope it needs (:class:`Rule`); a route nobody named needs ``admin``
(Faust's own pages included), so a route added without a rule is locked, not open. Answers:
401 without a token, with an unknown or revoked one; 403 when the token lacks the route's
scope; 429 with ``Retry-After`` when a token passes its rate on a write route; 503 with
``Retry-After`` while the token store is not known to be current (see
:mod:`streams.kernel.access.store`). On success the request carries the caller as
``request[PRINCIPAL]`` (:class:`~streams.kernel.access.tokens.Principal`).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.web_exceptions import NotAppKeyWarning

from streams.kernel.access.limits import TokenBuckets, retry_after
from streams.kernel.access.store import TokenStore
from streams.kernel.access.tokens import ADMIN, ANONYMOUS, Principal

PRINCIPAL = "stockflow.principal"
LOAD_WAIT_S = 10.0  # a request arriving before the store was first read waits this long
UNKNOWN_WAIT_S = 2.0  # an unknown token: wait for one more read (a token created just now)
_REALM = 'Bearer realm="stockflow"'

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Rule:
    """What a route needs: any one of ``scopes`` (none: open to all); ``write`` routes are
    rate limited per token."""

    scopes: frozenset[str] = frozenset()
    write: bool = False

    @property
    def open(self) -> bool:
        return not self.scopes


OPEN = Rule()
ADMIN_ONLY = Rule(frozenset({ADMIN}))


def need(*scopes: str, write: bool = False) -> Rule:
    return Rule(frozenset(scopes), write)


@dataclass(frozen=True, slots=True)
class Limits:
    rate: float  # default write requests per second per token (a token's own rate wins)
    burst: int
    stale_s: float  # the store must be current as of at most this long ago


Rules = Mapping[tuple[str, str], Rule]  # (method, route pattern) -> rule


def rule_for(rules: Rules, request: web.Request) -> Rule:
    resource = request.match_info.route.resource
    if resource is None:
        return ADMIN_ONLY
    method = "GET" if request.method == "HEAD" else request.method
    return rules.get((method, resource.canonical), ADMIN_ONLY)


def bearer(request: web.Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def guard(
    store: TokenStore, rules: Rules, limits: Limits
) -> Callable[..., Awaitable[web.StreamResponse]]:
    """The middleware; append it to the application's ``middlewares`` before it starts."""
    buckets = TokenBuckets()

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        rule = rule_for(rules, request)
        if rule.open:
            _put(request, ANONYMOUS)
            return await handler(request)
        token = bearer(request)
        if token is None:
            return _refuse(401, "this route needs a bearer token (Authorization: Bearer ...)")
        arrived = time.monotonic()
        if store.fresh_at is None and not await store.fresh_after(arrived, LOAD_WAIT_S):
            return _unavailable("the token store is still being read; retry in a moment")
        record = store.lookup(token)
        if record is None and await store.fresh_after(arrived, UNKNOWN_WAIT_S):
            record = store.lookup(token)
        if store.stale_by() > limits.stale_s:
            return _unavailable(
                f"the token store is {store.stale_by():.0f} s behind Kafka; no token is "
                "accepted until it has caught up"
            )
        if record is None:
            return _refuse(401, "unknown token", invalid=True)
        if record.revoked:
            return _refuse(401, f"token {record.name!r} was revoked", invalid=True)
        granted = rule.scopes & set(record.scopes)
        if not granted:
            needed = " or ".join(sorted(rule.scopes))
            return web.json_response(
                {"error": f"token {record.name!r} lacks the scope {needed}"}, status=403
            )
        if rule.write:
            rate = record.rate if record.rate is not None else limits.rate
            burst = record.burst if record.burst is not None else limits.burst
            wait = buckets.take(record.name, rate, burst)
            if wait > 0:
                return web.json_response(
                    {"error": f"token {record.name!r} passes its {rate:g} write requests/s"},
                    status=429,
                    headers={"Retry-After": retry_after(wait)},
                )
        _put(request, record.principal())
        return await handler(request)

    return check


def principal_of(request: Any) -> Principal:
    """The caller the guard let in (anonymous on open routes); ``request`` is aiohttp's
    (what Faust's views receive too)."""
    found = request.get(PRINCIPAL) if isinstance(request, web.Request) else None
    return found if isinstance(found, Principal) else ANONYMOUS


def _put(request: web.Request, principal: Principal) -> None:
    # A plain string key, so any component can read it without importing a key object;
    # aiohttp warns once about string keys (it prefers web.RequestKey): not a fault here.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotAppKeyWarning)
        request[PRINCIPAL] = principal


def _refuse(status: int, message: str, *, invalid: bool = False) -> web.Response:
    challenge = _REALM + (', error="invalid_token"' if invalid else "")
    return web.json_response(
        {"error": message}, status=status, headers={"WWW-Authenticate": challenge}
    )


def _unavailable(message: str) -> web.Response:
    return web.json_response({"error": message}, status=503, headers={"Retry-After": "1"})
