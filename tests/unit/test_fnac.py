"""Fnac Darty: XML client (auth and token expiry, paging, async batches, throttles), order
states, acceptance answers and configuration. Against the fake Fnac over real HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import orjson
import pytest

from connectors.config import parse_connectors_config
from connectors.fnac import dialog
from connectors.fnac.acceptance import AnswerRefusedError, FnacAcceptance
from connectors.fnac.client import FnacClient
from connectors.fnac.inbound import FnacInbound
from connectors.fnac.mapping import BatchOptions, FnacMapping
from connectors.fnac.outbound import FnacPusher
from connectors.fnac.shipping import FnacShipper
from connectors.framework.acceptance import AcceptanceGate, AwaitedOrder
from connectors.framework.shipments import ShipLine, ShipNotice
from connectors.framework.types import (
    Outcome,
    PushItem,
    RejectedError,
    StockEventDict,
    ThrottledError,
)
from connectors.testing.fnac import FakeFnac

SKUS = ("chair", "table", "lamp")


def mapping(**changes: Any) -> FnacMapping:
    return FnacMapping(
        shop="shop-1",
        products={"chair": "3700000000017", "table": None, "lamp": None},
        batch=BatchOptions(poll_s=0.05, wait_s=5),
        **changes,
    )


@asynccontextmanager
async def fnac(**fake_options: Any) -> AsyncIterator[tuple[FakeFnac, FnacClient]]:
    fake_options.setdefault("batch_delay_s", 0.1)
    async with FakeFnac(**fake_options) as fake:
        for sku in SKUS:
            fake.add_offer(sku, 5)
        async with aiohttp.ClientSession() as session:
            yield fake, FnacClient(session, fake.url, fake.partner_id, fake.shop_id, fake.key)


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(scenario())  # type: ignore[arg-type]


def item(sku: str, qty: int, version: int = 1) -> PushItem:
    return PushItem("fnac", sku, qty, version, 0)


async def _published(events: Any) -> None:
    return None


def test_an_expired_token_is_renewed_once_and_the_request_goes_through() -> None:
    """Given a client that authenticated, when Fnac expires every token, then the next query
    is refused once with the token error, the client authenticates again and the query
    answers; wrong credentials are a RejectedError that does not print the key."""

    async def scenario() -> None:
        async with fnac() as (fake, client):
            fake.place_order([("chair", 1)])
            assert len(await client.orders_query(since_ms=0)) == 1
            fake.expire_tokens()
            assert len(await client.orders_query(since_ms=0)) == 1
            assert (fake.authentications, fake.token_refusals) == (2, 1)
            async with aiohttp.ClientSession() as session:
                bad = FnacClient(session, fake.url, fake.partner_id, fake.shop_id, "s3cret-key")
                with pytest.raises(RejectedError) as refused:
                    await bad.orders_query(since_ms=0)
                assert "s3cret-key" not in str(refused.value)

    run(scenario)


def test_orders_are_read_across_pages_without_personal_data() -> None:
    """Given 230 orders (three pages of 100), when polled, then every order is read once and
    no event carries the customer's name, email or address."""

    async def scenario() -> None:
        async with fnac() as (fake, client):
            for _ in range(230):
                fake.place_order([("table", 1)], state="Accepted")
            inbound = FnacInbound(mapping(), client)
            deliveries, newest = await inbound.changed_since(0)
            assert len(deliveries) == 230 and newest > 0
            assert fake.requests.count(("POST", "/api.php/orders_query")) == 3
            dumped = orjson.dumps([d.events for d in deliveries]).decode()
            for personal in ("Durand", "Camille", "example.org", "Lilas", "+336"):
                assert personal not in dumped

    run(scenario)


def _kinds(events: list[StockEventDict]) -> list[tuple[str, str, int, str]]:
    return [(e["type"], e["sku"], e["qty"], e["event_id"].rsplit("/", 1)[1]) for e in events]


