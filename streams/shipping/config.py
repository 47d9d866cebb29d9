"""The shipping service's configuration, from ``STOCKFLOW_CONFIG``.

- ``carriers:`` (:mod:`connectors.carriers.config`): the carrier accounts, parcel sizes per
  SKU, the ship-from address of each location and the service level of each channel;
- ``shipping:``: the service's own rhythm. Unknown keys are refused.

```yaml
shipping:
  poll_every_seconds: 2      # waves read this often
  track_every_seconds: 300   # open shipments asked of their carrier this often
```
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from connectors.carriers.config import CarrierConfigError, CarriersConfig, parse_carriers_config
from connectors.carriers.model import Address

_KEYS = {"track_every_seconds", "poll_every_seconds"}


class ShippingConfigError(ValueError):
    """The configuration is wrong; the message names the key and the fix."""


@dataclass(frozen=True, slots=True)
class ShippingConfig:
    carriers: CarriersConfig = field(default_factory=CarriersConfig)
    track_every_seconds: float = 300.0
    poll_every_seconds: float = 2.0

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


def parse_shipping(shipping: Any, carriers: Any = None) -> ShippingConfig:
    """The ``shipping:`` and ``carriers:`` sections (None: the defaults)."""
    raw = shipping if shipping is not None else {}
    if not isinstance(raw, Mapping):
        raise ShippingConfigError("shipping: a mapping of track_every_seconds, poll_every_seconds")
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
    )


def load_shipping(path: str | Path) -> ShippingConfig:
    """The ``shipping:`` and ``carriers:`` parts of the YAML file at ``path``."""
    try:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ShippingConfigError(f"{path}: not YAML ({exc})") from None
    doc = doc if isinstance(doc, Mapping) else {}
    return parse_shipping(doc.get("shipping"), doc.get("carriers"))
