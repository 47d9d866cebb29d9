"""One configured PrestaShop channel, wired for ``connectors.runtime``: its client, inbound
(polled orders; an unreadable order is a dead letter), pusher, refusals and canceller."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp
import orjson

from connectors.framework import metrics, redact
from connectors.framework.kafka import KafkaPublisher
from connectors.prestashop.cancel import PrestaCanceller, PrestaRefusals
from connectors.prestashop.client import PrestaClient
from connectors.prestashop.inbound import PrestaInbound
from connectors.prestashop.limits import PrestaLimits
from connectors.prestashop.mapping import PrestaMapping
from connectors.prestashop.outbound import PrestaPusher
from schemas.codec import Codec
from streams.kernel import topics
from streams.kernel.deadletter import dead_letter


class UnreadableOrders:
    """A polled order the connector cannot read: a DeadLetter naming only the order's id,
    state and change time (the order resource holds customer and address ids, kept out)."""

    def __init__(self, publisher: KafkaPublisher, codec: Codec, channel: str) -> None:
        self._publisher = publisher
        self._codec = codec
        self._channel = channel

    async def __call__(self, order: Mapping[str, Any], error: str) -> None:
        key = f"{self._channel}:{order.get('id')}".encode()
        record = dead_letter(
            metrics.DEAD_LETTERS,
            component=f"connector:{self._channel}",
            reason="invalid_order",
            error=redact.scrub(error),
            original=orjson.dumps(
                {k: str(order.get(k)) for k in ("id", "current_state", "date_upd")}
            ),
            key=key,
        )
        value = self._codec.encode(topics.STOCK_DEADLETTER.value_schema, record)
        await self._publisher.produce(topics.STOCK_DEADLETTER.name, [(key, value)])


def build_prestashop(
    session: aiohttp.ClientSession,
    mapping: PrestaMapping,
    *,
    base_url: str,
    webservice_key: str,
    limits: Mapping[str, float],
    orders: str,
    max_batch: int,
    publisher: KafkaPublisher | None = None,
    codec: Codec | None = None,
) -> tuple[PrestaInbound, PrestaPusher, PrestaRefusals, PrestaCanceller]:
    """The parts of one channel (``connectors.config.ChannelInstance`` fields)."""
    client = PrestaClient(
        session,
        base_url,
        webservice_key,
        limits=PrestaLimits(mapping.channel, **dict(limits)),
        products={p.sku: p.product_id for p in mapping.products if not p.combination_id},
        currency=mapping.currency,
    )
    inbound = PrestaInbound(
        mapping,
        client,
        orders_mode=orders,
        unreadable=(
            None
            if publisher is None or codec is None
            else UnreadableOrders(publisher, codec, mapping.channel)
        ),
    )
    return (
        inbound,
        PrestaPusher(client, mapping, max_batch=max_batch),
        PrestaRefusals(client, mapping),
        PrestaCanceller(client, mapping),
    )
