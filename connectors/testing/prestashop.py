"""A fake PrestaShop webservice, faithful to channel-contracts §6.

- Auth: the webservice key as the HTTP Basic user (password ignored); anything else is 401
  with PrestaShop's error body. ``?output_format=JSON`` answers JSON; lists come under the
  resource's name (``{"orders": [...]}``), or ``[]`` when nothing matches; ``display=full``
  gives whole rows, without it only ids.
- ``/api/stock_availables``: ``GET`` filtered by ``id``, ``id_product``,
  ``id_product_attribute`` (``filter[x]=[1|2]``), ``GET /{id}``, ``PUT /{id}`` with the full
  XML row: the fields PrestaShop requires must be there (else 400), any field left out is
  reset, the body's id must be the URL's; ``PATCH /{id}`` (8 and 9) changes only the
  fields sent. No compare-and-set.
- ``/api/orders``: ``filter[date_upd]=[from,to]`` only with ``date=1`` (else 400), times in
  the shop's timezone without offset, ``sort=[date_upd_ASC,id_ASC]``, ``limit=offset,count``;
  rows in ``associations.order_rows``. ``GET /api/orders/{id}``.
- ``/api/order_details?filter[id_order]=[X]``: ``product_quantity_refunded`` and
  ``product_quantity_return``.
- ``POST /api/order_histories`` (XML): the order's new state; ``GET``/``POST /api/messages``.
- ``GET /api/addresses`` (``display=[f1,f2]`` limits the fields) and ``/api/countries/{id}``.
- ``GET``/``PUT /api/products/{id}``: the PUT replaces the whole product (full XML).
- Switches: the base ones (``down``, ``fail_next``, ``storm``), ``overwrite_after_put(qty)``
  (a module or ERP writes right after our PUT: read-after-write sees another figure) and
  ``set_quantity`` (a back-office edit: drift).

Run alone: ``python -m connectors.testing.prestashop --port 8703``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import time
from typing import Any
from xml.etree import ElementTree as ET

from aiohttp import web

from connectors.testing.base import FakeChannel, Write, serve_forever

API = "/api"
STOCK_REQUIRED = (
    "id_product",
    "id_product_attribute",
    "depends_on_stock",
    "out_of_stock",
    "quantity",
)
STOCK_FIELDS = (
    "id",
    "id_product",
    "id_product_attribute",
    "id_shop",
    "id_shop_group",
    "quantity",
    "depends_on_stock",
    "out_of_stock",
    "location",
)
PRODUCT_REQUIRED = ("price",)
NO_DATE = "0000-00-00 00:00:00"
SHIPPED_STATES = frozenset({4, 5})


def ps_error(status: int, code: int, message: str, **headers: str) -> web.Response:
    return web.json_response(
        {"errors": [{"code": code, "message": message}]}, status=status, headers=headers
    )


def _filter_values(raw: str) -> list[str]:
    """``[1|2|3]`` → ["1", "2", "3"]."""
    return [v.strip() for v in raw.strip().removeprefix("[").removesuffix("]").split("|")]


def as_json(value: Any) -> Any:
    """The webservice's JSON: every scalar a string, as PrestaShop sends it."""
    if isinstance(value, dict):
        return {k: as_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_json(v) for v in value]
    return "" if value is None else str(value)


def parse_xml(raw: bytes, resource: str) -> dict[str, str]:
    """The fields of ``<prestashop><resource>…``; ValueError when it is not that document."""
    try:
        # the fake reads only what a test's client sent over loopback
        root = ET.fromstring(raw)  # noqa: S314
    except ET.ParseError as exc:
        raise ValueError(f"XML error: {exc}") from None
    node = root.find(resource) if root.tag == "prestashop" else None
    if node is None:
        raise ValueError(f"<prestashop><{resource}> expected")
    return {child.tag: (child.text or "") for child in node}


