"""Mirakl: orders polled and mapped, acceptance by OR21, offers written by OF24/OF01
imports confirmed by OF02/OF03, call frequencies and 429s; against the fake Mirakl over
real HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import orjson
import pytest

from connectors.config import parse_connectors_config
from connectors.framework.acceptance import AwaitedOrder
from connectors.framework.shipments import ShipLine, ShipNotice
from connectors.framework.types import Outcome, PushItem, RejectedError, ThrottledError
from connectors.mirakl.acceptance import MiraklAcceptance
from connectors.mirakl.client import MiraklClient
from connectors.mirakl.inbound import MiraklInbound
from connectors.mirakl.limits import MiraklLimits
from connectors.mirakl.mapping import MiraklMapping, Offer
from connectors.mirakl.outbound import MiraklPusher
from connectors.mirakl.shipping import MiraklShipper
from connectors.mirakl.wiring import without_personal_data
from connectors.testing.mirakl import FakeMirakl, FakeMiraklOperators

SKUS = ("chair", "table", "lamp")
PERSONAL = ("Louise", "Martin", "rue des Lilas", "+33612345678", "louise.martin@")


def mapping(write: str = "of24") -> MiraklMapping:
    return MiraklMapping(
        operator="leroymerlin",
        shop="2001",
        offers=tuple(Offer(sku, "49.00") for sku in SKUS),
        write=write,
        import_poll_s=0.05,
        import_wait_s=5,
        channel="mirakl-lm",
    )


class Gate:
    def __init__(self) -> None:
        self.expected: list[AwaitedOrder] = []

    def expect(self, order: AwaitedOrder) -> None:
        self.expected.append(order)


@asynccontextmanager
async def mirakl(
    *, or11_s: float = 0.0, of01_s: float = 0.0, **fake: Any
) -> AsyncIterator[tuple[FakeMirakl, MiraklClient]]:
    async with FakeMirakl(or11_interval_s=or11_s, of01_interval_s=of01_s, **fake) as f:
        for sku in SKUS:
            f.add_offer(sku, 5)
        async with aiohttp.ClientSession() as session:
            limits = MiraklLimits(
                "mirakl-lm", or11_interval_s=or11_s, of01_interval_s=of01_s, throttle_pause_s=0.2
            )
            yield f, MiraklClient(session, f.url, f.api_key, limits=limits)


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(scenario())  # type: ignore[arg-type]


def item(sku: str, qty: int, version: int = 1) -> PushItem:
    return PushItem("mirakl-lm", sku, qty, version, 0)


def test_orders_are_polled_page_by_page_and_each_state_maps_to_its_facts() -> None:
    """Given 121 orders (two OR11 pages) and one order in each other state, when polled,
    then a waiting order is handed to the gate before its lines are placed, accepted and
    shipping orders are placed, shipped ones placed and shipped, refused and cancelled ones
    cancelled (qty 0), an order in the operator's fraud check gives nothing yet, a foreign
    SKU is skipped, and no customer data is in any event."""

    async def scenario() -> None:
        async with mirakl() as (fake, client):
            gate = Gate()
            inbound = MiraklInbound(mapping(), client, acceptance_gate=gate)  # type: ignore[arg-type]
            for _ in range(116):
                fake.place_order([("chair", 1)])
            waiting = fake.place_order([("chair", 2), ("unknown", 1)])
            shipping = fake.place_order([("table", 1)])
            fake.orders[shipping["order_id"]]["order_state"] = "SHIPPING"
            for line in shipping["order_lines"]:
                line["order_line_state"] = "SHIPPING"
            shipped = fake.place_order([("lamp", 3)])
            for state in ("SHIPPING", "SHIPPED"):
                fake.orders[shipped["order_id"]]["order_state"] = state
                shipped["order_lines"][0]["order_line_state"] = state
            refused = fake.place_order([("table", 2)])
            fake.orders[refused["order_id"]]["order_state"] = "REFUSED"
            refused["order_lines"][0]["order_line_state"] = "REFUSED"
            staged = fake.place_order([("lamp", 1)])
            fake.orders[staged["order_id"]]["order_state"] = "STAGING"
            staged["order_lines"][0]["order_line_state"] = "STAGING"
            deliveries, newest = await inbound.changed_since(0)
            assert len(deliveries) == 121 and fake.or11_calls == 2
            by_order = {d.order_key.rsplit("/", 1)[-1]: d for d in deliveries if d.order_key}
            kinds = {
                name: [(e["type"], e["sku"], e["qty"]) for e in by_order[o["order_id"]].events]
                for name, o in (
                    ("waiting", waiting),
                    ("shipping", shipping),
                    ("shipped", shipped),
                    ("refused", refused),
                    ("staged", staged),
                )
            }
            assert kinds == {
                "waiting": [("order_placed", "chair", 2)],
                "shipping": [("order_placed", "table", 1)],
                "shipped": [("order_placed", "lamp", 3), ("order_shipped", "lamp", 0)],
                "refused": [("order_cancelled", "table", 0)],
                "staged": [],
            }
            line_id = waiting["order_lines"][0]["order_line_id"]
            assert by_order[waiting["order_id"]].events[0]["event_id"] == (
                f"mirakl-lm/2001/order/{waiting['order_id']}/line/{line_id}/placed"
            )
            awaited = next(o for o in gate.expected if o.order_id == waiting["order_id"])
            assert [(x.sku, x.qty) for x in awaited.lines] == [("chair", 2)]
            assert awaited.deadline_ms is not None and awaited.deadline_ms > newest
            assert len(gate.expected) == 117  # only the waiting orders
            text = orjson.dumps([d.events for d in deliveries]).decode()
            assert not any(p in text for p in PERSONAL)

    run(scenario)


def test_the_client_keeps_or11_to_its_call_frequency_and_a_fast_caller_is_throttled() -> None:
    """Given an operator allowing OR11 once per 0.4 s, when a client keeping that frequency
    polls twice back to back, then the operator refused none; when a client that ignores
    it polls twice, then the second poll is a throttle carrying the Retry-After."""

    async def scenario() -> None:
        async with mirakl(or11_s=0.4) as (fake, client):
            await client.orders_updated_since(0)
            await client.orders_updated_since(0)
            assert fake.or11_refused == 0 and fake.or11_calls == 2
            async with aiohttp.ClientSession() as session:
                hasty = MiraklClient(
                    session, fake.url, fake.api_key, limits=MiraklLimits(or11_interval_s=0)
                )
                await asyncio.sleep(0.4)
                await hasty.orders_updated_since(0)
                with pytest.raises(ThrottledError) as caught:
                    await hasty.orders_updated_since(0)
            assert fake.or11_refused == 1 and caught.value.retry_after == 1.0

    run(scenario)


def test_a_429_with_or_without_retry_after_pauses_the_operator() -> None:
    """Given the operator answering 429 with Retry-After 2, then a bare 429, when offers are
    read, then the first throttle carries 2 s and the second the configured pause."""

    async def scenario() -> None:
        async with mirakl() as (fake, client):
            fake.throttle_next(1, retry_after=2)
            with pytest.raises(ThrottledError) as first:
                await client.offer_quantities()
            assert first.value.retry_after == 2.0
            client.limits._pause._blocked_until = 0  # do not wait the 2 s in a unit test
            fake.throttle_next(1, retry_after=None)
            with pytest.raises(ThrottledError) as bare:
                await client.offer_quantities()
            assert bare.value.retry_after == 0.2
            await asyncio.sleep(0.25)
            assert await client.offer_quantities() == dict.fromkeys(SKUS, 5)

    run(scenario)


@pytest.mark.parametrize("write", ["of24", "of01"])
def test_an_import_is_ok_only_once_its_report_says_so_and_lines_in_error_are_sorted(
    write: str,
) -> None:
    """Given an import whose lamp line the operator rejects for good and whose table line
    fails transiently, when three quantities are pushed, then chair is ok only after the
    import completed (the fake holds it until then), lamp is failed with the operator's
    message, table retried, and a SKU the shop does not list is refused unsent."""

    async def scenario() -> None:
        async with mirakl(import_delay_s=0.3) as (fake, client):
            fake.reject("lamp", "The product is blocked by the operator")
            fake.reject("table", "Internal error, please try again later")
            pusher = MiraklPusher(client, mapping(write), max_batch=100)
            results = await pusher.push(
                [item("chair", 7), item("table", 8), item("lamp", 9), item("sofa", 1)]
            )
            got = {r.item.sku: (r.outcome, r.error) for r in results}
            assert got["chair"] == (Outcome.OK, "")
            assert fake.quantity("chair") == 7
            assert got["table"][0] is Outcome.RETRY
            assert got["lamp"][0] is Outcome.FAILED
            assert "blocked by the operator" in got["lamp"][1]
            assert got["sofa"][0] is Outcome.REFUSED
            assert (fake.quantity("table"), fake.quantity("lamp")) == (5, 5)
            assert fake.imports[max(fake.imports)]["kind"] == ("JSON" if write == "of24" else "CSV")

    run(scenario)


def test_of01_imports_keep_to_their_call_frequency() -> None:
    """Given an operator allowing OF01 once per 0.5 s, when two imports are pushed back to
    back, then both are applied and the operator refused none."""

    async def scenario() -> None:
        async with mirakl(of01_s=0.5, import_delay_s=0.02) as (fake, client):
            pusher = MiraklPusher(client, mapping("of01"), max_batch=100)
            first = await pusher.push([item("chair", 1)])
            second = await pusher.push([item("chair", 2, version=2)])
            assert [r.outcome for r in first + second] == [Outcome.OK, Outcome.OK]
            assert fake.of01_refused == 0 and fake.quantity("chair") == 2

    run(scenario)


def test_acceptance_accepts_refuses_and_is_idempotent() -> None:
    """Given two orders awaiting acceptance, when one is accepted twice and the other
    refused twice, then the first is SHIPPING, the second REFUSED with its units back on
    the offer, each answered by OR21 without a read first, the repeat recognised as done
    from the order's state; accepting an order the operator refused at its deadline raises
    (refused by the marketplace)."""

    async def scenario() -> None:
        async with mirakl() as (fake, client):
            gate = Gate()
            inbound = MiraklInbound(mapping(), client, acceptance_gate=gate)  # type: ignore[arg-type]
            actions = MiraklAcceptance(client, mapping())
            ok = fake.place_order([("chair", 2)])
            ko = fake.place_order([("table", 3)])
            late = fake.place_order([("lamp", 1)], acceptance_window_s=0.05)
            await inbound.changed_since(0)
            orders = {o.order_id: o for o in gate.expected}
            await actions.accept(orders[ok["order_id"]])
            await actions.accept(orders[ok["order_id"]])
            await actions.refuse(orders[ko["order_id"]], "insufficient_stock")
            await actions.refuse(orders[ko["order_id"]], "insufficient_stock")
            assert fake.orders[ok["order_id"]]["order_state"] == "SHIPPING"
            assert fake.orders[ko["order_id"]]["order_state"] == "REFUSED"
            assert [o for o, _ in fake.accept_calls] == [ok["order_id"]] * 2 + [ko["order_id"]] * 2
            assert fake.or11_calls == 3  # the poll, then one read per repeated answer
            assert fake.quantity("table") == 5 and fake.quantity("chair") == 3
            await asyncio.sleep(0.1)
            with pytest.raises(RejectedError, match="REFUSED"):
                await actions.accept(orders[late["order_id"]])
            await client.update_tracking(ok["order_id"], tracking_number="TRK1", carrier_code="UPS")
            await client.ship(ok["order_id"])
            assert fake.orders[ok["order_id"]]["order_state"] == "SHIPPED"
            assert fake.trackings[ok["order_id"]]["tracking_number"] == "TRK1"

    run(scenario)


def test_a_refused_key_is_a_rejection_that_never_prints_the_key() -> None:
    """Given the shop's key refused (401) for a while, when offers are read, then the
    client raises a rejection naming the key to check, without the key; after the window
    the same client reads again."""

    async def scenario() -> None:
        async with mirakl() as (fake, client):
            fake.revoke_key(0.2)
            with pytest.raises(RejectedError) as caught:
                await client.offer_quantities()
            assert "API key" in str(caught.value) and fake.api_key not in str(caught.value)
            await asyncio.sleep(0.25)
            assert await client.offer_quantities() == dict.fromkeys(SKUS, 5)

    run(scenario)


def test_an_unreadable_order_is_set_aside_once_and_the_poll_goes_on() -> None:
    """Given an order whose line has a state Mirakl does not have, when polled twice, then
    it is handed to the dead-letter sink once, without the customer's data, and the other
    order is delivered both times."""

    async def scenario() -> None:
        async with mirakl() as (fake, client):
            set_aside: list[bytes] = []

            async def unreadable(order: Any, error: str) -> None:
                set_aside.append(without_personal_data(order))

            inbound = MiraklInbound(mapping(), client, unreadable=unreadable)
            bad = fake.place_order([("chair", 1)])
            bad["order_lines"][0]["order_line_state"] = "TELEPORTED"
            fake.place_order([("table", 1)])
            first, _ = await inbound.changed_since(0)
            second, _ = await inbound.changed_since(0)
            assert (len(first), len(second), len(set_aside)) == (1, 1, 1)
            assert b"TELEPORTED" in set_aside[0]
            assert not any(p.encode() in set_aside[0] for p in PERSONAL)

    run(scenario)


def test_several_operators_are_configured_as_channels_and_book_mode_is_accepted() -> None:
    """Given two Mirakl operators in the configuration, then each is its own channel with
    its own offers and limits; ``orders: book`` on one is taken (the order book holds its
    orders)."""

    def operator(name: str, **extra: Any) -> dict[str, Any]:
        return {
            "name": f"mirakl-{name}",
            "kind": "mirakl",
            "base_url": f"https://{name}.mirakl.net",
            "credentials": {"api_key": f"key-{name}"},
            "mapping": {
                "operator": name,
                "shop": "2001",
                "offers": [{"sku": "chair", "price": "49"}],
            },
            "limits": {"or11_interval_s": 60, "of01_interval_s": 300},
            **extra,
        }

    config = parse_connectors_config({"channels": [operator("leroymerlin"), operator("carrefour")]})
    assert [(c.name, c.skus, c.limits["of01_interval_s"]) for c in config.channels] == [
        ("mirakl-leroymerlin", frozenset({"chair"}), 300),
        ("mirakl-carrefour", frozenset({"chair"}), 300),
    ]
    book = parse_connectors_config({"channels": [operator("decathlon", orders="book")]})
    assert book.channels[0].orders == "book"


def test_one_fake_serves_several_operators_on_their_own_ports() -> None:
    """Given two operators' fakes, then each answers only its own key."""

    async def scenario() -> None:
        operators = FakeMiraklOperators(["leroymerlin", "carrefour"])
        await operators.start()
        try:
            lm, cf = operators.fakes["leroymerlin"], operators.fakes["carrefour"]
            assert lm.port != cf.port
            async with aiohttp.ClientSession() as session:
                ok = MiraklClient(session, lm.url, lm.api_key)
                wrong = MiraklClient(session, cf.url, lm.api_key)
                assert await ok.offer_quantities() == {}
                with pytest.raises(RejectedError):
                    await wrong.offer_quantities()
        finally:
            await operators.close()

    run(scenario)


