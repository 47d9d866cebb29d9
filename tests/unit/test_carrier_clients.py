"""Each carrier client against its fake: rates, label, pickup, tracking, auth, limits and
the failure modes (timeouts, 5xx, invalid address) mapped to CarrierUnavailable/Refused."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import date

import aiohttp
import pytest

from connectors.carriers.base import Carrier, CarrierError, CarrierRefused, CarrierUnavailable
from connectors.carriers.chronopost import soap
from connectors.carriers.chronopost.client import ChronopostCarrier
from connectors.carriers.dhl.client import DhlCarrier
from connectors.carriers.http import HttpLimits
from connectors.carriers.model import Address, Parcel
from connectors.carriers.ups.client import UpsCarrier
from connectors.testing.carriers.base import FakeCarrier
from connectors.testing.carriers.chronopost import FakeChronopost
from connectors.testing.carriers.dhl import FakeDhl
from connectors.testing.carriers.ups import FakeUps

FROM = Address("FR", "75011", "Paris", ("1 rue de la Roquette",), "Stockflow SAS")
TO = Address("FR", "69002", "Lyon", ("12 quai Saint-Antoine",), "Jeanne Martin")
BAD = Address("FR", "00000", "Nowhere", ("1 rue X",), "Jeanne Martin")
BOX = Parcel(1500, 300, 200, 100)
FAST = HttpLimits(timeout_s=3.0, max_attempts=3, backoff_base_s=0.01, backoff_cap_s=0.02)

Scenario = Callable[[FakeCarrier, Carrier], Awaitable[None]]


def client(
    kind: str, fake: FakeCarrier, session: aiohttp.ClientSession, limits: HttpLimits = FAST
) -> Carrier:
    if isinstance(fake, FakeUps):
        return UpsCarrier(
            session,
            fake.url,
            client_id=fake.client_id,
            client_secret=fake.client_secret,
            account=fake.account,
            limits=limits,
        )
    if isinstance(fake, FakeDhl):
        return DhlCarrier(
            session,
            fake.url,
            api_key=fake.api_key,
            api_secret=fake.api_secret,
            account=fake.account,
            limits=limits,
        )
    assert isinstance(fake, FakeChronopost)
    return ChronopostCarrier(
        session, fake.url, account=fake.account, password=fake.password, limits=limits
    )


FAKES = {"ups": FakeUps, "dhl": FakeDhl, "chronopost": FakeChronopost}
DELIVERED = {"ups": "D/011", "dhl": "OK", "chronopost": "D"}
EXCEPTION = {"ups": "X/013", "dhl": "RD", "chronopost": "XX"}


def run(kind: str, scenario: Scenario, **fake_kwargs: float) -> None:
    async def main() -> None:
        async with FAKES[kind](**fake_kwargs) as fake, aiohttp.ClientSession() as session:
            await scenario(fake, client(kind, fake, session))

    asyncio.run(main())


@pytest.mark.parametrize("kind", sorted(FAKES))
def test_a_carrier_quotes_sells_a_label_books_a_pickup_and_tracks_to_delivery(kind: str) -> None:
    """Given a carrier's fake, when the client asks rates, buys the cheapest as a label, books
    a pickup and tracks the parcel before and after the fake marks it delivered, then every
    rate is in minor units with a stable id, the label is the carrier's PDF or ZPL with the
    tracking number, its cost is the quoted price, and tracking says in transit then delivered."""

    async def scenario(fake: FakeCarrier, carrier: Carrier) -> None:
        rates = await carrier.rates(FROM, TO, [BOX])
        assert len(rates) == len(fake.services)
        assert all(r.carrier == kind and r.currency == "EUR" and r.amount_minor > 0 for r in rates)
        assert all(r.days is not None for r in rates)
        again = await carrier.rates(FROM, TO, [BOX])
        assert [r.rate_id for r in again] == [r.rate_id for r in rates]
        cheapest = min(rates, key=lambda r: r.amount_minor)
        expected = fake.price(next(s for s in fake.services if s.code == cheapest.service), 1500)
        assert cheapest.amount_minor == expected
        label = await carrier.ship(cheapest, FROM, TO, [BOX], "SO-1001")
        assert label.tracking_number in fake.shipments and label.cost_minor == expected
        assert label.format in ("PDF", "ZPL")
        if label.format == "PDF":
            assert label.data.startswith(b"%PDF")
        else:
            assert label.data.startswith(b"^XA") and label.tracking_number.encode() in label.data
        confirmation = await carrier.pickup(FROM, date(2026, 12, 1), 3)
        assert confirmation and len(fake.pickups) == 1
        [before] = await carrier.track([label.tracking_number])
        assert before.status in ("in_transit", "unknown")
        fake.progress(label.tracking_number, DELIVERED[kind])
        [after, missing] = await carrier.track([label.tracking_number, "NOPE0000000"])
        assert after.status == "delivered" and after.at_ms > 0, after
        assert missing.status == "unknown"

    run(kind, scenario)


@pytest.mark.parametrize("kind", sorted(FAKES))
def test_an_invalid_address_is_refused_with_the_carriers_reason(kind: str) -> None:
    """Given an address the carrier cannot serve, when rates and a label are asked, then both
    raise CarrierRefused with the carrier's code, and the text carries neither the name nor
    the street of the recipient."""

    async def scenario(fake: FakeCarrier, carrier: Carrier) -> None:
        with pytest.raises(CarrierRefused) as quote:
            await carrier.rates(FROM, BAD, [BOX])
        rate = (await carrier.rates(FROM, TO, [BOX]))[0]
        with pytest.raises(CarrierRefused) as label:
            await carrier.ship(rate, FROM, BAD, [BOX], "SO-1002")
        for error in (quote.value, label.value):
            assert error.code and "Jeanne" not in str(error) and "rue X" not in str(error)
        assert not fake.shipments

    run(kind, scenario)


@pytest.mark.parametrize("kind", sorted(FAKES))
def test_5xx_and_429_are_retried_for_quotes_but_a_label_is_never_sent_twice(kind: str) -> None:
    """Given two failing answers (a 503 then the carrier's throttle), when rates are asked,
    then the client retries and answers; given one 500 on a label, then the label call raises
    CarrierUnavailable after one request (a lost answer may have created a shipment)."""

    async def scenario(fake: FakeCarrier, carrier: Carrier) -> None:
        await carrier.rates(FROM, TO, [BOX])  # UPS: the token is fetched first
        fake.fail_next(1, status=503)
        fake.fail_next(1, status=429, retry_after=0.01)
        rates = await carrier.rates(FROM, TO, [BOX])
        assert rates
        sent = len(fake.requests)
        fake.fail_next(1, status=500)
        with pytest.raises(CarrierUnavailable):
            await carrier.ship(rates[0], FROM, TO, [BOX], "SO-1003")
        assert len(fake.requests) == sent + 1 and not fake.shipments

    run(kind, scenario)


@pytest.mark.parametrize("kind", sorted(FAKES))
def test_a_carrier_that_times_out_or_stays_down_is_unavailable(kind: str) -> None:
    """Given a fake slower than the client's timeout, then the call raises CarrierUnavailable
    after its attempts; given a 10 s outage, the same."""

    async def scenario(fake: FakeCarrier, carrier: Carrier) -> None:
        await carrier.rates(FROM, TO, [BOX])
        fake.slow(300)  # the client waits 0.2 s per attempt
        with pytest.raises(CarrierUnavailable, match="unreachable"):
            await carrier.rates(FROM, TO, [BOX])
        fake.slow(0)
        fake.down(10)
        with pytest.raises(CarrierUnavailable, match="HTTP 5"):
            await carrier.track(["X"])

    async def main() -> None:
        async with FAKES[kind]() as fake, aiohttp.ClientSession() as session:
            await scenario(fake, client(kind, fake, session, replace(FAST, timeout_s=0.2)))

    asyncio.run(main())


@pytest.mark.parametrize("kind", sorted(FAKES))
def test_the_fake_throttles_beyond_its_rate_limit_and_the_client_paces_itself(kind: str) -> None:
    """Given a fake allowing 5 requests then 20/s, when 12 quotes go at once from a client
    without a limit of its own, then the fake throttled some and every quote still answered
    (retried after the throttle)."""

    async def scenario(fake: FakeCarrier, carrier: Carrier) -> None:
        results = await asyncio.gather(
            *(carrier.rates(FROM, TO, [BOX]) for _ in range(12)), return_exceptions=True
        )
        assert fake.throttled_requests > 0
        assert all(isinstance(r, list) and r for r in results), results

    async def main() -> None:
        async with FAKES[kind](per_s=20, burst=5) as fake, aiohttp.ClientSession() as session:
            patient = HttpLimits(
                timeout_s=2, max_attempts=8, backoff_base_s=0.05, backoff_cap_s=0.3
            )
            await scenario(fake, client(kind, fake, session, patient))

    asyncio.run(main())


def test_ups_renews_an_expired_token_once_and_never_prints_its_secrets() -> None:
    """Given a UPS token the fake has revoked, when a quote is asked, then the client fetches
    a new token and answers; given a wrong client secret, then the error says to check the
    credentials and contains neither the secret nor its Basic encoding."""

    async def scenario(fake: FakeCarrier, carrier: Carrier) -> None:
        assert isinstance(fake, FakeUps)
        await carrier.rates(FROM, TO, [BOX])
        fake.expire_tokens()
        assert await carrier.rates(FROM, TO, [BOX])
        assert fake.tokens_issued == 2
        async with aiohttp.ClientSession() as session:
            wrong = UpsCarrier(
                session,
                fake.url,
                client_id=fake.client_id,
                client_secret="wrong-secret-123",
                account=fake.account,
                limits=FAST,
            )
            with pytest.raises(CarrierError, match="client id and secret") as refused:
                await wrong.rates(FROM, TO, [BOX])
        encoded = base64.b64encode(f"{fake.client_id}:wrong-secret-123".encode()).decode()
        assert "wrong-secret-123" not in str(refused.value)
        assert encoded not in str(refused.value)

    run("ups", scenario)


def test_dhl_and_chronopost_refuse_wrong_credentials_in_their_own_shapes() -> None:
    """Given wrong credentials, then DHL (HTTP 401 problem JSON) and Chronopost (HTTP 200,
    errorCode 3) both raise CarrierError telling what to check, not CarrierRefused."""

    async def main() -> None:
        async with FakeDhl() as dhl, FakeChronopost() as chrono, aiohttp.ClientSession() as s:
            bad_dhl = DhlCarrier(
                s, dhl.url, api_key=dhl.api_key, api_secret="nope", account=dhl.account, limits=FAST
            )
            bad_chrono = ChronopostCarrier(
                s, chrono.url, account=chrono.account, password="nope", limits=FAST
            )
            for carrier in (bad_dhl, bad_chrono):
                with pytest.raises(CarrierError) as error:
                    await carrier.rates(FROM, TO, [BOX])
                assert not isinstance(error.value, CarrierRefused | CarrierUnavailable)
                assert "check" in str(error.value)

    asyncio.run(main())


def test_chronopost_envelopes_are_xml_trees_and_faults_are_read() -> None:
    """Given a value with XML metacharacters, when an envelope is built, then it is escaped
    text inside the namespaced operation with unqualified children; a soap:Fault answer is
    raised as SoapFaultError and an entity declaration is not expanded."""
    payload = soap.envelope(
        "http://cxf.shipping.soap.chronopost.fr/",
        "op",
        {"ref": "<a&b>", "nested": {"x": 1}, "many": [{"y": 1}, {"y": 2}]},
    )
    assert b"&lt;a&amp;b&gt;" in payload
    content = soap.parse(payload)
    assert soap.to_dict(content) == {
        "ref": "<a&b>",
        "nested": {"x": "1"},
        "many": [{"y": "1"}, {"y": "2"}],
    }
    assert content[0].tag == "ref"  # unqualified child
    with pytest.raises(soap.SoapFaultError, match="soap:Client"):
        soap.parse(soap.fault("soap:Client", "Unmarshalling Error"))
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY e "BOOM">]>'
        b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>'
        b"<op><v>&e;</v></op></s:Body></s:Envelope>"
    )
    assert "BOOM" not in str(soap.to_dict(soap.parse(bomb)))


@pytest.mark.parametrize("kind", sorted(FAKES))
def test_a_parcel_refused_on_the_way_is_a_tracking_exception(kind: str) -> None:
    """Given a shipped parcel, when the fake records the carrier's exception code, then
    tracking says exception with the carrier's code in the detail."""

    async def scenario(fake: FakeCarrier, carrier: Carrier) -> None:
        rate = (await carrier.rates(FROM, TO, [BOX]))[0]
        label = await carrier.ship(rate, FROM, TO, [BOX, BOX], "SO-1004")
        fake.progress(label.tracking_number, EXCEPTION[kind])
        [status] = await carrier.track([label.tracking_number])
        assert status.status == "exception", status
        assert EXCEPTION[kind].split("/")[0] in status.detail

    run(kind, scenario)
