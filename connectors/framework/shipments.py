"""Orders shipped here are confirmed on their channel, once, with the carrier and tracking.

The shipping service writes each shipment's versions to ``fulfilment.shipments.v1``. The
version that reaches ``shipped`` for an order of a connector's channel (order id
``<channel>:<channel's id>``) is told to the channel through its :class:`ChannelShipper`:
Shopify a fulfilment with tracking, WooCommerce an order note and ``completed``, a
marketplace its shipping confirmation. One small class per channel: the protocol is one
method.

Idempotent twice over: a shipment confirmed before (after a redelivery or a restart) is
skipped from memory, and each shipper checks the channel first (an order already shipped
there is success, ``already``).

Retries: throttles and outages are retried with the channel's ``Retry-After`` or an
exponential backoff (``attempts`` tries); a channel that keeps failing, or refuses, gives a
dead letter on ``stock.deadletter.v1`` (reason ``ship_confirm_failed``; the original is the
shipment id, order id, channel, carrier and tracking number: no personal data) and a drift
alert, so a person confirms it by hand.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from connectors.framework import metrics, redact
from connectors.framework.dedupe import DedupeStore
from connectors.framework.feed import TopicFeed
from connectors.framework.kafka import KafkaPublisher
from connectors.framework.types import ThrottledError, UnavailableError
from schemas.codec import Codec
from schemas.times import now_ms
from streams.kernel import topics
from streams.kernel.deadletter import dead_letter
from streams.kernel.settings import Settings

log = logging.getLogger(__name__)

_RESPLIT = re.compile(r"(/r\d+)+$")

SHIPPED = "shipped"
ALREADY = "already"
FAILED = "failed"


@dataclass(frozen=True, slots=True)
class ShipLine:
    line_id: str  # the channel's line id
    sku: str
    qty: int


@dataclass(frozen=True, slots=True)
class ShipNotice:
    """One shipment to confirm on its channel, in the channel's own ids."""

    shipment_id: str
    order_id: str  # "<channel>:<id>"
    channel: str
    channel_order_id: str
    carrier: str
    service: str
    tracking_number: str
    location: str
    lines: tuple[ShipLine, ...]

    def note(self) -> str:
        units = sum(line.qty for line in self.lines)
        return (
            f"[stockflow] shipped {units} unit(s) by {self.carrier}, "
            f"tracking {self.tracking_number}"
        )


class ChannelShipper(Protocol):
    """A channel's shipping confirmation; idempotent on the channel."""

    channel: str
    account: str

    async def confirm_shipment(self, notice: ShipNotice) -> str:
        """``shipped`` when the channel took it, ``already`` when it had it; raises
        ``ThrottledError``/``UnavailableError`` (retried) or anything else (refused)."""
        ...


def ship_notice(shipment: Mapping[str, Any], channel: str) -> ShipNotice | None:
    """The confirmation ``shipment`` asks of ``channel``, if any: its ``shipped`` version."""
    order_id = str(shipment.get("order_id") or "")
    if shipment.get("status") != SHIPPED or not order_id.startswith(f"{channel}:"):
        return None
    return ShipNotice(
        shipment_id=str(shipment["shipment_id"]),
        order_id=order_id,
        channel=channel,
        channel_order_id=order_id.removeprefix(f"{channel}:"),
        carrier=str(shipment.get("carrier") or ""),
        service=str(shipment.get("service") or ""),
        tracking_number=str(shipment.get("tracking_number") or ""),
        location=str(shipment.get("location") or ""),
        lines=_channel_lines(shipment.get("lines") or ()),
    )


def _channel_lines(lines: Iterable[Mapping[str, Any]]) -> tuple[ShipLine, ...]:
    """The shipment's lines in the channel's line ids: a line routed again after a short
    pick is ``<channel line id>/r<n>`` in the order book; units of one channel line add up."""
    units: dict[tuple[str, str], int] = {}
    for ln in lines:
        key = (_RESPLIT.sub("", str(ln["line_id"])), str(ln["sku"]))
        units[key] = units.get(key, 0) + int(ln["qty"])
    return tuple(ShipLine(line_id, sku, qty) for (line_id, sku), qty in units.items())


FailureSink = Callable[[ShipNotice, str], Awaitable[None]]


