"""A fake eMAG Marketplace platform (RO, BG or HU), faithful to channel-contracts §5.3.

- ``POST /api-3/{resource}/{action}`` with a JSON body, HTTP Basic auth (anything else: 401).
  Every answer is the envelope ``{isError, messages, results}``.
- Limits: order routes 12 requests/s, every other resource 3 requests/s together (a one
  second window each; invalid requests count too, and are counted in ``invalid_requests``);
  over them 429 with the envelope and ``X-RateLimit-Limit-3second`` /
  ``X-RateLimit-Remaining-3second``. A save with more than 50 entities, or a request with
  more than 4,000 input variables, is refused (``isError: true``).
- ``offer/save`` and ``product_offer/save`` (``[{id, stock:[{warehouse_id, value}]}]``):
  each offer saved on its own; an offer in an active campaign (``campaign(offer_id)``) keeps
  its stock and the answer is ``isError: true`` naming it; an offer with documentation
  problems (``documentation_error(offer_id)``) is saved and still answered ``isError: true``;
  an unknown offer is an error. ``product_offer/read`` by ``id`` (one or a list).
- ``order/read`` (filters ``id``, ``status``, ``modifiedAfter``, ``modifiedBefore``;
  ``currentPage``, ``itemsPerPage`` ≤ 100), orders with the ``customer`` block as eMAG
  sends it (``name``, ``email``, ``company``, ``legal_entity``, phones, ``billing_*`` and
  ``shipping_contact``, ``shipping_phone``, ``shipping_street``, ``shipping_suburb``,
  ``shipping_city``, ``shipping_postal_code``, ``shipping_country``);
  ``order/acknowledge/{id}`` (1 → 2); ``order/save`` (every field as read: an order without
  its ``products`` is refused; status 0 needs a ``cancellation_reason``; status 4,
  finalized, only from 2 or 3 and once the order has an AWB). ``awb/save`` of an AWB the
  seller's own carrier issued (``order_id``, ``awb_number``, ``courier_name``,
  ``envelope_number`` + ``parcel_number`` at least 1) on an
  order in progress or prepared → ``results`` ``[{"awb": [{"awb_number"}], "reservation_id"}]``
  and the AWB listed on the order (``awbs``); the same number again is the same AWB; an AWB
  without ``awb_number`` would be eMAG's own courier, which needs sender and receiver
  (refused here).
- ``place_order`` calls the callback URL (``callback_url``) with ``?order_id=``, as eMAG
  does; ``set_status`` moves an order (4 finalized, 5 returned, 0 canceled by the customer).
- ``bare_next(n)``: 200 answers without the envelope; ``documentation_error``, ``campaign``.
- Times are the platform's local time without an offset (``timezone``).

Run alone: ``python -m connectors.testing.emag --port 8705``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import time
from collections import deque
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from aiohttp import web

from connectors.testing.base import FakeChannel, Write, serve_forever

API = "/api-3"
MAX_ENTITIES = 50
MAX_INPUT_VARS = 4000
CAMPAIGN_MESSAGE = (
    "Offer {id}: the stock cannot be modified, the offer is included in the active "
    "campaign {campaign}"
)


def envelope(results: Any = None, *messages: str, error: bool = False, **kw: Any) -> web.Response:
    return web.json_response(
        {
            "isError": error,
            "messages": list(messages),
            "results": [] if results is None else results,
        },
        **kw,
    )


def _vars(value: Any) -> int:
    if isinstance(value, dict):
        return sum(_vars(v) for v in value.values())
    if isinstance(value, list):
        return sum(_vars(v) for v in value)
    return 1


class FakeEmag(FakeChannel):
    def __init__(
        self,
        *,
        username: str = "seller@example.ro",
        password: str = "emag-password-0123456789",  # noqa: S107
        timezone: str = "Europe/Bucharest",
        orders_per_s: int = 12,
        others_per_s: int = 3,
        first_order_id: int = 400001,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int | None = None,
    ) -> None:
        self.username = username
        self.password = password
        self.timezone = timezone
        self.orders_per_s = orders_per_s
        self.others_per_s = others_per_s
        self.offers: dict[int, dict[str, Any]] = {}  # offer id → {id, sku, stock}
        self.orders: dict[int, dict[str, Any]] = {}
        self.campaigns: dict[int, str] = {}  # offer id → campaign name (stock locked)
        self.doc_errors: set[int] = set()
        self.callback_url: str | None = None
        self.callbacks: list[tuple[int, int]] = []  # (order id, HTTP status of our GET)
        self.acknowledged: list[int] = []
        self.cancelled: list[tuple[int, int]] = []  # (order id, cancellation_reason)
        self.awbs: list[dict[str, Any]] = []  # every AWB saved, with its order id
        self.finalized: list[int] = []
        self.saves: list[list[int]] = []  # the offer ids of every save request
        self.unauthorized = 0
        self.invalid_requests = 0
        self.throttled_requests = 0
        self.over_limit = 0  # requests past the 12/3 per second limits (not storm() ones)
        self.bare = 0  # answers left to send without the envelope (a proxy's 200)
        self._windows: dict[str, deque[float]] = {"orders": deque(), "others": deque()}
        self._ids = 0
        self._first_order_id = first_order_id
        self._line_ids = 0
        self._last_modified = 0
        super().__init__(host=host, port=port, seed=seed)

    def routes(self) -> list[web.RouteDef]:
        return [web.post(f"{API}/{{path:.+}}", self._dispatch)]

    # ---- time ------------------------------------------------------------------------
    def _now(self) -> str:
        """Platform time without offset, one second later than the previous change at
        least (eMAG's times have second resolution)."""
        now = int(time.time() + self.clock_offset_s)
        self._last_modified = max(now, self._last_modified + 1)
        moment = datetime.fromtimestamp(self._last_modified, tz=UTC)
        return moment.astimezone(ZoneInfo(self.timezone)).strftime("%Y-%m-%d %H:%M:%S")

    # ---- set-up and switches ---------------------------------------------------------
    def add_offer(self, offer_id: int, sku: str, stock: int = 0) -> None:
        self.offers[offer_id] = {"id": offer_id, "sku": sku, "stock": stock, "status": 1}

    def stock(self, offer_id: int) -> int:
        return int(self.offers[offer_id]["stock"])

    def campaign(self, offer_id: int, name: str = "Black Friday") -> None:
        self.campaigns[offer_id] = name

    def end_campaign(self, offer_id: int) -> None:
        self.campaigns.pop(offer_id, None)

    def bare_next(self, n: int = 1) -> None:
        """The next ``n`` API answers are 200 without ``isError`` (a proxy, a broken
        deployment): the connector must alert, not take them as success."""
        self.bare += n

    def documentation_error(self, offer_id: int) -> None:
        self.doc_errors.add(offer_id)

    def place_order(
        self, lines: list[tuple[int, int]], *, status: int = 1, order_type: int = 3
    ) -> dict[str, Any]:
        """A new order of ``(offer id, quantity)`` lines; eMAG is told to call back."""
        self._ids += 1
        oid = self._first_order_id - 1 + self._ids
        products = []
        for offer_id, qty in lines:
            self._line_ids += 1
            products.append(
                {
                    "id": 9000000 + self._line_ids,
                    "product_id": offer_id,
                    "part_number": f"PN-{offer_id}",
                    "quantity": qty,
                    "sale_price": "199.9900",
                    "currency": "RON",
                    "status": 1,
                }
            )
        now = self._now()
        order = {
            "id": oid,
            "status": status,
            "is_complete": 1,
            "type": order_type,
            "payment_mode_id": 1,
            "date": now,
            "modified": now,
            "cancellation_reason": None,
            "awbs": [],
            "customer": {
                "id": 77000 + self._ids,
                "name": "Ion Popescu",
                "email": "ion.popescu@example.ro",
                "company": None,
                "legal_entity": 0,
                "phone_1": "+40721000000",
                "billing_name": "Ion Popescu",
                "billing_street": "Strada Lipscani 10",
                "billing_city": "Bucuresti",
                "billing_postal_code": "030031",
                "billing_country": "RO",
                "shipping_contact": "Maria Popescu",
                "shipping_phone": "+40721000001",
                "shipping_street": "Strada Lipscani 10",
                "shipping_suburb": "Sector 3",
                "shipping_city": "Bucuresti",
                "shipping_postal_code": "030031",
                "shipping_country": "RO",
            },
            "products": products,
        }
        self.orders[oid] = order
        if self.callback_url is not None:
            self.in_background(self._call_back(oid))
        return order

    def set_status(self, order_id: int, status: int, *, reason: int | None = None) -> None:
        order = self.orders[order_id]
        order["status"] = status
        if status == 0:
            order["cancellation_reason"] = reason if reason is not None else 24
        order["modified"] = self._now()

    async def _call_back(self, order_id: int) -> None:
        assert self._session is not None and self.callback_url is not None
        try:
            async with self._session.get(
                self.callback_url, params={"order_id": str(order_id)}
            ) as response:
                await response.read()
                self.callbacks.append((order_id, response.status))
        except Exception:
            self.callbacks.append((order_id, 599))

    # ---- signals ---------------------------------------------------------------------
    def throttled(self, retry_after: float) -> web.Response:
        self.throttled_requests += 1
        return envelope(
            None,
            "Too many requests",
            error=True,
            status=429,
            headers={"X-RateLimit-Limit-3second": "9", "X-RateLimit-Remaining-3second": "0"},
        )

    def failure(self, status: int, retry_after: float | None) -> web.Response:
        if status == 429:
            return self.throttled(1.0)
        return web.Response(status=status, text="<html><body>Bad gateway</body></html>")

    def _over_limit(self, path: str) -> bool:
        kind = "orders" if path.split("/", 1)[0] == "order" else "others"
        limit = self.orders_per_s if kind == "orders" else self.others_per_s
        window = self._windows[kind]
        now = time.monotonic()
        while window and now - window[0] >= 1.0:
            window.popleft()
        if len(window) >= limit:
            return True
        window.append(now)
        return False

    def _invalid(self, *messages: str) -> web.Response:
        self.invalid_requests += 1
        return envelope(None, *messages, error=True)

    # ---- dispatch --------------------------------------------------------------------
    async def _dispatch(self, request: web.Request) -> web.Response:
        path = request.match_info["path"]
        expected = "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        if request.headers.get("Authorization") != expected:
            self.unauthorized += 1
            return envelope(None, "Invalid username or password", error=True, status=401)
        if self._over_limit(path):
            self.over_limit += 1
            return self.throttled(1.0)
        if self.bare > 0:
            self.bare -= 1
            return web.json_response({"results": []})
        try:
            body = orjson.loads(await request.read() or b"{}")
        except orjson.JSONDecodeError:
            return self._invalid("Invalid JSON")
        if _vars(body) > MAX_INPUT_VARS:
            return self._invalid(f"Maximum input vars of {MAX_INPUT_VARS} exceeded")
        if path in ("offer/save", "product_offer/save"):
            return self._save_offers(body)
        if path == "product_offer/read":
            return self._read_offers(body)
        if path == "order/read":
            return self._read_orders(body)
        if path.startswith("order/acknowledge/"):
            return self._acknowledge(path.rsplit("/", 1)[1])
        if path == "order/save":
            return self._save_orders(body)
        if path == "awb/save":
            return self._save_awb(body)
        return self._invalid(f"Resource {path} not found")

    def _save_offers(self, body: Any) -> web.Response:
        if not isinstance(body, list):
            return self._invalid("A list of offers expected")
        if len(body) > MAX_ENTITIES:
            return self._invalid(f"Maximum {MAX_ENTITIES} entities per request")
        self.saves.append([int(o.get("id") or 0) for o in body if isinstance(o, dict)])
        messages: list[str] = []
        for offer in body:
            oid = int(offer.get("id") or 0) if isinstance(offer, dict) else 0
            known = self.offers.get(oid)
            if known is None:
                messages.append(f"Offer {oid}: not found")
                continue
            rows = [r for r in offer.get("stock") or [] if isinstance(r, dict)]
            if not rows:
                continue
            if oid in self.campaigns:
                messages.append(CAMPAIGN_MESSAGE.format(id=oid, campaign=self.campaigns[oid]))
                continue
            value = int(rows[0].get("value") or 0)
            known["stock"] = value
            self.writes.append(Write(time.monotonic(), str(oid), known["sku"], value))
            if oid in self.doc_errors:
                messages.append(f"Offer {oid}: the product documentation has errors")
        if messages:
            self.invalid_requests += 1
            return envelope(None, *messages, error=True)
        return envelope(None)

    def _read_offers(self, body: Any) -> web.Response:
        wanted = body.get("id") if isinstance(body, dict) else None
        ids = wanted if isinstance(wanted, list) else [wanted] if wanted is not None else None
        rows = [
            {
                "id": o["id"],
                "status": o["status"],
                "general_stock": o["stock"],
                "stock": [{"warehouse_id": 1, "value": o["stock"]}],
            }
            for o in self.offers.values()
            if ids is None or o["id"] in {int(i) for i in ids}
        ]
        return envelope(rows)

    def _read_orders(self, body: Any) -> web.Response:
        if not isinstance(body, dict):
            return self._invalid("Filters expected")
        per_page = int(body.get("itemsPerPage") or 100)
        page = int(body.get("currentPage") or 1)
        if per_page > 100:
            return self._invalid("itemsPerPage: at most 100")
        found = list(self.orders.values())
        if body.get("id") is not None:
            found = [o for o in found if o["id"] == int(body["id"])]
        if body.get("status") is not None:
            found = [o for o in found if o["status"] == int(body["status"])]
        if body.get("modifiedAfter"):
            found = [o for o in found if o["modified"] >= str(body["modifiedAfter"])]
        if body.get("modifiedBefore"):
            found = [o for o in found if o["modified"] <= str(body["modifiedBefore"])]
        found.sort(key=lambda o: (o["modified"], o["id"]))
        start = (page - 1) * per_page
        return envelope([orjson.loads(orjson.dumps(o)) for o in found[start : start + per_page]])

    def _acknowledge(self, raw: str) -> web.Response:
        order = self.orders.get(int(raw)) if raw.isdigit() else None
        if order is None:
            return self._invalid(f"Order {raw} not found")
        if order["status"] == 0:
            return self._invalid(f"Order {raw} is canceled")
        if order["status"] == 1:
            order["status"] = 2
            order["modified"] = self._now()
            self.acknowledged.append(order["id"])
        return envelope(None)

    def _save_orders(self, body: Any) -> web.Response:
        if not isinstance(body, list) or not body:
            return self._invalid("A list of orders expected")
        if len(body) > MAX_ENTITIES:
            return self._invalid(f"Maximum {MAX_ENTITIES} entities per request")
        for sent in body:
            order = self.orders.get(int(sent.get("id") or 0)) if isinstance(sent, dict) else None
            if order is None:
                return self._invalid("Order not found")
            if not sent.get("products"):
                return self._invalid(
                    f"Order {order['id']}: products missing (send the order as read)"
                )
            status = int(sent.get("status", order["status"]))
            if status == 0:
                reason = sent.get("cancellation_reason")
                if reason is None:
                    return self._invalid(f"Order {order['id']}: cancellation_reason required")
                if order["status"] not in (1, 2, 3):
                    return self._invalid(f"Order {order['id']}: cannot be canceled now")
                order["status"] = 0
                order["cancellation_reason"] = int(reason)
                order["modified"] = self._now()
                self.cancelled.append((order["id"], int(reason)))
            elif status == 2 and order["status"] == 1:
                return self._invalid(f"Order {order['id']}: use order/acknowledge")
            elif status == 4 and order["status"] != 4:
                if order["status"] not in (2, 3):
                    return self._invalid(f"Order {order['id']}: cannot be finalized now")
                if not order["awbs"]:
                    return self._invalid(f"Order {order['id']}: an AWB is required to finalize")
                order["status"] = 4
                order["modified"] = self._now()
                self.finalized.append(order["id"])
            elif status != order["status"]:
                order["status"] = status
                order["modified"] = self._now()
        return envelope(None)

    def _save_awb(self, body: Any) -> web.Response:
        if not isinstance(body, dict):
            return self._invalid("An AWB object expected")
        raw = str(body.get("order_id") or "")
        order = self.orders.get(int(raw)) if raw.isdigit() else None
        if order is None:
            return self._invalid(f"Order {raw} not found")
        if order["status"] not in (2, 3):
            return self._invalid(f"Order {order['id']}: no AWB in status {order['status']}")
        number = str(body.get("awb_number") or "").strip()
        if not number:
            return self._invalid("sender and receiver are required to issue an AWB")
        if not str(body.get("courier_name") or "").strip():
            return self._invalid("courier_name is required with an awb_number")
        try:
            parcels = int(body.get("parcel_number") or 0) + int(body.get("envelope_number") or 0)
        except (TypeError, ValueError):
            return self._invalid("parcel_number and envelope_number must be integers")
        if parcels < 1:
            return self._invalid("at least one parcel or envelope")
        known = next((a for a in order["awbs"] if a["awb_number"] == number), None)
        if known is None:
            known = {
                "reservation_id": 700000 + len(self.awbs) + 1,
                "awb_number": number,
                "courier_name": body["courier_name"],
            }
            order["awbs"].append(known)
            order["modified"] = self._now()
            self.awbs.append({**known, "order_id": order["id"]})
        return envelope(
            [{"awb": [{"awb_number": number}], "reservation_id": known["reservation_id"]}]
        )


def main() -> None:
    parser = argparse.ArgumentParser(description="A fake eMAG Marketplace API")
    parser.add_argument("--port", type=int, default=8705)
    args = parser.parse_args()
    asyncio.run(serve_forever(FakeEmag(port=args.port), "fake eMAG"))


if __name__ == "__main__":
    main()