def test_units_cancelled_on_a_line_are_released_and_the_rest_ships() -> None:
    """Given an order of 3 accepted, when 1 unit of its line is cancelled and the order is
    polled, then that unit is released once (its own id) and the line stays placed; when
    the rest ships, the shipment consumes what the line still holds (qty 0)."""

    async def scenario() -> None:
        async with mirakl() as (fake, client):
            inbound = MiraklInbound(mapping(), client)
            order = fake.place_order([("chair", 3)])
            oid = order["order_id"]
            await MiraklAcceptance(client, mapping()).accept(
                AwaitedOrder("mirakl-lm", "2001", oid, (), None)
            )
            fake.cancel_units(oid, 1, 1)
            deliveries, _ = await inbound.changed_since(0)
            events = [
                (e["type"], e["qty"], e["event_id"].split("/")[-3:]) for e in deliveries[0].events
            ]
            cancelation = order["order_lines"][0]["cancelations"][0]["id"]
            assert events == [
                ("order_placed", 3, ["line", f"{oid}-1", "placed"]),
                ("order_cancelled", 1, ["cancelation", cancelation, "cancelled"]),
            ]
            assert fake.quantity("chair") == 3  # 5 - 3 ordered + 1 cancelled
            fake.ship_order(oid)
            deliveries, _ = await inbound.changed_since(0)
            assert [(e["type"], e["qty"]) for e in deliveries[0].events][-1] == ("order_shipped", 0)

    run(scenario)


