"""The shipping service's configuration, from ``STOCKFLOW_CONFIG``.

- ``carriers:`` (:mod:`connectors.carriers.config`): the carrier accounts, parcel sizes per
  SKU, the ship-from address of each location and the service level of each channel;
- ``shipping:``: the service's own rhythm. Unknown keys are refused.

```yaml
shipping:
  poll_every_seconds: 2      # waves read this often
  track_every_seconds: 300   # open shipments asked of their carrier this often
  pickups:                   # optional: carrier pickups booked (streams.shipping.pickups)
    timezone: Europe/Paris   # the locations' clock (IANA name; default UTC)
    cutoffs: {paris-wh: "16:00"}   # per location: booked then, later labels go next day
    alert_after_minutes: 30  # still not booked this long after the cut-off: an alert
    days: [mon, tue, wed, thu, fri]   # collection days (the default)
```
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from connectors.carriers.config import CarrierConfigError, CarriersConfig, parse_carriers_config
from connectors.carriers.model import Address
from streams.shipping.pickups import PickupsConfig

_KEYS = {"track_every_seconds", "poll_every_seconds", "pickups"}
_PICKUP_KEYS = {"timezone", "cutoffs", "alert_after_minutes", "days"}
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HHMM = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")


class ShippingConfigError(ValueError):
    """The configuration is wrong; the message names the key and the fix."""


@dataclass(frozen=True, slots=True)
class ShippingConfig:
    carriers: CarriersConfig = field(default_factory=CarriersConfig)
    track_every_seconds: float = 300.0
    poll_every_seconds: float = 2.0
    pickups: PickupsConfig = field(default_factory=PickupsConfig)

    def origin(self, location: str) -> Address:
        try:
            return self.carriers.ship_from[location]
        except KeyError:
            raise ShippingConfigError(
                f"carriers.ship_from: no address for location {location!r}; add "
                f"`{location}: {{country: FR, postal_code: ..., city: ...}}`"
            ) from None


def _seconds(where: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ShippingConfigError(f"{where}: a positive number of seconds, got {value!r}")
    return float(value)


def _pickups(raw: Any) -> PickupsConfig:
    if raw is None:
        return PickupsConfig()
    if not isinstance(raw, Mapping):
        raise ShippingConfigError(
            "shipping.pickups: a mapping of timezone, cutoffs, alert_after_minutes, days"
        )
    unknown = sorted(set(raw) - _PICKUP_KEYS)
    if unknown:
        raise ShippingConfigError(
            f"shipping.pickups: unknown key(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(_PICKUP_KEYS))}"
        )
    zone = raw.get("timezone", "UTC")
    try:
        ZoneInfo(str(zone))
    except (ZoneInfoNotFoundError, ValueError):
        raise ShippingConfigError(
            f"shipping.pickups.timezone: {zone!r} is not an IANA time zone (e.g. Europe/Paris)"
        ) from None
    cutoffs = raw.get("cutoffs") or {}
    if not isinstance(cutoffs, Mapping):
        raise ShippingConfigError('shipping.pickups.cutoffs: a mapping {location: "HH:MM"}')
    parsed: dict[str, time] = {}
    for location, value in cutoffs.items():
        if not isinstance(value, str) or not _HHMM.fullmatch(value):
            raise ShippingConfigError(
                f'shipping.pickups.cutoffs.{location}: {value!r} is not HH:MM (e.g. "16:30")'
            )
        parsed[str(location)] = time.fromisoformat(value)
    after = raw.get("alert_after_minutes", PickupsConfig().alert_after_minutes)
    if isinstance(after, bool) or not isinstance(after, int | float) or after < 0:
        raise ShippingConfigError(
            f"shipping.pickups.alert_after_minutes: a number of minutes >= 0, got {after!r}"
        )
    days = raw.get("days", list(_WEEKDAYS[:5]))
    if (
        not isinstance(days, list)
        or not days
        or not all(isinstance(d, str) and d.lower() in _WEEKDAYS for d in days)
    ):
        raise ShippingConfigError(
            f"shipping.pickups.days: a list of {', '.join(_WEEKDAYS)} (the carriers' "
            f"collection days), got {days!r}"
        )
    return PickupsConfig(
        timezone=str(zone),
        cutoffs=parsed,
        alert_after_minutes=float(after),
        days=frozenset(_WEEKDAYS.index(d.lower()) for d in days),
    )


def parse_shipping(shipping: Any, carriers: Any = None) -> ShippingConfig:
    """The ``shipping:`` and ``carriers:`` sections (None: the defaults)."""
    raw = shipping if shipping is not None else {}
    if not isinstance(raw, Mapping):
        raise ShippingConfigError(
            "shipping: a mapping of track_every_seconds, poll_every_seconds, pickups"
        )
    unknown = sorted(set(raw) - _KEYS)
    if unknown:
        raise ShippingConfigError(
            f"shipping: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(_KEYS))}"
        )
    base = ShippingConfig()
    try:
        parsed = parse_carriers_config(carriers)
    except CarrierConfigError as exc:
        raise ShippingConfigError(str(exc)) from None
    return ShippingConfig(
        carriers=parsed,
        track_every_seconds=_seconds(
            "shipping.track_every_seconds", raw.get("track_every_seconds", base.track_every_seconds)
        ),
        poll_every_seconds=_seconds(
            "shipping.poll_every_seconds", raw.get("poll_every_seconds", base.poll_every_seconds)
        ),
        pickups=_pickups(raw.get("pickups")),
    )


def load_shipping(path: str | Path) -> ShippingConfig:
    """The ``shipping:`` and ``carriers:`` parts of the YAML file at ``path``."""
    try:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ShippingConfigError(f"{path}: not YAML ({exc})") from None
    doc = doc if isinstance(doc, Mapping) else {}
    return parse_shipping(doc.get("shipping"), doc.get("carriers"))
