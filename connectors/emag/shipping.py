"""eMAG's shipping confirmation (``connectors.framework.shipments``): the AWB, then the order
finalized.

The order is read first (``order/read`` by id): finalized (4) or returned (5) is
``already``; canceled (0) or still new (1: never acknowledged) cannot be shipped (raised,
for the dead letter). Otherwise the AWB the seller's own carrier issued is declared with
``awb/save`` (order id, ``awb_number`` = the tracking number, ``courier_name``, the
parcels), unless the order already lists it (``awbs``: a redelivery after the AWB was
saved), then the order is saved back whole (``order/save`` takes every field as read) with
status 4, finalized. eMAG refuses the finalization of an order without an AWB: the AWB goes
first.
"""

from __future__ import annotations

from typing import Any

from connectors.emag.acceptance import OrderGoneError
from connectors.emag.client import EmagClient
from connectors.emag.inbound import CANCELED, FINALIZED, NEW, RETURNED
from connectors.emag.mapping import EmagMapping
from connectors.framework.shipments import ALREADY, SHIPPED, ShipNotice
from connectors.framework.types import RejectedError

COURIERS = {"chronopost": "Chronopost", "dhl": "DHL", "ups": "UPS"}
"""stockflow's carrier names → the courier names written on eMAG (others as they are)."""


def _awb_numbers(order: dict[str, Any]) -> set[str]:
    found = set()
    for awb in order.get("awbs") or []:
        if isinstance(awb, dict) and awb.get("awb_number"):
            found.add(str(awb["awb_number"]))
    return found


class EmagShipper:
    def __init__(self, client: EmagClient, mapping: EmagMapping) -> None:
        self._client = client
        self.channel = mapping.channel
        self.account = mapping.account

    async def confirm_shipment(self, notice: ShipNotice) -> str:
        oid = notice.channel_order_id
        try:
            order_id = int(oid)
        except ValueError:
            raise RejectedError(f"eMAG order ids are numbers, not {oid!r}") from None
        order = await self._client.order(order_id)
        if order is None:
            raise OrderGoneError(f"eMAG knows no order {oid} on this account")
        status = int(str(order.get("status")))
        if status in (FINALIZED, RETURNED):
            return ALREADY
        if status in (CANCELED, NEW):
            state = "canceled" if status == CANCELED else "new (not acknowledged)"
            raise RejectedError(f"eMAG order {oid} is {state}: cannot be finalized")
        if not notice.tracking_number:
            raise RejectedError(f"eMAG order {oid}: a shipment without a tracking number")
        if notice.tracking_number not in _awb_numbers(order):
            await self._client.save_awb(
                order_id,
                awb_number=notice.tracking_number,
                courier_name=COURIERS.get(notice.carrier.lower(), notice.carrier or "other"),
            )
        await self._client.save_order({**order, "status": FINALIZED})
        return SHIPPED
