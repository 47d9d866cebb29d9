"""One configured Mirakl operator, wired for ``connectors.runtime``: its client, inbound
(polled orders; an unreadable order is a dead letter), pusher, refusals, canceller and
acceptance actions. Several operators are several channels sharing this code."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp
import orjson

from connectors.framework import metrics, redact
from connectors.framework.cancellations import CancelRequest
from connectors.framework.kafka import KafkaPublisher
from connectors.framework.refusals import Refusal
from connectors.framework.types import RejectedError
from connectors.mirakl.acceptance import MiraklAcceptance
from connectors.mirakl.client import MiraklClient
from connectors.mirakl.inbound import MiraklInbound
from connectors.mirakl.limits import MiraklLimits
from connectors.mirakl.mapping import MiraklMapping
from connectors.mirakl.outbound import MiraklPusher
from connectors.mirakl.shipping import MiraklShipper
from schemas.codec import Codec
from streams.kernel import topics
from streams.kernel.deadletter import dead_letter


def without_personal_data(order: Mapping[str, Any]) -> bytes:
    """The order's ids, states, times and lines (SKU, quantity, state) only: the
    ``customer`` block (names, addresses, phone, email) never reaches Kafka."""
    lines = order.get("order_lines")
    kept = (
        [
            {k: line.get(k) for k in ("order_line_id", "offer_sku", "quantity", "order_line_state")}
            for line in lines
            if isinstance(line, dict)
        ]
        if isinstance(lines, list)
        else None
    )
    head = ("order_id", "order_state", "created_date", "last_updated_date")
    return orjson.dumps({**{k: order.get(k) for k in head}, "order_lines": kept}, default=str)


class UnreadableOrders:
    """A polled order the connector cannot read: a DeadLetter on ``stock.deadletter.v1``."""

    def __init__(self, publisher: KafkaPublisher, codec: Codec, channel: str) -> None:
        self._publisher = publisher
        self._codec = codec
        self._channel = channel

    async def __call__(self, order: Mapping[str, Any], error: str) -> None:
        key = f"{self._channel}:{order.get('order_id')}".encode()
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


class MiraklRefusals:
    """A line the ledger rejected is answered on Mirakl by the acceptance gate (the order is
    refused with OR21 before the operator's deadline): the refusal policies have nothing
    left to do on the marketplace."""

    def __init__(self, mapping: MiraklMapping) -> None:
        self.channel = mapping.channel
        self.account = mapping.shop

    async def cancel(self, refusal: Refusal) -> None:
        return None

    async def backorder(self, refusal: Refusal) -> None:
        return None

    async def flag(self, refusal: Refusal) -> None:
        return None


class MiraklCanceller:
    """Orders of a Mirakl channel are not cancelled from here (``orders: lines`` only)."""

    def __init__(self, mapping: MiraklMapping) -> None:
        self.channel = mapping.channel
        self.account = mapping.shop

    async def cancel_order(self, request: CancelRequest) -> str:
        raise RejectedError("Mirakl orders are refused through acceptance, not cancelled here")


def build_mirakl(
    session: aiohttp.ClientSession,
    mapping: MiraklMapping,
    *,
    base_url: str,
    api_key: str,
    limits: Mapping[str, float],
    max_batch: int,
    orders: str = "lines",
    publisher: KafkaPublisher | None = None,
    codec: Codec | None = None,
) -> tuple[
    MiraklInbound, MiraklPusher, MiraklRefusals, MiraklCanceller, MiraklAcceptance, MiraklShipper
]:
    """The parts of one operator's channel (``connectors.config.ChannelInstance`` fields)."""
    client = MiraklClient(
        session,
        base_url,
        api_key,
        shop_id=mapping.shop_id,
        limits=MiraklLimits(mapping.channel, **dict(limits)),
    )
    inbound = MiraklInbound(
        mapping,
        client,
        unreadable=(
            None
            if publisher is None or codec is None
            else UnreadableOrders(publisher, codec, mapping.channel)
        ),
        orders_mode=orders,
    )
    pusher = MiraklPusher(client, mapping, max_batch=max_batch)
    inbound.reassert = pusher.reassert
    return (
        inbound,
        pusher,
        MiraklRefusals(mapping),
        MiraklCanceller(mapping),
        MiraklAcceptance(client, mapping),
        MiraklShipper(client, mapping),
    )
