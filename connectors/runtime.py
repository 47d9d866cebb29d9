"""``stockflow connectors serve``: every configured channel in one asyncio process.

Parts (see ``connectors.framework`` for how each works):

- the webhook receiver on ``$STOCKFLOW_CONNECTORS_BIND:$STOCKFLOW_CONNECTORS_PORT``
  (``/webhooks/<channel>``, ``/metrics``, ``/health``), publishing through the intake to
  ``stock.events.v1`` (and Order records to ``orders.v1`` for a channel set to
  ``orders: book``);
- one poller per channel (backup for lost webhooks), through the same intake;
- the levels consumer feeding the outbound engine, which pushes to every channel that maps
  the SKU; dead letters go to ``stock.deadletter.v1``;
- the decisions consumer: a line the ledger rejected is cancelled, marked backordered or
  flagged on its channel (``on_refusal``) and flagged lines listed at ``GET /v1/exceptions``;
- the order states consumer (channels with ``orders: book``): an order cancelled here
  (operator, order book) is cancelled on its channel (``connectors.framework.cancellations``);
- drift: Shopify's stock notifications are checked against our writes, and every channel is
  reconciled on an interval; drift is an alert on ``stock.alerts.v1``;
- prices (channels with ``prices:`` rules): ``prices.events.v1`` in, each channel's price out
  through its own lanes (``connectors.price_runtime``);
- the state folder (``connectors.framework.state``): polling checkpoints, dirty SKUs and the
  quantities each channel acknowledged, so a restart resumes where the process stopped.

Shutdown order on SIGTERM/SIGINT: stop taking webhooks (in-flight ones finish and are
published), stop polling, stop reading levels, let the lanes push what they hold (bounded),
commit the levels offsets if every lane is idle, flush the producer, exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from connectors.access import protect
from connectors.amazon.inbound import AmazonInbound
from connectors.amazon.mapping import AmazonMapping
from connectors.amazon.wiring import build_amazon
from connectors.cdiscount.inbound import CdiscountInbound
from connectors.cdiscount.mapping import CdiscountMapping
from connectors.cdiscount.wiring import build_cdiscount
from connectors.config import ChannelInstance, ConnectorsConfig
from connectors.emag.callback import callback_routes
from connectors.emag.inbound import EmagInbound
from connectors.emag.mapping import EmagMapping
from connectors.emag.wiring import build_emag
from connectors.fnac.inbound import FnacInbound
from connectors.fnac.mapping import FnacMapping
from connectors.fnac.wiring import build_fnac
from connectors.framework import redact
from connectors.framework.acceptance import AcceptanceActions, AcceptanceGate
from connectors.framework.bundles import BundleExpander, KafkaBundleRefusals
from connectors.framework.cancellations import CancelHandler, ChannelCanceller
from connectors.framework.decisions import DecisionsSource
from connectors.framework.drift import DriftDetector
from connectors.framework.engine import LanePolicy, OutboundEngine
from connectors.framework.intake import Intake
from connectors.framework.kafka import (
    KafkaAudit,
    KafkaDeadLetters,
    KafkaDriftAlerts,
    KafkaPublisher,
    LevelsSource,
)
from connectors.framework.order_states import CancelFailures, OrderStatesSource
from connectors.framework.polling import Poller
from connectors.framework.refusals import ExceptionsView, RefusalActions, RefusalHandler
from connectors.framework.shipments import ChannelShipper, ShipmentsSource
from connectors.framework.state import ConnectorState
from connectors.framework.types import ChannelPusher, PushItem
from connectors.magento.inbound import MagentoInbound
from connectors.magento.mapping import MagentoMapping
from connectors.magento.wiring import build_magento, dead_letter_bad_orders
from connectors.mirakl.inbound import MiraklInbound
from connectors.mirakl.mapping import MiraklMapping
from connectors.mirakl.wiring import build_mirakl
from connectors.prestashop.inbound import PrestaInbound
from connectors.prestashop.mapping import PrestaMapping
from connectors.prestashop.wiring import build_prestashop
from connectors.price_runtime import PriceRuntime
from connectors.server import InboundChannel, create_app
from connectors.server import runner as receiver_runner
from connectors.shopify.cancel import ShopifyCanceller
from connectors.shopify.client import ShopifyClient
from connectors.shopify.inbound import ShopifyInbound
from connectors.shopify.limits import ShopifyLimits
from connectors.shopify.mapping import ShopifyMapping
from connectors.shopify.outbound import ShopifyPusher
from connectors.shopify.refusals import ShopifyRefusals
from connectors.shopify.ship import ShopifyShipper
from connectors.woocommerce.cancel import WooCanceller
from connectors.woocommerce.client import WooClient
from connectors.woocommerce.inbound import WooInbound
from connectors.woocommerce.limits import WooLimits
from connectors.woocommerce.mapping import WooMapping
from connectors.woocommerce.outbound import WooPusher
from connectors.woocommerce.refusals import WooRefusals
from connectors.woocommerce.ship import WooShipper
from schemas.codec import Codec
from schemas.times import now_ms
from streams.bundles.catalogue import load_catalogue
from streams.kernel import topics
from streams.kernel.audit import Send
from streams.kernel.settings import Settings

log = logging.getLogger("stockflow.connectors")

# one per channel kind
ChannelInbound = (
    ShopifyInbound
    | WooInbound
    | MagentoInbound
    | PrestaInbound
    | CdiscountInbound
    | AmazonInbound
    | FnacInbound
    | EmagInbound
    | MiraklInbound
)

DRAIN_TIMEOUT_S = 10.0
PROGRESS_EVERY_S = 30.0


@dataclass
class Channel:
    """One configured channel instance, wired: its inbound side, its pusher and what it
    does with the ledger's refusals."""

    instance: ChannelInstance
    inbound: ChannelInbound
    pusher: ChannelPusher
    refusals: RefusalActions
    canceller: ChannelCanceller
    acceptance: AcceptanceActions | None = None  # marketplaces that hold orders for the seller
    shipper: ChannelShipper | None = None  # confirms shipments (connectors.framework.shipments)


