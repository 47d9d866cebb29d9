"""A channel answering 500 to everything for a while, end to end: pushes fail for good and
are dead-lettered, their SKUs are kept dirty, and once the channel answers again it is
brought to the ledger's figures with no manual step. Drift found by reconciliation becomes
an alert on stock.alerts.v1.

``STOCKFLOW_CHANNEL_OUTAGE_SECONDS`` sets the outage (CI default 15; the reliability figure
in the README is from 90)."""

from __future__ import annotations

import asyncio
import os
import re
import time
import urllib.request
from collections.abc import Iterator

import pytest

from schemas.codec import single_object_codec
from streams.kernel.settings import Settings
from streams.kernel.topics import STOCK_ALERTS
from tests.fakes.e2e import Stack, e2e_stack
from tests.support.kafka import read_topic, wait_for
from tests.support.ports import free_port

pytestmark = [pytest.mark.faults, pytest.mark.integration]

START = 500
OUTAGE_S = float(os.environ.get("STOCKFLOW_CHANNEL_OUTAGE_SECONDS", "15"))
DIRTY_RETRY_S = 5.0
# 3 attempts (about 1.5 s of backoff) so that even the CI outage dead-letters pushes and the
# healing path, not the ordinary retry, is what brings the channel back
RETRY = f"retry: {{max_attempts: 3, dirty_retry_s: {DIRTY_RETRY_S:g}}}"


@pytest.fixture(scope="module")
def stack(local_stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    folder = tmp_path_factory.mktemp("connectors-outage")
    with e2e_stack(
        local_stack,
        folder,
        worker_port=free_port(),
        connectors_port=free_port(),
        n_skus=6,
        channel_extra=RETRY,
    ) as s:
        s.count(dict.fromkeys(s.skus, START))
        yield s


def connector_metric(stack: Stack, name: str, **labels: str) -> float:
    auth = {"Authorization": f"Bearer {stack.worker.token}"}
    request = urllib.request.Request(stack.connectors.url + "/metrics", headers=auth)
    with urllib.request.urlopen(request, timeout=5) as response:
        text = response.read().decode()
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        match = re.fullmatch(rf"{re.escape(name)}\{{(.*)\}} (\S+)", line)
        if match and ",".join(sorted(match.group(1).split(","))) == wanted:
            return float(match.group(2))
    return 0.0


def test_a_channel_answering_500_converges_to_the_ledger_after_it_recovers(stack: Stack) -> None:
    """Given 6 SKUs at 500 on both fakes,
    when WooCommerce answers every API request with 500 for STOCKFLOW_CHANNEL_OUTAGE_SECONDS
    while orders keep arriving from both channels,
    then Shopify keeps syncing, the failed WooCommerce pushes are dead-lettered (their SKUs
    dirty), and after the outage WooCommerce shows the ledger's figure for every SKU without
    any manual step, with no dirty SKU left."""
    fakes = stack.fakes
    dead_before = connector_metric(
        stack, "stockflow_connector_pushes_total", channel="woocommerce", result="dead_lettered"
    )
    fakes.call(lambda: fakes.woo.down(OUTAGE_S, status=500))
    outage_end = time.monotonic() + OUTAGE_S

    async def orders() -> int:
        n, deadline = 0, time.monotonic() + OUTAGE_S / 2
        while time.monotonic() < deadline:
            sku = stack.skus[n % len(stack.skus)]
            if n % 2 == 0:
                sent = await fakes.shopify.deliver(
                    "orders/create", fakes.shopify.place_order([(stack.variant(sku), 1)])
                )
            else:
                sent = await fakes.woo.deliver(
                    "order.created", fakes.woo.place_order([(stack.pid(sku), 1)])
                )
            assert sent.statuses[-1] == 200, sent.statuses
            n += 1
            await asyncio.sleep(0.1)
        return n

    placed = fakes.run(orders(), timeout=OUTAGE_S + 30)

    def ledger() -> dict[str, int | None]:
        return {s: stack.ledger_qty(s, "woocommerce") for s in stack.skus}

    wait_for(
        lambda: sum(START - (q or START) for q in ledger().values()) == placed,
        timeout=60,
        what="every order applied by the ledger",
    )
    target = ledger()
    wait_for(
        lambda: all(fakes.shopify_qty(stack.item(s)) == q for s, q in target.items()),
        timeout=max(5.0, outage_end - time.monotonic()),
        what="Shopify at the ledger's figures during the WooCommerce outage",
    )

    def dead() -> float:
        return (
            connector_metric(
                stack,
                "stockflow_connector_pushes_total",
                channel="woocommerce",
                result="dead_lettered",
            )
            - dead_before
        )

    # new levels restart a pending push's attempts; once orders stop, the last ones fail
    wait_for(
        lambda: dead() >= 1,
        timeout=max(5.0, outage_end - time.monotonic()),
        what="pushes failing for good during the outage",
    )
    time.sleep(max(0.0, outage_end - time.monotonic() - 1.0))  # the outage's last second
    dirty_during = connector_metric(stack, "stockflow_connector_dirty_skus", channel="woocommerce")
    assert dirty_during >= 1
    converge_within = DIRTY_RETRY_S + 60.0
    wait_for(
        lambda: all(fakes.woo_qty(stack.pid(s)) == q for s, q in target.items()),
        timeout=max(0.0, outage_end - time.monotonic()) + converge_within,
        what="WooCommerce at the ledger's figures after the outage",
    )
    converged = time.monotonic() - outage_end
    wait_for(
        lambda: (
            connector_metric(stack, "stockflow_connector_dirty_skus", channel="woocommerce") == 0
        ),
        timeout=30,
        what="no dirty SKU left",
    )
    wrong = [
        s for s in stack.skus if fakes.woo_qty(stack.pid(s)) != stack.ledger_qty(s, "woocommerce")
    ]
    print(
        f"\n[outage] WooCommerce answered 500 for {OUTAGE_S:.0f}s "
        f"({fakes.woo.failed_requests} requests refused); {placed} orders during it; "
        f"{dead():.0f} pushes dead-lettered, {dirty_during:.0f} SKUs dirty at its end; converged "
        f"{converged:.1f}s after the outage; SKUs off the ledger after: {len(wrong)}"
    )
    assert wrong == []


def test_drift_found_by_reconciliation_is_an_alert_and_is_corrected(stack: Stack) -> None:
    """Given a SKU in sync on WooCommerce, when someone sets it to 3 in WooCommerce's admin,
    then the next reconciliation (every 30 s here) writes a drift alert for that SKU and
    channel to stock.alerts.v1 and pushes the ledger's figure again."""
    fakes = stack.fakes
    sku = stack.skus[0]
    ours = stack.ledger_qty(sku, "woocommerce")
    assert ours is not None and ours != 3
    wait_for(
        lambda: fakes.woo_qty(stack.pid(sku)) == ours, timeout=90, what="the SKU in sync first"
    )
    since = int(time.time() * 1000)
    fakes.call(lambda: fakes.woo.set_stock(stack.pid(sku), 3))
    alerts = read_topic(
        stack.settings,
        single_object_codec(),
        STOCK_ALERTS,
        lambda r: r["kind"] == "drift" and r["sku"] == sku and r["at"] >= since,
        until=bool,
        timeout=90,
    )
    assert alerts, "no drift alert on stock.alerts.v1"
    alert = alerts[0]
    assert (alert["channel"], alert["threshold"], alert["value"]) == ("woocommerce", ours, 3 - ours)
    wait_for(lambda: fakes.woo_qty(stack.pid(sku)) == ours, timeout=30, what="drift corrected")
    print(f"\n[drift] {alert['message']}")