def test_order_states_map_to_placed_shipped_and_cancelled_with_the_gate_ids() -> None:
    """Given orders in each Fnac state, when polled, then Created is handed to the gate and
    placed; Accepted places; Shipped places and ships; Cancelled and Refused release with
    the id the gate's release uses; Refunded before shipping releases; an unknown state is
    set aside once (dead letter) while the others go on."""

    async def scenario() -> None:
        async with fnac() as (fake, client):
            gate = AcceptanceGate({"fnac": FnacAcceptance(client, mapping())}, _published)
            letters: list[tuple[dict[str, str], str]] = []

            async def unreadable(facts: dict[str, str], error: str) -> None:
                letters.append((facts, error))

            inbound = FnacInbound(mapping(), client, gate=gate, unreadable=unreadable)
            created = fake.place_order([("chair", 2), ("unmapped", 1)])
            accepted = fake.place_order([("table", 1)], state="Accepted")
            shipped = fake.place_order([("lamp", 1)], state="Shipped")
            cancelled = fake.place_order([("table", 3)], state="Cancelled")
            refunded = fake.place_order([("lamp", 2)], state="Refunded")
            broken = fake.place_order([("lamp", 2)], state="Teleported")
            deliveries, _ = await inbound.changed_since(0)
            by_order = {d.order_key.rsplit("/", 1)[1]: d.events for d in deliveries if d.order_key}
            assert _kinds(by_order[created]) == [("order_placed", "chair", 2, "placed")]
            assert gate.awaits("fnac", created) and not gate.awaits("fnac", accepted)
            assert _kinds(by_order[accepted]) == [("order_placed", "table", 1, "placed")]
            assert _kinds(by_order[shipped]) == [
                ("order_placed", "lamp", 1, "placed"),
                ("order_shipped", "lamp", 0, "shipped"),
            ]
            cancelled_order = await client.order(cancelled)
            assert cancelled_order is not None
            awaited = inbound.awaited(cancelled_order)
            assert by_order[cancelled][0]["event_id"] == awaited.cancelled_id(awaited.lines[0])
            assert _kinds(by_order[refunded]) == [("order_cancelled", "lamp", 2, "cancelled")]
            assert broken not in by_order
            assert [f["order_id"] for f, _ in letters] == [broken]
            await inbound.changed_since(0)
            assert len(letters) == 1  # set aside once per change of the order

    run(scenario)


def test_a_push_is_ok_only_once_the_batch_report_says_so() -> None:
    """Given three offers and batches queued long enough to be read queued first (status OK
    with only the batch id, as Fnac answers), when their quantities are pushed, then the
    push waits for the batch's report: the applied ones are ok and written, an offer Fnac
    refuses in the report is failed with Fnac's code, and an unknown offer without an EAN
    is failed."""

    async def scenario() -> None:
        async with fnac(batch_delay_s=0.6) as (fake, client):
            fake.offer_fail("table", code="ERR_120", message="Invalid quantity")
            del fake.offers["lamp"]
            results = await FnacPusher(client, mapping()).push(
                [item("chair", 7), item("table", 3), item("lamp", 2)]
            )
            outcome = {r.item.sku: (r.outcome, r.error) for r in results}
            assert outcome["chair"] == (Outcome.OK, "")
            assert outcome["table"][0] is Outcome.FAILED and "ERR_120" in outcome["table"][1]
            assert outcome["lamp"][0] is Outcome.FAILED and "ERR_105" in outcome["lamp"][1]
            assert [(w.sku, w.quantity) for w in fake.writes] == [("chair", 7)]
            assert fake.quantity("table") == 5

    run(scenario)


def test_a_fatal_batch_a_throttle_and_an_unmapped_sku_are_retried_or_refused() -> None:
    """Given a batch that ends FATAL, then a 429 storm, when pushing, then the first push
    is retried (nothing applied), the second is retried with Fnac's Retry-After, and an
    unmapped SKU is refused (drift) without a request."""

    async def scenario() -> None:
        async with fnac() as (fake, client):
            pusher = FnacPusher(client, mapping())
            fake.fail_batches(1)
            [first] = await pusher.push([item("chair", 4)])
            assert first.outcome is Outcome.RETRY and "FATAL" in first.error
            fake.storm(5, retry_after=0.2)
            [throttled] = await pusher.push([item("chair", 4)])
            assert throttled.outcome is Outcome.RETRY and throttled.retry_after == 0.2
            [unmapped] = await pusher.push([item("desk", 1)])
            assert unmapped.outcome is Outcome.REFUSED
            assert fake.writes == []

    run(scenario)


