"""HTTP API of the order book, on the worker: orders in, orders read, operators' actions.

- ``POST /v1/orders``: one order or an array (at most :data:`MAX_ORDERS`), each built and
  checked by :mod:`schemas.orders`; the valid ones are published to ``orders.v1`` keyed by
  order id (``channel:id``), each refused one gets its reasons in the answer and a
  dead-letter record (its JSON with personal fields removed), never stopping the others.
  202 when all are accepted, 400 with the per-item results otherwise (as ``/v1/events``).
  Accepted means published: the order book dedupes a repeat by its event id
  (``channel:id:placed``), so posting an order twice places it once.
- ``GET /v1/orders/{order_id}``: the order's state, lines and history, answered by the
  worker owning the order id's partition (forwarded there, :mod:`streams.worker.routing`).
- ``GET /v1/orders?status=&channel=&limit=``: the orders with that status (the exception
  queue: ``status=exception``), longest unchanged first. Each worker's table holds its own
  partitions, so the worker asked lists its own and asks every other worker of the group
  for theirs (fan-out, forwarded requests answer from their own table only); the answer
  says which partitions of orders.v1 it covers, and ``complete: false`` with the workers
  that did not answer.
- ``POST /v1/orders/{order_id}/approve|reject|reroute|cancel``: an operator's action event
  on ``orders.v1`` (``by`` = the token's name, optional ``note``, ``location`` for reroute),
  202; 404 when the owner's table does not hold the order, 409 when its status does not take
  the action (:data:`schemas.orders.ACTIONABLE`; the book applies the same table, so an
  action racing a transition is recorded by the book, not applied).

The order book's table is read through :class:`~streams.worker.order_reads.OrderBookView`;
without one (a worker not running the order agent) the reads and actions answer 503.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import faust
import orjson
from faust import web
from yarl import URL

from schemas.codec import Codec
from schemas.loader import current_schemas
from schemas.orders import ACTIONABLE, ACTIONS, MAX_TEXT, InvalidOrder, action_event, from_json
from schemas.orders import redacted as without_personal_data
from schemas.times import now_ms
from streams.kernel.access.guard import principal_of
from streams.kernel.audit import note
from streams.kernel.deadletter import dead_letter
from streams.kernel.topics import ORDERS, STOCK_DEADLETTER
from streams.worker import metrics
from streams.worker.order_reads import MAX_LIST, OrderBookView, order_answer, order_summary
from streams.worker.order_reads import sort_key as state_order
from streams.worker.registry import resolve_off_loop
from streams.worker.routing import FORWARDED, SERVED_BY, answer_from_owner, ask_others

MAX_ORDERS = 1000  # orders in one POST /v1/orders
DEFAULT_LIST = 100
COMPONENT = "orders-api"
# Channels whose orders only their connector publishes: an API order of theirs would take
# the connector's order ids (shopify:1001) and could place or shadow a real order.
CONNECTOR_CHANNELS = frozenset({"shopify", "woocommerce"})
Record = tuple[str, bytes, bytes]  # topic, key, value
Publish = Callable[[list[Record]], Awaitable[None]]


def _statuses() -> frozenset[str]:
    fields = {f["name"]: f for f in current_schemas()["stockflow.v1.OrderState"].raw["fields"]}
    kind = fields["status"]["type"]
    return frozenset(kind["symbols"])


STATUSES = _statuses()


def producer_publish(app: faust.App) -> Publish:
    """Records sent through the worker's (idempotent) producer, all acknowledged."""

    async def publish(records: list[Record]) -> None:
        futures = [
            await app.producer.send(topic, key, value, None, None, None)
            for topic, key, value in records
        ]
        for future in futures:
            await future

    return publish


