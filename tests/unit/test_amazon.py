"""Amazon: Login with Amazon tokens, orders and FBA stock in, listings quantities out (patch
confirmed by read-back, JSON listings feed with its report), per-operation limits and
configuration. Against the fake Amazon over real HTTP."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import aiohttp
import orjson
import pytest

from connectors.address_book import address_reader
from connectors.amazon.addresses import AmazonAddresses
from connectors.amazon.auth import LwaTokens
from connectors.amazon.client import AmazonClient
from connectors.amazon.inbound import AmazonInbound, order_events
from connectors.amazon.limits import AmazonLimits
from connectors.amazon.mapping import AmazonMapping, Confirm, FeedOptions
from connectors.amazon.outbound import AmazonPusher
from connectors.amazon.shipping import AmazonShipper, package_reference
from connectors.amazon.wiring import without_personal_data
from connectors.carriers.destinations import AddressUnavailableError, ChannelAddresses
from connectors.carriers.model import Address
from connectors.config import ConnectorConfigError, parse_connectors_config
from connectors.framework.shipments import ALREADY, SHIPPED, ShipLine, ShipNotice
from connectors.framework.types import (
    InvalidPayloadError,
    Outcome,
    PushItem,
    RejectedError,
    ThrottledError,
)
from connectors.testing.amazon import RATES, FakeAmazon

SKUS = ("chair", "table", "lamp", "desk")
FAST = {op: (1000.0, 1000.0) for op in RATES}


def mapping(**changes: Any) -> AmazonMapping:
    m = AmazonMapping(
        seller_id="A1SELLER",
        marketplace_id="A13V1IB3VIYZZH",
        skus=SKUS,
        fba_location="amazon-fba",
        confirm=Confirm(poll_s=0.05, wait_s=3),
        feed=FeedOptions(above=2, poll_s=0.05, wait_s=5),
    )
    return replace(m, **changes)


@asynccontextmanager
async def amazon(
    *, rates: dict[str, tuple[float, float]] | None = None, **options: Any
) -> AsyncIterator[tuple[FakeAmazon, AmazonClient]]:
    async with FakeAmazon(rates=rates or FAST, **options) as fake:
        for sku in SKUS:
            fake.add_listing(sku, 5)
        async with aiohttp.ClientSession() as session:
            tokens = LwaTokens(
                session,
                f"{fake.url}/auth/o2/token",
                client_id=fake.client_id,
                client_secret=fake.client_secret,
                refresh_token=fake.refresh_token,
            )
            limits = AmazonLimits(**{op: rate for op, (rate, _) in (rates or FAST).items()})
            yield (
                fake,
                AmazonClient(
                    session,
                    fake.url,
                    tokens,
                    seller_id=fake.seller_id,
                    marketplace_id=fake.marketplace_id,
                    limits=limits,
                ),
            )


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(scenario())  # type: ignore[arg-type]


def item(sku: str, qty: int, version: int = 1) -> PushItem:
    return PushItem("amazon", sku, qty, version, 0)


def test_an_access_token_is_reused_and_a_new_one_fetched_when_amazon_says_it_expired() -> None:
    """Given a client that called Amazon twice, when Amazon expires its access token and it is
    called again, then the first two calls shared one token, the third was refused with 403
    Unauthorized "has expired", a new token was fetched and the call answered."""

    async def scenario() -> None:
        async with amazon() as (fake, client):
            assert await client.listed_quantity("chair") == 5
            assert await client.listed_quantity("table") == 5
            assert (fake.tokens_issued, client.tokens.issued) == (1, 1)
            fake.expire_tokens()
            assert await client.listed_quantity("chair") == 5
            assert (fake.tokens_issued, fake.expired_refusals) == (2, 1)

    run(scenario)


def test_a_token_is_refreshed_before_it_expires_and_a_bad_refresh_token_is_a_clear_refusal() -> (
    None
):
    """Given tokens that live 90 s, a refresh 60 s early (at most half the lifetime) and a
    clock moved 50 s, when a token is asked again, then a new one is fetched before Amazon
    refuses the old one; given a wrong refresh token, the refusal names the credentials to
    check and not the secret."""

    async def scenario() -> None:
        now = [0.0]
        async with FakeAmazon(token_ttl_s=90) as fake, aiohttp.ClientSession() as session:
            tokens = LwaTokens(
                session,
                f"{fake.url}/auth/o2/token",
                client_id=fake.client_id,
                client_secret=fake.client_secret,
                refresh_token=fake.refresh_token,
                clock=lambda: now[0],
            )
            first = await tokens.token()
            now[0] = 50.0
            assert await tokens.token() != first
            bad = LwaTokens(
                session,
                f"{fake.url}/auth/o2/token",
                client_id=fake.client_id,
                client_secret=fake.client_secret,
                refresh_token="Atzr|wrong-secret-value",
            )
            with pytest.raises(RejectedError) as refused:
                await bad.token()
            assert "refresh_token" in str(refused.value)
            assert "wrong-secret-value" not in str(refused.value)

    run(scenario)


def test_orders_are_paged_afn_skipped_and_each_state_maps_to_its_line_events() -> None:
    """Given five orders read two per page (one fulfilled by Amazon), when they are polled,
    then every MFN order is read; Pending and Unshipped place their lines, a partly shipped
    line consumes one unit per shipped unit, a cancelled order releases its line, the AFN
    order gives nothing, and no event carries the buyer's name, email or address."""

    async def scenario() -> None:
        async with amazon(page_size=2) as (fake, client):
            inbound = AmazonInbound(mapping(fba_location=None), client)
            pending = fake.place_order([("chair", 2)])
            unshipped = fake.place_order([("table", 1)], status="Unshipped")
            partial = fake.place_order([("lamp", 3)], status="Unshipped")
            cancelled = fake.place_order([("desk", 1)])
            fake.place_order([("chair", 4)], channel="AFN", status="Shipped")
            fake.set_status(partial["AmazonOrderId"], "PartiallyShipped", shipped={"lamp": 2})
            fake.set_status(cancelled["AmazonOrderId"], "Canceled")
            deliveries, newest = await inbound.changed_since(0)
            events = [e for d in deliveries for e in d.events]
            summary = sorted((e["type"], e["sku"], e["qty"]) for e in events)
            assert summary == [
                ("order_cancelled", "desk", 0),
                ("order_placed", "chair", 2),
                ("order_placed", "lamp", 3),
                ("order_placed", "table", 1),
                ("order_shipped", "lamp", 1),
                ("order_shipped", "lamp", 1),
            ]
            assert inbound.skipped_afn == 1
            assert newest > 0
            placed = next(e for e in events if e["sku"] == "chair")
            oid = pending["AmazonOrderId"]
            assert placed["event_id"].startswith(f"amazon/A1SELLER/order/{oid}/line/")
            assert placed["order_id"] == f"amazon:{oid}"
            text = orjson.dumps(events).decode()
            assert "Jeanne" not in text and "Lilas" not in text and "@" not in text
            assert unshipped["AmazonOrderId"] in text
            calls = sum(1 for _, path in fake.requests if path.endswith("/orderItems"))
            await inbound.changed_since(0)  # nothing changed: items come from memory
            again = sum(1 for _, path in fake.requests if path.endswith("/orderItems"))
            assert (calls, again) == (4, 4)

    run(scenario)


