"""Fnac Darty's shipping address of an order (``connectors.carriers.destinations``).

``orders_query`` with ``orders_fnac_id`` (the shop's token, under the channel's bucket) →
``<shipping_address>``: ``firstname``, ``lastname``, ``company``, ``address1`` to
``address3``, ``zipcode``, ``city`` and ``country`` (ISO 3166-1 alpha-3, e.g. ``FRA``;
turned into alpha-2 for the carriers), as Fnac's recorded answers show them. An order Fnac
does not list, or one without a street nor zip code, is ``None``; a refused query
(``status="ERROR"``) is a ``RejectedError``.
"""

from __future__ import annotations

from xml.etree.ElementTree import Element

from connectors.carriers.destinations import address_of
from connectors.carriers.model import Address
from connectors.fnac.client import FnacClient, FnacError
from connectors.fnac.dialog import text
from connectors.fnac.inbound import _ALPHA2 as ALPHA2
from connectors.framework.types import RejectedError


def fnac_address(node: Element) -> Address:
    country = text(node, "country").strip().upper()
    return address_of(
        country=ALPHA2.get(country, country),
        postal_code=text(node, "zipcode"),
        city=text(node, "city"),
        lines=[text(node, k) for k in ("company", "address1", "address2", "address3")],
        name=" ".join(text(node, k).strip() for k in ("firstname", "lastname")),
    )


class FnacAddresses:
    def __init__(self, client: FnacClient) -> None:
        self._client = client

    async def shipping_address(self, channel_order_id: str) -> Address | None:
        try:
            order = await self._client.order(channel_order_id)
        except FnacError as exc:
            codes = ", ".join(e.code for e in exc.errors) or exc.status
            raise RejectedError(f"Fnac orders_query {codes}") from None
        node = None if order is None else order.find("shipping_address")
        if node is None or not (text(node, "address1") or text(node, "zipcode")):
            return None
        return fnac_address(node)