def register_order_views(
    app: faust.App,
    codec: Codec,
    book: OrderBookView | None,
    *,
    table: Any = None,
    publish: Publish | None = None,
    reserved_channels: frozenset[str] = CONNECTOR_CHANNELS,
) -> None:
    """The orders routes on ``app``. ``book`` reads the order table, ``table`` is that Faust
    table (requests by order id go to its owner, lists fan out to its workers; None: every
    request is served here), ``publish`` sends records (default: the app's producer)."""
    send = publish or producer_publish(app)

    def here() -> dict[str, str]:
        return {SERVED_BY: str(app.conf.canonical_url)}

    def no_book(view: web.View) -> web.Response:
        error = "the order book does not run on this worker; retry on a worker that runs it"
        return view.json({"error": error}, status=503, headers={"Retry-After": "5"})

    async def refuse_items(refused: list[tuple[Any, list[InvalidOrder]]]) -> list[Record]:
        records = []
        for item, problems in refused:
            order_id = _order_id(item)
            record = dead_letter(
                metrics.DEAD_LETTERS,
                component=COMPONENT,
                reason=problems[0].reason,
                error="; ".join(p.message for p in problems),
                original=orjson.dumps(without_personal_data(item), default=str),
                topic=ORDERS.name,
                event_id=order_id,
            )
            value = codec.encode(STOCK_DEADLETTER.value_schema, record)
            records.append((STOCK_DEADLETTER.name, ORDERS.name.encode(), value))
        return records

    @app.page("/v1/orders")
    class Orders(web.View):
        async def post(self, request: web.Request) -> web.Response:
            body = _json(self, await request.read())
            if isinstance(body, web.Response):
                return body
            items = body if isinstance(body, list) else [body]
            if len(items) > MAX_ORDERS:
                return self.json({"error": f"at most {MAX_ORDERS} orders per request"}, status=413)
            noted = note(request)
            noted.add(ids=[_order_id(i) for i in items])
            noted.items = len(items)
            source = principal_of(request).default_source
            received = now_ms()
            results: list[dict[str, Any]] = []
            records: list[Record] = []
            refused: list[tuple[Any, list[InvalidOrder]]] = []
            await resolve_off_loop(codec)
            for index, item in enumerate(items):
                order, problems = from_json(item, source=source, received=received)
                if order is not None and order["channel"] in reserved_channels:
                    problems = [_reserved(order["channel"])]
                    order = None
                if order is None:
                    refused.append((item, problems))
                    results.append(
                        {
                            "index": index,
                            "status": "rejected",
                            "reasons": sorted({p.reason for p in problems}),
                            "errors": [p.message for p in problems],
                        }
                    )
                    continue
                value = codec.encode(ORDERS.value_schema, order)
                records.append((ORDERS.name, order["order_id"].encode(), value))
                results.append(
                    {"index": index, "status": "accepted", "order_id": order["order_id"]}
                )
            await send(records + await refuse_items(refused))
            metrics.API_REJECTED.labels(route="/v1/orders").inc(len(refused))
            answer: dict[str, Any] = {
                "accepted": len(items) - len(refused),
                "rejected": len(refused),
                "results": results,
            }
            if not refused:
                return self.json(answer, status=202)
            answer["error"] = (
                f"{len(refused)} of {len(items)} orders refused: see the errors of each in "
                "results; the others were accepted"
            )
            return self.json(answer, status=400)

        async def get(self, request: web.Request) -> web.Response:
            query, errors = _list_query(request.query)
            if errors:
                return self.json({"errors": errors}, status=400)
            if book is None:
                return no_book(self)
            status, channel, limit = query
            found = [order_summary(s) for s in book.list(status, channel, limit)]
            partitions = set(_own_partitions(app, table))
            missing: list[str] = []
            if table is not None and FORWARDED not in request.headers:
                answers, missing = await ask_others(app, table, request)
                for _, other in answers:
                    found.extend(other.get("orders") or ())
                    partitions.update(other.get("partitions") or ())
            found = sorted(found, key=state_order)[:limit]
            answer = {
                "orders": found,
                "count": len(found),
                "partitions": sorted(partitions),
                "complete": not missing,
                "missing": missing,
            }
            return self.json(answer, headers=here())

    @app.page("/v1/orders/{order_id}")
    class Order(web.View):
        async def get(self, request: web.Request, order_id: str) -> web.Response:
            if table is not None:
                routed = await answer_from_owner(self, app, table, order_id, request, what="order")
                if routed is not None:
                    return routed
            if book is None:
                return no_book(self)
            state = book.get(order_id)
            if state is None:
                error = f"unknown order {order_id!r}"
                return self.json({"error": error}, status=404, headers=here())
            return self.json(order_answer(state), headers=here())

    def action_view(action: str, kind: str) -> type[web.View]:
        class Action(web.View):
            async def post(self, request: web.Request, order_id: str) -> web.Response:
                raw = await request.read()
                body = _json(self, raw) if raw.strip() else {}
                if isinstance(body, web.Response):
                    return body
                note(request).add(ids=[order_id])
                errors = _action_errors(body, kind)
                if errors:
                    return self.json({"errors": errors}, status=400)
                if table is not None:
                    routed = await answer_from_owner(
                        self, app, table, order_id, request, raw, what="order"
                    )
                    if routed is not None:
                        return routed
                if book is None:
                    return no_book(self)
                state = book.get(order_id)
                if state is None:
                    error = f"unknown order {order_id!r}"
                    return self.json({"error": error}, status=404, headers=here())
                status = state.get("status")
                if status not in ACTIONABLE[kind]:
                    takes = ", ".join(sorted(ACTIONABLE[kind]))
                    error = (
                        f"order {order_id!r} is {status}: {action} takes an order that is {takes}"
                    )
                    return self.json({"error": error, "status": status}, status=409, headers=here())
                principal = principal_of(request)
                try:
                    event = action_event(
                        kind,
                        order_id,
                        by=principal.name,
                        note=body.get("note"),
                        location=body.get("location"),
                        placed_at=int(state.get("placed_at") or now_ms()),
                        source=principal.default_source,
                    )
                except InvalidOrder as exc:
                    return self.json({"errors": [exc.message]}, status=400)
                await resolve_off_loop(codec)
                value = codec.encode(ORDERS.value_schema, event)
                await send([(ORDERS.name, order_id.encode(), value)])
                note(request).add(ids=[event["event_id"]])
                answer = {
                    "order_id": order_id,
                    "action": action,
                    "event_id": event["event_id"],
                    "status": "requested",
                    "order_status": status,
                }
                return self.json(answer, status=202, headers=here())

        Action.__name__ = f"Order{action.title()}"
        return Action

    for action, kind in ACTIONS.items():
        app.page(f"/v1/orders/{{order_id}}/{action}")(action_view(action, kind))