def test_an_unknown_order_status_is_a_dead_letter_without_personal_data() -> None:
    """Given an order whose status Amazon never documented, when it is polled, then it is
    handed to the dead-letter sink (the poll goes on with the next order) and the original
    kept for it holds the order's ids and state, not the buyer's data."""

    async def scenario() -> None:
        async with amazon() as (fake, client):
            inbound = AmazonInbound(mapping(fba_location=None), client)
            letters: list[tuple[dict[str, Any], str]] = []

            async def sink(order: Any, error: str) -> None:
                letters.append((dict(order), error))

            inbound.dead_letter = sink
            odd = fake.place_order([("chair", 1)])
            odd["OrderStatus"] = "Teleported"
            fake.place_order([("table", 1)])
            deliveries, _ = await inbound.changed_since(0)
            assert [e["sku"] for d in deliveries for e in d.events] == ["table"]
            assert len(letters) == 1 and "Teleported" in letters[0][1]
            original = without_personal_data(letters[0][0]).decode()
            assert odd["AmazonOrderId"] in original and "Jeanne" not in original

    run(scenario)


def test_state_mapping_refuses_a_missing_status() -> None:
    """Given an order without OrderStatus, when it is normalised, then it is refused as an
    invalid payload naming the known statuses."""
    with pytest.raises(InvalidPayloadError, match="Pending"):
        order_events(mapping(), {"AmazonOrderId": "1"}, [])


