"""The label routes of the shipping service: ``GET /v1/labels/{shipment}`` and
``GET /v1/labels/{shipment}/delivery-note.pdf`` (the parcel's delivery note with its
tracking number and Code 128 barcode, written when the label is bought).

Answers the label file the carrier returned for the shipment (``application/pdf`` or, for
ZPL, ``application/x-zpl``), as stored under ``$STOCKFLOW_STATE_DIR/labels/``. Who may read
it: a bearer token of the project's token store with the scope ``orders:read`` (or
``admin``). 401 without a token or with an unknown or revoked one; 403 without the scope;
404 for a shipment unknown here or whose file is gone.
"""

from __future__ import annotations

from aiohttp import web

from streams.kernel.access.guard import Limits, Rule, guard, need
from streams.kernel.access.store import TokenFollower, TokenStore
from streams.kernel.access.tokens import ADMIN, ORDERS_READ
from streams.shipping.service import ShippingService

LABEL = "/v1/labels/{shipment}"
NOTE = "/v1/labels/{shipment}/delivery-note.pdf"
RULES: dict[tuple[str, str], Rule] = {
    ("GET", LABEL): need(ORDERS_READ, ADMIN),
    ("GET", NOTE): need(ORDERS_READ, ADMIN),
}
TYPES = {"PDF": "application/pdf", "ZPL": "application/x-zpl"}


def add_routes(
    app: web.Application, service: ShippingService, store: TokenStore | None = None
) -> TokenStore:
    """Add the label route to ``app`` guarded by bearer tokens of ``store`` (followed from
    the app's start to its cleanup when none is given); returns the store."""
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
        tokens, RULES, Limits(settings.api_rate, settings.api_burst, settings.tokens_stale_s)
    )

    async def label(request: web.Request) -> web.StreamResponse:
        sid = request.match_info["shipment"]
        shipment = service.shipments.get(sid)
        if shipment is None:
            return web.json_response({"error": f"no shipment {sid!r} here"}, status=404)
        fmt = str(shipment.get("label_format") or "PDF").upper()
        path = service.label_path(sid, fmt)
        if not path.is_file():
            return web.json_response(
                {"error": f"the label of {sid!r} is not stored here"}, status=404
            )
        return web.Response(
            body=path.read_bytes(), content_type=TYPES.get(fmt, "application/octet-stream")
        )

    async def note(request: web.Request) -> web.StreamResponse:
        sid = request.match_info["shipment"]
        path = service.note_path(sid)
        if sid not in service.shipments or not path.is_file():
            return web.json_response({"error": f"no delivery note of {sid!r} here"}, status=404)
        return web.Response(body=path.read_bytes(), content_type="application/pdf")

    async def guarded(request: web.Request) -> web.StreamResponse:
        return await check(request, label)

    async def guarded_note(request: web.Request) -> web.StreamResponse:
        return await check(request, note)

    app.router.add_get(NOTE, guarded_note)
    app.router.add_get(LABEL, guarded)
    return tokens
