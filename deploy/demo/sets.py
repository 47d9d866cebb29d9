"""The afternoon's sets and pre-orders, and the warehouse's first wave.

- A desk set (a bundle of the chair and the desk) is sold through the order book: its line
  becomes one line per component, reserved all or nothing.
- Posters are on their way from a supplier (an open purchase order, expected in a week):
  WooCommerce pre-sells two against it (decision ``backordered``, reason ``preorder``, the
  promised day); when the posters arrive, the pre-order is served before anyone else.
- ``stockflow waves plan --location paris-wh`` groups the warehouse's allocated orders into
  a wave, prints it and writes its pick list, summary and delivery notes (PDF)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from deploy.demo.orders import order_record
from streams.kernel.settings import Settings

WAREHOUSE = "paris-wh"
POSTERS_ORDERED = 10
PRESOLD = 2
PREORDER_CAP = 5
PostEvents = Callable[[list[dict[str, Any]]], Awaitable[None]]


def sets_config(chair: str, desk: str, poster: str, set_sku: str) -> dict[str, Any]:
    """The ``bundles:``, ``preorders:`` and ``fulfilment:`` sections of the ledger's file."""
    return {
        "bundles": [{"sku": set_sku, "components": {chair: 1, desk: 1}}],
        "preorders": [{"sku": poster, "channel": "woocommerce", "cap": PREORDER_CAP}],
        "fulfilment": {
            "max_orders_per_wave": 20,
            "carriers": [{"name": "chronopost", "cutoff": "15:00", "countries": ["FR"]}],
            "bins": {WAREHOUSE: {chair: "A-02-10", desk: "A-02-2", poster: "C-01-01"}},
        },
    }


class SetsDay:
    """Plays the afternoon's set, pre-order and wave; keeps the lines for the summary."""

    def __init__(
        self, settings: Settings, worker_url: str, run: str, orders: Any, config_path: Path
    ) -> None:
        self.settings = settings
        self.config_path = config_path  # the ledger's file, with the fulfilment section
        self.worker_url = worker_url
        self.orders = orders  # deploy.demo.orders.OrderDay: its token, states and placing
        self.chair = orders.chair
        self.desk = orders.desk
        self.set_sku = f"desk-set-{run}"
        self.poster = f"poster-{run}"
        self.set_order = f"api:demo-{run}-set"
        self.run = run
        self.lines: list[str] = []

    def say(self, line: str) -> None:
        self.lines.append(line)
        print(f"[demo] {line}", flush=True)

    async def play(self, http: aiohttp.ClientSession, post_events: PostEvents) -> None:
        await self.desk_set(http)
        await self.preorder(http, post_events)
        await asyncio.to_thread(self.wave)

    async def desk_set(self, http: aiohttp.ClientSession) -> None:
        lyon = {"country": "FR", "postal_code": "69002", "lat": 45.75, "lon": 4.83}
        line = ("1", self.set_sku, 1, 44_900)
        await self.orders.place(http, order_record(self.set_order, "placed", [line], ship_to=lyon))
        await self.orders.until(self.set_order, lambda s: s not in ("received", "routed"), "routed")
        state = self.orders.states.get(self.set_order) or {}
        parts = ", ".join(
            f"{ln['sku']} x{ln['qty']} {ln.get('status', '')} at {ln.get('location') or '-'}"
            for ln in state.get("lines", [])
        )
        self.say(
            f"desk set {self.set_sku} (bundle: 1 chair + 1 desk) sold through POST /v1/orders:"
            f" {state.get('status')}; its components {parts}"
        )

    async def preorder(self, http: aiohttp.ClientSession, post_events: PostEvents) -> None:
        expected = (datetime.now(UTC) + timedelta(days=7)).date().isoformat()
        await post_events(
            [
                {
                    "event_id": f"demo-{self.run}-poster-po",
                    "type": "purchase_ordered",
                    "sku": self.poster,
                    "qty": POSTERS_ORDERED,
                    "location": WAREHOUSE,
                    "source_ref": f"PO-print-{self.run}",
                    "expected_on": expected,
                }
            ]
        )
        await self._stock(http, lambda s: self._at(s, "incoming") == POSTERS_ORDERED)
        await post_events(
            [
                {
                    "event_id": f"demo-{self.run}-poster-preorder",
                    "type": "order_placed",
                    "sku": self.poster,
                    "qty": PRESOLD,
                    "channel": "woocommerce",
                    "order_id": f"woocommerce:demo-{self.run}-poster",
                }
            ]
        )
        state = await self._stock(http, lambda s: bool(_preorders(s).get("waiting")))
        first = _preorders(state)["waiting"][0]
        self.say(
            f"{PRESOLD} posters pre-sold on WooCommerce against PO-print-{self.run} "
            f"({POSTERS_ORDERED} expected {expected}, allowance {PREORDER_CAP}): decision "
            f"backordered, reason preorder, promised {first['promised_on']}; WooCommerce may "
            f"still pre-sell {_preorders(state).get('room', {}).get('woocommerce')}"
        )
        await post_events(
            [
                {
                    "event_id": f"demo-{self.run}-poster-receipt",
                    "type": "receipt",
                    "sku": self.poster,
                    "qty": POSTERS_ORDERED,
                    "location": WAREHOUSE,
                    "source_ref": f"PO-print-{self.run}",
                }
            ]
        )
        served = await self._stock(http, lambda s: self._at(s, "reserved") == PRESOLD)
        self.say(
            f"the posters arrived: the pre-order was served first (reserved {PRESOLD}), "
            f"on hand {self._at(served, 'on_hand')}, incoming {self._at(served, 'incoming')}"
        )

    def wave(self) -> None:
        from streams.picking.run import run_command

        settings = replace(self.settings, config_path=str(self.config_path))
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            code = run_command(settings, once=True, location=WAREHOUSE)
        printed = out.getvalue()
        if code != 0:
            raise RuntimeError(f"stockflow waves plan failed ({code}): {printed[-2000:]}")
        waves = [ln.split() for ln in printed.splitlines() if ln.startswith("wave-")]
        self.say(
            f"stockflow waves plan --location {WAREHOUSE}: {len(waves)} wave(s) of the orders "
            "allocated there (older runs' on this broker too), documents as PDF:"
        )
        for wave in waves:
            folder = Path(wave[-1])
            pdfs = sorted(p.name for p in folder.glob("*.pdf")) if folder.is_dir() else []
            notes = len(list(folder.glob("delivery-notes/*.pdf"))) if folder.is_dir() else 0
            self.say(
                f"  wave {wave[0]}: {' '.join(wave[1:-1])}; documents in {folder}: "
                f"{', '.join(pdfs)} and {notes} delivery note(s)"
            )

    async def _stock(
        self, http: aiohttp.ClientSession, done: Callable[[dict[str, Any]], bool]
    ) -> dict[str, Any]:
        deadline = time.monotonic() + 30
        state: dict[str, Any] = {}
        while time.monotonic() < deadline:
            async with http.get(f"{self.worker_url}/v1/stock/{self.poster}") as answer:
                state = await answer.json() if answer.status == 200 else {}
            if state and done(state):
                return state
            await asyncio.sleep(0.3)
        raise RuntimeError(f"timed out waiting for {self.poster}: {state}")

    @staticmethod
    def _at(state: dict[str, Any], key: str) -> int:
        return int(state.get("locations", {}).get(WAREHOUSE, {}).get(key, 0))


def _preorders(state: dict[str, Any]) -> dict[str, Any]:
    return dict(state.get("preorders") or {})