def test_fba_fulfillable_quantities_are_counts_at_their_own_location() -> None:
    """Given FBA stock for two mapped SKUs and one unmapped, when the orders are polled, then
    each mapped SKU's fulfillable quantity is a stock_count at amazon-fba (as of Amazon's
    update time), and nothing for the unmapped one."""

    async def scenario() -> None:
        async with amazon() as (fake, client):
            fake.set_fba("chair", 40)
            fake.set_fba("table", 0)
            fake.set_fba("unmapped", 9)
            deliveries, _ = await AmazonInbound(mapping(), client).changed_since(0)
            counts = sorted(
                (e["sku"], e["qty"], e["location"])
                for d in deliveries
                for e in d.events
                if e["type"] == "stock_count"
            )
            assert counts == [("chair", 40, "amazon-fba"), ("table", 0, "amazon-fba")]

    run(scenario)


def test_an_accepted_patch_is_ok_only_once_amazon_shows_the_quantity() -> None:
    """Given Amazon applying patches 0.3 s after accepting them, when a quantity is pushed,
    then the push is ok and Amazon shows it; given Amazon never applying within the
    confirmation wait, the same push is retried, not acknowledged."""

    async def scenario() -> None:
        async with amazon(apply_delay_s=0.3) as (fake, client):
            pusher = AmazonPusher(client, mapping())
            [result] = await pusher.push([item("chair", 8)])
            assert result.outcome is Outcome.OK
            assert fake.quantity("chair") == 8
            fake.apply_delay_s = 60
            slow = AmazonPusher(client, mapping(confirm=Confirm(poll_s=0.05, wait_s=0.3)))
            [late] = await slow.push([item("table", 7)])
            assert late.outcome is Outcome.RETRY and "not shown" in late.error
            assert fake.quantity("table") == 5

    run(scenario)


def test_an_invalid_patch_fails_with_amazons_issue_and_the_others_are_written() -> None:
    """Given a SKU Amazon refuses, when it is pushed with another, then it fails with
    Amazon's ERROR issue (dead-lettered by the engine) and the other is written."""

    async def scenario() -> None:
        async with amazon(apply_delay_s=0.05) as (fake, client):
            fake.reject("lamp", "The listing is suppressed.")
            pusher = AmazonPusher(client, mapping())
            results = {r.item.sku: r for r in await pusher.push([item("lamp", 3), item("desk", 4)])}
            assert results["lamp"].outcome is Outcome.FAILED
            assert "The listing is suppressed." in results["lamp"].error
            assert results["desk"].outcome is Outcome.OK and fake.quantity("desk") == 4

    run(scenario)