def test_units_the_operator_gives_back_on_a_refusal_are_overwritten_by_the_figure() -> None:
    """Given chair written at 4, an order of 2 taking its units off the offer and the
    figure since written at 1, when the order is refused (the operator gives the 2 units
    back: 3 on the offer), then the next poll sees the refusal and the pusher writes 1
    again, once."""

    async def scenario() -> None:
        async with mirakl(import_delay_s=0.02) as (fake, client):
            pusher = MiraklPusher(client, mapping(), max_batch=100)
            inbound = MiraklInbound(mapping(), client)
            inbound.reassert = pusher.reassert
            await pusher.push([item("chair", 4, version=1)])
            order = fake.place_order([("chair", 2)])
            await pusher.push([item("chair", 1, version=2)])
            await MiraklAcceptance(client, mapping()).refuse(
                AwaitedOrder("mirakl-lm", "2001", order["order_id"], (), None), "insufficient"
            )
            assert fake.quantity("chair") == 3
            writes = len(fake.writes)
            await inbound.changed_since(0)
            await asyncio.gather(*pusher._background)
            assert fake.quantity("chair") == 1
            await inbound.changed_since(0)  # the same refusal polled again: nothing more
            await asyncio.gather(*pusher._background)
            assert len(fake.writes) == writes + 1

    run(scenario)


