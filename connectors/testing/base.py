"""What every fake channel shares: an aiohttp server on a random loopback port, a log of
every write, misbehaviour switches and a webhook sender.

Switches (all take effect on the next API request):

- ``fail_next(n, status=429, retry_after=2)``: the next ``n`` requests fail with ``status``;
  ``after_apply=True`` applies the request first and then answers with the failure (a lost
  response), which is what idempotency keys exist for.
- ``storm(seconds, retry_after=1)``: every request is throttled for ``seconds``.
- ``slow(ms, jitter_ms=0)``: every request waits ``ms`` plus a random 0..``jitter_ms``.
- ``fail_next(n, status=302)``: a redirect to the same URL (``n`` ≥ 11 is a redirect loop,
  which aiohttp reports as ``TooManyRedirects`` carrying the request's headers).
- ``down(seconds, status=500)``: every request fails with ``status`` for ``seconds``.
- ``clock_offset_s``: the fake's clock (order times, webhook times) runs this far from the
  real one, so a test can simulate an outage of an hour without waiting for it.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

import aiohttp
from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Write:
    """One stock write the fake applied, in the order it applied them."""

    at: float  # time.monotonic()
    item: str  # the channel's id of what was written (inventory item@location, product id)
    sku: str
    quantity: int
    key: str | None = None  # idempotency key / reference the client sent, if any


@dataclass(frozen=True)
class Failure:
    status: int
    retry_after: float | None
    after_apply: bool


@dataclass
class SentWebhook:
    topic: str
    body: bytes
    headers: dict[str, str]
    statuses: list[int] = field(default_factory=list)


class FakeChannel:
    """Base of the fakes. Subclasses add routes in ``routes()`` and error shapes."""

    api_prefix = "/"

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, seed: int | None = None) -> None:
        self.host = host
        self.port = port
        self.rng = random.Random(seed)
        self.writes: list[Write] = []
        self.requests: list[tuple[str, str]] = []
        self.webhooks: list[SentWebhook] = []
        self._failures: deque[Failure] = deque()
        self._storm_until = 0.0
        self._down_until = 0.0
        self._down_status = 500
        self.clock_offset_s = 0.0
        self.failed_requests = 0  # answered with the down() status
        self._storm_retry_after = 1.0
        self._slow_ms = 0
        self._jitter_ms = 0
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self.app = web.Application(middlewares=[self._misbehave])
        self.app.add_routes(self.routes())

    # ---- lifecycle -------------------------------------------------------------------
    def routes(self) -> list[web.RouteDef]:
        raise NotImplementedError

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        self._session = aiohttp.ClientSession()

    async def close(self) -> None:
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # ---- switches --------------------------------------------------------------------
    def fail_next(
        self,
        n: int = 1,
        status: int = 429,
        retry_after: float | None = None,
        *,
        after_apply: bool = False,
    ) -> None:
        for _ in range(n):
            self._failures.append(Failure(status, retry_after, after_apply))

    def storm(self, seconds: float, retry_after: float = 1.0) -> None:
        self._storm_until = time.monotonic() + seconds
        self._storm_retry_after = retry_after

    def down(self, seconds: float, status: int = 500) -> None:
        """Every API request fails with ``status`` for the next ``seconds`` (an outage)."""
        self._down_until = time.monotonic() + seconds
        self._down_status = status

    def now_iso(self, offset_s: float = 0.0, *, gmt_naive: bool = False) -> str:
        """The fake's own now (shifted by ``clock_offset_s``), in the channel's style."""
        return iso_now(self.clock_offset_s + offset_s, gmt_naive=gmt_naive)

    def slow(self, ms: int, jitter_ms: int = 0) -> None:
        self._slow_ms = ms
        self._jitter_ms = jitter_ms

    # ---- error shapes (overridden per channel) ---------------------------------------
    def throttled(self, retry_after: float) -> web.Response:
        return web.json_response(
            {"error": "throttled"}, status=429, headers={"Retry-After": str(retry_after)}
        )

    def failure(self, status: int, retry_after: float | None) -> web.Response:
        if status == 429:
            return self.throttled(1.0 if retry_after is None else retry_after)
        headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
        return web.json_response({"error": "failure"}, status=status, headers=headers)

    @web.middleware
    async def _misbehave(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self.requests.append((request.method, request.path))
        delay = self._slow_ms + (self.rng.randint(0, self._jitter_ms) if self._jitter_ms else 0)
        if delay:
            await asyncio.sleep(delay / 1000)
        if time.monotonic() < self._storm_until:
            return self.throttled(self._storm_retry_after)
        if time.monotonic() < self._down_until:
            self.failed_requests += 1
            return self.failure(self._down_status, None)
        failure = self._failures.popleft() if self._failures else None
        if failure is not None and 300 <= failure.status < 400:
            raise web.HTTPFound(request.path_qs)
        if failure is not None and not failure.after_apply:
            return self.failure(failure.status, failure.retry_after)
        response = await handler(request)
        if failure is not None:
            return self.failure(failure.status, failure.retry_after)
        return response

    # ---- webhooks --------------------------------------------------------------------
    async def post(self, target: str, body: bytes, headers: dict[str, str]) -> int:
        assert self._session is not None, "start the fake first"
        try:
            async with self._session.post(target, data=body, headers=headers) as response:
                await response.read()
                return response.status
        except aiohttp.ClientError:
            return 599

    def in_background(self, coro: Awaitable[Any]) -> None:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def settle(self) -> None:
        """Wait for background deliveries (echo webhooks) to finish."""
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)


def iso_now(offset_s: float = 0.0, *, gmt_naive: bool = False) -> str:
    """Now as ISO 8601 (Shopify style with offset, or Woo ``*_gmt`` style without one)."""
    from datetime import UTC, datetime, timedelta

    moment = datetime.now(tz=UTC) + timedelta(seconds=offset_s)
    if gmt_naive:
        return moment.replace(tzinfo=None).isoformat(timespec="seconds")
    return moment.isoformat(timespec="seconds")


async def serve_forever(fake: FakeChannel, banner: str) -> None:
    async with fake:
        print(f"{banner} listening on {fake.url}", flush=True)
        await asyncio.Event().wait()
