"""eMAG: orders called back and polled in (statuses, the acceptance gate), order answers
(acknowledge, cancel with eMAG's out-of-stock reason), offer stock out (batches of 50, the
envelope, campaign locks), the split rate limits and the configuration; against the fake."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from connectors.config import ConnectorConfigError, parse_connectors_config
from connectors.emag.acceptance import OUT_OF_STOCK, EmagOrders
from connectors.emag.callback import callback_routes
from connectors.emag.client import EmagClient, EmagError
from connectors.emag.inbound import EmagInbound
from connectors.emag.limits import EmagLimits
from connectors.emag.mapping import EmagMapping, EmagProduct
from connectors.emag.outbound import EmagPusher
from connectors.emag.shipping import EmagShipper
from connectors.framework.acceptance import AwaitedLine, AwaitedOrder
from connectors.framework.intake import Intake
from connectors.framework.polling import Poller
from connectors.framework.shipments import ALREADY, SHIPPED, ShipNotice
from connectors.framework.types import (
    Outcome,
    PushItem,
    RejectedError,
    ThrottledError,
    UnavailableError,
)
from connectors.testing.emag import FakeEmag
from schemas.times import now_ms
from tests.fakes.harness import Published

CHANNEL = "emag-ro"
MAPPING = EmagMapping(
    account="ro",
    products=tuple(EmagProduct(f"sku-{n}", 1000 + n) for n in range(1, 121)),
    channel=CHANNEL,
)
FAST = {"orders_per_s": 1000.0, "others_per_s": 1000.0}


class Gate:
    """Records what the inbound asks the acceptance gate to wait for."""

    def __init__(self) -> None:
        self.expected: list[AwaitedOrder] = []

    def expect(self, order: AwaitedOrder) -> None:
        self.expected.append(order)


Scenario = Callable[[FakeEmag, EmagClient], Awaitable[None]]


def run(scenario: Scenario, *, fake_limits: bool = False, **limits: float) -> None:
    async def main() -> None:
        rates = {} if fake_limits else {"orders_per_s": 10_000, "others_per_s": 10_000}
        async with FakeEmag(**rates) as fake, aiohttp.ClientSession() as session:  # type: ignore[arg-type]
            for p in MAPPING.products:
                fake.add_offer(p.offer_id, p.sku, 5)
            client = EmagClient(
                session,
                f"{fake.url}/api-3",
                fake.username,
                fake.password,
                channel=CHANNEL,
                limits=EmagLimits(CHANNEL, **(limits or FAST)),
            )
            await scenario(fake, client)

    asyncio.run(main())


def _item(sku: str, qty: int, version: int = 1) -> PushItem:
    return PushItem(CHANNEL, sku, qty, version, now_ms())


def test_a_new_order_waits_for_the_gate_and_each_status_is_published_once() -> None:
    """Given a new eMAG order of 2 x sku-1 and 1 x sku-2 (with the customer's name, phone
    and address), an FBE order and an order of an unmapped offer, when it is polled
    twice, then the gate is asked once per poll to wait for the new order (its lines, no
    deadline) and one order_placed per line is published, with ids of eMAG's line ids and no
    personal data; the FBE order publishes nothing; when it is finalized then one
    order_shipped per line; another order canceled by the customer releases with the
    ``…/cancelled`` ids the gate uses."""

    async def scenario(fake: FakeEmag, client: EmagClient) -> None:
        published = Published()
        gate = Gate()
        inbound = EmagInbound(MAPPING, client)
        inbound.acceptance_gate = gate  # type: ignore[assignment]
        poller = Poller(inbound, Intake(published), checkpoint_ms=now_ms() - 60_000)
        order = fake.place_order([(1001, 2), (1002, 1)])
        fake.place_order([(1001, 5)], order_type=2)
        fake.place_order([(5, 1)])
        await poller.poll_once()
        await poller.poll_once()
        lines = [line["id"] for line in order["products"]]
        assert gate.expected[0] == AwaitedOrder(
            CHANNEL,
            "ro",
            str(order["id"]),
            (AwaitedLine(str(lines[0]), "sku-1", 2), AwaitedLine(str(lines[1]), "sku-2", 1)),
            None,
        )
        assert published.ids == [
            f"{CHANNEL}/ro/order/{order['id']}/line/{lines[0]}/placed",
            f"{CHANNEL}/ro/order/{order['id']}/line/{lines[1]}/placed",
        ]
        text = str(published.events)
        assert "Popescu" not in text and "+40721" not in text and "Lipscani" not in text
        fake.set_status(order["id"], 4)
        await poller.poll_once()
        shipped = [e for e in published.events if e["type"] == "order_shipped"]
        assert [(e["sku"], e["qty"]) for e in shipped] == [("sku-1", 2), ("sku-2", 1)]
        other = fake.place_order([(1003, 1)])
        await poller.poll_once()
        fake.set_status(other["id"], 0)
        await poller.poll_once()
        await poller.poll_once()
        cancelled = [e for e in published.events if e["type"] == "order_cancelled"]
        line = other["products"][0]["id"]
        assert [e["event_id"] for e in cancelled] == [
            f"{CHANNEL}/ro/order/{other['id']}/line/{line}/cancelled"
        ]

    run(scenario)


def test_accept_acknowledges_and_refuse_cancels_with_the_out_of_stock_reason() -> None:
    """Given two new orders, when one is accepted twice and the other refused twice, then the
    first is acknowledged once (status 2) and the second canceled once with eMAG's reason 33
    (no longer in the seller's stock), the whole order sent back as read; accepting an order
    eMAG canceled meanwhile is refused (recorded by the gate, never retried)."""

    async def scenario(fake: FakeEmag, client: EmagClient) -> None:
        actions = EmagOrders(client, MAPPING)
        kept, refused, gone = (fake.place_order([(1001, 1)]) for _ in range(3))

        def awaited(order: dict[str, Any]) -> AwaitedOrder:
            return AwaitedOrder(CHANNEL, "ro", str(order["id"]), (), None)

        await actions.accept(awaited(kept))
        await actions.accept(awaited(kept))
        await actions.refuse(awaited(refused), "insufficient_stock")
        await actions.refuse(awaited(refused), "insufficient_stock")
        assert (fake.orders[kept["id"]]["status"], fake.acknowledged) == (2, [kept["id"]])
        assert fake.orders[refused["id"]]["status"] == 0
        assert fake.cancelled == [(refused["id"], 33)] == [(refused["id"], OUT_OF_STOCK)]
        fake.set_status(gone["id"], 0)
        with pytest.raises(RejectedError):
            await actions.accept(awaited(gone))

    run(scenario)


def test_stock_goes_in_batches_of_50_and_a_campaign_lock_is_drift_not_a_retry() -> None:
    """Given 120 SKUs to push, one offer locked in an active campaign and one whose
    documentation eMAG finds faulty, when they are pushed, then eMAG gets saves of at most
    50 offers; the locked offer is refused (a drift alert with our quantity and eMAG's) and
    keeps its stock; the faulty one, saved despite ``isError: true``, is confirmed by
    reading it back and counted ok, as is every other offer of the same batch."""

    async def scenario(fake: FakeEmag, client: EmagClient) -> None:
        alerts: list[tuple[str, str, int, int, str]] = []

        async def alert(channel: str, sku: str, ours: int, theirs: int, source: str) -> None:
            alerts.append((channel, sku, ours, theirs, source))

        fake.campaign(1007)
        fake.documentation_error(1008)
        pusher = EmagPusher(client, MAPPING, max_batch=100)
        pusher.alert = alert
        results = await pusher.push([_item(f"sku-{n}", 40 + n % 7) for n in range(1, 121)])
        assert [len(s) for s in fake.saves] == [50, 50, 20]
        outcomes = {r.item.sku: r.outcome for r in results}
        assert outcomes.pop("sku-7") is Outcome.REFUSED
        assert set(outcomes.values()) == {Outcome.OK}
        assert alerts == [(CHANNEL, "sku-7", 40, 5, "campaign_lock")]
        assert fake.stock(1007) == 5 and fake.stock(1008) == 41
        assert await pusher.read(["sku-7", "sku-8"]) == {"sku-7": 5, "sku-8": 41}

    run(scenario)


def test_an_unknown_offer_fails_a_throttle_retries_and_a_bare_answer_is_not_success() -> None:
    """Given an offer eMAG does not know, then a 429, then a 200 without the isError
    envelope, when one SKU is pushed each time, then the unknown offer fails with eMAG's
    message (dead letter), the throttle asks for a retry after eMAG's window, and the bare
    answer is an outage (alerted), never a success."""

    async def scenario(fake: FakeEmag, client: EmagClient) -> None:
        pusher = EmagPusher(client, MAPPING)
        del fake.offers[1001]
        [unknown] = await pusher.push([_item("sku-1", 3)])
        assert unknown.outcome is Outcome.FAILED and "Offer 1001: not found" in unknown.error
        fake.fail_next(1, 429)
        [throttled] = await pusher.push([_item("sku-2", 3)])
        assert (throttled.outcome, throttled.retry_after) == (Outcome.RETRY, 1.0)
        fake.bare_next(1)
        [bare] = await pusher.push([_item("sku-3", 3)])
        assert bare.outcome is Outcome.RETRY and "isError" in bare.error
        with pytest.raises(UnavailableError):
            fake.bare_next(1)
            await client.orders(status=1)

    run(scenario)


def test_the_client_keeps_each_route_under_its_own_limit() -> None:
    """Given the fake enforcing 12 order requests/s and 3 other requests/s, when 24 order
    reads and 6 offer reads are made at once through the client's limits, then eMAG throttles
    none; with the other routes' limit set above eMAG's, a burst of offer reads is answered
    429 (ThrottledError), while order reads still go through."""

    async def scenario(fake: FakeEmag, client: EmagClient) -> None:
        await asyncio.gather(
            *(client.orders(status=1) for _ in range(24)),
            *(client.offer_stock([1001], 1) for _ in range(6)),
        )
        assert fake.throttled_requests == fake.over_limit == 0
        assert fake.invalid_requests == 0

    run(scenario, fake_limits=True, orders_per_s=12, others_per_s=3)

    async def too_fast(fake: FakeEmag, client: EmagClient) -> None:
        outcomes = await asyncio.gather(
            *(client.offer_stock([1001], 1) for _ in range(8)), return_exceptions=True
        )
        assert any(isinstance(o, ThrottledError) for o in outcomes) and fake.over_limit > 0
        await client.orders(status=1)  # the order routes have their own window

    run(too_fast, fake_limits=True, orders_per_s=12, others_per_s=50)


def test_the_callback_needs_its_key_and_reads_the_order_from_emag() -> None:
    """Given the callback route of the channel, when eMAG's fake calls it back for a new
    order with the right key, then the order is read from eMAG and its lines published;
    a call with another key is answered 404 and publishes nothing; one without a numeric
    order_id 400."""

    async def scenario(fake: FakeEmag, client: EmagClient) -> None:
        published = Published()
        inbound = EmagInbound(MAPPING, client)
        app = web.Application()
        app.add_routes(callback_routes(inbound, Intake(published), "s3cret-key"))
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        base = f"http://127.0.0.1:{port}/callbacks/{CHANNEL}"
        try:
            fake.callback_url = f"{base}/wrong-key"
            fake.place_order([(1001, 1)])
            await fake.settle()
            assert fake.callbacks[-1][1] == 404 and not published.events
            fake.callback_url = f"{base}/s3cret-key"
            order = fake.place_order([(1001, 1)])
            await fake.settle()
            assert fake.callbacks[-1] == (order["id"], 200)
            assert [e["sku"] for e in published.events] == ["sku-1"]
            async with aiohttp.ClientSession() as s, s.get(f"{base}/s3cret-key") as r:
                assert r.status == 400
        finally:
            await runner.cleanup()

    run(scenario)


def _config(**channel: Any) -> dict[str, Any]:
    entry = {
        "name": "emag-ro",
        "kind": "emag",
        "base_url": "https://marketplace-api.emag.ro/api-3",
        "credentials": {"username": "u", "password": "p", "callback_key": "k"},
        "mapping": {"account": "ro", "products": [{"sku": "chair", "offer_id": 7}]},
        **channel,
    }
    return {"channels": [entry]}


def test_an_emag_channel_is_configured_with_its_limits_and_its_order_mode() -> None:
    """Given an eMAG channel, then it parses with its limits and mapping, and ``orders:
    book`` is kept; more than 50 offers per save and an offer id outside eMAG's range are
    refused naming the key."""
    config = parse_connectors_config(_config(limits={"orders_per_s": 6, "others_per_s": 2}))
    channel = config.channels[0]
    assert isinstance(channel.mapping, EmagMapping) and channel.skus == {"chair"}
    assert channel.limits == {"orders_per_s": 6, "others_per_s": 2}
    assert channel.orders == "lines"
    assert parse_connectors_config(_config(orders="book")).channels[0].orders == "book"
    with pytest.raises(ConnectorConfigError, match="max_batch"):
        parse_connectors_config(_config(max_batch=60))
    with pytest.raises(ConnectorConfigError, match="others_per_s"):
        parse_connectors_config(_config(limits={"others_per_s": 0.5}))
    with pytest.raises(ConnectorConfigError, match="mapping"):
        parse_connectors_config(
            _config(mapping={"account": "ro", "products": [{"sku": "x", "offer_id": 0}]})
        )


def test_a_returned_order_restocks_and_an_unreadable_order_is_set_aside_without_personal_data() -> (
    None
):
    """Given an order finalized then returned (status 5), and an order whose status eMAG
    does not define, when they are polled twice, then the returned order publishes its
    shipment and one resellable return_received per line, and the unreadable order is handed
    once to the dead-letter sink with its ids, status and lines but no customer details,
    while the orders around it go on."""

    async def scenario(fake: FakeEmag, client: EmagClient) -> None:
        published = Published()
        unreadable: list[tuple[dict[str, Any], str]] = []

        async def sink(order: Any, error: str) -> None:
            unreadable.append((dict(order), error))

        inbound = EmagInbound(MAPPING, client, unreadable=sink)
        inbound.acceptance_gate = Gate()  # type: ignore[assignment]
        poller = Poller(inbound, Intake(published), checkpoint_ms=now_ms() - 60_000)
        order = fake.place_order([(1004, 3)], status=4)
        broken = fake.place_order([(1005, 1)])
        fake.orders[broken["id"]]["status"] = 9
        await poller.poll_once()
        fake.set_status(order["id"], 5)
        await poller.poll_once()
        await poller.poll_once()
        kinds = [(e["type"], e["qty"], e.get("disposition")) for e in published.events]
        assert kinds == [
            ("order_placed", 3, None),
            ("order_shipped", 3, None),
            ("return_received", 3, "resellable"),
        ]
        assert len(unreadable) == 1 and "status 9" in unreadable[0][1]
        assert unreadable[0][0]["products"][0]["product_id"] == 1005
        assert "customer" not in unreadable[0][0] and "Popescu" not in str(unreadable)

    run(scenario)


def test_each_platform_is_its_own_channel_with_its_own_host() -> None:
    """Given eMAG RO and BG configured at once, then each is a channel with its own host,
    credentials, account and timezone."""
    ro = _config()["channels"][0]
    bg = {
        **ro,
        "name": "emag-bg",
        "base_url": "https://marketplace-api.emag.bg/api-3",
        "mapping": {
            "account": "bg",
            "timezone": "Europe/Sofia",
            "products": ro["mapping"]["products"],
        },
    }
    config = parse_connectors_config({"channels": [ro, bg]})
    hosts = {c.name: (c.base_url, c.mapping.account, c.mapping.timezone) for c in config.channels}  # type: ignore[union-attr]
    assert hosts == {
        "emag-ro": ("https://marketplace-api.emag.ro/api-3", "ro", "Europe/Bucharest"),
        "emag-bg": ("https://marketplace-api.emag.bg/api-3", "bg", "Europe/Sofia"),
    }


def test_book_mode_makes_each_order_one_order_record_and_awaits_the_book() -> None:
    """Given ``orders: book``, when a new order, a canceled one and a returned one are
    polled, then the new order is one Order ``placed`` (its lines with unit prices in bani,
    ship-to RO and postal code only) awaited by the gate from the book, with no
    ``order_placed``; the canceled one is an Order ``cancelled`` with the gate's own id; the
    returned one keeps its ``return_received`` StockEvent (a stock fact) beside its Order;
    no name, phone or street is in any record."""

    async def scenario(fake: FakeEmag, client: EmagClient) -> None:
        published, booked = Published(), Published()
        gate = Gate()
        inbound = EmagInbound(MAPPING, client, orders_mode="book")
        inbound.acceptance_gate = gate  # type: ignore[assignment]
        intake = Intake(published, publish_orders=booked)  # type: ignore[arg-type]
        poller = Poller(inbound, intake, checkpoint_ms=now_ms() - 60_000)
        new = fake.place_order([(1001, 2)])
        gone = fake.place_order([(1002, 1)])
        fake.set_status(gone["id"], 0)
        back = fake.place_order([(1003, 1)])
        fake.set_status(back["id"], 5)
        await poller.poll_once()
        records = {r["order_id"]: r for r in booked.events}
        placed = records[f"{CHANNEL}:{new['id']}"]
        line = new["products"][0]["id"]
        assert placed["type"] == "placed"
        assert [
            (ln["line_id"], ln["sku"], ln["qty"], ln["unit_price"]) for ln in placed["lines"]
        ] == [(str(line), "sku-1", 2, 19999)]
        assert (placed["ship_to"]["country"], placed["ship_to"]["postal_code"]) == ("RO", "030031")
        [awaited] = gate.expected
        assert awaited.book and awaited.order_id == str(new["id"])
        cancelled = records[f"{CHANNEL}:{gone['id']}"]
        assert (
            cancelled["event_id"]
            == AwaitedOrder(CHANNEL, "ro", str(gone["id"]), (), None, book=True).book_cancelled_id()
        )
        assert [e["type"] for e in published.events] == ["return_received"]
        text = str(booked.events)
        assert "Popescu" not in text and "+40721" not in text and "Lipscani" not in text

    run(scenario)


def _notice(order_id: int, tracking: str) -> ShipNotice:
    return ShipNotice(
        shipment_id=f"ship|w1|{CHANNEL}:{order_id}",
        order_id=f"{CHANNEL}:{order_id}",
        channel=CHANNEL,
        channel_order_id=str(order_id),
        carrier="dhl",
        service="N",
        tracking_number=tracking,
        location="main",
        lines=(),
    )


def test_a_shipment_saves_the_awb_then_finalizes_the_order_once() -> None:
    """Given an acknowledged order, when its shipment is confirmed, then eMAG is given the
    AWB (the tracking number, DHL) and the order is finalized (4); confirmed again it is
    ``already`` with no second AWB; a redelivery after the AWB but before the finalization
    saves no second AWB; a new (never acknowledged) order and a canceled one cannot be
    finalized (raised); eMAG refuses to finalize an order without an AWB."""

    async def scenario(fake: FakeEmag, client: EmagClient) -> None:
        shipper = EmagShipper(client, MAPPING)
        orders = EmagOrders(client, MAPPING)
        first, second, new, gone = (fake.place_order([(1001, 1)]) for _ in range(4))
        for order in (first, second):
            await orders.accept(AwaitedOrder(CHANNEL, "ro", str(order["id"]), (), None))
        assert await shipper.confirm_shipment(_notice(first["id"], "JD014600001")) == SHIPPED
        assert await shipper.confirm_shipment(_notice(first["id"], "JD014600001")) == ALREADY
        assert fake.orders[first["id"]]["status"] == 4 and fake.finalized == [first["id"]]
        assert [(a["order_id"], a["awb_number"], a["courier_name"]) for a in fake.awbs] == [
            (first["id"], "JD014600001", "DHL")
        ]
        await client.save_awb(second["id"], awb_number="JD014600002", courier_name="DHL")
        assert await shipper.confirm_shipment(_notice(second["id"], "JD014600002")) == SHIPPED
        assert len(fake.awbs) == 2 and fake.orders[second["id"]]["status"] == 4
        assert sum(1 for _, path in fake.requests if path.endswith("/awb/save")) == 2
        with pytest.raises(RejectedError, match="new"):
            await shipper.confirm_shipment(_notice(new["id"], "JD014600003"))
        fake.set_status(gone["id"], 0)
        with pytest.raises(RejectedError, match="canceled"):
            await shipper.confirm_shipment(_notice(gone["id"], "JD014600004"))
        third = fake.place_order([(1001, 1)])
        await orders.accept(AwaitedOrder(CHANNEL, "ro", str(third["id"]), (), None))
        with pytest.raises(EmagError, match="AWB is required"):
            await client.save_order({**fake.orders[third["id"]], "status": 4})

    run(scenario)
