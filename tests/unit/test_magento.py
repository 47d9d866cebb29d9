"""Magento: orders, shipments and credit memos in; source items out (sync and async bulk);
base prices; configuration. Against the fake Magento over real HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest

from connectors.config import ConnectorConfigError, parse_connectors_config
from connectors.framework.prices import PriceItem
from connectors.framework.types import Outcome, PushItem
from connectors.magento.client import MagentoClient
from connectors.magento.inbound import MagentoInbound
from connectors.magento.mapping import BulkOptions, MagentoMapping
from connectors.magento.outbound import MagentoPusher
from connectors.magento.wiring import _without_personal_data
from connectors.price_writers import writer_for
from connectors.testing.magento import FakeMagento

SKUS = ("chair", "table", "lamp")


def mapping(*, bulk: bool = False, restock: bool = False) -> MagentoMapping:
    return MagentoMapping(
        store="shop.example",
        push_source="default",
        sources={"default": "main", "north": "north"},
        skus=SKUS,
        refunds_restock=restock,
        bulk=BulkOptions(enabled=bulk, poll_s=0.05, wait_s=5),
    )


@asynccontextmanager
async def magento(**fake_options: Any) -> AsyncIterator[tuple[FakeMagento, MagentoClient]]:
    async with FakeMagento(sources=("default", "north"), **fake_options) as fake:
        for sku in SKUS:
            fake.add_product(sku, 5)
        async with aiohttp.ClientSession() as session:
            yield fake, MagentoClient(session, fake.url, fake.token)


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(scenario())  # type: ignore[arg-type]


def item(sku: str, qty: int, version: int = 1) -> PushItem:
    return PushItem("magento", sku, qty, version, 0)


def test_an_order_polled_is_placed_then_its_shipment_consumes_the_reservation_at_its_source() -> (
    None
):
    """Given an order of two lines polled, when one line ships from source north and the
    order is polled again, then each line was placed once and the shipped line has an
    order_shipped of its shipped qty at north's location; a configurable parent row is
    skipped and its simple child counted."""

    async def scenario() -> None:
        async with magento() as (fake, client):
            inbound = MagentoInbound(mapping(), client)
            order = fake.place_order([("chair", 2), ("table", 1)])
            child = order["items"][0]
            order["items"].insert(
                0, {**child, "item_id": 1, "product_type": "configurable", "sku": "chair-cfg"}
            )
            child["parent_item_id"] = 1
            deliveries, _ = await inbound.changed_since(0)
            assert [(e["type"], e["sku"], e["qty"]) for e in deliveries[0].events] == [
                ("order_placed", "chair", 2),
                ("order_placed", "table", 1),
            ]
            fake.ship(order["entity_id"], {"chair": 2}, source="north")
            deliveries, _ = await inbound.changed_since(0)
            events = deliveries[0].events
            shipped = [e for e in events if e["type"] == "order_shipped"]
            assert [(e["sku"], e["qty"], e["location"]) for e in shipped] == [("chair", 2, "north")]
            assert {e["event_id"] for e in events if e["type"] == "order_placed"} == {
                f"magento/shop.example/order/{order['entity_id']}/line/{i['item_id']}/placed"
                for i in order["items"][1:]
            }

    run(scenario)


def test_credit_memos_release_unshipped_units_and_return_only_units_put_back_in_stock() -> None:
    """Given an order of 3 chairs, 2 shipped, when a memo refunds 1 shipped chair without a
    return and a second memo refunds 2 (1 shipped, returned to stock; 1 never shipped), then
    one unit is released and one comes back resellable; with refunds_restock every shipped
    refunded unit comes back."""

    async def scenario() -> None:
        async with magento() as (fake, client):
            order = fake.place_order([("chair", 3)])
            oid = order["entity_id"]
            fake.ship(oid, {"chair": 2})
            fake.refund(oid, {"chair": 1}, return_to_stock=False)
            fake.refund(oid, {"chair": 2}, return_to_stock=True)
            deliveries, _ = await MagentoInbound(mapping(), client).changed_since(0)
            facts = [
                (e["type"], e["qty"])
                for e in deliveries[0].events
                if e["type"] in ("order_cancelled", "return_received")
            ]
            assert facts == [("order_cancelled", 1), ("return_received", 1)]
            deliveries, _ = await MagentoInbound(mapping(restock=True), client).changed_since(0)
            returned = [e["qty"] for e in deliveries[0].events if e["type"] == "return_received"]
            assert returned == [1, 1]

    run(scenario)


def test_in_book_mode_an_order_is_records_without_personal_data_and_only_returns_stay_events() -> (
    None
):
    """Given an order shipped and partly refunded with return to stock, when polled in book
    mode, then the Order records are placed, shipped and returned, the ship-to is country
    and postcode only, and the only StockEvent is the return_received."""

    async def scenario() -> None:
        async with magento() as (fake, client):
            order = fake.place_order([("lamp", 2)])
            fake.ship(order["entity_id"])
            fake.refund(order["entity_id"], {"lamp": 1})
            inbound = MagentoInbound(mapping(), client, orders_mode="book")
            deliveries, _ = await inbound.changed_since(0)
            d = deliveries[0]
            assert [o["type"] for o in d.orders] == ["placed", "shipped", "returned"]
            assert d.orders[0]["ship_to"]["country"] == "ES"
            assert d.orders[0]["lines"][0]["unit_price"] == 1000
            assert "Lopez" not in repr(d.orders) and "Calle" not in repr(d.orders)
            assert [e["type"] for e in d.events] == ["return_received"]

    run(scenario)


def test_a_cancelled_order_releases_every_line_and_an_unreadable_order_is_dead_lettered() -> None:
    """Given a cancelled order and an order in an unknown state, when polled, then the
    cancelled one releases its lines, the unknown one is dead-lettered without personal
    data and the poll keeps the good order and moves its checkpoint past both."""

    async def scenario() -> None:
        async with magento() as (fake, client):
            good = fake.place_order([("chair", 1)])
            fake.cancel(good["entity_id"])
            bad = fake.place_order([("table", 1)], state="teleported")
            letters: list[tuple[int, bytes, str]] = []

            async def sink(order_id: int, raw: bytes, error: str) -> None:
                letters.append((order_id, _without_personal_data(raw), error))

            inbound = MagentoInbound(mapping(), client)
            inbound.dead_letter = sink
            deliveries, newest = await inbound.changed_since(0)
            assert [(e["type"], e["qty"]) for e in deliveries[0].events] == [("order_cancelled", 0)]
            assert [(oid, "teleported" in err) for oid, _, err in letters] == [
                (bad["entity_id"], True)
            ]
            assert b"Lopez" not in letters[0][1] and b"example.org" not in letters[0][1]
            assert newest >= deliveries[0].order_version

    run(scenario)


def test_polling_reads_every_page_although_magento_repeats_the_last_page() -> None:
    """Given 600 orders (exactly 2 pages of 300; Magento answers page 3 with page 2 again),
    when polled, then each order is read once and the paging stops."""

    async def scenario() -> None:
        async with magento() as (fake, client):
            for _ in range(600):
                fake.place_order([("chair", 1)])
            orders = await asyncio.wait_for(client.orders_updated_since(0), 10)
            assert len({o["entity_id"] for o in orders}) == len(orders) == 600

    run(scenario)


def test_a_sync_batch_over_the_input_limit_is_split_and_a_bad_item_is_isolated() -> None:
    """Given the 20-item input limit and a batch of 25 with one unknown SKU, when pushed,
    then every known item is written and only the unknown one is refused."""

    async def scenario() -> None:
        async with magento() as (fake, client):
            skus = [f"s{n}" for n in range(24)]
            for sku in skus:
                fake.add_product(sku)
            m = MagentoMapping(store="x", skus=(*skus, "ghost"))
            pusher = MagentoPusher(client, m, max_batch=100)
            assert pusher.max_batch == 20
            fake.add_product("ghost")
            del fake.products["ghost"]  # mapped here, unknown to Magento
            results = await pusher.push([item(s, 7) for s in (*skus, "ghost")])
            outcomes = {r.item.sku: r.outcome for r in results}
            assert outcomes.pop("ghost") == Outcome.REFUSED
            assert set(outcomes.values()) == {Outcome.OK}
            assert all(fake.quantity(s) == 7 for s in skus)
            assert await pusher.read(skus[:2]) == {skus[0]: 7, skus[1]: 7}

    run(scenario)


def test_async_bulk_completes_later_and_per_item_failures_are_retried_or_failed() -> None:
    """Given async bulk writes, when chair's operation fails retriably (2) and table's for
    good (3), then lamp is ok and written after the delay, chair is retried and table
    failed with Magento's message; a 429 on the bulk post retries every item."""

    async def scenario() -> None:
        async with magento(bulk_delay_s=0.2) as (fake, client):
            pusher = MagentoPusher(client, mapping(bulk=True), max_batch=100)
            fake.bulk_fail("chair", 2)
            fake.bulk_fail("table", 3, message="Invalid source item")
            results = await pusher.push([item("chair", 1), item("table", 2), item("lamp", 3)])
            got = {r.item.sku: (r.outcome, r.error) for r in results}
            assert got["lamp"] == (Outcome.OK, "")
            assert got["chair"][0] == Outcome.RETRY
            assert got["table"][0] == Outcome.FAILED and "Invalid source item" in got["table"][1]
            assert (fake.quantity("lamp"), fake.quantity("chair"), fake.quantity("table")) == (
                3,
                5,
                5,
            )
            fake.fail_next(1, 429, retry_after=0.1)
            retried = await pusher.push([item("chair", 4, version=2)])
            assert [(r.outcome, r.retry_after) for r in retried] == [(Outcome.RETRY, 0.1)]
            again = await pusher.push([item("chair", 4, version=2)])
            assert [r.outcome for r in again] == [Outcome.OK] and fake.quantity("chair") == 4

    run(scenario)


