"""Running the purchasing service: headless (`stockflow replenish run [--once]`) or inside
another aiohttp application (`stockflow web`, through :func:`attach`).

The schedule plans every location every ``plan_every_seconds`` of the configuration (the
first plan at start); receipts and lateness are followed by the service itself. SIGTERM or
SIGINT stop it cleanly: the plan under way finishes its current change, the Kafka clients
are closed, the exit code is 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from typing import Any

from aiohttp import web

from streams.kernel.settings import Settings
from streams.purchasing.service import PurchasingService
from streams.replenishment.config import load_replenishment
from streams.replenishment.model import ReplenishmentConfig

log = logging.getLogger("stockflow.purchasing")

SERVICE_KEY = web.AppKey("purchasing_service", PurchasingService)


def load_config(settings: Settings) -> ReplenishmentConfig:
    """The ``replenishment:`` part of ``STOCKFLOW_CONFIG`` (an empty configuration without
    one: nothing is planned)."""
    if not settings.config_path:
        log.warning("purchasing: STOCKFLOW_CONFIG is not set: no supplier, nothing planned")
        return ReplenishmentConfig()
    return load_replenishment(settings.config_path)


async def schedule(service: PurchasingService, every_s: float, stop: asyncio.Event) -> None:
    """Plan every location now and then every ``every_s`` until ``stop`` is set; a failed
    plan is logged and tried again at the next tick."""
    while not stop.is_set():
        try:
            made = await service.plan()
            sent = sum(1 for p in made if p["status"] == "sent")
            log.info("purchasing: plan made %d proposal(s), %d sent automatically", len(made), sent)
        except Exception as exc:
            log.warning("purchasing: plan failed (%s); next try in %.0f s", exc, every_s)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every_s)


async def run(
    settings: Settings,
    config: ReplenishmentConfig,
    *,
    once: bool,
    stop: asyncio.Event | None = None,
    **service_options: Any,
) -> int:
    stop = stop if stop is not None else asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    service = PurchasingService(settings, config, **service_options)
    await service.start()
    log.info(
        "purchasing: started with %d proposal(s), %d supplier(s)",
        len(service.proposals()),
        len(config.suppliers),
    )
    try:
        if once:
            made = await service.plan()
            await service.check_lateness()
            for p in made:
                print(
                    f"{p['proposal_id']}  {p['supplier']}  {p['location']}  {p['status']}  "
                    f"total {p['total']} {p['currency']}  lines {len(p['lines'])}"
                )
            print(f"{len(made)} proposal(s)", file=sys.stderr)
        else:
            await schedule(service, float(config.plan_every_seconds), stop)
    finally:
        await service.stop()
        log.info("purchasing: stopped")
    return 0


def run_command(settings: Settings, *, once: bool) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        config = load_config(settings)
    except (ValueError, OSError) as exc:
        print(f"stockflow replenish run: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(run(settings, config, once=once))


def attach(app: web.Application, service: PurchasingService, *, plan: bool = True) -> None:
    """Start ``service`` with ``app`` (and its planning schedule when ``plan``), stop it on
    the app's cleanup; handlers find it as ``request.app[SERVICE_KEY]``."""
    app[SERVICE_KEY] = service
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []

    async def starting(_: web.Application) -> None:
        await service.start()
        if plan:
            every = float(service.config.plan_every_seconds)
            tasks.append(asyncio.create_task(schedule(service, every, stop)))

    async def stopping(_: web.Application) -> None:
        stop.set()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await service.stop()

    app.on_startup.append(starting)
    app.on_cleanup.append(stopping)
