"""The ordering page in a real browser on the real stack: Debian's headless Chromium driven
by Selenium, the page and the purchasing service as `stockflow web` builds them, Kafka, a
ledger worker, and a local SMTP server receiving the purchase order.

The service plans with a test planner (one fixed proposal: the page is under test, not the
plan). It sends with the project's purchase-order sender once the documents module is
installed, and until then with a stand-in email sender (tests/support/web.py) that mails
the order through the same SMTP settings with a PDF attached.

Screenshots (phone 390x844, desktop 1280x800) go to $STOCKFLOW_ARTEFACTS or the test's tmp
folder; with STOCKFLOW_UPDATE_SCREENSHOT=1 the desktop one also replaces
streams/web/screenshots/ordering-page.png (the README's picture).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Collection
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pyotp
import pytest

from schemas.codec import single_object_codec
from streams.kernel.settings import PROJECT_ROOT, Secret, Settings
from streams.purchasing.sending import send_purchase_order
from streams.replenishment.model import ReplenishmentConfig, Supplier, SupplierItem
from streams.web.run import build
from streams.web.users import UserStore
from tests.integration.sink_support import (
    drop_database,
    end_offsets,
    running_sink,
    set_group_offsets,
    sink_settings,
)
from tests.support.kafka import wait_for
from tests.support.ports import free_port
from tests.support.processes import track
from tests.support.web import (
    CHROMEDRIVER,
    CHROMIUM,
    PageServer,
    SmtpServer,
    chromium,
    viewport,
)
from tests.support.worker import WorkerProcess

pytestmark = pytest.mark.integration

PASSWORD = "a long enough password"
PHONE, DESKTOP = (390, 844), (1280, 800)


def planned(supplier: str, store: str, skus: tuple[str, str]) -> dict[str, Any]:
    """A proposal as the planner makes it: two lines of the supplier for the store."""

    def line(sku: str, qty: int, available: int) -> dict[str, Any]:
        return {
            "sku": sku,
            "supplier_sku": f"ACME-{sku.upper()}",
            "qty": qty,
            "proposed_qty": qty,
            "pack_size": 6,
            "moq": 12,
            "unit_cost": 2450,
            "policy": "reorder_point",
            "available": available,
            "incoming": 0,
            "projected_available": available - 8,
            "forecast_lead_time": 8.4,
            "safety_stock": 5,
            "forecast_method": "ets_weekly",
            "reason": f"projected {available} - 8.4 over 5 days below reorder point 13",
            "last_order_qty": 18,
            "received_qty": 0,
            "cancelled_qty": 0,
        }

    lines = [line(skus[0], 24, 3), line(skus[1], 12, 7)]
    return {
        "proposal_id": f"PO-{supplier}-{store}",
        "version": 1,
        "status": "proposed",
        "supplier": supplier,
        "location": store,
        "currency": "EUR",
        "total": sum(x["qty"] * x["unit_cost"] for x in lines),
        "lines": lines,
        "auto": False,
        "review_reason": "total 882.00 EUR above the auto-send limit 500.00 EUR",
        "send_via": "email",
        "send_ref": None,
        "expected_on": (date.today() + timedelta(days=5) - date(1970, 1, 1)).days,
        "by": "planner",
        "note": None,
        "created_at": 0,
        "updated_at": 0,
    }


@pytest.fixture
def worker(local_stack: Settings) -> Any:
    process = WorkerProcess(
        f"page-{uuid.uuid4().hex[:8]}", free_port(), local_stack.state_dir / "logs"
    )
    process.start()
    yield process
    process.stop()


def artefacts(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("STOCKFLOW_ARTEFACTS") or tmp_path / "artefacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_an_approver_logs_in_with_totp_edits_a_line_and_approves_in_a_real_browser(
    local_stack: Settings, worker: WorkerProcess, tmp_path: Path
) -> None:
    """Given the page and the purchasing service on the real stack, a proposal of 24 + 12
    units for a store, and an approver with a TOTP secret, when the approver logs in with
    password and code in headless Chromium (phone-sized), opens the proposal, sets the
    first line to 25 (refused: packs of 6), then to 30, and approves, then the page says it
    was sent, the local SMTP server received the order for the supplier with the PDF
    attached, the ledger's incoming at the store rose to 30 and 12 (GET /v1/stock of the
    worker), and the SKU's screen opens with its chart; screenshots at phone and desktop
    widths are kept."""
    assert CHROMIUM.exists() and CHROMEDRIVER.exists(), (
        "the browser test needs Debian's chromium and chromium-driver "
        "(deploy/local/bootstrap.sh installs them)"
    )
    run = uuid.uuid4().hex[:6]  # a new store and SKUs: the proposals topic keeps earlier runs
    supplier, store = "acme", f"paris-{run}"
    skus = (f"chair-{run}", f"table-{run}")
    stack = sink_settings(local_stack, f"page_{run}")  # a sink into its own database
    group = f"test-page-sink-{run}"
    set_group_offsets(stack, group, end_offsets(stack))
    with contextlib.ExitStack() as cleanup:  # undone in reverse order whatever fails
        cleanup.callback(drop_database, stack)
        cleanup.enter_context(running_sink(stack, single_object_codec(), group))
        for sku in skus:  # the ledger knows the SKUs at the store: 0 incoming
            status, body = worker.post(
                "/v1/events",
                {
                    "event_id": f"{sku}-r",
                    "type": "receipt",
                    "sku": sku,
                    "qty": 3,
                    "location": store,
                },
            )
            assert status == 202, body
        wait_for(
            lambda: worker.stock(skus[1]) is not None, timeout=30, what="the SKUs in the ledger"
        )

        smtp = SmtpServer(free_port())
        smtp.start()
        cleanup.callback(smtp.stop)
        users = UserStore(tmp_path / "users.yaml")
        approver = users.add("alice", "approver", PASSWORD)
        assert approver.totp_secret
        settings = replace(
            stack,
            smtp_host="127.0.0.1",
            smtp_port=smtp.port,
            web_users=str(users.path),
            web_secret=Secret("browser-test"),
        )
        config = ReplenishmentConfig(
            suppliers={
                supplier: Supplier(
                    supplier, "Acme Furniture", "email", 5, email=("orders@acme.test",)
                )
            },
            items=tuple(SupplierItem(s, supplier, f"ACME-{s}", 2450, 6, 12) for s in skus),
        )

        def planner(
            settings: Settings,
            config: ReplenishmentConfig,
            *,
            today: date,
            locations: Collection[str] | None = None,
        ) -> list[dict[str, Any]]:
            return [planned(supplier, store, skus)]

        page = PageServer(
            build(
                settings,
                config,
                planner=planner,
                sender=send_purchase_order,
                receipts_group=f"page-{run}",
                receipts_reset="latest",
            ),
            free_port(),
        )
        started = time.monotonic()
        cleanup.callback(page.stop)
        page.start()  # starts the service, which plans at once: our proposal is published
        browser = chromium(tmp_path / "chromium-profile", width=DESKTOP[0], height=DESKTOP[1])
        cleanup.callback(browser.quit)
        viewport(browser, *PHONE, mobile=True)
        shots = artefacts(tmp_path)
        from selenium.common.exceptions import TimeoutException
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        browser.get(page.url + "/proposals")
        assert "/login" in browser.current_url
        browser.find_element(By.ID, "login").send_keys("alice")
        browser.find_element(By.ID, "password").send_keys(PASSWORD)
        browser.find_element(By.ID, "code").send_keys(pyotp.TOTP(approver.totp_secret).now())
        browser.find_element(By.ID, "submit").click()
        WebDriverWait(browser, 15).until(lambda _: browser.current_url.endswith("/proposals"))

        def listed() -> bool:
            browser.get(page.url + f"/proposals?store={store}")
            return f"{supplier} → {store}" in browser.page_source

        wait_for(listed, timeout=30, what="the planned proposal on the page")
        browser.save_screenshot(str(shots / "proposals-phone.png"))
        browser.find_element(By.CSS_SELECTOR, "a.card.proposal").click()
        proposal_url = browser.current_url

        def set_qty(sku: str, qty: int) -> None:
            field = browser.find_element(By.ID, f"qty-{sku}")
            field.clear()
            field.send_keys(str(qty))
            form = field.find_element(By.XPATH, "./ancestor::form")
            form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()

        def shown(element_id: str, words: str) -> None:
            """Waits for the page (after a form's post) to show ``words`` in the element."""

            def there(_: Any) -> bool:
                found = browser.find_elements(By.ID, element_id)
                return bool(found) and words in found[0].text

            try:
                WebDriverWait(browser, 15, poll_frequency=0.1).until(there)
            except TimeoutException:
                main = browser.find_element(By.TAG_NAME, "main").text
                raise AssertionError(f"no {words!r} in #{element_id}; the page: {main}") from None

        set_qty(skus[0], 25)
        shown("error", "pack size 6")
        set_qty(skus[0], 30)
        shown("message", "Quantity saved.")
        browser.save_screenshot(str(shots / "proposal-phone.png"))
        viewport(browser, *DESKTOP, mobile=False)
        browser.get(proposal_url)
        browser.save_screenshot(str(shots / "proposal-desktop.png"))
        viewport(browser, *PHONE, mobile=True)
        browser.find_element(By.ID, "approve").click()
        shown("message", "Approved and sent to the supplier.")
        assert browser.find_element(By.ID, "status").text == "sent"
        browser.save_screenshot(str(shots / "sent-phone.png"))
        browser.find_element(By.LINK_TEXT, skus[0]).click()  # the SKU's screen (ClickHouse)
        WebDriverWait(browser, 15).until(lambda _: "/sku/" in browser.current_url)
        heading = browser.find_element(By.TAG_NAME, "h1").text
        assert heading.startswith(f"{skus[0]} at {store}"), browser.page_source[:3000]

        def sku_incoming() -> bool:  # the sink writes the ledger's movements to ClickHouse
            browser.refresh()
            return "Incoming\n30" in browser.find_element(By.ID, "position").text

        wait_for(sku_incoming, timeout=30, what="incoming 30 on the SKU's screen")
        assert browser.find_elements(By.CSS_SELECTOR, "svg.chart")
        assert "purchase_ordered" in browser.find_element(By.ID, "movements").text
        browser.save_screenshot(str(shots / "sku-phone.png"))
        viewport(browser, *DESKTOP, mobile=False)
        browser.get(page.url + "/orders")
        browser.save_screenshot(str(shots / "orders-desktop.png"))
        clicked = time.monotonic() - started

        wait_for(lambda: bool(smtp.messages), timeout=10, what="the purchase order email")
        (mail,) = smtp.messages
        assert mail["To"] == "orders@acme.test"
        assert mail["Subject"].startswith(f"Purchase order PO-{supplier}-{store}")
        pdfs = [
            part for part in mail.iter_attachments() if part.get_content_type() == "application/pdf"
        ]
        assert len(pdfs) == 1 and pdfs[0].get_content().startswith(b"%PDF-")

        def incoming() -> tuple[int | None, int | None]:
            found = []
            for sku in skus:
                stock = worker.stock(sku) or {}
                found.append(stock.get("locations", {}).get(store, {}).get("incoming"))
            return found[0], found[1]

        wait_for(lambda: incoming() == (30, 12), timeout=30, what="incoming 30 and 12")
    print(
        f"\n[page] login to sent in {clicked:.1f} s (page start included); screenshots in {shots}"
    )
    if os.environ.get("STOCKFLOW_UPDATE_SCREENSHOT") == "1":
        picture = PROJECT_ROOT / "streams" / "web" / "screenshots" / "ordering-page.png"
        picture.parent.mkdir(exist_ok=True)
        shutil.copy(shots / "proposal-desktop.png", picture)


def test_stockflow_web_serves_the_page_and_the_till_route_and_stops_on_sigterm(
    local_stack: Settings, tmp_path: Path
) -> None:
    """Given a users file with one admin, when `stockflow web` is started as an operator
    would, then it answers /health, sends a visitor to the login form, guards the till's
    trigger with bearer tokens (401 without one), and on SIGTERM stops the purchasing
    service and exits 0."""
    users = UserStore(tmp_path / "users.yaml")
    users.add("ops", "admin", PASSWORD)
    port = free_port()
    env = {
        **os.environ,
        "STOCKFLOW_CONFIG": "",
        "STOCKFLOW_WEB_USERS": str(users.path),
        "STOCKFLOW_WEB_PORT": str(port),
    }
    log_path = tmp_path / "web.log"
    with log_path.open("wb") as out:
        proc = track(
            subprocess.Popen(
                [sys.executable, "-m", "streams.cli", "web"],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )
        )
    url = f"http://127.0.0.1:{port}"

    def status(path: str, method: str = "GET") -> int:
        request = urllib.request.Request(
            url + path, method=method, data=b"{}" if method == "POST" else None
        )
        opener = urllib.request.build_opener(_NoRedirect)
        try:
            with opener.open(request, timeout=10) as answer:
                return int(answer.status)
        except urllib.error.HTTPError as exc:
            return exc.code
        except OSError:
            return 0

    try:
        wait_for(lambda: status("/health") == 200, timeout=60, what=f"stockflow web: {url}")
        assert status("/proposals") == 303
        assert status("/login") == 200
        assert status("/v1/replenishment/trigger", "POST") == 401
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(30)
    assert code == 0, log_path.read_text()
    assert "web: stopped, the purchasing service with it" in log_path.read_text()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None