def test_base_prices_are_written_and_an_unknown_sku_is_refused_inside_the_200() -> None:
    """Given the writer registered for Magento, when two prices are written, one for a SKU
    Magento does not know, then the known one is saved at 19.99 (and reads back as 1999),
    the unknown one is refused with Magento's message; during an outage the item is to be
    retried, not raised."""

    async def scenario() -> None:
        async with magento() as (fake, client):
            writer = writer_for("magento", client, mapping())
            assert writer is client
            results = await writer.set_prices(
                [PriceItem("chair", 1999, "EUR"), PriceItem("nope", 500, "EUR")]
            )
            assert [(r.sku, r.outcome) for r in results] == [
                ("chair", Outcome.OK),
                ("nope", Outcome.REFUSED),
            ]
            assert "nope" in results[1].error
            assert fake.products["chair"] == 19.99
            assert await client.get_prices(["chair", "nope"]) == {"chair": 1999}
            fake.down(5, status=503)
            down = await client.set_prices([PriceItem("chair", 2499, "EUR")])
            assert [r.outcome for r in down] == [Outcome.RETRY]

    run(scenario)


def test_a_wrong_token_is_rejected_and_never_printed() -> None:
    """Given a client with a wrong token, when it polls, then the error says 401 and does
    not contain the token."""

    async def scenario() -> None:
        async with FakeMagento() as fake, aiohttp.ClientSession() as session:
            client = MagentoClient(session, fake.url, "wrong-secret-token")
            with pytest.raises(Exception) as caught:
                await client.orders_updated_since(0)
            assert "401" in str(caught.value) and "wrong-secret-token" not in str(caught.value)

    run(scenario)