def test_a_bulk_batch_goes_as_one_feed_whose_report_fails_only_the_refused_message() -> None:
    """Given a batch above the feed threshold with one SKU Amazon refuses, when it is pushed,
    then one JSON_LISTINGS_FEED is submitted, the refused message fails with the report's
    issue, the others are ok and applied; given a FATAL feed, every item is retried."""

    async def scenario() -> None:
        async with amazon(feed_delay_s=0.2) as (fake, client):
            fake.reject("lamp", "Quantity cannot be set for this listing.")
            pusher = AmazonPusher(client, mapping())
            batch = [item("chair", 11), item("table", 12), item("lamp", 13)]
            results = {r.item.sku: r for r in await pusher.push(batch)}
            assert (len(fake.feeds), pusher.feeds) == (1, 1)
            assert results["lamp"].outcome is Outcome.FAILED
            assert "Quantity cannot be set" in results["lamp"].error
            assert [results[s].outcome for s in ("chair", "table")] == [Outcome.OK] * 2
            assert (fake.quantity("chair"), fake.quantity("table")) == (11, 12)
            assert not any(p.startswith("/listings") for _, p in fake.requests)
            fake.fatal_next_feeds(1)
            again = await pusher.push(
                [item("chair", 21, 2), item("table", 22, 2), item("desk", 23)]
            )
            assert {r.outcome for r in again} == {Outcome.RETRY}
            assert fake.quantity("chair") == 11

    run(scenario)


def test_a_quota_exceeded_retries_after_the_operations_own_rate_learned_from_amazon() -> None:
    """Given Amazon allowing patches at 0.5/s with a burst of 1 while the client believes the
    documented 5/s, when two SKUs are pushed, then the second is throttled (429
    QuotaExceeded) and retried after 2 s (one token at Amazon's rate from
    x-amzn-RateLimit-Limit), and the other operations are not blocked."""

    async def scenario() -> None:
        rates = {**FAST, "patchListingsItem": (0.5, 1.0)}
        async with amazon(apply_delay_s=0.05) as (fake, client):
            fake.rates = rates
            pusher = AmazonPusher(client, mapping())
            results = await pusher.push([item("chair", 1), item("table", 2)])
            outcomes = sorted((r.outcome.value, r.retry_after) for r in results)
            assert outcomes == [("ok", None), ("retry", 2.0)]
            assert fake.throttles == {"patchListingsItem": 1}
            assert client.limits.rate("patchListingsItem") == 0.5
            assert await client.listed_quantity("desk") == 5  # another operation goes on
            with pytest.raises(ThrottledError):
                client.limits.after("getOrders", 429, {})

    run(scenario)


def _config(**channel: Any) -> dict[str, Any]:
    entry = {
        "name": "amazon",
        "kind": "amazon",
        "base_url": "https://sellingpartnerapi-eu.amazon.com",
        "credentials": {"client_id": "id", "client_secret": "s", "refresh_token": "r"},
        "mapping": {"seller_id": "A1", "marketplace_id": "A13V1IB3VIYZZH", "skus": ["chair"]},
        **channel,
    }
    return {"channels": [entry]}


def test_an_amazon_channel_is_configured_and_its_mistakes_are_named() -> None:
    """Given an Amazon channel, when the configuration is parsed, then its mapping, limits
    and credentials are read; orders: book is taken (the order book holds its orders); an
    unknown operation limit or a missing credential are refused naming the key."""
    config = parse_connectors_config(
        _config(
            limits={"getOrders": 0.5},
            mapping={
                "seller_id": "A1",
                "marketplace_id": "A13V1IB3VIYZZH",
                "skus": ["chair"],
                "fba_location": "amazon-fba",
                "feed": {"above": 50},
            },
        )
    )
    inst = config.channels[0]
    assert isinstance(inst.mapping, AmazonMapping)
    assert (inst.mapping.fba_location, inst.mapping.feed.above) == ("amazon-fba", 50)
    assert inst.skus == frozenset({"chair"}) and inst.limits == {"getOrders": 0.5}
    assert parse_connectors_config(_config(orders="book")).channels[0].orders == "book"
    with pytest.raises(ConnectorConfigError, match=r"limits\.getOrderz"):
        parse_connectors_config(_config(limits={"getOrderz": 1}))
    with pytest.raises(ConnectorConfigError, match="refresh_token"):
        parse_connectors_config(_config(credentials={"client_id": "id", "client_secret": "s"}))


