"""Cdiscount (Octopia Seller API v2): token reuse and expiry, polled orders and their
states, acceptance answers, offer packages and their per-line results, throttling,
configuration. Against the fake Octopia over real HTTP."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import orjson
import pytest

from connectors.cdiscount.acceptance import CdiscountAcceptance
from connectors.cdiscount.client import CdiscountClient, OctopiaError, TokenSource
from connectors.cdiscount.inbound import CdiscountInbound
from connectors.cdiscount.limits import CdiscountLimits
from connectors.cdiscount.mapping import CdiscountMapping, PackageOptions
from connectors.cdiscount.outbound import CdiscountPusher
from connectors.cdiscount.shipping import CdiscountShipper
from connectors.config import ConnectorConfigError, parse_connectors_config
from connectors.framework.acceptance import AwaitedOrder
from connectors.framework.shipments import ALREADY, SHIPPED, ShipLine, ShipNotice
from connectors.framework.types import Outcome, PushItem, RejectedError, ThrottledError
from connectors.testing.cdiscount import TOKEN_PATH, FakeCdiscount

SKUS = ("chair", "table", "lamp")
PERSONAL = ("Camille", "Martin", "camille.martin@example.fr", "+33612345678", "rue des Lilas")


def mapping(**options: Any) -> CdiscountMapping:
    options.setdefault("packages", PackageOptions(poll_s=0.02, wait_s=5, max_offers=1000))
    return CdiscountMapping(seller_id="98979", skus=SKUS, **options)


@asynccontextmanager
async def octopia(
    secret: str = "cdiscount-secret",  # noqa: S107 - the fake's
    **fake_options: Any,
) -> AsyncIterator[tuple[FakeCdiscount, CdiscountClient]]:
    async with FakeCdiscount(integration_delay_s=0.05, **fake_options) as fake:
        for sku in SKUS:
            fake.add_offer(sku, 0)
        async with aiohttp.ClientSession() as session:
            tokens = TokenSource(session, fake.url + TOKEN_PATH, fake.client_id, secret)
            yield fake, CdiscountClient(session, fake.url + "/seller/v2", tokens, fake.seller_id)


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(scenario())  # type: ignore[arg-type]


def item(sku: str, qty: int, version: int = 1) -> PushItem:
    return PushItem("cdiscount", sku, qty, version, 0)


class Gate:
    def __init__(self) -> None:
        self.expected: list[AwaitedOrder] = []

    def expect(self, order: AwaitedOrder) -> None:
        self.expected.append(order)


def test_one_token_serves_every_call_and_an_expired_token_is_replaced_once() -> None:
    """Given a client that made 20 calls, then Octopia expiring every token, when the next
    call is made, then the 20 calls used one token, the next call got a 401, fetched one new
    token and succeeded: 2 tokens issued in all."""

    async def scenario() -> None:
        async with octopia() as (fake, client):
            for _ in range(20):
                await client.orders_updated_since(0)
            assert fake.tokens_issued == 1
            fake.expire_tokens()
            assert await client.orders_updated_since(0) == []
            assert (fake.tokens_issued, fake.expired_calls) == (2, 1)

    run(scenario)


def test_bad_credentials_and_the_token_cap_are_clear_errors_without_the_secret(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Given a wrong client secret, when a call is made, then it fails as rejected naming
    the credentials to check and the secret is in no error text; given the token endpoint's
    cap reached, a token request is throttled (retried later), not rejected."""

    async def scenario() -> None:
        async with octopia(secret="wrong-secret-value") as (_, client):
            with pytest.raises(RejectedError) as rejected:
                await client.orders_updated_since(0)
            assert "client_id and client_secret" in str(rejected.value)
            assert "wrong-secret-value" not in str(rejected.value)
        async with octopia(token_cap=1) as (fake, client):
            await client.orders_updated_since(0)
            fake.expire_tokens()
            with pytest.raises(ThrottledError):
                await client.orders_updated_since(0)
            assert fake.token_refusals == 1

    with caplog.at_level(logging.DEBUG):
        run(scenario)
    assert "wrong-secret-value" not in caplog.text


