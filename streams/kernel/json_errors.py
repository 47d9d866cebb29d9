"""Every error of the HTTP APIs answers JSON ``{"error": ...}``, whatever raised it.

aiohttp answers a route it does not know (404), a method a route lacks (405) or a body over
its limit (413) in plain text, and an exception a handler let through as a bare 500. This
middleware turns each into the same JSON shape as the handlers' own refusals, so a client
always finds a message under ``error``. A handler's exception is logged with its route and
answered 500 without its text (which could carry request data).
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from aiohttp import web

log = logging.getLogger("stockflow.http")


def _json(status: int, message: str, headers: Any = None) -> web.Response:
    body = orjson.dumps({"error": message})
    response = web.Response(body=body, status=status, content_type="application/json")
    for name in ("Allow", "Retry-After", "WWW-Authenticate"):
        if headers is not None and name in headers:
            response.headers[name] = headers[name]
    return response


@web.middleware
async def json_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400 or exc.content_type == "application/json":
            raise
        message = exc.reason
        if exc.status == 405:
            message += f"; allowed: {exc.headers.get('Allow', '')}"
        return _json(exc.status, message, exc.headers)
    except Exception:
        route = getattr(getattr(request.match_info.route, "resource", None), "canonical", "?")
        log.exception("%s %s: unexpected error answering the request", request.method, route)
        return _json(500, "internal error; the service log has the details")
