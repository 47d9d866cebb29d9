"""One configured eMAG channel, wired for ``connectors.runtime``: its client (one platform,
one seller account), inbound (callbacks and polling; an unreadable order is a dead letter),
pusher (campaign locks as drift alerts), order actions (acceptance, refusals,
cancellations) and shipper (AWB, then finalized)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp
import orjson

from connectors.emag.acceptance import EmagOrders
from connectors.emag.client import EmagClient
from connectors.emag.inbound import EmagInbound
from connectors.emag.limits import EmagLimits
from connectors.emag.mapping import EmagMapping
from connectors.emag.outbound import EmagPusher
from connectors.emag.shipping import EmagShipper
from connectors.framework import metrics, redact
from connectors.framework.kafka import KafkaDriftAlerts, KafkaPublisher
from schemas.codec import Codec
from streams.kernel import topics
from streams.kernel.deadletter import dead_letter


class UnreadableOrders:
    """An order the connector cannot read, as a DeadLetter (ids, status, times, lines only)."""

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
            original=orjson.dumps(order),
            key=key,
        )
        value = self._codec.encode(topics.STOCK_DEADLETTER.value_schema, record)
        await self._publisher.produce(topics.STOCK_DEADLETTER.name, [(key, value)])


def build_emag(
    session: aiohttp.ClientSession,
    mapping: EmagMapping,
    *,
    base_url: str,
    username: str,
    password: str,
    limits: Mapping[str, float],
    max_batch: int,
    orders: str = "lines",
    publisher: KafkaPublisher | None = None,
    codec: Codec | None = None,
) -> tuple[EmagInbound, EmagPusher, EmagOrders, EmagOrders, EmagOrders, EmagShipper]:
    """(inbound, pusher, refusals, canceller, acceptance, shipper) of one channel."""
    client = EmagClient(
        session,
        base_url,
        username,
        password,
        channel=mapping.channel,
        limits=EmagLimits(mapping.channel, **dict(limits)),
    )
    inbound = EmagInbound(mapping, client, orders_mode=orders)
    pusher = EmagPusher(client, mapping, max_batch=max_batch)
    if publisher is not None and codec is not None:
        inbound.unreadable = UnreadableOrders(publisher, codec, mapping.channel)
        pusher.alert = KafkaDriftAlerts(publisher, codec)
    actions = EmagOrders(client, mapping)
    return inbound, pusher, actions, actions, actions, EmagShipper(client, mapping)
