"""HTTP transport to one PrestaShop webservice (``/api``), the key as the Basic user.

Reads ask for JSON (``output_format=JSON``); writes send the full XML document the
webservice wants for a PUT (every field of the resource: a field left out is reset), built
from the resource as read. A 5xx or a network failure is ``UnavailableError``; 429 (or 503
with ``Retry-After``) is ``ThrottledError`` through :class:`PrestaLimits`; 401/403 and other
4xx are :class:`PrestaError` with the webservice's own message.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from xml.etree import ElementTree as ET

import aiohttp
import orjson

from connectors.framework import redact
from connectors.framework.prices import ItemResult, PriceItem, from_decimal
from connectors.framework.ratelimit import parse_retry_after
from connectors.framework.types import Outcome, ThrottledError, UnavailableError
from connectors.prestashop.limits import PrestaLimits

PAGE = 100


class PrestaError(Exception):
    """A PrestaShop error answer (``{"errors": [{"code", "message"}]}``)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status


def to_xml(resource: str, fields: Mapping[str, Any]) -> bytes:
    """``<prestashop><resource>...</resource></prestashop>`` of the scalar ``fields`` (lists
    and mappings, i.e. ``associations`` and language fields, are left out)."""
    root = ET.Element("prestashop")
    node = ET.SubElement(root, resource)
    for key, value in fields.items():
        if isinstance(value, dict | list):
            continue
        ET.SubElement(node, key).text = "" if value is None else str(value)
    return b'<?xml version="1.0" encoding="UTF-8"?>' + ET.tostring(root, encoding="utf-8")


def _errors(body: Any) -> str:
    if isinstance(body, dict) and isinstance(body.get("errors"), list):
        return "; ".join(str(e.get("message")) for e in body["errors"] if isinstance(e, dict))
    return "no error message"


def _rows(body: Any, resource: str) -> list[dict[str, Any]]:
    """The list under ``resource``; PrestaShop answers ``[]`` (not ``{resource: []}``) when
    no row matches the filters."""
    if isinstance(body, dict):
        rows = body.get(resource) or []
        return [r for r in rows if isinstance(r, dict)]
    return []


