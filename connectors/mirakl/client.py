"""HTTP transport to one Mirakl operator's seller API (``Authorization: <shop API key>``).

``base_url`` is the operator's instance, e.g. ``https://leroymerlin.mirakl.net`` (a fake's
URL in tests); requests go to ``<base_url>/api/...``, with ``shop_id`` when configured (a
key that reaches several shops). Operations used:

- OR11 ``GET /api/orders`` (offset paging, ``max`` 100; at most once a minute when listing
  changes, see ``connectors.mirakl.limits``); OR21 ``PUT /api/orders/{id}/accept``; OR23
  ``PUT /api/orders/{id}/tracking``; OR24 ``PUT /api/orders/{id}/ship``;
- OF24 ``POST /api/offers`` (JSON) and OF01 ``POST /api/offers/imports`` (CSV file), both
  answering an ``import_id``; OF02 ``GET /api/offers/imports/{id}`` (status), OF03
  ``GET /api/offers/imports/{id}/error_report`` (CSV of the lines in error); OF21
  ``GET /api/offers`` (quantities read back).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp
import orjson

from connectors.framework import redact
from connectors.framework.ratelimit import parse_retry_after
from connectors.framework.types import RejectedError, UnavailableError
from connectors.mirakl.limits import MAX_PAGE, MiraklLimits
from schemas.times import ms_to_iso


class MiraklError(Exception):
    """A Mirakl 4xx answer ``{status, message, code}`` (other than 401/403/429); ``code`` is
    the immutable error code when the operation documents one (e.g. OR21's
    ``ORDER_INVALID_STATE``)."""

    def __init__(self, status: int, message: str, code: str = "") -> None:
        super().__init__(f"{status}: {f'{code} ' if code else ''}{message}")
        self.status = status
        self.message = message
        self.code = code


def _message(body: Any) -> str:
    if isinstance(body, dict):
        return str(body.get("message") or body)[:300]
    return str(body)[:300]


def csv_rows(text: str) -> list[dict[str, str]]:
    """A Mirakl CSV (``;``-separated, header row) as dicts."""
    return list(csv.DictReader(io.StringIO(text), delimiter=";"))


def csv_file(header: Sequence[str], rows: Sequence[Sequence[object]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", quoting=csv.QUOTE_ALL, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode()


class MiraklClient:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        api_key: str,
        *,
        shop_id: int | None = None,
        limits: MiraklLimits | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        self._session = session
        self._root = base_url.rstrip("/") + "/api"
        self._headers = {"Authorization": api_key, "Accept": "application/json"}
        redact.register(api_key)
        self._shop = {} if shop_id is None else {"shop_id": str(shop_id)}
        self.limits = limits or MiraklLimits()
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        text: bool = False,
        **kwargs: Any,
    ) -> Any:
        """The decoded JSON body (the text with ``text``; None for 204); raises
        ``ThrottledError``, ``UnavailableError`` (5xx, network), ``RejectedError`` (401/403:
        the key) or ``MiraklError`` (other 4xx)."""
        await self.limits.before_request()
        query = {**self._shop, **(params or {})}
        try:
            async with self._session.request(
                method,
                self._root + path,
                params=query,
                headers=self._headers,
                timeout=self._timeout,
                **kwargs,
            ) as response:
                self.limits.after_response(response.status, response.headers)
                raw = await response.text()
                if response.status >= 500:
                    raise UnavailableError(
                        f"Mirakl {response.status}",
                        parse_retry_after(response.headers.get("Retry-After")),
                    )
                body: Any = raw
                if not text and raw:
                    try:
                        body = orjson.loads(raw)
                    except ValueError:
                        body = raw
                if response.status in (401, 403):
                    raise RejectedError(
                        f"Mirakl {response.status}: {_message(body)} (check the shop's API key "
                        "for this operator)"
                    )
                if response.status >= 400:
                    code = str(body.get("code") or "") if isinstance(body, dict) else ""
                    raise MiraklError(response.status, _message(body), code)
                if response.status == 204:
                    return None
                return body
        except (aiohttp.ClientError, TimeoutError) as exc:
            # never {exc!r}: aiohttp's errors can print the request headers (the key)
            raise UnavailableError(f"Mirakl unreachable: {redact.describe(exc)}") from None

    async def _pages(
        self, path: str, key: str, params: Mapping[str, str], *, first: Any = None
    ) -> list[dict[str, Any]]:
        """Every item, all pages (``first``: the first page, already read)."""
        found: list[dict[str, Any]] = []
        offset = 0
        while True:
            body = first
            first = None
            if body is None:
                body = await self.request(
                    "GET", path, params={**params, "max": str(MAX_PAGE), "offset": str(offset)}
                )
            batch = list(body.get(key) or [])
            found.extend(batch)
            offset += len(batch)
            if not batch or offset >= int(body.get("total_count") or 0):
                return found

    # ---- orders ----------------------------------------------------------------------
    async def orders_updated_since(self, since_ms: int) -> list[dict[str, Any]]:
        """OR11: every order changed since ``since_ms``, all pages (a list call: spaced by
        the operation's maximum frequency)."""
        async with self.limits.spaced("OR11"):
            first = await self.request(
                "GET",
                "/orders",
                params={"start_update_date": ms_to_iso(since_ms), "max": str(MAX_PAGE)},
            )
        return await self._pages(
            "/orders", "orders", {"start_update_date": ms_to_iso(since_ms)}, first=first
        )

    async def order(self, order_id: str) -> dict[str, Any] | None:
        """OR11 for one order (``order_ids``), or None when the operator has no such order."""
        body = await self.request("GET", "/orders", params={"order_ids": order_id, "max": "1"})
        orders = list(body.get("orders") or [])
        return orders[0] if orders else None

    async def answer_lines(self, order_id: str, answers: Mapping[str, bool]) -> None:
        """OR21: accept (True) or refuse (False) each line of an order awaiting acceptance."""
        await self.request(
            "PUT",
            f"/orders/{order_id}/accept",
            json={"order_lines": [{"id": i, "accepted": ok} for i, ok in answers.items()]},
        )

    async def update_tracking(
        self,
        order_id: str,
        *,
        tracking_number: str,
        carrier_code: str | None = None,
        carrier_name: str | None = None,
        carrier_url: str | None = None,
    ) -> None:
        """OR23: the carrier and tracking number of an order (before or after OR24)."""
        body = {
            "carrier_code": carrier_code,
            "carrier_name": carrier_name,
            "carrier_url": carrier_url,
            "tracking_number": tracking_number,
        }
        await self.request(
            "PUT",
            f"/orders/{order_id}/tracking",
            json={k: v for k, v in body.items() if v is not None},
        )

    async def ship(self, order_id: str) -> None:
        """OR24: the order (``SHIPPING``) has left: it becomes ``SHIPPED``."""
        await self.request("PUT", f"/orders/{order_id}/ship")

    # ---- offers ----------------------------------------------------------------------
    async def update_offers(self, offers: Sequence[Mapping[str, Any]]) -> int:
        """OF24: the offers (``update_delete: update``) → the import id to follow."""
        body = await self.request("POST", "/offers", json={"offers": list(offers)})
        return self._import_id(body)

    async def import_offers_file(self, content: bytes) -> int:
        """OF01: a CSV offers file (at most once a minute) → the import id to follow."""
        form = aiohttp.FormData()
        form.add_field("file", content, filename="offers.csv", content_type="text/csv")
        async with self.limits.spaced("OF01"):
            body = await self.request("POST", "/offers/imports", data=form)
        return self._import_id(body)

    @staticmethod
    def _import_id(body: Any) -> int:
        if not isinstance(body, dict) or body.get("import_id") is None:
            raise UnavailableError(f"Mirakl import answer without import_id: {_message(body)}")
        return int(body["import_id"])

    async def import_status(self, import_id: int) -> dict[str, Any]:
        """OF02: ``status`` (WAITING_SYNCHRONIZATION_PRODUCT, WAITING, RUNNING, COMPLETE,
        FAILED), ``has_error_report``, line counts."""
        body = await self.request("GET", f"/offers/imports/{import_id}")
        return dict(body)

    async def import_errors(self, import_id: int) -> list[dict[str, str]]:
        """OF03: the lines in error (the sent columns plus ``error-line``, ``error-message``)."""
        report = await self.request("GET", f"/offers/imports/{import_id}/error_report", text=True)
        return csv_rows(str(report or ""))

    async def offer_quantities(self) -> dict[str, int]:
        """OF21: every offer's ``shop_sku`` → ``quantity``."""
        offers = await self._pages("/offers", "offers", {})
        return {str(o["shop_sku"]): int(o.get("quantity") or 0) for o in offers}