def test_a_feed_still_running_is_waited_for_before_a_newer_write() -> None:
    """Given a feed Amazon has not finished when the pusher stops waiting, when its items
    are retried and a newer quantity is pushed, then the first answer is a retry and the
    newer write starts only once that feed is done, so Amazon ends on the newer quantity."""

    async def scenario() -> None:
        async with amazon(feed_delay_s=0.6) as (fake, client):
            pusher = AmazonPusher(
                client, mapping(feed=FeedOptions(above=1, poll_s=0.05, wait_s=0.4))
            )
            first = await pusher.push([item("chair", 30), item("table", 30)])
            assert {r.outcome for r in first} == {Outcome.RETRY}
            assert "IN_" in first[0].error
            later = await pusher.push([item("chair", 31, 2)])
            assert [r.outcome for r in later] == [Outcome.OK]
            assert [f["processingStatus"] for f in fake.feeds.values()] == ["DONE"]
            assert fake.quantity("chair") == 31 and fake.quantity("table") == 30

    run(scenario)


def test_in_book_mode_an_order_is_one_order_record_without_personal_data() -> None:
    """Given ``orders: book``, when an Unshipped order of two lines (one unmapped), a Pending
    one and a cancelled one are polled, then no per-line event is sent: the Unshipped one is
    placed with the mapped line (its OrderItemId, the unit price from the line's ItemPrice,
    ship-to country and postal code only) then approved as paid, the Pending one placed as
    payment_pending (it waits in the book, never shipped unpaid), the cancelled one
    cancelled; nothing carries the buyer's name, email or street."""

    async def scenario() -> None:
        async with amazon() as (fake, client):
            fake.add_listing("unmapped", 5)
            inbound = AmazonInbound(mapping(fba_location=None), client, orders_mode="book")
            paid = fake.place_order([("chair", 2), ("unmapped", 1)], status="Unshipped")
            unpaid = fake.place_order([("table", 1)])
            gone = fake.place_order([("lamp", 1)], status="Unshipped")
            fake.set_status(gone["AmazonOrderId"], "Canceled")
            deliveries, _ = await inbound.changed_since(0)
            assert [e for d in deliveries for e in d.events] == []
            records = {(r["order_id"], r["type"]): r for d in deliveries for r in d.orders}
            oid = paid["AmazonOrderId"]
            placed = records[(f"amazon:{oid}", "placed")]
            assert placed["risk"] is None
            assert records[(f"amazon:{oid}", "approved")]["event_id"].endswith(f"{oid}/paid")
            assert placed["event_id"] == f"amazon/A1SELLER/order/{oid}/placed"
            item = fake.order_items[oid][0]
            assert [
                (x["line_id"], x["sku"], x["qty"], x["unit_price"]) for x in placed["lines"]
            ] == [(item["OrderItemId"], "chair", 2, 1050)]
            assert (placed["ship_to"]["country"], placed["ship_to"]["postal_code"]) == (
                "FR",
                "69003",
            )
            kinds = sorted(t for _, t in records)
            assert kinds == ["approved", "cancelled", "placed", "placed"]
            assert records[(f"amazon:{unpaid['AmazonOrderId']}", "placed")]["risk"] == (
                "payment_pending"
            )
            assert (f"amazon:{gone['AmazonOrderId']}", "cancelled") in records
            text = orjson.dumps([d.orders for d in deliveries]).decode()
            assert "Jeanne" not in text and "Lilas" not in text and "@" not in text

    run(scenario)


def _notice(oid: str, lines: list[tuple[str, str, int]], carrier: str = "ups") -> ShipNotice:
    return ShipNotice(
        shipment_id=f"ship|w1|amazon:{oid}",
        order_id=f"amazon:{oid}",
        channel="amazon",
        channel_order_id=oid,
        carrier=carrier,
        service="standard",
        tracking_number="1Z999AA10123456784",
        location="main",
        lines=tuple(ShipLine(lid, sku, qty) for lid, sku, qty in lines),
    )


