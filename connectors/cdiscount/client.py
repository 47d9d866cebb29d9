"""HTTP transport to the Octopia Seller API v2 for one seller.

- Auth: OAuth2 client credentials at the auth realm's token URL (form
  ``grant_type=client_credentials``, ``client_id``, ``client_secret``) → ``access_token``
  valid ``expires_in`` seconds (2 h). The token is reused until ``refresh_margin`` before it
  expires (the token endpoint is itself rate-limited: never one token per request); a 401
  from the API (token expired or revoked early) drops it and the request is sent once more
  with a new one.
- Every API call carries ``Authorization: Bearer <token>`` and ``SellerId: <seller id>``.
- Errors: 429 (and 503 with ``Retry-After``) → ``ThrottledError`` through
  :class:`CdiscountLimits`; 5xx or network → ``UnavailableError``; 401 twice or 403 →
  ``RejectedError`` (credentials, seller id); other 4xx → :class:`OctopiaError` with
  Octopia's message.

``base_url`` is the API root, ``https://api.octopia-io.net/seller/v2`` (a fake's URL in
tests).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import aiohttp

from connectors.cdiscount.limits import CdiscountLimits
from connectors.framework import redact
from connectors.framework.ratelimit import parse_retry_after
from connectors.framework.types import RejectedError, ThrottledError, UnavailableError

PAGE_SIZE = 100


class OctopiaError(Exception):
    """A 4xx answer of the API other than auth and throttling, with Octopia's message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


def message_of(body: Any) -> str:
    """Octopia's error text: ``{"message"}``, ``{"title", "detail"}`` or ``{"errors"}``."""
    if not isinstance(body, dict):
        return str(body)[:200]
    for key in ("message", "detail", "title", "error_description", "error"):
        if body.get(key):
            return str(body[key])[:300]
    errors = body.get("errors")
    if errors:
        return str(errors)[:300]
    return "no error message"


def octopia_time(ms: int) -> str:
    """Epoch ms → ``2026-11-30T06:00:00.000Z`` (UTC, ISO 8601)."""
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


ADDRESS_LINES = ("companyName", "apartmentNumber", "building", "street", "placeName")
"""The lines of a French address in their postal order (company, flat, building, street,
place)."""


def shipping_address_fields(order: Mapping[str, Any]) -> dict[str, Any] | None:
    """The order's ``shippingAddress`` as the keywords of an address (``name``, ``lines``,
    ``postal_code``, ``city``, ``country`` as Octopia writes it); ``None`` without a street
    nor a zip code.

    The block's field names are this project's reading, Octopia's camelCase of the fields of
    Cdiscount's earlier order API (not published for v2 in what we could read): ``firstName``,
    ``lastName``, ``companyName``, ``apartmentNumber``, ``building``, ``street``,
    ``placeName``, ``zipCode``, ``city``, ``countryCode``. They live here and in the fake
    only."""
    raw = order.get("shippingAddress")
    if not isinstance(raw, Mapping) or not (raw.get("street") or raw.get("zipCode")):
        return None
    return {
        "name": " ".join(str(raw.get(k) or "").strip() for k in ("firstName", "lastName")),
        "lines": [raw.get(k) for k in ADDRESS_LINES],
        "postal_code": raw.get("zipCode"),
        "city": raw.get("city"),
        "country": raw.get("countryCode"),
    }