class ShipmentHandler:
    """Confirms on their channel the shipments made here, once each."""

    def __init__(
        self,
        shippers: Mapping[str, ChannelShipper],
        *,
        failed: FailureSink | None = None,
        attempts: int = 5,
        backoff_s: float = 1.0,
    ) -> None:
        self.shippers = dict(shippers)
        self.done = DedupeStore(max_keys=100_000, ttl_s=7 * 24 * 3600)
        self.outcomes: dict[str, int] = {SHIPPED: 0, ALREADY: 0, FAILED: 0}
        self._failed = failed
        self._attempts = attempts
        self._backoff = backoff_s

    async def handle(self, shipment: Mapping[str, Any]) -> str | None:
        """The outcome for a shipment to confirm; None when there is nothing to do."""
        shipper = self.shippers.get(str(shipment.get("channel")))
        if shipper is None:
            return None
        notice = ship_notice(shipment, shipper.channel)
        if notice is None or self.done.seen(notice.shipment_id):
            return None
        outcome, error = await self._confirm(shipper, notice)
        if outcome == FAILED and self._failed is not None:
            await self._failed(notice, error)
        self.done.add(notice.shipment_id)
        self.outcomes[outcome] += 1
        log.info(
            "order shipped channel=%s order=%s shipment=%s outcome=%s%s",
            notice.channel,
            notice.order_id,
            notice.shipment_id,
            outcome,
            f" error={error}" if error else "",
        )
        return outcome

    async def _confirm(self, shipper: ChannelShipper, notice: ShipNotice) -> tuple[str, str]:
        error = ""
        for attempt in range(self._attempts):
            try:
                return await shipper.confirm_shipment(notice), ""
            except (ThrottledError, UnavailableError) as exc:
                error = type(exc).__name__
                if attempt + 1 < self._attempts:
                    wait = exc.retry_after or self._backoff * 2**attempt
                    await asyncio.sleep(min(wait, 30.0))
            except Exception as exc:  # refused by the channel: retrying will not help
                return FAILED, f"{type(exc).__name__}: {redact.scrub(str(exc))[:300]}"
        return FAILED, error


class ShipFailures:
    """A confirmation the channel did not take: a dead letter and a ``drift`` alert."""

    def __init__(self, publisher: KafkaPublisher, codec: Codec) -> None:
        self._publisher = publisher
        self._codec = codec

    async def __call__(self, notice: ShipNotice, error: str) -> None:
        key = notice.order_id.encode()
        letter = dead_letter(
            metrics.DEAD_LETTERS,
            component=f"connector:{notice.channel}",
            reason="ship_confirm_failed",
            error=error,
            original=orjson.dumps(
                {
                    "shipment_id": notice.shipment_id,
                    "order_id": notice.order_id,
                    "channel": notice.channel,
                    "carrier": notice.carrier,
                    "tracking_number": notice.tracking_number,
                }
            ),
            topic=topics.FULFILMENT_SHIPMENTS.name,
            key=notice.shipment_id.encode(),
        )
        alert = {
            "alert_id": f"ship_confirm:{notice.shipment_id}",
            "kind": "drift",
            "sku": notice.lines[0].sku if notice.lines else "",
            "location": notice.location or None,
            "channel": notice.channel,
            "value": 0,
            "threshold": 0,
            "message": f"order {notice.order_id} shipped ({notice.carrier} "
            f"{notice.tracking_number}) but {notice.channel} did not take the confirmation "
            f"({error.split(':', 1)[0]}); mark it shipped on the channel by hand",
            "event_id": None,
            "at": now_ms(),
        }
        try:
            await self._publisher.produce(
                topics.STOCK_DEADLETTER.name,
                [(key, self._codec.encode(topics.STOCK_DEADLETTER.value_schema, letter))],
            )
            await self._publisher.produce(
                topics.STOCK_ALERTS.name,
                [(key, self._codec.encode(topics.STOCK_ALERTS.value_schema, alert))],
            )
        except Exception as exc:
            log.warning("order ship %s: dead letter not published: %s", notice.order_id, exc)
            return
        metrics.ALERTS.labels(notice.channel, "drift").inc()


class ShipmentsSource(TopicFeed):
    """``fulfilment.shipments.v1``: each shipment version to the :class:`ShipmentHandler`."""

    def __init__(
        self,
        settings: Settings,
        codec: Codec,
        handler: ShipmentHandler,
        *,
        group_id: str,
        commit_every_s: float = 5.0,
        dead_letters: KafkaPublisher | None = None,
    ) -> None:
        super().__init__(
            settings,
            codec,
            topics.FULFILMENT_SHIPMENTS,
            "shipments",
            handler.handle,
            group_id=group_id,
            commit_every_s=commit_every_s,
            dead_letters=dead_letters,
        )

    @classmethod
    def build(
        cls,
        settings: Settings,
        codec: Codec,
        channels: Iterable[Any],
        config: Any,
        publisher: KafkaPublisher,
    ) -> ShipmentsSource | None:
        """The feed for the channels (runtime ``Channel``s) whose orders the order book holds
        and that have a shipper (group ``<consumer_group>-shipments``); None when none has."""
        shippers = {
            c.instance.name: c.shipper
            for c in channels
            if c.shipper is not None and c.instance.orders == "book"
        }
        if not shippers:
            return None
        return cls(
            settings,
            codec,
            ShipmentHandler(shippers, failed=ShipFailures(publisher, codec)),
            group_id=f"{config.consumer_group}-shipments",
            dead_letters=publisher,
        )
