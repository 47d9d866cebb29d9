"""A 429 storm from one channel, end to end: the other channel keeps syncing, the throttled
one converges after the storm, and its writes never go back to an older level."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator

import pytest

from streams.kernel.settings import Settings
from tests.fakes.e2e import Stack, e2e_stack
from tests.support.kafka import wait_for
from tests.support.ports import free_port

pytestmark = [pytest.mark.faults, pytest.mark.integration]

START = 500
STORM_S = float(os.environ.get("STOCKFLOW_STORM_SECONDS", "10"))  # the figure: 30
CONVERGE_S = 10.0


@pytest.fixture(scope="module")
def stack(local_stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    folder = tmp_path_factory.mktemp("connectors-storm")
    with e2e_stack(
        local_stack, folder, worker_port=free_port(), connectors_port=free_port(), n_skus=6
    ) as s:
        s.count(dict.fromkeys(s.skus, START))
        yield s


def test_a_429_storm_on_shopify_leaves_woocommerce_syncing_and_shopify_converges_in_order(
    stack: Stack,
) -> None:
    """Given 6 SKUs at 500 on both fakes,
    when the fake Shopify answers every API request with 429 (Retry-After 1) for
    STOCKFLOW_STORM_SECONDS while orders keep arriving from both channels (webhooks still
    flow),
    then WooCommerce shows the ledger's figure for every SKU before the storm ends, Shopify
    shows it within 10 s after the storm, and Shopify's recorded writes per item never
    show an older level after a newer one (quantities only fall here)."""
    fakes = stack.fakes
    writes_before = len(fakes.shopify.writes)
    fakes.call(lambda: fakes.shopify.storm(STORM_S, retry_after=1.0))
    storm_end = time.monotonic() + STORM_S

    async def orders() -> int:
        # orders over the first half of the storm, alternating channels and SKUs
        n, deadline = 0, time.monotonic() + STORM_S / 2
        while time.monotonic() < deadline:
            sku = stack.skus[n % len(stack.skus)]
            if n % 2 == 0:
                order = fakes.shopify.place_order([(stack.variant(sku), 1)])
                sent = await fakes.shopify.deliver("orders/create", order)
            else:
                order = fakes.woo.place_order([(stack.pid(sku), 1)])
                sent = await fakes.woo.deliver("order.created", order)
            assert sent.statuses[-1] == 200, sent.statuses
            n += 1
            await asyncio.sleep(0.05)
        return n

    placed = fakes.run(orders(), timeout=STORM_S + 30)

    def ledger() -> dict[str, int | None]:
        return {s: stack.ledger_qty(s, "woocommerce") for s in stack.skus}

    wait_for(
        lambda: sum(START - (q or START) for q in ledger().values()) == placed,
        timeout=60,
        what="every order applied by the ledger",
    )
    target = ledger()
    wait_for(
        lambda: all(fakes.woo_qty(stack.pid(s)) == q for s, q in target.items()),
        timeout=max(1.0, storm_end - time.monotonic()),
        what="WooCommerce at the ledger's figures during the storm",
    )
    woo_synced_at = time.monotonic()
    assert woo_synced_at < storm_end, "WooCommerce must sync while Shopify is throttled"
    assert len(fakes.shopify.writes) == writes_before, "Shopify wrote during its own storm?"

    wait_for(
        lambda: all(fakes.shopify_qty(stack.item(s)) == q for s, q in target.items()),
        timeout=max(0.0, storm_end - time.monotonic()) + CONVERGE_S,
        what=f"Shopify at the ledger's figures within {CONVERGE_S:.0f} s after the storm",
    )
    converged = time.monotonic() - storm_end
    print(
        f"\n[storm] {STORM_S:.0f}s 429 storm on Shopify, {placed} orders during it; "
        f"WooCommerce in sync {storm_end - woo_synced_at:.1f}s before the storm ended; "
        f"Shopify converged {converged:.2f}s after it"
    )
    for sku in stack.skus:
        seen = [w.quantity for w in fakes.shopify.writes if w.sku == sku]
        assert seen == sorted(seen, reverse=True), f"{sku}: an older level written after newer"
        assert stack.ledger_qty(sku, "shopify") == fakes.shopify_qty(stack.item(sku))