def test_the_fake_rate_limit_answers_429_with_retry_after() -> None:
    """Given a fake limited to 2 requests a second with a burst of 2, when the client sends
    more at once, then one is throttled with Retry-After (ThrottledError)."""

    async def scenario() -> None:
        async with fnac(rate_per_s=2, rate_burst=2) as (fake, client):
            with pytest.raises(ThrottledError) as throttled:
                for _ in range(5):
                    await client.orders_query(since_ms=0)
            assert throttled.value.retry_after is not None and fake.throttled_requests >= 1

    run(scenario)


def test_accept_and_refuse_answer_every_detail_once() -> None:
    """Given an order of a mapped and an unmapped SKU awaiting acceptance, when accepted
    twice, then every detail is Accepted by one orders_update (the second is a no-op);
    given another, refused: every detail Refused; refusing an accepted order raises; an
    order Fnac cancelled when its window closed counts as refused; shipping confirms every
    detail with its tracking."""

    async def scenario() -> None:
        async with fnac(acceptance_window_s=60) as (fake, client):
            inbound = FnacInbound(mapping(), client)
            answers = FnacAcceptance(client, mapping())

            async def awaited(oid: str) -> Any:
                return inbound.awaited(await client.order(oid))  # type: ignore[arg-type]

            first = fake.place_order([("chair", 1), ("unmapped", 2)])
            order = await awaited(first)
            await answers.accept(order)
            await answers.accept(order)
            assert fake.state(first) == "Accepted"
            assert [u[2] for u in fake.order_updates] == [[("1", "Accepted"), ("2", "Accepted")]]
            second = fake.place_order([("table", 1)])
            await answers.refuse(await awaited(second), "insufficient_stock")
            assert fake.state(second) == "Refused"
            with pytest.raises(AnswerRefusedError):
                await answers.refuse(order, "deadline")
            late = fake.place_order([("lamp", 1)], age_s=120)
            await answers.refuse(await awaited(late), "deadline")
            assert fake.state(late) == "Cancelled"
            await client.confirm_to_send(
                first, ["1", "2"], tracking_number="TRK1", tracking_company="Colissimo"
            )
            assert fake.state(first) == "Shipped"
            assert fake.orders[first]["details"][0]["tracking_number"] == "TRK1"

    run(scenario)


def test_an_answer_with_entities_is_refused_unread() -> None:
    """Given an answer declaring an entity (a billion-laughs bomb), when parsed, then it is
    refused as unreadable instead of expanded."""
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>'
        b"<orders_query_response>&b;</orders_query_response>"
    )
    with pytest.raises(dialog.DialogError):
        dialog.parse(bomb)


def test_fnac_configuration_is_read_and_book_mode_taken() -> None:
    """Given a fnac channel, when the configuration is parsed, then its credentials, products
    and batch pacing are read; orders: book is taken (the order book holds its orders)."""
    channel = {
        "name": "fnac",
        "kind": "fnac",
        "base_url": "https://vendeur.fnac.com",
        "credentials": {"partner_id": "p", "shop_id": "s", "key": "k"},
        "mapping": {
            "shop": "shop-1",
            "batch": {"poll_s": 1, "wait_s": 30},
            "products": [{"sku": "chair", "ean": "3700000000017"}, {"sku": "table"}],
        },
        "limits": {"per_s": 2, "burst": 4},
    }
    config = parse_connectors_config({"channels": [channel]})
    inst = config.channels[0]
    assert isinstance(inst.mapping, FnacMapping)
    assert inst.skus == frozenset({"chair", "table"})
    assert inst.mapping.products["chair"] == "3700000000017" and inst.mapping.batch.wait_s == 30
    book = parse_connectors_config({"channels": [{**channel, "orders": "book"}]})
    assert book.channels[0].orders == "book"