def test_a_shipment_is_confirmed_once_with_its_package_and_a_refused_one_is_raised() -> None:
    """Given an Unshipped order of 2 chairs and 1 table, when its shipment by UPS is
    confirmed, then Amazon took one package (numeric reference made of the shipment id, UPS,
    the tracking number, both items) and the order is Shipped; confirmed again it is
    ``already`` with no second package; a carrier Amazon has no code for goes as Other with
    its name; a cancelled order's shipment is refused naming its state."""

    async def scenario() -> None:
        async with amazon() as (fake, client):
            shipper = AmazonShipper(client, mapping())
            order = fake.place_order([("chair", 2), ("table", 1)], status="Unshipped")
            oid = order["AmazonOrderId"]
            ids = [
                (i["OrderItemId"], i["SellerSKU"], i["QuantityOrdered"])
                for i in fake.order_items[oid]
            ]
            notice = _notice(oid, ids)
            assert await shipper.confirm_shipment(notice) == SHIPPED
            [package] = fake.shipments[oid]
            assert package["packageReferenceId"] == package_reference(notice.shipment_id)
            assert package["packageReferenceId"].isdigit()
            assert (package["carrierCode"], package["trackingNumber"]) == (
                "UPS",
                "1Z999AA10123456784",
            )
            assert sorted(
                (x["orderItemId"], x["quantity"]) for x in package["orderItems"]
            ) == sorted((lid, qty) for lid, _, qty in ids)
            assert fake.orders[oid]["OrderStatus"] == "Shipped"
            assert await shipper.confirm_shipment(notice) == ALREADY
            assert len(fake.shipments[oid]) == 1

            other = fake.place_order([("lamp", 1)], status="Unshipped")
            lid = fake.order_items[other["AmazonOrderId"]][0]["OrderItemId"]
            notice = _notice(other["AmazonOrderId"], [(lid, "lamp", 1)], carrier="Relais Colis")
            assert await shipper.confirm_shipment(notice) == SHIPPED
            [package] = fake.shipments[other["AmazonOrderId"]]
            assert (package["carrierCode"], package["carrierName"]) == ("Other", "Relais Colis")

            gone = fake.place_order([("desk", 1)], status="Unshipped")
            fake.set_status(gone["AmazonOrderId"], "Canceled")
            lid = fake.order_items[gone["AmazonOrderId"]][0]["OrderItemId"]
            with pytest.raises(RejectedError, match="Canceled"):
                await shipper.confirm_shipment(_notice(gone["AmazonOrderId"], [(lid, "desk", 1)]))
            assert gone["AmazonOrderId"] not in fake.shipments

    run(scenario)


def test_a_throttled_confirmation_is_raised_for_a_retry_and_a_partial_parcel_ships_part() -> None:
    """Given confirmShipment at Amazon's limit, when a confirmation is throttled, then the
    shipper raises ThrottledError (retried by the framework) and confirms nothing; when one of
    two units ships, the order is PartiallyShipped, and the second parcel ships it."""

    async def scenario() -> None:
        async with amazon() as (fake, client):
            shipper = AmazonShipper(client, mapping())
            order = fake.place_order([("chair", 2)], status="Unshipped")
            oid = order["AmazonOrderId"]
            lid = fake.order_items[oid][0]["OrderItemId"]
            assert (await client.order(oid) or {}).get("OrderStatus") == "Unshipped"
            fake.fail_next(1, status=429)
            with pytest.raises(ThrottledError):
                await shipper.confirm_shipment(_notice(oid, [(lid, "chair", 1)]))
            assert oid not in fake.shipments
            assert await shipper.confirm_shipment(_notice(oid, [(lid, "chair", 1)])) == SHIPPED
            assert fake.orders[oid]["OrderStatus"] == "PartiallyShipped"
            second = replace(_notice(oid, [(lid, "chair", 1)]), shipment_id="ship|w2|x")
            assert await shipper.confirm_shipment(second) == SHIPPED
            assert fake.orders[oid]["OrderStatus"] == "Shipped"
            assert len(fake.shipments[oid]) == 2

    run(scenario)


