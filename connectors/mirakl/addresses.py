"""A Mirakl operator's shipping address of an order (``connectors.carriers.destinations``).

OR11 ``GET /api/orders?order_ids={id}`` (the shop's key, under the operator's bucket) →
``customer.shipping_address``: ``firstname``, ``lastname``, ``company``, ``company_2``,
``street_1``, ``street_2``, ``zip_code``, ``city`` and ``country_iso_code`` (ISO 3166-1
alpha-3, as Mirakl formats addresses; turned into alpha-2 for the carriers). Mirakl leaves
the customer's addresses null before shipping (or before acceptance, by the operator's
setting): an order still ``STAGING``, ``WAITING_ACCEPTANCE`` or waiting for its debit
without an address is ``UnavailableError`` (the label waits, never leaves without it); an
order the operator does not list, or a later one without an address, is ``None``.
"""

from __future__ import annotations

from typing import Any

from connectors.carriers.destinations import address_of
from connectors.carriers.model import Address
from connectors.framework.types import RejectedError, UnavailableError
from connectors.mirakl.client import MiraklClient, MiraklError
from connectors.mirakl.inbound import _ALPHA2 as ALPHA2

BEFORE_SHIPPING = frozenset(
    {"STAGING", "WAITING_ACCEPTANCE", "WAITING_DEBIT", "WAITING_DEBIT_PAYMENT"}
)


def mirakl_address(raw: dict[str, Any]) -> Address:
    country = str(raw.get("country_iso_code") or "").strip().upper()
    return address_of(
        country=ALPHA2.get(country, country),
        postal_code=raw.get("zip_code"),
        city=raw.get("city"),
        lines=[raw.get(k) for k in ("company", "company_2", "street_1", "street_2")],
        name=" ".join(str(raw.get(k) or "").strip() for k in ("firstname", "lastname")),
    )


class MiraklAddresses:
    def __init__(self, client: MiraklClient) -> None:
        self._client = client

    async def shipping_address(self, channel_order_id: str) -> Address | None:
        try:
            order = await self._client.order(channel_order_id)
        except MiraklError as exc:
            raise RejectedError(f"Mirakl {exc.status} {exc.code}".strip()) from None
        if order is None:
            return None
        raw = (order.get("customer") or {}).get("shipping_address")
        if isinstance(raw, dict) and (raw.get("street_1") or raw.get("zip_code")):
            return mirakl_address(raw)
        state = str(order.get("order_state") or "")
        if state in BEFORE_SHIPPING:
            raise UnavailableError(
                f"Mirakl order {channel_order_id} is {state}: its address comes at SHIPPING"
            )
        return None
