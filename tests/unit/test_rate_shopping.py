"""Rate shopping: ranking by service level (properties), packing, and the shop/buy path
against the three fake carriers with one down, one too slow, and refusals."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import REGISTRY

from connectors.carriers.base import CarrierRefused, CarrierUnavailable
from connectors.carriers.chronopost.client import ChronopostCarrier
from connectors.carriers.config import (
    CarrierConfigError,
    build_carriers,
    parse_carriers_config,
)
from connectors.carriers.dhl.client import DhlCarrier
from connectors.carriers.http import HttpLimits
from connectors.carriers.model import Address, Parcel, Rate
from connectors.carriers.shopping import (
    EXPRESS,
    STANDARD,
    ServiceLevel,
    buy,
    parcels_for,
    rank,
    shop,
    shop_and_buy,
)
from connectors.carriers.ups.client import UpsCarrier
from connectors.testing.carriers.base import FakeService
from connectors.testing.carriers.chronopost import FakeChronopost
from connectors.testing.carriers.dhl import FakeDhl
from connectors.testing.carriers.ups import FakeUps

FROM = Address("FR", "75011", "Paris", ("1 rue de la Roquette",), "Stockflow SAS")
TO = Address("FR", "69002", "Lyon", ("12 quai Saint-Antoine",), "Jeanne Martin")
BOX = Parcel(1500, 300, 200, 100)
FAST = HttpLimits(timeout_s=3.0, max_attempts=2, backoff_base_s=0.01, backoff_cap_s=0.02)

rates_st = st.lists(
    st.builds(
        Rate,
        carrier=st.sampled_from(["ups", "dhl", "chronopost"]),
        service=st.sampled_from(["a", "b", "c"]),
        amount_minor=st.integers(1, 10_000),
        currency=st.just("EUR"),
        days=st.one_of(st.none(), st.integers(0, 7)),
        rate_id=st.just("r"),
    ),
    max_size=12,
)
levels_st = st.builds(
    ServiceLevel, st.sampled_from([STANDARD, EXPRESS]), st.one_of(st.none(), st.integers(0, 5))
)


@given(rates_st, levels_st)
def test_the_best_rate_keeps_the_promise_when_any_does_and_is_cheapest_or_fastest(
    rates: list[Rate], level: ServiceLevel
) -> None:
    """Given any rates and a service level, when ranked, then nothing is lost, a rate keeping
    the max days comes before any that does not, and the first is the cheapest (standard) or
    the fastest (express) among those keeping the promise."""
    ranked = rank(rates, level)
    assert sorted(ranked, key=repr) == sorted(rates, key=repr)
    keeps = [level.keeps_promise(r) for r in ranked]
    assert keeps == sorted(keeps, reverse=True)
    if not ranked:
        return
    pool = [r for r in rates if level.keeps_promise(r)] or rates
    best = ranked[0]
    never = 10**6
    if level.level == STANDARD:
        assert best.amount_minor == min(r.amount_minor for r in pool)
    else:
        assert (best.days if best.days is not None else never) == min(
            r.days if r.days is not None else never for r in pool
        )


@given(
    st.dictionaries(st.sampled_from(["a", "b", "c"]), st.integers(1, 20), min_size=1),
    st.integers(5_000, 30_000),
)
def test_packing_keeps_every_unit_and_no_parcel_passes_the_weight_limit(
    lines: dict[str, int], max_weight: int
) -> None:
    """Given order lines and SKU sizes, when packed, then the parcels weigh exactly the units
    and none passes the limit (no unit is heavier than the limit here)."""
    sizes = {
        "a": Parcel(700, 300, 200, 100),
        "b": Parcel(2_500, 500, 400, 300),
        "c": Parcel(4_900, 200, 200, 200),
    }
    parcels = parcels_for(lines, sizes, max_weight_g=max_weight)
    assert sum(p.weight_g for p in parcels) == sum(sizes[s].weight_g * n for s, n in lines.items())
    assert all(p.weight_g <= max_weight for p in parcels)


def test_packing_a_sku_without_dimensions_names_it() -> None:
    """Given a SKU without dimensions and no default, then packing names the SKU and the key."""
    with pytest.raises(KeyError, match=r"carriers\.parcels"):
        parcels_for({"ghost": 1}, {})


async def _three(
    session: aiohttp.ClientSession, ups: FakeUps, dhl: FakeDhl, chrono: FakeChronopost
) -> list[UpsCarrier | DhlCarrier | ChronopostCarrier]:
    return [
        UpsCarrier(
            session,
            ups.url,
            client_id=ups.client_id,
            client_secret=ups.client_secret,
            account=ups.account,
            limits=FAST,
        ),
        DhlCarrier(
            session,
            dhl.url,
            api_key=dhl.api_key,
            api_secret=dhl.api_secret,
            account=dhl.account,
            limits=FAST,
        ),
        ChronopostCarrier(
            session, chrono.url, account=chrono.account, password=chrono.password, limits=FAST
        ),
    ]


def test_shopping_skips_a_carrier_that_is_down_or_too_slow_and_buys_from_the_others() -> None:
    """Given the three fakes with DHL down and Chronopost slower than the quote timeout, when
    a standard parcel is shopped, then UPS still answers and its cheapest rate is bought,
    and the quote says why DHL and Chronopost gave none."""

    async def main() -> None:
        async with (
            FakeUps() as ups,
            FakeDhl() as dhl,
            FakeChronopost() as chrono,
            aiohttp.ClientSession() as session,
        ):
            carriers = await _three(session, ups, dhl, chrono)
            dhl.down(30)
            chrono.slow(1_000)
            quote = await shop(carriers, FROM, TO, [BOX], ServiceLevel(STANDARD), timeout_s=0.4)
            assert {r.carrier for r in quote.rates} == {"ups"}
            assert set(quote.skipped) == {"dhl", "chronopost"}
            assert "no answer within" in quote.skipped["chronopost"]
            purchase = await buy(carriers, quote, FROM, TO, [BOX], "SO-2001")
            assert purchase.label.carrier == "ups" and purchase.rate == quote.rates[0]

    asyncio.run(main())


def test_express_buys_the_fastest_and_standard_the_cheapest_across_carriers() -> None:
    """Given the three fakes' price lists, when one parcel is shopped as standard within 5
    days and as express within 1 day, then standard buys the cheapest rate of all (Chronopost
    Relais) and express the cheapest next-day rate (Chronopost 18)."""

    async def main() -> None:
        async with (
            FakeUps() as ups,
            FakeDhl() as dhl,
            FakeChronopost() as chrono,
            aiohttp.ClientSession() as session,
        ):
            carriers = await _three(session, ups, dhl, chrono)
            standard = await shop_and_buy(
                carriers, FROM, TO, [BOX], ServiceLevel(STANDARD, 5), "SO-2002"
            )
            express = await shop_and_buy(
                carriers, FROM, TO, [BOX], ServiceLevel(EXPRESS, 1), "SO-2003"
            )
            assert (standard.rate.carrier, standard.rate.service) == ("chronopost", "86")
            assert (express.rate.carrier, express.rate.service) == ("chronopost", "16")
            assert express.label.cost_minor == express.rate.amount_minor

    asyncio.run(main())


def fallbacks(carrier: str) -> float:
    return (
        REGISTRY.get_sample_value(
            "stockflow_carrier_label_fallbacks_total",
            {"carrier": carrier, "reason": "unavailable"},
        )
        or 0.0
    )


def test_a_label_failing_at_the_best_carrier_falls_back_to_the_next_carriers_best_rate() -> None:
    """Given Chronopost with the three cheapest rates, answering quotes but failing its label
    call (500), when the parcel is bought, then the label comes from the next carrier's best
    rate, no other Chronopost rate is tried, and the purchase says why Chronopost failed."""
    cheap = tuple(FakeService(c, c, 100 * i, 10, 1) for i, c in enumerate(("01", "16", "86"), 1))

    async def main() -> None:
        async with (
            FakeUps() as ups,
            FakeDhl() as dhl,
            FakeChronopost(services=cheap) as chrono,
            aiohttp.ClientSession() as session,
        ):
            carriers = await _three(session, ups, dhl, chrono)
            quote = await shop(carriers, FROM, TO, [BOX], ServiceLevel(STANDARD))
            assert [r.carrier for r in quote.rates[:3]] == ["chronopost"] * 3
            chrono.down(30)
            before = fallbacks("chronopost")
            purchase = await buy(carriers, quote, FROM, TO, [BOX], "SO-2004")
            assert fallbacks("chronopost") == before + 1
            next_best = next(r for r in quote.rates if r.carrier != "chronopost")
            assert purchase.rate == next_best and purchase.label.carrier == next_best.carrier
            assert list(purchase.failed) == ["chronopost"] and chrono.failed_requests == 1
            assert not chrono.shipments

    asyncio.run(main())


def test_when_every_carrier_refuses_the_address_the_error_lists_each_reason() -> None:
    """Given an address every fake refuses, when shopped and bought, then CarrierRefused says
    what each carrier answered; given every carrier down, CarrierUnavailable."""

    async def main() -> None:
        async with (
            FakeUps() as ups,
            FakeDhl() as dhl,
            FakeChronopost() as chrono,
            aiohttp.ClientSession() as session,
        ):
            carriers = await _three(session, ups, dhl, chrono)
            quote = await shop(carriers, FROM, TO, [BOX], ServiceLevel())
            for fake in (ups, dhl, chrono):
                fake.invalid_postal_codes.add(TO.postal_code)
            with pytest.raises(CarrierRefused) as refused:
                await buy(carriers, quote, FROM, TO, [BOX], "SO-2005")
            assert all(name in str(refused.value) for name in ("ups", "dhl", "chronopost"))
            for fake in (ups, dhl, chrono):
                fake.down(30)
            with pytest.raises(CarrierUnavailable):
                await shop_and_buy(carriers, FROM, TO, [BOX], ServiceLevel(), "SO-2006")

    asyncio.run(main())


def test_the_carriers_config_builds_clients_and_names_each_mistake(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Given a carriers section with the three accounts, when parsed, then secrets stay
    hidden, levels and parcels are read and clients are built; a wrong kind, a missing env
    secret or a bad level each raise an error naming the key."""
    monkeypatch.setenv("UPS_SECRET_T", "s3cr3t-value")
    raw = {
        "accounts": [
            {
                "name": "ups",
                "kind": "ups",
                "base_url": "https://wwwcie.ups.com",
                "credentials": {
                    "client_id": "id",
                    "client_secret": "env:UPS_SECRET_T",
                    "account": "A1B2C3",
                },
                "limits": {"per_s": 5},
            },
            {
                "name": "dhl",
                "kind": "dhl",
                "base_url": "https://express.api.dhl.com/mydhlapi",
                "credentials": {"api_key": "k", "api_secret": "s", "account": "1"},
            },
            {
                "kind": "chronopost",
                "base_url": "https://ws.chronopost.fr",
                "credentials": {"account": "19869502", "password": "255562"},
                "days": {"86": 3},
            },
        ],
        "parcels": {
            "chair": {"weight_g": 7000, "length_mm": 600, "width_mm": 500, "height_mm": 450}
        },
        "ship_from": {"paris": {"country": "fr", "postal_code": "75011"}},
        "service_levels": {
            "default": {"service_level": "standard", "max_days": 5},
            "shopify": {"service_level": "express", "max_days": 2},
        },
    }
    config = parse_carriers_config(raw)
    assert "s3cr3t" not in repr(config)
    assert config.level_for("shopify") == ServiceLevel(EXPRESS, 2)
    assert config.level_for("woo") == ServiceLevel(STANDARD, 5)
    assert config.ship_from["paris"].country == "FR"

    async def build() -> list[str]:
        async with aiohttp.ClientSession() as session:
            return [c.name for c in build_carriers(config, session)]

    assert asyncio.run(build()) == ["ups", "dhl", "chronopost"]
    for path, broken in [
        ("accounts[0].kind", {**raw, "accounts": [{**raw["accounts"][0], "kind": "fedex"}]}),
        (
            "UPS_MISSING",
            {
                **raw,
                "accounts": [
                    {
                        **raw["accounts"][0],
                        "credentials": {
                            "client_id": "id",
                            "client_secret": "env:UPS_MISSING",
                            "account": "A",
                        },
                    }
                ],
            },
        ),
        (
            "service_levels.shopify",
            {**raw, "service_levels": {"shopify": {"service_level": "overnight"}}},
        ),
    ]:
        with pytest.raises(CarrierConfigError, match=path.replace("[", r"\[").replace("]", r"\]")):
            parse_carriers_config(broken)


