"""Requests for a key (a SKU, an order id) answered by the worker owning its partition,
wherever they arrive.

Every worker of the group advertises its URL (``STOCKFLOW_WORKER_URL``, Faust's
``canonical_url``) in the group's assignment; Faust's router maps a SKU's table partition to
its owner's URL (the order table's the same for an order id). A request for a key another
worker owns is sent there once, with its method,
path, query, body and end-to-end headers (``Authorization`` and ``Idempotency-Key``
included, as they came), marked with :data:`FORWARDED`; the owner's status, body and type
are answered as they are. Faust's own ``table_route`` is not used: it sends a copy of every
header (``Host``, ``Content-Length`` included) and no body, answers its owner's body
re-decoded as text, fails with a 500 when the owner does not answer, and a request bounces
for as long as two workers disagree on the owner during a rebalance.

A request carrying :data:`FORWARDED` is served where it arrives (so it never bounces), from
that worker's table.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import aiohttp
import faust
from faust import web
from yarl import URL

FORWARDED = "X-Stockflow-Forwarded"  # set on a request forwarded to the SKU's owner
# on a stock answer: the advertised URL of the worker whose table answered (its owner)
SERVED_BY = "X-Stockflow-Served-By"
FORWARD_TIMEOUT_S = 30.0  # longer than any answer a worker waits for (``?wait=1``: 5 s)
RETRY_AFTER_S = 1
# RFC 9110 7.6.1: meaningful for one connection only; Host and Content-Length are the new
# request's own
_NOT_FORWARDED = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        FORWARDED.lower(),
    }
)


def forwarded_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The headers a forwarded request carries: the caller's end-to-end headers as they came
    (``Authorization``, ``Idempotency-Key``, ``Content-Type``...), and :data:`FORWARDED`."""
    kept = {name: value for name, value in headers.items() if name.lower() not in _NOT_FORWARDED}
    kept[FORWARDED] = "1"
    return kept


def owner_url(app: faust.App, table: Any, key: str) -> URL | None:
    """The URL of the worker owning ``key``'s partition of ``table`` (keyed by the key's
    UTF-8 bytes); None when it is this worker.

    KeyError while the group assigns partitions (no owner known yet)."""
    owner: URL = app.router.key_store(table.name, key.encode())
    here = URL(str(app.conf.canonical_url))
    if (owner.host, owner.port) == (here.host, here.port):
        return None
    return owner


async def answer_from_owner(
    view: web.View,
    app: faust.App,
    table: Any,
    key: str,
    request: web.Request,
    body: bytes = b"",
    what: str = "SKU",
) -> web.Response | None:
    """The owner's answer to ``request`` when another worker owns ``key`` (a ``what``: SKU,
    order) in ``table``; None when this worker serves it (it owns the key, or the request
    was forwarded to it)."""
    if FORWARDED in request.headers:
        return None
    try:
        owner = owner_url(app, table, key)
    except KeyError:
        return _unavailable(view, "partitions are being assigned; retry in a moment")
    if owner is None:
        return None
    if not owner.host:
        return _unavailable(view, f"the owner of {what} {key!r} advertises no host ({owner})")
    url = request.url.with_scheme(owner.scheme).with_host(owner.host).with_port(owner.port)
    try:
        async with app.http_client.request(
            request.method,
            url,
            data=body or None,
            headers=forwarded_headers(request.headers),
            timeout=aiohttp.ClientTimeout(total=FORWARD_TIMEOUT_S),
            allow_redirects=False,
        ) as answer:
            kept = {SERVED_BY: answer.headers[SERVED_BY]} if SERVED_BY in answer.headers else {}
            return view.bytes(
                await answer.read(),
                content_type=answer.content_type,
                status=answer.status,
                headers=kept,
            )
    except (aiohttp.ClientError, TimeoutError) as exc:
        return _unavailable(
            view,
            f"the worker owning {what} {key!r} ({owner.origin()}) did not answer "
            f"({type(exc).__name__}); retry in a moment, when it is back or its partitions "
            "have moved",
        )


def _unavailable(view: web.View, message: str) -> web.Response:
    return view.json({"error": message}, status=503, headers={"Retry-After": str(RETRY_AFTER_S)})


def other_workers(app: faust.App, table: Any) -> list[URL]:
    """The URLs of the group's other workers holding partitions of ``table``."""
    topic = table.changelog_topic.get_topic_name()
    here = URL(str(app.conf.canonical_url))
    found = []
    for url, topics in app.router.tables_metadata().items():
        owner = URL(str(url))
        if topics.get(topic) and (owner.host, owner.port) != (here.host, here.port):
            found.append(owner)
    return sorted(found, key=str)


async def ask_others(
    app: faust.App, table: Any, request: web.Request
) -> tuple[list[tuple[URL, Any]], list[str]]:
    """``request`` (a GET) asked of every other worker holding partitions of ``table``,
    marked :data:`FORWARDED` so each answers from its own table: (URL, JSON body) of the
    workers that answered 200, and the origins of those that did not."""
    answers: list[tuple[URL, Any]] = []
    missing: list[str] = []

    async def ask(owner: URL) -> None:
        url = request.url.with_scheme(owner.scheme).with_host(owner.host or "")
        try:
            async with app.http_client.get(
                url.with_port(owner.port),
                headers=forwarded_headers(request.headers),
                timeout=aiohttp.ClientTimeout(total=FORWARD_TIMEOUT_S),
                allow_redirects=False,
            ) as answer:
                if answer.status == 200:
                    answers.append((owner, await answer.json()))
                    return
        except (aiohttp.ClientError, TimeoutError, ValueError):
            pass
        missing.append(str(owner.origin()))

    await asyncio.gather(*(ask(owner) for owner in other_workers(app, table)))
    return answers, sorted(missing)
