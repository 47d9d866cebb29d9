"""A fake Magento 2 REST API with MSI, faithful to channel-contracts §3.

- Auth: ``Authorization: Bearer <integration token>`` on every route, else 401
  ``{"message": "The consumer isn't authorized to access %resources.", ...}``.
- ``GET /rest/<store>/V1/orders`` with ``searchCriteria`` (filter groups ANDed, conditions
  ``eq``, ``in``, ``gt``, ``gteq``, ``lt``, ``lteq``; ``sortOrders``; ``pageSize`` at most
  300; a ``currentPage`` past the end answers the last page again, as Magento does);
  ``{items, search_criteria, total_count}``. ``GET /V1/orders/{id}``,
  ``POST /V1/orders/{id}/cancel`` (``true``/``false``), ``POST /V1/orders/{id}/comments``.
- ``GET /V1/shipments`` and ``GET /V1/creditmemos`` (``searchCriteria`` on ``order_id``):
  a shipment deducts from its ``extension_attributes.source_code``; a credit memo lists
  ``extension_attributes.return_to_stock_items`` (order item ids put back in stock).
- ``POST /V1/inventory/source-items`` ``{"sourceItems": [...]}`` → ``[]``; Web API input
  limits (20 items) when ``input_limits`` is on; an unknown SKU or source fails the whole
  request with 400. ``GET /V1/inventory/source-items`` with ``searchCriteria``;
  ``GET /V1/inventory/get-product-salable-quantity/{sku}/{stockId}`` = the sum of the
  in-stock source items of the stock's sources less the reservations of open orders (one
  stock, whose sources are ``stock_sources``, all sources unless told).
- ``POST /async/bulk/V1/inventory/source-items`` (a list of request bodies, one operation
  each, at most 5,000) → 202 ``{bulk_uuid, request_items, errors}``; operations stay open (4)
  for ``bulk_delay_s`` then complete (1) or fail as ``bulk_fail`` said (2 retriably, 3 not);
  ``GET /V1/bulk/{uuid}/status`` and ``/detailed-status``.
- ``POST /V1/products/base-prices`` ``{"prices": [{sku, price, store_id}]}`` → ``[]``, or
  the refused items ``{message, parameters}`` inside the 200;
  ``POST /V1/products/base-prices-information`` ``{"skus": [...]}`` reads them back.
- No rate limit of its own; ``fail_next``/``storm``/``down`` (e.g. ``down(s, status=503)``)
  from the base imitate a host's WAF or an outage, 429 with ``Retry-After``.

Run alone: ``python -m connectors.testing.magento --port 8703``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import time
import uuid
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web

from connectors.testing.base import FakeChannel, Write, serve_forever

PREFIX = "/rest/{store}"
SYNC_LIMIT = 20
ASYNC_LIMIT = 5000
MAX_PAGE = 300


def magento_error(message: str, status: int, parameters: Any = None) -> web.Response:
    body: dict[str, Any] = {"message": message}
    if parameters is not None:
        body["parameters"] = parameters
    return web.json_response(body, status=status)


def _matches(value: Any, condition: str, wanted: str) -> bool:
    text = "" if value is None else str(value)
    if condition == "eq":
        return text == wanted
    if condition == "in":
        return text in wanted.split(",")
    if condition in ("gt", "gteq", "lt", "lteq"):
        ops: dict[str, Callable[[str, str], bool]] = {
            "gt": lambda a, b: a > b,
            "gteq": lambda a, b: a >= b,
            "lt": lambda a, b: a < b,
            "lteq": lambda a, b: a <= b,
        }
        try:  # numbers compare as numbers, Magento's timestamps as text (same format)
            return ops[condition](float(text), float(wanted))  # type: ignore[arg-type]
        except ValueError:
            return ops[condition](text, wanted)
    raise ValueError(condition)


class FakeMagento(FakeChannel):
    def __init__(
        self,
        *,
        token: str = "magento-token",  # noqa: S107
        sources: tuple[str, ...] = ("default",),
        stock_sources: tuple[str, ...] | None = None,
        input_limits: bool = True,
        bulk_delay_s: float = 0.3,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int | None = None,
    ) -> None:
        self.token = token
        self.sources = set(sources)
        self.stock_sources = set(sources if stock_sources is None else stock_sources)
        self.input_limits = input_limits
        self.bulk_delay_s = bulk_delay_s
        self.products: dict[str, float] = {}  # sku -> base price
        self.source_items: dict[tuple[str, str], dict[str, Any]] = {}
        self.orders: dict[int, dict[str, Any]] = {}
        self.shipments: dict[int, dict[str, Any]] = {}
        self.creditmemos: dict[int, dict[str, Any]] = {}
        self.bulks: dict[str, dict[str, Any]] = {}
        self.bulk_failures: dict[str, list[tuple[int, str]]] = {}
        self.price_writes: list[dict[str, Any]] = []
        self._ids = 1000
        self._clock_s = 0
        super().__init__(host=host, port=port, seed=seed)

    def routes(self) -> list[web.RouteDef]:
        v1 = PREFIX + "/V1"
        return [
            web.get(v1 + "/orders", self._list_orders),
            web.get(v1 + "/orders/{oid:\\d+}", self._get_order),
            web.post(v1 + "/orders/{oid:\\d+}/cancel", self._cancel_order),
            web.post(v1 + "/orders/{oid:\\d+}/comments", self._comment),
            web.get(v1 + "/shipments", self._list_shipments),
            web.get(v1 + "/creditmemos", self._list_creditmemos),
            web.get(v1 + "/inventory/source-items", self._list_source_items),
            web.get(
                v1 + "/inventory/get-product-salable-quantity/{sku}/{stock:\\d+}", self._salable
            ),
            web.post(v1 + "/inventory/source-items", self._save_source_items),
            web.post(PREFIX + "/async/bulk/V1/inventory/source-items", self._bulk_source_items),
            web.get(v1 + "/bulk/{uuid}/status", self._bulk_status),
            web.get(v1 + "/bulk/{uuid}/detailed-status", self._bulk_status),
            web.post(v1 + "/products/base-prices", self._base_prices),
            web.post(v1 + "/products/base-prices-information", self._read_prices),
        ]

    # ---- set-up and switches ---------------------------------------------------------
    def _next_id(self) -> int:
        self._ids += 1
        return self._ids

    def _now(self) -> str:
        """Magento's UTC time, one second later each call (second resolution)."""
        self._clock_s += 1
        return self.now_iso(self._clock_s, gmt_naive=True).replace("T", " ")

    def add_product(
        self, sku: str, qty: int = 0, source: str = "default", price: float = 10.0
    ) -> None:
        self.products[sku] = price
        self.source_items[(sku, source)] = {
            "sku": sku,
            "source_code": source,
            "quantity": float(qty),
            "status": 1 if qty > 0 else 0,
        }

    def quantity(self, sku: str, source: str = "default") -> int | None:
        item = self.source_items.get((sku, source))
        return None if item is None else int(item["quantity"])

    def reserved(self, sku: str) -> int:
        """MSI reservations still open for ``sku``: units of open orders not yet shipped,
        cancelled or refunded."""
        total = 0.0
        for order in self.orders.values():
            if order["state"] in ("complete", "canceled", "closed"):
                continue
            for i in order["items"]:
                if i["sku"] == sku:
                    unshipped_refund = max(0.0, i["qty_refunded"] - i["qty_shipped"])
                    total += i["qty_ordered"] - i["qty_shipped"] - i["qty_canceled"]
                    total -= unshipped_refund
        return int(total)

    def salable(self, sku: str) -> int:
        """``get-product-salable-quantity``: the quantities of the SKU's in-stock source items
        of every source in the stock, less the stock's reservations."""
        physical = sum(
            i["quantity"]
            for (s, source), i in self.source_items.items()
            if s == sku and i["status"] and source in self.stock_sources
        )
        return int(physical) - self.reserved(sku)

    def bulk_fail(self, sku: str, status: int, times: int = 1, message: str = "") -> None:
        """The next ``times`` bulk operations writing ``sku`` end with ``status`` (2: retriably
        failed, 3: failed, 5: rejected) instead of completing."""
        text = message or f"Could not save source item for {sku}"
        self.bulk_failures.setdefault(sku, []).extend([(status, text)] * times)

    def place_order(
        self, lines: list[tuple[str, int]], *, state: str = "processing", currency: str = "EUR"
    ) -> dict[str, Any]:
        """An order of ``(sku, qty)`` simple lines. Like Magento's payload it carries
        personal data (customer name and email, street and phone in the addresses)."""
        oid = self._next_id()
        now = self._now()
        items = []
        for sku, qty in lines:
            items.append(
                {
                    "item_id": self._next_id(),
                    "order_id": oid,
                    "sku": sku,
                    "name": sku,
                    "product_type": "simple",
                    "parent_item_id": None,
                    "price": self.products.get(sku, 10.0),
                    "qty_ordered": float(qty),
                    "qty_canceled": 0.0,
                    "qty_shipped": 0.0,
                    "qty_refunded": 0.0,
                }
            )
        address = {
            "firstname": "Ana",
            "lastname": "Lopez",
            "street": ["Calle Mayor 1"],
            "city": "Madrid",
            "postcode": "28013",
            "country_id": "ES",
            "telephone": "+34911111111",
            "company": "",
        }
        order = {
            "entity_id": oid,
            "increment_id": f"0000{oid}",
            "state": state,
            "status": state,
            "created_at": now,
            "updated_at": now,
            "order_currency_code": currency,
            "customer_id": 7,
            "customer_is_guest": 0,
            "customer_email": "ana.lopez@example.org",
            "customer_firstname": "Ana",
            "customer_lastname": "Lopez",
            "billing_address": dict(address),
            "items": items,
            "status_histories": [],
            "extension_attributes": {
                "shipping_assignments": [{"shipping": {"address": dict(address)}}]
            },
        }
        self.orders[oid] = order
        return order

    def _line(self, order: dict[str, Any], sku: str) -> dict[str, Any]:
        return next(i for i in order["items"] if i["sku"] == sku)

    def ship(
        self, oid: int, lines: dict[str, int] | None = None, *, source: str = "default"
    ) -> dict[str, Any]:
        """A shipment from ``source`` (all unshipped units unless ``lines``): the source
        deduction lowers the source items; the order turns ``complete`` when all shipped."""
        order = self.orders[oid]
        wanted = lines or {
            i["sku"]: int(i["qty_ordered"] - i["qty_shipped"] - i["qty_canceled"])
            for i in order["items"]
        }
        sid = self._next_id()
        now = self._now()
        items = []
        for sku, qty in wanted.items():
            line = self._line(order, sku)
            line["qty_shipped"] += qty
            items.append({"order_item_id": line["item_id"], "sku": sku, "qty": float(qty)})
            if (sku, source) in self.source_items:
                self.source_items[(sku, source)]["quantity"] -= qty
        shipment = {
            "entity_id": sid,
            "order_id": oid,
            "created_at": now,
            "items": items,
            "extension_attributes": {"source_code": source},
        }
        self.shipments[sid] = shipment
        if all(i["qty_shipped"] + i["qty_canceled"] >= i["qty_ordered"] for i in order["items"]):
            order["state"] = order["status"] = "complete"
        order["updated_at"] = now
        return shipment

    def refund(
        self,
        oid: int,
        lines: dict[str, int],
        *,
        return_to_stock: bool = True,
        source: str | None = None,
    ) -> dict[str, Any]:
        """A credit memo (``POST /V1/order/{id}/refund``); with ``return_to_stock`` its items
        are listed in ``return_to_stock_items`` and go back to ``source``, by default the
        source of the order's last shipment (``default`` when none shipped)."""
        order = self.orders[oid]
        if source is None:
            shipped = [s for s in self.shipments.values() if s["order_id"] == oid]
            source = shipped[-1]["extension_attributes"]["source_code"] if shipped else "default"
        mid = self._next_id()
        now = self._now()
        items, restock = [], []
        for sku, qty in lines.items():
            line = self._line(order, sku)
            line["qty_refunded"] += qty
            items.append({"order_item_id": line["item_id"], "sku": sku, "qty": float(qty)})
            if return_to_stock:
                restock.append(line["item_id"])
                if (sku, source) in self.source_items:
                    self.source_items[(sku, source)]["quantity"] += qty
        memo = {
            "entity_id": mid,
            "order_id": oid,
            "created_at": now,
            "items": items,
            "extension_attributes": {"return_to_stock_items": restock},
        }
        self.creditmemos[mid] = memo
        if all(i["qty_refunded"] >= i["qty_ordered"] for i in order["items"]):
            order["state"] = order["status"] = "closed"
        order["updated_at"] = now
        return memo

    def cancel(self, oid: int) -> bool:
        order = self.orders[oid]
        if order["state"] in ("complete", "closed", "canceled"):
            return False
        for line in order["items"]:
            line["qty_canceled"] = line["qty_ordered"] - line["qty_shipped"]
        order["state"] = order["status"] = "canceled"
        order["updated_at"] = self._now()
        return True

    # ---- protocol --------------------------------------------------------------------
    def throttled(self, retry_after: float) -> web.Response:
        return web.json_response(
            {"message": "Too Many Requests"}, status=429, headers={"Retry-After": str(retry_after)}
        )

    def failure(self, status: int, retry_after: float | None) -> web.Response:
        if status == 429:
            return self.throttled(1.0 if retry_after is None else retry_after)
        headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
        return web.json_response(
            {"message": "Service Unavailable" if status == 503 else "Internal Error"},
            status=status,
            headers=headers,
        )

    def _guard(self, request: web.Request) -> web.Response | None:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return magento_error(
                "The consumer isn't authorized to access %resources.",
                401,
                {"resources": "Magento_Sales::actions_view"},
            )
        return None

    def _search(self, request: web.Request, rows: list[dict[str, Any]]) -> web.Response:
        q = request.query
        filters = []
        n = 0
        while f"searchCriteria[filter_groups][{n}][filters][0][field]" in q:
            prefix = f"searchCriteria[filter_groups][{n}][filters][0]"
            filters.append(
                (
                    q[prefix + "[field]"],
                    q.get(prefix + "[condition_type]", "eq"),
                    q[prefix + "[value]"],
                )
            )
            n += 1
        try:
            found = [r for r in rows if all(_matches(r.get(f), c, v) for f, c, v in filters)]
        except ValueError as exc:
            return magento_error('Invalid condition type "%1"', 400, [str(exc)])
        sort = q.get("searchCriteria[sortOrders][0][field]")
        if sort:
            found.sort(
                key=lambda r: str(r.get(sort)),
                reverse=q.get("searchCriteria[sortOrders][0][direction]", "ASC") == "DESC",
            )
        size = int(q.get("searchCriteria[pageSize]", "20"))
        if size > MAX_PAGE:
            return magento_error(
                "Maximum SearchCriteria pageSize is %max", 400, {"max": str(MAX_PAGE)}
            )
        pages = max(1, -(-len(found) // size))
        page = min(int(q.get("searchCriteria[currentPage]", "1")), pages)  # past the end: last
        return web.json_response(
            {
                "items": found[(page - 1) * size : page * size],
                "search_criteria": {"current_page": page, "page_size": size},
                "total_count": len(found),
            }
        )

    async def _list_orders(self, request: web.Request) -> web.Response:
        return self._guard(request) or self._search(request, list(self.orders.values()))

    async def _order(self, request: web.Request) -> dict[str, Any] | None:
        return self.orders.get(int(request.match_info["oid"]))

    async def _get_order(self, request: web.Request) -> web.Response:
        if (denied := self._guard(request)) is not None:
            return denied
        order = await self._order(request)
        if order is None:
            return magento_error("The entity that was requested doesn't exist.", 404)
        return web.json_response(order)

    async def _cancel_order(self, request: web.Request) -> web.Response:
        if (denied := self._guard(request)) is not None:
            return denied
        order = await self._order(request)
        if order is None:
            return magento_error("The entity that was requested doesn't exist.", 404)
        return web.json_response(self.cancel(int(order["entity_id"])))

    async def _comment(self, request: web.Request) -> web.Response:
        if (denied := self._guard(request)) is not None:
            return denied
        order = await self._order(request)
        if order is None:
            return magento_error("The entity that was requested doesn't exist.", 404)
        body = await request.json()
        history = dict(body["statusHistory"])
        history["created_at"] = self._now()
        order["status_histories"].append(history)
        return web.json_response(True)

    async def _list_shipments(self, request: web.Request) -> web.Response:
        return self._guard(request) or self._search(request, list(self.shipments.values()))

    async def _list_creditmemos(self, request: web.Request) -> web.Response:
        return self._guard(request) or self._search(request, list(self.creditmemos.values()))

    async def _list_source_items(self, request: web.Request) -> web.Response:
        return self._guard(request) or self._search(request, list(self.source_items.values()))

    async def _salable(self, request: web.Request) -> web.Response:
        if (denied := self._guard(request)) is not None:
            return denied
        return web.json_response(self.salable(request.match_info["sku"]))

    def _invalid(self, item: dict[str, Any]) -> str | None:
        if item.get("sku") not in self.products:
            return f'Product with SKU "{item.get("sku")}" does not exist.'
        if item.get("source_code") not in self.sources:
            return f'Source with code "{item.get("source_code")}" does not exist.'
        if not isinstance(item.get("quantity"), int | float) or item.get("status") not in (0, 1):
            return "Source item quantity and status (0 or 1) are required."
        return None

    def _apply(self, item: dict[str, Any], key: str | None) -> None:
        sku, source = str(item["sku"]), str(item["source_code"])
        self.source_items[(sku, source)] = {
            "sku": sku,
            "source_code": source,
            "quantity": float(item["quantity"]),
            "status": int(item["status"]),
        }
        self.writes.append(
            Write(time.monotonic(), f"{sku}@{source}", sku, int(item["quantity"]), key)
        )

    async def _save_source_items(self, request: web.Request) -> web.Response:
        if (denied := self._guard(request)) is not None:
            return denied
        items = list((await request.json()).get("sourceItems") or [])
        if self.input_limits and len(items) > SYNC_LIMIT:
            return magento_error(
                'Maximum items of type "%type" is %max',
                400,
                {
                    "type": "\\Magento\\InventoryApi\\Api\\Data\\SourceItemInterface",
                    "max": SYNC_LIMIT,
                },
            )
        for item in items:
            if (problem := self._invalid(item)) is not None:
                return magento_error("Validation Failed: %1", 400, [problem])
        for item in items:
            self._apply(item, None)
        return web.json_response([])

    async def _bulk_source_items(self, request: web.Request) -> web.Response:
        if (denied := self._guard(request)) is not None:
            return denied
        bodies = await request.json()
        if not isinstance(bodies, list) or (self.input_limits and len(bodies) > ASYNC_LIMIT):
            return magento_error(
                "Bulk request must be a list of at most %1 items", 400, [ASYNC_LIMIT]
            )
        bulk_uuid = str(uuid.uuid4())
        operations = []
        for n, body in enumerate(bodies):
            operations.append(
                {
                    "id": n,
                    "status": 4,
                    "result_message": None,
                    "error_code": None,
                    "body": body,
                }
            )
        self.bulks[bulk_uuid] = {
            "operations": operations,
            "done_at": time.monotonic() + self.bulk_delay_s,
        }
        self.in_background(self._complete(bulk_uuid))
        return web.json_response(
            {
                "bulk_uuid": bulk_uuid,
                "request_items": [
                    {
                        "id": n,
                        "data_hash": hashlib.sha256(orjson.dumps(b)).hexdigest(),
                        "status": "accepted",
                    }
                    for n, b in enumerate(bodies)
                ],
                "errors": False,
            },
            status=202,
        )

    async def _complete(self, bulk_uuid: str) -> None:
        """The consumer ``async.operations.all`` runs the operations after the delay."""
        await asyncio.sleep(self.bulk_delay_s)
        for op in self.bulks[bulk_uuid]["operations"]:
            items = list((op["body"] or {}).get("sourceItems") or [])
            failures = [
                self.bulk_failures[i.get("sku")]
                for i in items
                if self.bulk_failures.get(i.get("sku"))
            ]
            if failures:
                op["status"], op["result_message"] = failures[0].pop(0)
                continue
            problem = next((p for i in items if (p := self._invalid(i)) is not None), None)
            if problem is not None:
                op["status"], op["result_message"] = 3, problem
                continue
            for item in items:
                self._apply(item, bulk_uuid)
            op["status"], op["result_message"] = 1, "Service execution success"

    async def _bulk_status(self, request: web.Request) -> web.Response:
        if (denied := self._guard(request)) is not None:
            return denied
        bulk = self.bulks.get(request.match_info["uuid"])
        if bulk is None:
            return magento_error(
                "Bulk uuid %bulkUuid not exist", 404, {"bulkUuid": request.match_info["uuid"]}
            )
        detailed = request.path.endswith("/detailed-status")
        ops = [
            {k: v for k, v in op.items() if k != "body" and (detailed or k in ("id", "status"))}
            for op in bulk["operations"]
        ]
        return web.json_response(
            {
                "operations_list": ops,
                "bulk_id": request.match_info["uuid"],
                "description": "Topic async.V1.inventory.source-items.POST",
                "operation_count": len(ops),
            }
        )

    async def _base_prices(self, request: web.Request) -> web.Response:
        if (denied := self._guard(request)) is not None:
            return denied
        prices = list((await request.json()).get("prices") or [])
        problems = []
        for price in prices:
            sku = price.get("sku")
            if sku not in self.products:
                problems.append(
                    {
                        "message": "Requested product doesn't exist. SKU: %sku.",
                        "parameters": {"sku": sku},
                    }
                )
            elif not isinstance(price.get("price"), int | float) or price["price"] < 0:
                problems.append(
                    {
                        "message": "Invalid attribute %fieldName = %fieldValue.",
                        "parameters": {
                            "fieldName": "Price",
                            "fieldValue": price.get("price"),
                            "sku": sku,
                        },
                    }
                )
            else:
                self.products[sku] = float(price["price"])
                self.price_writes.append(dict(price))
        return web.json_response(problems)

    async def _read_prices(self, request: web.Request) -> web.Response:
        if (denied := self._guard(request)) is not None:
            return denied
        skus = list((await request.json()).get("skus") or [])
        return web.json_response(
            [
                {"sku": sku, "price": self.products[sku], "store_id": 0}
                for sku in skus
                if sku in self.products
            ]
        )


def main() -> None:
    parser = argparse.ArgumentParser(description="Fake Magento 2 REST API (MSI) for demos")
    parser.add_argument("--port", type=int, default=8703)
    args = parser.parse_args()
    fake = FakeMagento(port=args.port)
    for sku in ("chair", "table", "lamp"):
        fake.add_product(sku, 100)
    asyncio.run(serve_forever(fake, "fake Magento (token magento-token)"))


if __name__ == "__main__":
    main()
