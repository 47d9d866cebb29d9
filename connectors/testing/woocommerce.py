"""A fake WooCommerce REST API v3 and webhook sender, faithful to channel-contracts §2.

- ``/wp-json/wc/v3/products`` (``GET ?include=``, ``PUT /{id}``, ``POST /batch``) and
  ``/products/{pid}/variations/batch``: batches of at most 100 items (else 413
  ``woocommerce_rest_request_entity_too_large``), per-item errors inside a 200;
  ``regular_price`` as a decimal string (anything else: ``rest_invalid_param``).
- ``GET /orders?modified_after=&dates_are_gmt=true`` and ``GET /orders/{id}/refunds/{rid}``
  for polling; HTTP Basic auth with the ``ck_``/``cs_`` keys.
- ``GET``/``PUT /orders/{id}`` (``status``: any valid status, as core's REST controller
  allows, a transition recorded in ``status_changes`` only when it changes; ``meta_data``
  by key; a change sends ``order.updated``) and ``GET``/``POST /orders/{id}/notes``
  (private or customer notes).
- No rate limit by default (core has none); ``rate_limit(per_s, burst)`` imitates a host/WAF.
- Webhooks signed with ``X-WC-Webhook-Signature``, a fresh ``X-WC-Webhook-Delivery-ID`` per
  delivery, never retried; ``ping`` posts ``webhook_id=<n>`` unsigned.

Run alone: ``python -m connectors.testing.woocommerce --port 8702``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import re
import time
from typing import Any

import orjson
from aiohttp import web

from connectors.framework.signing import sign
from connectors.testing.base import FakeChannel, SentWebhook, Write, serve_forever
from schemas.times import iso_to_ms

API = "/wp-json/wc/v3"
_PRICE = re.compile(r"\d+(\.\d+)?")
ORDER_STATUSES = frozenset(
    {"pending", "processing", "on-hold", "completed", "cancelled", "refunded", "failed"}
)


def woo_error(code: str, message: str, status: int, **headers: str) -> web.Response:
    return web.json_response(
        {"code": code, "message": message, "data": {"status": status}},
        status=status,
        headers=headers,
    )


class FakeWooCommerce(FakeChannel):
    def __init__(
        self,
        *,
        site: str = "https://shop.example/",
        consumer_key: str = "ck_test",
        consumer_secret: str = "cs_test",  # noqa: S107
        webhook_secret: str = "woo-secret",  # noqa: S107
        webhook_target: str | None = None,
        batch_limit: int = 100,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int | None = None,
    ) -> None:
        self.site = site
        self.auth = (
            "Basic " + base64.b64encode(f"{consumer_key}:{consumer_secret}".encode()).decode()
        )
        self.webhook_secret = webhook_secret
        self.webhook_target = webhook_target
        self.batch_limit = batch_limit
        self.products: dict[int, dict[str, Any]] = {}
        self.orders: dict[int, dict[str, Any]] = {}
        self.refund_details: dict[int, dict[str, Any]] = {}
        self.item_errors: dict[int, list[tuple[str, str, int]]] = {}
        self.price_writes: list[tuple[int, str, str]] = []  # (id, sku, regular_price)
        self._rate: tuple[float, float] | None = None
        self._tokens = 0.0
        self._tokens_at = time.monotonic()
        self._ids = 500
        self._clock_s = 0
        self.notes: dict[int, list[dict[str, Any]]] = {}  # order id -> order notes
        self.status_changes: list[dict[str, Any]] = []  # PUT /orders/{id} status transitions
        super().__init__(host=host, port=port, seed=seed)

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get(f"{API}/products", self._list_products),
            web.put(f"{API}/products/{{pid:\\d+}}", self._put_product),
            web.post(f"{API}/products/batch", self._batch),
            web.post(f"{API}/products/{{pid:\\d+}}/variations/batch", self._batch),
            web.get(f"{API}/orders", self._list_orders),
            web.get(f"{API}/orders/{{oid:\\d+}}/refunds/{{rid:\\d+}}", self._get_refund),
            web.get(f"{API}/orders/{{oid:\\d+}}", self._get_order),
            web.put(f"{API}/orders/{{oid:\\d+}}", self._put_order),
            web.get(f"{API}/orders/{{oid:\\d+}}/notes", self._list_notes),
            web.post(f"{API}/orders/{{oid:\\d+}}/notes", self._add_note),
        ]

    def _next_id(self) -> int:
        self._ids += 1
        return self._ids

    def _modified(self) -> str:
        """GMT time without offset, one second later each call (Woo has second resolution)."""
        self._clock_s += 1
        return self.now_iso(self._clock_s, gmt_naive=True)

    # ---- set-up and switches ---------------------------------------------------------
    def add_product(self, pid: int, sku: str, qty: int, *, parent_id: int = 0) -> None:
        self.products[pid] = {
            "id": pid,
            "parent_id": parent_id,
            "sku": sku,
            "type": "variation" if parent_id else "simple",
            "manage_stock": True,
            "stock_quantity": qty,
            "stock_status": "instock" if qty > 0 else "outofstock",
            "backorders": "no",
            "backorders_allowed": False,
            "regular_price": "",
            "price": "",
            "meta_data": [],
        }

    def set_price(self, pid: int, price: str) -> None:
        """A price edited on WooCommerce's side (a merchant in wp-admin), not by our connector."""
        self.products[pid]["regular_price"] = self.products[pid]["price"] = price

    def set_stock(self, pid: int, qty: int) -> None:
        self.products[pid]["stock_quantity"] = qty

    def item_error(self, pid: int, code: str, message: str, status: int, times: int = 1) -> None:
        """The next ``times`` batch updates of ``pid`` fail with this per-item error."""
        self.item_errors.setdefault(pid, []).extend([(code, message, status)] * times)

    def rate_limit(self, per_s: float, burst: float) -> None:
        self._rate = (per_s, burst)
        self._tokens = burst

    def place_order(
        self,
        lines: list[tuple[int, int]],
        *,
        status: str = "processing",
        customer_id: int = 42,
        company: str = "",
        currency: str = "EUR",
        country: str = "DE",
        postcode: str = "10115",
    ) -> dict[str, Any]:
        """An order of ``(product id, qty)`` lines (variation ids resolve to their parent).

        Like WooCommerce's payload it carries personal data in ``billing`` and ``shipping``
        (name, street, email, phone); ``company`` fills the billing company."""
        oid = self._next_id()
        modified = self._modified()
        items = []
        for pid, qty in lines:
            product = self.products[pid]
            parent = product["parent_id"]
            items.append(
                {
                    "id": self._next_id(),
                    "name": product["sku"],
                    "product_id": parent or pid,
                    "variation_id": pid if parent else 0,
                    "quantity": qty,
                    "sku": product["sku"],
                    "price": 10.0,
                    "subtotal": f"{10 * qty:.2f}",
                    "total": f"{10 * qty:.2f}",
                    "meta_data": [],
                }
            )
        order = {
            "id": oid,
            "number": str(oid),
            "status": status,
            "date_created_gmt": modified,
            "date_modified_gmt": modified,
            "date_completed_gmt": modified if status == "completed" else None,
            "line_items": items,
            "refunds": [],
            "meta_data": [],
            "currency": currency,
            "customer_id": customer_id,
            "billing": {
                "first_name": "Hans",
                "last_name": "Becker",
                "company": company,
                "address_1": "Torstrasse 5",
                "address_2": "",
                "city": "Berlin",
                "state": "",
                "postcode": postcode,
                "country": country,
                "email": "hans.becker@example.org",
                "phone": "+4930123456",
            },
            "shipping": {
                "first_name": "Hans",
                "last_name": "Becker",
                "company": company,
                "address_1": "Torstrasse 5",
                "address_2": "",
                "city": "Berlin",
                "state": "",
                "postcode": postcode,
                "country": country,
                "phone": "",
            },
        }
        self.orders[oid] = order
        return order

    def set_status(self, oid: int, status: str) -> dict[str, Any]:
        order = self.orders[oid]
        order["status"] = status
        order["date_modified_gmt"] = self._modified()
        if status == "completed":
            order["date_completed_gmt"] = order["date_modified_gmt"]
        return order

    def refund(
        self, oid: int, lines: list[tuple[int, int]], *, restock: bool = True
    ) -> dict[str, Any]:
        """Refund ``(line item id, qty)``; the order gains a ``refunds[]`` entry (the webhook
        says only that; newest first) and the detail is served at
        ``/orders/{id}/refunds/{rid}``. ``restock`` (``api_restock``, true by default) adds
        the units to the order line's ``_restock_refunded_items`` meta, as
        ``wc_restock_refunded_items`` does; the refund itself does not say."""
        order = self.orders[oid]
        if restock:
            for line_id, qty in lines:
                line = next(li for li in order["line_items"] if li["id"] == line_id)
                meta = next(
                    (m for m in line["meta_data"] if m["key"] == "_restock_refunded_items"), None
                )
                if meta is None:
                    meta = {"id": self._next_id(), "key": "_restock_refunded_items", "value": "0"}
                    line["meta_data"].append(meta)
                meta["value"] = str(int(meta["value"]) + qty)
        rid = self._next_id()
        by_id = {li["id"]: li for li in order["line_items"]}
        modified = self._modified()
        self.refund_details[rid] = {
            "id": rid,
            "date_created_gmt": modified,
            "reason": "",
            "amount": "10.00",
            "line_items": [
                {
                    "id": self._next_id(),
                    "product_id": by_id[line]["product_id"],
                    "variation_id": by_id[line]["variation_id"],
                    "sku": by_id[line]["sku"],
                    "quantity": -qty,
                    "meta_data": [{"key": "_refunded_item_id", "value": str(line)}],
                }
                for line, qty in lines
            ],
        }
        order["refunds"].insert(0, {"id": rid, "reason": "", "total": "-10.00"})
        order["date_modified_gmt"] = modified
        return order

    # ---- webhooks (never retried) ------------------------------------------------------
    async def deliver(
        self,
        topic: str,
        payload: dict[str, Any],
        *,
        target: str | None = None,
        secret: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> SentWebhook:
        body = orjson.dumps(payload)
        resource, event = topic.split(".", 1)
        delivery = hashlib.sha256(
            f"{topic}{time.time_ns()}{self.rng.random()}".encode()
        ).hexdigest()
        sent_headers = {
            "Content-Type": "application/json",
            "User-Agent": "WooCommerce/9.0.0 Hookshot (WordPress/6.6)",
            "X-WC-Webhook-Source": self.site,
            "X-WC-Webhook-Topic": topic,
            "X-WC-Webhook-Resource": resource,
            "X-WC-Webhook-Event": event,
            "X-WC-Webhook-Signature": sign(secret or self.webhook_secret, body),
            "X-WC-Webhook-ID": "7",
            "X-WC-Webhook-Delivery-ID": delivery,
            **(headers or {}),
        }
        sent = SentWebhook(topic, body, sent_headers)
        self.webhooks.append(sent)
        sent.statuses.append(await self.post(self._target(target), body, sent_headers))
        return sent

    async def ping(self, *, target: str | None = None) -> int:
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        return await self.post(self._target(target), b"webhook_id=7", headers)

    def _target(self, target: str | None) -> str:
        url = target or self.webhook_target
        assert url, "no webhook target configured"
        return url

    # ---- HTTP ------------------------------------------------------------------------
    def throttled(self, retry_after: float) -> web.Response:
        return woo_error(
            "rest_too_many_requests",
            "Too many requests.",
            429,
            **{"Retry-After": str(max(1, round(retry_after)))},
        )

    def failure(self, status: int, retry_after: float | None) -> web.Response:
        if status == 429:
            return self.throttled(1.0 if retry_after is None else retry_after)
        headers = {} if retry_after is None else {"Retry-After": str(max(1, round(retry_after)))}
        return woo_error(
            "internal_server_error",
            "There has been a critical error on this website.",
            status,
            **headers,
        )

    def _guard(self, request: web.Request) -> web.Response | None:
        if request.headers.get("Authorization") != self.auth:
            return woo_error(
                "woocommerce_rest_cannot_view", "Sorry, you cannot list resources.", 401
            )
        if self._rate is not None:
            per_s, burst = self._rate
            now = time.monotonic()
            self._tokens = min(burst, self._tokens + (now - self._tokens_at) * per_s)
            self._tokens_at = now
            if self._tokens < 1:
                return self.throttled((1 - self._tokens) / per_s)
            self._tokens -= 1
        return None

    async def _list_products(self, request: web.Request) -> web.Response:
        if (denied := self._guard(request)) is not None:
            return denied
        wanted = {int(x) for x in request.query.get("include", "").split(",") if x}
        rows = [p for pid, p in sorted(self.products.items()) if not wanted or pid in wanted]
        return web.json_response(rows)

    def _update(self, pid: int, change: dict[str, Any]) -> dict[str, Any]:
        product = self.products.get(pid)
        if product is None:
            return {
                "id": pid,
                "error": {
                    "code": "woocommerce_rest_product_invalid_id",
                    "message": "Invalid ID.",
                    "data": {"status": 400},
                },
            }
        queued = self.item_errors.get(pid)
        if queued:
            code, message, status = queued.pop(0)
            return {
                "id": pid,
                "error": {"code": code, "message": message, "data": {"status": status}},
            }
        if change.get("backorders") not in (None, "no", "notify", "yes"):
            return {  # WooCommerce's enum check of the field
                "id": pid,
                "error": {
                    "code": "rest_invalid_param",
                    "message": "Invalid parameter(s): backorders",
                    "data": {"status": 400},
                },
            }
        if "backorders" in change:
            product["backorders"] = change["backorders"]
            product["backorders_allowed"] = change["backorders"] != "no"
        for meta in change.get("meta_data") or []:  # update_meta_data: by key
            kept = next((m for m in product["meta_data"] if m["key"] == meta["key"]), None)
            if kept is None:
                product["meta_data"].append({"id": len(product["meta_data"]) + 1, **meta})
            else:
                kept["value"] = meta["value"]
        if "stock_quantity" in change:
            qty = int(change["stock_quantity"])
            product["manage_stock"] = change.get("manage_stock", product["manage_stock"])
            product["stock_quantity"] = qty
            self.writes.append(Write(time.monotonic(), str(pid), product["sku"], qty))
        if "stock_quantity" in change or "backorders" in change:
            qty = int(product["stock_quantity"] or 0)
            product["stock_status"] = (
                "instock"
                if qty > 0
                else "onbackorder"
                if product["backorders_allowed"]
                else "outofstock"
            )
        if "regular_price" in change:
            price = change["regular_price"]
            if not isinstance(price, str) or not _PRICE.fullmatch(price):
                # WooCommerce takes prices as strings with a dot; anything else is refused
                return {
                    "id": pid,
                    "error": {
                        "code": "rest_invalid_param",
                        "message": "Invalid parameter(s): regular_price",
                        "data": {"status": 400},
                    },
                }
            product["regular_price"] = product["price"] = price
            self.price_writes.append((pid, product["sku"], price))
        return dict(product)

    async def _put_product(self, request: web.Request) -> web.Response:
        if (denied := self._guard(request)) is not None:
            return denied
        result = self._update(int(request.match_info["pid"]), await request.json())
        if "error" in result:
            err = result["error"]
            return woo_error(err["code"], err["message"], err["data"]["status"])
        return web.json_response(result)

    async def _batch(self, request: web.Request) -> web.Response:
        if (denied := self._guard(request)) is not None:
            return denied
        body = await request.json()
        count = sum(len(body.get(k, [])) for k in ("create", "update", "delete"))
        if count > self.batch_limit:
            return woo_error(
                "woocommerce_rest_request_entity_too_large",
                f"Unable to accept more than {self.batch_limit} items for this request.",
                413,
            )
        return web.json_response(
            {"update": [self._update(int(c["id"]), c) for c in body.get("update", [])]}
        )

    async def _list_orders(self, request: web.Request) -> web.Response:
        if (denied := self._guard(request)) is not None:
            return denied
        since = request.query.get("modified_after")
        per_page = min(100, int(request.query.get("per_page", "10")))
        page = int(request.query.get("page", "1"))
        rows = sorted(self.orders.values(), key=lambda o: (o["date_modified_gmt"], o["id"]))
        if since:
            floor = iso_to_ms(since, naive_is_utc=True)
            rows = [o for o in rows if iso_to_ms(o["date_modified_gmt"], naive_is_utc=True) > floor]
        pages = max(1, -(-len(rows) // per_page))
        chunk = rows[(page - 1) * per_page : page * per_page]
        return web.json_response(
            chunk, headers={"X-WP-Total": str(len(rows)), "X-WP-TotalPages": str(pages)}
        )

    async def _get_order(self, request: web.Request) -> web.Response:
        if (denied := self._guard(request)) is not None:
            return denied
        order = self.orders.get(int(request.match_info["oid"]))
        if order is None:
            return woo_error("woocommerce_rest_shop_order_invalid_id", "Invalid ID.", 404)
        return web.json_response(order)

    async def _put_order(self, request: web.Request) -> web.Response:
        """``status`` and ``meta_data`` (updated by key, as ``update_meta_data`` does);
        a change fires ``order.updated`` like ``woocommerce_update_order``."""
        if (denied := self._guard(request)) is not None:
            return denied
        oid = int(request.match_info["oid"])
        order = self.orders.get(oid)
        if order is None:
            return woo_error("woocommerce_rest_shop_order_invalid_id", "Invalid ID.", 404)
        change = await request.json()
        status = change.get("status")
        if status is not None:
            if status not in ORDER_STATUSES:
                return woo_error("rest_invalid_param", "Invalid parameter(s): status", 400)
            if status != order["status"]:  # WooCommerce records a transition only on change
                self.status_changes.append({"order_id": oid, "from": order["status"], "to": status})
            order["status"] = status
            if status == "completed":
                order["date_completed_gmt"] = self.now_iso(self._clock_s + 1, gmt_naive=True)
        for meta in change.get("meta_data") or []:
            kept = next((m for m in order["meta_data"] if m["key"] == meta["key"]), None)
            if kept is None:
                order["meta_data"].append(
                    {"id": self._next_id(), "key": meta["key"], "value": meta["value"]}
                )
            else:
                kept["value"] = meta["value"]
        order["date_modified_gmt"] = self._modified()
        if self.webhook_target:
            self.in_background(self.deliver("order.updated", dict(order)))
        return web.json_response(order)

    async def _list_notes(self, request: web.Request) -> web.Response:
        if (denied := self._guard(request)) is not None:
            return denied
        return web.json_response(self.notes.get(int(request.match_info["oid"]), []))

    async def _add_note(self, request: web.Request) -> web.Response:
        if (denied := self._guard(request)) is not None:
            return denied
        oid = int(request.match_info["oid"])
        if oid not in self.orders:
            return woo_error("woocommerce_rest_order_invalid_id", "Invalid order ID.", 404)
        body = await request.json()
        if not body.get("note"):
            return woo_error("rest_missing_callback_param", "Missing parameter(s): note", 400)
        note = {
            "id": self._next_id(),
            "author": "WooCommerce",
            "date_created_gmt": self.now_iso(gmt_naive=True),
            "note": str(body["note"]),
            "customer_note": bool(body.get("customer_note", False)),
        }
        self.notes.setdefault(oid, []).append(note)
        return web.json_response(note, status=201)

    async def _get_refund(self, request: web.Request) -> web.Response:
        if (denied := self._guard(request)) is not None:
            return denied
        detail = self.refund_details.get(int(request.match_info["rid"]))
        if detail is None:
            return woo_error("woocommerce_rest_invalid_id", "Invalid ID.", 404)
        return web.json_response(detail)


def main() -> None:
    parser = argparse.ArgumentParser(description="Fake WooCommerce REST API for demos")
    parser.add_argument("--port", type=int, default=8702)
    parser.add_argument("--webhook-target", default=None)
    args = parser.parse_args()
    fake = FakeWooCommerce(port=args.port, webhook_target=args.webhook_target)
    for n, sku in enumerate(("chair", "table", "lamp"), start=1):
        fake.add_product(n, sku, 100)
    asyncio.run(serve_forever(fake, "fake WooCommerce (ck_test / cs_test)"))


if __name__ == "__main__":
    main()
