"""HTTP transport to the Selling Partner API of one seller in one region.

``base_url`` is the regional host (``https://sellingpartnerapi-eu.amazon.com``; a fake's URL
in tests). Every request carries ``x-amz-access-token`` (Login with Amazon,
:mod:`connectors.amazon.auth`) and goes through its operation's token bucket
(:mod:`connectors.amazon.limits`). Amazon's error answer is
``{"errors": [{"code", "message", "details"}]}``:

- 429 ``QuotaExceeded`` → ``ThrottledError`` (the operation's bucket waits);
- 403 ``Unauthorized`` (token expired or revoked) → a new token and the request once more;
  still refused → ``RejectedError`` (the app's authorisation or role); a request made with a
  Restricted Data Token (``restricted``: restricted data, e.g. an order's address) is not
  repeated;
- 5xx, network → ``UnavailableError``; another 4xx → ``AmazonError`` with Amazon's code.

Pre-signed document URLs (feeds) are read and written without the token, as Amazon asks.
"""

from __future__ import annotations

import gzip
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp
import orjson

from connectors.amazon.auth import LwaTokens
from connectors.amazon.limits import AmazonLimits
from connectors.framework import redact
from connectors.framework.types import RejectedError, UnavailableError
from schemas.times import ms_to_iso

LISTINGS = "/listings/2021-08-01/items"
FEEDS = "/feeds/2021-06-30"
TOKENS = "/tokens/2021-03-01/restrictedDataToken"
FEED_CONTENT_TYPE = "application/json; charset=UTF-8"