def test_in_book_mode_an_order_is_one_order_record_without_personal_data() -> None:
    """Given a Mirakl channel with ``orders: book``, when an order awaiting acceptance and a
    refused one are polled, then the first is one Order ``placed`` (lines, unit prices in
    cents, country and postal code only) awaited by the gate as a book order, the second an
    Order ``cancelled`` with the gate's own id whose SKUs are written again once (Mirakl gave
    the units back to the offers), and no per-line StockEvent is sent."""

    async def scenario() -> None:
        async with mirakl() as (fake, client):
            gate = Gate()
            inbound = MiraklInbound(
                mapping(),
                client,
                acceptance_gate=gate,  # type: ignore[arg-type]
                orders_mode="book",
            )
            reasserted: list[str] = []
            inbound.reassert = reasserted.extend
            ok = fake.place_order([("chair", 2), ("lamp", 1)])
            ko = fake.place_order([("table", 3)])
            await MiraklAcceptance(client, mapping()).refuse(
                AwaitedOrder("mirakl-lm", "2001", ko["order_id"], (), None), "insufficient_stock"
            )
            deliveries, _ = await inbound.changed_since(0)
            by_id = {d.orders[0]["order_id"]: d for d in deliveries}
            placed = by_id[f"mirakl-lm:{ok['order_id']}"].orders
            assert [(o["type"], o["event_id"]) for o in placed] == [
                ("placed", f"mirakl-lm/2001/order/{ok['order_id']}/placed")
            ]
            assert [
                (ln["sku"], ln["qty"], ln["unit_price"], ln["currency"])
                for ln in placed[0]["lines"]
            ] == [("chair", 2, 4900, "EUR"), ("lamp", 1, 4900, "EUR")]
            assert placed[0]["ship_to"]["country"] == "FR"
            refused = by_id[f"mirakl-lm:{ko['order_id']}"].orders
            assert [(o["type"], o["event_id"]) for o in refused] == [
                ("cancelled", f"mirakl-lm/2001/order/{ko['order_id']}/cancelled")
            ]
            assert all(d.events == [] for d in deliveries)
            assert [(o.order_id, o.book) for o in gate.expected] == [(ok["order_id"], True)]
            await inbound.changed_since(0)  # polled again: nothing new to write
            assert reasserted == ["table"]
            text = orjson.dumps([d.orders for d in deliveries]).decode()
            assert not any(p in text for p in PERSONAL)

    run(scenario)


