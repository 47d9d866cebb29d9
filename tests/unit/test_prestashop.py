"""PrestaShop: orders polled in (state ids, details), stock_availables out (full XML PUT,
row ids kept, read-after-write), prices, configuration; against the fake webservice."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import aiohttp
import orjson
import pytest

from connectors.config import ConnectorConfigError, parse_connectors_config
from connectors.framework.cancellations import ALREADY, CANCELLED, CancelRequest
from connectors.framework.engine import OutboundEngine
from connectors.framework.intake import Intake
from connectors.framework.polling import Poller
from connectors.framework.prices import PriceItem
from connectors.framework.refusals import Refusal
from connectors.framework.types import Outcome, PushItem, RejectedError
from connectors.prestashop.cancel import PrestaCanceller, PrestaRefusals
from connectors.prestashop.client import PrestaClient, PrestaError
from connectors.prestashop.inbound import PrestaInbound
from connectors.prestashop.mapping import PrestaMapping, PrestaProduct
from connectors.prestashop.outbound import PrestaPusher
from connectors.price_writers import writer_for
from connectors.testing.prestashop import FakePrestaShop
from schemas.times import now_ms
from tests.fakes.harness import Published

MAPPING = PrestaMapping(
    shop="https://shop.example/",
    products=(
        PrestaProduct("chair", 1),
        PrestaProduct("table", 2),
        PrestaProduct("lamp-red", 3, 31),
    ),
)


def _seed(fake: FakePrestaShop) -> None:
    fake.add_product(1, 50)
    fake.add_product(2, 50)
    fake.add_product(3, 50, combination=31)


def run(scenario: Callable[[FakePrestaShop, PrestaClient], Awaitable[None]]) -> None:
    async def main() -> None:
        async with FakePrestaShop() as fake, aiohttp.ClientSession() as session:
            _seed(fake)
            await scenario(fake, PrestaClient(session, fake.url, fake.key, products={"chair": 1}))

    asyncio.run(main())


def _item(sku: str, qty: int, version: int = 1) -> PushItem:
    return PushItem("prestashop", sku, qty, version, now_ms())


def test_polled_orders_reserve_ship_and_return_once_whatever_the_repolls() -> None:
    """Given an order of 2 chairs and 1 red lamp (a combination) polled as paid,
    when it is polled again, then shipped (state 4) and polled, then 1 chair comes back
    through a merchandise return and it is polled twice more,
    then the intake published each row's order_placed and order_shipped once and exactly
    one return_received of 1 chair (resellable), with ids made of the shop's ids."""

    async def scenario(fake: FakePrestaShop, client: PrestaClient) -> None:
        published = Published()
        poller = Poller(
            PrestaInbound(MAPPING, client), Intake(published), checkpoint_ms=now_ms() - 60_000
        )
        order = fake.place_order([(1, 0, 2), (3, 31, 1)], state=2)
        await poller.poll_once()
        await poller.poll_once()
        fake.set_state(order["id"], 4)
        await poller.poll_once()
        chair_detail = order["associations"]["order_rows"][0]["id"]
        fake.return_units(order["id"], chair_detail, 1)
        await poller.poll_once()
        await poller.poll_once()
        got = [(e["type"], e["sku"], e["qty"]) for e in published.events]
        assert got == [
            ("order_placed", "chair", 2),
            ("order_placed", "lamp-red", 1),
            ("order_shipped", "chair", 0),
            ("order_shipped", "lamp-red", 0),
            ("return_received", "chair", 1),
        ]
        assert published.events[-1]["disposition"] == "resellable"
        assert published.events[0]["order_id"] == f"prestashop:{order['id']}"
        assert published.events[0]["event_id"].startswith("prestashop/https://shop.example//order/")

    run(scenario)


def test_cancelled_and_refunded_orders_release_and_unpaid_orders_wait_when_configured() -> None:
    """Given the default state ids, an order polled paid then cancelled (6) and one polled
    paid then refunded (7) before shipping release every row (order_cancelled qty 0); an
    order first seen cancelled reserves nothing; with reserve_unpaid false an order awaiting
    payment (state 10) gives nothing until it is paid (2)."""

    async def scenario(fake: FakePrestaShop, client: PrestaClient) -> None:
        inbound = PrestaInbound(MAPPING, client)
        for state, reason in ((6, "cancelled"), (7, "refunded")):
            order = fake.place_order([(1, 0, 2)])
            placed = (await inbound.normalise(_as_sent(order))).events
            later = (await inbound.normalise(_as_sent(fake.set_state(order["id"], state)))).events
            assert [(e["type"], e["qty"]) for e in placed] == [("order_placed", 2)]
            assert [(e["type"], e["qty"], e["reason"]) for e in later] == [
                ("order_cancelled", 0, reason)
            ]
        strict = PrestaInbound(
            PrestaMapping(shop="s", products=MAPPING.products, reserve_unpaid=False), client
        )
        unpaid = fake.place_order([(1, 0, 1)], state=10)
        assert (await strict.normalise(_as_sent(unpaid))).events == []
        paid = fake.set_state(unpaid["id"], 2)
        assert [e["type"] for e in (await strict.normalise(_as_sent(paid))).events] == [
            "order_placed"
        ]

    run(scenario)