def test_orders_are_paged_and_each_state_maps_to_its_stock_events() -> None:
    """Given 120 orders accepted plus one of each other state, when polled, then every order
    is read across two pages; a WaitingAcceptance order goes to the gate (deadline =
    createdAt + window) before its placed lines; Shipped gives placed and shipped; Refused
    gives cancelled with the id the gate releases with; Processing gives nothing; no
    event carries the customer's personal data."""

    async def scenario() -> None:
        async with octopia() as (fake, client):
            inbound = CdiscountInbound(mapping(acceptance_window_s=600), client)
            gate = Gate()
            inbound.acceptance_gate = gate
            for _ in range(120):
                fake.place_order([("chair", 1)], status="Accepted")
            waiting = fake.place_order([("chair", 2), ("unknown-sku", 1), ("table", 1)])
            shipped = fake.place_order([("lamp", 1)], status="Shipped")
            refused = fake.place_order([("table", 3)], status="Refused")
            fake.place_order([("lamp", 1)], status="Processing")
            deliveries, newest = await inbound.changed_since(0)
            assert len(deliveries) == 124 and newest > 0
            assert sum(1 for r in fake.requests if r[1].endswith("/orders")) == 2
            by_order = {d.events[0]["source_ref"]: d.events for d in deliveries if d.events}
            [awaited] = gate.expected
            assert awaited.order_id == waiting["orderId"]
            assert [(line.sku, line.qty) for line in awaited.lines] == [("chair", 2), ("table", 1)]
            assert awaited.deadline_ms is not None
            kinds = [(e["type"], e["sku"], e["qty"]) for e in by_order[waiting["orderId"]]]
            assert kinds == [("order_placed", "chair", 2), ("order_placed", "table", 1)]
            assert by_order[waiting["orderId"]][0]["event_id"] == (
                f"cdiscount/98979/order/{waiting['orderId']}/line/1/placed"
            )
            assert [e["type"] for e in by_order[shipped["orderId"]]] == [
                "order_placed",
                "order_shipped",
            ]
            [cancel] = by_order[refused["orderId"]]
            assert cancel["type"] == "order_cancelled"
            assert cancel["event_id"].endswith("/line/1/cancelled")
            text = orjson.dumps([d.events for d in deliveries]).decode()
            assert not any(p in text for p in PERSONAL)

    run(scenario)


def test_an_unreadable_order_is_dead_lettered_without_personal_data_and_the_poll_goes_on() -> None:
    """Given an order with an unknown status between two good ones, when polled, then the
    two are delivered, the bad one is handed to the dead letter with its ids and lines only
    (no name, email, phone or street), and the checkpoint moves past it."""

    async def scenario() -> None:
        async with octopia() as (fake, client):
            inbound = CdiscountInbound(mapping(), client)
            letters: list[tuple[bytes, str]] = []

            async def dead_letter(order: Any, error: str) -> None:
                from connectors.cdiscount.inbound import without_personal_data

                letters.append((without_personal_data(order), error))

            inbound.dead_letter = dead_letter
            fake.place_order([("chair", 1)], status="Accepted")
            bad = fake.place_order([("table", 1)], status="Accepted")
            fake.set_status(bad["orderId"], "Teleported")
            fake.place_order([("lamp", 1)], status="Accepted")
            deliveries, newest = await inbound.changed_since(0)
            assert len(deliveries) == 2 and inbound.unreadable == 1
            [(original, error)] = letters
            assert "Teleported" in error and bad["orderId"].encode() in original
            assert not any(p.encode() in original for p in PERSONAL)
            assert newest >= max(d.order_version or 0 for d in deliveries)

    run(scenario)


