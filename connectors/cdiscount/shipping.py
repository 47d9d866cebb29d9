"""Cdiscount's shipping confirmation (``connectors.framework.shipments``): Octopia
``POST /orders/{orderId}/shipments``.

The order is read first (``GET /orders/{id}``), which makes the call idempotent: an order
already ``Shipped`` or ``Delivered``, or holding a shipment with this tracking number (a
part of it shipped before a redelivery), is ``already``; one not accepted, refused or
cancelled cannot be shipped (raised, for the dead letter). Otherwise one shipment is posted
with the carrier's name as Octopia lists it, the tracking number, the carrier's public
tracking page and the lines the parcel holds (Octopia's ``lineId``, the units shipped); a
shipment without lines ships every line of the order. A shipment Octopia refuses (4xx) sends
us back to the order: shipped meanwhile is ``already``, anything else is raised.
"""

from __future__ import annotations

from typing import Any

from connectors.cdiscount.client import CdiscountClient, OctopiaError
from connectors.cdiscount.mapping import CdiscountMapping
from connectors.framework.shipments import ALREADY, SHIPPED, ShipNotice
from connectors.framework.types import RejectedError

SHIPPABLE = frozenset({"Accepted", "InPreparation"})
DONE = frozenset({"Shipped", "Delivered"})

CARRIERS = {
    "chronopost": "Chronopost",
    "colissimo": "Colissimo",
    "dhl": "DHL",
    "ups": "UPS",
}
"""stockflow's carrier names → the names Octopia lists (others are sent as they are)."""

TRACKING_URLS = {
    "chronopost": "https://www.chronopost.fr/tracking-no-cms/suivi-page?listeNumerosLT={}",
    "colissimo": "https://www.laposte.fr/outils/suivre-vos-envois?code={}",
    "dhl": "https://www.dhl.com/fr-fr/home/tracking.html?tracking-id={}",
    "ups": "https://www.ups.com/track?tracknum={}",
}
"""The carriers' public tracking pages (no personal data: the number only)."""


def tracking_url(carrier: str, number: str) -> str | None:
    template = TRACKING_URLS.get(carrier.lower())
    return template.format(number) if template and number else None


class CdiscountShipper:
    def __init__(self, client: CdiscountClient, mapping: CdiscountMapping) -> None:
        self._client = client
        self.channel = mapping.channel
        self.account = mapping.seller_id

    async def confirm_shipment(self, notice: ShipNotice) -> str:
        oid = notice.channel_order_id
        current = await self._read(oid)
        if self._done(current, notice):
            return ALREADY
        status = str(current.get("status") or "")
        if status not in SHIPPABLE:
            raise RejectedError(
                f"Cdiscount order {oid} is {status or 'unknown'}: cannot be shipped"
            )
        lines = [(line.line_id, line.qty) for line in notice.lines] or [
            (str(line["lineId"]), int(line["quantity"])) for line in current.get("lines") or []
        ]
        try:
            await self._client.ship(
                oid,
                carrier=CARRIERS.get(notice.carrier.lower(), notice.carrier or "Autre"),
                tracking_number=notice.tracking_number,
                tracking_url=tracking_url(notice.carrier, notice.tracking_number),
                lines=lines,
            )
            return SHIPPED
        except OctopiaError as exc:
            if self._done(await self._read(oid), notice):
                return ALREADY
            raise RejectedError(f"Octopia refused the shipment of order {oid}: {exc}") from None

    async def _read(self, oid: str) -> dict[str, Any]:
        try:
            return await self._client.order(oid)
        except OctopiaError as exc:
            if exc.status == 404:
                raise RejectedError(f"Cdiscount does not know order {oid}") from None
            raise

    @staticmethod
    def _done(order: dict[str, Any], notice: ShipNotice) -> bool:
        if str(order.get("status") or "") in DONE:
            return True
        return bool(notice.tracking_number) and any(
            isinstance(s, dict) and s.get("trackingNumber") == notice.tracking_number
            for s in order.get("shipments") or []
        )
