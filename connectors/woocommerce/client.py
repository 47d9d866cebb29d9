"""HTTP transport to one WooCommerce site (REST v3, HTTP Basic with the ck_/cs_ keys)."""

from __future__ import annotations

from typing import Any

import aiohttp

from connectors.framework import redact
from connectors.framework.ratelimit import parse_retry_after
from connectors.framework.types import RejectedError, UnavailableError
from connectors.woocommerce.limits import WooLimits


class WooError(Exception):
    """A WooCommerce error answer ``{code, message, data: {status}}``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code


class WooClient:
    """``base_url`` is the site root, e.g. ``https://shop.example`` (a fake's URL in tests)."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        consumer_key: str,
        consumer_secret: str,
        *,
        limits: WooLimits | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        self._session = session
        self._api = f"{base_url.rstrip('/')}/wp-json/wc/v3"
        self._headers = {"Authorization": aiohttp.encode_basic_auth(consumer_key, consumer_secret)}
        redact.register_basic_auth(consumer_key, consumer_secret)
        self.limits = limits or WooLimits()
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def request(self, method: str, path: str, **kwargs: Any) -> tuple[Any, dict[str, str]]:
        """The decoded JSON body and headers; raises ``ThrottledError``, ``UnavailableError``
        (5xx, network) or ``WooError`` (other 4xx, with Woo's error code)."""
        await self.limits.before_request()
        try:
            async with self._session.request(
                method, self._api + path, headers=self._headers, timeout=self._timeout, **kwargs
            ) as response:
                headers = dict(response.headers)
                self.limits.after_response(response.status, response.headers)
                body = await response.json(content_type=None)
                if response.status >= 500:
                    raise UnavailableError(
                        f"WooCommerce {response.status}",
                        parse_retry_after(headers.get("Retry-After")),
                    )
                if response.status >= 400:
                    err = body if isinstance(body, dict) else {}
                    raise WooError(response.status, str(err.get("code")), str(err.get("message")))
                return body, headers
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            # never {exc!r}: aiohttp's response errors print the request headers (the keys)
            raise UnavailableError(f"WooCommerce unreachable: {redact.describe(exc)}") from None

    async def orders_modified_after(
        self, modified_after: str, per_page: int = 100
    ) -> list[dict[str, Any]]:
        """Every order modified after ``modified_after`` (GMT), oldest first, all pages."""
        orders: list[dict[str, Any]] = []
        page = 1
        while True:
            params = {
                "modified_after": modified_after,
                "dates_are_gmt": "true",
                "orderby": "modified",
                "order": "asc",
                "per_page": str(per_page),
                "page": str(page),
            }
            body, headers = await self.request("GET", "/orders", params=params)
            orders.extend(body)
            if page >= int(headers.get("X-WP-TotalPages", "1")):
                return orders
            page += 1

    async def refund(self, order_id: int, refund_id: int) -> dict[str, Any]:
        body, _ = await self.request("GET", f"/orders/{order_id}/refunds/{refund_id}")
        result: dict[str, Any] = body
        return result


__all__ = ["RejectedError", "WooClient", "WooError"]