def test_a_package_confirms_integrated_lines_and_sorts_rejected_ones_by_reason() -> None:
    """Given four SKUs pushed in one package where one is rejected for good, one rejected
    transiently and one is not mapped, when pushed, then only the integrated line is ok
    (and its quantity is on the fake), the permanent rejection fails (dead letter), the
    transient one is retried and the unmapped one refused; the package went
    WaitingForCompletion → Ready → Integrated."""

    async def scenario() -> None:
        async with octopia() as (fake, client):
            fake.reject("table", "InvalidOffer")
            fake.reject("lamp", "InternalError")
            pusher = CdiscountPusher(client, mapping())
            results = await pusher.push(
                [item("chair", 7), item("table", 3), item("lamp", 2), item("stool", 1)]
            )
            outcome = {r.item.sku: r.outcome for r in results}
            assert outcome == {
                "chair": Outcome.OK,
                "table": Outcome.FAILED,
                "lamp": Outcome.RETRY,
                "stool": Outcome.REFUSED,
            }
            assert "InvalidOffer" in next(r.error for r in results if r.item.sku == "table")
            assert fake.quantity("chair") == 7 and fake.quantity("table") == 0
            [package] = fake.packages.values()
            assert package["packageState"] == "Integrated" and package["packageType"] == "Update"
            again = await pusher.push([item("lamp", 2, version=2)])
            assert again[0].outcome is Outcome.OK and fake.quantity("lamp") == 2
            assert await pusher.read(["chair", "lamp", "stool"]) == {"chair": 7, "lamp": 2}

    run(scenario)


def test_throttling_and_a_package_never_finishing_are_retried_not_failed() -> None:
    """Given Octopia answering 429 with Retry-After to the package creation, then a package
    that stays IntegrationPending past the wait, when pushed, then both pushes are retried
    (the first with Octopia's delay) and nothing is failed."""

    async def scenario() -> None:
        async with octopia() as (fake, client):
            await client.orders_updated_since(0)  # a token first: the 429 hits the API call
            fake.fail_next(1, 429, retry_after=2)
            pusher = CdiscountPusher(client, mapping())
            [throttled] = await pusher.push([item("chair", 1)])
            assert throttled.outcome is Outcome.RETRY and throttled.retry_after == 2
            fake.integration_delay_s = 5
            slow = CdiscountPusher(
                client, mapping(packages=PackageOptions(poll_s=0.02, wait_s=0.2))
            )
            [pending] = await slow.push([item("chair", 4)])
            assert pending.outcome is Outcome.RETRY and "IntegrationPending" in pending.error

    run(scenario)


def test_the_fake_rate_limit_answers_429_with_retry_after_and_the_client_waits() -> None:
    """Given the fake limited to 5 calls a second (burst 2), when 6 calls are made in a
    row, then some are answered 429 and each surfaces as a throttle carrying Octopia's
    Retry-After."""

    async def scenario() -> None:
        async with octopia(rate_per_s=5, burst=2) as (fake, client):
            client.limits = CdiscountLimits()
            throttles = []
            for _ in range(6):
                try:
                    await client.orders_updated_since(0)
                except ThrottledError as exc:
                    throttles.append(exc.retry_after)
            assert fake.throttled_calls >= 1 and throttles and all(t == 1 for t in throttles)

    run(scenario)


def test_accept_and_refuse_are_idempotent_and_an_expired_order_cannot_be_accepted() -> None:
    """Given three orders waiting for acceptance, when one is accepted twice and one refused
    twice, then each is Accepted / Refused (out-of-stock reason sent) with no error the
    second time; when the third's acceptance window closed, Cdiscount cancelled it and
    accepting it fails (recorded as refused by the marketplace)."""

    async def scenario() -> None:
        async with octopia(acceptance_window_s=0.2) as (fake, client):
            actions = CdiscountAcceptance(client, mapping())
            one, two, three = (fake.place_order([("chair", 1)]) for _ in range(3))

            def awaited(order: dict[str, Any]) -> AwaitedOrder:
                return AwaitedOrder("cdiscount", "98979", order["orderId"], (), None)

            await actions.accept(awaited(one))
            await actions.accept(awaited(one))
            await actions.refuse(awaited(two), "insufficient_stock")
            await actions.refuse(awaited(two), "insufficient_stock")
            assert fake.status(one["orderId"]) == "Accepted"
            assert fake.status(two["orderId"]) == "Refused"
            assert (two["orderId"], "Refused", "OutOfStock") in fake.approvals
            await asyncio.sleep(0.3)
            with pytest.raises(OctopiaError, match="Cancelled"):
                await actions.accept(awaited(three))

    run(scenario)


