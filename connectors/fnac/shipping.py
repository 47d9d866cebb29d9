"""Fnac Darty's shipping confirmation (``connectors.framework.shipments``):
``orders_update`` ``confirm_to_send`` with the tracking number and carrier.

The order is read first (``orders_query`` on its id): it gives every detail id (Fnac ships
the order's details together) and makes the call idempotent: an order already ``Shipped``
(or later) is ``already``; one refused or cancelled cannot be shipped (raised, for the dead
letter).
"""

from __future__ import annotations

from connectors.fnac.client import FnacClient
from connectors.fnac.dialog import text
from connectors.fnac.inbound import CANCELLED, SHIPPED
from connectors.fnac.mapping import FnacMapping
from connectors.framework.shipments import ALREADY, ShipNotice
from connectors.framework.shipments import SHIPPED as CONFIRMED
from connectors.framework.types import RejectedError


class FnacShipper:
    def __init__(self, client: FnacClient, mapping: FnacMapping) -> None:
        self._client = client
        self.channel = mapping.channel
        self.account = mapping.shop

    async def confirm_shipment(self, notice: ShipNotice) -> str:
        oid = notice.channel_order_id
        current = await self._client.order(oid)
        if current is None:
            raise RejectedError(f"Fnac does not know order {oid}")
        state = text(current, "state")
        if state in SHIPPED:
            return ALREADY
        if state in CANCELLED:
            raise RejectedError(f"Fnac order {oid} is {state}: cannot be shipped")
        details = [text(d, "order_detail_id") for d in current.findall("order_detail")]
        await self._client.confirm_to_send(
            oid,
            [d for d in details if d],
            tracking_number=notice.tracking_number,
            tracking_company=notice.carrier,
        )
        return CONFIRMED