def build_channel(
    session: aiohttp.ClientSession,
    inst: ChannelInstance,
    publisher: KafkaPublisher | None = None,
    codec: Codec | None = None,
) -> Channel:
    secrets = [s.reveal() for s in inst.webhook_secrets]
    mapping = inst.mapping
    if isinstance(mapping, PrestaMapping):
        parts = build_prestashop(
            session,
            mapping,
            base_url=inst.base_url,
            webservice_key=inst.secret("webservice_key"),
            limits=inst.limits,
            orders=inst.orders,
            max_batch=inst.max_batch,
            publisher=publisher,
            codec=codec,
        )
        return Channel(inst, *parts)
    if isinstance(mapping, CdiscountMapping):
        cdiscount = build_cdiscount(
            session,
            mapping,
            base_url=inst.base_url,
            client_id=inst.secret("client_id"),
            client_secret=inst.secret("client_secret"),
            limits=inst.limits,
            max_batch=inst.max_batch,
            orders=inst.orders,
            publisher=publisher,
            codec=codec,
        )
        return Channel(
            inst,
            cdiscount.inbound,
            cdiscount.pusher,
            cdiscount.refusals,
            cdiscount.canceller,
            acceptance=cdiscount.acceptance,
            shipper=cdiscount.shipper,
        )
    if isinstance(mapping, AmazonMapping):
        amazon = build_amazon(
            session,
            mapping,
            base_url=inst.base_url,
            client_id=inst.secret("client_id"),
            client_secret=inst.secret("client_secret"),
            refresh_token=inst.secret("refresh_token"),
            limits=inst.limits,
            max_batch=inst.max_batch,
            orders=inst.orders,
            publisher=publisher,
            codec=codec,
        )
        return Channel(inst, *amazon)
    if isinstance(mapping, FnacMapping):
        fnac = build_fnac(
            session,
            mapping,
            base_url=inst.base_url,
            partner_id=inst.secret("partner_id"),
            shop_id=inst.secret("shop_id"),
            key=inst.secret("key"),
            limits=inst.limits,
            max_batch=inst.max_batch,
            orders=inst.orders,
            publisher=publisher,
            codec=codec,
        )
        return Channel(inst, *fnac)
    if isinstance(mapping, EmagMapping):
        emag = build_emag(
            session,
            mapping,
            base_url=inst.base_url,
            username=inst.secret("username"),
            password=inst.secret("password"),
            limits=inst.limits,
            max_batch=inst.max_batch,
            orders=inst.orders,
            publisher=publisher,
            codec=codec,
        )
        return Channel(inst, *emag)
    if isinstance(mapping, MiraklMapping):
        inbound, pusher, refusals, canceller, acceptance, shipper = build_mirakl(
            session,
            mapping,
            base_url=inst.base_url,
            api_key=inst.secret("api_key"),
            limits=inst.limits,
            max_batch=inst.max_batch,
            orders=inst.orders,
            publisher=publisher,
            codec=codec,
        )
        return Channel(inst, inbound, pusher, refusals, canceller, acceptance, shipper)
    if isinstance(mapping, ShopifyMapping):
        client = ShopifyClient(
            session,
            inst.base_url,
            inst.secret("token"),
            api_version=inst.api_version,
            limits=ShopifyLimits(inst.name, **dict(inst.limits)),
        )
        return Channel(
            inst,
            ShopifyInbound(
                mapping,
                secrets,
                client,
                max_age_s=inst.webhook_max_age_s,
                orders_mode=inst.orders,
            ),
            ShopifyPusher(client, mapping, max_batch=inst.max_batch),
            ShopifyRefusals(client, mapping),
            ShopifyCanceller(client, mapping),
            shipper=ShopifyShipper(client, mapping),
        )
    if isinstance(mapping, MagentoMapping):
        magento = build_magento(
            session,
            mapping,
            base_url=inst.base_url,
            token=inst.secret("token"),
            limits=inst.limits,
            orders=inst.orders,
            max_batch=inst.max_batch,
        )
        return Channel(inst, *magento)
    assert isinstance(mapping, WooMapping)
    woo = WooClient(
        session,
        inst.base_url,
        inst.secret("consumer_key"),
        inst.secret("consumer_secret"),
        limits=WooLimits(inst.name, **dict(inst.limits)),
    )
    return Channel(
        inst,
        WooInbound(mapping, secrets, woo, orders_mode=inst.orders),
        WooPusher(woo, mapping, max_batch=inst.max_batch),
        WooRefusals(woo, mapping),
        WooCanceller(woo, mapping),
        shipper=WooShipper(woo, mapping),
    )


