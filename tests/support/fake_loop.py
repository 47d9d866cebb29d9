"""Channel fakes served from their own event loop thread, for end-to-end tests that drive
them from the test's thread: the fakes' state is touched only from that loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")


class FakesOnLoop:
    """``fakes`` (each with ``start()`` and ``close()`` coroutines) on one loop thread."""

    def __init__(self, *fakes: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._fakes = fakes

    def start(self) -> None:
        self._thread.start()
        for fake in self._fakes:
            self.run(fake.start())

    def stop(self) -> None:
        try:
            for fake in reversed(self._fakes):
                self.run(fake.close(), timeout=10)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn: Callable[[], T], timeout: float = 30) -> T:
        """``fn()`` run on the fakes' loop; its result (or exception) in the caller's thread."""
        done: Future[T] = Future()

        def invoke() -> None:
            try:
                done.set_result(fn())
            except Exception as exc:  # handed to the caller's thread
                done.set_exception(exc)

        self.loop.call_soon_threadsafe(invoke)
        return done.result(timeout)
