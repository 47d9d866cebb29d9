"""Running the wave service: `stockflow waves plan --location L` (one plan, printed) or
`stockflow waves run` (the HTTP API on ``STOCKFLOW_WAVES_PORT`` and a plan of every
location every ``fulfilment.plan_every_seconds``). SIGTERM or SIGINT stop it cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys

from aiohttp import web

from streams.fulfilment.config import FulfilmentConfig, FulfilmentConfigError, load_fulfilment
from streams.fulfilment.model import Wave
from streams.kernel.settings import Settings
from streams.picking.api import add_routes
from streams.picking.service import WaveService

log = logging.getLogger("stockflow.waves")


def load_config(settings: Settings) -> FulfilmentConfig:
    if not settings.config_path:
        log.warning("waves: STOCKFLOW_CONFIG is not set: default wave rules, no bins")
        return FulfilmentConfig()
    return load_fulfilment(settings.config_path)


def describe(wave: Wave, folder: object) -> str:
    lines = sum(len(o.lines) for o in wave.orders)
    units = sum(ln.qty for o in wave.orders for ln in o.lines)
    carrier = f"{wave.carrier or '-'}" + (f" {wave.cutoff}" if wave.cutoff else "")
    return (
        f"{wave.wave_id}  {wave.location}  {carrier}  {wave.kind}"
        f"{'  zone ' + wave.zone if wave.zone else ''}  orders {len(wave.orders)}  "
        f"lines {lines}  units {units}  {folder}"
    )


async def schedule(service: WaveService, every_s: float, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            made = await service.plan()
            if made:
                log.info("waves: %d wave(s) planned", len(made))
        except Exception as exc:
            log.warning("waves: plan failed (%s); next try in %.0f s", exc, every_s)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every_s)


async def run(
    settings: Settings,
    config: FulfilmentConfig,
    *,
    once: bool,
    location: str | None = None,
    port: int | None = None,
    stop: asyncio.Event | None = None,
) -> int:
    stop = stop if stop is not None else asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    service = WaveService(settings, config)
    await service.start()
    try:
        if once:
            made = await service.plan(location)
            for wave in made:
                print(describe(wave, service.folder(wave)))
            print(f"{len(made)} wave(s)", file=sys.stderr)
            return 0
        app = web.Application()
        add_routes(app, service)
        runner = web.AppRunner(app)
        await runner.setup()
        bind = settings.worker_web_bind
        await web.TCPSite(runner, bind, port if port is not None else settings.waves_port).start()
        log.info("waves: API on %s:%s", bind, port if port is not None else settings.waves_port)
        try:
            await schedule(service, float(config.plan_every_seconds), stop)
        finally:
            await runner.cleanup()
    finally:
        await service.stop()
    return 0


def run_command(
    settings: Settings, *, once: bool, location: str | None = None, port: int | None = None
) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        config = load_config(settings)
    except FulfilmentConfigError as exc:
        print(f"stockflow waves: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(run(settings, config, once=once, location=location, port=port))
