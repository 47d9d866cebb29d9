"""``POST /v1/pos/changes``: the tills' intake on the worker's HTTP API (rules in
:mod:`streams.worker.pos`).

Scope ``events:write``, and the token must act for the call's store (a token listing
locations may post only for them; one without locations, for every store). Accepted changes
are published as StockEvents with deterministic ids; each refused change is answered with
its errors and dead-lettered (component ``pos``, its JSON as the original bytes), and never
stops the good changes of the call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import faust
import orjson
from faust import web

from schemas.codec import Codec
from schemas.times import now_ms
from streams.kernel.access.guard import principal_of
from streams.kernel.access.tokens import ADMIN
from streams.kernel.audit import note
from streams.kernel.deadletter import dead_letter
from streams.kernel.topics import STOCK_DEADLETTER
from streams.ledger.config import LedgerConfig
from streams.worker import metrics
from streams.worker.pos import CallError, PosCall, parse_call

ROUTE = "/v1/pos/changes"
COMPONENT = "pos"

Publish = Callable[[list[dict[str, Any]]], Awaitable[None]]


def dead_letters(call: PosCall, changes: list[Any]) -> list[dict[str, Any]]:
    """The dead-letter records of a call's refused changes."""
    out = []
    for result in call.results:
        if result.ok:
            continue
        change = changes[result.index]
        sku = change.get("sku") if isinstance(change, dict) else None
        out.append(
            dead_letter(
                metrics.DEAD_LETTERS,
                component=COMPONENT,
                reason="invalid_change",
                error=f"store {call.store} key {call.idempotency_key} change "
                f"{result.index}: {'; '.join(result.errors)}",
                original=orjson.dumps(change),
                key=sku.encode() if isinstance(sku, str) else None,
                event_id=None,
            )
        )
    return out


def register_pos_views(
    app: faust.App, codec: Codec, config: LedgerConfig, publish: Publish
) -> None:
    """The tills' route on ``app``; ``publish`` sends StockEvents to the ledger's topic."""

    async def publish_dead(records: list[dict[str, Any]]) -> None:
        futures = [
            await app.producer.send(
                STOCK_DEADLETTER.name,
                record["key"],
                codec.encode(STOCK_DEADLETTER.value_schema, record),
                None,
                None,
                None,
            )
            for record in records
        ]
        for future in futures:
            await future

    @app.page(ROUTE)
    class PosChanges(web.View):
        async def post(self, request: web.Request) -> web.Response:
            try:
                body = orjson.loads(await request.read())
            except orjson.JSONDecodeError as exc:
                return self.json({"error": f"body is not JSON: {exc}"}, status=400)
            principal = principal_of(request)
            try:
                call = parse_call(
                    body,
                    source=principal.default_source,
                    received_ms=now_ms(),
                    default_location=config.default_location,
                    max_qty=config.max_qty,
                )
            except CallError as exc:
                status = 413 if any("at most" in e for e in exc.errors) else 400
                return self.json({"error": str(exc), "errors": exc.errors}, status=status)
            if ADMIN not in principal.scopes and not principal.may_act_for(call.store):
                return self.json(
                    {
                        "error": f"token {principal.name!r} may post only for "
                        f"{', '.join(principal.locations)}, not the store {call.store!r}"
                    },
                    status=403,
                )
            events = [r.event for r in call.results if r.event is not None]
            noted = note(request)
            noted.add([e["sku"] for e in events], [e["event_id"] for e in events])
            noted.items = len(call.results)
            await publish(events)
            refused = dead_letters(call, body["changes"])
            if refused:
                await publish_dead(refused)
                metrics.API_REJECTED.labels(route=ROUTE).inc(len(refused))
            return self.json(call.answer(), status=400 if refused else 200)