def offer_level(
    engine: OutboundEngine, skus: Mapping[str, frozenset[str]], level: Mapping[str, Any]
) -> int:
    """Queue ``level`` on the lanes of the channels that map its SKU. The levels topic holds
    every SKU of the ledger; a channel that does not list one is not asked to hold it."""
    queued = 0
    for item in engine.items(level):
        if item.sku in skus[item.channel]:
            queued += engine.lanes[item.channel].offer(item)
    return queued


async def _log_refused(item: PushItem, error: str) -> None:
    log.warning(
        "push refused channel=%s sku=%s version=%d quantity=%d (drift; retried on the next "
        "change or reconciliation): %s",
        item.channel,
        item.sku,
        item.version,
        item.quantity,
        error,
    )


async def _every(interval_s: float, what: str, step: Callable[[], Awaitable[Any]]) -> None:
    while True:
        await asyncio.sleep(interval_s)
        try:
            await step()
        except Exception as exc:  # a channel outage must not stop the loop
            log.warning("%s failed, next in %.0fs: %s", what, interval_s, redact.describe(exc))


def receiver_app(
    intake: Intake,
    inbounds: list[InboundChannel],
    exceptions: ExceptionsView,
    audit: Send,
    acceptances: AcceptanceGate | None = None,
) -> web.Application:
    """Every route the connectors serve: the webhooks, health, metrics, the exceptions, the
    acceptances, the API document; ``audit`` sends the record of each write."""
    return create_app(
        intake, *inbounds, exceptions=exceptions, audit=audit, acceptances=acceptances
    )


