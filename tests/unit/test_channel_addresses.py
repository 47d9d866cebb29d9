"""The shipping address is asked of the order's channel at label time (Shopify, WooCommerce,
Mirakl, Fnac, Cdiscount and eMAG fakes in-process): read whole, None for an unknown order or
a channel without a reader, a channel failure holds the label, and no name or street ever
reaches the log."""

from __future__ import annotations

import asyncio
import logging
from datetime import date
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest

from connectors.address_book import build_address_book
from connectors.carriers.base import CarrierRefused
from connectors.carriers.destinations import AddressUnavailableError, ChannelAddresses
from connectors.carriers.model import Address, Rate
from connectors.config import parse_connectors_config
from connectors.shopify.addresses import ShopifyAddresses
from connectors.shopify.client import ShopifyClient
from connectors.testing.cdiscount import FakeCdiscount
from connectors.testing.emag import FakeEmag
from connectors.testing.fnac import FakeFnac
from connectors.testing.mirakl import FakeMirakl
from connectors.testing.shopify import FakeShopify
from connectors.testing.woocommerce import FakeWooCommerce
from connectors.woocommerce.addresses import WooAddresses
from schemas.codec import single_object_codec
from streams.fulfilment.model import Wave, WaveLine, WaveOrder, WaveStatus
from streams.kernel.settings import Settings
from streams.shipping import records
from streams.shipping.config import parse_shipping
from streams.shipping.run import run_command
from streams.shipping.service import ShippingService
from tests.fakes.harness import seed_shopify, seed_woo, shopify_client, woo_client

PERSONAL = ("Jeanne", "Martin", "Oberkampf", "Hans", "Becker", "Torstrasse")


def _order(order_id: str) -> Any:
    return SimpleNamespace(order_id=order_id)


def _clean(caplog: pytest.LogCaptureFixture) -> None:
    text = caplog.text
    assert not [word for word in PERSONAL if word in text], text


