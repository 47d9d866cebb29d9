"""Connectors end to end: fake channels → webhooks → Kafka → real ledger worker → levels →
pushes to the other fake. Real broker, real Faust worker, real HTTP; nothing mocked."""

from __future__ import annotations

import asyncio
import copy
import shutil
import statistics
import time
from collections.abc import Iterator
from typing import Any

import pytest

from connectors.testing.base import SentWebhook
from streams.kernel.settings import Settings
from tests.fakes.e2e import LOCATION, Stack, e2e_stack
from tests.support.kafka import wait_for
from tests.support.ports import free_port

pytestmark = pytest.mark.integration

START = 1000  # counted stock of every SKU


@pytest.fixture(scope="module")
def stack(local_stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    folder = tmp_path_factory.mktemp("connectors-e2e")
    with e2e_stack(
        local_stack,
        folder,
        worker_port=free_port(),
        connectors_port=free_port(),
        n_skus=24,
        bundle=True,
    ) as stack:
        stack.count(dict.fromkeys(stack.skus, START))
        yield stack


def _shopify_order(stack: Stack, sku: str, qty: int, **deliver: Any) -> tuple[Any, SentWebhook]:
    fakes = stack.fakes
    order = fakes.call(lambda: fakes.shopify.place_order([(stack.variant(sku), qty)]))
    sent = fakes.run(fakes.shopify.deliver("orders/create", order, **deliver))
    return order, sent


def _woo_order(stack: Stack, sku: str, qty: int) -> tuple[Any, SentWebhook]:
    fakes = stack.fakes
    order = fakes.call(lambda: fakes.woo.place_order([(stack.pid(sku), qty)]))
    return order, fakes.run(fakes.woo.deliver("order.created", order))


def _sentinel_then_expect(stack: Stack, sku: str, before: int) -> None:
    """A valid 1-unit Woo order for ``sku`` after the action under test. Events of one SKU
    are applied in order, so once the sentinel shows, anything the action published would
    have shown too: the ledger must be at exactly ``before - 1``."""
    _, sent = _woo_order(stack, sku, 1)
    assert sent.statuses == [200]
    wait_for(
        lambda: (
            stack.ledger_qty(sku, "shopify") is not None
            and stack.ledger_qty(sku, "shopify") != before
        ),
        timeout=30,
        what="the sentinel order",
    )
    assert stack.ledger_qty(sku, "shopify") == before - 1
    assert stack.ledger_qty(sku, "woocommerce") == before - 1


def test_a_signed_shopify_order_webhook_lowers_the_quantity_woocommerce_holds(
    stack: Stack,
) -> None:
    """Given a SKU counted at 1000 and shown at 1000 on both fakes,
    when the fake Shopify sends a signed orders/create for 3 units to the receiver,
    then the ledger shows 997 and the fake WooCommerce is pushed 997."""
    sku = stack.skus[0]
    _, sent = _shopify_order(stack, sku, 3)
    assert sent.statuses == [200]
    wait_for(lambda: stack.fakes.woo_qty(stack.pid(sku)) == START - 3, timeout=30, what="Woo 997")
    assert stack.ledger_qty(sku, "woocommerce") == START - 3


def test_a_signed_woocommerce_order_webhook_lowers_the_quantity_shopify_holds(
    stack: Stack,
) -> None:
    """Given a SKU counted at 1000 on both fakes,
    when the fake WooCommerce sends a signed order.created for 4 units,
    then the fake Shopify is pushed 996 (compare-and-set from 1000)."""
    sku = stack.skus[1]
    _, sent = _woo_order(stack, sku, 4)
    assert sent.statuses == [200]
    wait_for(
        lambda: stack.fakes.shopify_qty(stack.item(sku)) == START - 4,
        timeout=30,
        what="Shopify 996",
    )
    assert stack.ledger_qty(sku, "shopify") == START - 4


def test_a_bundle_sold_on_shopify_reserves_its_components_and_every_channel_shows_the_sets(
    stack: Stack,
) -> None:
    """Given a bundle of one unit of SKU 1 and two of SKU 2, mapped on both fakes like any SKU
    When Shopify sells 3 bundles (signed orders/create, the line intake), then WooCommerce
    sells 7 units of SKU 2 alone
    Then the ledger reserves 3 of SKU 1 and 6 of SKU 2 (the bundle SKU itself never reaches
    it), and both fakes show the sets the components make: the bundle lowers its
    components, a component sold alone lowers the bundle."""
    s1, s2 = stack.skus[0], stack.skus[1]
    assert stack.bundle is not None
    item, variant, pid = stack.bundle_ids
    fakes = stack.fakes

    def reserved(sku: str) -> int:
        return int((stack.worker.stock(sku) or {})["locations"][LOCATION]["reserved"])

    def sets(channel: str) -> int:
        return min(stack.ledger_qty(s1, channel) or 0, (stack.ledger_qty(s2, channel) or 0) // 2)

    def shown() -> tuple[int | None, int | None]:
        return fakes.shopify_qty(item), fakes.woo_qty(pid)

    before = reserved(s1), reserved(s2)
    wait_for(
        lambda: shown() == (sets("shopify"), sets("woocommerce")), what="sets shown", timeout=30
    )
    order = fakes.call(lambda: fakes.shopify.place_order([(variant, 3)]))
    assert fakes.run(fakes.shopify.deliver("orders/create", order)).statuses == [200]
    wait_for(
        lambda: (reserved(s1), reserved(s2)) == (before[0] + 3, before[1] + 6),
        what="parts",
        timeout=30,
    )
    wait_for(
        lambda: shown() == (sets("shopify"), sets("woocommerce")),
        what="sets after sale",
        timeout=30,
    )
    assert stack.worker.stock(stack.bundle) is None  # never stocked by the ledger
    after_bundle = shown()
    _, sent = _woo_order(stack, s2, 7)
    assert sent.statuses == [200]
    wait_for(lambda: reserved(s2) == before[1] + 13, what="the single sale", timeout=30)
    wait_for(
        lambda: shown() == (sets("shopify"), sets("woocommerce")),
        what="sets after part",
        timeout=30,
    )
    print(f"\n[e2e] bundle shown {after_bundle} after 3 sets, {shown()} after 7 of SKU 2")
    assert shown()[0] is not None and shown()[0] < (after_bundle[0] or 0)


def test_a_webhook_with_a_bad_signature_changes_nothing_in_the_ledger(stack: Stack) -> None:
    """Given a SKU at 1000,
    when an order webhook signed with a wrong secret arrives (Shopify would retry it),
    then the receiver answers 401 every time and the ledger still shows 1000 once a later
    valid order (the sentinel) is applied: 999."""
    sku = stack.skus[2]
    _, sent = _shopify_order(stack, sku, 5, secret="forged", retry=False)
    assert sent.statuses == [401]
    _sentinel_then_expect(stack, sku, START)


def test_a_replayed_webhook_changes_nothing_in_the_ledger(stack: Stack) -> None:
    """Given a Shopify order of 2 units accepted and applied (ledger at 998),
    when the very same signed request is replayed to the receiver,
    then it answers 200 (duplicate) and the ledger stays at 998 (sentinel: 997)."""
    sku = stack.skus[3]
    _, sent = _shopify_order(stack, sku, 2)
    wait_for(lambda: stack.ledger_qty(sku, "shopify") == START - 2, timeout=30, what="998")
    status = stack.fakes.run(stack.fakes.shopify.redeliver(sent))
    assert status == 200
    _sentinel_then_expect(stack, sku, START - 2)


def test_a_duplicate_delivery_after_a_connectors_restart_changes_nothing(stack: Stack) -> None:
    """Given a WooCommerce order of 2 units applied (ledger at 998),
    when the connectors are stopped with SIGTERM (exit 0) and started again, forgetting their
    in-memory dedupe, and WooCommerce delivers the same order again with a new delivery id,
    then the ledger's applied-id set drops it: still 998 (sentinel: 997)."""
    sku = stack.skus[4]
    order, _ = _woo_order(stack, sku, 2)
    wait_for(lambda: stack.ledger_qty(sku, "shopify") == START - 2, timeout=30, what="998")
    assert stack.connectors.stop() == 0
    stack.connectors.start()
    again = stack.fakes.run(stack.fakes.woo.deliver("order.updated", order))
    assert again.statuses == [200]
    _sentinel_then_expect(stack, sku, START - 2)


def test_after_a_crash_the_connectors_never_push_a_level_older_than_one_already_pushed(
    stack: Stack,
) -> None:
    """Given five Shopify orders of one unit for a SKU pushed to WooCommerce (995), whose
    levels' offsets are not committed yet (commits wait 5 s and idle lanes),
    when the connectors are killed -9 and started again, reading those levels again,
    then WooCommerce's recorded writes for the SKU never go back up and it holds 995."""
    sku = stack.skus[22]
    for _ in range(5):
        _shopify_order(stack, sku, 1)
    wait_for(lambda: stack.fakes.woo_qty(stack.pid(sku)) == START - 5, timeout=30, what="995")
    stack.connectors.kill()
    stack.connectors.start()
    _sentinel_then_expect(stack, sku, START - 5)
    wait_for(lambda: stack.fakes.woo_qty(stack.pid(sku)) == START - 6, timeout=30, what="994")
    seen = [w.quantity for w in stack.fakes.woo.writes if w.sku == sku]
    print(f"\n[restart] WooCommerce writes for {sku}: {seen}")
    assert seen == sorted(seen, reverse=True)


def test_a_lost_connectors_state_folder_is_rebuilt_from_the_levels_and_heals_the_channel(
    stack: Stack,
) -> None:
    """Given a SKU pushed to WooCommerce (997 after a Shopify order of 3), its level's offset
    committed,
    when the connectors stop, their state folder is lost, WooCommerce's quantity is changed
    behind our back and the connectors start again,
    then they read the compacted levels from the start and WooCommerce shows 997 again, with
    no new order to trigger a push."""
    sku = stack.skus[23]
    _shopify_order(stack, sku, 3)
    wait_for(lambda: stack.fakes.woo_qty(stack.pid(sku)) == START - 3, timeout=30, what="997")
    time.sleep(6)  # the levels' offsets are committed every 5 s while the lanes are idle
    assert stack.connectors.stop() == 0
    shutil.rmtree(stack.settings.state_dir / "connectors" / stack.group)
    stack.fakes.call(lambda: stack.fakes.woo.set_stock(stack.pid(sku), 40))
    stack.connectors.start()
    wait_for(
        lambda: stack.fakes.woo_qty(stack.pid(sku)) == START - 3,
        timeout=30,
        what="WooCommerce back at the ledger's 997",
    )


def test_an_out_of_order_stale_retry_changes_nothing(stack: Stack) -> None:
    """Given a Shopify order of 3 units placed and then cancelled (ledger back at 1000),
    when a retry of the older orders/updated (placed, earlier updated_at) arrives last,
    then the receiver drops it as stale and the ledger stays at 1000 (sentinel: 999)."""
    sku = stack.skus[5]
    order, _ = _shopify_order(stack, sku, 3)
    placed = copy.deepcopy(order)
    wait_for(lambda: stack.ledger_qty(sku, "shopify") == START - 3, timeout=30, what="997")
    fakes = stack.fakes
    cancelled = fakes.call(lambda: fakes.shopify.cancel_order(order["id"], later_s=5))
    fakes.run(fakes.shopify.deliver("orders/cancelled", copy.deepcopy(cancelled)))
    wait_for(lambda: stack.ledger_qty(sku, "shopify") == START, timeout=30, what="1000")
    stale = fakes.run(fakes.shopify.deliver("orders/updated", placed, retry=False))
    assert stale.statuses == [200]
    _sentinel_then_expect(stack, sku, START)


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def test_over_a_thousand_orders_on_both_channels_reach_the_other_channel_with_lag_printed(
    stack: Stack,
) -> None:
    """Given 16 SKUs at 1000 on both fakes,
    when 1,008 one-unit orders arrive as signed webhooks (63 per SKU, alternating Shopify and
    WooCommerce, the SKUs in parallel),
    then every order's new quantity is acknowledged by the other fake, and the lag from
    the webhook's arrival to that acknowledgement is printed (p50/p95/p99): a measurement,
    not an assertion."""
    skus = stack.skus[6:22]
    per_sku = 63
    fakes = stack.fakes
    sent: list[tuple[str, str, int, float]] = []  # sku, origin, expected quantity, sent at

    async def orders_of(sku: str, offset: int) -> None:
        for k in range(per_sku):
            origin = "shopify" if (k + offset) % 2 == 0 else "woocommerce"
            at = time.monotonic()
            if origin == "shopify":
                order = fakes.shopify.place_order([(stack.variant(sku), 1)])
                result = await fakes.shopify.deliver("orders/create", order)
            else:
                order = fakes.woo.place_order([(stack.pid(sku), 1)])
                result = await fakes.woo.deliver("order.created", order)
            assert result.statuses[-1] == 200, result.statuses
            sent.append((sku, origin, START - k - 1, at))

    async def all_orders() -> float:
        began = time.monotonic()
        await asyncio.gather(*(orders_of(s, i) for i, s in enumerate(skus)))
        return time.monotonic() - began

    elapsed = fakes.run(all_orders(), timeout=300)
    final = START - per_sku
    wait_for(
        lambda: all(
            fakes.shopify_qty(stack.item(s)) == final and fakes.woo_qty(stack.pid(s)) == final
            for s in skus
        ),
        timeout=120,
        what="every SKU at its final quantity on both fakes",
    )
    writes = {
        "shopify": [w for w in fakes.shopify.writes if w.sku in skus],
        "woocommerce": [w for w in fakes.woo.writes if w.sku in skus],
    }
    lags: list[float] = []
    for sku, origin, expected, at in sent:
        other = "woocommerce" if origin == "shopify" else "shopify"
        # quantities only fall here: the first write at or below the expected figure is the
        # one that carried this order (alone, or coalesced with later ones)
        acked = next(w.at for w in writes[other] if w.sku == sku and w.quantity <= expected)
        lags.append(max(0.0, acked - at))
    assert len(lags) == len(skus) * per_sku
    p50, p95, p99 = (_percentile(lags, p) for p in (50, 95, 99))
    print(
        f"\n[connectors lag] {len(lags)} orders in {elapsed:.1f}s "
        f"({len(lags) / elapsed:.0f}/s); webhook arrival -> other channel acknowledged: "
        f"p50={p50 * 1000:.0f}ms p95={p95 * 1000:.0f}ms p99={p99 * 1000:.0f}ms "
        f"max={max(lags) * 1000:.0f}ms mean={statistics.mean(lags) * 1000:.0f}ms; "
        f"writes shopify={len(writes['shopify'])} woocommerce={len(writes['woocommerce'])}"
    )
    for channel, log in writes.items():
        for sku in skus:
            seen = [w.quantity for w in log if w.sku == sku]
            assert seen == sorted(seen, reverse=True), f"{channel} {sku}: a newer level undone"
