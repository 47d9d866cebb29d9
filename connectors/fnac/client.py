"""HTTP transport to the Fnac Darty seller API: XML ``POST <base_url>/api.php/<service>``
with ``Content-Type: text/xml``.

Authentication: ``auth`` with ``partner_id``, ``shop_id`` and ``key`` answers a ``token``
and its ``validity``; every other request carries the three ids as attributes of its root.
The token is kept until a minute before its validity, then asked again. A request the API
answers with a response-level ``<error>`` (an expired or revoked token is answered that
way, inside HTTP 200) is sent once more with a fresh token, as the reference client does;
an error that survives the fresh token is the request's own.

Errors: 429 (or 503 with ``Retry-After``) → ``ThrottledError``; 5xx, network, unreadable
XML → ``UnavailableError``; ``auth`` refused → ``RejectedError`` (the credentials); a
service answering ``status`` other than OK/WARNING → :class:`FnacError` with Fnac's codes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from xml.etree.ElementTree import Element

import aiohttp

from connectors.fnac import dialog
from connectors.fnac.dialog import ApiError, DialogError, child, text
from connectors.fnac.limits import FnacLimits
from connectors.framework import redact
from connectors.framework.ratelimit import parse_retry_after
from connectors.framework.types import RejectedError, UnavailableError
from schemas.times import iso_to_ms, ms_to_iso

PAGE = 100  # orders per orders_query page (results_count)
UPDATE_LIMIT = 25  # orders per orders_update request
TOKEN_MARGIN_S = 60.0
OK_STATUSES = ("OK", "WARNING")
BATCH_RUNNING = ("ACTIVE", "RUNNING")  # batch_status: queued, being processed


class FnacError(Exception):
    """A service answered ``status="ERROR"``/``"FATAL"`` (its ``<error>`` codes joined)."""

    def __init__(self, service: str, status: str, problems: Sequence[ApiError]) -> None:
        joined = "; ".join(str(p) for p in problems) or "no error given"
        super().__init__(f"Fnac {service} {status}: {joined}")
        self.service = service
        self.status = status
        self.errors = tuple(problems)


@dataclass(frozen=True, slots=True)
class OfferQuantity:
    sku: str  # offer_reference type SellerSku
    quantity: int
    ean: str | None = None  # product_reference type Ean (lets Fnac create a missing offer)
    product_state: int = 11  # 11: new


@dataclass(frozen=True, slots=True)
class OfferReport:
    status: str  # OK | WARNING | ERROR | FATAL
    errors: tuple[ApiError, ...]


@dataclass(frozen=True, slots=True)
class BatchReport:
    batch_id: str
    status: str  # ACTIVE | RUNNING while processed; then OK | WARNING | ERROR | FATAL
    offers: dict[str, OfferReport]  # by offer_seller_id
    errors: tuple[ApiError, ...]

    @property
    def done(self) -> bool:
        """Processed: a final status with its per-offer report. A queued batch may answer
        ``status="OK"`` with only its ``batch_id`` (recorded by the reference client), which
        is not done yet."""
        if self.status in BATCH_RUNNING:
            return False
        return bool(self.offers) or self.status in ("ERROR", "FATAL")


@dataclass(frozen=True, slots=True)
class DetailAction:
    detail_id: str
    action: str  # Accepted | Refused | Shipped | Updated
    tracking_number: str | None = None
    tracking_company: str | None = None


class FnacClient:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        partner_id: str,
        shop_id: str,
        key: str,
        *,
        limits: FnacLimits | None = None,
        timeout_s: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._session = session
        self._url = f"{base_url.rstrip('/')}/api.php/"
        self._partner_id = partner_id
        self._shop_id = shop_id
        self._key = key
        redact.register(key)
        self.limits = limits or FnacLimits()
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._clock = clock
        self._token: str | None = None
        self._valid_until = 0.0
        self._auth_lock = asyncio.Lock()
        self.authentications = 0

    # ---- transport ---------------------------------------------------------------------
    async def _post(self, service: str, body: bytes) -> Element:
        await self.limits.before_request()
        try:
            async with self._session.post(
                self._url + service,
                data=body,
                headers={"Content-Type": "text/xml"},
                timeout=self._timeout,
            ) as response:
                self.limits.after_response(response.status, response.headers)
                raw = await response.read()
                if response.status >= 500:
                    raise UnavailableError(
                        f"Fnac {service} {response.status}",
                        parse_retry_after(response.headers.get("Retry-After")),
                    )
                if response.status in (401, 403):
                    self._token = None
                    raise RejectedError(f"Fnac {service} {response.status}: check the credentials")
                return dialog.parse(raw)
        except DialogError as exc:
            raise UnavailableError(f"Fnac {service}: {exc}") from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            # never {exc!r}: the request body holds the token
            raise UnavailableError(f"Fnac unreachable: {redact.describe(exc)}") from None

    async def token(self) -> str:
        """The current token, asked again a minute before its validity ends."""
        async with self._auth_lock:
            if self._token is None or self._clock() >= self._valid_until - TOKEN_MARGIN_S:
                await self._authenticate()
            assert self._token is not None
            return self._token

    async def _authenticate(self) -> None:
        root = dialog.element("auth")
        child(root, "partner_id", self._partner_id)
        child(root, "shop_id", self._shop_id)
        child(root, "key", self._key)
        answer = await self._post("auth", dialog.serialise(root))
        token = text(answer, "token")
        if answer.get("status") != "OK" or not token:
            problems = "; ".join(str(e) for e in dialog.errors(answer)) or "no token"
            raise RejectedError(
                f"Fnac auth refused ({problems}): check partner_id, shop_id and key"
            )
        redact.register(token)
        validity = text(answer, "validity")
        try:
            until = iso_to_ms(validity) / 1000 if validity else self._clock() + 3600
        except ValueError:
            until = self._clock() + 3600
        self._token, self._valid_until = token, until
        self.authentications += 1

    def forget_token(self) -> None:
        self._token = None

    async def call(self, service: str, build: Callable[[Element], None]) -> Element:
        """``service``'s answer to the request ``build`` fills; a response-level error is
        tried once more with a fresh token (an expired token is answered that way)."""
        for attempt in (1, 2):
            root = dialog.element(
                service,
                {
                    "partner_id": self._partner_id,
                    "shop_id": self._shop_id,
                    "token": await self.token(),
                },
            )
            build(root)
            answer = await self._post(service, dialog.serialise(root))
            if attempt == 1 and answer.get("status") not in OK_STATUSES and dialog.errors(answer):
                self.forget_token()
                continue
            return answer
        raise AssertionError("unreachable")

    @staticmethod
    def _checked(service: str, answer: Element) -> Element:
        status = str(answer.get("status") or "")
        if status not in OK_STATUSES:
            raise FnacError(service, status or "no status", dialog.errors(answer))
        return answer

    # ---- offers ------------------------------------------------------------------------
    async def offers_update(self, offers: Sequence[OfferQuantity]) -> str:
        """Queue the quantities; the batch id to follow with :meth:`batch_status`."""

        def build(root: Element) -> None:
            for o in offers:
                offer = child(root, "offer")
                if o.ean:
                    child(offer, "product_reference", o.ean, type="Ean")
                child(offer, "offer_reference", o.sku, type="SellerSku")
                child(offer, "product_state", o.product_state)
                child(offer, "quantity", o.quantity)

        answer = self._checked("offers_update", await self.call("offers_update", build))
        batch_id = text(answer, "batch_id")
        if not batch_id:
            raise UnavailableError("Fnac offers_update answered without a batch_id")
        return batch_id

    async def batch_status(self, batch_id: str) -> BatchReport:
        def build(root: Element) -> None:
            child(root, "batch_id", batch_id)

        answer = await self.call("batch_status", build)
        offers: dict[str, OfferReport] = {}
        for offer in answer.findall("offer"):
            sku = text(offer, "offer_seller_id") or text(offer, "offer_reference")
            offers[sku] = OfferReport(str(offer.get("status") or "OK"), tuple(dialog.errors(offer)))
        return BatchReport(
            batch_id=text(answer, "batch_id", batch_id),
            status=str(answer.get("status") or "RUNNING"),
            offers=offers,
            errors=tuple(dialog.errors(answer)),
        )

    async def offer_quantities(self, skus: Sequence[str]) -> dict[str, int]:
        """``offers_query`` filtered on each SKU (``offer_seller_id``): the quantities Fnac
        shows; SKUs it does not know are left out."""
        found: dict[str, int] = {}
        for sku in skus:

            def build(root: Element, sku: str = sku) -> None:
                child(root, "paging", 1)
                child(root, "offer_seller_id", sku)

            answer = self._checked("offers_query", await self.call("offers_query", build))
            for offer in answer.findall("offer"):
                if text(offer, "offer_seller_id") == sku:
                    found[sku] = int(text(offer, "quantity", "0") or 0)
        return found

    # ---- orders ------------------------------------------------------------------------
    async def orders_query(
        self,
        *,
        since_ms: int | None = None,
        until_ms: int | None = None,
        date_type: str = "Modified",
        states: Sequence[str] = (),
        order_ids: Sequence[str] = (),
    ) -> list[Element]:
        """Every ``<order>`` matching, all pages (``results_count`` per page)."""
        orders: list[Element] = []
        page = 1
        while True:

            def build(root: Element, page: int = page) -> None:
                root.set("results_count", str(PAGE))
                child(root, "paging", page)
                if since_ms is not None:
                    date = child(root, "date", type=date_type)
                    child(date, "min", ms_to_iso(since_ms))
                    if until_ms is not None:
                        child(date, "max", ms_to_iso(until_ms))
                if states:
                    wanted = child(root, "states")
                    for state in states:
                        child(wanted, "state", state)
                if order_ids:
                    ids = child(root, "orders_fnac_id")
                    for oid in order_ids:
                        child(ids, "order_fnac_id", oid)

            answer = self._checked("orders_query", await self.call("orders_query", build))
            orders.extend(answer.findall("order"))
            total = int(text(answer, "total_paging", "1") or 1)
            if page >= total:
                return orders
            page += 1

    async def order(self, order_id: str) -> Element | None:
        found = await self.orders_query(order_ids=[order_id])
        return next((o for o in found if text(o, "order_id") == order_id), None)

    async def orders_update(
        self, order_id: str, action: str, details: Sequence[DetailAction]
    ) -> Element:
        """One order's ``orders_update``; the ``<order>`` of the answer, raising
        :class:`FnacError` when Fnac refused the order's update."""

        def build(root: Element) -> None:
            order = child(root, "order", order_id=order_id, action=action)
            for d in details:
                detail = child(order, "order_detail")
                child(detail, "order_detail_id", d.detail_id)
                child(detail, "action", d.action)
                if d.tracking_number is not None:
                    child(detail, "tracking_number", d.tracking_number)
                if d.tracking_company is not None:
                    child(detail, "tracking_company", d.tracking_company)

        answer = self._checked("orders_update", await self.call("orders_update", build))
        for order in answer.findall("order"):
            if text(order, "order_id") != order_id:
                continue
            status = text(order, "status", "OK")
            problems = dialog.errors(order)
            for detail in order.findall("order_detail"):
                if text(detail, "status", "OK") not in OK_STATUSES:
                    problems.extend(dialog.errors(detail))
                    status = "ERROR"
            if status not in OK_STATUSES:
                raise FnacError("orders_update", status, problems)
            return order
        raise FnacError("orders_update", "ERROR", [ApiError("", "ERROR", "order not answered")])

    async def confirm_to_send(
        self,
        order_id: str,
        detail_ids: Sequence[str],
        *,
        tracking_number: str,
        tracking_company: str,
    ) -> Element:
        """Every listed detail shipped, with its tracking (``confirm_to_send``)."""
        return await self.orders_update(
            order_id,
            "confirm_to_send",
            [DetailAction(d, "Shipped", tracking_number, tracking_company) for d in detail_ids],
        )