def test_a_shopify_orders_shipping_address_is_read_and_an_unknown_order_is_none(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Given a Shopify order shipping to Paris, when the address book is asked for
    shopify:<id>, then it answers the name, street lines, city, postal code and country of
    the order's shipping_address; an unknown order (404) is None, and nothing personal was
    logged."""
    caplog.set_level(logging.DEBUG)

    async def run() -> None:
        async with FakeShopify() as fake, aiohttp.ClientSession() as session:
            seed_shopify(fake)
            placed = fake.place_order([(10, 1)])
            book = ChannelAddresses({"shopify": ShopifyAddresses(shopify_client(session, fake))})
            found = await book(_order(f"shopify:{placed['id']}"))
            assert found == Address(
                "FR", "75011", "Paris", ("12 rue Oberkampf", "Bat B"), "Jeanne Martin"
            )
            assert "Oberkampf" not in repr(found)
            assert await book(_order("shopify:99999999")) is None

    asyncio.run(run())
    _clean(caplog)


def test_a_woocommerce_orders_shipping_address_is_read_and_an_unknown_order_is_none(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Given a WooCommerce order shipping to Berlin, when the address book is asked for
    woocommerce:<id>, then it answers the order's `shipping` (name, street, city, postcode,
    country); an unknown order (404) is None, and nothing personal was logged."""
    caplog.set_level(logging.DEBUG)

    async def run() -> None:
        async with FakeWooCommerce() as fake, aiohttp.ClientSession() as session:
            seed_woo(fake)
            placed = fake.place_order([(1, 1)], company="Acme GmbH")
            book = ChannelAddresses({"woocommerce": WooAddresses(woo_client(session, fake))})
            found = await book(_order(f"woocommerce:{placed['id']}"))
            assert found == Address(
                "DE", "10115", "Berlin", ("Acme GmbH", "Torstrasse 5"), "Hans Becker"
            )
            assert await book(_order("woocommerce:99999999")) is None

    asyncio.run(run())
    _clean(caplog)


@pytest.mark.parametrize("status", [503, 429])
def test_a_channel_that_cannot_answer_raises_for_a_later_try(
    status: int, caplog: pytest.LogCaptureFixture
) -> None:
    """Given both channels answering 503 (or 429) once, when their orders' addresses are
    asked, then the book raises AddressUnavailableError naming the order (never None: the
    label must not go without the address); the next ask reads the address."""
    caplog.set_level(logging.DEBUG)

    async def run() -> None:
        async with (
            FakeShopify() as shop,
            FakeWooCommerce() as woo,
            aiohttp.ClientSession() as session,
        ):
            seed_shopify(shop)
            seed_woo(woo)
            sid = shop.place_order([(10, 1)])["id"]
            wid = woo.place_order([(1, 1)])["id"]
            book = ChannelAddresses(
                {
                    "shopify": ShopifyAddresses(shopify_client(session, shop)),
                    "woocommerce": WooAddresses(woo_client(session, woo)),
                }
            )
            for fake, order_id in ((shop, f"shopify:{sid}"), (woo, f"woocommerce:{wid}")):
                fake.fail_next(1, status=status, retry_after=0.1)
                with pytest.raises(AddressUnavailableError, match=order_id) as caught:
                    await book(_order(order_id))
                assert not [w for w in PERSONAL if w in str(caught.value)]
                found = await book(_order(order_id))
                assert found is not None and found.lines

    asyncio.run(run())
    _clean(caplog)


def test_a_channel_without_a_reader_gets_none_said_once_in_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Given a book with no reader for amazon, when two amazon orders are asked, then both
    are None (country and postal code only) and the log says so once."""
    caplog.set_level(logging.INFO, logger="stockflow.addresses")
    book = ChannelAddresses({})

    async def run() -> None:
        assert await book(_order("amazon:1")) is None
        assert await book(_order("amazon:2")) is None
        assert await book(_order("no-channel-prefix")) is None

    asyncio.run(run())
    assert caplog.text.count("'amazon' has no address reader") == 1


class _Recording:
    """A carrier that records the destination it was asked to rate, then refuses."""

    name = "rec"

    def __init__(self) -> None:
        self.asked: list[Address] = []

    async def rates(self, ship_from: Address, ship_to: Address, parcels: Any) -> list[Rate]:
        self.asked.append(ship_to)
        raise CarrierRefused("rec: no service")

    async def ship(self, *args: Any) -> Any:
        raise CarrierRefused("rec: no service")

    async def pickup(self, ship_from: Address, day: date, parcels: int) -> str:
        return ""

    async def track(self, tracking_numbers: Any) -> list[Any]:
        return []


def _wave(order_id: str) -> Wave:
    order = WaveOrder(
        order_id,
        order_id.split(":")[0],
        (WaveLine("l1", "chair", 1, picked_qty=1),),
        country="FR",
        postal_code="75011",
    )
    return Wave("w1", "paris", WaveStatus.PICKED, (order,), 1, 1, version=1)


def test_the_service_sends_the_channels_address_to_the_carrier_and_holds_a_failed_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Given the shipping service with the address book over the Shopify fake, when an
    order is shipped, then the carrier is asked with the full destination; when Shopify
    answers 503, then no carrier is asked (no label without the address) and the order is
    failed, to be tried again at the next tracking tick; nothing personal was logged."""
    caplog.set_level(logging.DEBUG)
    config = parse_shipping(
        None,
        {
            "ship_from": {"paris": {"country": "FR", "postal_code": "75011"}},
            "default_parcel": {
                "weight_g": 900,
                "length_mm": 300,
                "width_mm": 200,
                "height_mm": 100,
            },
        },
    )

    async def run() -> None:
        async with FakeShopify() as fake, aiohttp.ClientSession() as session:
            seed_shopify(fake)
            oid = f"shopify:{fake.place_order([(10, 1)])['id']}"
            carrier = _Recording()
            book = ChannelAddresses({"shopify": ShopifyAddresses(shopify_client(session, fake))})
            service = ShippingService(
                Settings(state_dir=tmp_path),
                config,
                {"rec": carrier},
                codec=single_object_codec(),
                addresses=book,
            )
            wave = _wave(oid)
            order = wave.orders[0]
            assert await service.ship(wave, order) == 0  # the carrier refused: failed
            assert [a.lines for a in carrier.asked] == [("12 rue Oberkampf", "Bat B")]
            assert carrier.asked[0].name == "Jeanne Martin"
            service.failed.clear()
            fake.fail_next(1, status=503)
            assert await service.ship(wave, order) == 0
            assert len(carrier.asked) == 1  # no carrier asked without the address
            assert records.shipment_id(wave.wave_id, oid) in service.failed
            assert "AddressUnavailableError" in service.last_error

    asyncio.run(run())
    _clean(caplog)


def test_the_book_is_built_from_the_connectors_configuration_by_channel_kind() -> None:
    """Given a connectors configuration with a Shopify, a WooCommerce and a Magento channel
    (on the fakes), when the address book is built from it, then the Shopify and WooCommerce
    orders' addresses are read with the configured credentials and the Magento order gets
    None (no reader for its kind)."""

    async def run() -> None:
        async with (
            FakeShopify() as shop,
            FakeWooCommerce() as woo,
            aiohttp.ClientSession() as session,
        ):
            seed_shopify(shop)
            seed_woo(woo)
            config = parse_connectors_config(
                {
                    "channels": [
                        {
                            "name": "shop-fr",
                            "kind": "shopify",
                            "base_url": shop.url,
                            "credentials": {"token": shop.token, "webhook_secrets": ["s"]},
                            "mapping": {"shop": "demo", "push_location_id": 1, "items": []},
                        },
                        {
                            "name": "woo-de",
                            "kind": "woocommerce",
                            "base_url": woo.url,
                            "credentials": {
                                "consumer_key": "ck_test",
                                "consumer_secret": "cs_test",
                                "webhook_secrets": ["s"],
                            },
                            "mapping": {"site": "shop.example", "products": []},
                        },
                        {
                            "name": "magento",
                            "kind": "magento",
                            "base_url": "https://shop.example",
                            "credentials": {"token": "t"},
                            "mapping": {"store": "s", "sources": {"default": "main"}, "skus": []},
                        },
                    ]
                }
            )
            book = build_address_book(session, config)
            assert sorted(book.readers) == ["shop-fr", "woo-de"]
            sid = shop.place_order([(10, 1)])["id"]
            wid = woo.place_order([(1, 1)])["id"]
            at_shop = await book(_order(f"shop-fr:{sid}"))
            at_woo = await book(_order(f"woo-de:{wid}"))
            assert at_shop is not None and at_shop.city == "Paris"
            assert at_woo is not None and at_woo.city == "Berlin"
            assert await book(_order("magento:000000001")) is None

    asyncio.run(run())


def test_ship_run_refuses_a_connectors_configuration_it_cannot_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Given STOCKFLOW_CONNECTORS_CONFIG naming a missing file, when `stockflow ship run`
    starts, then it exits 2 naming the variable, before touching Kafka or a carrier."""
    config = tmp_path / "stockflow.yaml"
    config.write_text('carriers: {ship_from: {paris: {country: FR, postal_code: "75011"}}}\n')
    monkeypatch.setenv("STOCKFLOW_CONNECTORS_CONFIG", str(tmp_path / "missing.yaml"))
    settings = Settings(state_dir=tmp_path, config_path=str(config))
    assert run_command(settings) == 2
    assert "STOCKFLOW_CONNECTORS_CONFIG" in capsys.readouterr().err


def test_a_channel_answering_too_late_raises_for_a_later_try() -> None:
    """Given a Shopify store answering after 0.5 s and a client waiting 0.2 s, when an
    order's address is asked, then the book raises AddressUnavailableError (timeout), not
    None."""

    async def run() -> None:
        async with FakeShopify() as fake, aiohttp.ClientSession() as session:
            seed_shopify(fake)
            oid = fake.place_order([(10, 1)])["id"]
            client = ShopifyClient(session, fake.url, fake.token, timeout_s=0.2)
            book = ChannelAddresses({"shopify": ShopifyAddresses(client)})
            fake.slow(500)
            with pytest.raises(AddressUnavailableError, match="unreachable"):
                await book(_order(f"shopify:{oid}"))

    asyncio.run(run())


def test_marketplace_orders_shipping_addresses_are_read_from_mirakl_and_fnac(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Given a Mirakl operator that shows addresses from SHIPPING on (OR11) and Fnac Darty
    (orders_query), both in the connectors' configuration, when the address book is asked
    for their orders, then a Mirakl order still awaiting acceptance raises for a later try
    (never shipped without its address), and once SHIPPING its customer.shipping_address is
    answered (alpha-3 FRA as FR); the Fnac order's shipping_address is answered with its
    street lines; unknown orders are None, a Fnac outage (503) raises for a later try, and
    nothing personal was logged."""
    caplog.set_level(logging.DEBUG)

    async def run() -> None:
        async with (
            FakeMirakl(or11_interval_s=0, addresses_from_shipping=True) as mirakl,
            FakeFnac() as fnac,
            aiohttp.ClientSession() as session,
        ):
            mirakl.add_offer("chair", 5)
            config = parse_connectors_config(
                {
                    "channels": [
                        {
                            "name": "leroymerlin",
                            "kind": "mirakl",
                            "base_url": mirakl.url,
                            "credentials": {"api_key": mirakl.api_key},
                            "mapping": {
                                "operator": "leroymerlin",
                                "shop": "2001",
                                "offers": [{"sku": "chair", "price": "49"}],
                            },
                            "limits": {"or11_interval_s": 0.001},
                        },
                        {
                            "name": "fnac",
                            "kind": "fnac",
                            "base_url": fnac.url,
                            "credentials": {
                                "partner_id": fnac.partner_id,
                                "shop_id": fnac.shop_id,
                                "key": fnac.key,
                            },
                            "mapping": {"shop": "shop-1", "products": [{"sku": "chair"}]},
                        },
                    ]
                }
            )
            book = build_address_book(session, config)
            assert sorted(book.readers) == ["fnac", "leroymerlin"]
            placed = mirakl.place_order([("chair", 1)])
            oid = f"leroymerlin:{placed['order_id']}"
            with pytest.raises(AddressUnavailableError, match="WAITING_ACCEPTANCE"):
                await book(_order(oid))
            mirakl.orders[placed["order_id"]]["order_state"] = "SHIPPING"
            assert await book(_order(oid)) == Address(
                "FR", "69003", "Lyon", ("12 rue des Lilas",), "Louise Martin"
            )
            assert await book(_order("leroymerlin:NOPE-1-A")) is None
            fid = fnac.place_order([("chair", 1)], state="ToShip")
            assert await book(_order(f"fnac:{fid}")) == Address(
                "FR", "75011", "PARIS", ("12 rue des Lilas", "Bat C"), "Camille Durand"
            )
            assert await book(_order("fnac:NOPE")) is None
            fnac.fail_next(1, status=503)
            with pytest.raises(AddressUnavailableError, match=f"fnac:{fid}"):
                await book(_order(f"fnac:{fid}"))

    asyncio.run(run())
    _clean(caplog)
    assert "Louise" not in caplog.text and "Camille" not in caplog.text


MARKETPLACE_PERSONAL = ("Camille", "Martin", "Lilas", "Popescu", "Lipscani", "Sector 3")


def _cdiscount_and_emag_config(cds: FakeCdiscount, emag: FakeEmag) -> Any:
    return parse_connectors_config(
        {
            "channels": [
                {
                    "name": "cdiscount",
                    "kind": "cdiscount",
                    "base_url": cds.url + "/seller/v2",
                    "credentials": {
                        "client_id": cds.client_id,
                        "client_secret": cds.client_secret,
                    },
                    "mapping": {
                        "seller_id": cds.seller_id,
                        "auth_url": cds.url + "/auth/realms/maas/protocol/openid-connect/token",
                        "skus": ["chair"],
                    },
                },
                {
                    "name": "emag-ro",
                    "kind": "emag",
                    "base_url": emag.url + "/api-3",
                    "credentials": {
                        "username": emag.username,
                        "password": emag.password,
                        "callback_key": "k" * 24,
                    },
                    "mapping": {"account": "ro", "products": [{"sku": "chair", "offer_id": 1001}]},
                },
            ]
        }
    )


def test_cdiscount_and_emag_orders_shipping_addresses_are_read_over_http(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Given a Cdiscount (Octopia) and an eMAG channel in the connectors' configuration, on
    their fakes, when the address book is asked for their orders, then the Cdiscount order's
    shippingAddress (name, apartment, building, street, zip code, city, country) and the eMAG
    order's customer shipping fields (shipping_contact, street, suburb, city, postal code,
    country) are answered, alpha-3 codes as alpha-2; unknown orders are None; a Cdiscount
    order awaiting acceptance without its address raises for a later try, one shipped
    without it is None; and nothing personal was logged."""
    caplog.set_level(logging.DEBUG)

    async def run() -> None:
        async with (
            FakeCdiscount() as cds,
            FakeEmag() as emag,
            aiohttp.ClientSession() as session,
        ):
            cds.add_offer("chair", 5)
            emag.add_offer(1001, "chair", 5)
            book = build_address_book(session, _cdiscount_and_emag_config(cds, emag))
            assert sorted(book.readers) == ["cdiscount", "emag-ro"]

            oid = cds.place_order([("chair", 1)])["orderId"]
            assert await book(_order(f"cdiscount:{oid}")) == Address(
                "FR", "69003", "Lyon", ("Appt 4", "Bat C", "12 rue des Lilas"), "Camille Martin"
            )
            cds.orders[oid]["shippingAddress"]["countryCode"] = "BEL"
            found = await book(_order(f"cdiscount:{oid}"))
            assert found is not None and found.country == "BE"
            assert await book(_order("cdiscount:NOPE404")) is None
            waiting = cds.place_order([("chair", 1)])["orderId"]
            del cds.orders[waiting]["shippingAddress"]
            with pytest.raises(AddressUnavailableError, match="WaitingAcceptance") as caught:
                await book(_order(f"cdiscount:{waiting}"))
            assert f"cdiscount:{waiting}" in str(caught.value)
            cds.set_status(waiting, "Shipped")
            assert await book(_order(f"cdiscount:{waiting}")) is None

            eid = emag.place_order([(1001, 1)])["id"]
            assert await book(_order(f"emag-ro:{eid}")) == Address(
                "RO", "030031", "Bucuresti", ("Strada Lipscani 10", "Sector 3"), "Maria Popescu"
            )
            emag.orders[eid]["customer"].update(
                shipping_country="ROU", shipping_contact="", legal_entity=1, company="Acme SRL"
            )
            assert await book(_order(f"emag-ro:{eid}")) == Address(
                "RO",
                "030031",
                "Bucuresti",
                ("Acme SRL", "Strada Lipscani 10", "Sector 3"),
                "Ion Popescu",
            )
            assert await book(_order("emag-ro:999999")) is None
            assert await book(_order("emag-ro:not-a-number")) is None

    asyncio.run(run())
    text = caplog.text
    assert not [w for w in MARKETPLACE_PERSONAL if w in text], text


@pytest.mark.parametrize("status", [503, 429, 401])
def test_cdiscount_and_emag_that_cannot_answer_raise_for_a_later_try(
    status: int, caplog: pytest.LogCaptureFixture
) -> None:
    """Given Cdiscount and eMAG orders whose address was read once, when each channel answers
    503, 429 or 401 (for Octopia a refused token twice) to the next read, then the book
    raises AddressUnavailableError naming the order and nothing personal (never None: the
    label waits); the read after that answers the address again; nothing personal was
    logged."""
    caplog.set_level(logging.DEBUG)

    async def run() -> None:
        async with (
            FakeCdiscount() as cds,
            FakeEmag() as emag,
            aiohttp.ClientSession() as session,
        ):
            cds.add_offer("chair", 5)
            emag.add_offer(1001, "chair", 5)
            book = build_address_book(session, _cdiscount_and_emag_config(cds, emag))
            orders = (
                (cds, f"cdiscount:{cds.place_order([('chair', 1)])['orderId']}"),
                (emag, f"emag-ro:{emag.place_order([(1001, 1)])['id']}"),
            )
            for fake, order_id in orders:
                assert await book(_order(order_id)) is not None  # a token is held
                twice = status == 401 and fake is cds  # Octopia retries once with a new token
                fake.fail_next(2 if twice else 1, status=status, retry_after=0.1)
                with pytest.raises(AddressUnavailableError, match=order_id) as caught:
                    await book(_order(order_id))
                assert not [w for w in MARKETPLACE_PERSONAL if w in str(caught.value)]
                found = await book(_order(order_id))
                assert found is not None and found.lines and found.name

    asyncio.run(run())
    text = caplog.text
    assert not [w for w in MARKETPLACE_PERSONAL if w in text], text
