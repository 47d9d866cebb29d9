"""Amazon's shipping address of an order (``connectors.carriers.destinations``).

The buyer's name and street are restricted data: Amazon gives them only to a request that
carries a Restricted Data Token. So each read is two calls, each under its own bucket:
``createRestrictedDataToken`` (``POST /tokens/2021-03-01/restrictedDataToken``) for the one
resource ``GET /orders/v0/orders/{id}/address``, then ``getOrderAddress`` with that token as
``x-amz-access-token``. The token is not kept (one per label, never logged); the address
(``Name``, ``CompanyName``, ``AddressLine1..3``, ``City``, ``PostalCode``, ``CountryCode``)
lives in memory for the label only. An unknown order or one without an address is ``None``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp

from connectors.amazon.auth import LwaTokens
from connectors.amazon.client import AmazonClient
from connectors.amazon.limits import AmazonLimits
from connectors.amazon.mapping import AmazonMapping
from connectors.carriers.destinations import address_of
from connectors.carriers.model import Address


def amazon_address(raw: Mapping[str, Any]) -> Address:
    return address_of(
        country=raw.get("CountryCode"),
        postal_code=raw.get("PostalCode"),
        city=raw.get("City"),
        lines=[
            raw.get("CompanyName"),
            raw.get("AddressLine1"),
            raw.get("AddressLine2"),
            raw.get("AddressLine3"),
        ],
        name=raw.get("Name"),
    )


class AmazonAddresses:
    def __init__(self, client: AmazonClient) -> None:
        self._client = client

    async def shipping_address(self, channel_order_id: str) -> Address | None:
        if not channel_order_id or "/" in channel_order_id:
            return None
        raw = await self._client.order_address(channel_order_id)
        return None if raw is None else amazon_address(raw)


def build_amazon_addresses(
    session: aiohttp.ClientSession,
    mapping: AmazonMapping,
    *,
    base_url: str,
    client_id: str,
    client_secret: str,
    refresh_token: str,
    limits: Mapping[str, float],
) -> AmazonAddresses:
    """The reader of one configured Amazon channel, with its own Login with Amazon tokens."""
    tokens = LwaTokens(
        session,
        mapping.token_url,
        client_id=client_id,
        client_secret=client_secret,
        refresh_token=refresh_token,
    )
    return AmazonAddresses(
        AmazonClient(
            session,
            base_url,
            tokens,
            seller_id=mapping.seller_id,
            marketplace_id=mapping.marketplace_id,
            limits=AmazonLimits(mapping.channel, **dict(limits)),
        )
    )
