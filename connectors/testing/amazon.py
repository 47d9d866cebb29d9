"""A fake Amazon Selling Partner API (and its Login with Amazon), faithful to
channel-contracts §4.

- ``POST /auth/o2/token`` (form, ``grant_type=refresh_token``): ``{access_token,
  token_type, expires_in}``; a wrong refresh token → 400 ``invalid_grant``, a wrong client →
  401 ``invalid_client``. Tokens live ``token_ttl_s``; ``expire_tokens()`` ages every token
  issued so far. Every SP-API route wants ``x-amz-access-token``: missing, unknown or expired
  → 403 ``{"errors": [{"code": "Unauthorized", "message": "Access to requested resource is
  denied.", "details": "The access token you provided has expired."}]}`` (the details say
  which). ``tokens_issued`` counts the refreshes.
- Rate limits: a token bucket per operation (``rates``, documented defaults); every answer
  carries ``x-amzn-RateLimit-Limit`` and ``x-amzn-RequestId``; past the bucket → 429
  ``QuotaExceeded`` "You exceeded your quota for the requested resource." (no
  ``Retry-After``, as Amazon). ``throttles`` counts them per operation.
- ``GET /orders/v0/orders`` (``MarketplaceIds`` and ``LastUpdatedAfter`` or ``NextToken``;
  ``page_size`` orders a page, oldest update first) → ``{payload: {Orders, NextToken?}}``;
  ``GET /orders/v0/orders/{id}/orderItems`` → ``{payload: {AmazonOrderId, OrderItems}}``.
  Orders carry ``BuyerInfo`` and ``ShippingAddress`` (personal data a connector must drop).
  ``GET /orders/v0/orders/{id}`` (``getOrder``) → ``{payload: order}`` (404 ``InvalidInput``
  for an unknown id).
- ``POST /orders/v0/orders/{id}/shipmentConfirmation`` (``confirmShipment``, 2/s burst 10):
  ``{marketplaceId, packageDetail: {packageReferenceId (positive digits), carrierCode
  (carrierName required when Other), trackingNumber, shipDate (ISO 8601), orderItems:
  [{orderItemId, quantity}]}}`` → 204 with no body; the items' ``QuantityShipped`` grow and the
  order moves to ``Shipped`` (``PartiallyShipped`` while units remain). 400 ``InvalidInput``
  for a missing or malformed field, an unknown item, more units than remain unshipped, a
  ``packageReferenceId`` already confirmed on the order, or an order not ``Unshipped`` /
  ``PartiallyShipped`` (shipped, cancelled, pending payment); 404 for an unknown order.
  ``shipments`` keeps each order's confirmed packages.
- Restricted data (Tokens API 2021-03-01): ``POST /tokens/2021-03-01/restrictedDataToken``
  (``{restrictedResources: [{method, path}]}``, at most 50, each an order's
  ``/orders/v0/orders/{id}/address`` for ``GET``; else 400 ``InvalidInput``) → ``{
  restrictedDataToken, expiresIn}``, living ``token_ttl_s``. ``GET
  /orders/v0/orders/{id}/address`` (``getOrderAddress``) with such a token for that path →
  the whole ``ShippingAddress`` (name, street); with the plain access token → only the
  address's ``City``, ``PostalCode``, ``CountryCode`` (as Amazon without an RDT); an RDT for
  another resource, or expired → 403 ``Unauthorized``. ``rdts_issued`` counts them.
  A merchant-fulfilled order lowers the listing's quantity when placed (Amazon does) and a
  cancellation gives it back.
- ``PATCH /listings/2021-08-01/items/{sellerId}/{sku}`` (``fulfillment_availability``,
  ``DEFAULT``) → 200 ``{sku, status: ACCEPTED, submissionId, issues: []}``, applied
  ``apply_delay_s`` later (in submission order per SKU); a SKU ``reject()``-ed or unknown →
  ``INVALID`` with an ``ERROR`` issue. ``GET`` the same path with
  ``includedData=fulfillmentAvailability`` reads the applied quantity (404 ``NOT_FOUND``
  for an unknown SKU).
- Feeds 2021-06-30: ``POST /documents`` → ``{feedDocumentId, url}`` (a pre-signed URL on this
  server: ``PUT`` without the token), ``POST /feeds`` (``JSON_LISTINGS_FEED``) → 202
  ``{feedId}``, ``GET /feeds/{id}`` (``IN_QUEUE`` → ``IN_PROGRESS`` → ``DONE`` after
  ``feed_delay_s``; ``fatal_next_feeds(n)`` → ``FATAL``), ``GET /documents/{id}`` → the
  processing report's URL: ``{header, issues: [{messageId, code, severity, message}],
  summary}``. At most 25,000 messages.
- ``GET /fba/inventory/v1/summaries`` (``granularityType=Marketplace``, ``details=true``,
  ``nextToken``) → ``{payload: {granularity, inventorySummaries}, pagination}``.
- ``fail_next``/``storm``/``down`` from the base (a storm answers Amazon's 429).

Run alone: ``python -m connectors.testing.amazon --port 8706``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import time
import uuid
from typing import Any

import orjson
from aiohttp import web

from connectors.testing.base import FakeChannel, Write, serve_forever
from schemas.times import iso_to_ms

RATES: dict[str, tuple[float, float]] = {
    "patchListingsItem": (5.0, 5.0),
    "getListingsItem": (5.0, 10.0),
    "getOrders": (0.0167, 20.0),
    "getOrderItems": (0.5, 30.0),
    "getOrder": (0.5, 30.0),
    "confirmShipment": (2.0, 10.0),
    "createRestrictedDataToken": (1.0, 10.0),
    "getOrderAddress": (0.5, 30.0),
    "createFeedDocument": (0.5, 15.0),
    "createFeed": (0.0083, 15.0),
    "getFeed": (2.0, 15.0),
    "getFeedDocument": (0.0222, 10.0),
    "getInventorySummaries": (2.0, 2.0),
}
DENIED = "Access to requested resource is denied."
QUOTA = "You exceeded your quota for the requested resource."
FEED_MAX = 25_000
FBA_PAGE = 50


def sp_error(status: int, code: str, message: str, details: str = "") -> web.Response:
    return web.json_response(
        {"errors": [{"code": code, "message": message, "details": details}]}, status=status
    )


def _digits(text: str, n: int) -> str:
    return str(int(hashlib.sha256(text.encode()).hexdigest(), 16))[:n]


def _token(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(data)).decode()


def _untoken(value: str) -> dict[str, Any]:
    try:
        data = orjson.loads(base64.urlsafe_b64decode(value.encode()))
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


class FakeAmazon(FakeChannel):
    def __init__(
        self,
        *,
        seller_id: str = "A1SELLER",
        marketplace_id: str = "A13V1IB3VIYZZH",
        client_id: str = "amzn1.application-oa2-client.fake",
        client_secret: str = "amazon-client-secret",  # noqa: S107
        refresh_token: str = "Atzr|fake-refresh-token",  # noqa: S107
        token_ttl_s: float = 3600.0,
        apply_delay_s: float = 0.3,
        feed_delay_s: float = 0.5,
        page_size: int = 100,
        rates: dict[str, tuple[float, float]] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int | None = None,
    ) -> None:
        self.seller_id = seller_id
        self.marketplace_id = marketplace_id
        self.client_id = client_id
        self.client_secret = client_secret
        self.refresh_token = refresh_token
        self.token_ttl_s = token_ttl_s
        self.apply_delay_s = apply_delay_s
        self.feed_delay_s = feed_delay_s
        self.page_size = page_size
        self.rates = dict(rates or RATES)
        self._buckets: dict[str, tuple[float, float]] = {}  # op -> (tokens, at)
        self.throttles: dict[str, int] = {}
        self.quota_answers = 0
        self.tokens: dict[str, float] = {}  # access token -> expiry (monotonic)
        self.tokens_issued = 0
        self.rdts: dict[str, tuple[float, frozenset[tuple[str, str]]]] = {}
        self.rdts_issued = 0
        self.expired_refusals = 0
        self.listings: dict[str, int] = {}  # sku -> DEFAULT quantity
        self._submitted: dict[str, int] = {}  # sku -> last submission number
        self._applied: dict[str, int] = {}  # sku -> newest submission applied
        self.rejected: dict[str, str] = {}  # sku -> issue message (patches and feeds)
        self.orders: dict[str, dict[str, Any]] = {}
        self.order_items: dict[str, list[dict[str, Any]]] = {}
        self.shipments: dict[str, list[dict[str, Any]]] = {}  # order id -> packageDetail
        self.fba: dict[str, tuple[int, str]] = {}  # sku -> (fulfillable, lastUpdatedTime)
        self.documents: dict[str, bytes | None] = {}
        self.feeds: dict[str, dict[str, Any]] = {}
        self._fatal = 0
        self._ids = 0
        self._clock_s = 0
        super().__init__(host=host, port=port, seed=seed)

    def routes(self) -> list[web.RouteDef]:
        items = "/listings/2021-08-01/items/{seller}/{sku}"
        return [
            web.post("/auth/o2/token", self._lwa),
            web.get("/orders/v0/orders", self._get_orders),
            web.get("/orders/v0/orders/{oid}", self._get_order),
            web.get("/orders/v0/orders/{oid}/orderItems", self._get_order_items),
            web.post("/orders/v0/orders/{oid}/shipmentConfirmation", self._confirm_shipment),
            web.get("/orders/v0/orders/{oid}/address", self._get_order_address),
            web.post("/tokens/2021-03-01/restrictedDataToken", self._create_rdt),
            web.get(items, self._get_listing),
            web.patch(items, self._patch_listing),
            web.post("/feeds/2021-06-30/documents", self._create_document),
            web.get("/feeds/2021-06-30/documents/{doc}", self._get_document),
            web.post("/feeds/2021-06-30/feeds", self._create_feed),
            web.get("/feeds/2021-06-30/feeds/{feed}", self._get_feed),
            web.put("/uploads/{doc}", self._upload),
            web.get("/downloads/{doc}", self._download),
            web.get("/fba/inventory/v1/summaries", self._fba_summaries),
        ]

    # ---- set-up and switches ---------------------------------------------------------
    def _next_id(self) -> int:
        self._ids += 1
        return self._ids

    def _now(self) -> str:
        """Amazon's UTC time (second resolution), one second later each call."""
        self._clock_s += 1
        return self.now_iso(self._clock_s).replace("+00:00", "Z")

    def add_listing(self, sku: str, qty: int = 0) -> None:
        self.listings[sku] = qty

    def quantity(self, sku: str) -> int | None:
        return self.listings.get(sku)

    def reject(self, sku: str, message: str = "") -> None:
        """Every patch or feed message for ``sku`` is refused with an ``ERROR`` issue."""
        self.rejected[sku] = message or f"The SKU {sku} cannot be updated in this marketplace."

    def expire_tokens(self) -> None:
        """Every access token issued so far has expired (the next call is refused)."""
        for token in self.tokens:
            self.tokens[token] = 0.0

    def fatal_next_feeds(self, n: int = 1) -> None:
        self._fatal += n

    def set_fba(self, sku: str, fulfillable: int) -> None:
        self.fba[sku] = (fulfillable, self._now())

    def place_order(
        self, lines: list[tuple[str, int]], *, status: str = "Pending", channel: str = "MFN"
    ) -> dict[str, Any]:
        """An order of ``(sku, qty)`` lines, with the buyer's personal data as Amazon has it.
        Amazon sells no more than a merchant-fulfilled listing shows: more raises."""
        if channel == "MFN":
            for sku, qty in lines:
                if qty > self.listings.get(sku, 0):
                    raise ValueError(f"Amazon shows {self.listings.get(sku, 0)} of {sku}: no {qty}")
        oid = f"402-{self._next_id():07d}-{self.rng.randint(1000000, 9999999)}"
        now = self._now()
        order = {
            "AmazonOrderId": oid,
            "PurchaseDate": now,
            "LastUpdateDate": now,
            "OrderStatus": status,
            "FulfillmentChannel": channel,
            "MarketplaceId": self.marketplace_id,
            "SalesChannel": "Amazon.fr",
            "NumberOfItemsShipped": 0,
            "NumberOfItemsUnshipped": sum(q for _, q in lines),
            "OrderTotal": {"CurrencyCode": "EUR", "Amount": "42.00"},
            "BuyerInfo": {
                "BuyerEmail": "jeanne.martin@marketplace.amazon.fr",
                "BuyerName": "Jeanne Martin",
            },
            "ShippingAddress": {
                "Name": "Jeanne Martin",
                "AddressLine1": "12 rue des Lilas",
                "City": "Lyon",
                "PostalCode": "69003",
                "CountryCode": "FR",
                "Phone": "+33 6 12 34 56 78",
            },
        }
        self.orders[oid] = order
        self.order_items[oid] = [
            {
                "ASIN": "B0" + _digits(sku, 8),
                "SellerSKU": sku,
                "OrderItemId": f"{self._next_id():014d}",
                "Title": sku,
                "QuantityOrdered": qty,
                "QuantityShipped": 0,
                "ItemPrice": {"CurrencyCode": "EUR", "Amount": "21.00"},
            }
            for sku, qty in lines
        ]
        if channel == "MFN" and status != "Canceled":
            for sku, qty in lines:
                self.listings[sku] -= qty
        return order

    def set_status(self, oid: str, status: str, shipped: dict[str, int] | None = None) -> None:
        """Move an order to ``status`` (``shipped``: units shipped per SKU so far)."""
        order = self.orders[oid]
        if status == "Canceled" and order["OrderStatus"] != "Canceled":
            for item in self.order_items[oid]:
                sku = item["SellerSKU"]
                if order["FulfillmentChannel"] == "MFN" and sku in self.listings:
                    self.listings[sku] += item["QuantityOrdered"] - item["QuantityShipped"]
        for item in self.order_items[oid]:
            if shipped and item["SellerSKU"] in shipped:
                item["QuantityShipped"] = shipped[item["SellerSKU"]]
            elif status == "Shipped":
                item["QuantityShipped"] = item["QuantityOrdered"]
        order["OrderStatus"] = status
        order["LastUpdateDate"] = self._now()

    # ---- protocol helpers ------------------------------------------------------------
    def throttled(self, retry_after: float) -> web.Response:
        self.quota_answers += 1  # storm() and fail_next(status=429): Amazon sends no Retry-After
        return sp_error(429, "QuotaExceeded", QUOTA)

    def _auth(self, request: web.Request) -> web.Response | None:
        token = request.headers.get("x-amz-access-token")
        if not token:
            return sp_error(403, "Unauthorized", DENIED)
        expiry = self.tokens.get(token)
        if expiry is None:
            return sp_error(
                403,
                "Unauthorized",
                DENIED,
                "The access token you provided is revoked, malformed or invalid.",
            )
        if time.monotonic() >= expiry:
            self.expired_refusals += 1
            return sp_error(
                403, "Unauthorized", DENIED, "The access token you provided has expired."
            )
        return None

    def _quota(self, op: str) -> web.Response | None:
        rate, burst = self.rates[op]
        now = time.monotonic()
        tokens, at = self._buckets.get(op, (burst, now))
        tokens = min(burst, tokens + (now - at) * rate)
        if tokens < 1.0:
            self._buckets[op] = (tokens, now)
            self.throttles[op] = self.throttles.get(op, 0) + 1
            return self._headers(op, sp_error(429, "QuotaExceeded", QUOTA))
        self._buckets[op] = (tokens - 1.0, now)
        return None

    def _guard(self, request: web.Request, op: str) -> web.Response | None:
        return self._auth(request) or self._quota(op)

    def _headers(self, op: str, response: web.Response) -> web.Response:
        response.headers["x-amzn-RateLimit-Limit"] = f"{self.rates[op][0]:g}"
        response.headers["x-amzn-RequestId"] = str(uuid.uuid4())
        return response

    def _json(self, op: str, body: Any, status: int = 200) -> web.Response:
        return self._headers(op, web.json_response(body, status=status))

    def _signature(self, doc: str) -> str:
        return hashlib.sha256(f"{doc}:{self.client_secret}".encode()).hexdigest()[:32]

    # ---- Login with Amazon -----------------------------------------------------------
    async def _lwa(self, request: web.Request) -> web.Response:
        form = await request.post()
        if form.get("grant_type") != "refresh_token":
            return web.json_response(
                {"error": "unsupported_grant_type", "error_description": "grant_type"}, status=400
            )
        if (
            form.get("client_id") != self.client_id
            or form.get("client_secret") != self.client_secret
        ):
            return web.json_response(
                {"error": "invalid_client", "error_description": "Client authentication failed"},
                status=401,
            )
        if form.get("refresh_token") != self.refresh_token:
            return web.json_response(
                {
                    "error": "invalid_grant",
                    "error_description": (
                        "The request has an invalid grant parameter : refresh_token"
                    ),
                },
                status=400,
            )
        token = f"Atza|{uuid.uuid4().hex}"
        self.tokens[token] = time.monotonic() + self.token_ttl_s
        self.tokens_issued += 1
        return web.json_response(
            {
                "access_token": token,
                "refresh_token": self.refresh_token,
                "token_type": "bearer",
                "expires_in": int(self.token_ttl_s),
            }
        )

    # ---- orders ----------------------------------------------------------------------
    async def _get_orders(self, request: web.Request) -> web.Response:
        if (denied := self._guard(request, "getOrders")) is not None:
            return denied
        q = request.query
        if q.get("MarketplaceIds") != self.marketplace_id:
            return self._json(
                "getOrders",
                {
                    "errors": [
                        {"code": "InvalidInput", "message": "Invalid MarketplaceIds", "details": ""}
                    ]
                },
                400,
            )
        if "NextToken" in q:
            state = _untoken(q["NextToken"])
            if "after" not in state:
                return self._json(
                    "getOrders",
                    {
                        "errors": [
                            {"code": "InvalidInput", "message": "Invalid NextToken", "details": ""}
                        ]
                    },
                    400,
                )
            after, offset = str(state["after"]), int(state["offset"])
        elif "LastUpdatedAfter" in q:
            after, offset = q["LastUpdatedAfter"], 0
        else:
            return self._json(
                "getOrders",
                {
                    "errors": [
                        {
                            "code": "InvalidInput",
                            "message": "Either CreatedAfter or LastUpdatedAfter must be specified",
                            "details": "",
                        }
                    ]
                },
                400,
            )
        size = min(self.page_size, int(q.get("MaxResultsPerPage", "100")))
        try:
            after_ms = iso_to_ms(after)
        except ValueError:
            return self._json(
                "getOrders",
                {
                    "errors": [
                        {
                            "code": "InvalidInput",
                            "message": "Invalid LastUpdatedAfter",
                            "details": "",
                        }
                    ]
                },
                400,
            )
        matching = sorted(
            (o for o in self.orders.values() if iso_to_ms(o["LastUpdateDate"]) >= after_ms),
            key=lambda o: (o["LastUpdateDate"], o["AmazonOrderId"]),
        )
        page = matching[offset : offset + size]
        payload: dict[str, Any] = {"Orders": page, "LastUpdatedBefore": self._now()}
        if offset + size < len(matching):
            payload["NextToken"] = _token({"after": after, "offset": offset + size})
        return self._json("getOrders", {"payload": payload})

    async def _get_order_items(self, request: web.Request) -> web.Response:
        if (denied := self._guard(request, "getOrderItems")) is not None:
            return denied
        oid = request.match_info["oid"]
        if oid not in self.orders:
            return self._headers(
                "getOrderItems", sp_error(404, "InvalidInput", f"Invalid AmazonOrderId {oid}")
            )
        return self._json(
            "getOrderItems",
            {"payload": {"AmazonOrderId": oid, "OrderItems": self.order_items[oid]}},
        )

    async def _get_order(self, request: web.Request) -> web.Response:
        if (denied := self._guard(request, "getOrder")) is not None:
            return denied
        oid = request.match_info["oid"]
        if oid not in self.orders:
            return self._headers(
                "getOrder", sp_error(404, "InvalidInput", f"Invalid AmazonOrderId {oid}")
            )
        return self._json("getOrder", {"payload": self.orders[oid]})

    async def _create_rdt(self, request: web.Request) -> web.Response:
        op = "createRestrictedDataToken"
        if (denied := self._guard(request, op)) is not None:
            return denied
        try:
            body = await request.json()
        except ValueError:
            body = None
        resources = body.get("restrictedResources") if isinstance(body, dict) else None
        if not isinstance(resources, list) or not 0 < len(resources) <= 50:
            return self._headers(
                op, sp_error(400, "InvalidInput", "restrictedResources: 1 to 50 resources")
            )
        allowed = set()
        for res in resources:
            method, path = (res or {}).get("method"), str((res or {}).get("path") or "")
            parts = path.split("/")
            if method != "GET" or len(parts) != 6 or parts[:4] != ["", "orders", "v0", "orders"]:
                return self._headers(
                    op,
                    sp_error(
                        400,
                        "InvalidInput",
                        "Application does not have access to one or more requested resources",
                        f"{method} {path}",
                    ),
                )
            if parts[5] != "address":
                return self._headers(op, sp_error(400, "InvalidInput", f"not restricted: {path}"))
            allowed.add((str(method), path))
        token = f"Atz.sprdt|{uuid.uuid4().hex}"
        self.rdts[token] = (time.monotonic() + self.token_ttl_s, frozenset(allowed))
        self.rdts_issued += 1
        return self._json(op, {"restrictedDataToken": token, "expiresIn": int(self.token_ttl_s)})

    async def _get_order_address(self, request: web.Request) -> web.Response:
        op = "getOrderAddress"
        token = request.headers.get("x-amz-access-token") or ""
        restricted = self.rdts.get(token)
        if restricted is None and (denied := self._auth(request)) is not None:
            return denied
        if restricted is not None:
            expiry, allowed = restricted
            if time.monotonic() >= expiry or ("GET", request.path) not in allowed:
                return sp_error(
                    403,
                    "Unauthorized",
                    DENIED,
                    "The restricted data token does not grant access to this resource.",
                )
        if (throttled := self._quota(op)) is not None:
            return throttled
        oid = request.match_info["oid"]
        if oid not in self.orders:
            return self._headers(op, sp_error(404, "InvalidInput", f"Invalid AmazonOrderId {oid}"))
        address = dict(self.orders[oid]["ShippingAddress"])
        if restricted is None:  # no restricted data without a token that grants it
            address = {k: address[k] for k in ("City", "PostalCode", "CountryCode")}
        return self._json(op, {"payload": {"AmazonOrderId": oid, "ShippingAddress": address}})

    def _package_error(self, oid: str, body: Any) -> str:
        """Why a shipment confirmation cannot apply ('' when it can)."""
        if not isinstance(body, dict) or body.get("marketplaceId") != self.marketplace_id:
            return "marketplaceId: required, the order's marketplace"
        package = body.get("packageDetail")
        if not isinstance(package, dict):
            return "packageDetail: required"
        ref = package.get("packageReferenceId")
        if not isinstance(ref, str) or not ref.isdigit() or int(ref) <= 0:
            return "packageReferenceId: a positive numeric value"
        if any(p["packageReferenceId"] == ref for p in self.shipments.get(oid, [])):
            return f"packageReferenceId {ref} is already confirmed for this order"
        if not package.get("carrierCode"):
            return "carrierCode: required"
        if package["carrierCode"] == "Other" and not package.get("carrierName"):
            return "carrierName: required when carrierCode is Other"
        if not package.get("trackingNumber"):
            return "trackingNumber: required"
        try:
            iso_to_ms(str(package.get("shipDate") or ""))
        except ValueError:
            return "shipDate: ISO 8601 date-time required"
        status = self.orders[oid]["OrderStatus"]
        if status not in ("Unshipped", "PartiallyShipped"):
            return f"The order is {status}: it cannot be confirmed shipped"
        wanted = package.get("orderItems")
        if not isinstance(wanted, list) or not wanted:
            return "orderItems: required"
        items = {item["OrderItemId"]: item for item in self.order_items[oid]}
        for entry in wanted:
            item = items.get(str((entry or {}).get("orderItemId")))
            qty = (entry or {}).get("quantity")
            if item is None:
                return f"orderItemId {entry.get('orderItemId')!r} is not an item of the order"
            if not isinstance(qty, int) or qty <= 0:
                return "orderItems[].quantity: a positive integer"
            if qty > item["QuantityOrdered"] - item["QuantityShipped"]:
                return f"orderItemId {item['OrderItemId']}: more units than remain unshipped"
        return ""

    async def _confirm_shipment(self, request: web.Request) -> web.Response:
        if (denied := self._guard(request, "confirmShipment")) is not None:
            return denied
        oid = request.match_info["oid"]
        if oid not in self.orders:
            return self._headers(
                "confirmShipment", sp_error(404, "NotFound", f"Order {oid} not found")
            )
        try:
            body = await request.json()
        except ValueError:
            body = None
        error = self._package_error(oid, body)
        if error:
            return self._headers(
                "confirmShipment", sp_error(400, "InvalidInput", "Invalid input", error)
            )
        package = body["packageDetail"]
        items = {item["OrderItemId"]: item for item in self.order_items[oid]}
        for entry in package["orderItems"]:
            items[str(entry["orderItemId"])]["QuantityShipped"] += entry["quantity"]
        self.shipments.setdefault(oid, []).append(dict(package))
        done = all(i["QuantityShipped"] >= i["QuantityOrdered"] for i in items.values())
        order = self.orders[oid]
        order["OrderStatus"] = "Shipped" if done else "PartiallyShipped"
        order["NumberOfItemsShipped"] = sum(i["QuantityShipped"] for i in items.values())
        order["NumberOfItemsUnshipped"] = sum(
            i["QuantityOrdered"] - i["QuantityShipped"] for i in items.values()
        )
        order["LastUpdateDate"] = self._now()
        return self._headers("confirmShipment", web.Response(status=204))

    # ---- listings --------------------------------------------------------------------
    def _not_found(self, op: str, sku: str) -> web.Response:
        return self._headers(
            op,
            sp_error(
                404, "NOT_FOUND", f"SKU '{sku}' not found in marketplace {self.marketplace_id}"
            ),
        )

    async def _get_listing(self, request: web.Request) -> web.Response:
        if (denied := self._guard(request, "getListingsItem")) is not None:
            return denied
        sku = request.match_info["sku"]
        if request.match_info["seller"] != self.seller_id or sku not in self.listings:
            return self._not_found("getListingsItem", sku)
        body: dict[str, Any] = {"sku": sku}
        if "fulfillmentAvailability" in request.query.get("includedData", "").split(","):
            body["fulfillmentAvailability"] = [
                {"fulfillmentChannelCode": "DEFAULT", "quantity": self.listings[sku]}
            ]
        return self._json("getListingsItem", body)

    def _check_patch(self, sku: str, patches: Any) -> tuple[int | None, str]:
        """The quantity a patch list sets, or an issue."""
        if sku in self.rejected:
            return None, self.rejected[sku]
        if sku not in self.listings:
            return None, f"SKU '{sku}' has no offer in marketplace {self.marketplace_id}"
        if not isinstance(patches, list) or not patches:
            return None, "patches: required"
        quantity = None
        for patch in patches:
            if not isinstance(patch, dict) or patch.get("op") not in (
                "add",
                "replace",
                "merge",
                "delete",
            ):
                return None, "patches[].op must be add, replace, merge or delete"
            if patch.get("path") != "/attributes/fulfillment_availability":
                continue
            for value in patch.get("value") or []:
                if value.get("fulfillment_channel_code") != "DEFAULT":
                    return None, "fulfillment_channel_code: only DEFAULT is writable by the seller"
                qty = value.get("quantity")
                if not isinstance(qty, int) or isinstance(qty, bool) or qty < 0:
                    return None, "quantity must be a non-negative integer"
                quantity = qty
        if quantity is None:
            return None, "no fulfillment_availability quantity in the patches"
        return quantity, ""

    def _apply(self, sku: str, quantity: int, submission: int, key: str) -> None:
        if submission < self._applied.get(sku, 0):
            return  # a newer submission already landed
        self._applied[sku] = submission
        self.listings[sku] = quantity
        self.writes.append(Write(time.monotonic(), sku, sku, quantity, key))

    def _submit(self, sku: str, quantity: int, key: str, delay: float) -> None:
        self._submitted[sku] = submission = self._submitted.get(sku, 0) + 1
        asyncio.get_running_loop().call_later(delay, self._apply, sku, quantity, submission, key)

    async def _patch_listing(self, request: web.Request) -> web.Response:
        if (denied := self._guard(request, "patchListingsItem")) is not None:
            return denied
        sku = request.match_info["sku"]
        if request.match_info["seller"] != self.seller_id:
            return self._headers("patchListingsItem", sp_error(403, "Unauthorized", DENIED))
        try:
            body = await request.json()
        except ValueError:
            return self._headers(
                "patchListingsItem", sp_error(400, "InvalidInput", "Body is not JSON")
            )
        if not isinstance(body, dict) or not body.get("productType"):
            return self._headers(
                "patchListingsItem", sp_error(400, "InvalidInput", "productType: required")
            )
        submission_id = uuid.uuid4().hex
        quantity, issue = self._check_patch(sku, body.get("patches"))
        if quantity is None:
            return self._json(
                "patchListingsItem",
                {
                    "sku": sku,
                    "status": "INVALID",
                    "submissionId": submission_id,
                    "issues": [
                        {
                            "code": "90000900",
                            "message": issue,
                            "severity": "ERROR",
                            "attributeNames": ["fulfillment_availability"],
                        }
                    ],
                },
            )
        self._submit(sku, quantity, submission_id, self.apply_delay_s)
        return self._json(
            "patchListingsItem",
            {"sku": sku, "status": "ACCEPTED", "submissionId": submission_id, "issues": []},
        )

    # ---- feeds -----------------------------------------------------------------------
    async def _create_document(self, request: web.Request) -> web.Response:
        if (denied := self._guard(request, "createFeedDocument")) is not None:
            return denied
        body = await request.json()
        if not str(body.get("contentType") or "").startswith("application/json"):
            return self._headers(
                "createFeedDocument", sp_error(400, "InvalidInput", "contentType: application/json")
            )
        doc = f"amzn1.tortuga.4.eu.{uuid.uuid4()}"
        self.documents[doc] = None
        url = f"{self.url}/uploads/{doc}?X-Amz-Signature={self._signature(doc)}"
        return self._json("createFeedDocument", {"feedDocumentId": doc, "url": url}, 201)

    async def _upload(self, request: web.Request) -> web.Response:
        doc = request.match_info["doc"]
        if doc not in self.documents or request.query.get("X-Amz-Signature") != self._signature(
            doc
        ):
            return web.Response(
                status=403, text="<Error><Code>SignatureDoesNotMatch</Code></Error>"
            )
        self.documents[doc] = await request.read()
        return web.Response(status=200)

    async def _create_feed(self, request: web.Request) -> web.Response:
        if (denied := self._guard(request, "createFeed")) is not None:
            return denied
        body = await request.json()
        doc = str(body.get("inputFeedDocumentId") or "")
        if body.get("feedType") != "JSON_LISTINGS_FEED" or body.get("marketplaceIds") != [
            self.marketplace_id
        ]:
            return self._headers(
                "createFeed", sp_error(400, "InvalidInput", "feedType or marketplaceIds")
            )
        if self.documents.get(doc) is None:
            return self._headers(
                "createFeed",
                sp_error(400, "InvalidInput", f"inputFeedDocumentId {doc}: nothing uploaded"),
            )
        feed_id = str(50000 + self._next_id())
        fatal = self._fatal > 0
        self._fatal -= 1 if fatal else 0
        self.feeds[feed_id] = {
            "feedId": feed_id,
            "feedType": "JSON_LISTINGS_FEED",
            "marketplaceIds": [self.marketplace_id],
            "createdTime": self._now(),
            "processingStatus": "IN_QUEUE",
        }
        loop = asyncio.get_running_loop()
        loop.call_later(self.feed_delay_s / 2, self._feed_started, feed_id)
        loop.call_later(self.feed_delay_s, self._process_feed, feed_id, doc, fatal)
        return self._json("createFeed", {"feedId": feed_id}, 202)

    def _feed_started(self, feed_id: str) -> None:
        feed = self.feeds[feed_id]
        if feed["processingStatus"] == "IN_QUEUE":
            feed["processingStatus"] = "IN_PROGRESS"
            feed["processingStartTime"] = self._now()

    def _process_feed(self, feed_id: str, doc: str, fatal: bool) -> None:
        feed = self.feeds[feed_id]
        feed["processingEndTime"] = self._now()
        try:
            content = orjson.loads(self.documents[doc] or b"")
            messages = list(content["messages"])
            if len(messages) > FEED_MAX or content["header"]["sellerId"] != self.seller_id:
                raise ValueError("too many messages or another seller")
        except (ValueError, KeyError, TypeError):
            fatal = True
            messages = []
        if fatal:
            feed["processingStatus"] = "FATAL"
            return
        issues = []
        seen: set[Any] = set()
        for message in messages:
            mid = message.get("messageId")
            sku = str(message.get("sku"))
            quantity, issue = self._check_patch(sku, message.get("patches"))
            if mid in seen:
                quantity, issue = None, "messageId is not unique in the feed"
            seen.add(mid)
            if quantity is None:
                issues.append(
                    {"messageId": mid, "code": "90000900", "severity": "ERROR", "message": issue}
                )
                continue
            self._submit(sku, quantity, f"feed:{feed_id}:{mid}", 0.0)
        result = f"amzn1.tortuga.4.eu.{uuid.uuid4()}"
        self.documents[result] = orjson.dumps(
            {
                "header": {"sellerId": self.seller_id, "version": "2.0", "feedId": feed_id},
                "issues": issues,
                "summary": {
                    "errors": len(issues),
                    "warnings": 0,
                    "messagesProcessed": len(messages),
                    "messagesAccepted": len(messages) - len(issues),
                    "messagesInvalid": len(issues),
                },
            }
        )
        feed["resultFeedDocumentId"] = result
        feed["processingStatus"] = "DONE"

    async def _get_feed(self, request: web.Request) -> web.Response:
        if (denied := self._guard(request, "getFeed")) is not None:
            return denied
        feed = self.feeds.get(request.match_info["feed"])
        if feed is None:
            return self._headers(
                "getFeed", sp_error(404, "NotFound", "The requested feed was not found")
            )
        return self._json("getFeed", feed)

    async def _get_document(self, request: web.Request) -> web.Response:
        if (denied := self._guard(request, "getFeedDocument")) is not None:
            return denied
        doc = request.match_info["doc"]
        if self.documents.get(doc) is None:
            return self._headers("getFeedDocument", sp_error(404, "NotFound", "No such document"))
        url = f"{self.url}/downloads/{doc}?X-Amz-Signature={self._signature(doc)}"
        return self._json("getFeedDocument", {"feedDocumentId": doc, "url": url})

    async def _download(self, request: web.Request) -> web.Response:
        doc = request.match_info["doc"]
        content = self.documents.get(doc)
        if content is None or request.query.get("X-Amz-Signature") != self._signature(doc):
            return web.Response(status=403, text="<Error><Code>AccessDenied</Code></Error>")
        return web.Response(body=content, content_type="application/json")

    # ---- FBA inventory ---------------------------------------------------------------
    async def _fba_summaries(self, request: web.Request) -> web.Response:
        if (denied := self._guard(request, "getInventorySummaries")) is not None:
            return denied
        q = request.query
        if (
            q.get("granularityType") != "Marketplace"
            or q.get("granularityId") != self.marketplace_id
        ):
            return self._headers(
                "getInventorySummaries",
                sp_error(400, "InvalidInput", "granularityType/granularityId"),
            )
        details = q.get("details") == "true"
        offset = int(_untoken(q["nextToken"]).get("offset", 0)) if "nextToken" in q else 0
        rows = sorted(self.fba.items())
        page = rows[offset : offset + FBA_PAGE]
        summaries = []
        for sku, (qty, updated) in page:
            row: dict[str, Any] = {
                "asin": "B0" + _digits(sku, 8),
                "fnSku": "X00" + _digits(sku, 7),
                "sellerSku": sku,
                "condition": "NewItem",
                "lastUpdatedTime": updated,
                "productName": sku,
                "totalQuantity": qty,
            }
            if details:
                row["inventoryDetails"] = {
                    "fulfillableQuantity": qty,
                    "inboundWorkingQuantity": 0,
                    "inboundShippedQuantity": 0,
                    "inboundReceivingQuantity": 0,
                }
            summaries.append(row)
        body: dict[str, Any] = {
            "payload": {
                "granularity": {
                    "granularityType": "Marketplace",
                    "granularityId": self.marketplace_id,
                },
                "inventorySummaries": summaries,
            },
            "pagination": {},
        }
        if offset + FBA_PAGE < len(rows):
            body["pagination"] = {"nextToken": _token({"offset": offset + FBA_PAGE})}
        return self._json("getInventorySummaries", body)


def main() -> None:
    parser = argparse.ArgumentParser(description="Fake Amazon Selling Partner API for demos")
    parser.add_argument("--port", type=int, default=8706)
    args = parser.parse_args()
    fake = FakeAmazon(port=args.port)
    for sku in ("chair", "table", "lamp"):
        fake.add_listing(sku, 100)
    asyncio.run(serve_forever(fake, "fake Amazon SP-API (seller A1SELLER)"))


if __name__ == "__main__":
    main()
