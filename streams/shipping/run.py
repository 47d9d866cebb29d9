"""Running the shipping service (`stockflow ship run`): the service and its label route.

The carriers are built from the ``carriers:`` section of ``STOCKFLOW_CONFIG`` (one client per
account, one HTTP session). With ``STOCKFLOW_CONNECTORS_CONFIG`` set, each order's full
destination is asked of its channel at label time (:mod:`connectors.address_book`);
without it the carriers get the country and postal code only. SIGTERM or SIGINT stop it
cleanly: the shipment under way finishes, the Kafka clients and the HTTP session are
closed, the exit code is 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Mapping

import aiohttp
from aiohttp import web

from connectors.address_book import build_address_book
from connectors.carriers.base import Carrier
from connectors.carriers.config import build_carriers
from connectors.carriers.destinations import ChannelAddresses
from connectors.config import ConnectorConfigError, ConnectorsConfig, load_connectors_config
from connectors.config import config_path as connectors_config_path
from streams.kernel.settings import Settings
from streams.shipping.config import ShippingConfig, ShippingConfigError, load_shipping
from streams.shipping.service import AddressBook, ShippingService
from streams.shipping.web import add_routes

log = logging.getLogger("stockflow.shipping")


def label_base_url(settings: Settings) -> str:
    return f"http://{settings.ship_bind}:{settings.ship_port}"


async def run(
    settings: Settings,
    config: ShippingConfig,
    carriers: Mapping[str, Carrier],
    *,
    stop: asyncio.Event | None = None,
    addresses: AddressBook | None = None,
) -> int:
    stop = stop if stop is not None else asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    service = ShippingService(
        settings,
        config,
        carriers,
        label_base_url=label_base_url(settings),
        addresses=addresses,
    )
    app = web.Application()
    add_routes(app, service)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, settings.ship_bind, settings.ship_port).start()
    await service.start()
    log.info("shipping: labels on %s", label_base_url(settings))
    try:
        await service.run(stop)
    finally:
        await service.stop()
        await runner.cleanup()
        log.info("shipping: stopped (%s)", service.counts)
    return 0


async def _main(
    settings: Settings, config: ShippingConfig, channels: ConnectorsConfig | None
) -> int:
    async with aiohttp.ClientSession() as session:
        carriers = {c.name: c for c in build_carriers(config.carriers, session)}
        if not carriers:
            log.warning("shipping: no carrier account under carriers.accounts: nothing ships")
        addresses: ChannelAddresses | None = None
        if channels is None:
            log.warning(
                "shipping: STOCKFLOW_CONNECTORS_CONFIG is not set: carriers get the country "
                "and postal code only"
            )
        else:
            addresses = build_address_book(session, channels)
            log.info(
                "shipping: destinations asked of %s",
                ", ".join(sorted(addresses.readers)) or "no channel",
            )
        return await run(settings, config, carriers, addresses=addresses)


def run_command(settings: Settings) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if not settings.config_path:
        print("stockflow ship run: STOCKFLOW_CONFIG is not set (carriers:)", file=sys.stderr)
        return 2
    try:
        config = load_shipping(settings.config_path)
    except (ShippingConfigError, OSError) as exc:
        print(f"stockflow ship run: {exc}", file=sys.stderr)
        return 2
    channels = None
    if connectors_config_path():
        try:
            channels = load_connectors_config()
        except ConnectorConfigError as exc:
            print(f"stockflow ship run: {exc}", file=sys.stderr)
            return 2
    return asyncio.run(_main(settings, config, channels))
