"""The ordering page under test: served from a thread of the test process, a real local SMTP
server (aiosmtpd) receiving purchase orders, a stand-in email sender for purchase orders,
and headless Debian Chromium driven by Selenium."""

from __future__ import annotations

import asyncio
import email
import email.policy
import threading
from collections.abc import Coroutine
from email.message import EmailMessage
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web
from aiosmtpd.controller import Controller

T = TypeVar("T")
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


class PageServer:
    """An aiohttp application served on its own event loop in a thread (its startup hooks,
    the purchasing service's start included, run there)."""

    def __init__(self, app: web.Application, port: int) -> None:
        self.app, self.port = app, port
        self.url = f"http://127.0.0.1:{port}"
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._runner = web.AppRunner(app, access_log=None)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> None:
        self._thread.start()

        async def up() -> None:
            await self._runner.setup()
            await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

        self.call(up(), timeout=120)

    def stop(self) -> None:
        try:
            self.call(self._runner.cleanup())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(30)
            self.loop.close()


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        return "250 Message accepted for delivery"


class SmtpServer:
    """A real SMTP server on a loopback port (aiosmtpd), keeping what it receives."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._inbox = _Inbox()
        self._controller = Controller(self._inbox, hostname="127.0.0.1", port=port)

    @property
    def messages(self) -> list[EmailMessage]:
        return self._inbox.messages

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()


def chromium(profile: Path, *, width: int = 390, height: int = 844) -> Any:
    """Headless Debian Chromium through Debian's chromedriver, with a fresh profile and
    nothing fetched from the network but the page."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--no-first-run",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        f"--window-size={width},{height}",
    ):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)


def viewport(browser: Any, width: int, height: int, *, mobile: bool) -> None:
    """The page's viewport at ``width`` x ``height`` CSS pixels (headless Chromium's window
    is at least 500 px wide, so a phone is emulated through the DevTools protocol)."""
    browser.set_window_size(max(width, 500), height)
    browser.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile},
    )
