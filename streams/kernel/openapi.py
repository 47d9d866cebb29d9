"""The OpenAPI 3 documents of the HTTP APIs, served at ``/openapi.json``.

Each service keeps its document as a JSON file beside its routes; :func:`undocumented`
compares a document with the routes an aiohttp router really serves, so a route added
without documentation (or documented but gone) is found by the tests.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from aiohttp import web

PATH = "/openapi.json"
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})  # HEAD/OPTIONS follow GET/CORS


@cache
def load(path: Path) -> dict[str, Any]:
    document = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(document, dict) and str(document.get("openapi", "")).startswith("3.")
    return document


def documented(document: dict[str, Any]) -> set[tuple[str, str]]:
    """(METHOD, path) of every operation in ``document``."""
    return {
        (method.upper(), path)
        for path, item in document.get("paths", {}).items()
        for method in item
        if method.upper() in METHODS
    }


def served(router: web.UrlDispatcher) -> set[tuple[str, str]]:
    """(METHOD, path template) of every route of ``router``."""
    found = set()
    for route in router.routes():
        resource = route.resource
        if route.method in METHODS and resource is not None:
            found.add((route.method, resource.canonical))
    return found


def undocumented(router: web.UrlDispatcher, document: dict[str, Any]) -> list[str]:
    """What differs between ``router`` and ``document``; empty when they match."""
    routes, operations = served(router), documented(document)
    return [f"served, not documented: {m} {p}" for m, p in sorted(routes - operations)] + [
        f"documented, not served: {m} {p}" for m, p in sorted(operations - routes)
    ]


def handler(path: Path) -> Any:
    """An aiohttp handler answering the document at ``path``."""

    async def openapi(request: web.Request) -> web.Response:
        return web.json_response(load(path))

    return openapi