def test_the_shipping_address_is_read_with_a_restricted_data_token_and_never_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Given an Amazon order shipping to Lyon, when the shipping service's address book asks
    for amazon:<id>, then the reader gets a Restricted Data Token for that order's address
    and answers the buyer's name and street (the plain access token gets only city, postal
    code and country); an unknown order is None; a token for another order's address is
    refused (the label waits: AddressUnavailableError); the configured channel has this
    reader; no name, street or token reaches the log."""
    caplog.set_level(logging.DEBUG)

    async def scenario() -> None:
        async with amazon() as (fake, client):
            order = fake.place_order([("chair", 1)], status="Unshipped")
            oid = order["AmazonOrderId"]
            book = ChannelAddresses({"amazon": AmazonAddresses(client)})
            found = await book(SimpleNamespace(order_id=f"amazon:{oid}"))
            assert found == Address("FR", "69003", "Lyon", ("12 rue des Lilas",), "Jeanne Martin")
            assert fake.rdts_issued == 1
            plain = await client.call("getOrderAddress", "GET", f"/orders/v0/orders/{oid}/address")
            assert plain["payload"]["ShippingAddress"] == {
                "City": "Lyon",
                "PostalCode": "69003",
                "CountryCode": "FR",
            }
            assert await book(SimpleNamespace(order_id="amazon:402-0000000-0000000")) is None
            other = fake.place_order([("table", 1)], status="Unshipped")["AmazonOrderId"]
            rdt = await client.restricted_data_token("GET", f"/orders/v0/orders/{oid}/address")
            with pytest.raises(RejectedError, match="Unauthorized"):
                await client.call(
                    "getOrderAddress", "GET", f"/orders/v0/orders/{other}/address", restricted=rdt
                )
            fake.fail_next(1, status=503)
            with pytest.raises(AddressUnavailableError, match=oid):
                await book(SimpleNamespace(order_id=f"amazon:{oid}"))
            credentials = {  # registered as secrets when the reader is built: real-looking ones
                "client_id": fake.client_id,
                "client_secret": fake.client_secret,
                "refresh_token": fake.refresh_token,
            }
            config = parse_connectors_config(_config(base_url=fake.url, credentials=credentials))
            async with aiohttp.ClientSession() as session:
                assert isinstance(address_reader(session, config.channels[0]), AmazonAddresses)

    run(scenario)
    assert "Jeanne" not in caplog.text and "Lilas" not in caplog.text
    assert "Atz.sprdt" not in caplog.text  # nor a restricted data token


def test_in_book_mode_an_unreadable_order_is_a_dead_letter_and_the_poll_goes_on() -> None:
    """Given ``orders: book`` and an order whose line price is not a number, when the orders
    are polled, then that order is handed to the dead-letter sink naming the price, and the
    next order is still placed in the book."""

    async def scenario() -> None:
        async with amazon() as (fake, client):
            inbound = AmazonInbound(mapping(fba_location=None), client, orders_mode="book")
            letters: list[str] = []

            async def sink(order: Any, error: str) -> None:
                letters.append(error)

            inbound.dead_letter = sink
            odd = fake.place_order([("chair", 1)], status="Unshipped")
            fake.order_items[odd["AmazonOrderId"]][0]["ItemPrice"]["Amount"] = "n/a"
            fine = fake.place_order([("table", 1)], status="Unshipped")
            deliveries, _ = await inbound.changed_since(0)
            placed = {r["order_id"] for d in deliveries for r in d.orders}
            assert placed == {f"amazon:{fine['AmazonOrderId']}"}
            assert len(letters) == 1 and "n/a" in letters[0]

    run(scenario)