def test_tracking_is_polled_per_carrier_and_a_carrier_down_does_not_hide_the_others() -> None:
    """Given a label from each fake carrier of the fleet (built from the fleet's config), when
    UPS's parcel is delivered, DHL's refused and Chronopost is down, then one poll returns
    UPS delivered and DHL exception, and reports Chronopost failed (asked again next time)."""
    from connectors.carriers.tracking import poll
    from connectors.testing.carriers.fleet import FakeCarrierFleet

    async def main() -> None:
        async with FakeCarrierFleet() as fleet, aiohttp.ClientSession() as session:
            config = parse_carriers_config(fleet.config())
            carriers = build_carriers(config, session)
            numbers: dict[str, list[str]] = {}
            for carrier in carriers:
                rate = (await carrier.rates(FROM, TO, [BOX]))[0]
                label = await carrier.ship(rate, FROM, TO, [BOX], f"SO-3{carrier.name}")
                numbers[carrier.name] = [label.tracking_number]
            fleet.progress("ups", numbers["ups"][0], "delivered")
            fleet.progress("dhl", numbers["dhl"][0], "exception")
            fleet.chronopost.down(30)
            result = await poll(carriers, numbers)
            assert result.statuses[numbers["ups"][0]].status == "delivered"
            assert result.statuses[numbers["dhl"][0]].status == "exception"
            assert numbers["chronopost"][0] not in result.statuses
            assert list(result.failed) == ["chronopost"]

    asyncio.run(main())


@given(st.text(max_size=3), st.text(max_size=3), st.booleans())
def test_every_carrier_code_folds_into_one_of_the_four_order_statuses(
    code: str, sub_code: str, high_priority: bool
) -> None:
    """Given any carrier code (known or not), when grouped and folded, then the status is one
    of in_transit, delivered, exception, unknown; the documented delivered codes fold to
    delivered and an unknown code to unknown (never delivered by accident)."""
    from connectors.carriers import statuses
    from connectors.carriers.model import STATUSES

    for fine in (
        statuses.ups(code, sub_code),
        statuses.dhl(code),
        statuses.chronopost(code, high_priority),
    ):
        assert statuses.fold(fine) in STATUSES
    assert statuses.fold(statuses.ups("D", "011")) == "delivered"
    assert statuses.fold(statuses.dhl("OK")) == "delivered"
    assert statuses.fold(statuses.chronopost("D")) == "delivered"
    if code not in ("D", "OK", "PD", "011") and sub_code != "011":
        assert "delivered" not in {
            statuses.fold(statuses.ups(code, sub_code)),
            statuses.fold(statuses.dhl(code)),
            statuses.fold(statuses.chronopost(code, high_priority)),
        }
