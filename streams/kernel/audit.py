"""The access audit of the HTTP APIs: one ``stockflow.audit.v1`` record per write.

A write is a request with a method that changes something (POST, PUT, PATCH, DELETE),
whatever its answer: refused ones (4xx) are audited too. The record says who (the
principal the authentication layer put on the request, else ``anonymous``), what (route
template and action, the SKUs and ids the request named, at most :data:`MAX_LISTED` of
each), when (the request's arrival) and the status answered. It never holds the request
body, a header, a token or personal data: handlers hand over only SKUs and ids, through
:func:`note`.

The record is sent before the answer leaves (so a client that saw an answer can find its
record), and a failed send is logged, never turned into a failed request.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from schemas.times import now_ms

log = logging.getLogger("stockflow.audit")

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# The authentication layer's principal (an object with ``.name``), under this string key
# or an ``aiohttp.web.RequestKey`` of this name.
PRINCIPAL = "stockflow.principal"
ANONYMOUS = "anonymous"
MAX_LISTED = 20  # SKUs, and ids, named in one record
MAX_TEXT = 100  # characters kept of one SKU or id
UNMATCHED = "(no route)"  # the route of a request no route matched: its path is not kept
CANCELLED = 499  # the client went away before an answer (nginx's number for it)

Send = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass
class AuditNote:
    """What a handler says about its request: the SKUs and ids named, how many items."""

    skus: list[str] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    items: int = 0

    def add(self, skus: Iterable[Any] = (), ids: Iterable[Any] = ()) -> None:
        self.skus.extend(s for s in skus if isinstance(s, str))
        self.ids.extend(i for i in ids if isinstance(i, str))


NOTE = web.RequestKey("stockflow.audit", AuditNote)  # a handler's note on its request


def note(request: Any) -> AuditNote:
    """The request's note, created on first use (``request`` is an aiohttp request)."""
    found = request.get(NOTE)
    if not isinstance(found, AuditNote):
        found = AuditNote()
        request[NOTE] = found
    return found


def who(request: Any) -> str:
    """The name of the request's principal, or ``anonymous``."""
    principal = request.get(PRINCIPAL)
    if principal is None:
        named = (k for k in request if isinstance(k, web.RequestKey) and _is_principal(k))
        principal = request.get(next(named, None))
    name = getattr(principal, "name", None)
    return name[:MAX_TEXT] if isinstance(name, str) and name else ANONYMOUS


def _is_principal(key: web.RequestKey[Any]) -> bool:
    return str(getattr(key, "_name", "")).endswith(PRINCIPAL)  # prefixed by its module


def route_of(request: web.Request) -> str:
    """The route template that matched (``/v1/holds/{hold_id}``), never the raw path."""
    resource = getattr(request.match_info.route, "resource", None)
    canonical = getattr(resource, "canonical", None)
    return canonical if isinstance(canonical, str) else UNMATCHED


def _short(values: list[str]) -> list[str]:
    return [v[:MAX_TEXT] for v in dict.fromkeys(values)][:MAX_LISTED]


def audit_record(
    *,
    service: str,
    who: str,
    method: str,
    route: str,
    action: str,
    status: int,
    at: int,
    noted: AuditNote | None = None,
    forwarded: bool = False,
) -> dict[str, Any]:
    """An AuditRecord (``schemas/AuditRecord.avsc``)."""
    noted = noted or AuditNote()
    return {
        "audit_id": uuid.uuid4().hex,
        "at": at,
        "service": service,
        "who": who,
        "method": method,
        "route": route,
        "action": action,
        "skus": _short(noted.skus),
        "ids": _short(noted.ids),
        "items": max(0, min(noted.items, 2**31 - 1)),
        "status": status,
        "forwarded": forwarded,
    }


def audit_middleware(
    service: str,
    send: Send,
    actions: Mapping[tuple[str, str], str],
    *,
    forwarded_header: str | None = None,
) -> Any:
    """An aiohttp middleware auditing every write of ``service`` through ``send``.

    ``actions`` names the action of a (method, route template); others are called
    ``<method> <route>``. ``forwarded_header`` marks requests another instance forwarded.
    """

    @web.middleware
    async def audit(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.method not in WRITE_METHODS:
            return await handler(request)
        at = now_ms()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        except asyncio.CancelledError:
            status = CANCELLED
            raise
        finally:
            route = route_of(request)
            method = request.method
            record = audit_record(
                service=service,
                who=who(request),
                method=method,
                route=route,
                action=actions.get((method, route), f"{method.lower()} {route}"),
                status=status,
                at=at,
                noted=request.get(NOTE),
                forwarded=forwarded_header is not None and forwarded_header in request.headers,
            )
            if status == CANCELLED:  # this task is being cancelled: send from another one
                _pending.add(task := asyncio.ensure_future(_send(send, record)))
                task.add_done_callback(_pending.discard)
            else:
                await _send(send, record)

    return audit


_pending: set[asyncio.Future[None]] = set()


async def _send(send: Send, record: dict[str, Any]) -> None:
    try:
        await send(record)
    except Exception as exc:
        log.error(
            "audit record not written (%s %s -> %s by %s): %s: %s",
            record["method"],
            record["route"],
            record["status"],
            record["who"],
            type(exc).__name__,
            exc,
        )
