"""The evening of the demo's day beyond the ledger's own API: a Magento order polled in, the
store's till posting through ``POST /v1/pos/changes``, the nightly ERP snapshot imported as
``stockflow feeds import`` does, and a price change that every shop shows by its own rules.

The commands run in-process through their own parsers (``stockflow price set``,
``stockflow feeds import``), so the demo takes the same path an operator's shell would.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from connectors.feeds.command import add_parser as add_feeds_parser
from connectors.feeds.command import run as run_feeds
from connectors.framework.pricing import PriceRule, Rates, channel_price
from connectors.price_command import add_price_parser, run_price
from deploy.demo.setup import (
    PRESTA_PRODUCT,
    PRICE_RATES,
    PRICE_RULES,
    SHOPIFY_VARIANT,
    STORE,
    WAREHOUSE,
    WOO_PRODUCT,
)
from deploy.local.credentials import ensure_token
from streams.kernel.access.tokens import EVENTS_WRITE
from streams.kernel.settings import Settings

BASE_PRICE = "129.00"  # EUR, the chair's base price set in the evening
TILL_FLOOR = 6  # chairs the till counts on the store's floor
TILL_SOLD = 2
ERP_FOUND = 2  # chairs the ERP's night count finds beyond the ledger's figure


def command(
    add: Callable[[Any], None], run: Callable[[Settings, argparse.Namespace], int],
    settings: Settings, argv: Sequence[str],
) -> tuple[int, str]:  # fmt: skip
    """A stockflow command run in-process: its exit code and what it printed (captured by
    swapping sys.stdout and sys.stderr: run it while nothing else prints)."""
    parser = argparse.ArgumentParser(prog="stockflow")
    add(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = run(settings, args)
    return code, out.getvalue().replace("\r", "\n")


def expected_prices(sku: str, shops: Sequence[str]) -> dict[str, str]:
    """What each shop must show for the base price, by its rules."""
    rates = Rates.from_config(PRICE_RATES)
    amount = int(Decimal(BASE_PRICE) * 100)
    out = {}
    for shop in shops:
        rule = PriceRule.from_config(PRICE_RULES[shop])
        shown = channel_price(rule, rates, sku, amount, "EUR").amount_minor
        out[shop] = f"{Decimal(shown) / 100:.2f}"
    return out


def shown_price(shop: str, fake: Any, sku: str) -> str | None:
    """The price a fake shop shows for the chair, as ``"129.00"``."""
    raw: Any
    if shop == "shopify":
        raw = fake.prices.get(SHOPIFY_VARIANT)
    elif shop == "woocommerce":
        raw = fake.products.get(WOO_PRODUCT, {}).get("regular_price")
    elif shop == "magento":
        raw = fake.products.get(sku)
    else:
        raw = fake.products.get(PRESTA_PRODUCT, {}).get("price")
    try:
        return f"{Decimal(str(raw)):.2f}"
    except ArithmeticError:
        return None


class EveningDay:
    """Plays the steps beyond the ledger's own API; ``lines`` is what the summary shows."""

    def __init__(self, settings: Settings, sku: str, shops: dict[str, Any], folder: Path) -> None:
        self.settings = settings
        self.sku = sku
        self.shops = shops  # channel name -> its fake
        self.folder = folder
        self.lines: list[str] = []
        self.prices: dict[str, str | None] = {}

    def say(self, line: str, keep: bool = True) -> None:
        if keep:
            self.lines.append(line)
        print(f"[demo] {line}", flush=True)

    async def set_price(self) -> None:
        code, out = await asyncio.to_thread(
            command, add_price_parser, run_price, self.settings,
            ["price", "set", self.sku, BASE_PRICE, "--currency", "EUR", "--source", "demo"],
        )  # fmt: skip
        if code != 0:
            raise RuntimeError(f"stockflow price set failed ({code}): {out.strip()}")
        self.say(f"stockflow price set {self.sku} {BASE_PRICE} EUR: published", keep=False)

    async def until_prices(self, within: float = 60) -> None:
        wanted = expected_prices(self.sku, list(self.shops))
        deadline = time.monotonic() + within
        while True:
            self.prices = {s: shown_price(s, f, self.sku) for s, f in self.shops.items()}
            if self.prices == wanted:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out: shops show {self.prices}, expected {wanted}")
            await asyncio.sleep(0.3)
        rules = ", ".join(
            f"{s} {p} ({_rule(PRICE_RULES[s])})" for s, p in sorted(self.prices.items())
        )
        self.say(f"price of the chair, base {BASE_PRICE} EUR, on every shop: {rules}")

    async def till(self, http: Any, worker_url: str) -> dict[str, Any]:
        """The store's till counts the chairs on its floor and sells two."""
        token = await asyncio.to_thread(
            ensure_token, self.settings, "demo-pos", (EVENTS_WRITE,), (f"pos:{STORE}",),
            locations=(STORE,),
        )  # fmt: skip
        now = int(time.time() * 1000)
        changes = [
            {"type": "count", "sku": self.sku, "qty": TILL_FLOOR, "occurred_at": now - 2_000,
             "id": f"{self.sku}-floor-count"},
        ] + [
            {"type": "sale", "sku": self.sku, "qty": 1, "occurred_at": now - 1_000 + n,
             "id": f"{self.sku}-sale-{n}", "receipt": f"R-{n + 1}"}
            for n in range(TILL_SOLD)
        ]  # fmt: skip
        body = {"idempotency_key": f"{self.sku}-evening", "store": STORE, "changes": changes}
        headers = {"Authorization": f"Bearer {token}"}
        async with http.post(f"{worker_url}/v1/pos/changes", json=body, headers=headers) as r:
            answer: dict[str, Any] = await r.json(content_type=None)
            if r.status != 200:
                raise RuntimeError(f"the till's call was refused ({r.status}): {answer}")
        return answer

    async def erp_snapshot(self, warehouse_on_hand: int) -> int:
        """The ERP's nightly CSV snapshot recounts the warehouse; returns its figure."""
        figure = warehouse_on_hand + ERP_FOUND
        as_of = datetime.now(UTC).isoformat(timespec="milliseconds")
        path = self.folder / f"erp-snapshot-{self.sku}.csv"
        path.write_text(
            f"sku;location;on_hand;as_of;seq\n{self.sku};{WAREHOUSE};{figure};{as_of};1\n"
        )
        code, out = await asyncio.to_thread(
            command, add_feeds_parser, run_feeds, self.settings,
            ["feeds", "import", str(path), "--seen", str(self.folder / "feeds-seen.json")],
        )  # fmt: skip
        if code != 0:
            raise RuntimeError(f"stockflow feeds import failed ({code}): {out.strip()}")
        summary = [ln for ln in out.splitlines() if ln.strip() and "[" not in ln]
        self.say(
            f"nightly ERP snapshot {path.name} imported (stockflow feeds import): "
            f"{WAREHOUSE} recounted at {figure} ({'; '.join(summary) or 'done'})"
        )
        return figure


def _rule(rule: dict[str, Any]) -> str:
    parts = [f"{rule['markup_pct']:+}%" if rule.get("markup_pct") else ""]
    parts.append(f"{rule['rounding']} rounding" if rule.get("rounding", "none") != "none" else "")
    return ", ".join(p for p in parts if p) or "as set"
