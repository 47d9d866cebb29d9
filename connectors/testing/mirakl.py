"""A fake Mirakl Marketplace Platform (seller API) for one operator, faithful to
channel-contracts §5.4. Several operators are several instances (one host and port each;
:class:`FakeMiraklOperators` starts them together).

- Auth: ``Authorization: <shop API key>`` (the raw key, no scheme) on every route, else 401
  ``{"status": 401, "message": "Unauthorized"}``; ``revoke_key(seconds)`` answers 401 to the
  right key for a while (a key regenerated, then restored).
- OR11 ``GET /api/orders``: offset paging (``max`` ≤ 100, else 400; ``offset``), filters
  ``start_update_date``, ``end_update_date``, ``order_state_codes``, ``order_ids``;
  ``{orders, total_count}``. Orders carry the customer's name, addresses and phone (a real
  payload does): the connector must drop them; with ``addresses_from_shipping`` (an
  operator's setting) ``customer.shipping_address`` and ``billing_address`` are null until
  the order is ``SHIPPING``. **Call frequency**: a first page (offset 0)
  of a listing asked less than ``or11_interval_s`` after the previous one is throttled
  (429); reading given orders (``order_ids``) is not a listing.
- OR21 ``PUT /api/orders/{id}/accept`` ``{order_lines: [{id, accepted}]}``: every line of a
  ``WAITING_ACCEPTANCE`` order must be named (400 ``ORDER_LINE_ACCEPTANCE_DECISION_MISSING``
  otherwise, 400 ``ORDER_INVALID_STATE`` for an order in another state); accepted lines go
  ``SHIPPING`` (the debit is immediate here), refused ones ``REFUSED``; an order whose lines
  are all refused is ``REFUSED``. An order still waiting
  at its ``acceptance_decision_date`` is refused by the operator (lines ``REFUSED``) and
  its reserved units go back to the offers.
- OR23 ``PUT /api/orders/{id}/tracking`` ``{carrier_code, carrier_name, carrier_url,
  tracking_number}`` → 204; OR24 ``PUT /api/orders/{id}/ship`` → 204, ``SHIPPING`` →
  ``SHIPPED`` (400 from another state).
- ``cancel_units(order, line, n)``: a line's ``cancelations`` entry (units cancelled while
  the rest goes on), its units back on the offer.
- OF24 ``POST /api/offers`` ``{offers: [{shop_sku, product_id, product_id_type, price,
  state_code, quantity, update_delete}]}`` → 201 ``{import_id}``; OF01 ``POST
  /api/offers/imports`` (multipart ``file``, CSV ``;``-separated with a header row, column
  ``sku``, ``quantity``, ``update-delete``…) → 201 ``{import_id}``, **at most once per
  ``of01_interval_s``** (429 otherwise). Both are asynchronous: the import stays
  ``WAITING``/``RUNNING`` for ``import_delay_s``, then ``COMPLETE`` with per-line results.
  A line is in error when its offer is unknown (``"The offer ... does not exist"``), a
  required field is missing, the quantity is not a non-negative integer, or
  ``reject(sku)`` said so. OF02 ``GET /api/offers/imports/{id}`` (``status``,
  ``lines_read``, ``lines_in_success``, ``lines_in_error``, ``has_error_report``…); OF03
  ``GET /api/offers/imports/{id}/error_report``: the CSV of the lines in error with
  ``error-line`` and ``error-message`` columns (404 when there is none).
- OF21 ``GET /api/offers`` (offset paging, ``max`` ≤ 100): ``{offers: [{shop_sku,
  quantity, …}], total_count}``. An order placed takes its units off the offer's quantity
  (given back when the order is refused or cancelled, whatever stockflow's figure is), as
  Mirakl does.
- Throttling, both ways seen on operators' instances: ``throttle_next(n, retry_after)``
  answers 429 with ``Retry-After`` (seconds) or, with ``retry_after=None``, a bare 429;
  ``storm``/``fail_next``/``down`` from the base work too.

Run alone: ``python -m connectors.testing.mirakl --port 8705``.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from connectors.testing.base import FakeChannel, Write, serve_forever

MAX_PAGE = 100
ACCEPTANCE = "WAITING_ACCEPTANCE"
OPEN_STATES = ("WAITING_ACCEPTANCE", "WAITING_DEBIT", "WAITING_DEBIT_PAYMENT", "SHIPPING")
REQUIRED_OF24 = ("shop_sku", "price", "state_code", "quantity")


def mirakl_time(moment: datetime) -> str:
    """Mirakl's ISO 8601 UTC with milliseconds: ``2026-11-30T09:00:00.123Z``."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def mirakl_error(status: int, message: str, code: str | None = None) -> web.Response:
    body: dict[str, Any] = {"status": status, "message": message}
    if code is not None:
        body["code"] = code  # the seller API's immutable error code (OR21 lists them)
    return web.json_response(body, status=status)


