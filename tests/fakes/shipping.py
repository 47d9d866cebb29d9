"""The shipping service run in a thread of the test process, against the real stack, with
its label route on a free port guarded by an in-memory token store."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, TypeVar

import aiohttp
from aiohttp import web

from connectors.carriers.base import Carrier
from connectors.carriers.config import build_carriers
from streams.kernel.access.store import TokenStore
from streams.kernel.access.tokens import new_token
from streams.kernel.settings import Settings
from streams.shipping.config import ShippingConfig
from streams.shipping.service import AddressBook, ShippingService
from streams.shipping.web import add_routes
from tests.support.ports import free_port

T = TypeVar("T")


class ShippingThread:
    def __init__(
        self,
        settings: Settings,
        config: ShippingConfig,
        carriers: Mapping[str, Carrier] | None = None,
        addresses: AddressBook | None = None,
        clock: Callable[[], int] | None = None,
    ) -> None:
        """``carriers`` None: built from ``config.carriers`` in the service's own loop;
        ``clock``: the service's time for the pickups' cut-offs (epoch ms)."""
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.config = config
        self.service = ShippingService(
            settings,
            config,
            carriers or {},
            label_base_url=self.base,
            addresses=addresses,
            **({"clock": clock} if clock is not None else {}),
        )
        self._build = carriers is None
        self.tokens = TokenStore()
        self.token, record = new_token("packer", ["orders:read"])
        self.tokens.apply(record)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="shipping", daemon=True)

    def __enter__(self) -> ShippingThread:
        self._thread.start()
        if not self._started.wait(120):
            raise AssertionError("the shipping service did not start in 120 s")
        if self.error is not None:
            raise self.error
        return self

    def __exit__(self, *_: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)

    def _run(self) -> None:
        asyncio.run(self._with_session())

    async def _with_session(self) -> None:
        async with aiohttp.ClientSession() as session:
            if self._build:
                built = build_carriers(self.config.carriers, session)
                self.service.carriers = {c.name: c for c in built}
            await self._main()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        app = web.Application()
        add_routes(app, self.service, self.tokens)
        self.tokens.mark_fresh(time.monotonic() + 3600)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.port).start()
        try:
            await self.service.start()
        except BaseException as exc:
            self.error = exc
            self._started.set()
            await runner.cleanup()
            return
        self._started.set()
        try:
            await self.service.run(self._stop)
        finally:
            await self.service.stop()
            await runner.cleanup()

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` in the service's loop (between its rounds) and return its result."""
        assert self._loop is not None, "not started"
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(60)

    def shipments(self) -> dict[str, dict[str, Any]]:
        return dict(self.service.shipments)