class PrestaClient:
    """``base_url`` is the shop root, e.g. ``https://shop.example`` (a fake's URL in tests)."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        webservice_key: str,
        *,
        limits: PrestaLimits | None = None,
        timeout_s: float = 30.0,
        products: Mapping[str, int] | None = None,
        currency: str = "EUR",
        max_batch: int = 20,
    ) -> None:
        self.products = dict(products or {})  # SKU -> id_product, for prices
        self.currency = currency  # the shop's default currency: its prices are in it
        self.max_batch = max_batch  # prices per set_prices call (one request pair each)
        self._addresses: dict[int, tuple[str, str] | None] = {}
        self._countries: dict[int, str] = {}
        self._session = session
        self._api = f"{base_url.rstrip('/')}/api"
        self._headers = {"Authorization": aiohttp.encode_basic_auth(webservice_key, "")}
        redact.register_basic_auth(webservice_key, "")
        self.limits = limits or PrestaLimits()
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        xml: bytes | None = None,
    ) -> Any:
        """The decoded JSON body (None when empty)."""
        await self.limits.before_request()
        query = {"output_format": "JSON", **(params or {})}
        headers = dict(self._headers)
        if xml is not None:
            headers["Content-Type"] = "application/xml"
        try:
            async with self._session.request(
                method,
                self._api + path,
                params=query,
                data=xml,
                headers=headers,
                timeout=self._timeout,
            ) as response:
                self.limits.after_response(response.status, response.headers)
                text = await response.text()
                if response.status >= 500:
                    raise UnavailableError(
                        f"PrestaShop {response.status}",
                        parse_retry_after(response.headers.get("Retry-After")),
                    )
                body: Any = None
                if text.strip().startswith(("{", "[")):
                    body = orjson.loads(text)
                if response.status >= 400:
                    raise PrestaError(response.status, _errors(body))
                return body
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            # never {exc!r}: aiohttp's response errors print the request headers (the key)
            raise UnavailableError(f"PrestaShop unreachable: {redact.describe(exc)}") from None

    async def orders_updated_between(self, since: str, until: str) -> list[dict[str, Any]]:
        """Every order with ``date_upd`` in [since, until] (shop time, ``Y-m-d H:i:s``),
        oldest change first, all pages, with their ``associations.order_rows``."""
        orders: list[dict[str, Any]] = []
        offset = 0
        while True:
            body = await self.request(
                "GET",
                "/orders",
                params={
                    "filter[date_upd]": f"[{since},{until}]",
                    "date": "1",
                    "display": "full",
                    "sort": "[date_upd_ASC,id_ASC]",
                    "limit": f"{offset},{PAGE}",
                },
            )
            page = _rows(body, "orders")
            orders.extend(page)
            if len(page) < PAGE:
                return orders
            offset += PAGE

    async def order_details(self, order_id: int) -> list[dict[str, Any]]:
        """The ``order_details`` rows of an order (refunded and returned quantities)."""
        body = await self.request(
            "GET",
            "/order_details",
            params={"filter[id_order]": f"[{order_id}]", "display": "full"},
        )
        return _rows(body, "order_details")

    async def stock_availables(self, **filters: str) -> list[dict[str, Any]]:
        params = {f"filter[{k}]": f"[{v}]" for k, v in filters.items()}
        body = await self.request("GET", "/stock_availables", params={**params, "display": "full"})
        return _rows(body, "stock_availables")

    async def stock_available(self, row_id: int) -> dict[str, Any]:
        body = await self.request("GET", f"/stock_availables/{row_id}")
        row = (body or {}).get("stock_available") if isinstance(body, dict) else None
        if not isinstance(row, dict):
            raise PrestaError(404, f"stock_available {row_id} not in the answer")
        return row

    async def put_stock_available(self, row: Mapping[str, Any]) -> None:
        await self.request(
            "PUT", f"/stock_availables/{row['id']}", xml=to_xml("stock_available", row)
        )

    async def patch_stock_available(self, row_id: int, quantity: int) -> None:
        """PrestaShop 8 and 9: only the fields sent change."""
        await self.request(
            "PATCH",
            f"/stock_availables/{row_id}",
            xml=to_xml("stock_available", {"id": row_id, "quantity": quantity}),
        )

    async def set_prices(self, items: Sequence[PriceItem]) -> list[ItemResult]:
        """The base price (tax excluded, in the shop's default currency) of each item's
        product: the product as read, with ``price`` changed, PUT back whole (the webservice
        resets a field left out). One result per item, never raises for channel errors; a
        SKU without a simple product in ``products`` is refused (a combination's price is
        an impact on its product's, not a price)."""
        results: list[ItemResult] = []
        for item in items:
            pid = self.products.get(item.sku)
            if pid is None:
                results.append(
                    ItemResult(item.sku, Outcome.REFUSED, "no PrestaShop simple product mapped")
                )
                continue
            if item.currency.upper() != self.currency:
                error = f"price in {item.currency}; the shop's prices are in {self.currency}"
                results.append(ItemResult(item.sku, Outcome.REFUSED, error))
                continue
            try:
                body = await self.request("GET", f"/products/{pid}")
                product = dict((body or {}).get("product") or {})
                product["price"] = f"{item.amount:.6f}"
                await self.request("PUT", f"/products/{pid}", xml=to_xml("product", product))
                results.append(ItemResult(item.sku, Outcome.OK))
            except (ThrottledError, UnavailableError) as exc:
                results.append(ItemResult(item.sku, Outcome.RETRY, str(exc), exc.retry_after))
            except PrestaError as exc:
                outcome = Outcome.REFUSED if exc.status == 404 else Outcome.FAILED
                results.append(ItemResult(item.sku, outcome, str(exc)))
        return results

    async def get_prices(self, skus: Sequence[str]) -> dict[str, int]:
        """Base prices of the SKUs' products in minor units (price drift detection)."""
        wanted = {self.products[s]: s for s in skus if s in self.products}
        if not wanted:
            return {}
        body = await self.request(
            "GET",
            "/products",
            params={
                "filter[id]": "[" + "|".join(str(p) for p in sorted(wanted)) + "]",
                "display": "[id,price]",
            },
        )
        return {
            wanted[int(str(p["id"]))]: from_decimal(str(p["price"]), self.currency)
            for p in _rows(body, "products")
            if int(str(p["id"])) in wanted
        }

    async def ship_to(self, address_id: int) -> tuple[str, str] | None:
        """(country ISO code, postal code) of a delivery address: only those two fields are
        asked for (``display=[id,id_country,postcode]``), never the name or street; the
        country's code is read once per country."""
        if address_id in self._addresses:
            return self._addresses[address_id]
        body = await self.request(
            "GET",
            "/addresses",
            params={"filter[id]": f"[{address_id}]", "display": "[id,id_country,postcode]"},
        )
        found = _rows(body, "addresses")
        if not found:
            return None
        country_id = int(str(found[0].get("id_country") or 0))
        if country_id not in self._countries:
            country = await self.request("GET", f"/countries/{country_id}")
            self._countries[country_id] = str(
                ((country or {}).get("country") or {}).get("iso_code") or ""
            )
        result = (self._countries[country_id], str(found[0].get("postcode") or ""))
        self._addresses[address_id] = result
        return result

    async def add_order_history(self, order_id: int, state_id: int) -> None:
        """Move an order to ``state_id`` the way the back office does (``order_histories``)."""
        await self.request(
            "POST",
            "/order_histories",
            xml=to_xml("order_history", {"id_order": order_id, "id_order_state": state_id}),
        )

    async def order(self, order_id: int) -> dict[str, Any]:
        body = await self.request("GET", f"/orders/{order_id}")
        order = (body or {}).get("order") if isinstance(body, dict) else None
        if not isinstance(order, dict):
            raise PrestaError(404, f"order {order_id} not in the answer")
        return order
