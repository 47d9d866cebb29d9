"""`stockflow web`: the ordering page and the purchasing service in one process.

The service (``streams.purchasing.service.PurchasingService``) starts with the page's
application and plans on its schedule; the till endpoint of ``streams.purchasing.api`` is
mounted beside the pages. Run either ``stockflow web`` or ``stockflow replenish run`` in a
deployment, not both: the service is the one owner of the proposals.
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
from streams.notifications.page import recent_page_alerts
from streams.web.app import make_app
from streams.web.users import UsersError, UserStore, users_path

log = logging.getLogger("stockflow.web")


def build(settings: Settings, config: Any = None, **service_options: Any) -> web.Application:
    """The page with the purchasing service attached (started and stopped with the app,
    planning on its schedule) and the till's trigger route; ``config`` defaults to the
    ``replenishment:`` part of STOCKFLOW_CONFIG, ``service_options`` go to the service."""
    from streams.purchasing import api
    from streams.purchasing.run import attach, load_config
    from streams.purchasing.service import PurchasingService

    config = config if config is not None else load_config(settings)
    service = PurchasingService(settings, config, **service_options)
    app = make_app(service, settings, alerts=page_alerts(settings))
    attach(app, service)
    api.add_routes(app, service)
    return app


def page_alerts(settings: Settings) -> Any:
    """The alerts the notifier routed to the page (ClickHouse's alert_deliveries)."""

    def recent(limit: int) -> list[dict[str, Any]]:
        return list(recent_page_alerts(limit, settings=settings))

    return recent


async def serve(settings: Settings, app: web.Application, stop: asyncio.Event) -> None:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.web_bind, settings.web_port)
    try:
        await site.start()
        print(
            f"stockflow web: the ordering page at http://{settings.web_bind}:{settings.web_port}/",
            file=sys.stderr,
        )
        await stop.wait()
    finally:
        await runner.cleanup()  # the app's cleanup stops the purchasing service
        log.info("web: stopped, the purchasing service with it")


def run_web(settings: Settings) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    users = UserStore(users_path(settings))
    try:
        if not users.all():
            print(
                f"stockflow web: no user in {users.path}; add one with "
                "`stockflow web user add NAME --role admin`",
                file=sys.stderr,
            )
            return 2
    except UsersError as exc:
        print(f"stockflow web: {exc}", file=sys.stderr)
        return 2

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        await serve(settings, build(settings), stop)

    try:
        asyncio.run(main())
    except (OSError, ValueError) as exc:
        print(f"stockflow web: {exc}", file=sys.stderr)
        return 2
    return 0
