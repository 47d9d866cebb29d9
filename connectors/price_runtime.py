"""Price propagation inside ``stockflow connectors serve``.

Built only when a channel has ``prices:`` rules in the connector configuration. Reads
``prices.events.v1`` (:class:`connectors.framework.price_kafka.PriceSource`) into the price
sync (:class:`connectors.framework.price_sync.PriceSync`), applies scheduled prices when they
become due (checked every second), and reconciles every channel's prices with the stock
reconciliation interval. Each channel's writer comes from ``connectors.price_writers`` by kind,
built from the channel's client and mapping (its stock pusher's ``client`` and ``mapping``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

from connectors.config import ConnectorsConfig
from connectors.framework import redact
from connectors.framework.engine import LanePolicy
from connectors.framework.kafka import KafkaDeadLetters, KafkaPublisher
from connectors.framework.price_kafka import KafkaPriceAlerts, PriceSource
from connectors.framework.price_sync import PriceChannel, PriceSync
from connectors.price_writers import writer_for
from schemas.codec import Codec
from streams.kernel.settings import Settings

log = logging.getLogger("stockflow.connectors.prices")

TICK_S = 1.0


def price_channels(config: ConnectorsConfig, built: Sequence[Any]) -> list[PriceChannel]:
    """A :class:`PriceChannel` per configured channel with price rules and a writer."""
    out: list[PriceChannel] = []
    for channel in built:
        inst = channel.instance
        if inst.prices is None:
            continue
        pusher = channel.pusher
        writer = writer_for(inst.kind, getattr(pusher, "client", None), inst.mapping)
        if writer is None:
            log.warning(
                "prices: channel %s (%s) has no price writer; not pushed", inst.name, inst.kind
            )
            continue
        shown = inst.prices.currency or config.price_rates.base
        known = getattr(writer, "currency", None)
        if known == "":
            writer.currency = shown  # type: ignore[attr-defined]  # read-back unit
        elif known is not None and str(known).upper() != shown:
            log.warning(
                "prices: channel %s shows prices in %s but its rules give %s; set "
                "prices.currency: %s (or the price_rates base) in its entry",
                inst.name,
                known,
                shown,
                known,
            )
        out.append(
            PriceChannel(
                name=inst.name,
                rule=inst.prices,
                writer=writer,
                skus=inst.skus,
                policy=LanePolicy(
                    interval_s=inst.price_sync.interval_s,
                    coalesce_s=inst.price_sync.coalesce_s,
                    max_attempts=inst.max_attempts,
                    dirty_retry_s=inst.dirty_retry_s,
                ),
            )
        )
    return out


class PriceRuntime:
    def __init__(
        self,
        settings: Settings,
        config: ConnectorsConfig,
        channels: list[PriceChannel],
        publisher: KafkaPublisher,
        codec: Codec,
    ) -> None:
        alerts = KafkaPriceAlerts(publisher, codec)
        self.config = config
        self.sync = PriceSync(
            channels,
            config.price_rates,
            floor_alert=alerts.floor,
            drift_alert=alerts.drift,
            dead_letter=KafkaDeadLetters(publisher, codec),
        )
        self.source = PriceSource(
            settings, codec, group_id=f"{config.consumer_group}-prices", dead_letters=publisher
        )
        self._tasks: list[asyncio.Task[None]] = []

    @classmethod
    def build(
        cls,
        settings: Settings,
        config: ConnectorsConfig,
        built: Sequence[Any],
        publisher: KafkaPublisher,
        codec: Codec,
    ) -> PriceRuntime | None:
        channels = price_channels(config, built)
        if not channels:
            return None
        log.info(
            "prices: pushing to %s (rates of %s, base %s)",
            ", ".join(c.name for c in channels),
            config.price_rates.date or "-",
            config.price_rates.base,
        )
        return cls(settings, config, channels, publisher, codec)

    def start(self) -> None:
        self.sync.start()
        self._tasks = [
            asyncio.create_task(self._consume(), name="prices"),
            asyncio.create_task(self._tick(), name="prices-due"),
            asyncio.create_task(self._reconcile(), name="prices-reconcile"),
        ]

    async def _consume(self) -> None:
        async for change in self.source.changes():
            try:
                await self.sync.take(change)
            except Exception as exc:  # one change must not stop the prices of every SKU
                log.warning(
                    "price change %s of %s not applied: %s",
                    change.get("change_id"),
                    change.get("sku"),
                    redact.describe(exc),
                )

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            try:
                await self.sync.tick()
            except Exception as exc:
                log.warning("scheduled prices not applied: %s", redact.describe(exc))

    async def _reconcile(self) -> None:
        while True:
            await asyncio.sleep(self.config.reconcile_interval_s)
            try:
                drifting = await self.sync.reconcile()
                log.info("price reconciliation drifting=%s", drifting)
            except Exception as exc:  # a channel outage must not stop the loop
                log.warning("price reconciliation failed: %s", redact.describe(exc))

    async def stop(self) -> None:
        """Stop reading (the consumer's poll ends within 0.5 s: it is never closed while
        polling), let the lanes push what they hold (bounded), stop."""
        self.source.stop()
        for task in self._tasks[1:]:
            task.cancel()
        if self._tasks:  # the first one reads the topic
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._tasks[0]), 15.0)
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(Exception):
            await self.sync.engine.drained(5.0)
        await self.sync.stop()
        self.source.close()