class TokenSource:
    """Access tokens of one client id, reused until shortly before they expire."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        auth_url: str,
        client_id: str,
        client_secret: str,
        *,
        timeout_s: float = 30.0,
    ) -> None:
        self._session = session
        self._url = auth_url
        self._form = {
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": client_secret,
        }
        redact.register(client_secret)
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.issued = 0  # tokens obtained by this process

    def drop(self, token: str) -> None:
        """The API refused ``token``: the next call gets a new one (unless already done)."""
        if self._token == token:
            self._token = None

    async def get(self) -> str:
        token = self._token
        if token is not None and time.monotonic() < self._expires_at:
            return token
        async with self._lock:
            if self._token is not None and time.monotonic() < self._expires_at:
                return self._token
            return await self._issue()

    async def _issue(self) -> str:
        try:
            async with self._session.post(
                self._url, data=self._form, timeout=self._timeout
            ) as response:
                body = await response.json(content_type=None)
                status = response.status
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise UnavailableError(
                f"Octopia token endpoint unreachable: {redact.describe(exc)}"
            ) from None
        if status == 429:
            raise ThrottledError("Octopia token endpoint 429 (token issuance limit)", retry_after)
        if status >= 500:
            raise UnavailableError(f"Octopia token endpoint {status}", retry_after)
        if status >= 400 or not isinstance(body, dict) or not body.get("access_token"):
            raise RejectedError(
                f"Octopia token endpoint {status}: {redact.scrub(message_of(body))} (check "
                "client_id and client_secret)"
            )
        token = str(body["access_token"])
        redact.register(token)
        lifetime = float(body.get("expires_in") or 300)
        margin = min(300.0, lifetime * 0.1)
        self._token = token
        self._expires_at = time.monotonic() + lifetime - margin
        self.issued += 1
        return token


class CdiscountClient:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        tokens: TokenSource,
        seller_id: str,
        *,
        limits: CdiscountLimits | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        self._session = session
        self._root = base_url.rstrip("/")
        self.tokens = tokens
        self.seller_id = seller_id
        self.limits = limits or CdiscountLimits()
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """The decoded JSON body (None when empty)."""
        for attempt in (1, 2):
            token = await self.tokens.get()
            status, body, headers = await self._send(method, path, token, **kwargs)
            if status == 401 and attempt == 1:
                self.tokens.drop(token)  # expired or revoked before its time: a new one
                continue
            return self._answer(status, body, headers)
        raise AssertionError("unreachable")

    async def _send(
        self, method: str, path: str, token: str, **kwargs: Any
    ) -> tuple[int, Any, Mapping[str, str]]:
        await self.limits.before_request()
        headers = {"Authorization": f"Bearer {token}", "SellerId": self.seller_id}
        try:
            async with self._session.request(
                method, self._root + path, headers=headers, timeout=self._timeout, **kwargs
            ) as response:
                raw = await response.read()
                self.limits.after_response(response.status, response.headers)
                try:
                    body = await response.json(content_type=None) if raw else None
                except ValueError:
                    body = raw[:200].decode(errors="replace")
                return response.status, body, response.headers
        except (aiohttp.ClientError, TimeoutError) as exc:
            # never {exc!r}: aiohttp's response errors print the request headers (the token)
            raise UnavailableError(f"Octopia unreachable: {redact.describe(exc)}") from None

    def _answer(self, status: int, body: Any, headers: Mapping[str, str]) -> Any:
        if status >= 500:
            raise UnavailableError(
                f"Octopia {status}: {message_of(body)}",
                parse_retry_after(headers.get("Retry-After")),
            )
        if status in (401, 403):
            raise RejectedError(
                f"Octopia {status}: {message_of(body)} (check the client credentials and "
                "the seller id)"
            )
        if status >= 400:
            raise OctopiaError(status, message_of(body))
        return body

    # ---- orders --------------------------------------------------------------------------
    async def orders_updated_since(self, since_ms: int) -> list[dict[str, Any]]:
        """Every order updated at or after ``since_ms``, oldest change first, all pages."""
        orders: list[dict[str, Any]] = []
        page = 1
        while True:
            body = await self.request(
                "GET",
                "/orders",
                params={
                    "updatedAtFrom": octopia_time(since_ms),
                    "sort": "updatedAt",
                    "pageIndex": str(page),
                    "pageSize": str(PAGE_SIZE),
                },
            )
            items = [o for o in (body or {}).get("items") or [] if isinstance(o, dict)]
            orders.extend(items)
            total = int((body or {}).get("totalCount") or 0)
            if not items or len(items) < PAGE_SIZE or len(orders) >= total:
                return orders
            page += 1

    async def order(self, order_id: str) -> dict[str, Any]:
        body = await self.request("GET", f"/orders/{order_id}")
        return body if isinstance(body, dict) else {}

    async def order_or_none(self, order_id: str) -> dict[str, Any] | None:
        """``GET /orders/{id}``; ``None`` when Octopia does not know the order (404)."""
        try:
            return await self.order(order_id)
        except OctopiaError as exc:
            if exc.status == 404:
                return None
            raise

    async def set_approval(self, order_id: str, status: str, reason: str | None = None) -> None:
        """``POST /orders/{id}/approval-status``: ``Accepted`` or ``Refused``."""
        body: dict[str, Any] = {"approvalStatus": status}
        if reason is not None:
            body["reason"] = reason
        await self.request("POST", f"/orders/{order_id}/approval-status", json=body)

    async def ship(
        self,
        order_id: str,
        *,
        carrier: str,
        tracking_number: str,
        tracking_url: str | None,
        lines: Sequence[tuple[str, int]],
    ) -> None:
        """``POST /orders/{id}/shipments``: the parcel's carrier, tracking number and URL and
        the lines (``lineId``, ``quantity``) it holds."""
        body: dict[str, Any] = {
            "carrierName": carrier,
            "trackingNumber": tracking_number,
            "lines": [{"lineId": line_id, "quantity": qty} for line_id, qty in lines],
        }
        if tracking_url:
            body["trackingUrl"] = tracking_url
        await self.request("POST", f"/orders/{order_id}/shipments", json=body)

    # ---- offer packages ------------------------------------------------------------------
    async def create_package(self, name: str, sales_channel: str) -> str:
        body = await self.request(
            "POST",
            "/offer-packages",
            json={"name": name, "packageType": "Update", "salesChannelId": sales_channel},
        )
        if not isinstance(body, dict) or not body.get("packageId"):
            raise UnavailableError(f"Octopia package answer without packageId: {message_of(body)}")
        return str(body["packageId"])

    async def add_offer_requests(
        self, package_id: str, requests: Sequence[Mapping[str, Any]]
    ) -> None:
        await self.request(
            "POST",
            f"/offer-packages/{package_id}/offer-requests",
            json={"offerRequests": [dict(r) for r in requests]},
        )

    async def submit_package(self, package_id: str) -> None:
        """``WaitingForCompletion`` → ``Ready``: no offer request can be added after this."""
        await self.request("PATCH", f"/offer-packages/{package_id}", json={"packageState": "Ready"})

    async def package(self, package_id: str) -> dict[str, Any]:
        body = await self.request("GET", f"/offer-packages/{package_id}")
        return body if isinstance(body, dict) else {}

    async def package_results(self, package_id: str) -> list[dict[str, Any]]:
        """One result per offer request: ``sellerExternalReference``, ``integrationStatus``
        (``Integrated``, ``Rejected``, ``Duplicated``), ``resultCode``, ``message``."""
        results: list[dict[str, Any]] = []
        page = 1
        while True:
            body = await self.request(
                "GET",
                f"/offer-packages/{package_id}/offer-requests-results",
                params={"pageIndex": str(page), "pageSize": str(PAGE_SIZE)},
            )
            items = [r for r in (body or {}).get("items") or [] if isinstance(r, dict)]
            results.extend(items)
            if len(items) < PAGE_SIZE:
                return results
            page += 1

    async def offers(self, sales_channel: str, skus: Sequence[str]) -> dict[str, int]:
        """The quantities Octopia holds for these references (unknown ones left out)."""
        found: dict[str, int] = {}
        for start in range(0, len(skus), PAGE_SIZE):
            chunk = list(skus[start : start + PAGE_SIZE])
            body = await self.request(
                "GET",
                "/offers",
                params={
                    "salesChannelId": sales_channel,
                    "sellerExternalReferences": ",".join(chunk),
                    "pageSize": str(PAGE_SIZE),
                },
            )
            for offer in (body or {}).get("items") or []:
                if isinstance(offer, dict) and offer.get("sellerExternalReference") in chunk:
                    found[str(offer["sellerExternalReference"])] = int(offer.get("quantity") or 0)
        return found