def _json(view: web.View, raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return view.json({"error": f"body is not JSON: {exc}"}, status=400)


def _order_id(item: Any) -> str | None:
    """The order id an item names (``channel:id``), for the audit and dead letters."""
    if not isinstance(item, Mapping):
        return None
    channel, own = item.get("channel"), item.get("order_id")
    if isinstance(channel, str) and isinstance(own, str):
        return own if own.startswith(f"{channel}:") else f"{channel}:{own}"
    return None


def _reserved(channel: str) -> InvalidOrder:
    return InvalidOrder(
        "connector_channel",
        f"channel: {channel!r} orders come from its connector only; post this system's "
        "orders under its own channel name",
    )


def _list_query(query: Mapping[str, str]) -> tuple[tuple[str | None, str | None, int], list[str]]:
    errors = []
    unknown = sorted(set(query) - {"status", "channel", "limit"})
    if unknown:
        errors.append(f"unknown parameter(s): {', '.join(unknown)}")
    status = query.get("status")
    if status is not None and status not in STATUSES:
        errors.append(f"status: {status!r} is not one of {', '.join(sorted(STATUSES))}")
    channel = query.get("channel") or None
    if channel is not None and len(channel) > MAX_TEXT:
        errors.append(f"channel: longer than {MAX_TEXT} characters")
    raw_limit = query.get("limit", str(DEFAULT_LIST))
    limit = int(raw_limit) if raw_limit.isdigit() else 0
    if not 1 <= limit <= MAX_LIST:
        errors.append(f"limit: a whole number from 1 to {MAX_LIST}")
    return (status, channel, limit), errors


def _action_errors(body: Any, kind: str) -> list[str]:
    if not isinstance(body, dict):
        return ["body: a JSON object {note?, location?} or nothing"]
    errors = []
    allowed = {"note", "location"} if kind == "rerouted" else {"note"}
    unknown = sorted(set(body) - allowed)
    if unknown:
        errors.append(
            f"unknown field(s): {', '.join(unknown)} "
            f"(this action takes {', '.join(sorted(allowed))})"
        )
    for name in allowed:
        value = body.get(name)
        if value is not None and (
            not isinstance(value, str) or not value.strip() or len(value) > MAX_TEXT
        ):
            errors.append(f"{name}: a non-empty string of at most {MAX_TEXT} characters")
    return errors


def _own_partitions(app: faust.App, table: Any) -> list[int]:
    """The partitions of ``table`` (co-partitioned with orders.v1) this worker holds, as the
    group's assignment says (empty before any assignment, or without a table)."""
    if table is None:
        return []
    topic = table.changelog_topic.get_topic_name()
    here = URL(str(app.conf.canonical_url))
    for url, topics in app.router.tables_metadata().items():
        owner = URL(str(url))
        if (owner.host, owner.port) == (here.host, here.port):
            return sorted(topics.get(topic) or ())
    return []
