"""A fake Shopify Admin API and webhook sender, faithful to docs/reference channel-contracts §1.

- ``POST /admin/api/{version}/graphql.json``: ``inventorySetQuantities`` (absolute, with
  ``changeFromQuantity`` compare-and-set and the ``@idempotent(key:)`` cache) and a
  ``nodes(ids:)`` read of ``InventoryItem.inventoryLevel(locationId:)``; a cost bucket with
  ``extensions.cost.throttleStatus`` on every answer and ``THROTTLED`` errors.
- ``GET /admin/api/{version}/orders.json?updated_at_min=``: REST, under the 40 / 2 per s
  leaky bucket with ``X-Shopify-Shop-Api-Call-Limit`` and 429 + ``Retry-After``; at most 250
  per page, further pages through the ``Link: <…page_info=…>; rel="next"`` cursor.
- ``GET /admin/api/{version}/orders/{id}.json?fields=``: one order (only ``fields`` when
  given), same bucket; 404 ``{"errors": "Not Found"}`` for an unknown order.
- ``orderCancel`` (reason, ``refund``, ``restock``, ``notifyCustomer``, ``staffNote``; an
  order already cancelled or unknown is a user error, and cancelling sends
  ``orders/cancelled``), ``tagsAdd`` on orders, and the ``order(id:)`` read of its risk
  assessments.
- Prices and inventory policies: ``productVariantsBulkUpdate(productId, variants: [{id,
  price, inventoryPolicy}])`` (all or nothing: an unknown variant, a bad price or a policy
  other than ``DENY``/``CONTINUE`` is a user error and nothing changes) and the
  ``nodes(ids:)`` read of ``ProductVariant.price``.
- Returns: ``create_return()``/``dispose()`` and the GraphQL ``reverseFulfillmentOrder``
  read of its order and lines (``reverse_fulfillment_orders/dispose`` names only those).
- Orders carry ``fulfillments[]``; ``fulfil()`` ships lines (partially or not) from a
  location and returns the ``fulfillments/create`` payload.
- Webhooks signed with ``X-Shopify-Hmac-Sha256``; retries keep the ``X-Shopify-Webhook-Id``;
  ``inventory_levels/update`` echoes every write.

Run alone: ``python -m connectors.testing.shopify --port 8701``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import re
import time
import uuid
from typing import Any

import orjson
from aiohttp import web

from connectors.framework.signing import sign
from connectors.testing.base import FakeChannel, SentWebhook, Write, serve_forever

ITEM_GID = "gid://shopify/InventoryItem/"
LOCATION_GID = "gid://shopify/Location/"
VARIANT_GID = "gid://shopify/ProductVariant/"
PRODUCT_GID = "gid://shopify/Product/"
_MONEY = re.compile(r"\d+(\.\d{1,2})?")
_IDEMPOTENT = re.compile(r'@idempotent\(\s*key:\s*(?:"([^"]+)"|\$(\w+))\s*\)')


ORDER_GID = "gid://shopify/Order/"
RFO_GID = "gid://shopify/ReverseFulfillmentOrder/"
FO_GID = "gid://shopify/FulfillmentOrder/"
FO_LINE_GID = "gid://shopify/FulfillmentOrderLineItem/"


def _gid_int(gid: str, prefix: str) -> int:
    return int(gid[len(prefix) :]) if gid.startswith(prefix) and gid[len(prefix) :].isdigit() else 0


def gid_id(gid: str, prefix: str) -> int:
    if not gid.startswith(prefix):
        raise ValueError(gid)
    return int(gid[len(prefix) :])


class FakeShopify(FakeChannel):
    def __init__(
        self,
        *,
        shop: str = "demo.myshopify.com",
        token: str = "shpat_test",  # noqa: S107
        api_version: str = "2026-01",
        webhook_secret: str = "shopify-secret",  # noqa: S107
        webhook_target: str | None = None,
        gql_capacity: float = 1000.0,
        gql_restore: float = 50.0,
        rest_capacity: int = 40,
        rest_leak: float = 2.0,
        throttle_status: int = 200,
        webhook_retries: int = 8,
        webhook_retry_delay: float = 0.05,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int | None = None,
    ) -> None:
        self.shop = shop
        self.token = token
        self.api_version = api_version
        self.webhook_secret = webhook_secret
        self.webhook_target = webhook_target
        self.gql_capacity = gql_capacity
        self.gql_restore = gql_restore
        self._gql_available = gql_capacity
        self._gql_at = time.monotonic()
        self.rest_capacity = rest_capacity
        self.rest_leak = rest_leak
        self._rest_level = 0.0
        self._rest_at = time.monotonic()
        self.throttle_status = throttle_status
        self.webhook_retries = webhook_retries
        self.webhook_retry_delay = webhook_retry_delay
        self.stock: dict[tuple[int, int], int] = {}
        self.skus: dict[int, str] = {}  # inventory item id -> sku
        self.variants: dict[int, int] = {}  # variant id -> inventory item id
        self.products: dict[int, int] = {}  # variant id -> product id
        self.prices: dict[int, str] = {}  # variant id -> price (shop currency, "19.99")
        self.price_writes: list[tuple[int, str]] = []  # (variant id, price) applied
        # variant id -> inventoryPolicy: DENY (Shopify's default) stops selling at 0,
        # CONTINUE sells on (pre-orders / backorders)
        self.policies: dict[int, str] = {}
        self.policy_writes: list[tuple[int, str]] = []  # (variant id, policy) applied
        self.non_mutable: set[int] = set()  # e.g. bundle parents: writes refused
        self.orders: dict[int, dict[str, Any]] = {}
        self.idempotency: dict[str, tuple[bytes, dict[str, Any]]] = {}
        self.replays = 0
        self.cancellations: list[dict[str, Any]] = []  # orderCancel calls applied
        self.risks: dict[int, list[str]] = {}  # order id -> risk assessments (HIGH, PENDING…)
        self.returns: dict[int, dict[str, Any]] = {}  # reverse fulfilment orders
        self.pages_served = 0  # orders.json pages answered
        self._sent: dict[str, SentWebhook] = {}
        self._ids = 1000
        super().__init__(host=host, port=port, seed=seed)

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/admin/api/{version}/graphql.json", self._graphql),
            web.get("/admin/api/{version}/orders.json", self._orders),
            web.get("/admin/api/{version}/orders/{oid:\\d+}.json", self._order),
        ]

    def _next_id(self) -> int:
        self._ids += 1
        return self._ids

    # ---- catalogue and orders (test set-up) ------------------------------------------
    def add_item(
        self,
        item_id: int,
        variant_id: int,
        sku: str,
        location_id: int,
        qty: int,
        *,
        product_id: int | None = None,
        price: str = "0.00",
    ) -> None:
        self.skus[item_id] = sku
        self.variants[variant_id] = item_id
        self.products[variant_id] = variant_id // 10 if product_id is None else product_id
        self.prices[variant_id] = price
        self.stock[(item_id, location_id)] = qty

    def set_available(self, item_id: int, location_id: int, qty: int) -> None:
        """A change made on Shopify's side (a sale, a merchant edit), not by our connector."""
        self.stock[(item_id, location_id)] = qty

    def place_order(
        self,
        lines: list[tuple[int, int]],
        *,
        location_id: int | None = None,
        price: str = "10.00",
        currency: str = "EUR",
        customer_id: int | None = 7001,
        company_id: int | None = None,
        ship_to: tuple[str, str, float | None, float | None] = ("FR", "75011", 48.8589, 2.3795),
        risk: tuple[str, ...] = (),
    ) -> dict[str, Any]:
        """An order of ``(variant_id, qty)`` lines, REST shape; stock moves to committed.

        Like Shopify's payload it carries personal data (the customer's name, email, phone,
        street) in ``customer``, ``email``, ``phone``, ``shipping_address`` and
        ``billing_address``; ``company`` is set for a B2B order (``company_id``); ``risk``
        lists its risk assessments (``LOW``, ``MEDIUM``, ``HIGH``, ``NONE``, ``PENDING``), read
        through GraphQL ``order(id:) { risk { assessments { riskLevel } } }``."""
        order_id = self._next_id()
        self.risks[order_id] = list(risk)
        country, postal, lat, lon = ship_to
        person = {"first_name": "Jeanne", "last_name": "Martin", "phone": "+33612345678"}
        address = {
            **person,
            "name": "Jeanne Martin",
            "address1": "12 rue Oberkampf",
            "address2": "Bat B",
            "city": "Paris",
            "company": None,
            "country": "France",
            "country_code": country,
            "province_code": None,
            "zip": postal,
            "latitude": lat,
            "longitude": lon,
        }
        now = self.now_iso()
        items = []
        for variant_id, qty in lines:
            item_id = self.variants[variant_id]
            items.append(
                {
                    "id": self._next_id(),
                    "variant_id": variant_id,
                    "product_id": variant_id // 10,
                    "sku": self.skus[item_id],
                    "quantity": qty,
                    "current_quantity": qty,
                    "fulfillable_quantity": qty,
                    "fulfillment_service": "manual",
                    "fulfillment_status": None,
                    "requires_shipping": True,
                    "gift_card": False,
                    "price": price,
                    "name": f"{self.skus[item_id]} for Jeanne",
                }
            )
        order = {
            "id": order_id,
            "admin_graphql_api_id": f"gid://shopify/Order/{order_id}",
            "name": f"#{order_id}",
            "order_number": order_id,
            "created_at": now,
            "updated_at": now,
            "cancelled_at": None,
            "cancel_reason": None,
            "financial_status": "paid",
            "fulfillment_status": None,
            "location_id": location_id,
            "source_name": "pos" if location_id else "web",
            "line_items": items,
            "fulfillments": [],
            "refunds": [],
            "tags": "",
            "currency": currency,
            "email": "jeanne.martin@example.org",
            "phone": person["phone"],
            "customer": None
            if customer_id is None
            else {"id": customer_id, **person, "email": "jeanne.martin@example.org"},
            "company": None
            if company_id is None
            else {"id": company_id, "location_id": company_id + 1},
            "shipping_address": address,
            "billing_address": dict(address),
        }
        self.orders[order_id] = order
        return order

    def fulfil(
        self,
        order_id: int,
        lines: list[tuple[int, int]] | None = None,
        *,
        location_id: int = 1,
        status: str = "success",
    ) -> dict[str, Any]:
        """Ship ``(line_item_id, qty)`` lines (default: everything still fulfillable) from
        ``location_id``; returns the ``fulfillments/create`` payload. The order gains the
        fulfilment, its lines' ``fulfillable_quantity`` drop and its ``fulfillment_status``
        becomes ``partial`` or ``fulfilled``, as on Shopify."""
        order = self.orders[order_id]
        by_id = {li["id"]: li for li in order["line_items"]}
        if lines is None:
            lines = [(li["id"], li["fulfillable_quantity"]) for li in order["line_items"]]
        now = self.now_iso(1.0)
        shipped = []
        for line_id, qty in lines:
            line = by_id[line_id]
            if not 0 < qty <= line["fulfillable_quantity"]:
                raise ValueError(f"line {line_id}: cannot fulfil {qty}")
            line["fulfillable_quantity"] -= qty
            line["fulfillment_status"] = (
                "fulfilled" if not line["fulfillable_quantity"] else "partial"
            )
            shipped.append({**line, "quantity": qty})
        fid = self._next_id()
        fulfilment = {
            "id": fid,
            "admin_graphql_api_id": f"gid://shopify/Fulfillment/{fid}",
            "order_id": order_id,
            "name": f"{order['name']}.{len(order['fulfillments']) + 1}",
            "status": status,
            "service": "manual",
            "location_id": location_id,
            "shipment_status": None,
            "tracking_company": None,
            "tracking_number": None,
            "created_at": now,
            "updated_at": now,
            "line_items": shipped,
        }
        order["fulfillments"].append({k: v for k, v in fulfilment.items() if k != "order_id"})
        left = sum(li["fulfillable_quantity"] for li in order["line_items"])
        order["fulfillment_status"] = "fulfilled" if not left else "partial"
        order["updated_at"] = now
        return fulfilment

    def fulfilment_status(self, order_id: int, fid: int, status: str) -> dict[str, Any]:
        """A fulfilment changes status (``open`` → ``success``, or ``cancelled``); returns the
        ``fulfillments/update`` payload."""
        order = self.orders[order_id]
        stored = next(f for f in order["fulfillments"] if f["id"] == fid)
        stored["status"] = status
        stored["updated_at"] = order["updated_at"] = self.now_iso(2.0)
        return {**stored, "order_id": order_id}

    def shipment_status(self, order_id: int, fid: int, status: str) -> dict[str, Any]:
        """The carrier's tracking moves a fulfilment's ``shipment_status`` (``in_transit``,
        ``delivered``, ...); returns the ``fulfillments/update`` payload."""
        order = self.orders[order_id]
        stored = next(f for f in order["fulfillments"] if f["id"] == fid)
        stored["shipment_status"] = status
        stored["updated_at"] = order["updated_at"] = self.now_iso(3.0)
        return {**stored, "order_id": order_id}

    def create_return(self, order_id: int, lines: list[int]) -> int:
        """A return of these order lines (approved): its reverse fulfilment order's id; the
        reverse line ids are in ``returns[id]["lines"]`` (reverse line id -> order line)."""
        rfo = self._next_id()
        self.returns[rfo] = {
            "order_id": order_id,
            "lines": {self._next_id(): line_id for line_id in lines},
        }
        return rfo

    def dispose(
        self, rfo: int, dispositions: list[tuple[int, int, str, int | None]]
    ) -> dict[str, Any]:
        """``(reverse line id, qty, type, location id)`` disposed (type ``restocked``,
        ``processing_required``, ``not_restocked`` or ``missing``); returns the
        ``reverse_fulfillment_orders/dispose`` payload."""
        return {
            "id": rfo,
            "admin_graphql_api_id": f"{RFO_GID}{rfo}",
            "dispositions": [
                {
                    "location": None
                    if location is None
                    else {"id": location, "admin_graphql_api_id": f"{LOCATION_GID}{location}"},
                    "quantity": qty,
                    "reverse_delivery_line_item": None,
                    "reverse_fulfillment_order_line_item": {
                        "id": line,
                        "admin_graphql_api_id": f"gid://shopify/ReverseFulfillmentOrderLineItem/{line}",
                    },
                    "type": kind,
                }
                for line, qty, kind, location in dispositions
            ],
            "total_dispositions": len(dispositions),
        }

    def tags(self, order_id: int) -> list[str]:
        return [t for t in self.orders[order_id]["tags"].split(", ") if t]

    def cancel_order(self, order_id: int, *, later_s: float = 1.0) -> dict[str, Any]:
        order = self.orders[order_id]
        order["cancelled_at"] = order["updated_at"] = self.now_iso(later_s)
        order["cancel_reason"] = "customer"
        return order

    def refund(
        self, order_id: int, lines: list[tuple[int, int]], *, restock_type: str, location_id: int
    ) -> dict[str, Any]:
        """A refund of ``(line_item_id, qty)`` lines; returns the ``refunds/create`` payload."""
        order = self.orders[order_id]
        by_id = {li["id"]: li for li in order["line_items"]}
        refund = {
            "id": self._next_id(),
            "order_id": order_id,
            "created_at": self.now_iso(2.0),
            "restock": restock_type != "no_restock",
            "refund_line_items": [
                {
                    "id": self._next_id(),
                    "line_item_id": line_id,
                    "quantity": qty,
                    "location_id": location_id,
                    "restock_type": restock_type,
                    "subtotal": "10.00",
                    "total_tax": "0.00",
                    "line_item": by_id[line_id],
                }
                for line_id, qty in lines
            ],
        }
        order["refunds"].append(refund)
        order["updated_at"] = refund["created_at"]
        return refund

    # ---- webhooks --------------------------------------------------------------------
    async def deliver(
        self,
        topic: str,
        payload: dict[str, Any],
        *,
        target: str | None = None,
        secret: str | None = None,
        event_id: str | None = None,
        retry: bool = True,
        headers: dict[str, str] | None = None,
    ) -> SentWebhook:
        """Deliver like Shopify: retried on non-2xx with the same webhook id and body.
        ``headers`` override the ones Shopify would send (a test of a forged or old one)."""
        body = orjson.dumps(payload)
        webhook_id = str(uuid.UUID(int=self.rng.getrandbits(128)))
        sent_headers = {
            "Content-Type": "application/json",
            "X-Shopify-Topic": topic,
            "X-Shopify-Hmac-Sha256": sign(secret or self.webhook_secret, body),
            "X-Shopify-Shop-Domain": self.shop,
            "X-Shopify-API-Version": self.api_version,
            "X-Shopify-Webhook-Id": webhook_id,
            "X-Shopify-Event-Id": event_id or str(uuid.UUID(int=self.rng.getrandbits(128))),
            "X-Shopify-Triggered-At": self.now_iso(),
            **(headers or {}),
        }
        sent = SentWebhook(topic, body, sent_headers)
        self._sent[webhook_id] = sent
        self.webhooks.append(sent)
        await self._send(sent, target, attempts=1 + (self.webhook_retries if retry else 0))
        return sent

    async def redeliver(self, sent: SentWebhook, *, target: str | None = None) -> int:
        """Send an earlier delivery again unchanged: a duplicate, or a stale retry hours later."""
        return await self._send(sent, target, attempts=1)

    async def _send(self, sent: SentWebhook, target: str | None, *, attempts: int) -> int:
        url = target or self.webhook_target
        assert url, "no webhook target configured"
        status = 0
        for attempt in range(attempts):
            if attempt:
                await asyncio.sleep(self.webhook_retry_delay * 2 ** (attempt - 1))
            status = await self.post(url, sent.body, sent.headers)
            sent.statuses.append(status)
            if 200 <= status < 300:
                break
        return status

    # ---- REST --------------------------------------------------------------------------
    def _rest_admit(self) -> tuple[bool, str]:
        now = time.monotonic()
        self._rest_level = max(0.0, self._rest_level - (now - self._rest_at) * self.rest_leak)
        self._rest_at = now
        if self._rest_level + 1 > self.rest_capacity:
            return False, f"{int(self._rest_level)}/{self.rest_capacity}"
        self._rest_level += 1
        return True, f"{int(self._rest_level + 0.999)}/{self.rest_capacity}"

    def throttled(self, retry_after: float) -> web.Response:
        return web.json_response(
            {
                "errors": "Exceeded 2 calls per second for api client. Reduce request rates to "
                "resume uninterrupted service."
            },
            status=429,
            headers={
                "Retry-After": f"{retry_after:.1f}",
                "X-Shopify-Shop-Api-Call-Limit": f"{self.rest_capacity}/{self.rest_capacity}",
            },
        )

    def failure(self, status: int, retry_after: float | None) -> web.Response:
        if status == 429:
            return self.throttled(2.0 if retry_after is None else retry_after)
        headers = {} if retry_after is None else {"Retry-After": f"{retry_after:.1f}"}
        return web.json_response(
            {"errors": "Internal Server Error"}, status=status, headers=headers
        )

    def _unauthorised(self, request: web.Request) -> web.Response | None:
        if request.headers.get("X-Shopify-Access-Token") == self.token:
            return None
        return web.json_response(
            {
                "errors": "[API] Invalid API key or access token (unrecognized login or wrong "
                "password)"
            },
            status=401,
        )

    async def _orders(self, request: web.Request) -> web.Response:
        if (denied := self._unauthorised(request)) is not None:
            return denied
        admitted, call_limit = self._rest_admit()
        if not admitted:
            return self.throttled(1 / self.rest_leak)
        # Cursor paging as Shopify's REST does it: at most 250 per page, a ``Link`` header
        # with ``rel="next"`` whose ``page_info`` carries the filters; a request with
        # ``page_info`` may not repeat them (400), and there is no page number.
        from schemas.times import iso_to_ms

        limit = min(250, int(request.query.get("limit", "50")))
        page_info = request.query.get("page_info")
        if page_info is not None:
            if set(request.query) - {"page_info", "limit", "fields"}:
                return web.json_response(
                    {"errors": {"page_info": ["page_info cannot be combined with filters"]}},
                    status=400,
                )
            try:
                cursor = orjson.loads(base64.urlsafe_b64decode(page_info.encode()))
                since_ms, after = int(cursor["since"]), (int(cursor["at"]), int(cursor["id"]))
            except (ValueError, KeyError, TypeError):
                return web.json_response({"errors": {"page_info": ["Invalid value."]}}, status=400)
        else:
            since = request.query.get("updated_at_min")
            since_ms, after = (iso_to_ms(since) if since else 0), (-1, -1)
        rows = sorted(self.orders.values(), key=lambda o: (iso_to_ms(o["updated_at"]), o["id"]))
        rows = [
            o
            for o in rows
            if iso_to_ms(o["updated_at"]) >= since_ms
            and (iso_to_ms(o["updated_at"]), o["id"]) > after
        ]
        page, more = rows[:limit], len(rows) > limit
        headers = {"X-Shopify-Shop-Api-Call-Limit": call_limit}
        if more:
            last = page[-1]
            token = base64.urlsafe_b64encode(
                orjson.dumps(
                    {"since": since_ms, "at": iso_to_ms(last["updated_at"]), "id": last["id"]}
                )
            ).decode()
            url = f"{self.url}{request.path}?limit={limit}&page_info={token}"
            headers["Link"] = f'<{url}>; rel="next"'
        self.pages_served += 1
        return web.json_response({"orders": page}, headers=headers)

    async def _order(self, request: web.Request) -> web.Response:
        if (denied := self._unauthorised(request)) is not None:
            return denied
        admitted, call_limit = self._rest_admit()
        if not admitted:
            return self.throttled(1 / self.rest_leak)
        headers = {"X-Shopify-Shop-Api-Call-Limit": call_limit}
        order = self.orders.get(int(request.match_info["oid"]))
        if order is None:
            return web.json_response({"errors": "Not Found"}, status=404, headers=headers)
        fields = [f for f in request.query.get("fields", "").split(",") if f]
        shown = {k: v for k, v in order.items() if k in fields} if fields else order
        return web.json_response({"order": shown}, headers=headers)

    # ---- GraphQL -----------------------------------------------------------------------
    def _cost(self, requested: float, actual: float | None) -> dict[str, Any]:
        return {
            "requestedQueryCost": requested,
            "actualQueryCost": actual,
            "throttleStatus": {
                "maximumAvailable": self.gql_capacity,
                "currentlyAvailable": int(self._gql_available),
                "restoreRate": self.gql_restore,
            },
        }

    async def _graphql(self, request: web.Request) -> web.Response:
        if (denied := self._unauthorised(request)) is not None:
            return denied
        body = await request.json()
        query: str = body.get("query", "")
        variables: dict[str, Any] = body.get("variables") or {}
        if (
            "productVariantsBulkUpdate" in query
            or "inventorySetQuantities" in query
            or "orderCancel" in query
            or "tagsAdd" in query
            or "fulfillmentCreate" in query
        ):
            requested = 10.0
        elif "reverseFulfillmentOrder(" in query:
            requested = 5.0
        elif "order(id:" in query:
            requested = 2.0
        elif "nodes(" in query:
            requested = 1.0 + len(variables.get("ids", []))
        else:
            return web.json_response({"errors": [{"message": "fake: unsupported query"}]})
        now = time.monotonic()
        self._gql_available = min(
            self.gql_capacity, self._gql_available + (now - self._gql_at) * self.gql_restore
        )
        self._gql_at = now
        if self._gql_available < requested:
            doc = "https://shopify.dev/api/usage/rate-limits"
            throttled = {
                "errors": [
                    {
                        "message": "Throttled",
                        "extensions": {"code": "THROTTLED", "documentation": doc},
                    }
                ],
                "extensions": {"cost": self._cost(requested, None)},
            }
            return web.json_response(throttled, status=self.throttle_status)
        self._gql_available -= requested
        if "productVariantsBulkUpdate" in query:
            updated = {"productVariantsBulkUpdate": self._update_variants(variables)}
            return web.json_response(
                {"data": updated, "extensions": {"cost": self._cost(requested, requested)}}
            )
        if "nodes(" in query and "ProductVariant" in query:
            return web.json_response(
                {
                    "data": self._read_prices(variables),
                    "extensions": {"cost": self._cost(requested, requested)},
                }
            )
        if "nodes(" in query:
            data = self._read_levels(variables)
            return web.json_response(
                {"data": data, "extensions": {"cost": self._cost(requested, requested)}}
            )
        if "fulfillmentOrders" in query:
            data = {"order": self._fulfillment_orders(str(variables.get("id", "")))}
            return web.json_response(
                {"data": data, "extensions": {"cost": self._cost(requested, requested)}}
            )
        if "fulfillmentCreate" in query:
            data = {"fulfillmentCreate": self._fulfillment_create(variables)}
            return web.json_response(
                {"data": data, "extensions": {"cost": self._cost(requested, requested)}}
            )
        if "order(id:" in query:
            data = {"order": self._order_risk(str(variables.get("id", "")))}
            return web.json_response(
                {"data": data, "extensions": {"cost": self._cost(requested, requested)}}
            )
        if "reverseFulfillmentOrder(" in query:
            data = {"reverseFulfillmentOrder": self._reverse_order(str(variables.get("id", "")))}
            return web.json_response(
                {"data": data, "extensions": {"cost": self._cost(requested, requested)}}
            )
        if "orderCancel" in query or "tagsAdd" in query:
            try:
                data = self._order_mutation(query, variables)
            except ValueError as exc:
                return web.json_response({"errors": [{"message": str(exc)}]})
            return web.json_response(
                {"data": data, "extensions": {"cost": self._cost(requested, requested)}}
            )
        result = self._set_quantities(query, variables)
        result.setdefault("extensions", {"cost": self._cost(requested, requested)})
        return web.json_response(result)

    def _fulfillment_orders(self, gid: str) -> dict[str, Any] | None:
        """``order(id:) { fulfillments { id trackingInfo { company number } } fulfillmentOrders
        { nodes { id status lineItems { nodes { id remainingQuantity lineItem { id sku } } } }
        } }``: one fulfilment order per order here
        (its id is the order's), OPEN while units remain, CLOSED after; null for no order."""
        order = self.orders.get(_gid_int(gid, ORDER_GID))
        if order is None:
            return None
        left = sum(li["fulfillable_quantity"] for li in order["line_items"])
        status = "CLOSED" if not left or order["cancelled_at"] else "OPEN"
        lines = [
            {
                "id": f"{FO_LINE_GID}{li['id']}",
                "remainingQuantity": li["fulfillable_quantity"],
                "lineItem": {"id": f"gid://shopify/LineItem/{li['id']}", "sku": li["sku"]},
            }
            for li in order["line_items"]
        ]
        done = [
            {
                "id": f["admin_graphql_api_id"],
                "trackingInfo": [{"company": f["tracking_company"], "number": f["tracking_number"]}]
                if f.get("tracking_number")
                else [],
            }
            for f in order["fulfillments"]
        ]
        return {
            "fulfillments": done,
            "fulfillmentOrders": {
                "nodes": [
                    {
                        "id": f"{FO_GID}{order['id']}",
                        "status": status,
                        "lineItems": {"nodes": lines},
                    }
                ]
            },
        }

    def _fulfillment_create(self, variables: dict[str, Any]) -> dict[str, Any]:
        """``fulfillmentCreate(fulfillment: {lineItemsByFulfillmentOrder, trackingInfo,
        notifyCustomer})``: ships the named fulfilment order lines (all remaining when a
        fulfilment order names none) with the tracking info; user errors as Shopify gives
        them (an unknown fulfilment order, more than remains, a closed one)."""
        fulfillment = variables.get("fulfillment") or {}
        groups = fulfillment.get("lineItemsByFulfillmentOrder") or []

        def error(message: str) -> dict[str, Any]:
            return {
                "fulfillment": None,
                "userErrors": [{"field": ["fulfillment"], "message": message}],
            }

        if not groups:
            return error("Line items by fulfillment order must not be empty")
        shipped: list[tuple[int, int]] = []
        order_id = 0
        for group in groups:
            order_id = _gid_int(str(group.get("fulfillmentOrderId", "")), FO_GID)
            order = self.orders.get(order_id)
            if order is None:
                return error("Fulfillment order does not exist.")
            by_id = {li["id"]: li for li in order["line_items"]}
            items = group.get("fulfillmentOrderLineItems")
            if items is None:
                items = [
                    {"id": f"{FO_LINE_GID}{li['id']}", "quantity": li["fulfillable_quantity"]}
                    for li in order["line_items"]
                    if li["fulfillable_quantity"]
                ]
            if not items:
                return error("Fulfillment order is closed: nothing left to fulfill")
            for item in items:
                line = by_id.get(_gid_int(str(item.get("id", "")), FO_LINE_GID))
                qty = int(item.get("quantity") or 0)
                if line is None:
                    return error("Fulfillment order line item does not exist.")
                if not 0 < qty <= line["fulfillable_quantity"]:
                    return error(f"Invalid quantity {qty} for line item {line['id']}")
                shipped.append((line["id"], qty))
        result = self.fulfil(order_id, shipped)
        tracking = fulfillment.get("trackingInfo") or {}
        stored = self.orders[order_id]["fulfillments"][-1]
        for target in (stored, result):
            target["tracking_company"] = tracking.get("company")
            target["tracking_number"] = tracking.get("number")
            target["notify_customer"] = bool(fulfillment.get("notifyCustomer"))
        info = [{k: tracking.get(k) for k in ("company", "number", "url")}]
        return {
            "fulfillment": {
                "id": result["admin_graphql_api_id"],
                "status": str(result["status"]).upper(),
                "trackingInfo": info if tracking else [],
            },
            "userErrors": [],
        }

    def _order_risk(self, gid: str) -> dict[str, Any] | None:
        """``order(id:) { risk { assessments { riskLevel } } }``; null for an unknown order."""
        if _gid_int(gid, ORDER_GID) not in self.orders:
            return None
        levels = self.risks.get(_gid_int(gid, ORDER_GID), [])
        return {"risk": {"assessments": [{"riskLevel": level} for level in levels]}}

    def _reverse_order(self, gid: str) -> dict[str, Any] | None:
        rfo = self.returns.get(_gid_int(gid, RFO_GID))
        if rfo is None:
            return None
        order = self.orders[rfo["order_id"]]
        by_id = {li["id"]: li for li in order["line_items"]}
        nodes = []
        for rfo_line, line_id in rfo["lines"].items():
            line = by_id[line_id]
            nodes.append(
                {
                    "id": f"gid://shopify/ReverseFulfillmentOrderLineItem/{rfo_line}",
                    "fulfillmentLineItem": {
                        "lineItem": {
                            "id": f"gid://shopify/LineItem/{line_id}",
                            "sku": line["sku"],
                            "variant": {"id": f"gid://shopify/ProductVariant/{line['variant_id']}"},
                        }
                    },
                }
            )
        return {
            "id": gid,
            "order": {"id": f"gid://shopify/Order/{order['id']}"},
            "lineItems": {"nodes": nodes},
        }

    def _order_mutation(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        """``orderCancel`` (asynchronous on Shopify: a job; applied at once here) and
        ``tagsAdd`` (a set: adding a tag twice keeps one)."""
        if "orderCancel" in query:
            missing = [k for k in ("orderId", "reason", "refund", "restock") if k not in variables]
            if missing:  # non-null arguments (this fake reads them from the variables)
                raise ValueError(f"orderCancel: missing {missing}")
            gid = str(variables.get("orderId", ""))
            order = self.orders.get(_gid_int(gid, ORDER_GID))
            if order is None:
                error = {
                    "field": ["orderId"],
                    "message": "Order does not exist",
                    "code": "NOT_FOUND",
                }
                return {"orderCancel": {"job": None, "orderCancelUserErrors": [error]}}
            if order["cancelled_at"]:
                error = {
                    "field": ["orderId"],
                    "message": "Cannot cancel an order that has already been cancelled",
                    "code": "INVALID",
                }
                return {"orderCancel": {"job": None, "orderCancelUserErrors": [error]}}
            order["cancelled_at"] = order["updated_at"] = self.now_iso(1.0)
            order["cancel_reason"] = str(variables.get("reason", "OTHER")).lower()
            self.cancellations.append(
                {
                    "order_id": order["id"],
                    "reason": variables.get("reason"),
                    "restock": variables.get("restock"),
                    "staff_note": variables.get("staffNote"),
                    "refund": variables.get("refund"),
                    "notify_customer": variables.get("notifyCustomer"),
                }
            )
            if self.webhook_target:
                self.in_background(self.deliver("orders/cancelled", dict(order)))
            job = {"id": f"gid://shopify/Job/{uuid.UUID(int=self.rng.getrandbits(128))}"}
            return {"orderCancel": {"job": {**job, "done": False}, "orderCancelUserErrors": []}}
        gid = str(variables.get("id", ""))
        order = self.orders.get(_gid_int(gid, ORDER_GID))
        if order is None:
            return {
                "tagsAdd": {
                    "node": None,
                    "userErrors": [{"field": ["id"], "message": "Order not found"}],
                }
            }
        tags = [t for t in order["tags"].split(", ") if t]
        for tag in variables.get("tags") or []:
            if tag not in tags:
                tags.append(tag)
        order["tags"] = ", ".join(tags)
        order["updated_at"] = self.now_iso(1.0)
        return {"tagsAdd": {"node": {"id": gid}, "userErrors": []}}

    def _read_levels(self, variables: dict[str, Any]) -> dict[str, Any]:
        location = gid_id(variables["locationId"], LOCATION_GID)
        nodes: list[dict[str, Any] | None] = []
        for gid in variables["ids"]:
            item = gid_id(gid, ITEM_GID)
            if item not in self.skus:
                nodes.append(None)
                continue
            qty = self.stock.get((item, location))
            level = (
                None if qty is None else {"quantities": [{"name": "available", "quantity": qty}]}
            )
            nodes.append({"id": gid, "inventoryLevel": level})
        return {"nodes": nodes}

    def _read_prices(self, variables: dict[str, Any]) -> dict[str, list[dict[str, Any] | None]]:
        nodes: list[dict[str, Any] | None] = []
        for gid in variables["ids"]:
            variant = _gid_int(gid, VARIANT_GID)
            price = self.prices.get(variant)
            nodes.append(None if price is None else {"id": gid, "price": price})
        return {"nodes": nodes}

    def _update_variants(self, variables: dict[str, Any]) -> dict[str, Any]:
        """``productVariantsBulkUpdate(productId, variants)`` without ``allowPartialUpdates``:
        any user error and nothing is applied."""
        product = _gid_int(str(variables.get("productId", "")), PRODUCT_GID)
        errors: list[dict[str, Any]] = []
        planned: list[tuple[int, str]] = []
        policies: list[tuple[int, str]] = []
        for i, v in enumerate(variables.get("variants") or []):
            variant = _gid_int(str(v.get("id", "")), VARIANT_GID)
            if self.products.get(variant) != product:
                errors.append(
                    {
                        "code": "PRODUCT_VARIANT_DOES_NOT_EXIST",
                        "field": ["variants", str(i), "id"],
                        "message": "Product variant does not exist",
                    }
                )
                continue
            price = v.get("price")
            if price is not None and not (isinstance(price, str) and _MONEY.fullmatch(price)):
                errors.append(
                    {
                        "code": "INVALID",
                        "field": ["variants", str(i), "price"],
                        "message": "Price is invalid",
                    }
                )
                continue
            policy = v.get("inventoryPolicy")
            if policy is not None and policy not in ("DENY", "CONTINUE"):
                errors.append(
                    {
                        "code": "INVALID",
                        "field": ["variants", str(i), "inventoryPolicy"],
                        "message": "Inventory policy is invalid",
                    }
                )
                continue
            if price is not None:
                planned.append((variant, price))
            if policy is not None:
                policies.append((variant, policy))
        if errors:
            return {"product": None, "productVariants": None, "userErrors": errors}
        for variant, price in planned:
            self.prices[variant] = price
            self.price_writes.append((variant, price))
        for variant, policy in policies:
            self.policies[variant] = policy
            self.policy_writes.append((variant, policy))
        touched = dict.fromkeys([v for v, _ in planned] + [v for v, _ in policies])
        return {
            "product": {"id": f"{PRODUCT_GID}{product}"},
            "productVariants": [
                {
                    "id": f"{VARIANT_GID}{variant}",
                    "price": self.prices.get(variant),
                    "inventoryPolicy": self.policies.get(variant, "DENY"),
                }
                for variant in touched
            ],
            "userErrors": [],
        }

    def _set_quantities(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        match = _IDEMPOTENT.search(query)
        key = None if match is None else (match.group(1) or variables.get(match.group(2) or ""))
        mandatory = self.api_version >= "2026-04"
        if key is None and mandatory:
            return {
                "errors": [{"message": "The @idempotent directive is required for this mutation."}]
            }
        fingerprint = orjson.dumps(variables, option=orjson.OPT_SORT_KEYS)
        if key is not None and key in self.idempotency:
            seen_fingerprint, result = self.idempotency[key]
            if seen_fingerprint != fingerprint:
                return {
                    "errors": [
                        {
                            "message": "Idempotency key already used with different parameters.",
                            "extensions": {"code": "IDEMPOTENCY_CONFLICT"},
                        }
                    ]
                }
            self.replays += 1
            return result
        result = {
            "data": {"inventorySetQuantities": self._apply(variables["input"], key, mandatory)}
        }
        if key is not None:
            self.idempotency[key] = (fingerprint, result)
        return result

    def _apply(self, data: dict[str, Any], key: str | None, mandatory: bool) -> dict[str, Any]:
        errors: list[dict[str, Any]] = []
        if data.get("name") not in ("available", "on_hand"):
            errors.append(
                {
                    "code": "INVALID_NAME",
                    "field": ["input", "name"],
                    "message": "The quantity name must be available or on_hand.",
                }
            )
        planned: list[tuple[int, int, int, int]] = []
        for i, q in enumerate(data.get("quantities", [])):
            field = ["input", "quantities", str(i)]
            item = gid_id(q["inventoryItemId"], ITEM_GID)
            location = gid_id(q["locationId"], LOCATION_GID)
            current = self.stock.get((item, location))
            if "changeFromQuantity" not in q and mandatory:
                errors.append(
                    {
                        "code": "INVALID",
                        "field": [*field, "changeFromQuantity"],
                        "message": "changeFromQuantity is required.",
                    }
                )
            elif item not in self.skus:
                errors.append(
                    {
                        "code": "INVALID_INVENTORY_ITEM",
                        "field": [*field, "inventoryItemId"],
                        "message": "The specified inventory item could not be found.",
                    }
                )
            elif current is None:
                errors.append(
                    {
                        "code": "ITEM_NOT_STOCKED_AT_LOCATION",
                        "field": [*field, "locationId"],
                        "message": "The item is not stocked at the location.",
                    }
                )
            elif item in self.non_mutable:
                errors.append(
                    {
                        "code": "NON_MUTABLE_INVENTORY_ITEM",
                        "field": [*field, "inventoryItemId"],
                        "message": "The quantity of a bundle cannot be set.",
                    }
                )
            elif q.get("changeFromQuantity") is not None and q["changeFromQuantity"] != current:
                errors.append(
                    {
                        "code": "CHANGE_FROM_QUANTITY_STALE",
                        "field": [*field, "changeFromQuantity"],
                        "message": "The compare quantity is stale.",
                    }
                )
            elif q["quantity"] < 0:
                errors.append(
                    {
                        "code": "INVALID_QUANTITY_NEGATIVE",
                        "field": [*field, "quantity"],
                        "message": "The quantity can't be negative.",
                    }
                )
            else:
                planned.append((item, location, current, q["quantity"]))
        if errors:  # the mutation is all or nothing
            return {"inventoryAdjustmentGroup": None, "userErrors": errors}
        changes = []
        for item, location, before, after in planned:
            self.stock[(item, location)] = after
            self.writes.append(
                Write(time.monotonic(), f"{item}@{location}", self.skus[item], after, key)
            )
            changes.append(
                {"name": data["name"], "delta": after - before, "quantityAfterChange": after}
            )
            if self.webhook_target:
                self.in_background(
                    self.deliver(
                        "inventory_levels/update",
                        {
                            "inventory_item_id": item,
                            "location_id": location,
                            "available": after,
                            "updated_at": self.now_iso(),
                            "admin_graphql_api_id": f"gid://shopify/InventoryLevel/{item}?inventory_item_id={item}",
                        },
                    )
                )
        group = {
            "id": f"gid://shopify/InventoryAdjustmentGroup/{self._next_id()}",
            "reason": data.get("reason"),
            "changes": changes,
        }
        return {"inventoryAdjustmentGroup": group, "userErrors": []}


def main() -> None:
    parser = argparse.ArgumentParser(description="Fake Shopify Admin API for demos")
    parser.add_argument("--port", type=int, default=8701)
    parser.add_argument("--webhook-target", default=None)
    args = parser.parse_args()
    fake = FakeShopify(port=args.port, webhook_target=args.webhook_target)
    for n, sku in enumerate(("chair", "table", "lamp"), start=1):
        fake.add_item(100 + n, 10 * n, sku, 1, 100)
    asyncio.run(serve_forever(fake, f"fake Shopify {fake.shop} (token {fake.token})"))


if __name__ == "__main__":
    main()
