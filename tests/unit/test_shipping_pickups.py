"""Carrier pickups as rules (streams/shipping/pickups.py) and the shipping service booking
them against in-memory carriers and a records list (the Kafka path: the integration test
tests/integration/test_shipping_service.py)."""

from __future__ import annotations

import asyncio
import json
from datetime import date, datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from streams.kernel.settings import Settings
from streams.kernel.topics import STOCK_ALERTS, TopicSpec
from streams.shipping import pickups
from streams.shipping.config import ShippingConfigError, parse_shipping
from streams.shipping.pickup_book import PickupBook
from streams.shipping.pickups import PickupKey, PickupsConfig
from streams.shipping.service import ShippingService
from tests.fakes.carriers import MemoryCarrier

PARIS = PickupsConfig("Europe/Paris", {"paris-wh": time(16), "lyon-wh": time(15, 30)}, 30)
DAY = date(2026, 12, 1)  # a Tuesday
ZONE = ZoneInfo("Europe/Paris")


def at(hh: int, mm: int = 0, day: date = DAY) -> int:
    """Epoch ms of ``day`` ``hh:mm`` in Paris."""
    return int(datetime(day.year, day.month, day.day, hh, mm, tzinfo=ZONE).timestamp() * 1000)


def shipment(carrier: str, location: str, bought: int, parcels: int = 1) -> dict[str, Any]:
    return {"carrier": carrier, "location": location, "created_at": bought, "parcels": parcels}


def test_the_pickups_section_is_parsed_and_its_mistakes_named() -> None:
    """Given a shipping.pickups section, when parsed, then the zone, the cut-off of each
    location and the alert delay are kept, none when absent; a bad zone, a cut-off not HH:MM,
    an unknown key or a negative delay is refused with the key named."""
    config = parse_shipping(
        {"pickups": {"timezone": "Europe/Paris", "cutoffs": {"paris-wh": "16:00"}}}
    ).pickups
    assert config == PickupsConfig("Europe/Paris", {"paris-wh": time(16)}, 30, frozenset(range(5)))
    assert parse_shipping(None).pickups.cutoffs == {}
    for raw, where in (
        ({"timezone": "Mars/Olympus"}, "shipping.pickups.timezone"),
        ({"cutoffs": {"paris-wh": "4pm"}}, "shipping.pickups.cutoffs.paris-wh"),
        ({"cutoffs": {"paris-wh": "24:00"}}, "shipping.pickups.cutoffs.paris-wh"),
        ({"cutoff": {}}, "unknown key"),
        ({"alert_after_minutes": -1}, "shipping.pickups.alert_after_minutes"),
        ({"days": ["monday"]}, "shipping.pickups.days"),
        ({"days": []}, "shipping.pickups.days"),
    ):
        with pytest.raises(ShippingConfigError, match=where):
            parse_shipping({"pickups": raw})


def test_a_label_bought_from_the_cutoff_on_waits_for_the_next_days_pickup() -> None:
    """Given paris-wh's cut-off at 16:00 Paris time, when labels are bought at 15:59, 16:00
    and 23:30 (Paris; 22:30 UTC, the same UTC day), then the first leaves that day and the
    others the next day; a location without a cut-off has no pickup."""
    assert pickups.pickup_day(at(15, 59), "paris-wh", PARIS) == DAY
    assert pickups.pickup_day(at(16), "paris-wh", PARIS) == date(2026, 12, 2)
    assert pickups.pickup_day(at(23, 30), "paris-wh", PARIS) == date(2026, 12, 2)
    assert pickups.pickup_day(at(10), "lille-store", PARIS) is None
    assert pickups.cutoff_ms(DAY, "lyon-wh", PARIS) == at(15, 30)


def test_a_label_bought_for_a_day_without_collection_waits_for_the_next_collection_day() -> None:
    """Given collections Monday to Friday (the default), when labels are bought on Friday
    after the cut-off, on Saturday and on Sunday, then they leave with Monday's pickup; with
    Saturday collections, Friday's late label and Saturday's leave on Saturday."""
    friday, saturday, sunday, monday = (date(2026, 12, d) for d in (4, 5, 6, 7))
    for bought in (at(17, day=friday), at(10, day=saturday), at(10, day=sunday)):
        assert pickups.pickup_day(bought, "paris-wh", PARIS) == monday
    six = parse_shipping(
        {"pickups": {"cutoffs": {"paris-wh": "16:00"}, "timezone": "Europe/Paris",
                     "days": ["mon", "tue", "wed", "thu", "fri", "sat"]}}
    ).pickups  # fmt: skip
    assert pickups.pickup_day(at(17, day=friday), "paris-wh", six) == saturday
    assert pickups.pickup_day(at(10, day=saturday), "paris-wh", six) == saturday
    assert pickups.pickup_day(at(10, day=sunday), "paris-wh", six) == monday


