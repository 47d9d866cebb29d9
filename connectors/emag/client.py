"""HTTP transport to one eMAG Marketplace platform (``https://marketplace-api.emag.ro/api-3``,
``.bg``, ``.hu``): ``POST {base}/{resource}/{action}`` with a JSON body, HTTP Basic auth.

Every answer is the envelope ``{isError, messages, results}`` and is checked:

- ``isError: false`` → ``results``;
- ``isError: true`` → :class:`EmagError` with eMAG's messages (a save may still have
  stored part of it: the caller reads back before deciding);
- anything without ``isError: false`` (no envelope, HTML from a proxy) → alert (log and
  the ``stockflow_connector_emag_envelope_total`` metric) and :class:`UnavailableError`.

429 is :class:`ThrottledError` (through :class:`EmagLimits`), 5xx and network failures
:class:`UnavailableError`, 401/403 :class:`RejectedError` (the API user, its rights or the
IP whitelist).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import orjson
from prometheus_client import Counter

from connectors.emag.limits import MAX_ENTITIES, MAX_INPUT_VARS, PAGE, EmagLimits, input_vars
from connectors.framework import redact
from connectors.framework.ratelimit import parse_retry_after
from connectors.framework.types import RejectedError, UnavailableError

log = logging.getLogger(__name__)

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

ENVELOPES = Counter(
    "stockflow_connector_emag_envelope_total",
    "eMAG answers by envelope: ok (isError false), error (isError true), malformed "
    "(no isError:false nor isError:true: alerted).",
    ["channel", "envelope"],
)


class EmagError(Exception):
    """An answer with ``isError: true``; ``messages`` as eMAG wrote them."""

    def __init__(self, path: str, messages: Sequence[str], results: Any = None) -> None:
        super().__init__(f"eMAG {path}: {'; '.join(messages) or 'isError without a message'}")
        self.messages = list(messages)
        self.results = results


def messages_of(body: Mapping[str, Any]) -> list[str]:
    """eMAG's messages as text (strings, or objects with a message or text)."""
    found: list[str] = []
    for m in body.get("messages") or []:
        if isinstance(m, str):
            found.append(m)
        elif isinstance(m, Mapping):
            found.append(str(m.get("message") or m.get("text") or orjson.dumps(m).decode()))
        else:
            found.append(str(m))
    return found


def emag_time(ms: int, timezone: str) -> str:
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC).astimezone(ZoneInfo(timezone))
    return moment.strftime(TIME_FORMAT)


def emag_ms(value: object, timezone: str) -> int:
    moment = datetime.strptime(str(value), TIME_FORMAT).replace(tzinfo=ZoneInfo(timezone))
    return int(moment.timestamp() * 1000)


