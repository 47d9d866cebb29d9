"""Shipping addresses read from the channel, at label time, for the carrier only.

stockflow never stores a customer's name or street: the shipping service asks the order's
channel for them when it buys the label (:class:`ChannelAddresses` is its address book).
The address lives in memory for that call: it is never logged, never written to Kafka,
ClickHouse, a dead letter or a file, and not cached.

Each channel kind that can tell the address has an :class:`AddressReader` in its own folder
(``connectors.shopify.addresses``, ``connectors.woocommerce.addresses``,
``connectors.mirakl.addresses``, ``connectors.fnac.addresses``, ``connectors.amazon.addresses``,
``connectors.cdiscount.addresses``, ``connectors.emag.addresses``); the order's id on
the channel is the part after ``<channel>:`` of stockflow's order id. A channel without a
reader gets ``None`` (the carrier sees country and postal code only), said once in the log.
A channel that cannot answer (5xx, timeout, 429, a refused read) raises
:class:`AddressUnavailableError`: the label waits for a later try rather than going without the
address.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Protocol

from connectors.carriers.model import Address
from connectors.framework.types import RejectedError, ThrottledError, UnavailableError

log = logging.getLogger("stockflow.addresses")


class AddressUnavailableError(Exception):
    """The channel could not tell the address now (its text holds no personal data)."""


class AddressReader(Protocol):
    async def shipping_address(self, channel_order_id: str) -> Address | None:
        """The order's shipping address; ``None`` when the channel has no such order or it
        has none. Raises ``UnavailableError``/``ThrottledError`` when the channel fails,
        ``RejectedError`` when it refuses the read (credentials, scopes)."""
        ...


def _text(value: object) -> str:
    return str(value).strip() if value is not None else ""


def address_of(
    *, country: object, postal_code: object, city: object, lines: list[object], name: object
) -> Address:
    """An :class:`Address` of the channel's fields (empty lines dropped)."""
    return Address(
        country=_text(country).upper(),
        postal_code=_text(postal_code),
        city=_text(city),
        lines=tuple(t for t in (_text(v) for v in lines) if t),
        name=_text(name),
    )


class ChannelAddresses:
    """The address book of the shipping service: ``await book(order)`` → the order's
    address from its channel (``order.order_id`` is ``<channel>:<id on the channel>``)."""

    def __init__(self, readers: Mapping[str, AddressReader]) -> None:
        self.readers = dict(readers)
        self._told: set[str] = set()  # channels without a reader, logged once each

    async def __call__(self, order: object) -> Address | None:
        order_id = str(getattr(order, "order_id", ""))
        channel, sep, channel_order_id = order_id.partition(":")
        if not sep or not channel_order_id:
            return None
        reader = self.readers.get(channel)
        if reader is None:
            if channel not in self._told:
                self._told.add(channel)
                log.info(
                    "addresses: channel %r has no address reader: its carriers get the "
                    "country and postal code only",
                    channel,
                )
            return None
        try:
            return await reader.shipping_address(channel_order_id)
        except (UnavailableError, ThrottledError, RejectedError) as exc:
            # the channel clients' error texts name no person (status, host, error code)
            raise AddressUnavailableError(
                f"{channel} could not tell the address of {order_id}: {exc}"
            ) from None
