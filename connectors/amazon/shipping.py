"""Amazon's shipping confirmation (``connectors.framework.shipments``): Orders API v0
``confirmShipment`` of one package per shipment made here.

``POST /orders/v0/orders/{orderId}/shipmentConfirmation`` with ``marketplaceId`` and a
``packageDetail``: ``packageReferenceId`` (positive digits, unique within the order: made of
our shipment id, so a shipment confirmed again names the same package), ``carrierCode``
(Amazon's code for the carriers it knows; ``Other`` with ``carrierName`` for the rest),
``trackingNumber``, ``shipDate`` and ``orderItems`` (``orderItemId``: the line id the order
book keeps, and the units in the parcel). Amazon answers 204 and moves the order to
``Shipped`` (``PartiallyShipped`` while units remain).

Idempotent: a confirmation Amazon refuses with a 4xx sends us to the order (``getOrder``):
already ``Shipped`` (or ``InvoiceUnconfirmed``) is ``already``; anything else (cancelled, an
item Amazon does not know) is Amazon's refusal, raised for the dead letter with its code.
Throttling (429, the operation's own bucket) and outages are raised for the retries.
"""

from __future__ import annotations

import hashlib
from typing import Any

from connectors.amazon.client import AmazonClient, AmazonError
from connectors.amazon.mapping import AmazonMapping
from connectors.framework.shipments import ALREADY, SHIPPED, ShipNotice
from connectors.framework.types import RejectedError
from schemas.times import ms_to_iso, now_ms

DONE = frozenset({"Shipped", "InvoiceUnconfirmed"})
CARRIER_CODES = {  # our carrier name -> Amazon's CarrierCode
    "ups": "UPS",
    "dhl": "DHL",
    "chronopost": "Chronopost",
    "colissimo": "Colissimo",
    "dpd": "DPD",
    "gls": "GLS",
    "fedex": "FedEx",
}
OTHER = "Other"


def package_reference(shipment_id: str) -> str:
    """A positive number of up to 10 digits made of the shipment id (same id, same number)."""
    return str(int(hashlib.sha256(shipment_id.encode()).hexdigest()[:8], 16) + 1)


def package_detail(notice: ShipNotice, shipped_at_ms: int) -> dict[str, Any]:
    """The ``packageDetail`` of ``notice`` (see the module docstring)."""
    code = CARRIER_CODES.get(notice.carrier.strip().lower(), OTHER)
    package: dict[str, Any] = {
        "packageReferenceId": package_reference(notice.shipment_id),
        "carrierCode": code,
        "trackingNumber": notice.tracking_number,
        "shipDate": ms_to_iso(shipped_at_ms),
        "orderItems": [{"orderItemId": ln.line_id, "quantity": ln.qty} for ln in notice.lines],
    }
    if code == OTHER:
        package["carrierName"] = notice.carrier or "unknown"
    if notice.service:
        package["shippingMethod"] = notice.service
    return package


class AmazonShipper:
    def __init__(self, client: AmazonClient, mapping: AmazonMapping) -> None:
        self._client = client
        self.channel = mapping.channel
        self.account = mapping.seller_id

    async def confirm_shipment(self, notice: ShipNotice) -> str:
        oid = notice.channel_order_id
        try:
            await self._client.confirm_shipment(oid, package_detail(notice, now_ms()))
            return SHIPPED
        except AmazonError as exc:
            refusal = exc
        current = await self._client.order(oid)
        if current is None:
            raise RejectedError(f"Amazon does not know order {oid}")
        status = str(current.get("OrderStatus") or "")
        if status in DONE:
            return ALREADY
        raise RejectedError(
            f"Amazon order {oid} is {status or 'unknown'}: shipment refused "
            f"({refusal.code}: {refusal.message[:200]})"
        )