class AmazonError(Exception):
    """A 4xx answer other than throttling and authorisation: Amazon's first error code."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


def first_error(body: Any) -> tuple[str, str]:
    errors = body.get("errors") if isinstance(body, dict) else None
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        first = errors[0]
        detail = str(first.get("details") or "")
        message = str(first.get("message") or "")
        return str(first.get("code") or ""), f"{message} {detail}".strip()
    return "", str(body)[:200]


class AmazonClient:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        tokens: LwaTokens,
        *,
        seller_id: str,
        marketplace_id: str,
        limits: AmazonLimits | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        self._session = session
        self._root = base_url.rstrip("/")
        self.tokens = tokens
        self.seller_id = seller_id
        self.marketplace_id = marketplace_id
        self.limits = limits or AmazonLimits()
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def call(
        self,
        op: str,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        restricted: str | None = None,
    ) -> Any:
        """The decoded JSON answer of one operation (see the module docstring for errors);
        ``restricted``: a Restricted Data Token sent instead of the access token."""
        for attempt in range(2):
            token = restricted or await self.tokens.token()
            await self.limits.before(op)
            status, headers, body = await self._send(method, path, token, params, json)
            self.limits.after(op, status, headers)
            unauthorized = status == 403 and first_error(body)[0] == "Unauthorized"
            if unauthorized and attempt == 0 and restricted is None:
                self.tokens.invalidate(token)  # expired or revoked: a new one, once
                continue
            if status >= 500:
                raise UnavailableError(f"Amazon {status} on {op}")
            code, message = first_error(body)
            if status in (401, 403):
                raise RejectedError(
                    f"Amazon {status} {code} on {op}: {message} (check the app's authorisation "
                    "by the seller and its roles)"
                )
            if status >= 400:
                raise AmazonError(status, code, message)
            return body
        raise AssertionError("unreachable")

    async def _send(
        self,
        method: str,
        path: str,
        token: str,
        params: Mapping[str, str] | None,
        json: Any,
    ) -> tuple[int, Mapping[str, str], Any]:
        headers = {"x-amz-access-token": token, "accept": "application/json"}
        try:
            async with self._session.request(
                method,
                self._root + path,
                params=params,
                json=json,
                headers=headers,
                timeout=self._timeout,
            ) as response:
                raw = await response.read()
                body = orjson.loads(raw) if raw.strip() else {}
                return response.status, response.headers, body
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            # never {exc!r}: aiohttp's errors may print the request headers (the token)
            raise UnavailableError(f"Amazon unreachable: {redact.describe(exc)}") from None

    # ---- orders ----------------------------------------------------------------------
    async def orders_updated_since(self, since_ms: int) -> list[dict[str, Any]]:
        """``getOrders`` by ``LastUpdatedAfter``, every page (``NextToken``)."""
        params = {
            "MarketplaceIds": self.marketplace_id,
            "LastUpdatedAfter": ms_to_iso(since_ms),
            "MaxResultsPerPage": "100",
        }
        orders: list[dict[str, Any]] = []
        while True:
            body = await self.call("getOrders", "GET", "/orders/v0/orders", params=params)
            payload = body.get("payload") or {}
            orders.extend(payload.get("Orders") or [])
            token = payload.get("NextToken")
            if not token:
                return orders
            params = {"MarketplaceIds": self.marketplace_id, "NextToken": str(token)}

    async def order_items(self, order_id: str) -> list[dict[str, Any]]:
        """``getOrderItems``, every page."""
        items: list[dict[str, Any]] = []
        params: dict[str, str] = {}
        while True:
            body = await self.call(
                "getOrderItems", "GET", f"/orders/v0/orders/{order_id}/orderItems", params=params
            )
            payload = body.get("payload") or {}
            items.extend(payload.get("OrderItems") or [])
            token = payload.get("NextToken")
            if not token:
                return items
            params = {"NextToken": str(token)}

    async def order(self, order_id: str) -> dict[str, Any] | None:
        """``getOrder``: the order (None: Amazon does not know it)."""
        try:
            body = await self.call("getOrder", "GET", f"/orders/v0/orders/{order_id}")
        except AmazonError as exc:
            if exc.status in (400, 404) and exc.code in ("InvalidInput", "NotFound"):
                return None
            raise
        payload = body.get("payload")
        return dict(payload) if isinstance(payload, dict) else None

    async def confirm_shipment(self, order_id: str, package: Mapping[str, Any]) -> None:
        """``confirmShipment`` of one package (``packageDetail``) of an order: 204."""
        await self.call(
            "confirmShipment",
            "POST",
            f"/orders/v0/orders/{order_id}/shipmentConfirmation",
            json={"packageDetail": dict(package), "marketplaceId": self.marketplace_id},
        )

    async def restricted_data_token(self, method: str, path: str) -> str:
        """``createRestrictedDataToken`` for one restricted resource. Not registered with
        :mod:`~connectors.framework.redact` (one per label would grow its list without end):
        it is used for one call and never printed (errors never show request headers)."""
        body = await self.call(
            "createRestrictedDataToken",
            "POST",
            TOKENS,
            json={"restrictedResources": [{"method": method, "path": path}]},
        )
        token = str(body.get("restrictedDataToken") or "")
        if not token:
            raise UnavailableError("Amazon answered createRestrictedDataToken without a token")
        return token

    async def order_address(self, order_id: str) -> dict[str, Any] | None:
        """``getOrderAddress`` with a Restricted Data Token for this order's address: the
        ``ShippingAddress`` with the buyer's name and street (None: no such order or no
        address). Kept by the caller in memory only."""
        path = f"/orders/v0/orders/{order_id}/address"
        rdt = await self.restricted_data_token("GET", path)
        try:
            body = await self.call("getOrderAddress", "GET", path, restricted=rdt)
        except AmazonError as exc:
            if exc.status in (400, 404) and exc.code in ("InvalidInput", "NotFound"):
                return None
            raise
        address = (body.get("payload") or {}).get("ShippingAddress")
        return dict(address) if isinstance(address, dict) else None

    async def fba_inventory(self) -> list[dict[str, Any]]:
        """``getInventorySummaries`` of the marketplace with details, every page."""
        base = {
            "granularityType": "Marketplace",
            "granularityId": self.marketplace_id,
            "marketplaceIds": self.marketplace_id,
            "details": "true",
        }
        params = dict(base)
        summaries: list[dict[str, Any]] = []
        while True:
            body = await self.call(
                "getInventorySummaries", "GET", "/fba/inventory/v1/summaries", params=params
            )
            summaries.extend((body.get("payload") or {}).get("inventorySummaries") or [])
            token = (body.get("pagination") or {}).get("nextToken")
            if not token:
                return summaries
            params = {**base, "nextToken": str(token)}

    # ---- listings --------------------------------------------------------------------
    async def patch_quantity(self, sku: str, quantity: int) -> dict[str, Any]:
        """``patchListingsItem`` of the merchant-fulfilled quantity: ``{sku, status,
        submissionId, issues}`` (``ACCEPTED`` is queued, not applied)."""
        body = await self.call(
            "patchListingsItem",
            "PATCH",
            f"{LISTINGS}/{self.seller_id}/{sku}",
            params={"marketplaceIds": self.marketplace_id, "issueLocale": "en_US"},
            json={"productType": "PRODUCT", "patches": [quantity_patch(quantity)]},
        )
        return dict(body)

    async def listed_quantity(self, sku: str) -> int | None:
        """The ``DEFAULT`` quantity Amazon holds (None: no such listing or no quantity)."""
        try:
            body = await self.call(
                "getListingsItem",
                "GET",
                f"{LISTINGS}/{self.seller_id}/{sku}",
                params={
                    "marketplaceIds": self.marketplace_id,
                    "includedData": "fulfillmentAvailability",
                },
            )
        except AmazonError as exc:
            if exc.status == 404:
                return None
            raise
        for entry in body.get("fulfillmentAvailability") or []:
            if entry.get("fulfillmentChannelCode") == "DEFAULT" and "quantity" in entry:
                return int(entry["quantity"])
        return None

    # ---- feeds -----------------------------------------------------------------------
    async def submit_listings_feed(self, messages: Sequence[Mapping[str, Any]]) -> str:
        """Create a document, upload the feed to its URL, create the feed: its id."""
        doc = await self.call(
            "createFeedDocument",
            "POST",
            f"{FEEDS}/documents",
            json={"contentType": FEED_CONTENT_TYPE},
        )
        content = orjson.dumps(
            {
                "header": {"sellerId": self.seller_id, "version": "2.0", "issueLocale": "en_US"},
                "messages": list(messages),
            }
        )
        await self._document("PUT", str(doc["url"]), content)
        feed = await self.call(
            "createFeed",
            "POST",
            f"{FEEDS}/feeds",
            json={
                "feedType": "JSON_LISTINGS_FEED",
                "marketplaceIds": [self.marketplace_id],
                "inputFeedDocumentId": str(doc["feedDocumentId"]),
            },
        )
        return str(feed["feedId"])

    async def feed(self, feed_id: str) -> dict[str, Any]:
        return dict(await self.call("getFeed", "GET", f"{FEEDS}/feeds/{feed_id}"))

    async def feed_report(self, document_id: str) -> dict[str, Any]:
        """The processing report of a done feed (decompressed when Amazon says GZIP)."""
        doc = await self.call("getFeedDocument", "GET", f"{FEEDS}/documents/{document_id}")
        raw = await self._document("GET", str(doc["url"]))
        if str(doc.get("compressionAlgorithm") or "").upper() == "GZIP":
            raw = gzip.decompress(raw)
        report = orjson.loads(raw)
        if not isinstance(report, dict):
            raise UnavailableError(f"Amazon feed report {document_id} is not a JSON object")
        return report

    async def _document(self, method: str, url: str, content: bytes | None = None) -> bytes:
        headers = {"content-type": FEED_CONTENT_TYPE} if content is not None else {}
        try:
            async with self._session.request(
                method, url, data=content, headers=headers, timeout=self._timeout
            ) as response:
                raw = await response.read()
                if response.status >= 300:
                    raise UnavailableError(f"Amazon document {method} answered {response.status}")
                return raw
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise UnavailableError(f"Amazon document unreachable: {redact.describe(exc)}") from None


def quantity_patch(quantity: int) -> dict[str, Any]:
    return {
        "op": "replace",
        "path": "/attributes/fulfillment_availability",
        "value": [{"fulfillment_channel_code": "DEFAULT", "quantity": int(quantity)}],
    }