def _as_sent(order: dict[str, Any]) -> dict[str, Any]:
    """The order as the webservice's JSON carries it (every scalar a string)."""
    from connectors.testing.prestashop import as_json

    result: dict[str, Any] = as_json(order)
    return result


def test_book_mode_gives_order_records_without_personal_data() -> None:
    """Given orders: book, when a shipped order with a returned unit is normalised, then it
    is placed, shipped and returned Order records (unit price in minor units, EUR; ship-to
    FR 75011 read with only the country and postcode fields displayed) and only the
    return_received StockEvent; no name, street or phone reaches the records."""

    async def scenario(fake: FakePrestaShop, client: PrestaClient) -> None:
        order = fake.place_order([(1, 0, 2)])
        fake.set_state(order["id"], 5)
        fake.return_units(order["id"], order["associations"]["order_rows"][0]["id"], 1)
        delivery = await PrestaInbound(MAPPING, client, orders_mode="book").normalise(
            _as_sent(fake.orders[order["id"]])
        )
        assert [o["type"] for o in delivery.orders] == ["placed", "shipped", "returned"]
        assert delivery.orders[0]["lines"][0]["unit_price"] == 1000
        ship_to = delivery.orders[0]["ship_to"]
        assert (ship_to["country"], ship_to["postal_code"]) == ("FR", "75011")
        assert fake.address_reads == ["[id,id_country,postcode]"]
        assert [e["type"] for e in delivery.events] == ["return_received"]
        text = orjson.dumps(delivery.orders).decode()
        for personal in ("Jeanne", "Martin", "Oberkampf", "+3361", "id_customer"):
            assert personal not in text

    run(scenario)


def test_an_unreadable_order_is_set_aside_and_the_orders_around_it_go_through() -> None:
    """Given three changed orders, the middle one with an unreadable date, when polled,
    then the other two are published, the bad one is handed to the dead-letter sink with
    the reason (once, however often it is polled), and the poll does not fail."""

    async def scenario(fake: FakePrestaShop, client: PrestaClient) -> None:
        published = Published()
        bad: list[tuple[str, str]] = []

        async def unreadable(order: Any, error: str) -> None:
            bad.append((str(order["id"]), error))

        inbound = PrestaInbound(MAPPING, client, unreadable=unreadable)
        first = fake.place_order([(1, 0, 1)])
        broken = fake.place_order([(2, 0, 1)])
        last = fake.place_order([(1, 0, 1)])
        broken["date_add"] = "yesterday"
        poller = Poller(inbound, Intake(published), checkpoint_ms=now_ms() - 60_000)
        assert await poller.poll_once() == 2
        await poller.poll_once()  # the bad order is read again: set aside once only
        assert {e["order_id"] for e in published.events} == {
            f"prestashop:{first['id']}",
            f"prestashop:{last['id']}",
        }
        [(order_id, reason)] = bad
        assert order_id == str(broken["id"]) and "unreadable" in reason

    run(scenario)


def test_a_push_puts_the_full_row_keeps_its_id_and_reads_it_back() -> None:
    """Given a row with a location set in the back office, when chair is pushed 7 then 9,
    then each PUT carried every field of the row (location kept) with the new quantity, the
    row was searched once (its id kept), each write was read back, and the shop shows 9;
    with stock_write patch only the id and quantity are sent and the location stays."""

    async def scenario(fake: FakePrestaShop, client: PrestaClient) -> None:
        fake.row(1)["location"] = "A-12"
        pusher = PrestaPusher(client, MAPPING)
        assert [r.outcome for r in await pusher.push([_item("chair", 7)])] == [Outcome.OK]
        assert [r.outcome for r in await pusher.push([_item("chair", 9, 2)])] == [Outcome.OK]
        assert fake.qty(1) == 9 and fake.row(1)["location"] == "A-12"
        assert set(fake.puts[0]) >= {"id", "id_product", "id_shop", "quantity", "location"}
        searches = [r for r in fake.requests if r == ("GET", "/api/stock_availables")]
        reads = [r for r in fake.requests if r[0] == "GET" and r[1].startswith("/api/stock_av")]
        assert len(searches) == 1 and len(reads) == 3  # one search, two reads after write
        patching = PrestaPusher(client, replace(MAPPING, stock_write="patch"))
        assert [r.outcome for r in await patching.push([_item("chair", 11, 3)])] == [Outcome.OK]
        assert fake.puts[-1] == {"id": str(fake.row(1)["id"]), "quantity": "11"}
        assert fake.qty(1) == 11 and fake.row(1)["location"] == "A-12"

    run(scenario)


