"""The wave service's HTTP API (bearer tokens of the project's token store).

* ``POST /v1/waves/plan`` ``{"location": L}`` (``{}``: every location), fulfilment:write:
  plan waves now, 200 ``{"waves": [...]}``;
* ``GET /v1/waves[?location=L]`` and ``GET /v1/waves/{wave}``, fulfilment:write or
  orders:read: the waves, latest version each;
* ``POST /v1/waves/{wave}/picks``, fulfilment:write: pick confirmations;
* ``GET /v1/waves/{wave}/pick-list.pdf``, ``summary.pdf``, ``delivery-notes/{order}.pdf``,
  fulfilment:write or orders:read: the documents.

``admin`` may call every route. A pick confirmation body is
``{"picks": [{"order_id": ..., "line_id": ..., "picked": n}, ...]}`` (or one such object
alone); the confirmations apply in order, all or none. Answers: 200 ``{"wave", "short"}``;
400 a body that is not that, or a quantity below 0 or above the line's; 404 unknown wave, order
or line; 409 a line already confirmed with another quantity, or a closed wave; 503 Kafka did
not acknowledge (nothing applied: send it again, it counts once).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp import web

from streams.fulfilment.documents import delivery_note_pdf, pick_list_pdf, wave_summary_pdf
from streams.fulfilment.model import Wave
from streams.fulfilment.picking import PickError
from streams.fulfilment.records import wave_record
from streams.kernel.access.guard import Limits, Rule, guard, need, principal_of
from streams.kernel.access.store import TokenFollower, TokenStore
from streams.kernel.access.tokens import ADMIN, FULFILMENT_WRITE, ORDERS_READ
from streams.kernel.audit import audit_middleware, note
from streams.kernel.kafka_io import PublishError
from streams.kernel.topics import STOCKFLOW_AUDIT
from streams.picking.service import WaveService

log = logging.getLogger("stockflow.waves")

PLAN = "/v1/waves/plan"
WAVES = "/v1/waves"
WAVE = "/v1/waves/{wave}"
PICKS = "/v1/waves/{wave}/picks"
PICK_LIST = "/v1/waves/{wave}/pick-list.pdf"
SUMMARY = "/v1/waves/{wave}/summary.pdf"
NOTE = "/v1/waves/{wave}/delivery-notes/{order}.pdf"
_READ = need(FULFILMENT_WRITE, ORDERS_READ, ADMIN)
RULES: dict[tuple[str, str], Rule] = {
    ("POST", PLAN): need(FULFILMENT_WRITE, ADMIN, write=True),
    ("POST", PICKS): need(FULFILMENT_WRITE, ADMIN, write=True),
    ("GET", WAVES): _READ,
    ("GET", WAVE): _READ,
    ("GET", PICK_LIST): _READ,
    ("GET", SUMMARY): _READ,
    ("GET", NOTE): _READ,
}
SERVICE = "waves"
ACTIONS = {("POST", PLAN): "plan waves", ("POST", PICKS): "confirm picks"}
MAX_PICKS = 500
MAX_TEXT = 256
_STATUS = {"invalid_pick": 400, "unknown_line": 404, "conflict": 409, "closed": 409}


def _error(status: int, message: str, **headers: str) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers or None)


def wave_json(wave: Wave) -> dict[str, Any]:
    return wave_record(wave)


async def _body(request: web.Request) -> Any:
    try:
        return json.loads(await request.read() or b"null")
    except (ValueError, UnicodeDecodeError):
        return ValueError("the body must be JSON")


def _picks(body: Any) -> list[tuple[str, str, Any]] | str:
    items = body.get("picks") if isinstance(body, dict) and "picks" in body else [body]
    if not isinstance(items, list) or not items:
        return 'send {"picks": [{"order_id", "line_id", "picked"}, ...]}'
    if len(items) > MAX_PICKS:
        return f"picks: at most {MAX_PICKS} per request"
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            return f'picks[{i}]: an object {{"order_id", "line_id", "picked"}}'
        unknown = sorted(set(item) - {"order_id", "line_id", "picked"})
        if unknown:
            return f"picks[{i}]: unknown field(s) {', '.join(unknown)}"
        for name in ("order_id", "line_id"):
            value = item.get(name)
            if not isinstance(value, str) or not value or len(value) > MAX_TEXT:
                return f"picks[{i}].{name}: required, a non-empty string"
        if "picked" not in item:
            return f"picks[{i}].picked: required, the units picked (0 or more)"
        out.append((item["order_id"], item["line_id"], item["picked"]))
    return out


def add_routes(
    app: web.Application,
    service: WaveService,
    store: TokenStore | None = None,
    limits: Limits | None = None,
) -> TokenStore:
    """Add the routes to ``app`` behind the token guard (a token store followed from the
    app's start to its cleanup when none is given)."""
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

    async def audit(record: dict[str, Any]) -> None:
        await service.publisher.send([(STOCKFLOW_AUDIT, record["who"], record)])

    # the audit outermost: refusals of the guard (401, 403, 429) are audited too
    app.middlewares.append(audit_middleware(SERVICE, audit, ACTIONS))
    app.middlewares.append(
        guard(
            tokens,
            RULES,
            limits or Limits(settings.api_rate, settings.api_burst, settings.tokens_stale_s),
        )
    )

    def found(request: web.Request) -> Wave | web.Response:
        wave = service.waves.get(request.match_info["wave"])
        return wave if wave is not None else _error(404, "no such wave")

    async def plan(request: web.Request) -> web.StreamResponse:
        body = await _body(request)
        if body is None:
            body = {}
        location = body.get("location") if isinstance(body, dict) else None
        if (
            not isinstance(body, dict)
            or set(body) - {"location"}
            or (location is not None and (not isinstance(location, str) or not location))
        ):
            return _error(400, 'send {"location": "<location>"} or {} for every location')
        try:
            made = await service.plan(location)
        except PublishError as exc:
            return _error(503, str(exc), **{"Retry-After": "5"})
        log.info(
            "waves: plan by %s at %s: %d wave(s)", principal_of(request).name, location, len(made)
        )
        return web.json_response({"waves": [wave_json(w) for w in made]})

    async def listing(request: web.Request) -> web.StreamResponse:
        location = request.query.get("location")
        return web.json_response({"waves": [wave_json(w) for w in service.listed(location)]})

    async def one(request: web.Request) -> web.StreamResponse:
        wave = found(request)
        return wave if isinstance(wave, web.Response) else web.json_response(wave_json(wave))

    async def picks(request: web.Request) -> web.StreamResponse:
        body = await _body(request)
        if isinstance(body, ValueError):
            return _error(400, str(body))
        parsed = _picks(body)
        if isinstance(parsed, str):
            return _error(400, parsed)
        note(request).add(ids=[request.match_info["wave"], *dict.fromkeys(p[0] for p in parsed)])
        try:
            wave, short = await service.pick(
                request.match_info["wave"], parsed, principal_of(request).name
            )
        except KeyError:
            return _error(404, "no such wave")
        except PickError as exc:
            return _error(_STATUS.get(exc.reason, 400), exc.message)
        except PublishError as exc:
            return _error(503, str(exc), **{"Retry-After": "5"})
        return web.json_response({"wave": wave_json(wave), "short": short})

    def pdf(data: bytes, name: str) -> web.Response:
        headers = {"Content-Disposition": f'inline; filename="{name}"'}
        return web.Response(body=data, content_type="application/pdf", headers=headers)

    async def pick_list(request: web.Request) -> web.StreamResponse:
        wave = found(request)
        return wave if isinstance(wave, web.Response) else pdf(pick_list_pdf(wave), "pick-list.pdf")

    async def summary(request: web.Request) -> web.StreamResponse:
        wave = found(request)
        return (
            wave if isinstance(wave, web.Response) else pdf(wave_summary_pdf(wave), "summary.pdf")
        )

    async def delivery_note(request: web.Request) -> web.StreamResponse:
        wave = found(request)
        if isinstance(wave, web.Response):
            return wave
        order = next((o for o in wave.orders if o.order_id == request.match_info["order"]), None)
        if order is None:
            return _error(404, "no such order in the wave")
        return pdf(delivery_note_pdf(wave, order), "delivery-note.pdf")

    app.router.add_post(PLAN, plan)
    app.router.add_get(WAVES, listing)
    app.router.add_get(PICK_LIST, pick_list)
    app.router.add_get(SUMMARY, summary)
    app.router.add_get(NOTE, delivery_note)
    app.router.add_post(PICKS, picks)
    app.router.add_get(WAVE, one)
    return tokens
