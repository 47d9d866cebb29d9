"""One configured Cdiscount channel, wired for ``connectors.runtime``: its token source and
client, inbound (polled orders; an unreadable order is a dead letter without personal data),
pusher (offer packages), acceptance actions, refusals, canceller and shipper."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from connectors.cdiscount.acceptance import CdiscountAcceptance
from connectors.cdiscount.client import CdiscountClient, TokenSource
from connectors.cdiscount.inbound import CdiscountInbound, without_personal_data
from connectors.cdiscount.limits import CdiscountLimits
from connectors.cdiscount.mapping import CdiscountMapping
from connectors.cdiscount.outbound import CdiscountPusher
from connectors.cdiscount.refusals import CdiscountCanceller, CdiscountRefusals
from connectors.cdiscount.shipping import CdiscountShipper
from connectors.framework import metrics, redact
from connectors.framework.kafka import KafkaPublisher
from schemas.codec import Codec
from streams.kernel import topics
from streams.kernel.deadletter import dead_letter


class UnreadableOrders:
    """A polled order the connector cannot read, as a DeadLetter on ``stock.deadletter.v1``
    (its ids, status, times and lines; the customer and addresses are left out)."""

    def __init__(self, publisher: KafkaPublisher, codec: Codec, channel: str) -> None:
        self._publisher = publisher
        self._codec = codec
        self._channel = channel

    async def __call__(self, order: Mapping[str, Any], error: str) -> None:
        key = f"{self._channel}:{order.get('orderId')}".encode()
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


@dataclass
class CdiscountParts:
    inbound: CdiscountInbound
    pusher: CdiscountPusher
    refusals: CdiscountRefusals
    canceller: CdiscountCanceller
    acceptance: CdiscountAcceptance
    shipper: CdiscountShipper


def build_cdiscount(
    session: aiohttp.ClientSession,
    mapping: CdiscountMapping,
    *,
    base_url: str,
    client_id: str,
    client_secret: str,
    limits: Mapping[str, float],
    max_batch: int,
    orders: str = "lines",
    publisher: KafkaPublisher | None = None,
    codec: Codec | None = None,
) -> CdiscountParts:
    tokens = TokenSource(session, mapping.auth_url, client_id, client_secret)
    client = CdiscountClient(
        session,
        base_url,
        tokens,
        mapping.seller_id,
        limits=CdiscountLimits(mapping.channel, **dict(limits)),
    )
    inbound = CdiscountInbound(mapping, client, orders_mode=orders)
    if publisher is not None and codec is not None:
        inbound.dead_letter = UnreadableOrders(publisher, codec, mapping.channel)
    return CdiscountParts(
        inbound=inbound,
        pusher=CdiscountPusher(client, mapping, max_batch=max_batch),
        refusals=CdiscountRefusals(mapping),
        canceller=CdiscountCanceller(mapping),
        acceptance=CdiscountAcceptance(client, mapping),
        shipper=CdiscountShipper(client, mapping),
    )