def test_a_write_overwritten_at_once_is_pushed_again_until_the_shop_shows_it() -> None:
    """Given another writer that sets chair to 3 right after our next PUT, when the engine
    pushes 12, then the read after write sees 3 (retry, not acknowledged), the engine pushes
    again and the shop ends at 12 (acknowledged)."""

    async def scenario(fake: FakePrestaShop, client: PrestaClient) -> None:
        fake.overwrite_after_put(3)
        pusher = PrestaPusher(client, MAPPING)
        [first] = await pusher.push([_item("chair", 12)])
        assert first.outcome is Outcome.RETRY and "shows 3" in first.error
        async with OutboundEngine([pusher], seed=1) as engine:
            engine.lanes["prestashop"].offer(_item("chair", 12, 2))
            await engine.drained(10)
            assert engine.lanes["prestashop"].acked["chair"].quantity == 12
        assert fake.qty(1) == 12

    run(scenario)


def test_refusals_outages_and_a_recreated_row() -> None:
    """Given a row under advanced stock management, a SKU with no row, a 429 and a down
    shop: the first is refused (drift) while the rest of its batch is written, the second
    refused, the 429 retried after the shop's Retry-After, a 503 outage retries every item
    of the batch after one request; a row recreated under a new id (404 on the kept id) is
    found again on the next push."""

    async def scenario(fake: FakePrestaShop, client: PrestaClient) -> None:
        pusher = PrestaPusher(client, MAPPING)
        fake.row(2)["depends_on_stock"] = 1
        mapping = PrestaMapping(shop="s", products=(PrestaProduct("ghost", 99),))
        managed, chair = await pusher.push([_item("table", 5), _item("chair", 4)])
        [ghost] = await PrestaPusher(client, mapping).push([_item("ghost", 5)])
        assert (managed.outcome, ghost.outcome) == (Outcome.REFUSED, Outcome.REFUSED)
        assert chair.outcome is Outcome.OK and fake.qty(1) == 4  # the rest of the batch went
        fake.fail_next(1, status=429, retry_after=2)
        [throttled] = await pusher.push([_item("chair", 5, 2)])
        assert (throttled.outcome, throttled.retry_after) == (Outcome.RETRY, 2.0)
        fake.down(30, status=503)
        before = len(fake.requests)
        results = await pusher.push([_item("chair", 5, 2), _item("lamp-red", 5, 2)])
        assert [r.outcome for r in results] == [Outcome.RETRY, Outcome.RETRY]
        assert len(fake.requests) - before == 1
        fake.down(0)
        old = fake.row(1)
        del fake.stock[old["id"]]
        fake.add_product(1, 4)
        [gone] = await pusher.push([_item("chair", 6, 3)])
        [again] = await pusher.push([_item("chair", 6, 3)])
        assert (gone.outcome, again.outcome, fake.qty(1)) == (Outcome.RETRY, Outcome.OK, 6)

    run(scenario)


def test_reconciliation_reads_every_row_in_one_request() -> None:
    """Given rows whose ids are known, when read, then one filtered request returns each
    SKU's quantity, including a back-office edit."""

    async def scenario(fake: FakePrestaShop, client: PrestaClient) -> None:
        pusher = PrestaPusher(client, MAPPING)
        await pusher.push([_item("chair", 8), _item("lamp-red", 2)])
        fake.set_quantity(1, 5)
        before = len(fake.requests)
        assert await pusher.read(["chair", "lamp-red"]) == {"chair": 5, "lamp-red": 2}
        assert len(fake.requests) - before == 1

    run(scenario)


def test_the_webservice_key_is_the_basic_user_and_a_wrong_one_is_refused() -> None:
    """Given a client with a wrong key, when it reads, then PrestaShop answers 401 and the
    error does not contain the key; the fake refuses a date filter without date=1 and a PUT
    without a required field."""

    async def scenario(fake: FakePrestaShop, client: PrestaClient) -> None:
        async with aiohttp.ClientSession() as session:
            wrong = PrestaClient(session, fake.url, "WRONGKEY0000000000000000000000")
            with pytest.raises(PrestaError) as caught:
                await wrong.stock_availables(id_product="1")
            assert caught.value.status == 401 and "WRONGKEY" not in str(caught.value)
            with pytest.raises(PrestaError, match="date=1"):
                await client.request("GET", "/orders", params={"filter[date_upd]": "[a,b]"})
            row = dict(await client.stock_available(fake.row(1)["id"]))
            del row["quantity"]
            with pytest.raises(PrestaError, match="quantity"):
                await client.put_stock_available(row)

    run(scenario)