class FakeMirakl(FakeChannel):
    def __init__(
        self,
        *,
        operator: str = "leroymerlin",
        api_key: str = "mirakl-key",
        shop_id: int = 2001,
        or11_interval_s: float = 60.0,
        of01_interval_s: float = 60.0,
        import_delay_s: float = 0.3,
        acceptance_window_s: float = 86400.0,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int | None = None,
        addresses_from_shipping: bool = False,
    ) -> None:
        self.operator = operator
        # the operator's setting: the customer's addresses null until the order is SHIPPING
        self.addresses_from_shipping = addresses_from_shipping
        self.api_key = api_key
        self.shop_id = shop_id
        self.or11_interval_s = or11_interval_s
        self.of01_interval_s = of01_interval_s
        self.import_delay_s = import_delay_s
        self.acceptance_window_s = acceptance_window_s
        self.offers: dict[str, dict[str, Any]] = {}  # shop_sku -> offer
        self.orders: dict[str, dict[str, Any]] = {}
        self.imports: dict[int, dict[str, Any]] = {}
        self.rejections: dict[str, str] = {}  # shop_sku -> message of its next lines in error
        self.accept_calls: list[tuple[str, dict[str, bool]]] = []
        self.trackings: dict[str, dict[str, Any]] = {}
        self.or11_calls = 0
        self.or11_refused = 0  # first pages refused for calling too often
        self.of01_refused = 0
        self.unauthorized = 0
        self.throttled_answers = 0
        self._throttles: list[float | None] = []
        self._revoked_until = 0.0
        self._last_or11 = -1e9
        self._last_of01 = -1e9
        self._ids = 0
        self._taken: dict[str, int] = {}  # order line id -> units taken off its offer
        self._last_update = datetime.now(tz=UTC)
        super().__init__(host=host, port=port, seed=seed)

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/api/orders", self._list_orders),
            web.put("/api/orders/{oid}/accept", self._accept),
            web.put("/api/orders/{oid}/tracking", self._tracking),
            web.put("/api/orders/{oid}/ship", self._ship),
            web.get("/api/offers", self._list_offers),
            web.post("/api/offers", self._of24),
            web.post("/api/offers/imports", self._of01),
            web.get("/api/offers/imports/{iid:\\d+}", self._of02),
            web.get("/api/offers/imports/{iid:\\d+}/error_report", self._of03),
        ]

    # ---- set-up and switches ---------------------------------------------------------
    def add_offer(self, sku: str, quantity: int = 0, *, price: str = "49.00") -> None:
        self.offers[sku] = {
            "shop_sku": sku,
            "offer_id": len(self.offers) + 3000,
            "product_sku": f"P-{sku}",
            "quantity": quantity,
            "price": price,
            "state_code": "11",
            "active": quantity > 0,
        }

    def quantity(self, sku: str) -> int | None:
        offer = self.offers.get(sku)
        return None if offer is None else int(offer["quantity"])

    def reject(self, sku: str, message: str = "") -> None:
        """Every import line of ``sku`` ends in error with ``message`` until ``accept_again``."""
        self.rejections[sku] = message or f"The offer with sku {sku} cannot be updated"

    def accept_again(self, sku: str) -> None:
        self.rejections.pop(sku, None)

    def throttle_next(self, n: int, retry_after: float | None = 1.0) -> None:
        """The next ``n`` requests answer 429, with ``Retry-After`` or (None) without."""
        self._throttles.extend([retry_after] * n)

    def revoke_key(self, seconds: float) -> None:
        """The shop's key is refused (401) for ``seconds`` (regenerated, then restored)."""
        self._revoked_until = time.monotonic() + seconds

    def _now(self) -> datetime:
        """Strictly increasing times (1 ms apart at least), so each change is newer."""
        now = datetime.now(tz=UTC) + timedelta(seconds=self.clock_offset_s)
        if now <= self._last_update:
            now = self._last_update + timedelta(milliseconds=1)
        self._last_update = now
        return now

    def _touch(self, order: dict[str, Any]) -> None:
        order["last_updated_date"] = mirakl_time(self._now())

    def place_order(
        self, lines: list[tuple[str, int]], *, acceptance_window_s: float | None = None
    ) -> dict[str, Any]:
        """A ``WAITING_ACCEPTANCE`` order of ``(sku, qty)`` lines, taking the units off the
        offers. Like Mirakl's payload it carries the customer's name, addresses and phone."""
        self._ids += 1
        oid = f"{self.operator.upper()}-{100000 + self._ids}-A"
        now = self._now()
        window = self.acceptance_window_s if acceptance_window_s is None else acceptance_window_s
        address = {
            "civility": "Mme",
            "firstname": "Louise",
            "lastname": "Martin",
            "company": None,
            "street_1": "12 rue des Lilas",
            "street_2": None,
            "city": "Lyon",
            "zip_code": "69003",
            "country": "France",
            "country_iso_code": "FRA",
            "phone": "+33612345678",
        }
        order_lines = []
        for n, (sku, qty) in enumerate(lines, start=1):
            order_lines.append(
                {
                    "order_line_id": f"{oid}-{n}",
                    "order_line_index": n,
                    "offer_sku": sku,
                    "offer_id": self.offers.get(sku, {}).get("offer_id"),
                    "product_title": f"Product {sku}",
                    "quantity": qty,
                    "price": 49.0 * qty,
                    "price_unit": 49.0,
                    "order_line_state": ACCEPTANCE,
                }
            )
            if sku in self.offers:  # an offer showing too few units gives what it has
                taken = min(qty, self.offers[sku]["quantity"])
                self.offers[sku]["quantity"] -= taken
                self._taken[f"{oid}-{n}"] = taken
        order = {
            "order_id": oid,
            "commercial_id": f"{100000 + self._ids}",
            "shop_id": self.shop_id,
            "order_state": ACCEPTANCE,
            "created_date": mirakl_time(now),
            "last_updated_date": mirakl_time(now),
            "acceptance_decision_date": mirakl_time(now + timedelta(seconds=window)),
            "currency_iso_code": "EUR",
            "customer": {
                "customer_id": "C-88",
                "firstname": "Louise",
                "lastname": "Martin",
                "email": "louise.martin@example.org",
                "billing_address": dict(address),
                "shipping_address": dict(address),
            },
            "order_lines": order_lines,
        }
        self.orders[oid] = order
        return order

    def _give_back(self, line: dict[str, Any]) -> None:
        """A refused or cancelled line's units go back on its offer (what was taken)."""
        offer = self.offers.get(line["offer_sku"])
        if offer is not None:
            offer["quantity"] += self._taken.pop(line["order_line_id"], 0)

    def _expire(self) -> None:
        """Orders still waiting past their acceptance date are refused by the operator."""
        now = datetime.now(tz=UTC) + timedelta(seconds=self.clock_offset_s)
        for order in self.orders.values():
            if (
                order["order_state"] == ACCEPTANCE
                and parse_time(order["acceptance_decision_date"]) <= now
            ):
                for line in order["order_lines"]:
                    line["order_line_state"] = "REFUSED"
                    self._give_back(line)
                order["order_state"] = "REFUSED"
                self._touch(order)

    def ship_order(self, oid: str) -> None:
        self._set_state(oid, "SHIPPED", frm=("SHIPPING",))

    def receive(self, oid: str) -> None:
        self._set_state(oid, "RECEIVED", frm=("SHIPPED",))

    def cancel(self, oid: str) -> None:
        """The customer or operator cancels the order: its units go back to the offers."""
        order = self.orders[oid]
        for line in order["order_lines"]:
            if line["order_line_state"] in OPEN_STATES:
                self._give_back(line)
        self._set_state(oid, "CANCELED", frm=OPEN_STATES)

    def cancel_units(self, oid: str, line_index: int, quantity: int) -> None:
        """Some units of a line cancelled (OR30, the customer): a ``cancelations`` entry on
        the line, the units back on the offer; a line with nothing left is ``CANCELED``,
        an order with no line left too."""
        order = self.orders[oid]
        line = order["order_lines"][line_index - 1]
        self._ids += 1
        line.setdefault("cancelations", []).append(
            {"id": f"C{self._ids}", "quantity": quantity, "reason_code": "34"}
        )
        offer = self.offers.get(line["offer_sku"])
        back = min(quantity, self._taken.get(line["order_line_id"], 0))
        if offer is not None and back:
            offer["quantity"] += back
            self._taken[line["order_line_id"]] -= back
        if sum(c["quantity"] for c in line["cancelations"]) >= line["quantity"]:
            line["order_line_state"] = "CANCELED"
        if all(x["order_line_state"] == "CANCELED" for x in order["order_lines"]):
            order["order_state"] = "CANCELED"
        self._touch(order)

    def _set_state(self, oid: str, state: str, *, frm: tuple[str, ...]) -> None:
        order = self.orders[oid]
        if order["order_state"] not in frm:
            raise ValueError(f"order {oid} is {order['order_state']}, not one of {frm}")
        order["order_state"] = state
        for line in order["order_lines"]:
            if line["order_line_state"] in frm:
                line["order_line_state"] = state
        self._touch(order)

    # ---- protocol --------------------------------------------------------------------
    def throttled(self, retry_after: float) -> web.Response:
        self.throttled_answers += 1
        return web.json_response(
            {"status": 429, "message": "Too Many Requests"},
            status=429,
            headers={"Retry-After": str(int(retry_after) if retry_after >= 1 else retry_after)},
        )

    def bare_throttle(self) -> web.Response:
        self.throttled_answers += 1
        return web.json_response({"status": 429, "message": "Too Many Requests"}, status=429)

    def failure(self, status: int, retry_after: float | None) -> web.Response:
        if status == 429:
            return self.throttled(1.0) if retry_after is None else self.throttled(retry_after)
        headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
        return web.json_response(
            {"status": status, "message": "Internal Server Error"}, status=status, headers=headers
        )

    def _guard(self, request: web.Request) -> web.Response | None:
        if self._throttles:
            wait = self._throttles.pop(0)
            return self.bare_throttle() if wait is None else self.throttled(wait)
        if request.headers.get("Authorization") != self.api_key or (
            time.monotonic() < self._revoked_until
        ):
            self.unauthorized += 1
            return mirakl_error(401, "Unauthorized")
        self._expire()
        return None

    # ---- orders ----------------------------------------------------------------------
    async def _list_orders(self, request: web.Request) -> web.Response:
        if (refused := self._guard(request)) is not None:
            return refused
        q = request.query
        try:
            offset = int(q.get("offset", "0"))
            size = int(q.get("max", "10"))
        except ValueError:
            return mirakl_error(400, "offset and max must be integers")
        if size > MAX_PAGE or size < 1:
            return mirakl_error(400, f"max must be between 1 and {MAX_PAGE}")
        if offset == 0 and "order_ids" not in q:  # listing changes, not reading given orders
            now = time.monotonic()
            if now - self._last_or11 < self.or11_interval_s:
                self.or11_refused += 1
                wait = self.or11_interval_s - (now - self._last_or11)
                return self.throttled(max(1.0, round(wait)))
            self._last_or11 = now
        self.or11_calls += 1
        found = list(self.orders.values())
        if "order_ids" in q:
            wanted = set(q["order_ids"].split(","))
            found = [o for o in found if o["order_id"] in wanted]
        if "order_state_codes" in q:
            states = set(q["order_state_codes"].split(","))
            found = [o for o in found if o["order_state"] in states]
        if "start_update_date" in q:
            since = parse_time(q["start_update_date"])
            found = [o for o in found if parse_time(o["last_updated_date"]) >= since]
        if "end_update_date" in q:
            until = parse_time(q["end_update_date"])
            found = [o for o in found if parse_time(o["last_updated_date"]) <= until]
        found.sort(key=lambda o: o["created_date"])
        return web.json_response(
            {
                "orders": [self._shown(o) for o in found[offset : offset + size]],
                "total_count": len(found),
            }
        )

    def _shown(self, order: dict[str, Any]) -> dict[str, Any]:
        """The order as OR11 shows it: with ``addresses_from_shipping``, the customer's
        addresses are null before ``SHIPPING`` (Mirakl: "null before shipping")."""
        if not self.addresses_from_shipping or order["order_state"] not in (
            "STAGING",
            "WAITING_ACCEPTANCE",
            "WAITING_DEBIT",
            "WAITING_DEBIT_PAYMENT",
        ):
            return order
        customer = {**order["customer"], "shipping_address": None, "billing_address": None}
        return {**order, "customer": customer}

    async def _accept(self, request: web.Request) -> web.Response:
        if (refused := self._guard(request)) is not None:
            return refused
        order = self.orders.get(request.match_info["oid"])
        if order is None:
            return mirakl_error(
                404, f"Order with id {request.match_info['oid']} not found", "ORDER_NOT_FOUND"
            )
        body = await request.json()
        answers = {str(line["id"]): bool(line["accepted"]) for line in body.get("order_lines", [])}
        self.accept_calls.append((order["order_id"], answers))
        if order["order_state"] != ACCEPTANCE:
            return mirakl_error(
                400,
                f"The order {order['order_id']} is not in state WAITING_ACCEPTANCE",
                "ORDER_INVALID_STATE",
            )
        ids = {line["order_line_id"] for line in order["order_lines"]}
        if set(answers) != ids:
            return mirakl_error(
                400,
                "All the order lines must be accepted or refused",
                "ORDER_LINE_ACCEPTANCE_DECISION_MISSING",
            )
        for line in order["order_lines"]:
            if answers[line["order_line_id"]]:
                line["order_line_state"] = "SHIPPING"
            else:
                line["order_line_state"] = "REFUSED"
                self._give_back(line)
        any_accepted = any(answers.values())
        order["order_state"] = "SHIPPING" if any_accepted else "REFUSED"
        self._touch(order)
        return web.Response(status=204)

    async def _tracking(self, request: web.Request) -> web.Response:
        if (refused := self._guard(request)) is not None:
            return refused
        order = self.orders.get(request.match_info["oid"])
        if order is None:
            return mirakl_error(404, f"Order with id {request.match_info['oid']} not found")
        body = await request.json()
        if not body.get("tracking_number") or not (
            body.get("carrier_code") or body.get("carrier_name")
        ):
            return mirakl_error(400, "carrier_code or carrier_name and tracking_number required")
        self.trackings[order["order_id"]] = dict(body)
        self._touch(order)
        return web.Response(status=204)

    async def _ship(self, request: web.Request) -> web.Response:
        if (refused := self._guard(request)) is not None:
            return refused
        oid = request.match_info["oid"]
        if oid not in self.orders:
            return mirakl_error(404, f"Order with id {oid} not found")
        try:
            self.ship_order(oid)
        except ValueError as exc:
            return mirakl_error(400, str(exc))
        return web.Response(status=204)

    # ---- offers and imports ----------------------------------------------------------
    async def _list_offers(self, request: web.Request) -> web.Response:
        if (refused := self._guard(request)) is not None:
            return refused
        offset = int(request.query.get("offset", "0"))
        size = int(request.query.get("max", "10"))
        if size > MAX_PAGE or size < 1:
            return mirakl_error(400, f"max must be between 1 and {MAX_PAGE}")
        offers = sorted(self.offers.values(), key=lambda o: o["shop_sku"])
        return web.json_response(
            {"offers": offers[offset : offset + size], "total_count": len(offers)}
        )

    async def _of24(self, request: web.Request) -> web.Response:
        if (refused := self._guard(request)) is not None:
            return refused
        try:
            body = await request.json()
            rows = list(body["offers"])
        except (ValueError, KeyError, TypeError):
            return mirakl_error(400, "Body must be {offers: [...]}")
        lines = [
            {
                "sku": str(r.get("shop_sku") or ""),
                "quantity": r.get("quantity"),
                "update-delete": r.get("update_delete", "update"),
                "missing": [f for f in REQUIRED_OF24 if r.get(f) in (None, "")],
                "raw": {k: r.get(k) for k in ("shop_sku", "quantity", "price", "state_code")},
            }
            for r in rows
        ]
        return web.json_response({"import_id": self._start_import(lines, "JSON")}, status=201)

    async def _of01(self, request: web.Request) -> web.Response:
        if (refused := self._guard(request)) is not None:
            return refused
        now = time.monotonic()
        if now - self._last_of01 < self.of01_interval_s:
            self.of01_refused += 1
            return self.throttled(max(1.0, round(self.of01_interval_s - (now - self._last_of01))))
        self._last_of01 = now
        try:
            form = await request.post()
            upload = form["file"]
            text = upload.file.read().decode("utf-8")  # type: ignore[union-attr]
            reader = csv.DictReader(io.StringIO(text), delimiter=";")
            rows = list(reader)
        except (KeyError, AttributeError, UnicodeDecodeError, csv.Error):
            return mirakl_error(400, "A CSV file named 'file' is required")
        if not reader.fieldnames or "sku" not in reader.fieldnames:
            return mirakl_error(400, "The file has no 'sku' column")
        lines = [
            {
                "sku": r.get("sku") or "",
                "quantity": r.get("quantity"),
                "update-delete": r.get("update-delete") or "update",
                "missing": [] if r.get("quantity") not in (None, "") else ["quantity"],
                "raw": dict(r),
            }
            for r in rows
        ]
        return web.json_response({"import_id": self._start_import(lines, "CSV")}, status=201)

    def _start_import(self, lines: list[dict[str, Any]], kind: str) -> int:
        self._ids += 1
        iid = 5000 + self._ids
        self.imports[iid] = {
            "import_id": iid,
            "kind": kind,
            "date_created": mirakl_time(self._now()),
            "lines": lines,
            "status": "WAITING",
            "errors": [],
            "success": 0,
        }
        self.in_background(self._run_import(iid))
        return iid

    async def _run_import(self, iid: int) -> None:
        job = self.imports[iid]
        await asyncio.sleep(self.import_delay_s / 2)
        job["status"] = "RUNNING"
        await asyncio.sleep(self.import_delay_s / 2)
        for n, line in enumerate(job["lines"], start=1):
            error = self._line_error(line)
            if error:
                job["errors"].append((n, line, error))
                continue
            sku = line["sku"]
            self.offers[sku]["quantity"] = int(str(line["quantity"]))
            self.offers[sku]["active"] = self.offers[sku]["quantity"] > 0
            self.writes.append(
                Write(time.monotonic(), sku, sku, int(str(line["quantity"])), key=str(iid))
            )
            job["success"] += 1
        job["status"] = "COMPLETE"

    def _line_error(self, line: dict[str, Any]) -> str:
        sku = line["sku"]
        if line["missing"]:
            return f"The field(s) {', '.join(line['missing'])} are required"
        if sku not in self.offers:
            return f"The offer with sku {sku} does not exist"
        if sku in self.rejections:
            return self.rejections[sku]
        try:
            if int(str(line["quantity"])) < 0:
                raise ValueError
        except ValueError:
            return f"The quantity {line['quantity']!r} is not a positive integer"
        return ""

    async def _of02(self, request: web.Request) -> web.Response:
        if (refused := self._guard(request)) is not None:
            return refused
        job = self.imports.get(int(request.match_info["iid"]))
        if job is None:
            return mirakl_error(404, "Import not found")
        done = job["status"] == "COMPLETE"
        return web.json_response(
            {
                "import_id": job["import_id"],
                "date_created": job["date_created"],
                "status": job["status"],
                "reason_status": "",
                "mode": "NORMAL",
                "has_error_report": bool(job["errors"]),
                "lines_read": len(job["lines"]) if done else 0,
                "lines_in_success": job["success"],
                "lines_in_error": len(job["errors"]),
                "lines_in_pending": 0 if done else len(job["lines"]),
                "offer_inserted": 0,
                "offer_updated": job["success"],
                "offer_deleted": 0,
            }
        )

    async def _of03(self, request: web.Request) -> web.StreamResponse:
        if (refused := self._guard(request)) is not None:
            return refused
        job = self.imports.get(int(request.match_info["iid"]))
        if job is None or not job["errors"]:
            return mirakl_error(404, "No error report for this import")
        out = io.StringIO()
        writer = csv.writer(out, delimiter=";", quoting=csv.QUOTE_ALL, lineterminator="\n")
        writer.writerow(["sku", "quantity", "update-delete", "error-line", "error-message"])
        for n, line, error in job["errors"]:
            writer.writerow([line["sku"], line["quantity"], line["update-delete"], n, error])
        return web.Response(text=out.getvalue(), content_type="text/csv")


class FakeMiraklOperators:
    """Several operators' instances, one host and port each (``fakes[name]``)."""

    def __init__(self, names: list[str], **options: Any) -> None:
        self.fakes = {
            name: FakeMirakl(operator=name, api_key=f"key-{name}", **options) for name in names
        }

    async def start(self) -> None:
        for fake in self.fakes.values():
            await fake.start()

    async def close(self) -> None:
        for fake in self.fakes.values():
            await fake.close()


async def _main(port: int) -> None:
    fake = FakeMirakl(port=port, or11_interval_s=1, of01_interval_s=1)
    for sku in ("chair", "table", "lamp"):
        fake.add_offer(sku, 10)
    await serve_forever(fake, f"fake Mirakl ({fake.operator}, key {fake.api_key})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8705)
    asyncio.run(_main(parser.parse_args().port))