def test_the_configuration_takes_a_magento_channel_and_names_a_bad_key() -> None:
    """Given a Magento channel entry, when parsed, then its mapping and bulk options are
    read; an unknown bulk key is refused with its path."""
    entry: dict[str, Any] = {
        "name": "magento",
        "kind": "magento",
        "base_url": "https://shop.example",
        "credentials": {"token": "t"},
        "limits": {"per_s": 4, "burst": 8},
        "mapping": {
            "store": "shop.example",
            "sources": {"default": "main"},
            "skus": ["chair"],
            "bulk": {"enabled": True, "poll_s": 0.5},
        },
    }
    config = parse_connectors_config({"channels": [entry]})
    m = config.channels[0].mapping
    assert isinstance(m, MagentoMapping) and m.bulk.enabled and m.bulk.poll_s == 0.5
    assert config.channels[0].skus == frozenset({"chair"})
    entry["mapping"]["bulk"]["often"] = 1
    with pytest.raises(ConnectorConfigError, match="mapping"):
        parse_connectors_config({"channels": [entry]})


def test_the_source_item_gets_the_physical_figure_so_magento_does_not_subtract_orders_twice() -> (
    None
):
    """Given an open Magento order of 2 chairs placed before the connector started, when
    the channel figure 5 is pushed, then the source item is written 7 (Magento's salable
    is 5) and read back as 5; once the order ships (Magento deducted 2 from the source),
    the next push writes the figure itself."""

    async def scenario() -> None:
        async with magento() as (fake, client):
            order = fake.place_order([("chair", 2)])
            pusher = MagentoPusher(client, mapping())
            assert [r.outcome for r in await pusher.push([item("chair", 5)])] == [Outcome.OK]
            assert (fake.quantity("chair"), fake.salable("chair")) == (7, 5)
            assert await pusher.read(["chair"]) == {"chair": 5}
            fake.ship(order["entity_id"])
            inbound = MagentoInbound(mapping(), client, reservations=pusher.reservations)
            await inbound.changed_since(0)
            await pusher.push([item("chair", 5, version=2)])
            assert (fake.quantity("chair"), fake.salable("chair")) == (5, 5)

    run(scenario)
