"""The shipping configuration: the ``shipping:`` top key of ``STOCKFLOW_CONFIG``.

Parsed once at start into frozen values; every mistake raises :class:`ShippingConfigError`
naming the key path and what is wrong. Unknown keys are refused.

```yaml
shipping:
  track_every_seconds: 300          # tracking poll per carrier
  poll_every_seconds: 2             # waves read this often
  max_parcel_weight_g: 20000        # heavier orders are split into parcels
  default_parcel: {weight_g: 500, length_mm: 300, width_mm: 200, height_mm: 100}
  skus:                             # weight and dimensions of one unit
    chair: {weight_g: 7000, length_mm: 600, width_mm: 500, height_mm: 450}
  locations:                        # where parcels leave from (sent to carriers only)
    paris-wh: {country: FR, postal_code: "75011", city: Paris, lines: ["1 rue X"], name: Entrepot}
  channels:                         # the service level each channel promises
    shopify: {service_level: express, max_days: 2}
    woocommerce: {service_level: standard, max_days: 5}
  default_service: {service_level: standard, max_days: 7}
```
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from connectors.carriers.model import Address, Parcel

LEVELS = ("standard", "express")


class ShippingConfigError(ValueError):
    """The ``shipping:`` section is wrong; the message names the key and the fix."""


@dataclass(frozen=True, slots=True)
class ServiceLevel:
    level: str = "standard"  # standard: the cheapest rate within max_days; express: fastest
    max_days: int | None = None  # None: any promised time


@dataclass(frozen=True, slots=True)
class ShippingConfig:
    skus: Mapping[str, Parcel] = field(default_factory=dict)
    default_parcel: Parcel = field(default_factory=lambda: Parcel(500, 300, 200, 100))
    max_parcel_weight_g: int = 20_000
    locations: Mapping[str, Address] = field(default_factory=dict)
    channels: Mapping[str, ServiceLevel] = field(default_factory=dict)
    default_service: ServiceLevel = ServiceLevel("standard", 7)
    track_every_seconds: float = 300.0
    poll_every_seconds: float = 2.0

    def unit(self, sku: str) -> Parcel:
        """One unit of ``sku`` (the default parcel for a SKU not configured)."""
        return self.skus.get(sku, self.default_parcel)

    def service(self, channel: str) -> ServiceLevel:
        return self.channels.get(channel, self.default_service)

    def origin(self, location: str) -> Address:
        try:
            return self.locations[location]
        except KeyError:
            raise ShippingConfigError(
                f"shipping.locations: no address for location {location!r}; add "
                f"`{location}: {{country: FR, postal_code: ..., city: ...}}`"
            ) from None


_TOP = {
    "skus",
    "default_parcel",
    "max_parcel_weight_g",
    "locations",
    "channels",
    "default_service",
    "track_every_seconds",
    "poll_every_seconds",
}
_PARCEL = ("weight_g", "length_mm", "width_mm", "height_mm")
_ADDRESS = {"country", "postal_code", "city", "lines", "name"}


def _map(where: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ShippingConfigError(f"{where}: a mapping is expected, got {type(value).__name__}")
    return value


def _keys(where: str, value: Mapping[str, Any], allowed: set[str] | tuple[str, ...]) -> None:
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise ShippingConfigError(
            f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(allowed))}"
        )


def _positive(where: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ShippingConfigError(f"{where}: a positive whole number is expected, got {value!r}")
    return value


def _parcel(where: str, value: Any) -> Parcel:
    raw = _map(where, value)
    _keys(where, raw, _PARCEL)
    missing = [k for k in _PARCEL if k not in raw]
    if missing:
        raise ShippingConfigError(f"{where}: missing {', '.join(missing)} (grams, millimetres)")
    w, length, width, h = (_positive(f"{where}.{k}", raw[k]) for k in _PARCEL)
    return Parcel(w, length, width, h)


def _address(where: str, value: Any) -> Address:
    raw = _map(where, value)
    _keys(where, raw, _ADDRESS)
    country = raw.get("country")
    if not isinstance(country, str) or len(country) != 2:
        raise ShippingConfigError(f"{where}.country: an ISO 3166-1 alpha-2 code, got {country!r}")
    postal = raw.get("postal_code")
    if not isinstance(postal, str | int) or not str(postal).strip():
        raise ShippingConfigError(f'{where}.postal_code: required (quote it: "75011")')
    lines = raw.get("lines") or ()
    if not isinstance(lines, list | tuple) or not all(isinstance(x, str) for x in lines):
        raise ShippingConfigError(f"{where}.lines: a list of strings")
    return Address(
        country.upper(),
        str(postal),
        str(raw.get("city") or ""),
        tuple(lines),
        str(raw.get("name") or ""),
    )


def _service(where: str, value: Any) -> ServiceLevel:
    raw = _map(where, value)
    _keys(where, raw, {"service_level", "max_days"})
    level = raw.get("service_level", "standard")
    if level not in LEVELS:
        raise ShippingConfigError(
            f"{where}.service_level: one of {', '.join(LEVELS)}, not {level!r}"
        )
    days = raw.get("max_days")
    return ServiceLevel(level, None if days is None else _positive(f"{where}.max_days", days))


def _seconds(where: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ShippingConfigError(f"{where}: a positive number of seconds, got {value!r}")
    return float(value)


def parse_shipping(section: Any) -> ShippingConfig:
    """The ``shipping:`` section (None: every default)."""
    if section is None:
        return ShippingConfig()
    raw = _map("shipping", section)
    _keys("shipping", raw, _TOP)
    base = ShippingConfig()
    return ShippingConfig(
        skus={
            str(sku): _parcel(f"shipping.skus.{sku}", v)
            for sku, v in _map("shipping.skus", raw.get("skus") or {}).items()
        },
        default_parcel=_parcel("shipping.default_parcel", raw["default_parcel"])
        if "default_parcel" in raw
        else base.default_parcel,
        max_parcel_weight_g=_positive(
            "shipping.max_parcel_weight_g", raw.get("max_parcel_weight_g", base.max_parcel_weight_g)
        ),
        locations={
            str(loc): _address(f"shipping.locations.{loc}", v)
            for loc, v in _map("shipping.locations", raw.get("locations") or {}).items()
        },
        channels={
            str(ch): _service(f"shipping.channels.{ch}", v)
            for ch, v in _map("shipping.channels", raw.get("channels") or {}).items()
        },
        default_service=_service("shipping.default_service", raw["default_service"])
        if "default_service" in raw
        else base.default_service,
        track_every_seconds=_seconds(
            "shipping.track_every_seconds", raw.get("track_every_seconds", base.track_every_seconds)
        ),
        poll_every_seconds=_seconds(
            "shipping.poll_every_seconds", raw.get("poll_every_seconds", base.poll_every_seconds)
        ),
    )


def load_shipping(path: str | Path) -> ShippingConfig:
    """The ``shipping:`` part of the YAML file at ``path``."""
    try:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ShippingConfigError(f"{path}: not YAML ({exc})") from None
    return parse_shipping((doc or {}).get("shipping") if isinstance(doc, Mapping) else None)