class FakePrestaShop(FakeChannel):
    def __init__(
        self,
        *,
        webservice_key: str = "PSKEY0123456789ABCDEFGHIJKLMNOPQ",
        shop_id: int = 1,
        first_id: int = 0,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int | None = None,
    ) -> None:
        self.key = webservice_key
        self.shop_id = shop_id
        self.stock: dict[int, dict[str, Any]] = {}  # stock_available id → row
        self.products: dict[int, dict[str, Any]] = {}
        self.orders: dict[int, dict[str, Any]] = {}
        self.details: dict[int, dict[str, Any]] = {}  # order_detail id → detail
        self.histories: list[dict[str, Any]] = []
        self.messages: list[dict[str, Any]] = []
        self.puts: list[dict[str, str]] = []  # every stock_available PUT/PATCH body, in order
        self.unauthorized = 0
        self.countries: dict[int, dict[str, Any]] = {8: {"id": 8, "iso_code": "FR"}}
        self.addresses: dict[int, dict[str, Any]] = {
            9: {
                "id": 9,
                "id_country": 8,
                "postcode": "75011",
                "firstname": "Jeanne",
                "lastname": "Martin",
                "address1": "12 rue Oberkampf",
                "phone": "+33612345678",
            }
        }
        self.address_reads: list[str] = []  # the display= of every addresses request
        self._overwrite: list[int] = []
        self._ids = first_id  # ids of rows, orders, details: all from one counter
        self._last_upd = 0
        super().__init__(host=host, port=port, seed=seed)

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get(f"{API}/stock_availables", self._list_stock),
            web.get(f"{API}/stock_availables/{{sid:\\d+}}", self._get_stock),
            web.put(f"{API}/stock_availables/{{sid:\\d+}}", self._put_stock),
            web.patch(f"{API}/stock_availables/{{sid:\\d+}}", self._put_stock),
            web.get(f"{API}/orders", self._list_orders),
            web.get(f"{API}/orders/{{oid:\\d+}}", self._get_order),
            web.get(f"{API}/order_details", self._list_details),
            web.post(f"{API}/order_histories", self._add_history),
            web.get(f"{API}/messages", self._list_messages),
            web.post(f"{API}/messages", self._add_message),
            web.get(f"{API}/addresses", self._list_addresses),
            web.get(f"{API}/countries/{{cid:\\d+}}", self._get_country),
            web.get(f"{API}/products", self._list_products),
            web.get(f"{API}/products/{{pid:\\d+}}", self._get_product),
            web.put(f"{API}/products/{{pid:\\d+}}", self._put_product),
        ]

    # ---- clock and ids ---------------------------------------------------------------
    def _next_id(self) -> int:
        self._ids += 1
        return self._ids

    def _now(self) -> str:
        """Shop time (UTC here) without offset, one second later than the previous change at
        least (the webservice has second resolution)."""
        now = int(time.time() + self.clock_offset_s)
        self._last_upd = max(now, self._last_upd + 1)
        return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(self._last_upd))

    # ---- set-up and switches ---------------------------------------------------------
    def add_product(
        self, pid: int, qty: int, *, combination: int = 0, price: str = "10.000000"
    ) -> int:
        """A product (and its combination) with its stock row; returns the row id."""
        self.products.setdefault(
            pid,
            {
                "id": pid,
                "reference": f"ref-{pid}",
                "price": price,
                "active": "1",
                "id_category_default": "2",
                "name": f"Product {pid}",
            },
        )
        sid = self._next_id()
        self.stock[sid] = {
            "id": sid,
            "id_product": pid,
            "id_product_attribute": combination,
            "id_shop": self.shop_id,
            "id_shop_group": 0,
            "quantity": qty,
            "depends_on_stock": 0,
            "out_of_stock": 2,
            "location": "",
        }
        return sid

    def row(self, pid: int, combination: int = 0) -> dict[str, Any]:
        return next(
            r
            for r in self.stock.values()
            if (r["id_product"], r["id_product_attribute"]) == (pid, combination)
        )

    def qty(self, pid: int, combination: int = 0) -> int:
        return int(self.row(pid, combination)["quantity"])

    def set_quantity(self, pid: int, qty: int, combination: int = 0) -> None:
        """A back-office edit: the shop now shows ``qty`` (no order behind it)."""
        self.row(pid, combination)["quantity"] = qty

    def overwrite_after_put(self, qty: int, times: int = 1) -> None:
        """The next ``times`` stock PUTs are followed at once by another writer's ``qty``."""
        self._overwrite.extend([qty] * times)

    def place_order(self, lines: list[tuple[int, int, int]], state: int = 2) -> dict[str, Any]:
        """An order of ``(product, combination, qty)`` lines in ``state``; the shop takes the
        units from its own stock, as PrestaShop does on order validation."""
        oid = self._next_id()
        now = self._now()
        rows = []
        for pid, comb, qty in lines:
            did = self._next_id()
            rows.append(
                {
                    "id": did,
                    "product_id": pid,
                    "product_attribute_id": comb,
                    "product_quantity": qty,
                    "product_reference": self.products.get(pid, {}).get("reference", ""),
                    "unit_price_tax_excl": self.products.get(pid, {}).get("price", "0"),
                }
            )
            self.details[did] = {
                "id": did,
                "id_order": oid,
                "product_id": pid,
                "product_attribute_id": comb,
                "product_quantity": qty,
                "product_quantity_refunded": 0,
                "product_quantity_return": 0,
                "product_reference": rows[-1]["product_reference"],
            }
            row = self.row(pid, comb)
            row["quantity"] = int(row["quantity"]) - qty
        self.orders[oid] = {
            "id": oid,
            "reference": f"REF{oid:06d}",
            "id_customer": 7,
            "id_address_delivery": 9,
            "id_currency": 1,
            "current_state": state,
            "date_add": now,
            "date_upd": now,
            "delivery_date": NO_DATE,
            "associations": {"order_rows": rows},
        }
        return self.orders[oid]

    def set_state(self, oid: int, state: int) -> dict[str, Any]:
        order = self.orders[oid]
        order["current_state"] = state
        order["date_upd"] = self._now()
        if state in SHIPPED_STATES and order["delivery_date"] == NO_DATE:
            order["delivery_date"] = order["date_upd"]
        self.histories.append({"id_order": oid, "id_order_state": state})
        return order

    def return_units(self, oid: int, detail_id: int, qty: int) -> None:
        """A merchandise return of ``qty`` units of the order detail."""
        self.details[detail_id]["product_quantity_return"] += qty
        self.orders[oid]["date_upd"] = self._now()

    # ---- error shapes ----------------------------------------------------------------
    def throttled(self, retry_after: float) -> web.Response:
        return ps_error(
            429, 0, "Too many requests", **{"Retry-After": str(max(1, round(retry_after)))}
        )

    def failure(self, status: int, retry_after: float | None) -> web.Response:
        if status == 429:
            return self.throttled(1.0 if retry_after is None else retry_after)
        headers = {} if retry_after is None else {"Retry-After": str(max(1, round(retry_after)))}
        return ps_error(status, 0, "Internal error", **headers)

    def _guard(self, request: web.Request) -> web.Response | None:
        auth = request.headers.get("Authorization", "")
        user = ""
        if auth.startswith("Basic "):
            try:
                user = base64.b64decode(auth[6:]).decode().split(":", 1)[0]
            except ValueError:
                user = ""
        if user != self.key:
            self.unauthorized += 1
            return ps_error(
                401,
                17 if not user else 18,
                "Authentication key is empty" if not user else "Invalid authentication key",
                **{"WWW-Authenticate": 'Basic realm="Welcome to PrestaShop Webservice"'},
            )
        return None

    def _list(
        self, request: web.Request, resource: str, found: list[dict[str, Any]]
    ) -> web.Response:
        if not found:
            return web.json_response([])
        display = request.query.get("display", "")
        if display.startswith("[") and display.endswith("]"):
            fields = display[1:-1].split(",")
            found = [{f: r.get(f) for f in fields} for r in found]
        elif display != "full":
            found = [{"id": r["id"]} for r in found]
        return web.json_response({resource: as_json(found)})

    def _filtered(self, request: web.Request, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for key, raw in request.query.items():
            if key.startswith("filter[") and key != "filter[date_upd]":
                field = key[7:-1]
                values = set(_filter_values(raw))
                rows = [r for r in rows if str(r.get(field)) in values]
        return rows

    # ---- stock -----------------------------------------------------------------------
    async def _list_stock(self, request: web.Request) -> web.Response:
        if (denied := self._guard(request)) is not None:
            return denied
        rows = self._filtered(request, [dict(r) for _, r in sorted(self.stock.items())])
        return self._list(request, "stock_availables", rows)

    async def _get_stock(self, request: web.Request) -> web.Response:
        if (denied := self._guard(request)) is not None:
            return denied
        row = self.stock.get(int(request.match_info["sid"]))
        if row is None:
            return ps_error(404, 87, "Id not found")
        return web.json_response({"stock_available": as_json(dict(row))})

    async def _put_stock(self, request: web.Request) -> web.Response:
        if (denied := self._guard(request)) is not None:
            return denied
        sid = int(request.match_info["sid"])
        if sid not in self.stock:
            return ps_error(404, 87, "Id not found")
        try:
            sent = parse_xml(await request.read(), "stock_available")
        except ValueError as exc:
            return ps_error(400, 127, str(exc))
        if sent.get("id") != str(sid):
            return ps_error(400, 89, "id is invalid: it must be the one in the URL")
        original = dict(sent)
        if request.method == "PATCH":  # 8 and 9: only the fields sent change
            sent = {**{k: str(v) for k, v in self.stock[sid].items()}, **sent}
        missing = [f for f in STOCK_REQUIRED if sent.get(f, "") == ""]
        if missing:
            return ps_error(400, 41, f'parameter "{missing[0]}" required')
        try:
            quantity = int(sent["quantity"])
        except ValueError:
            return ps_error(400, 41, 'parameter "quantity" is not an integer')
        self.puts.append(original)
        row: dict[str, Any] = {
            f: sent.get(f, "") for f in STOCK_FIELDS
        }  # a field left out is reset
        for f in ("id", "id_product", "id_product_attribute", "depends_on_stock", "out_of_stock"):
            row[f] = int(row[f])
        for f in ("id_shop", "id_shop_group"):
            row[f] = int(row[f] or 0)
        row["quantity"] = quantity
        self.stock[sid] = row
        product = self.products.get(row["id_product"], {})
        self.writes.append(
            Write(time.monotonic(), str(sid), str(product.get("reference")), quantity)
        )
        if self._overwrite:
            row["quantity"] = self._overwrite.pop(0)
        return web.json_response({"stock_available": as_json(dict(row))})

    # ---- orders ----------------------------------------------------------------------
    async def _list_orders(self, request: web.Request) -> web.Response:
        if (denied := self._guard(request)) is not None:
            return denied
        orders = self._filtered(request, list(self.orders.values()))
        if "filter[date_upd]" in request.query:
            if request.query.get("date") != "1":
                return ps_error(400, 0, "To filter by date, add date=1 to the query")
            bounds = request.query["filter[date_upd]"].strip("[]").split(",")
            if len(bounds) != 2:
                return ps_error(400, 0, "filter[date_upd]: use [from,to]")
            low, high = bounds
            orders = [o for o in orders if low <= o["date_upd"] <= high]
        if request.query.get("sort", "").startswith("[date_upd_ASC"):
            orders.sort(key=lambda o: (o["date_upd"], o["id"]))
        if limit := request.query.get("limit"):
            offset, _, count = limit.partition(",")
            start, size = (int(offset), int(count)) if count else (0, int(offset))
            orders = orders[start : start + size]
        return self._list(request, "orders", [dict(o) for o in orders])

    async def _get_order(self, request: web.Request) -> web.Response:
        if (denied := self._guard(request)) is not None:
            return denied
        order = self.orders.get(int(request.match_info["oid"]))
        if order is None:
            return ps_error(404, 87, "Id not found")
        return web.json_response({"order": as_json(dict(order))})

    async def _list_details(self, request: web.Request) -> web.Response:
        if (denied := self._guard(request)) is not None:
            return denied
        rows = self._filtered(request, [dict(d) for _, d in sorted(self.details.items())])
        return self._list(request, "order_details", rows)

    async def _add_history(self, request: web.Request) -> web.Response:
        if (denied := self._guard(request)) is not None:
            return denied
        try:
            sent = parse_xml(await request.read(), "order_history")
            oid, state = int(sent["id_order"]), int(sent["id_order_state"])
        except (ValueError, KeyError) as exc:
            return ps_error(400, 41, f"order_history unreadable: {exc}")
        if oid not in self.orders:
            return ps_error(400, 0, "id_order is invalid")
        self.set_state(oid, state)
        return web.json_response(
            {"order_history": {"id_order": oid, "id_order_state": state}}, status=201
        )

    async def _list_messages(self, request: web.Request) -> web.Response:
        if (denied := self._guard(request)) is not None:
            return denied
        return self._list(request, "messages", self._filtered(request, list(self.messages)))

    async def _add_message(self, request: web.Request) -> web.Response:
        if (denied := self._guard(request)) is not None:
            return denied
        try:
            sent = parse_xml(await request.read(), "message")
        except ValueError as exc:
            return ps_error(400, 127, str(exc))
        message = {"id": self._next_id(), **sent}
        self.messages.append(message)
        return web.json_response({"message": as_json(message)}, status=201)

    async def _list_addresses(self, request: web.Request) -> web.Response:
        if (denied := self._guard(request)) is not None:
            return denied
        self.address_reads.append(request.query.get("display", ""))
        rows = self._filtered(request, list(self.addresses.values()))
        return self._list(request, "addresses", rows)

    async def _get_country(self, request: web.Request) -> web.Response:
        if (denied := self._guard(request)) is not None:
            return denied
        country = self.countries.get(int(request.match_info["cid"]))
        if country is None:
            return ps_error(404, 87, "Id not found")
        return web.json_response({"country": as_json(country)})

    # ---- products (prices) -------------------------------------------------------------
    async def _list_products(self, request: web.Request) -> web.Response:
        if (denied := self._guard(request)) is not None:
            return denied
        rows = self._filtered(request, [dict(p) for _, p in sorted(self.products.items())])
        return self._list(request, "products", rows)

    async def _get_product(self, request: web.Request) -> web.Response:
        if (denied := self._guard(request)) is not None:
            return denied
        product = self.products.get(int(request.match_info["pid"]))
        if product is None:
            return ps_error(404, 87, "Id not found")
        return web.json_response({"product": as_json(dict(product))})

    async def _put_product(self, request: web.Request) -> web.Response:
        if (denied := self._guard(request)) is not None:
            return denied
        pid = int(request.match_info["pid"])
        if pid not in self.products:
            return ps_error(404, 87, "Id not found")
        try:
            sent = parse_xml(await request.read(), "product")
        except ValueError as exc:
            return ps_error(400, 127, str(exc))
        if sent.get("id") != str(pid):
            return ps_error(400, 89, "id is invalid: it must be the one in the URL")
        missing = [f for f in PRODUCT_REQUIRED if sent.get(f, "") == ""]
        if missing:
            return ps_error(400, 41, f'parameter "{missing[0]}" required')
        self.products[pid] = {**sent, "id": pid}  # the whole product: a field left out is gone
        return web.json_response({"product": as_json(self.products[pid])})


def main() -> None:
    parser = argparse.ArgumentParser(description="Fake PrestaShop webservice for demos")
    parser.add_argument("--port", type=int, default=8703)
    args = parser.parse_args()
    fake = FakePrestaShop(port=args.port)
    for pid in (1, 2, 3):
        fake.add_product(pid, 100)
    asyncio.run(serve_forever(fake, "fake PrestaShop (the test webservice key)"))


if __name__ == "__main__":
    main()
