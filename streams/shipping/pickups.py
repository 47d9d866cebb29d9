"""Carrier pickups: one booking per carrier, ship-from location and day with labels (pure).

When: at the location's **cut-off** (``shipping.pickups.cutoffs``, ``HH:MM`` on the
locations' clock ``shipping.pickups.timezone``). A label bought before the cut-off leaves
with that day's pickup; one bought at or after it waits for the next day's; a day the carriers
do not collect (``days``, Monday to Friday by default) passes to the next one. The cut-off is
chosen over "after the location's last wave has shipped" because the last wave of a day is
only known afterwards: the planner may write another one until the carriers' own cut-offs,
and a wave picked short stays open; booking after each quiet spell would book at 10:00 with
the morning's parcels, or never. A time per location is known in advance, the same after a
restart, and matches how carriers take same-day bookings (a deadline per site).

Only today's pickup (the locations' date of now) is booked: a service that was down the
whole evening does not book yesterday's the next morning. A location without a cut-off has
no pickup booked (its parcels leave another way: a drop-off, a store's own carrier).

The booking that fails is tried again at the next tick; still not booked
``alert_after_minutes`` after the cut-off, it raises one ``pickup_failed`` alert (id
:func:`alert_id`, the same after a restart). Ids are derived from the key, so a booking
kept by :class:`streams.shipping.pickup_book.PickupBook` is never made twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

ALERT_KIND = "pickup_failed"


@dataclass(frozen=True, slots=True)
class PickupsConfig:
    """``shipping.pickups``: the locations' clock and each location's cut-off."""

    timezone: str = "UTC"
    cutoffs: Mapping[str, time] = field(default_factory=dict)
    alert_after_minutes: float = 30.0
    days: frozenset[int] = frozenset(range(5))  # collection days (date.weekday(): 0 = Monday)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True, slots=True, order=True)
class PickupKey:
    carrier: str
    location: str
    day: date

    @property
    def id(self) -> str:
        return f"pickup|{self.carrier}|{self.location}|{self.day.isoformat()}"


@dataclass(frozen=True, slots=True)
class Due:
    key: PickupKey
    parcels: int


def _local(ms: int, config: PickupsConfig) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).astimezone(config.zone)


def cutoff_ms(day: date, location: str, config: PickupsConfig) -> int:
    """The instant (epoch ms) of ``location``'s cut-off on ``day``."""
    at = datetime.combine(day, config.cutoffs[location], tzinfo=config.zone)
    return int(at.timestamp() * 1000)


def pickup_day(bought_ms: int, location: str, config: PickupsConfig) -> date | None:
    """The day whose pickup takes a label bought at ``bought_ms`` at ``location``: that day
    before the cut-off, the next one from it, then the first collection day from there;
    ``None`` for a location without a cut-off."""
    cut = config.cutoffs.get(location)
    if cut is None:
        return None
    local = _local(bought_ms, config)
    day = local.date() + timedelta(days=1) if local.time() >= cut else local.date()
    for _ in range(7):
        if day.weekday() in config.days:
            break
        day += timedelta(days=1)
    return day


def due(
    shipments: Iterable[Mapping[str, Any]],
    now_ms: int,
    config: PickupsConfig,
    kept: Iterable[str] = (),
) -> list[Due]:
    """Today's pickups to book now: per carrier and location whose cut-off has passed today,
    the parcels of the labels bought for that day; those whose id is in ``kept`` (booked, or
    under way) are left out. Sorted by key."""
    today = _local(now_ms, config).date()
    done = set(kept)
    parcels: dict[PickupKey, int] = {}
    for s in shipments:
        location = s["location"]
        day = pickup_day(int(s["created_at"]), location, config)
        if day != today or now_ms < cutoff_ms(day, location, config):
            continue
        key = PickupKey(s["carrier"], location, day)
        if key.id not in done:
            parcels[key] = parcels.get(key, 0) + int(s["parcels"])
    return [Due(k, n) for k, n in sorted(parcels.items())]


def overdue(key: PickupKey, now_ms: int, config: PickupsConfig) -> bool:
    """Not booked ``alert_after_minutes`` after the cut-off: a person should call the carrier."""
    limit = cutoff_ms(key.day, key.location, config) + int(config.alert_after_minutes * 60_000)
    return now_ms >= limit


def alert_id(key: PickupKey) -> str:
    return f"{ALERT_KIND}|{key.carrier}|{key.location}|{key.day.isoformat()}"


def failed_alert(key: PickupKey, parcels: int, error: str, now_ms: int) -> dict[str, Any]:
    """The ``pickup_failed`` alert (one id per key: a repeat is the same alert downstream);
    ``value``: the parcels waiting. The error text is the carrier client's (no secret, no
    address: see :mod:`connectors.carriers.base`)."""
    return {
        "alert_id": alert_id(key),
        "kind": ALERT_KIND,
        "sku": "",
        "location": key.location,
        "channel": None,
        "value": parcels,
        "threshold": 0,
        "message": (
            f"{key.carrier} pickup of {parcels} parcel(s) at {key.location} on "
            f"{key.day.isoformat()} not booked: {error[:300]}; book it with the carrier"
        ),
        "event_id": key.id,
        "at": now_ms,
    }
