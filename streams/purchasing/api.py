"""The till's replenishment trigger: ``POST /v1/replenishment/trigger`` ``{"store": "<location>"}``.

A shop orders from its till: the request plans that store's location now and answers the
proposals made (``{"store", "proposals": [...]}``; the ones the supplier's auto-send rule
allows are already sent). Who may call it: a bearer token of the project's token store
(``stockflow token create till-lyon --scopes replenish --locations lyon``) with the scope
``replenish`` (or ``admin``) and, when the token lists locations, only for those. Answers:
200 with the proposals; 400 with ``{"error"}`` for a body that is not ``{"store": "..."}``;
401 without a token or with an unknown or revoked one; 403 for a token without the scope or
for another store; 429 past the token's write rate; 503 while the token store is not current,
when planning fails (its sources away) or Kafka does not acknowledge the proposals.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp import web

from streams.kernel.access.guard import Limits, Rule, guard, need, principal_of
from streams.kernel.access.store import TokenFollower, TokenStore
from streams.kernel.access.tokens import ADMIN, REPLENISH
from streams.kernel.kafka_io import PublishError
from streams.purchasing.service import PurchasingService

log = logging.getLogger("stockflow.purchasing")

TRIGGER = "/v1/replenishment/trigger"
RULES: dict[tuple[str, str], Rule] = {("POST", TRIGGER): need(REPLENISH, ADMIN, write=True)}
MAX_STORE = 128


def _bad(message: str) -> web.Response:
    return web.json_response({"error": message}, status=400)


async def _store_of(request: web.Request) -> str | web.Response:
    try:
        body: Any = json.loads(await request.read() or b"null")
    except (ValueError, UnicodeDecodeError):
        return _bad('the body must be JSON: {"store": "<location>"}')
    if not isinstance(body, dict):
        return _bad('the body must be a JSON object: {"store": "<location>"}')
    unknown = sorted(set(body) - {"store"})
    if unknown:
        return _bad(f'unknown field(s) {", ".join(unknown)}; send only {{"store": ...}}')
    store = body.get("store")
    if not isinstance(store, str) or not store.strip():
        return _bad("store: required, the location id of the store (a non-empty string)")
    if len(store) > MAX_STORE:
        return _bad(f"store: longer than {MAX_STORE} characters")
    return store


def add_routes(
    app: web.Application,
    service: PurchasingService,
    store: TokenStore | None = None,
    limits: Limits | None = None,
) -> TokenStore:
    """Add the trigger route to ``app``, guarded by bearer tokens of ``store`` (a store is
    followed from the app's start to its cleanup when none is given); returns the store.
    The guard applies to this route only, so the hosting app keeps its own sign-in."""
    settings = service.settings
    tokens = store if store is not None else TokenStore()
    if store is None:
        follower = TokenFollower(settings, tokens)

        async def follow(_: web.Application) -> None:
            follower.start()

        async def unfollow(_: web.Application) -> None:
            follower.stop()

        app.on_startup.append(follow)
        app.on_cleanup.append(unfollow)
    check = guard(
        tokens,
        RULES,
        limits or Limits(settings.api_rate, settings.api_burst, settings.tokens_stale_s),
    )

    async def trigger(request: web.Request) -> web.StreamResponse:
        found = await _store_of(request)
        if isinstance(found, web.Response):
            return found
        caller = principal_of(request)
        if ADMIN not in caller.scopes and not caller.may_act_for(found):
            return web.json_response(
                {
                    "error": f"token {caller.name!r} may trigger replenishment only for "
                    f"{', '.join(caller.locations)}, not {found!r}"
                },
                status=403,
            )
        try:
            made = await service.plan(location=found, by=f"till:{caller.name}")
        except PublishError as exc:
            return web.json_response({"error": str(exc)}, status=503, headers={"Retry-After": "5"})
        except Exception as exc:  # the planner's sources (ClickHouse) away: say so, in JSON
            log.warning("purchasing: till trigger for %s failed: %r", found, exc)
            return web.json_response(
                {"error": f"planning {found!r} failed ({type(exc).__name__}); try again later"},
                status=503,
                headers={"Retry-After": "30"},
            )
        log.info(
            "purchasing: till trigger by %s for %s: %d proposal(s)", caller.name, found, len(made)
        )
        return web.json_response({"store": found, "proposals": made})

    async def guarded(request: web.Request) -> web.StreamResponse:
        return await check(request, trigger)

    app.router.add_post(TRIGGER, guarded)
    return tokens
