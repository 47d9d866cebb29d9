"""A fake Octopia Seller API v2 (Cdiscount), faithful to channel-contracts §5.1 and §8.

- Auth realm: ``POST /auth/realms/maas/protocol/openid-connect/token`` (form
  ``grant_type=client_credentials``, ``client_id``, ``client_secret``) →
  ``{access_token, expires_in, refresh_expires_in, token_type: "Bearer", ...}``; wrong
  credentials → 401 ``{"error": "unauthorized_client", ...}`` (Keycloak's answer). Tokens
  live ``token_ttl_s`` (7,200 s); ``expire_tokens()`` ends every token issued so far (a test
  need not wait two hours). The endpoint counts issuances (``tokens_issued``) and answers
  429 ``{"error": "too_many_requests"}`` past ``token_cap`` per hour.
- API under ``/seller/v2``: ``Authorization: Bearer`` (missing, unknown or expired → 401
  ``{"statusCode": 401, "message": "Unauthorized. Access token is missing or invalid."}``)
  and ``SellerId`` (missing or another seller → 403). ``rate_per_s`` (off by default) is a
  token bucket over every API call: past it, 429 ``{"statusCode": 429, "message": "Rate
  limit is exceeded. Try again in N seconds."}`` with ``Retry-After``.
- ``GET /orders?updatedAtFrom=&pageIndex=&pageSize=`` (sorted by ``updatedAt``) →
  ``{items, pageIndex, pageSize, totalCount}``; ``GET /orders/{id}``;
  ``POST /orders/{id}/approval-status`` ``{"approvalStatus": "Accepted" | "Refused",
  "reason"}`` only from ``WaitingAcceptance`` (else 400 with the order's status). An order
  left in ``WaitingAcceptance`` past ``acceptance_window_s`` goes ``Cancelled``. Orders carry
  a customer block and a ``shippingAddress`` (``civility``, ``firstName``, ``lastName``,
  ``companyName``, ``apartmentNumber``, ``building``, ``street``, ``placeName``, ``zipCode``,
  ``city``, ``countryCode``, ``phone``): personal data a connector must drop, read only by
  the shipping service's address book at label time. An unknown order is 404.
- ``POST /orders/{id}/shipments`` ``{carrierName, trackingNumber, trackingUrl, lines:
  [{lineId, quantity}]}`` → 201 ``{shipmentId}``, only from ``Accepted`` or
  ``InPreparation`` (else 400 with the order's status); a missing carrier or tracking number,
  a tracking URL that is not http(s), an unknown line or more units than the line has left
  → 400. The shipment is listed on the order (``shipments``); the order is ``Shipped`` once
  every unit of every line is, ``InPreparation`` while some are left.
- Offer packages: ``POST /offer-packages`` ``{name, packageType, salesChannelId}`` → 201
  ``{packageId, packageState: "WaitingForCompletion"}``; ``POST
  /offer-packages/{id}/offer-requests`` ``{"offerRequests": [{sellerExternalReference,
  quantity}]}`` only while ``WaitingForCompletion`` (else 400); ``PATCH /offer-packages/{id}``
  ``{"packageState": "Ready"}`` → ``IntegrationPending`` for ``integration_delay_s``, then
  ``Integrated`` (``Rejected`` when every request was rejected); ``GET /offer-packages/{id}``;
  ``GET /offer-packages/{id}/offer-requests-results`` → per request
  ``{sellerExternalReference, integrationStatus, resultCode, message}``. ``reject(sku, code,
  times)`` rejects the next requests of a reference (an unknown reference is always rejected
  ``OfferNotFound``). ``GET /offers?salesChannelId=&sellerExternalReferences=`` reads
  quantities back. ``package_quota_per_h`` (off by default; an integrator reports about 25)
  refuses package creations past it with 429 ``{"code": "QuotaExceeded"}`` and
  ``Retry-After``.

Octopia's exact JSON names for the order filters, the approval body, the shipping address
block and the results route are not published in what we could read; the names above are
this project's reading and are kept in one place (here and ``connectors.cdiscount.client``).

Run alone: ``python -m connectors.testing.cdiscount --port 8705``.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections import deque
from typing import Any

from aiohttp import web

from connectors.testing.base import FakeChannel, Write, iso_now, serve_forever
from schemas.times import iso_to_ms

TOKEN_PATH = "/auth/realms/maas/protocol/openid-connect/token"  # noqa: S105 - a route
API = "/seller/v2"
MAX_PAGE = 100


def api_error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(
        {"statusCode": status, "message": message}, status=status, headers=headers
    )


class FakeCdiscount(FakeChannel):
    def __init__(
        self,
        *,
        client_id: str = "cdiscount-client",
        client_secret: str = "cdiscount-secret",  # noqa: S107
        seller_id: str = "98979",
        sales_channel: str = "CDISFR",
        token_ttl_s: float = 7200.0,
        token_cap: int = 500,
        rate_per_s: float | None = None,
        burst: float = 5.0,
        acceptance_window_s: float = 172800.0,
        integration_delay_s: float = 0.3,
        package_quota_per_h: int | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int | None = None,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.seller_id = seller_id
        self.sales_channel = sales_channel
        self.token_ttl_s = token_ttl_s
        self.token_cap = token_cap
        self.acceptance_window_s = acceptance_window_s
        self.integration_delay_s = integration_delay_s
        self.package_quota_per_h = package_quota_per_h
        self._packages_at: deque[float] = deque()
        self.quota_refusals = 0
        self.tokens: dict[str, float] = {}  # token -> expiry (monotonic)
        self.tokens_issued = 0
        self.token_refusals = 0
        self._issued_at: deque[float] = deque()
        self.expired_calls = 0  # API calls answered 401 for an expired token
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._bucket = burst
        self._bucket_at = time.monotonic()
        self.throttled_calls = 0
        self.offers: dict[str, int] = {}
        self.orders: dict[str, dict[str, Any]] = {}
        self.approvals: list[tuple[str, str, str | None]] = []  # (order, status, reason)
        self.shipments: list[dict[str, Any]] = []  # every shipment taken, with its order id
        self.packages: dict[str, dict[str, Any]] = {}
        self.rejections: dict[str, deque[str]] = {}
        self._seq = 0
        super().__init__(host=host, port=port, seed=seed)

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post(TOKEN_PATH, self._token),
            web.get(API + "/orders", self._list_orders),
            web.get(API + "/orders/{oid}", self._get_order),
            web.post(API + "/orders/{oid}/approval-status", self._approval),
            web.post(API + "/orders/{oid}/shipments", self._ship),
            web.post(API + "/offer-packages", self._create_package),
            web.get(API + "/offer-packages/{pid}", self._get_package),
            web.patch(API + "/offer-packages/{pid}", self._patch_package),
            web.post(API + "/offer-packages/{pid}/offer-requests", self._add_requests),
            web.get(API + "/offer-packages/{pid}/offer-requests-results", self._results),
            web.get(API + "/offers", self._list_offers),
        ]

    # ---- test controls -------------------------------------------------------------------
    def add_offer(self, sku: str, quantity: int = 0) -> None:
        self.offers[sku] = quantity

    def quantity(self, sku: str) -> int | None:
        return self.offers.get(sku)

    def expire_tokens(self) -> int:
        """Every token issued so far expires now; returns how many were live."""
        live = sum(1 for expiry in self.tokens.values() if expiry > time.monotonic())
        for token in self.tokens:
            self.tokens[token] = 0.0
        return live

    def reject(self, sku: str, code: str, times: int = 1) -> None:
        """The next ``times`` offer requests of ``sku`` are rejected with ``code``."""
        self.rejections.setdefault(sku, deque()).extend([code] * times)

    def place_order(
        self,
        lines: list[tuple[str, int]],
        *,
        status: str = "WaitingAcceptance",
        created_offset_s: float = 0.0,
    ) -> dict[str, Any]:
        self._seq += 1
        oid = f"{time.strftime('%y%m%d')}{self._seq:04d}{uuid.uuid4().hex[:4].upper()}"
        created = iso_now(self.clock_offset_s + created_offset_s)
        order = {
            "orderId": oid,
            "status": status,
            "salesChannel": self.sales_channel,
            "createdAt": created,
            "updatedAt": iso_now(self.clock_offset_s),
            "purchasedAt": created,
            "_deadline": time.monotonic() + self.acceptance_window_s + created_offset_s,
            "customer": {
                "civility": "MME",
                "firstName": "Camille",
                "lastName": "Martin",
                "email": "camille.martin@example.fr",
                "phone": "+33612345678",
            },
            "shippingAddress": {
                "civility": "MME",
                "firstName": "Camille",
                "lastName": "Martin",
                "companyName": None,
                "apartmentNumber": "Appt 4",
                "building": "Bat C",
                "street": "12 rue des Lilas",
                "placeName": None,
                "city": "Lyon",
                "zipCode": "69003",
                "countryCode": "FR",
                "phone": "+33612345678",
            },
            "lines": [
                {
                    "lineId": str(n),
                    "offer": {"sellerProductId": sku, "productId": f"CDS{abs(hash(sku)) % 10**8}"},
                    "quantity": qty,
                    "unitSalesPrice": 49.0,
                    "currency": "EUR",
                }
                for n, (sku, qty) in enumerate(lines, start=1)
            ],
            "shipments": [],
        }
        self.orders[oid] = order
        return self._public(order)

    def set_status(self, oid: str, status: str) -> None:
        order = self.orders[oid]
        order["status"] = status
        order["updatedAt"] = iso_now(self.clock_offset_s)

    def status(self, oid: str) -> str:
        self._sweep()
        return str(self.orders[oid]["status"])

    # ---- error shapes --------------------------------------------------------------------
    def throttled(self, retry_after: float) -> web.Response:
        self.throttled_calls += 1
        seconds = max(1, round(retry_after))
        return api_error(
            429,
            f"Rate limit is exceeded. Try again in {seconds} seconds.",
            {"Retry-After": str(seconds)},
        )

    def failure(self, status: int, retry_after: float | None) -> web.Response:
        if status == 429:
            return self.throttled(1.0 if retry_after is None else retry_after)
        headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
        return api_error(status, "Internal server error", headers)

    # ---- plumbing ------------------------------------------------------------------------
    def _public(self, order: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in order.items() if not k.startswith("_")}

    def _sweep(self) -> None:
        now = time.monotonic()
        for order in self.orders.values():
            if order["status"] == "WaitingAcceptance" and order["_deadline"] <= now:
                order["status"] = "Cancelled"
                order["updatedAt"] = iso_now(self.clock_offset_s)

    def _guard(self, request: web.Request) -> web.Response | None:
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else ""
        expiry = self.tokens.get(token)
        if expiry is None or expiry <= time.monotonic():
            if expiry is not None:
                self.expired_calls += 1
            return web.json_response(
                {"statusCode": 401, "message": "Unauthorized. Access token is missing or invalid."},
                status=401,
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        if request.headers.get("SellerId") != self.seller_id:
            return api_error(403, "SellerId header is missing or not allowed for this client")
        if self.rate_per_s:
            now = time.monotonic()
            self._bucket = min(self.burst, self._bucket + (now - self._bucket_at) * self.rate_per_s)
            self._bucket_at = now
            if self._bucket < 1:
                return self.throttled((1 - self._bucket) / self.rate_per_s)
            self._bucket -= 1
        self._sweep()
        return None

    # ---- auth ----------------------------------------------------------------------------
    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        if form.get("grant_type") != "client_credentials":
            return web.json_response(
                {"error": "unsupported_grant_type", "error_description": "Unsupported grant_type"},
                status=400,
            )
        if (
            form.get("client_id") != self.client_id
            or form.get("client_secret") != self.client_secret
        ):
            return web.json_response(
                {
                    "error": "unauthorized_client",
                    "error_description": "Invalid client or Invalid client credentials",
                },
                status=401,
            )
        now = time.monotonic()
        while self._issued_at and self._issued_at[0] < now - 3600:
            self._issued_at.popleft()
        if len(self._issued_at) >= self.token_cap:
            self.token_refusals += 1
            return web.json_response(
                {"error": "too_many_requests", "error_description": "Token issuance limit"},
                status=429,
            )
        self._issued_at.append(now)
        self.tokens_issued += 1
        token = f"eyJ{uuid.uuid4().hex}{uuid.uuid4().hex}"
        self.tokens[token] = now + self.token_ttl_s
        return web.json_response(
            {
                "access_token": token,
                "expires_in": int(self.token_ttl_s),
                "refresh_expires_in": 0,
                "token_type": "Bearer",
                "not-before-policy": 0,
                "scope": "profile email",
            }
        )

    # ---- orders --------------------------------------------------------------------------
    async def _list_orders(self, request: web.Request) -> web.Response:
        if (denied := self._guard(request)) is not None:
            return denied
        since = request.query.get("updatedAtFrom")
        try:
            page = int(request.query.get("pageIndex", "1"))
            size = int(request.query.get("pageSize", "50"))
        except ValueError:
            return api_error(400, "pageIndex and pageSize must be integers")
        if page < 1 or not 1 <= size <= MAX_PAGE:
            return api_error(400, f"pageIndex >= 1 and pageSize between 1 and {MAX_PAGE}")
        rows = sorted(self.orders.values(), key=lambda o: (o["updatedAt"], o["orderId"]))
        if since:
            try:
                since_ms = iso_to_ms(since)
            except ValueError:
                return api_error(400, f"updatedAtFrom {since!r} is not an ISO 8601 time")
            rows = [o for o in rows if iso_to_ms(o["updatedAt"]) >= since_ms]
        chunk = rows[(page - 1) * size : page * size]
        return web.json_response(
            {
                "items": [self._public(o) for o in chunk],
                "pageIndex": page,
                "pageSize": size,
                "totalCount": len(rows),
            }
        )

    async def _get_order(self, request: web.Request) -> web.Response:
        if (denied := self._guard(request)) is not None:
            return denied
        order = self.orders.get(request.match_info["oid"])
        if order is None:
            return api_error(404, "Order not found")
        return web.json_response(self._public(order))

    async def _approval(self, request: web.Request) -> web.Response:
        if (denied := self._guard(request)) is not None:
            return denied
        order = self.orders.get(request.match_info["oid"])
        if order is None:
            return api_error(404, "Order not found")
        try:
            body = await request.json()
        except ValueError:
            return api_error(400, "Body is not JSON")
        status = body.get("approvalStatus") if isinstance(body, dict) else None
        if status not in ("Accepted", "Refused"):
            return api_error(400, "approvalStatus must be Accepted or Refused")
        if order["status"] != "WaitingAcceptance":
            return api_error(
                400,
                f"Order {order['orderId']} is in status {order['status']}, not WaitingAcceptance",
            )
        order["status"] = status
        order["updatedAt"] = iso_now(self.clock_offset_s)
        self.approvals.append((order["orderId"], status, body.get("reason")))
        return web.Response(status=204)

    async def _ship(self, request: web.Request) -> web.Response:
        if (denied := self._guard(request)) is not None:
            return denied
        order = self.orders.get(request.match_info["oid"])
        if order is None:
            return api_error(404, "Order not found")
        try:
            body = await request.json()
        except ValueError:
            return api_error(400, "Body is not JSON")
        if not isinstance(body, dict):
            return api_error(400, "Body must be an object")
        if order["status"] not in ("Accepted", "InPreparation"):
            return api_error(
                400, f"Order {order['orderId']} is in status {order['status']}: cannot be shipped"
            )
        carrier, number, url = (
            body.get(k) for k in ("carrierName", "trackingNumber", "trackingUrl")
        )
        if not isinstance(carrier, str) or not carrier.strip():
            return api_error(400, "carrierName is required")
        if not isinstance(number, str) or not number.strip():
            return api_error(400, "trackingNumber is required")
        if url is not None and (
            not isinstance(url, str) or not url.startswith(("http://", "https://"))
        ):
            return api_error(400, "trackingUrl must be an http(s) URL")
        rows = body.get("lines")
        if not isinstance(rows, list) or not rows:
            return api_error(400, "lines must be a non-empty list")
        left = self._left(order)
        taken: dict[str, int] = {}
        for row in rows:
            line_id = str(row.get("lineId")) if isinstance(row, dict) else ""
            qty = row.get("quantity") if isinstance(row, dict) else None
            if line_id not in left:
                return api_error(400, f"Unknown lineId {line_id!r} for order {order['orderId']}")
            if not isinstance(qty, int) or isinstance(qty, bool) or qty <= 0:
                return api_error(400, f"quantity of line {line_id} must be a positive integer")
            taken[line_id] = taken.get(line_id, 0) + qty
            if taken[line_id] > left[line_id]:
                return api_error(400, f"Line {line_id}: only {left[line_id]} unit(s) left to ship")
        shipment = {
            "shipmentId": uuid.uuid4().hex,
            "carrierName": carrier,
            "trackingNumber": number,
            "trackingUrl": url,
            "lines": [{"lineId": k, "quantity": v} for k, v in taken.items()],
        }
        order["shipments"].append(shipment)
        self.shipments.append({**shipment, "orderId": order["orderId"]})
        done = all(v == 0 for v in self._left(order).values())
        order["status"] = "Shipped" if done else "InPreparation"
        order["updatedAt"] = iso_now(self.clock_offset_s)
        return web.json_response({"shipmentId": shipment["shipmentId"]}, status=201)

    @staticmethod
    def _left(order: dict[str, Any]) -> dict[str, int]:
        """Units of each line not shipped yet."""
        left = {str(line["lineId"]): int(line["quantity"]) for line in order["lines"]}
        for shipment in order["shipments"]:
            for row in shipment["lines"]:
                left[row["lineId"]] -= int(row["quantity"])
        return left

    # ---- offer packages ------------------------------------------------------------------
    async def _create_package(self, request: web.Request) -> web.Response:
        if (denied := self._guard(request)) is not None:
            return denied
        body = await request.json()
        if body.get("packageType") not in ("Upsert", "Update", "Delete"):
            return api_error(400, "packageType must be Upsert, Update or Delete")
        if body.get("salesChannelId") != self.sales_channel:
            return api_error(400, f"Unknown salesChannelId {body.get('salesChannelId')!r}")
        if self.package_quota_per_h is not None:
            now = time.monotonic()
            while self._packages_at and self._packages_at[0] < now - 3600:
                self._packages_at.popleft()
            if len(self._packages_at) >= self.package_quota_per_h:
                self.quota_refusals += 1
                wait = max(1, round(self._packages_at[0] + 3600 - now))
                return web.json_response(
                    {
                        "statusCode": 429,
                        "code": "QuotaExceeded",
                        "message": "Package quota exceeded",
                    },
                    status=429,
                    headers={"Retry-After": str(wait)},
                )
            self._packages_at.append(now)
        pid = uuid.uuid4().hex
        self.packages[pid] = {
            "packageId": pid,
            "name": body.get("name"),
            "packageType": body["packageType"],
            "salesChannelId": body["salesChannelId"],
            "packageState": "WaitingForCompletion",
            "requests": [],
            "results": [],
        }
        return web.json_response(self._package_view(pid), status=201)

    def _package_view(self, pid: str) -> dict[str, Any]:
        p = self.packages[pid]
        return {
            "packageId": pid,
            "name": p["name"],
            "packageType": p["packageType"],
            "salesChannelId": p["salesChannelId"],
            "packageState": p["packageState"],
            "offerRequestsCount": len(p["requests"]),
        }

    async def _get_package(self, request: web.Request) -> web.Response:
        if (denied := self._guard(request)) is not None:
            return denied
        pid = request.match_info["pid"]
        if pid not in self.packages:
            return api_error(404, "Package not found")
        return web.json_response(self._package_view(pid))

    async def _add_requests(self, request: web.Request) -> web.Response:
        if (denied := self._guard(request)) is not None:
            return denied
        package = self.packages.get(request.match_info["pid"])
        if package is None:
            return api_error(404, "Package not found")
        if package["packageState"] != "WaitingForCompletion":
            return api_error(
                400, f"Package is {package['packageState']}: offer requests cannot be added"
            )
        body = await request.json()
        rows = body.get("offerRequests") if isinstance(body, dict) else None
        if not isinstance(rows, list) or not rows:
            return api_error(400, "offerRequests must be a non-empty list")
        for row in rows:
            if not isinstance(row, dict) or not row.get("sellerExternalReference"):
                return api_error(400, "every offer request needs a sellerExternalReference")
        package["requests"].extend(rows)
        return web.Response(status=204)

    async def _patch_package(self, request: web.Request) -> web.Response:
        if (denied := self._guard(request)) is not None:
            return denied
        pid = request.match_info["pid"]
        package = self.packages.get(pid)
        if package is None:
            return api_error(404, "Package not found")
        body = await request.json()
        if body.get("packageState") != "Ready":
            return api_error(400, "packageState can only be set to Ready")
        if package["packageState"] != "WaitingForCompletion":
            return api_error(400, f"Package is already {package['packageState']}")
        package["packageState"] = "IntegrationPending"
        self.in_background(self._integrate(pid))
        return web.json_response(self._package_view(pid))

    async def _integrate(self, pid: str) -> None:
        await asyncio.sleep(self.integration_delay_s)
        package = self.packages[pid]
        seen: set[str] = set()
        results = []
        for row in package["requests"]:
            ref = str(row["sellerExternalReference"])
            result = {"sellerExternalReference": ref}
            queued = self.rejections.get(ref)
            qty = row.get("quantity")
            if ref in seen:
                result.update(
                    integrationStatus="Duplicated",
                    resultCode="Duplicated",
                    message="Reference twice in the package",
                )
            elif ref not in self.offers:
                result.update(
                    integrationStatus="Rejected",
                    resultCode="OfferNotFound",
                    message=f"No offer {ref} for this seller",
                )
            elif queued:
                code = queued.popleft()
                result.update(
                    integrationStatus="Rejected",
                    resultCode=code,
                    message=f"Offer request rejected: {code}",
                )
            elif not isinstance(qty, int) or isinstance(qty, bool) or qty < 0:
                result.update(
                    integrationStatus="Rejected",
                    resultCode="InvalidQuantity",
                    message=f"Invalid quantity {qty!r}",
                )
            else:
                self.offers[ref] = qty
                self.writes.append(Write(time.monotonic(), ref, ref, qty, pid))
                result.update(integrationStatus="Integrated", resultCode="Updated", message="")
            seen.add(ref)
            results.append(result)
        package["results"] = results
        integrated = any(r["integrationStatus"] == "Integrated" for r in results)
        package["packageState"] = "Integrated" if integrated else "Rejected"

    async def _results(self, request: web.Request) -> web.Response:
        if (denied := self._guard(request)) is not None:
            return denied
        package = self.packages.get(request.match_info["pid"])
        if package is None:
            return api_error(404, "Package not found")
        page = int(request.query.get("pageIndex", "1"))
        size = min(MAX_PAGE, int(request.query.get("pageSize", "50")))
        rows = package["results"]
        return web.json_response(
            {"items": rows[(page - 1) * size : page * size], "totalCount": len(rows)}
        )

    async def _list_offers(self, request: web.Request) -> web.Response:
        if (denied := self._guard(request)) is not None:
            return denied
        if request.query.get("salesChannelId") != self.sales_channel:
            return api_error(400, "salesChannelId is required")
        wanted = [r for r in request.query.get("sellerExternalReferences", "").split(",") if r]
        refs = wanted or sorted(self.offers)
        return web.json_response(
            {
                "items": [
                    {
                        "sellerExternalReference": r,
                        "quantity": self.offers[r],
                        "salesChannelId": self.sales_channel,
                    }
                    for r in refs
                    if r in self.offers
                ]
            }
        )


def main() -> None:
    parser = argparse.ArgumentParser(description="Fake Octopia Seller API (Cdiscount)")
    parser.add_argument("--port", type=int, default=8705)
    args = parser.parse_args()
    asyncio.run(serve_forever(FakeCdiscount(port=args.port), "fake Octopia"))


if __name__ == "__main__":
    main()
