"""One configured Fnac Darty channel, wired for ``connectors.runtime``: its client, inbound
(polled orders; an unreadable order is a dead letter), pusher, refusals, canceller and the
acceptance actions the gate calls."""

from __future__ import annotations

from collections.abc import Mapping

import aiohttp
import orjson

from connectors.fnac.acceptance import FnacAcceptance
from connectors.fnac.client import FnacClient
from connectors.fnac.inbound import FnacInbound
from connectors.fnac.limits import FnacLimits
from connectors.fnac.mapping import FnacMapping
from connectors.fnac.outbound import FnacPusher
from connectors.fnac.refusals import FnacCanceller, FnacRefusals
from connectors.fnac.shipping import FnacShipper
from connectors.framework import metrics, redact
from connectors.framework.kafka import KafkaPublisher
from schemas.codec import Codec
from streams.kernel import topics
from streams.kernel.deadletter import dead_letter


class UnreadableOrders:
    """A polled order the connector cannot read: a DeadLetter naming only the order's id,
    state and creation time (Fnac's order carries the customer's name and addresses, which
    never reach Kafka)."""

    def __init__(self, publisher: KafkaPublisher, codec: Codec, channel: str) -> None:
        self._publisher = publisher
        self._codec = codec
        self._channel = channel

    async def __call__(self, facts: dict[str, str], error: str) -> None:
        key = f"{self._channel}:{facts.get('order_id')}".encode()
        record = dead_letter(
            metrics.DEAD_LETTERS,
            component=f"connector:{self._channel}",
            reason="invalid_order",
            error=redact.scrub(error),
            original=orjson.dumps(facts),
            key=key,
        )
        value = self._codec.encode(topics.STOCK_DEADLETTER.value_schema, record)
        await self._publisher.produce(topics.STOCK_DEADLETTER.name, [(key, value)])


def build_fnac(
    session: aiohttp.ClientSession,
    mapping: FnacMapping,
    *,
    base_url: str,
    partner_id: str,
    shop_id: str,
    key: str,
    limits: Mapping[str, float],
    max_batch: int,
    orders: str = "lines",
    publisher: KafkaPublisher | None = None,
    codec: Codec | None = None,
) -> tuple[FnacInbound, FnacPusher, FnacRefusals, FnacCanceller, FnacAcceptance, FnacShipper]:
    """The parts of one channel (``connectors.config.ChannelInstance`` fields)."""
    client = FnacClient(
        session,
        base_url,
        partner_id,
        shop_id,
        key,
        limits=FnacLimits(mapping.channel, **dict(limits)),
    )
    inbound = FnacInbound(
        mapping,
        client,
        unreadable=(
            None
            if publisher is None or codec is None
            else UnreadableOrders(publisher, codec, mapping.channel)
        ),
        orders_mode=orders,
    )
    return (
        inbound,
        FnacPusher(client, mapping, max_batch=max_batch),
        FnacRefusals(mapping),
        FnacCanceller(mapping),
        FnacAcceptance(client, mapping),
        FnacShipper(client, mapping),
    )
