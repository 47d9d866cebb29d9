"""``GET /v1/exceptions``: the order lines the ledger refused and a human should look at.

A JSON list, oldest first, of ``{channel, order_id, line_id, sku, qty, reason, action, at}``
(``error`` too when the channel could not be told): the channel's own ids only, no
customer data. It lists the lines of channels with ``on_refusal: flag``, and any refusal
whose channel action kept failing. It is kept in memory (the last 10,000).
"""

from __future__ import annotations

from aiohttp import web

from connectors.framework.refusals import ExceptionsView


def exceptions_routes(view: ExceptionsView) -> list[web.RouteDef]:
    async def list_exceptions(request: web.Request) -> web.Response:
        return web.json_response(view.rows())

    return [web.get("/v1/exceptions", list_exceptions)]
