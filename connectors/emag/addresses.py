"""eMAG's shipping address of an order (``connectors.carriers.destinations``).

``order/read`` with the order's ``id`` (HTTP Basic, under the ``order/*`` window of 12
requests/s) → the order's ``customer`` block, as the eMAG Marketplace API v4 sends it:
``shipping_contact`` (the recipient; the customer's ``name`` when empty), ``company``
(a legal entity's), ``shipping_street``, ``shipping_suburb`` (the county, or Bucharest's
sector), ``shipping_city``, ``shipping_postal_code`` and ``shipping_country`` (ISO 3166-1
alpha-2; an alpha-3 code is turned into alpha-2 for the carriers). An id that is not an
eMAG order number, an order eMAG does not list, or one without a street nor a postal code
is ``None``; an ``isError`` answer is a ``RejectedError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors.carriers.destinations import address_of
from connectors.carriers.model import Address
from connectors.emag.client import EmagClient, EmagError
from connectors.framework.types import RejectedError

ALPHA2 = {"ROU": "RO", "BGR": "BG", "HUN": "HU"}
"""The platforms' countries in alpha-3, for an answer carrying one."""


def emag_address(customer: Mapping[str, Any]) -> Address:
    country = str(customer.get("shipping_country") or "").strip().upper()
    city = str(customer.get("shipping_city") or "").strip()
    suburb = str(customer.get("shipping_suburb") or "").strip()
    return address_of(
        country=ALPHA2.get(country, country),
        postal_code=customer.get("shipping_postal_code"),
        city=city,
        lines=[
            customer.get("company") if customer.get("legal_entity") else None,
            customer.get("shipping_street"),
            suburb if suburb.casefold() != city.casefold() else None,
        ],
        name=customer.get("shipping_contact") or customer.get("name"),
    )


class EmagAddresses:
    def __init__(self, client: EmagClient) -> None:
        self._client = client

    async def shipping_address(self, channel_order_id: str) -> Address | None:
        if not channel_order_id.isdigit():
            return None
        try:
            order = await self._client.order(int(channel_order_id))
        except EmagError:
            # eMAG's messages are not repeated: they may quote the order's fields
            raise RejectedError("eMAG order/read answered isError") from None
        customer = (order or {}).get("customer")
        if not isinstance(customer, Mapping) or not (
            customer.get("shipping_street") or customer.get("shipping_postal_code")
        ):
            return None
        return emag_address(customer)