def test_one_pickup_is_due_per_carrier_and_location_of_today_once_its_cutoff_passed() -> None:
    """Given labels of dhl and ups at paris-wh and lyon-wh today, one of yesterday, one bought
    after paris' cut-off and one at a store without cut-off, when asked at 15:45, then only
    lyon's pickups are due (its cut-off 15:30 passed), each with its parcels summed; at 16:00
    paris' too, without the late label nor yesterday's; a key already kept is not due."""
    labels = [
        shipment("dhl", "paris-wh", at(9), 2),
        shipment("dhl", "paris-wh", at(14), 1),
        shipment("ups", "paris-wh", at(11), 3),
        shipment("dhl", "lyon-wh", at(10), 1),
        shipment("dhl", "paris-wh", at(17), 5),  # after the cut-off: tomorrow
        shipment("dhl", "paris-wh", at(10, day=date(2026, 11, 30)), 7),  # yesterday
        shipment("dhl", "lille-store", at(10), 1),
    ]
    key = PickupKey
    assert pickups.due(labels, at(15, 45), PARIS) == [pickups.Due(key("dhl", "lyon-wh", DAY), 1)]
    due = pickups.due(labels, at(16), PARIS)
    assert due == [
        pickups.Due(key("dhl", "lyon-wh", DAY), 1),
        pickups.Due(key("dhl", "paris-wh", DAY), 3),
        pickups.Due(key("ups", "paris-wh", DAY), 3),
    ]
    kept = {key("dhl", "paris-wh", DAY).id}
    assert [d.key.carrier for d in pickups.due(labels, at(16), PARIS, kept)] == ["dhl", "ups"]
    assert pickups.due(labels, at(0, 30, date(2026, 12, 2)), PARIS) == []  # not booked late
    assert not pickups.overdue(key("dhl", "paris-wh", DAY), at(16, 29), PARIS)
    assert pickups.overdue(key("dhl", "paris-wh", DAY), at(16, 30), PARIS)


class _Service:
    """A shipping service whose records land in a list (its Kafka path is the integration
    test's) and whose clock the test sets."""

    def __init__(self, state: Path, carriers: dict[str, MemoryCarrier], now: list[int]) -> None:
        config = parse_shipping(
            {"pickups": {"timezone": "Europe/Paris", "cutoffs": {"paris-wh": "16:00"}}},
            {"ship_from": {"paris-wh": {"country": "FR", "postal_code": "75011"}}},
        )
        self.sent: list[tuple[TopicSpec, str, dict[str, Any]]] = []
        self.service = ShippingService(
            Settings(state_dir=state), config, carriers, clock=lambda: now[0]
        )

        async def send(batch: list[tuple[TopicSpec, str, dict[str, Any]]]) -> None:
            self.sent.extend(batch)

        self.service._send = send  # type: ignore[method-assign]
        asyncio.run(self.service._open_pickup_book())  # what start() does
        for n, bought in enumerate((at(9), at(11), at(15))):
            carrier = "ups" if n == 2 else "dhl"
            self.service.shipments[f"s{n}"] = {
                **shipment(carrier, "paris-wh", bought, 2),
                "status": "shipped",
            }

    def book(self) -> int:
        return asyncio.run(self.service.book_pickups())


