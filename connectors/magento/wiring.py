"""How the connectors' runtime builds a Magento channel and dead-letters its bad orders."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import aiohttp
import orjson

from connectors.framework import metrics, redact
from connectors.framework.kafka import KafkaPublisher
from connectors.magento.cancel import MagentoCanceller
from connectors.magento.client import MagentoClient
from connectors.magento.inbound import MagentoInbound
from connectors.magento.limits import MagentoLimits
from connectors.magento.mapping import MagentoMapping
from connectors.magento.outbound import MagentoPusher
from connectors.magento.refusals import MagentoRefusals
from connectors.magento.reservations import Reservations
from schemas.codec import Codec
from streams.kernel import topics
from streams.kernel.deadletter import dead_letter


def build_magento(
    session: aiohttp.ClientSession,
    mapping: MagentoMapping,
    *,
    base_url: str,
    token: str,
    limits: Mapping[str, float],
    orders: str,
    max_batch: int,
) -> tuple[MagentoInbound, MagentoPusher, MagentoRefusals, MagentoCanceller]:
    client = MagentoClient(
        session, base_url, token, limits=MagentoLimits(mapping.channel, **dict(limits))
    )
    reservations = Reservations(frozenset(mapping.skus))
    return (
        MagentoInbound(mapping, client, orders_mode=orders, reservations=reservations),
        MagentoPusher(client, mapping, max_batch=max_batch, reservations=reservations),
        MagentoRefusals(client, mapping),
        MagentoCanceller(client, mapping),
    )


class KafkaBadOrders:
    """An order a poll could not read, as a DeadLetter on ``stock.deadletter.v1`` (the
    order's JSON as the original bytes, keyed by its id); the poll goes on without it."""

    def __init__(self, channel: str, publisher: KafkaPublisher, codec: Codec) -> None:
        self._channel = channel
        self._publisher = publisher
        self._codec = codec

    async def __call__(self, order_id: int, raw: bytes, error: str) -> None:
        key = f"{self._channel}:{order_id}".encode()
        record = dead_letter(
            metrics.DEAD_LETTERS,
            component=f"connector:{self._channel}",
            reason="invalid_order",
            error=redact.scrub(error),
            original=_without_personal_data(raw),
            key=key,
        )
        value = self._codec.encode(topics.STOCK_DEADLETTER.value_schema, record)
        await self._publisher.produce(topics.STOCK_DEADLETTER.name, [(key, value)])


def _without_personal_data(raw: bytes) -> bytes:
    """The order's ids, states, times and lines only: Magento's order carries the customer's
    name, email and addresses, which never reach Kafka."""
    try:
        order = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return b"{}"
    if not isinstance(order, dict):
        return b"{}"
    kept = ("entity_id", "increment_id", "state", "status", "created_at", "updated_at", "items")
    items = order.get("items")
    lines = (
        [
            {k: i.get(k) for k in ("item_id", "sku", "qty_ordered", "product_type")}
            for i in items
            if isinstance(i, dict)
        ]
        if isinstance(items, list)
        else items
    )
    return orjson.dumps({**{k: order.get(k) for k in kept if k in order}, "items": lines})


def dead_letter_bad_orders(
    inbounds: Iterable[object], publisher: KafkaPublisher, codec: Codec
) -> None:
    for inbound in inbounds:
        if isinstance(inbound, MagentoInbound):
            inbound.dead_letter = KafkaBadOrders(inbound.channel, publisher, codec)
