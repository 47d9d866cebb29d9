"""HTTP API of the ledger worker (Faust web): stock look-ups, event intake, holds, health.

``GET /v1/stock/{sku}`` and ``POST /v1/holds`` are served by the worker owning the SKU's
partition (a request reaching another worker is forwarded there, body and headers included,
``streams.worker.routing``): it holds the SKU's state, and its batch step decides the hold,
so it can answer ``?wait=1`` within the request and read the SKU's state to answer a
retried ``Idempotency-Key``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import faust
import orjson
from faust import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from schemas.codec import Codec
from schemas.events import MAX_HOLD_TTL_SECONDS, problems, stock_event
from schemas.times import now_ms
from streams.bundles.catalogue import Catalogue
from streams.kernel.access.guard import principal_of
from streams.kernel.audit import note
from streams.kernel.topics import STOCK_EVENTS
from streams.ledger import preorders
from streams.ledger.availability import DEFAULT_CHANNEL, channel_quantities, location_available
from streams.ledger.config import LedgerConfig
from streams.ledger.lots import day_of, lots_view
from streams.ledger.state import SkuState, event_key
from streams.worker import access, edges, metrics
from streams.worker.bundle_intake import bundles_expanded
from streams.worker.hold_ids import hold_id_for, sku_of_hold
from streams.worker.intake import parse_items, refuse_unstocked
from streams.worker.order_reads import MemoryOrderBook, OrderBookView
from streams.worker.orders_web import register_order_views
from streams.worker.pending import HoldOutcome, PendingHolds, Waiting
from streams.worker.pos_web import register_pos_views
from streams.worker.registry import resolve_off_loop
from streams.worker.routing import FORWARDED, SERVED_BY, answer_from_owner

MAX_BATCH = 10_000
# aiohttp refuses a charset inside content_type; the text format is UTF-8 by definition.
_EXPOSITION = CONTENT_TYPE_LATEST.split(";")[0] + "; version=0.0.4"
MAX_TTL_SECONDS = MAX_HOLD_TTL_SECONDS  # the contract's, so /v1/events holds obey it too
WAIT_SECONDS = 5.0  # longest a ``?wait=1`` request waits for the ledger's decision
MAX_IDEMPOTENCY_KEY = 256
WAIT_ARGS = {"1": True, "true": True, "0": False, "false": False, "": False}  # ?wait=


def stock_view(sku: str, state: SkuState, config: LedgerConfig) -> dict[str, Any]:
    """The body of GET /v1/stock/{sku} (expired lots as of today, UTC, left out of what is
    available; a location with lots lists them)."""
    day = day_of(now_ms())
    quantities = channel_quantities(state, config, day)
    default = quantities.pop(DEFAULT_CHANNEL)
    pre = preorders.view(state, config) if config.preorders or state.backorders else None
    return {
        "sku": sku,
        "version": state.version,
        "locations": {
            name: {
                "on_hand": loc.on_hand,
                "reserved": loc.reserved,
                "unsellable": loc.unsellable,
                "safety_stock": loc.safety_stock
                if loc.safety_stock is not None
                else config.safety_stock(name),
                "incoming": loc.incoming,
                "available": location_available(loc, name, config, day),
                **({"lots": lots_view(loc)} if loc.lots else {}),
            }
            for name, loc in state.locations.items()
        },
        "channels": quantities,
        "default_channel_quantity": default,
        **({"preorders": pre} if pre is not None else {}),
    }


def register_views(
    app: faust.App,
    table: Any,
    codec: Codec,
    config: LedgerConfig,
    pending: PendingHolds | None = None,
    orders: OrderBookView | None = None,
    order_table: Any = None,
    bundles: Catalogue | None = None,
) -> None:
    """The worker's routes on ``app``: ``table`` is the SKU table, ``config`` the ledger's,
    ``pending`` the holds requests wait for (resolved by the worker's batch step),
    ``orders`` the order book's table read by the orders API and ``order_table`` that
    table (``streams.worker.orders_web``), ``bundles`` the bundle definitions: an event of a
    bundle SKU is published as its components' events (:mod:`streams.bundles.expand`)."""
    catalogue = bundles or Catalogue()
    holds = pending if pending is not None else PendingHolds()
    edges.install(app, codec, FORWARDED)
    # until the order agent runs here, an empty book: every order is unknown (404)
    book = orders if orders is not None else MemoryOrderBook()
    register_order_views(app, codec, book, table=order_table)

    async def publish(events: list[dict[str, Any]]) -> None:
        futures = []
        await resolve_off_loop(codec)
        for event in await bundles_expanded(app, codec, events, catalogue):
            value = codec.encode(STOCK_EVENTS.value_schema, event)
            futures.append(
                await app.producer.send(
                    STOCK_EVENTS.name, event["sku"].encode(), value, None, None, None
                )
            )
        for future in futures:
            await future

    register_pos_views(app, codec, config, publish)

    @app.page("/v1/stock/{sku}")
    async def get_stock(view: web.View, request: web.Request, sku: str) -> web.Response:
        routed = await answer_from_owner(view, app, table, sku, request)
        if routed is not None:
            return routed
        served_by = {SERVED_BY: str(app.conf.canonical_url)}
        stored = table.get(sku.encode())
        if stored is None:
            return view.json({"error": f"unknown SKU {sku!r}"}, status=404, headers=served_by)
        state = SkuState.from_bytes(stored, table.get)
        return view.json(stock_view(sku, state, config), headers=served_by)

    @app.page("/v1/events")
    class Events(web.View):
        async def post(self, request: web.Request) -> web.Response:
            body = await _json_body(self, request)
            if isinstance(body, web.Response):
                return body
            if isinstance(body, list) and len(body) > MAX_BATCH:
                return self.json({"error": f"at most {MAX_BATCH} events per request"}, status=413)
            principal = principal_of(request)
            results = refuse_unstocked(
                parse_items(
                    body,
                    source=principal.default_source,
                    default_location=config.default_location,
                    max_qty=config.max_qty,
                ),
                catalogue,
            )
            forbidden = access.refusals(principal, results)
            if forbidden:  # nothing of the request is published
                error = f"token {principal.name!r} may not post these items"
                return self.json({"error": error, "results": forbidden}, status=403)
            valid = [r.event for r in results if r.event is not None]
            _note_items(request, body, len(results))
            await publish(valid)
            metrics.API_REJECTED.labels(route="/v1/events").inc(len(results) - len(valid))
            answer = {
                "accepted": len(valid),
                "rejected": len(results) - len(valid),
                "results": [
                    {"index": r.index, "status": "accepted", "event_id": r.event["event_id"]}
                    if r.event is not None
                    else {"index": r.index, "status": "rejected", "errors": list(r.errors)}
                    for r in results
                ],
            }
            if len(valid) == len(results):
                return self.json(answer, status=202)
            refused = f"{answer['rejected']} of {len(results)} events refused"
            answer["error"] = f"{refused}: see the errors of each in results"
            return self.json(answer, status=400)

    def known_hold(hold_id: str, sku: str) -> HoldOutcome | Waiting | None:
        """What the ledger or this worker knows of ``hold_id``: its outcome, the request
        still awaiting a decision, or None when it was never asked for."""
        stored = table.get(sku.encode())
        state = SkuState.from_bytes(stored, table.get) if stored is not None else None
        held = state.holds.get(hold_id) if state is not None else None
        if held is not None and held.event_id == hold_id:
            return HoldOutcome(hold_id, True, held.location, held.qty, held.expires_at)
        recent = holds.recent(hold_id)
        if recent is not None and not recent.granted:
            return recent
        waiting = holds.requested(hold_id)
        if waiting is not None:
            return waiting
        if recent is not None or (state is not None and state.seen(event_key(hold_id))):
            return HoldOutcome(hold_id, False, reason="hold_not_live")
        return None

    @app.page("/v1/holds")
    class Holds(web.View):
        async def post(self, request: web.Request) -> web.Response:
            raw = await request.read()
            body = _json(self, raw)
            if isinstance(body, web.Response):
                return body
            errors = _hold_errors(body)
            key = request.headers.get("Idempotency-Key")
            if key is not None and not (0 < len(key) <= MAX_IDEMPOTENCY_KEY and key.isprintable()):
                errors.append(f"Idempotency-Key: 1 to {MAX_IDEMPOTENCY_KEY} printable characters")
            wait_arg = request.query.get("wait", "0")
            if wait_arg not in WAIT_ARGS:
                errors.append("wait: 1 or true to wait for the decision, 0 or false not to")
            if errors:
                return self.json({"errors": errors}, status=400)
            sku = body["sku"]
            note(request).add([sku])
            routed = await answer_from_owner(self, app, table, sku, request, raw)
            if routed is not None:
                return routed
            wait = WAIT_ARGS[wait_arg]
            hold_id = hold_id_for(sku, key)
            note(request).add(ids=[hold_id])
            known = known_hold(hold_id, sku) if key is not None else None
            if isinstance(known, HoldOutcome):
                return _hold_answer(self, sku, known, wait)
            if isinstance(known, Waiting):  # a retry while the first awaits its decision
                waiting = known  # the same event again: the ledger applies it once
            else:
                now = now_ms()
                expires_at = now + int(body["ttl_seconds"]) * 1000
                source = principal_of(request).default_source
                event = _hold_event(body, hold_id, now, expires_at, source)
                found = problems(
                    event, default_location=config.default_location, max_qty=config.max_qty
                )
                if found:  # what the ledger would dead-letter, undecided
                    return self.json({"errors": [p.message for p in found]}, status=400)
                waiting = holds.expect(sku.encode(), event)
            await publish([waiting.event])
            expires_at = waiting.event["expires_at"]
            if not wait:
                answer = {"hold_id": hold_id, "sku": sku, "status": "pending"}
                return self.json({**answer, "expires_at": expires_at}, status=202)
            try:
                outcome = await asyncio.wait_for(asyncio.shield(waiting.future), WAIT_SECONDS)
            except TimeoutError:
                return self.json(
                    {
                        "hold_id": hold_id,
                        "sku": sku,
                        "status": "undecided",
                        "error": f"the ledger did not decide within {WAIT_SECONDS:g} s (busy, "
                        "or the SKU's partition is moving); the hold may still be granted: "
                        "retry with the same Idempotency-Key to learn its outcome, or release "
                        f"it with DELETE /v1/holds/{hold_id}",
                    },
                    status=504,
                )
            return _hold_answer(self, sku, outcome, wait)

    @app.page("/v1/holds/{hold_id}")
    class Hold(web.View):
        async def delete(self, request: web.Request, hold_id: str) -> web.Response:
            sku = sku_of_hold(hold_id)
            note(request).add([sku], [hold_id])
            if sku is None:
                return self.json({"error": f"{hold_id!r} is not a hold id"}, status=404)
            now = now_ms()
            source = principal_of(request).default_source
            event = _hold_event({"sku": sku, "qty": 0}, hold_id, now, None, source)
            event.update(type="hold_released", event_id=f"{hold_id}:released", reason="released")
            await publish([event])
            return self.json({"hold_id": hold_id, "status": "release requested"}, status=202)

    @app.page("/health")
    async def health(view: web.View, request: web.Request) -> web.Response:
        return view.json({"status": "ok", "app": app.conf.id})

    @app.page("/metrics")
    async def prometheus_metrics(view: web.View, request: web.Request) -> web.Response:
        metrics.SKUS.set(len(table))
        return view.bytes(generate_latest(metrics.REGISTRY), content_type=_EXPOSITION)


async def _json_body(view: web.View, request: web.Request) -> Any:
    return _json(view, await request.read())


def _note_items(request: web.Request, body: Any, count: int) -> None:
    """The audit's note of a ``POST /v1/events``: the SKUs and event ids it named."""
    items = [i for i in (body if isinstance(body, list) else [body]) if isinstance(i, dict)]
    noted = note(request)
    noted.add([i.get("sku") for i in items], [i.get("event_id") for i in items])
    noted.items = count


def _json(view: web.View, raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return view.json({"error": f"body is not JSON: {exc}"}, status=400)


def _hold_answer(view: web.View, sku: str, outcome: HoldOutcome, wait: bool) -> web.Response:
    """201 granted (200 without ``wait``: a retry learning its hold) or 409 refused."""
    if not outcome.granted:
        answer = {"hold_id": outcome.hold_id, "sku": sku, "status": "refused"}
        error = f"hold refused: {outcome.reason}"
        return view.json({**answer, "reason": outcome.reason, "error": error}, status=409)
    return view.json(
        {
            "hold_id": outcome.hold_id,
            "sku": sku,
            "status": "granted",
            "location": outcome.location,
            "qty": outcome.qty,
            "expires_at": outcome.expires_at,
        },
        status=201 if wait else 200,
    )


def _hold_errors(body: Any) -> list[str]:
    if not isinstance(body, dict):
        return ["body must be a JSON object with sku, qty, channel, ttl_seconds"]
    errors = []
    if not isinstance(body.get("sku"), str) or not body["sku"]:
        errors.append("sku: required string")
    qty = body.get("qty")
    if isinstance(qty, bool) or not isinstance(qty, int) or qty <= 0:
        errors.append("qty: a positive integer")
    if not isinstance(body.get("channel"), str) or not body["channel"]:
        errors.append("channel: required string")
    ttl = body.get("ttl_seconds")
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not 0 < ttl <= MAX_TTL_SECONDS:
        errors.append(f"ttl_seconds: an integer between 1 and {MAX_TTL_SECONDS}")
    if body.get("location") is not None and not isinstance(body["location"], str):
        errors.append("location: a string when given")
    return errors


def _hold_event(
    body: dict[str, Any], hold_id: str, now: int, expires_at: int | None, source: str
) -> dict[str, Any]:
    return stock_event(
        "hold",
        body["sku"],
        hold_id,
        now,
        qty=body.get("qty", 0),
        location=body.get("location"),
        channel=body.get("channel"),
        order_id=hold_id,
        source=source,
        expires_at=expires_at,
    )
