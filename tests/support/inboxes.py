"""Real local receivers for outgoing notifications: an SMTP server (aiosmtpd) and a webhook
receiver (aiohttp), each in its own thread on a free loopback port, with switches to
misbehave for a while (``fail_next(3, status=503)``)."""

from __future__ import annotations

import asyncio
import email
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.support.ports import free_port


@dataclass
class Inbox:
    """What the SMTP server accepted; ``fail_next(n)`` answers 451 to the next n messages."""

    messages: list[Message] = field(default_factory=list)
    refused: int = 0
    _fail: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def fail_next(self, n: int) -> None:
        with self._lock:
            self._fail = n

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        with self._lock:
            if self._fail > 0:
                self._fail -= 1
                self.refused += 1
                return "451 4.3.0 try again later"
            content = envelope.content
            raw = content if isinstance(content, bytes) else str(content).encode()
            self.messages.append(email.message_from_bytes(raw))
        return "250 OK"

    def wait(self, n: int, timeout: float = 30.0) -> list[Message]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        return list(self.messages)


@contextmanager
def smtp_server() -> Iterator[tuple[int, Inbox]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, inbox
    finally:
        controller.stop()


@dataclass
class Hooks:
    """What the webhook receiver got: every request, and the JSON bodies it accepted (2xx)."""

    requests: int = 0
    accepted: list[dict[str, Any]] = field(default_factory=list)
    _fail: list[int] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def fail_next(self, n: int, status: int = 503) -> None:
        with self._lock:
            self._fail = [status] * n

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        with self._lock:
            self.requests += 1
            if self._fail:
                return web.Response(status=self._fail.pop(0), text="not now")
            self.accepted.append(json.loads(body))
        return web.Response(status=200, text="ok")

    def wait(self, n: int, timeout: float = 30.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.accepted) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        return list(self.accepted)


@contextmanager
def webhook_receiver() -> Iterator[tuple[str, Hooks]]:
    """A receiver at http://127.0.0.1:<port>/hook, served from its own thread and loop."""
    hooks = Hooks()
    port = free_port()
    loop = asyncio.new_event_loop()
    app = web.Application()
    app.router.add_post("/hook", hooks.handle)
    runner = web.AppRunner(app)
    started = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
        started.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert started.wait(10), "webhook receiver did not start"
    try:
        yield f"http://127.0.0.1:{port}/hook", hooks
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