def test_configuration_reads_a_cdiscount_channel_and_its_order_mode() -> None:
    """Given a cdiscount channel, when the configuration is read, then its mapping, OAuth
    credentials and limits are kept, orders per line by default and ``orders: book`` when
    set; an unknown order mode is refused naming the key."""
    channel = {
        "name": "cdiscount",
        "kind": "cdiscount",
        "base_url": "https://api.octopia-io.net/seller/v2",
        "credentials": {"client_id": "id", "client_secret": "secret"},
        "mapping": {"seller_id": 98979, "skus": ["chair"], "packages": {"poll_s": 2}},
        "limits": {"per_s": 5},
    }
    config = parse_connectors_config({"channels": [channel]})
    [inst] = config.channels
    assert isinstance(inst.mapping, CdiscountMapping)
    assert inst.mapping.seller_id == "98979" and inst.mapping.packages.poll_s == 2
    assert inst.skus == frozenset({"chair"}) and inst.secret("client_secret") == "secret"
    assert inst.orders == "lines"
    [book] = parse_connectors_config({"channels": [{**channel, "orders": "book"}]}).channels
    assert book.orders == "book"
    with pytest.raises(ConnectorConfigError, match=r"channels\[0\]\.orders"):
        parse_connectors_config({"channels": [{**channel, "orders": "both"}]})


def test_a_token_is_renewed_before_it_expires_without_a_refused_call() -> None:
    """Given tokens living 1 s, when calls are made for 1.5 s, then a new token was fetched
    before the old one expired: no call was ever answered 401."""

    async def scenario() -> None:
        async with octopia(token_ttl_s=1) as (fake, client):
            loop = asyncio.get_running_loop()
            end = loop.time() + 1.5
            while loop.time() < end:
                await client.orders_updated_since(0)
                await asyncio.sleep(0.05)
            assert fake.tokens_issued >= 2 and fake.expired_calls == 0

    run(scenario)


def test_the_package_quota_is_a_throttle_with_octopia_s_delay() -> None:
    """Given a quota of one package an hour, when two pushes are made, then the first is
    integrated and the second is retried after Octopia's Retry-After, not failed."""

    async def scenario() -> None:
        async with octopia(package_quota_per_h=1) as (fake, client):
            pusher = CdiscountPusher(client, mapping())
            [first] = await pusher.push([item("chair", 1)])
            [second] = await pusher.push([item("chair", 2, version=2)])
            assert first.outcome is Outcome.OK
            assert second.outcome is Outcome.RETRY and (second.retry_after or 0) > 60
            assert fake.quota_refusals == 1

    run(scenario)


