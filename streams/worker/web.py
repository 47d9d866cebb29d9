"""HTTP API of the ledger worker (Faust web): stock look-ups, event intake, holds, health."""

from __future__ import annotations

from typing import Any

import faust
import orjson
from faust import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from schemas.codec import Codec
from schemas.events import stock_event
from schemas.times import now_ms
from streams.kernel.topics import STOCK_EVENTS
from streams.ledger.availability import DEFAULT_CHANNEL, channel_quantities, location_available
from streams.ledger.config import LedgerConfig
from streams.ledger.state import SkuState
from streams.worker import metrics
from streams.worker.hold_ids import hold_id_for, sku_of_hold
from streams.worker.intake import parse_items

MAX_BATCH = 10_000
# aiohttp refuses a charset inside content_type; the text format is UTF-8 by definition.
_EXPOSITION = CONTENT_TYPE_LATEST.split(";")[0] + "; version=0.0.4"
MAX_TTL_SECONDS = 7 * 24 * 3600


def stock_view(sku: str, state: SkuState, config: LedgerConfig) -> dict[str, Any]:
    """The body of GET /v1/stock/{sku}."""
    quantities = channel_quantities(state, config)
    default = quantities.pop(DEFAULT_CHANNEL)
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
                "available": location_available(loc, name, config),
            }
            for name, loc in state.locations.items()
        },
        "channels": quantities,
        "default_channel_quantity": default,
    }


def register_views(app: faust.App, table: Any, codec: Codec, config: LedgerConfig) -> None:
    """The worker's routes on ``app``: ``table`` is the SKU table, ``config`` the ledger's."""

    async def publish(events: list[dict[str, Any]]) -> None:
        futures = []
        for event in events:
            value = codec.encode(STOCK_EVENTS.value_schema, event)
            futures.append(
                await app.producer.send(
                    STOCK_EVENTS.name, event["sku"].encode(), value, None, None, None
                )
            )
        for future in futures:
            await future

    @app.page("/v1/stock/{sku}")
    @app.table_route(table=table, match_info="sku")
    async def get_stock(view: web.View, request: web.Request, sku: str) -> web.Response:
        stored = table.get(sku.encode())
        if stored is None:
            return view.json({"error": f"unknown SKU {sku!r}"}, status=404)
        state = SkuState.from_bytes(stored)
        return view.json(stock_view(sku, state, config))

    @app.page("/v1/events")
    class Events(web.View):
        async def post(self, request: web.Request) -> web.Response:
            body = await _json_body(self, request)
            if isinstance(body, web.Response):
                return body
            if isinstance(body, list) and len(body) > MAX_BATCH:
                return self.json({"error": f"at most {MAX_BATCH} events per request"}, status=413)
            results = parse_items(
                body,
                source="api",
                default_location=config.default_location,
                max_qty=config.max_qty,
            )
            valid = [r.event for r in results if r.event is not None]
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
            return self.json(answer, status=202 if len(valid) == len(results) else 400)

    @app.page("/v1/holds")
    class Holds(web.View):
        async def post(self, request: web.Request) -> web.Response:
            body = await _json_body(self, request)
            if isinstance(body, web.Response):
                return body
            errors = _hold_errors(body)
            if errors:
                return self.json({"errors": errors}, status=400)
            now = now_ms()
            hold_id = hold_id_for(body["sku"])
            expires_at = now + int(body["ttl_seconds"]) * 1000
            await publish([_hold_event(body, hold_id, now, expires_at)])
            return self.json(
                {"hold_id": hold_id, "sku": body["sku"], "expires_at": expires_at}, status=202
            )

    @app.page("/v1/holds/{hold_id}")
    class Hold(web.View):
        async def delete(self, request: web.Request, hold_id: str) -> web.Response:
            sku = sku_of_hold(hold_id)
            if sku is None:
                return self.json({"error": f"{hold_id!r} is not a hold id"}, status=404)
            now = now_ms()
            event = _hold_event({"sku": sku, "qty": 0}, hold_id, now, None)
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
    try:
        return orjson.loads(await request.read())
    except orjson.JSONDecodeError as exc:
        return view.json({"error": f"body is not JSON: {exc}"}, status=400)


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
    body: dict[str, Any], hold_id: str, now: int, expires_at: int | None
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
        source="api",
        expires_at=expires_at,
    )