class EmagClient:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        username: str,
        password: str,
        *,
        channel: str = "emag",
        limits: EmagLimits | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        self._session = session
        self._base = base_url.rstrip("/")
        self.channel = channel
        self._headers = {
            "Authorization": aiohttp.encode_basic_auth(username, password),
            "Content-Type": "application/json",
        }
        redact.register_basic_auth(username, password)
        redact.register(password)
        self.limits = limits or EmagLimits(channel)
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def call(self, path: str, body: Any = None) -> Any:
        """``POST {base}/{path}``; the envelope's ``results`` (see the module docstring)."""
        if input_vars(body) > MAX_INPUT_VARS:
            raise ValueError(f"{path}: over {MAX_INPUT_VARS} input variables; split the request")
        cell = await self.limits.before_request(path)
        try:
            async with self._session.post(
                f"{self._base}/{path}",
                data=orjson.dumps(body if body is not None else {}),
                headers=self._headers,
                timeout=self._timeout,
            ) as response:
                self.limits.after_response(path, cell, response.status, response.headers)
                text = await response.text()
                status = response.status
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
        except (aiohttp.ClientError, TimeoutError) as exc:
            # never {exc!r}: aiohttp's response errors print the request headers (the auth)
            raise UnavailableError(f"eMAG unreachable: {redact.describe(exc)}") from None
        if status >= 500:
            raise UnavailableError(f"eMAG {status} on {path}", retry_after)
        try:
            envelope = orjson.loads(text) if text.strip() else None
        except orjson.JSONDecodeError:
            envelope = None
        if status in (401, 403):
            said = messages_of(envelope) if isinstance(envelope, dict) else []
            raise RejectedError(
                f"eMAG {status} on {path}: {'; '.join(said) or 'refused'} (check the API "
                "user, its API rights and the IP whitelist of the seller account)"
            )
        if not isinstance(envelope, dict) or envelope.get("isError") not in (True, False):
            ENVELOPES.labels(self.channel, "malformed").inc()
            log.error(
                "eMAG %s answered %d without isError:false (alert): %s",
                path,
                status,
                # an order answer carries the customer's name and address: not shown
                "body of an order answer not shown"
                if path.startswith("order/")
                else redact.scrub(text[:200]),
            )
            raise UnavailableError(f"eMAG {path}: answer {status} without the isError envelope")
        if envelope["isError"] is True or status >= 400:
            ENVELOPES.labels(self.channel, "error").inc()
            log.warning(
                "eMAG %s answered isError (%d): %s",
                path,
                status,
                redact.scrub("; ".join(messages_of(envelope)))[:500],
            )
            raise EmagError(path, messages_of(envelope), envelope.get("results"))
        ENVELOPES.labels(self.channel, "ok").inc()
        return envelope.get("results")

    # ---- orders -------------------------------------------------------------------
    async def orders(self, **filters: Any) -> list[dict[str, Any]]:
        """Every order of ``order/read`` matching ``filters`` (``id``, ``status``,
        ``modifiedAfter``...), all pages of ``itemsPerPage`` 100."""
        found: list[dict[str, Any]] = []
        page = 1
        while True:
            results = await self.call(
                "order/read", {**filters, "currentPage": page, "itemsPerPage": PAGE}
            )
            batch = [o for o in results or [] if isinstance(o, dict)]
            found.extend(batch)
            if len(batch) < PAGE:
                return found
            page += 1

    async def order(self, order_id: int) -> dict[str, Any] | None:
        found = await self.orders(id=order_id)
        return found[0] if found else None

    async def acknowledge(self, order_id: int) -> None:
        """``order/acknowledge/{id}``: new (1) → in progress (2)."""
        await self.call(f"order/acknowledge/{order_id}")

    async def save_order(self, order: Mapping[str, Any]) -> None:
        """``order/save`` of one order, sent with every field it was read with."""
        await self.call("order/save", [dict(order)])

    async def save_awb(
        self, order_id: int, *, awb_number: str, courier_name: str, parcels: int = 1
    ) -> Any:
        """``awb/save`` of an AWB the seller's own carrier issued: the order, its number and
        the courier, the parcels (no envelope; ``cod`` 0: stockflow's labels collect no cash on
        delivery). Sender and receiver are left out: eMAG has them from the seller account
        and the order, and stockflow sends no address."""
        return await self.call(
            "awb/save",
            {
                "order_id": order_id,
                "awb_number": awb_number,
                "courier_name": courier_name,
                "envelope_number": 0,
                "parcel_number": max(1, parcels),
                "cod": 0,
            },
        )

    # ---- offers -------------------------------------------------------------------
    async def save_stock(self, stock: Mapping[int, int], warehouse_id: int) -> None:
        """``offer/save`` (the light offer save) of ``{offer id: quantity}``, ≤ 50 offers."""
        if len(stock) > MAX_ENTITIES:
            raise ValueError(f"offer/save takes at most {MAX_ENTITIES} offers per request")
        await self.call(
            "offer/save",
            [
                {"id": offer_id, "stock": [{"warehouse_id": warehouse_id, "value": qty}]}
                for offer_id, qty in stock.items()
            ],
        )

    async def offer_stock(self, offer_ids: Sequence[int], warehouse_id: int) -> dict[int, int]:
        """The stock eMAG holds per offer (``product_offer/read`` by id, in pages of 100):
        the ``value`` of ``warehouse_id`` in ``stock``; an offer eMAG does not know is left
        out."""
        found: dict[int, int] = {}
        for start in range(0, len(offer_ids), PAGE):
            ids = list(offer_ids[start : start + PAGE])
            results = await self.call(
                "product_offer/read", {"id": ids, "currentPage": 1, "itemsPerPage": PAGE}
            )
            for offer in results or []:
                if not isinstance(offer, dict) or "id" not in offer:
                    continue
                for row in offer.get("stock") or []:
                    if int(row.get("warehouse_id") or 0) == warehouse_id:
                        found[int(offer["id"])] = int(row.get("value") or 0)
        return found