class _Waiting:
    def __init__(self) -> None:
        self.expected: list[AwaitedOrder] = []

    def expect(self, order: AwaitedOrder) -> None:
        self.expected.append(order)


def test_in_book_mode_a_fnac_order_is_one_order_record_without_personal_data() -> None:
    """Given a fnac channel with ``orders: book``, when an order awaiting the seller and a
    cancelled one are polled, then the first is one Order ``placed`` (details, unit prices
    in cents, country and postal code only) awaited by the gate as a book order, the second
    an Order ``cancelled`` with the gate's own id, and no per-line StockEvent is sent."""

    async def scenario() -> None:
        async with fnac() as (fake, client):
            gate = _Waiting()
            inbound = FnacInbound(mapping(), client, gate=gate, orders_mode="book")  # type: ignore[arg-type]
            ok = fake.place_order([("chair", 2), ("lamp", 1)])
            ko = fake.place_order([("table", 1)], state="Cancelled")
            deliveries, _ = await inbound.changed_since(0)
            by_id = {d.orders[0]["order_id"]: d.orders for d in deliveries}
            placed = by_id[f"fnac:{ok}"]
            assert [(o["type"], o["event_id"]) for o in placed] == [
                ("placed", f"fnac/shop-1/order/{ok}/placed")
            ]
            assert [
                (ln["line_id"], ln["sku"], ln["qty"], ln["unit_price"]) for ln in placed[0]["lines"]
            ] == [("1", "chair", 2, 4990), ("2", "lamp", 1, 4990)]
            assert placed[0]["ship_to"]["country"] == "FR"
            assert placed[0]["ship_to"]["postal_code"] == "75011"
            assert [(o["type"], o["event_id"]) for o in by_id[f"fnac:{ko}"]] == [
                ("cancelled", f"fnac/shop-1/order/{ko}/cancelled")
            ]
            assert all(d.events == [] for d in deliveries)
            assert [(o.order_id, o.book) for o in gate.expected] == [(ok, True)]
            text = orjson.dumps([d.orders for d in deliveries]).decode()
            assert not any(p in text for p in ("Camille", "Durand", "rue des Lilas", "+336"))

    run(scenario)


def test_a_fnac_shipment_is_confirmed_to_send_with_its_tracking_once() -> None:
    """Given an accepted Fnac order, when its shipment is confirmed twice, then one
    ``confirm_to_send`` carried every detail with the tracking number and the order is
    Shipped (``shipped``), the repeat read as done (``already``); a cancelled order cannot
    be shipped (raised, for the dead letter)."""

    async def scenario() -> None:
        async with fnac() as (fake, client):
            ok = fake.place_order([("chair", 2), ("lamp", 1)], state="Accepted")
            ko = fake.place_order([("table", 1)], state="Cancelled")
            shipper = FnacShipper(client, mapping())

            def notice(oid: str) -> ShipNotice:
                return ShipNotice(
                    shipment_id=f"S-{oid}",
                    order_id=f"fnac:{oid}",
                    channel="fnac",
                    channel_order_id=oid,
                    carrier="colissimo",
                    service="home",
                    tracking_number="6A999",
                    location="paris",
                    lines=(ShipLine("1", "chair", 2), ShipLine("2", "lamp", 1)),
                )

            assert await shipper.confirm_shipment(notice(ok)) == "shipped"
            assert await shipper.confirm_shipment(notice(ok)) == "already"
            assert fake.state(ok) == "Shipped"
            assert [(o, a, d) for o, a, d in fake.order_updates] == [
                (ok, "confirm_to_send", [("1", "Shipped"), ("2", "Shipped")])
            ]
            assert {d["tracking_number"] for d in fake.orders[ok]["details"]} == {"6A999"}
            with pytest.raises(RejectedError, match="Cancelled"):
                await shipper.confirm_shipment(notice(ko))

    run(scenario)
