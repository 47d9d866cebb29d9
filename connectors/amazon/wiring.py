"""One configured Amazon channel, wired for ``connectors.runtime``: its Login with Amazon
tokens, client, inbound (polled orders and FBA stock; an unreadable order is a dead letter),
pusher, refusals, canceller and shipper (``confirmShipment`` of the shipments made here, for
``orders: book``). Amazon asks no acceptance of the seller: no acceptance actions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp
import orjson

from connectors.amazon.auth import LwaTokens
from connectors.amazon.client import AmazonClient
from connectors.amazon.inbound import AmazonInbound
from connectors.amazon.limits import AmazonLimits
from connectors.amazon.mapping import AmazonMapping
from connectors.amazon.outbound import AmazonPusher
from connectors.amazon.refusals import AmazonRefusals
from connectors.amazon.shipping import AmazonShipper
from connectors.framework import metrics, redact
from connectors.framework.kafka import KafkaPublisher
from schemas.codec import Codec
from streams.kernel import topics
from streams.kernel.deadletter import dead_letter

ORDER_FIELDS = (
    "AmazonOrderId",
    "OrderStatus",
    "PurchaseDate",
    "LastUpdateDate",
    "FulfillmentChannel",
    "MarketplaceId",
)


def without_personal_data(order: Mapping[str, Any]) -> bytes:
    """The order's ids, state and times only: ``BuyerInfo`` and ``ShippingAddress`` (name,
    email, address, phone) never reach Kafka."""
    return orjson.dumps({k: order.get(k) for k in ORDER_FIELDS if k in order}, default=str)


class UnreadableOrders:
    """An order a poll could not read, as a DeadLetter on ``stock.deadletter.v1``."""

    def __init__(self, publisher: KafkaPublisher, codec: Codec, channel: str) -> None:
        self._publisher = publisher
        self._codec = codec
        self._channel = channel

    async def __call__(self, order: Mapping[str, Any], error: str) -> None:
        key = f"{self._channel}:{order.get('AmazonOrderId')}".encode()
        record = dead_letter(
            metrics.DEAD_LETTERS,
            component=f"connector:{self._channel}",
            reason="invalid_order",
            error=redact.scrub(error),
            original=without_personal_data(order),
            key=key,
        )
        value = self._codec.encode(topics.STOCK_DEADLETTER.value_schema, record)
        await self._publisher.produce(topics.STOCK_DEADLETTER.name, [(key, value)])


def build_amazon(
    session: aiohttp.ClientSession,
    mapping: AmazonMapping,
    *,
    base_url: str,
    client_id: str,
    client_secret: str,
    refresh_token: str,
    limits: Mapping[str, float],
    max_batch: int,
    orders: str = "lines",
    publisher: KafkaPublisher | None = None,
    codec: Codec | None = None,
) -> tuple[AmazonInbound, AmazonPusher, AmazonRefusals, AmazonRefusals, None, AmazonShipper]:
    """The parts of one channel (``connectors.config.ChannelInstance`` fields)."""
    tokens = LwaTokens(
        session,
        mapping.token_url,
        client_id=client_id,
        client_secret=client_secret,
        refresh_token=refresh_token,
    )
    client = AmazonClient(
        session,
        base_url,
        tokens,
        seller_id=mapping.seller_id,
        marketplace_id=mapping.marketplace_id,
        limits=AmazonLimits(mapping.channel, **dict(limits)),
    )
    inbound = AmazonInbound(mapping, client, orders_mode=orders)
    if publisher is not None and codec is not None:
        inbound.dead_letter = UnreadableOrders(publisher, codec, mapping.channel)
    refusals = AmazonRefusals(mapping)
    pusher = AmazonPusher(client, mapping, max_batch=max_batch)
    return inbound, pusher, refusals, refusals, None, AmazonShipper(client, mapping)
