"""Mirakl's shipping confirmation (``connectors.framework.shipments``): OR23 then OR24.

OR23 gives the order its carrier and tracking number (it may be sent again: the last one
is kept), OR24 marks it shipped (``SHIPPING`` → ``SHIPPED``). An OR24 refused because the
order is past ``SHIPPING`` sends us to the order (OR11 by id, only then: OR11 has the
tightest call frequency): already ``SHIPPED`` or later is ``already``; anything else
(refused, cancelled) is the marketplace's refusal, raised for the dead letter.
"""

from __future__ import annotations

from connectors.framework.shipments import ALREADY, SHIPPED, ShipNotice
from connectors.framework.types import RejectedError
from connectors.mirakl.client import MiraklClient, MiraklError
from connectors.mirakl.inbound import SHIPPED as SHIPPED_STATES
from connectors.mirakl.mapping import MiraklMapping


class MiraklShipper:
    def __init__(self, client: MiraklClient, mapping: MiraklMapping) -> None:
        self._client = client
        self.channel = mapping.channel
        self.account = mapping.shop

    async def confirm_shipment(self, notice: ShipNotice) -> str:
        oid = notice.channel_order_id
        if notice.tracking_number:
            await self._client.update_tracking(
                oid,
                tracking_number=notice.tracking_number,
                carrier_name=notice.carrier or "unknown",
            )
        try:
            await self._client.ship(oid)
            return SHIPPED
        except MiraklError as exc:
            if exc.status != 400:
                raise
        current = await self._client.order(oid)
        state = str((current or {}).get("order_state") or "")
        if state in SHIPPED_STATES:
            return ALREADY
        raise RejectedError(f"Mirakl order {oid} is {state or 'unknown'}: cannot be shipped")