def test_book_mode_makes_each_order_one_order_record_and_awaits_the_book() -> None:
    """Given ``orders: book``, when a WaitingAcceptance order, a Refused one and a
    Processing one are polled, then no StockEvent is published; the waiting order is one
    Order ``placed`` (its mapped lines with unit prices in cents, ship-to country and postal
    code only) and the gate awaits it from the book (``book``); the refused one is an Order
    ``cancelled`` with the id the gate's own release uses; Processing gives nothing; no
    name, email, phone or street is in any record."""

    async def scenario() -> None:
        async with octopia() as (fake, client):
            inbound = CdiscountInbound(mapping(), client, orders_mode="book")
            gate = Gate()
            inbound.acceptance_gate = gate
            waiting = fake.place_order([("chair", 2), ("unknown-sku", 1)])
            refused = fake.place_order([("table", 1)], status="Refused")
            fake.place_order([("lamp", 1)], status="Processing")
            deliveries, _ = await inbound.changed_since(0)
            assert all(not d.events for d in deliveries)
            records = {r["order_id"]: r for d in deliveries for r in d.orders}
            placed = records[f"cdiscount:{waiting['orderId']}"]
            assert placed["type"] == "placed"
            assert placed["event_id"] == f"cdiscount/98979/order/{waiting['orderId']}/placed"
            assert [
                (ln["line_id"], ln["sku"], ln["qty"], ln["unit_price"]) for ln in placed["lines"]
            ] == [("1", "chair", 2, 4900)]
            assert (placed["ship_to"]["country"], placed["ship_to"]["postal_code"]) == (
                "FR",
                "69003",
            )
            [awaited] = gate.expected
            assert awaited.book and awaited.order_id == waiting["orderId"]
            cancelled = records[f"cdiscount:{refused['orderId']}"]
            assert cancelled["type"] == "cancelled"
            assert (
                cancelled["event_id"]
                == AwaitedOrder(
                    "cdiscount", "98979", refused["orderId"], (), None, book=True
                ).book_cancelled_id()
            )
            assert len(records) == 2
            text = orjson.dumps([d.orders for d in deliveries]).decode()
            assert not any(p in text for p in PERSONAL)

    run(scenario)


def _notice(order_id: str, tracking: str, lines: tuple[ShipLine, ...] = ()) -> ShipNotice:
    return ShipNotice(
        shipment_id=f"ship|w1|cdiscount:{order_id}",
        order_id=f"cdiscount:{order_id}",
        channel="cdiscount",
        channel_order_id=order_id,
        carrier="ups",
        service="11",
        tracking_number=tracking,
        location="main",
        lines=lines,
    )


def test_a_shipment_is_posted_once_with_carrier_tracking_and_lines() -> None:
    """Given an accepted order of two lines, when the first line's shipment is confirmed,
    then Octopia is sent UPS, the tracking number, UPS's tracking page for it and that line
    (the order stays InPreparation), and sent again it is ``already`` (no second shipment);
    when the rest ships the order is Shipped; a refused order cannot be shipped (raised for
    the dead letter) and Octopia's 400 for an unknown line is the marketplace's refusal."""

    async def scenario() -> None:
        async with octopia() as (fake, client):
            shipper = CdiscountShipper(client, mapping())
            order = fake.place_order([("chair", 2), ("table", 1)], status="Accepted")
            oid = order["orderId"]
            first = _notice(oid, "1Z001", (ShipLine("1", "chair", 2),))
            assert await shipper.confirm_shipment(first) == SHIPPED
            assert fake.status(oid) == "InPreparation"
            assert await shipper.confirm_shipment(first) == ALREADY
            [sent] = fake.shipments
            assert (sent["carrierName"], sent["trackingNumber"]) == ("UPS", "1Z001")
            assert sent["trackingUrl"] == "https://www.ups.com/track?tracknum=1Z001"
            assert sent["lines"] == [{"lineId": "1", "quantity": 2}]
            rest = _notice(oid, "1Z002", (ShipLine("2", "table", 1),))
            assert await shipper.confirm_shipment(rest) == SHIPPED
            assert fake.status(oid) == "Shipped"
            assert await shipper.confirm_shipment(_notice(oid, "1Z003")) == ALREADY
            refused = fake.place_order([("lamp", 1)], status="Refused")
            with pytest.raises(RejectedError, match="Refused"):
                await shipper.confirm_shipment(_notice(refused["orderId"], "1Z004"))
            other = fake.place_order([("lamp", 1)], status="Accepted")
            with pytest.raises(RejectedError, match="Unknown lineId"):
                await shipper.confirm_shipment(
                    _notice(other["orderId"], "1Z005", (ShipLine("9", "lamp", 1),))
                )
            assert len(fake.shipments) == 2

    run(scenario)
