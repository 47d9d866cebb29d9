"""The connectors down while WooCommerce takes orders (WooCommerce never retries a webhook):
on restart the poller resumes from its saved checkpoint and every order reaches the ledger
once. The outage is simulated time: the fake WooCommerce's clock runs behind the real one,
so the orders of a 20-minute outage are placed in seconds.

``STOCKFLOW_DOWNTIME_MINUTES`` (default 20) and ``STOCKFLOW_DOWNTIME_ORDERS`` (default 40)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from schemas.times import iso_to_ms
from streams.kernel.settings import Settings
from tests.fakes.e2e import Stack, e2e_stack
from tests.support.kafka import wait_for
from tests.support.ports import free_port

pytestmark = [pytest.mark.faults, pytest.mark.integration]

START = 500
DOWN_MIN = float(os.environ.get("STOCKFLOW_DOWNTIME_MINUTES", "20"))
ORDERS = int(os.environ.get("STOCKFLOW_DOWNTIME_ORDERS", "40"))
FIRST_LOOKBACK_S = int(DOWN_MIN * 60 + 600)  # the first start sees the pre-outage order
RESTART_LOOKBACK_S = 60  # a restart without the saved checkpoint would see 2 minutes only


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("connectors-downtime")


@pytest.fixture(scope="module")
def stack(local_stack: Settings, folder: Path) -> Iterator[Stack]:
    with e2e_stack(
        local_stack,
        folder,
        worker_port=free_port(),
        connectors_port=free_port(),
        n_skus=4,
        channel_extra=f"poll_lookback_s: {FIRST_LOOKBACK_S}",
    ) as s:
        s.count(dict.fromkeys(s.skus, START))
        yield s


def test_no_woocommerce_order_is_lost_while_the_connectors_are_down(
    stack: Stack, folder: Path
) -> None:
    """Given the connectors running and the fake WooCommerce's clock DOWN_MIN minutes behind,
    an order placed and polled (the checkpoint saved in the state folder),
    when the connectors stop, ORDERS orders are placed on WooCommerce spread over the next
    DOWN_MIN simulated minutes (their webhooks find nobody and are never retried), and the
    connectors start again with a first-start lookback of only 60 s,
    then the poller resumes from the saved checkpoint and the ledger holds every order
    exactly once: each SKU's WooCommerce figure is 500 minus the units ordered on it."""
    fakes = stack.fakes
    woo = fakes.woo
    config = folder / "connectors.yaml"
    group = yaml.safe_load(config.read_text())["consumer_group"]
    checkpoints = stack.settings.state_dir / "connectors" / group / "checkpoints.json"
    fakes.call(lambda: setattr(woo, "clock_offset_s", -DOWN_MIN * 60))
    units: dict[str, int] = dict.fromkeys(stack.skus, 0)

    first = fakes.call(lambda: woo.place_order([(stack.pid(stack.skus[0]), 1)]))
    units[stack.skus[0]] += 1
    assert fakes.run(woo.deliver("order.created", first)).statuses == [200]
    first_ms = iso_to_ms(first["date_modified_gmt"], naive_is_utc=True)

    def saved() -> int:
        if not checkpoints.is_file():
            return 0
        return int(json.loads(checkpoints.read_text()).get("woocommerce", 0))

    wait_for(lambda: saved() >= first_ms, timeout=90, what="a poll saving the checkpoint")
    assert stack.connectors.stop() == 0

    undelivered = 0
    for n in range(ORDERS):
        sku = stack.skus[n % len(stack.skus)]
        qty = 1 + n % 3
        offset = -DOWN_MIN * 60 + (n + 1) * (DOWN_MIN * 60 - 90) / ORDERS

        def place(offset: float = offset, sku: str = sku, qty: int = qty) -> dict[str, object]:
            woo.clock_offset_s = offset
            return woo.place_order([(stack.pid(sku), qty)])

        order = fakes.call(place)
        units[sku] += qty
        sent = fakes.run(woo.deliver("order.created", order))
        undelivered += sent.statuses != [200]
    assert undelivered == ORDERS  # nobody listening, and WooCommerce never retries

    config.write_text(
        config.read_text().replace(
            f"poll_lookback_s: {FIRST_LOOKBACK_S}", f"poll_lookback_s: {RESTART_LOOKBACK_S}"
        )
    )
    stack.connectors.start()

    def ledger() -> dict[str, int | None]:
        return {s: stack.ledger_qty(s, "woocommerce") for s in stack.skus}

    expected = {s: START - units[s] for s in stack.skus}
    try:
        wait_for(lambda: ledger() == expected, timeout=60, what="every order in the ledger")
    finally:
        got = ledger()
        lost = sum(max(0, (q or START) - expected[s]) for s, q in got.items())
        doubled = sum(max(0, expected[s] - (q or START)) for s, q in got.items())
        print(
            f"\n[downtime] connectors down {DOWN_MIN:.0f} simulated minutes; {ORDERS} orders "
            f"({sum(units.values())} units) placed meanwhile, webhooks lost {undelivered}; "
            f"after restart: units lost {lost}, units doubled {doubled}"
        )
    wait_for(lambda: ledger() == expected, timeout=5, what="no order applied twice later")