def test_the_service_books_each_pickup_once_even_after_a_restart(tmp_path: Path) -> None:
    """Given dhl and ups labels at paris-wh today, when the service's rounds run before the
    cut-off, then nothing is booked; from it, dhl and ups are each asked once for today with
    the parcels of their labels, also over further rounds and after a restart on the same
    state folder (the kept bookings name their confirmation numbers)."""
    dhl, ups = MemoryCarrier("dhl", 700, 1), MemoryCarrier("ups", 500, 2)
    now = [at(15, 59)]
    first = _Service(tmp_path, {"dhl": dhl, "ups": ups}, now)
    assert first.book() == 0 and dhl.pickups == [] and ups.pickups == []
    now[0] = at(16, 1)
    assert first.book() == 2 and first.book() == 0
    assert [(p[0].postal_code, p[1], p[2]) for p in dhl.pickups] == [("75011", DAY, 4)]
    assert [(p[1], p[2]) for p in ups.pickups] == [(DAY, 2)]
    again = _Service(tmp_path, {"dhl": dhl, "ups": ups}, now)
    assert again.book() == 0 and len(dhl.pickups) == 1 and len(ups.pickups) == 1
    kept = json.loads((tmp_path / "shipping" / "pickups.json").read_text())
    assert {e["status"] for e in kept.values()} == {"booked"}
    assert kept["pickup|dhl|paris-wh|2026-12-01"]["confirmation"] == "dhl-pickup-2026-12-01-1"
    assert first.sent == [] and again.sent == []


def test_a_failed_booking_is_retried_and_alerted_once_past_the_alert_delay(
    tmp_path: Path,
) -> None:
    """Given dhl refusing pickups (503) at the cut-off, when rounds run at 16:01 and 16:20,
    then each round asks again and no alert is raised; at 16:31 and 16:40 one pickup_failed
    alert names dhl, paris-wh and the day (once); when dhl is back, the pickup is booked once
    and no further alert comes."""
    dhl, ups = MemoryCarrier("dhl", 700, 1), MemoryCarrier("ups", 500, 2)
    dhl.pickups_down = True
    now = [at(16, 1)]
    run = _Service(tmp_path, {"dhl": dhl, "ups": ups}, now)
    assert run.book() == 1  # ups
    now[0] = at(16, 20)
    assert run.book() == 0 and run.sent == []
    assert run.service.counts["pickup_failures"] == 2
    for minute in (31, 40):
        now[0] = at(16, minute)
        run.book()
    alerts = [r for topic, _, r in run.sent if topic == STOCK_ALERTS]
    assert [(a["alert_id"], a["kind"], a["location"], a["value"]) for a in alerts] == [
        ("pickup_failed|dhl|paris-wh|2026-12-01", "pickup_failed", "paris-wh", 4)
    ]
    assert "503" in alerts[0]["message"]
    dhl.pickups_down = False
    now[0] = at(16, 45)
    assert run.book() == 1 and run.book() == 0
    assert [(p[1], p[2]) for p in dhl.pickups] == [(DAY, 4)]
    assert len([r for topic, _, r in run.sent if topic == STOCK_ALERTS]) == 1


def test_a_booking_a_stop_interrupted_is_not_made_again_but_reported(tmp_path: Path) -> None:
    """Given a pickup kept at `booking` (the service stopped during the carrier's call),
    when the service starts again past the cut-off, then it is not booked again (the carrier
    may hold it) and one pickup_failed alert asks a person to check it."""
    dhl = MemoryCarrier("dhl", 700, 1)
    book = PickupBook(tmp_path / "shipping" / "pickups.json")
    key = PickupKey("dhl", "paris-wh", DAY)
    book.begin(key, 4, at(16))
    run = _Service(tmp_path, {"dhl": dhl}, [at(16, 5)])
    assert run.service.pickup_book is not None
    assert run.service.pickup_book.unsure() == [(key, 4)]
    assert run.book() == 0 and dhl.pickups == []
    [(topic, _, alert)] = run.sent
    assert topic == STOCK_ALERTS and alert["alert_id"] == "pickup_failed|dhl|paris-wh|2026-12-01"
    assert "may hold it" in alert["message"]


def test_an_unreadable_pickups_file_leaves_pickups_off_and_shipping_on(tmp_path: Path) -> None:
    """Given a pickups file that is not JSON, when the service starts past the cut-off, then
    it books nothing (it cannot know what is booked), says why, and its rounds go on."""
    dhl = MemoryCarrier("dhl", 700, 1)
    (tmp_path / "shipping").mkdir()
    (tmp_path / "shipping" / "pickups.json").write_text("{half", encoding="utf-8")
    run = _Service(tmp_path, {"dhl": dhl}, [at(16, 5)])
    assert run.book() == 0 and dhl.pickups == [] and run.sent == []
    assert "move the file aside" in run.service.last_error