def acceptance_gate(
    channels: Sequence[Channel],
    publisher: KafkaPublisher,
    state: ConnectorState,
    settings: Settings | None = None,
) -> AcceptanceGate | None:
    """The gate of the marketplaces that hold orders for the seller, handed to their
    inbounds (``acceptance_gate``); None when no configured channel does."""
    accepting = {c.instance.name: c.acceptance for c in channels if c.acceptance is not None}
    if not accepting:
        return None
    gate = AcceptanceGate(
        accepting,
        publisher,
        path=state.folder / "acceptance.json",
        bundles=load_catalogue(settings.config_path or None) if settings else None,
        publish_orders=publisher.publish_orders,
    )
    for c in channels:
        if c.acceptance is not None:
            c.inbound.acceptance_gate = gate  # type: ignore[union-attr]
    return gate


class Runtime:
    """The running process; ``run()`` returns the exit code."""

    def __init__(self, settings: Settings, config: ConnectorsConfig) -> None:
        self.settings = settings
        self.config = config
        self._stop = asyncio.Event()

    def request_stop(self, reason: str) -> None:
        log.info("connectors: %s received; draining and committing", reason)
        self._stop.set()

    async def run(self) -> int:
        from schemas.codec import codec_for

        codec = codec_for(self.settings)
        publisher = KafkaPublisher(self.settings, codec)
        state = ConnectorState.for_group(self.settings.state_dir, self.config.consumer_group)
        rebuild = not state.knows_lanes()
        if rebuild:
            log.info(
                "connectors: no acknowledged quantities saved in %s; the levels are read from "
                "the start of %s, so every SKU is pushed and reconciled again",
                state.folder,
                topics.STOCK_LEVELS.name,
            )
        async with aiohttp.ClientSession() as session:
            channels = [
                build_channel(session, inst, publisher, codec) for inst in self.config.channels
            ]
            engine = OutboundEngine(
                [c.pusher for c in channels],
                policies={
                    c.instance.name: LanePolicy(
                        interval_s=c.instance.sync.interval_s,
                        coalesce_s=c.instance.sync.coalesce_s,
                        max_attempts=c.instance.max_attempts,
                        dirty_retry_s=c.instance.dirty_retry_s,
                    )
                    for c in channels
                },
                dead_letter=KafkaDeadLetters(publisher, codec),
                refused=_log_refused,
                store=state,
            )
            drift = DriftDetector(
                engine,
                alert=KafkaDriftAlerts(publisher, codec),
                grace_s=self.config.drift_grace_s,
            )
            dead_letter_bad_orders([c.inbound for c in channels], publisher, codec)
            intake = Intake(
                publisher,
                observe=drift.observe,
                publish_orders=publisher.publish_orders,
                bundles=BundleExpander(load_catalogue(self.settings.config_path or None)),
                bundle_refusals=KafkaBundleRefusals(publisher, codec),
            )
            inbounds: list[InboundChannel] = [c.inbound for c in channels]
            exceptions = ExceptionsView()
            refusals = RefusalHandler(
                {c.instance.name: c.refusals for c in channels},
                {c.instance.name: c.instance.on_refusal for c in channels},
                exceptions,
            )
            audit = KafkaAudit(publisher, codec)
            gate = acceptance_gate(channels, publisher, state, self.settings)
            app = receiver_app(intake, inbounds, exceptions, audit, gate)
            for c in channels:  # eMAG calls back with GET ?order_id= (no signed webhooks)
                if isinstance(c.inbound, EmagInbound):
                    app.add_routes(
                        callback_routes(c.inbound, intake, c.instance.secret("callback_key"))
                    )
            tokens = protect(app, self.settings, [i.channel for i in inbounds])
            runner = receiver_runner(app)
            await runner.setup()
            bind = self.settings.connectors_bind
            site = web.TCPSite(runner, bind, self.settings.connectors_port)
            try:
                await site.start()
            except OSError as exc:
                await runner.cleanup()
                tokens.stop()
                log.error(
                    "connectors: cannot listen on %s:%d (%s); free the port or set "
                    "STOCKFLOW_CONNECTORS_PORT (and STOCKFLOW_CONNECTORS_BIND)",
                    bind,
                    self.settings.connectors_port,
                    exc,
                )
                return 2
            levels = LevelsSource(
                self.settings,
                codec,
                engine,
                group_id=self.config.consumer_group,
                offset_reset=self.settings.offset_reset,
                dead_letters=publisher,
                rebuild=rebuild,
            )
            decisions = DecisionsSource(
                self.settings,
                codec,
                refusals,
                group_id=f"{self.config.consumer_group}-decisions",
                dead_letters=publisher,
                gate=gate,
            )
            # orders cancelled here reach the channels whose orders the order book holds
            booked = {c.instance.name: c.canceller for c in channels if c.instance.orders == "book"}
            states = (
                OrderStatesSource(
                    self.settings,
                    codec,
                    CancelHandler(booked, failed=CancelFailures(publisher, codec)),
                    group_id=f"{self.config.consumer_group}-orders",
                    dead_letters=publisher,
                    gate=gate,
                )
                if booked
                else None
            )
            shipments = ShipmentsSource.build(
                self.settings, codec, channels, self.config, publisher
            )
            skus = {c.instance.name: c.instance.skus for c in channels}
            prices = PriceRuntime.build(self.settings, self.config, channels, publisher, codec)
            if prices is not None:
                prices.start()
            engine.start()
            consume = asyncio.create_task(self._consume(levels, engine, skus), name="levels")
            background = [
                *self._pollers(channels, intake, state),
                asyncio.create_task(
                    _every(
                        self.config.reconcile_interval_s,
                        "reconciliation",
                        lambda: self._reconcile(drift, channels),
                    ),
                    name="reconcile",
                ),
                asyncio.create_task(self._progress(levels, engine), name="progress"),
            ]
            if gate is not None:
                background.append(asyncio.create_task(gate.run(), name="acceptance"))
            decide = asyncio.create_task(decisions.run(), name="decisions")
            cancel = asyncio.create_task(
                states.run() if states is not None else asyncio.sleep(0), name="order-states"
            )
            ship = asyncio.create_task(
                shipments.run() if shipments is not None else asyncio.sleep(0), name="shipments"
            )
            log.info(
                "connectors: receiving webhooks at http://%s:%d/webhooks/{%s}; levels "
                "group=%s; channels %s",
                bind,
                self.settings.connectors_port,
                ",".join(c.instance.name for c in channels),
                self.config.consumer_group,
                ", ".join(
                    f"{c.instance.name}({c.instance.kind} {c.instance.base_url}, "
                    f"{len(c.instance.skus)} SKUs)"
                    for c in channels
                ),
            )
            stop_wait = asyncio.create_task(self._stop.wait())
            await asyncio.wait([stop_wait, consume], return_when=asyncio.FIRST_COMPLETED)
            failed = consume.done() and consume.exception() is not None
            if failed:
                log.error("connectors: levels consumer failed", exc_info=consume.exception())
            # Shutdown, in the order of the module docstring.
            await runner.cleanup()
            tokens.stop()
            decisions.stop()
            if states is not None:
                states.stop()
            if shipments is not None:
                shipments.stop()
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(decide, DRAIN_TIMEOUT_S)  # ends after its poll
            if decide.done():
                decisions.close()  # commits what was acted on
            with contextlib.suppress(Exception):
                await asyncio.wait_for(cancel, DRAIN_TIMEOUT_S)  # ends after its poll
            if cancel.done() and states is not None:
                states.close()  # commits what was acted on
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ship, DRAIN_TIMEOUT_S)
            if ship.done() and shipments is not None:
                shipments.close()
            if prices is not None:
                await prices.stop()
            levels.stop()
            with contextlib.suppress(Exception):
                await consume
            try:
                await engine.drained(DRAIN_TIMEOUT_S)
            except TimeoutError:
                log.warning(
                    "connectors: lanes not drained in %.0fs; not committing", DRAIN_TIMEOUT_S
                )
            committed = levels.commit_if_idle()
            levels.close()
            await drift.close()
            await engine.stop()
            publisher.close()
            stop_wait.cancel()
            log.info(
                "connectors: stopped; levels positions %s committed=%s", levels.positions, committed
            )
            return 1 if failed else 0

    async def _consume(
        self, levels: LevelsSource, engine: OutboundEngine, skus: Mapping[str, frozenset[str]]
    ) -> None:
        async for level in levels.levels():
            offer_level(engine, skus, level)

    def _pollers(
        self, channels: list[Channel], intake: Intake, state: ConnectorState
    ) -> list[asyncio.Task[None]]:
        tasks = []
        for c in channels:
            name = c.instance.name
            if c.instance.poll_interval_s <= 0:
                continue
            saved = state.checkpoint(name)
            # resume where the last poll ended, however long we were down; a first start
            # looks back poll_lookback_s
            lookback_ms = int(c.instance.poll_lookback_s * 1000)
            start = saved if saved is not None else now_ms() - lookback_ms
            log.info("poll %s from %s (%s)", name, start, "saved" if saved else "lookback")
            poller = Poller(
                c.inbound,
                intake,
                checkpoint_ms=start,
                interval_s=c.instance.poll_interval_s,
                save=lambda ms, name=name: state.save_checkpoint(name, ms),  # type: ignore[misc]
            )
            tasks.append(asyncio.create_task(self._poll(poller), name=f"poll-{c.instance.name}"))
        return tasks

    async def _poll(self, poller: Poller) -> None:
        while True:
            try:
                await poller.run()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # rejected credentials, bad payload: say so, keep trying
                log.warning("poll %s failed: %s", poller.feed.channel, redact.describe(exc))
                await asyncio.sleep(poller.interval_s)

    async def _reconcile(self, drift: DriftDetector, channels: list[Channel]) -> None:
        for c in channels:
            drifting = await drift.reconcile(c.instance.name)
            log.info("reconciliation channel=%s drifting=%d", c.instance.name, drifting)

    async def _progress(self, levels: LevelsSource, engine: OutboundEngine) -> None:
        while True:
            await asyncio.sleep(PROGRESS_EVERY_S)
            log.info(
                "progress levels_read=%d positions=%s %s",
                levels.consumed,
                levels.positions,
                " ".join(
                    f"{name}: pending={len(lane.pending)} acked={len(lane.acked)}"
                    for name, lane in engine.lanes.items()
                ),
            )


def run_connectors(settings: Settings) -> int:
    """``stockflow connectors serve``: run until SIGTERM/SIGINT; 2 on a bad configuration."""
    from connectors.config import ConnectorConfigError, load_connectors_config

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    redact.install_log_filter()  # no credential in any line, whatever printed it
    try:
        config = load_connectors_config()
    except ConnectorConfigError as exc:
        print(f"stockflow connectors: bad configuration: {exc}", file=sys.stderr)
        return 2

    async def main() -> int:
        runtime = Runtime(settings, config)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, runtime.request_stop, sig.name)
        return await runtime.run()

    return asyncio.run(main())