def test_set_prices_puts_the_whole_product_with_the_new_price() -> None:
    """Given chair at 10.00, when its price is set to 1999 minor units, then the product
    shows 19.990000 and keeps its name and reference, and reads back as 1999; a SKU without
    a product, or a price in another currency than the shop's, is refused; a down shop is
    a retry. The client is the channel kind's writer."""

    async def scenario(fake: FakePrestaShop, client: PrestaClient) -> None:
        results = await client.set_prices(
            [
                PriceItem("chair", 1999, "EUR"),
                PriceItem("ghost", 100, "EUR"),
                PriceItem("chair", 2500, "USD"),
            ]
        )
        assert [(r.sku, r.outcome) for r in results] == [
            ("chair", Outcome.OK),
            ("ghost", Outcome.REFUSED),
            ("chair", Outcome.REFUSED),
        ]
        assert fake.products[1]["price"] == "19.990000"
        assert fake.products[1]["name"] == "Product 1"
        assert fake.products[1]["reference"] == "ref-1"
        assert await client.get_prices(["chair", "ghost"]) == {"chair": 1999}
        assert writer_for("prestashop", client, MAPPING) is client
        fake.down(5, status=503)
        [down] = await client.set_prices([PriceItem("chair", 2099, "EUR")])
        assert down.outcome is Outcome.RETRY

    run(scenario)


def test_configuration_of_a_prestashop_channel() -> None:
    """Given a prestashop entry with a webservice key and custom state ids, when parsed,
    then it needs no webhook secret and keeps the ids; an unknown timezone or state kind
    is an error naming the mapping."""

    def config(**mapping: Any) -> dict[str, Any]:
        return {
            "channels": [
                {
                    "name": "ps",
                    "kind": "prestashop",
                    "base_url": "https://shop.example",
                    "credentials": {"webservice_key": "KEY"},
                    "mapping": {
                        "shop": "https://shop.example/",
                        "products": [{"sku": "a", "product_id": 1, "combination_id": 2}],
                        **mapping,
                    },
                }
            ]
        }

    [channel] = parse_connectors_config(config(states={"shipped": [4, 5, 20]})).channels
    assert isinstance(channel.mapping, PrestaMapping)
    assert channel.mapping.state("20") == "shipped" and channel.skus == {"a"}
    assert channel.webhook_secrets == () and channel.secret("webservice_key") == "KEY"
    with pytest.raises(ConnectorConfigError, match=r"channels\[0\]\.mapping.*timezone"):
        parse_connectors_config(config(timezone="Mars/Olympus"))
    with pytest.raises(ConnectorConfigError, match="unknown"):
        parse_connectors_config(config(states={"lost": [1]}))


def test_cancellations_and_refusals_go_through_order_histories_and_private_messages() -> None:
    """Given a paid order and a shipped one, when the first is cancelled from here twice and
    flagged twice for one line, then one order_histories record moved it to state 6 (the
    second cancel is 'already'), one private message carries the line's marker; cancelling
    the shipped order is refused."""

    async def scenario(fake: FakePrestaShop, client: PrestaClient) -> None:
        open_order = fake.place_order([(1, 0, 1)])
        shipped = fake.set_state(fake.place_order([(2, 0, 1)])["id"], 4)
        canceller = PrestaCanceller(client, MAPPING)

        def request(oid: int) -> CancelRequest:
            return CancelRequest(f"prestashop:{oid}", "prestashop", str(oid), 3, "ops")

        assert await canceller.cancel_order(request(open_order["id"])) == CANCELLED
        assert await canceller.cancel_order(request(open_order["id"])) == ALREADY
        with pytest.raises(RejectedError):
            await canceller.cancel_order(request(shipped["id"]))
        assert [h for h in fake.histories if h["id_order"] == open_order["id"]] == [
            {"id_order": open_order["id"], "id_order_state": 6}
        ]
        refusal = Refusal("d1", "prestashop", str(shipped["id"]), "9", "table", 1, "oversell", 0)
        refusals = PrestaRefusals(client, MAPPING)
        await refusals.flag(refusal)
        await refusals.flag(refusal)
        [message] = fake.messages
        assert message["private"] == "1" and message["message"].startswith("[stockflow line 9]")

    run(scenario)
