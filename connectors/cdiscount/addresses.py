"""Cdiscount's shipping address of an order (``connectors.carriers.destinations``).

Octopia Seller API v2 ``GET /orders/{orderId}`` (``Authorization: Bearer`` and ``SellerId``,
under the channel's limits) → the order's ``shippingAddress``: the recipient's name, the
company, apartment, building, street and place lines, zip code, city and country code
(ISO 3166-1 alpha-2; an alpha-3 code is turned into alpha-2 for the carriers). The field
names are this project's reading, kept in ``connectors.cdiscount.client`` and the fake.
An order Octopia does not know (404), or a later one without an address, is ``None``; an
order still ``Processing`` or ``WaitingAcceptance`` without one is ``UnavailableError`` (the
label waits, never leaves without it); another refusal (4xx) is a ``RejectedError``.
"""

from __future__ import annotations

from connectors.carriers.destinations import address_of
from connectors.carriers.model import Address
from connectors.cdiscount.client import CdiscountClient, OctopiaError, shipping_address_fields
from connectors.framework.types import RejectedError, UnavailableError

BEFORE_ACCEPTANCE = frozenset({"Processing", "WaitingAcceptance"})

ALPHA2 = {
    "FRA": "FR", "BEL": "BE", "LUX": "LU", "MCO": "MC", "DEU": "DE", "ESP": "ES",
    "ITA": "IT", "PRT": "PT", "NLD": "NL", "CHE": "CH",
}  # fmt: skip
"""Alpha-3 codes of the countries Cdiscount's sellers ship to, for an answer carrying one."""


class CdiscountAddresses:
    def __init__(self, client: CdiscountClient) -> None:
        self._client = client

    async def shipping_address(self, channel_order_id: str) -> Address | None:
        if not channel_order_id or "/" in channel_order_id:
            return None
        try:
            order = await self._client.order_or_none(channel_order_id)
        except OctopiaError as exc:
            # Octopia's message names the order and its status, never the customer
            raise RejectedError(f"Octopia {exc.status} on the order read") from None
        if order is None:
            return None
        fields = shipping_address_fields(order)
        if fields is not None:
            country = str(fields.pop("country") or "").strip().upper()
            return address_of(country=ALPHA2.get(country, country), **fields)
        status = str(order.get("status") or "")
        if status in BEFORE_ACCEPTANCE:
            raise UnavailableError(
                f"Cdiscount order {channel_order_id} is {status}: no shipping address yet"
            )
        return None