def test_a_shipment_is_confirmed_by_or23_and_or24_once() -> None:
    """Given an accepted Mirakl order, when its shipment is confirmed twice, then OR23 gave
    it the carrier and tracking number and OR24 made it SHIPPED (``shipped``), and the
    repeat is recognised from the order's state (``already``); a refused order cannot be
    shipped (raised, for the dead letter)."""

    async def scenario() -> None:
        async with mirakl() as (fake, client):
            actions = MiraklAcceptance(client, mapping())
            ok = fake.place_order([("chair", 2)])
            ko = fake.place_order([("table", 1)])
            await actions.accept(AwaitedOrder("mirakl-lm", "2001", ok["order_id"], (), None))
            await actions.refuse(AwaitedOrder("mirakl-lm", "2001", ko["order_id"], (), None), "x")
            shipper = MiraklShipper(client, mapping())

            def notice(oid: str) -> ShipNotice:
                return ShipNotice(
                    shipment_id=f"S-{oid}",
                    order_id=f"mirakl-lm:{oid}",
                    channel="mirakl-lm",
                    channel_order_id=oid,
                    carrier="colissimo",
                    service="home",
                    tracking_number="6A123",
                    location="paris",
                    lines=(ShipLine(f"{oid}-1", "chair", 2),),
                )

            assert await shipper.confirm_shipment(notice(ok["order_id"])) == "shipped"
            assert fake.orders[ok["order_id"]]["order_state"] == "SHIPPED"
            assert fake.trackings[ok["order_id"]] == {
                "carrier_name": "colissimo",
                "tracking_number": "6A123",
            }
            assert await shipper.confirm_shipment(notice(ok["order_id"])) == "already"
            with pytest.raises(RejectedError, match="REFUSED"):
                await shipper.confirm_shipment(notice(ko["order_id"]))

    run(scenario)
