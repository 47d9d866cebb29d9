"""A fake Fnac Darty seller API, faithful to channel-contracts §5.2 and the recorded XML of
the reference client (fnapy): ``POST /api.php/<service>``, ``Content-Type: text/xml``, the
``mp-dialog.xsd`` namespace, every answer ``<service_response status=…>`` in HTTP 200.

- ``auth`` ``{partner_id, shop_id, key}`` → ``token`` and ``validity`` (``token_ttl_s``);
  wrong credentials → ``status="ERROR"``. Every other service checks the root's
  ``partner_id``/``shop_id``/``token``: an unknown or expired token is answered
  ``status="FATAL"`` with an ``<error>`` (code ``ERR_001``: the real code was not found, the
  reference client re-authenticates on any response-level error). ``expire_tokens()``
  expires every token now.
- ``offers_update`` → ``batch_id``; the batch is processed after ``batch_delay_s``:
  ``batch_status`` answers ``status="OK"`` with only the ``batch_id`` while queued (the
  recorded shape), ``RUNNING`` while processed, then the report: ``<offer status="OK">``
  per applied offer, ``<offer status="ERROR"><error…>`` per refused one (an unknown offer
  without ``product_reference``; ``offer_fail``), the batch ``OK`` or ``ERROR``;
  ``fail_batches(n)``: the next ``n`` batches end ``FATAL`` with nothing applied. An offer
  without ``offer_reference`` or ``quantity`` refuses the whole request (``ERR_096`` XML
  validation, as recorded).
- ``offers_query`` (paging, ``offer_seller_id`` filter), ``batch_query``.
- ``orders_query``: ``results_count`` per page (at most 100), ``paging``, ``<date type=
  "CreatedAt|Modified"><min/><max/>``, ``<states><state/>``, ``<orders_fnac_id>``; orders
  carry the customer's name and addresses like the real ones.
- ``orders_update`` (at most 25 orders): ``accept_order`` (details ``Accepted``/``Refused``,
  only from ``Created``), ``confirm_to_send`` (``Shipped`` with tracking, from ``Accepted``
  or ``ToShip``), ``update`` (tracking); a wrong state is an order-level ``ERROR``.
- An order left ``Created`` longer than ``acceptance_window_s`` is ``Cancelled`` by Fnac.
- Rate limit: ``rate_per_s`` (off by default) answers 429 with ``Retry-After`` past it;
  ``storm``/``fail_next``/``down`` from the base.

Run alone: ``python -m connectors.testing.fnac --port 8705``.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from xml.etree.ElementTree import Element, ParseError, SubElement, tostring

from aiohttp import web
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from connectors.testing.base import FakeChannel, Write, serve_forever

NS = "http://www.fnac.com/schemas/mp-dialog.xsd"
PARIS = timezone(timedelta(hours=1))
TOKEN_ERROR = "ERR_001"  # noqa: S105 - an error code
VALIDATION_ERROR = "ERR_096"
UNKNOWN_OFFER = "ERR_105"
ORDER_STATE_ERROR = "ERR_201"
MAX_PAGE = 100
MAX_ORDERS_UPDATE = 25


def _strip(root: Element) -> Element:
    for node in root.iter():
        if isinstance(node.tag, str) and node.tag.startswith("{"):
            node.tag = node.tag.split("}", 1)[1]
    return root


def _text(node: Element | None, tag: str) -> str:
    found = None if node is None else node.find(tag)
    return "" if found is None or found.text is None else found.text.strip()


def _sub(parent: Element, tag: str, value: object = None, **attributes: str) -> Element:
    node = SubElement(parent, tag, attributes)
    if value is not None:
        node.text = str(value)
    return node


def _iso(moment: datetime) -> str:
    return moment.astimezone(PARIS).isoformat(timespec="seconds")


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


class FakeFnac(FakeChannel):
    def __init__(
        self,
        *,
        partner_id: str = "fnac-partner",
        shop_id: str = "fnac-shop",
        key: str = "fnac-key",
        token_ttl_s: float = 3600.0,
        batch_delay_s: float = 0.3,
        acceptance_window_s: float = 48 * 3600.0,
        rate_per_s: float | None = None,
        rate_burst: float = 10.0,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int | None = None,
    ) -> None:
        self.partner_id = partner_id
        self.shop_id = shop_id
        self.key = key
        self.token_ttl_s = token_ttl_s
        self.batch_delay_s = batch_delay_s
        self.acceptance_window_s = acceptance_window_s
        self.rate_per_s = rate_per_s
        self.rate_burst = rate_burst
        self._bucket = rate_burst
        self._bucket_at = time.monotonic()
        self.offers: dict[str, dict[str, Any]] = {}
        self.orders: dict[str, dict[str, Any]] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.offer_failures: dict[str, list[tuple[str, str, str]]] = {}
        self.tokens: dict[str, datetime] = {}
        self.authentications = 0
        self.token_refusals = 0  # requests answered with the token error
        self.throttled_requests = 0
        self.order_updates: list[tuple[str, str, list[tuple[str, str]]]] = []
        self._fatal_batches = 0
        super().__init__(host=host, port=port, seed=seed)

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/api.php/{service}", self._dispatch)]

    # ---- set-up and switches ---------------------------------------------------------
    def now(self) -> datetime:
        return datetime.now(tz=UTC) + timedelta(seconds=self.clock_offset_s)

    def add_offer(self, sku: str, quantity: int = 0, *, ean: str | None = None) -> None:
        self.offers[sku] = {
            "quantity": quantity,
            "ean": ean or f"3{abs(hash(sku)) % 10**12:012d}",
            "offer_fnac_id": str(uuid.uuid4()).upper(),
            "product_fnac_id": str(self.rng.randint(1_000_000, 9_999_999)),
        }

    def quantity(self, sku: str) -> int | None:
        offer = self.offers.get(sku)
        return None if offer is None else int(offer["quantity"])

    def expire_tokens(self) -> None:
        """Every token handed out so far expires now (the next call gets the token error)."""
        past = self.now() - timedelta(seconds=1)
        for token in self.tokens:
            self.tokens[token] = past

    def offer_fail(
        self,
        sku: str,
        times: int = 1,
        *,
        code: str = "ERR_120",
        message: str = "Invalid quantity for this offer",
        severity: str = "ERROR",
    ) -> None:
        """The next ``times`` batches holding ``sku`` refuse it with this error."""
        self.offer_failures.setdefault(sku, []).extend([(severity, code, message)] * times)

    def fail_batches(self, n: int = 1) -> None:
        self._fatal_batches += n

    def place_order(
        self, lines: list[tuple[str, int]], *, state: str = "Created", age_s: float = 0.0
    ) -> str:
        """An order of ``(sku, qty)`` details, created ``age_s`` ago. Like Fnac's, it carries
        the customer's name and addresses."""
        oid = uuid.uuid4().hex[:13].upper()
        created = self.now() - timedelta(seconds=age_s)
        details = []
        for n, (sku, qty) in enumerate(lines, start=1):
            offer = self.offers.get(sku, {})
            details.append(
                {
                    "order_detail_id": str(n),
                    "state": state,
                    "quantity": qty,
                    "price": "49.90",
                    "offer_seller_id": sku,
                    "offer_fnac_id": offer.get("offer_fnac_id", ""),
                    "product_fnac_id": offer.get("product_fnac_id", ""),
                    "product_name": f"Product {sku}",
                    "created_at": _iso(created),
                    "times": {},
                    "tracking_number": "",
                }
            )
        address = {
            "firstname": "Camille",
            "lastname": "Durand",
            "company": "",
            "address1": "12 rue des Lilas",
            "address2": "Bat C",
            "address3": "",
            "zipcode": "75011",
            "city": "PARIS",
            "country": "FRA",
            "phone": "+33612345678",
        }
        self.orders[oid] = {
            "order_id": oid,
            "state": state,
            "created_at": _iso(created),
            "created": created,
            "updated": created,
            "client_id": str(uuid.uuid4()),
            "client_firstname": "Camille",
            "client_lastname": "Durand",
            "client_email": "camille.durand@example.org",
            "shipping_address": dict(address),
            "billing_address": dict(address),
            "details": details,
        }
        return oid

    def state(self, oid: str) -> str:
        return str(self.orders[oid]["state"])

    def _move(self, oid: str, state: str, stamp: str, only: set[str] | None = None) -> None:
        order = self.orders[oid]
        now = self.now()
        for detail in order["details"]:
            if only is None or detail["order_detail_id"] in only:
                detail["state"] = state
                detail["times"][stamp] = _iso(now)
        order["state"] = state
        order["updated"] = now

    def cancel_order(self, oid: str) -> None:
        """Cancelled by the customer or Fnac's service."""
        self._move(oid, "Cancelled", "cancelled_at")

    def debit(self, oid: str) -> None:
        """Accepted → ToShip: Fnac billed the customer."""
        self._move(oid, "ToShip", "debited_at")

    def ship(self, oid: str, tracking_number: str = "TRK") -> None:
        """Shipped by the seller in the back office (what ``confirm_to_send`` does)."""
        for detail in self.orders[oid]["details"]:
            detail["tracking_number"] = tracking_number
        self._move(oid, "Shipped", "shipped_at")

    def receive(self, oid: str) -> None:
        self._move(oid, "Received", "received_at")

    def refund(self, oid: str) -> None:
        self._move(oid, "Refunded", "refunded_at")

    def _expire_orders(self) -> None:
        limit = self.now() - timedelta(seconds=self.acceptance_window_s)
        for oid, order in self.orders.items():
            if order["state"] == "Created" and order["created"] <= limit:
                self._move(oid, "Cancelled", "cancelled_at")

    # ---- protocol --------------------------------------------------------------------
    def _answer(self, service: str, status: str, *children: Element) -> web.Response:
        root = Element(f"{service}_response", {"status": status, "xmlns": NS})
        root.extend(children)
        body = b'<?xml version="1.0" encoding="utf-8"?>' + tostring(root, encoding="utf-8")
        return web.Response(body=body, content_type="text/xml", charset="utf-8")

    @staticmethod
    def _error(code: str, message: str, severity: str = "ERROR") -> Element:
        node = Element("error", {"severity": severity, "code": code})
        node.text = message
        return node

    def throttled(self, retry_after: float) -> web.Response:
        self.throttled_requests += 1
        body = (
            f'<?xml version="1.0" encoding="utf-8"?><error xmlns="{NS}">Too many requests, '
            "retry later</error>"
        ).encode()
        return web.Response(
            body=body,
            status=429,
            content_type="text/xml",
            headers={"Retry-After": f"{retry_after:g}"},
        )

    def failure(self, status: int, retry_after: float | None) -> web.Response:
        if status == 429:
            return self.throttled(1.0 if retry_after is None else retry_after)
        headers = {} if retry_after is None else {"Retry-After": f"{retry_after:g}"}
        return web.Response(
            text="<html><body>Service unavailable</body></html>",
            status=status,
            content_type="text/html",
            headers=headers,
        )

    def _rate_limited(self) -> float | None:
        if not self.rate_per_s:
            return None
        now = time.monotonic()
        self._bucket = min(
            self.rate_burst, self._bucket + (now - self._bucket_at) * self.rate_per_s
        )
        self._bucket_at = now
        if self._bucket < 1:
            return max(0.1, (1 - self._bucket) / self.rate_per_s)
        self._bucket -= 1
        return None

    async def _dispatch(self, request: web.Request) -> web.Response:
        service = request.match_info["service"]
        if (wait := self._rate_limited()) is not None:
            return self.throttled(round(wait, 2))
        if request.content_type != "text/xml":
            return web.Response(status=415, text="Content-Type must be text/xml")
        try:
            root = _strip(fromstring(await request.read()))
        except (ParseError, DefusedXmlException) as exc:
            return self._answer(
                service, "FATAL", self._error(VALIDATION_ERROR, f"XML is not valid: {exc}")
            )
        if root.tag != service:
            return self._answer(
                service, "FATAL", self._error(VALIDATION_ERROR, f"root {root.tag} for {service}")
            )
        self._expire_orders()
        if service == "auth":
            return self._auth(root)
        token = str(root.get("token") or "")
        expires = self.tokens.get(token)
        if (
            root.get("partner_id") != self.partner_id
            or root.get("shop_id") != self.shop_id
            or expires is None
            or expires <= self.now()
        ):
            self.token_refusals += 1
            return self._answer(
                service,
                "FATAL",
                self._error(
                    TOKEN_ERROR, "Authentication failed: token invalid or expired", "FATAL"
                ),
            )
        handlers: dict[str, Callable[[Element], web.Response]] = {
            "offers_update": self._offers_update,
            "batch_status": self._batch_status,
            "batch_query": self._batch_query,
            "offers_query": self._offers_query,
            "orders_query": self._orders_query,
            "orders_update": self._orders_update,
        }
        handler = handlers.get(service)
        if handler is None:
            return web.Response(status=404, text=f"unknown service {service}")
        return handler(root)

    def _auth(self, root: Element) -> web.Response:
        if (
            _text(root, "partner_id") != self.partner_id
            or _text(root, "shop_id") != self.shop_id
            or _text(root, "key") != self.key
        ):
            return self._answer(
                "auth", "ERROR", self._error("ERR_002", "Authentication failed: wrong credentials")
            )
        token = str(uuid.uuid4()).upper()
        validity = self.now() + timedelta(seconds=self.token_ttl_s)
        self.tokens[token] = validity
        self.authentications += 1
        token_node, validity_node, version = (
            Element("token"),
            Element("validity"),
            Element("version"),
        )
        token_node.text, validity_node.text, version.text = token, _iso(validity), "2.6.0"
        return self._answer("auth", "OK", token_node, validity_node, version)

    # ---- offers ----------------------------------------------------------------------
    def _offers_update(self, root: Element) -> web.Response:
        offers = []
        for offer in root.findall("offer"):
            sku, qty = _text(offer, "offer_reference"), _text(offer, "quantity")
            if not sku or not qty.lstrip("-").isdigit():
                return self._answer(
                    "offers_update",
                    "ERROR",
                    self._error(
                        VALIDATION_ERROR,
                        "XML Validation failed: Element 'offer': Missing child element(s) "
                        "offer_reference or quantity",
                    ),
                )
            offers.append((sku, int(qty), _text(offer, "product_reference") or None))
        batch_id = str(uuid.uuid4()).upper()
        self.batches[batch_id] = {"at": time.monotonic(), "offers": offers, "report": None}
        node = Element("batch_id")
        node.text = batch_id
        return self._answer("offers_update", "OK", node)

    def _process(self, batch_id: str, batch: dict[str, Any]) -> tuple[str, list[Element]]:
        if self._fatal_batches > 0:
            self._fatal_batches -= 1
            return "FATAL", [self._error("ERR_500", "Batch processing aborted", "FATAL")]
        report: list[Element] = []
        status = "OK"
        for sku, qty, ean in batch["offers"]:
            node = Element("offer")
            failures = self.offer_failures.get(sku)
            problem: tuple[str, str, str] | None = None
            if failures:
                problem = failures.pop(0)
            elif sku not in self.offers and not ean:
                problem = (
                    "ERROR",
                    UNKNOWN_OFFER,
                    f"Offer {sku} not found and no product reference",
                )
            if problem is None:
                if sku not in self.offers:
                    self.add_offer(sku, ean=ean)
                self.offers[sku]["quantity"] = max(0, qty)
                self.writes.append(Write(time.monotonic(), sku, sku, max(0, qty), key=batch_id))
                node.set("status", "OK")
                _sub(node, "product_fnac_id", self.offers[sku]["product_fnac_id"])
                _sub(node, "offer_fnac_id", self.offers[sku]["offer_fnac_id"])
            else:
                node.set("status", problem[0])
                status = "ERROR"
                node.append(self._error(problem[1], problem[2], problem[0]))
            _sub(node, "offer_seller_id", sku)
            report.append(node)
        return status, report

    def _batch_status(self, root: Element) -> web.Response:
        batch_id = _text(root, "batch_id")
        batch = self.batches.get(batch_id)
        node = Element("batch_id")
        node.text = batch_id
        if batch is None:
            return self._answer(
                "batch_status", "ERROR", node, self._error("ERR_110", f"Batch {batch_id} unknown")
            )
        age = time.monotonic() - batch["at"]
        if batch["report"] is None:
            if age < self.batch_delay_s / 2:
                return self._answer("batch_status", "OK", node)  # queued: the recorded shape
            if age < self.batch_delay_s:
                return self._answer("batch_status", "RUNNING", node)
            batch["report"] = self._process(batch_id, batch)
        status, report = batch["report"]
        return self._answer("batch_status", status, node, *report)

    def _batch_query(self, root: Element) -> web.Response:
        running = sum(1 for b in self.batches.values() if b["report"] is None)
        a, b = Element("nb_batch_running"), Element("nb_batch_active")
        a.text, b.text = str(running), "0"
        return self._answer("batch_query", "OK", a, b)

    def _offers_query(self, root: Element) -> web.Response:
        wanted = _text(root, "offer_seller_id")
        skus = [s for s in sorted(self.offers) if not wanted or s == wanted]
        page, count = self._paging(root)
        chosen = skus[(page - 1) * count : page * count]
        nodes = []
        for sku in chosen:
            offer = self.offers[sku]
            node = Element("offer")
            _sub(node, "product_fnac_id", offer["product_fnac_id"])
            _sub(node, "offer_fnac_id", offer["offer_fnac_id"])
            _sub(node, "offer_seller_id", sku)
            _sub(node, "product_state", 11)
            _sub(node, "price", "49.90")
            _sub(node, "quantity", offer["quantity"])
            nodes.append(node)
        return self._answer("offers_query", "OK", *self._pages(page, count, len(skus)), *nodes)

    @staticmethod
    def _paging(root: Element) -> tuple[int, int]:
        page = int(_text(root, "paging") or 1)
        count = min(MAX_PAGE, int(root.get("results_count") or MAX_PAGE))
        return max(1, page), max(1, count)

    @staticmethod
    def _pages(page: int, count: int, total: int) -> list[Element]:
        values = {
            "page": page,
            "total_paging": max(1, -(-total // count)),
            "nb_total_per_page": count,
            "nb_total_result": total,
        }
        nodes = []
        for tag, value in values.items():
            node = Element(tag)
            node.text = str(value)
            nodes.append(node)
        return nodes

    # ---- orders ----------------------------------------------------------------------
    def _orders_query(self, root: Element) -> web.Response:
        orders = list(self.orders.values())
        date = root.find("date")
        if date is not None:
            field = "created" if date.get("type") in ("CreatedAt", "Created") else "updated"
            low, high = _text(date, "min"), _text(date, "max")
            if low:
                orders = [o for o in orders if o[field].replace(microsecond=0) >= _parse_time(low)]
            if high:
                orders = [o for o in orders if o[field].replace(microsecond=0) <= _parse_time(high)]
        states = {(s.text or "").strip() for s in root.findall("states/state")}
        if states:
            orders = [o for o in orders if o["state"] in states]
        ids = {(s.text or "").strip() for s in root.findall("orders_fnac_id/order_fnac_id")}
        if ids:
            orders = [o for o in orders if o["order_id"] in ids]
        orders.sort(key=lambda o: (o["updated"], o["order_id"]))
        page, count = self._paging(root)
        chosen = orders[(page - 1) * count : page * count]
        nodes = [self._order_node(o) for o in chosen]
        return self._answer("orders_query", "OK", *self._pages(page, count, len(orders)), *nodes)

    def _order_node(self, order: dict[str, Any]) -> Element:
        node = Element("order")
        _sub(node, "shop_id", self.shop_id)
        _sub(node, "client_id", order["client_id"])
        _sub(node, "client_firstname", order["client_firstname"])
        _sub(node, "client_lastname", order["client_lastname"])
        _sub(node, "client_email", order["client_email"])
        _sub(node, "order_id", order["order_id"])
        _sub(node, "state", order["state"])
        _sub(node, "created_at", order["created_at"])
        _sub(node, "fees", "0")
        for kind in ("shipping_address", "billing_address"):
            address = _sub(node, kind)
            for key, value in order[kind].items():
                _sub(address, key, value)
        for d in order["details"]:
            detail = _sub(node, "order_detail")
            _sub(detail, "product_name", d["product_name"])
            _sub(detail, "order_detail_id", d["order_detail_id"])
            _sub(detail, "state", d["state"])
            _sub(detail, "quantity", d["quantity"])
            _sub(detail, "price", d["price"])
            _sub(detail, "product_fnac_id", d["product_fnac_id"])
            _sub(detail, "offer_fnac_id", d["offer_fnac_id"])
            _sub(detail, "offer_seller_id", d["offer_seller_id"])
            _sub(detail, "product_state", 11)
            _sub(detail, "created_at", d["created_at"])
            for stamp, value in d["times"].items():
                _sub(detail, stamp, value)
            _sub(detail, "tracking_number", d["tracking_number"])
        return node

    def _orders_update(self, root: Element) -> web.Response:
        requested = root.findall("order")
        if len(requested) > MAX_ORDERS_UPDATE:
            return self._answer(
                "orders_update",
                "ERROR",
                self._error("ERR_097", f"At most {MAX_ORDERS_UPDATE} orders per request"),
            )
        answers = [self._update_one(o) for o in requested]
        return self._answer("orders_update", "OK", *answers)

    def _update_one(self, request: Element) -> Element:
        oid, action = str(request.get("order_id") or ""), str(request.get("action") or "")
        node = Element("order")
        order = self.orders.get(oid)
        details = [
            (_text(d, "order_detail_id"), _text(d, "action"))
            for d in request.findall("order_detail")
        ]

        def refuse(message: str) -> Element:
            _sub(node, "status", "ERROR")
            _sub(node, "order_id", oid)
            node.append(self._error(ORDER_STATE_ERROR, message))
            return node

        if order is None:
            return refuse(f"Order {oid} not found")
        known = {d["order_detail_id"]: d for d in order["details"]}
        if not details or any(i not in known for i, _ in details):
            return refuse(f"Order {oid}: unknown or missing order_detail_id")
        self.order_updates.append((oid, action, details))
        now = _iso(self.now())
        if action == "accept_order":
            if order["state"] != "Created":
                return refuse(f"Order {oid} is {order['state']}: it cannot be accepted or refused")
            if any(a not in ("Accepted", "Refused") for _, a in details):
                return refuse("accept_order takes Accepted or Refused")
            for detail_id, answer in details:
                known[detail_id]["state"] = answer
                known[detail_id]["times"][
                    "accepted_at" if answer == "Accepted" else "refused_at"
                ] = now
            accepted = any(a == "Accepted" for _, a in details)
            order["state"] = "Accepted" if accepted else "Refused"
        elif action in ("confirm_to_send", "update"):
            allowed = ("Accepted", "ToShip") if action == "confirm_to_send" else ("Shipped",)
            if order["state"] not in allowed:
                return refuse(f"Order {oid} is {order['state']}: {action} not allowed")
            for detail_id, _ in details:
                tracking = next(
                    (
                        d
                        for d in request.findall("order_detail")
                        if _text(d, "order_detail_id") == detail_id
                    ),
                    None,
                )
                known[detail_id]["state"] = "Shipped"
                known[detail_id]["tracking_number"] = _text(tracking, "tracking_number")
                known[detail_id]["times"].setdefault("shipped_at", now)
            order["state"] = "Shipped"
        else:
            return refuse(f"unknown action {action}")
        order["updated"] = self.now()
        _sub(node, "status", "OK")
        _sub(node, "order_id", oid)
        _sub(node, "state", order["state"])
        for detail_id, _ in details:
            detail = _sub(node, "order_detail")
            _sub(detail, "order_detail_id", detail_id)
            _sub(detail, "status", "OK")
            _sub(detail, "state", known[detail_id]["state"])
        return node


def main() -> None:
    parser = argparse.ArgumentParser(description="Fake Fnac Darty seller API for demos")
    parser.add_argument("--port", type=int, default=8705)
    args = parser.parse_args()
    fake = FakeFnac(port=args.port)
    for sku in ("chair", "table", "lamp"):
        fake.add_offer(sku, 100)
    asyncio.run(serve_forever(fake, "fake Fnac Darty (fnac-partner / fnac-shop / fnac-key)"))


if __name__ == "__main__":
    main()
