"""Ledger configuration: locations, channels and their rules, bounds of the per-SKU state.

The configuration is a YAML file (``STOCKFLOW_CONFIG`` names it; see
``deploy/local/channels.example.yaml``). It is read and validated once at start: every
problem raises :class:`ConfigError` naming the key path and the fix. No file means
:data:`DEFAULT_CONFIG`: one default location, and every channel sells the full pool.

Format (every key optional)::

    default_location: paris-wh         # location of events that name none (sale, receipt...)
    low_stock_threshold: 5             # global; a location may override it; absent = no alert
    discrepancy_alert_threshold: 0     # alert when |count - expected| is above this
    applied_ids_limit: 10000           # at most this many event ids kept per SKU for dedupe
    applied_ids_window_seconds: 604800 # ... for producer retries within this time (7 days)
    journal_limit: 1000                # recent on_hand movements kept per SKU for count rebase
    journal_max_age_seconds: 604800    # ... and no older than this
    hold_ttl_seconds: 900              # expiry of a hold that carries no expires_at
    max_qty: 1000000000                # bound of |qty| in one event (intake and ledger)
    max_open_entries: 1000             # open orders + backorders + holds of one SKU; at
                                       # the cap new backorders are refused (alert at 80 %)
    locations:
      - name: paris-wh
        safety_stock: 2                # kept back from every channel
        low_stock_threshold: 3
    channels:
      - name: amazon
        locations: [paris-wh]          # default: every location
        on_insufficient: reject        # or backorder
        rule: {buffer: 2, percentage: 80, max_shown: 50, zero_at_or_below: 1}
        min_shelf_life_days: 30        # lots allocated to / shown on this channel expire
                                       # 30 days or more after the event's day; absent:
                                       # any lot not yet expired (streams.ledger.lots)
    preorders:                         # pre-order allowance per SKU x channel
      - sku: desk-oak
        channel: shopify
        cap: 20                        # at most 20 units pre-sold on shopify against
                                       # incoming (open purchase orders) when available
                                       # is short (streams.ledger.preorders)

Channel rules apply in this fixed order to the channel's pool (sum of ``available`` over
its locations): ``zero_at_or_below`` (pool <= N sends 0), then ``buffer`` (minus N),
then ``percentage`` (floor of P %), then ``max_shown`` (at most N); never below 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from schemas.events import MAX_HOLD_TTL_SECONDS, MAX_QTY

__all__ = [
    "DEFAULT_CONFIG",
    "ChannelConfig",
    "ChannelRule",
    "ConfigError",
    "LedgerConfig",
    "LocationConfig",
    "load_config",
    "parse_config",
]


class ConfigError(ValueError):
    """The ledger configuration cannot be used; the message names the key path and the fix."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path


@dataclass(frozen=True, slots=True)
class ChannelRule:
    """What a channel is shown of its pool; ``None`` means the step is off."""

    zero_at_or_below: int | None = None
    buffer: int = 0
    percentage: int | None = None
    max_shown: int | None = None

    def apply(self, pool: int) -> int:
        """Quantity shown for a pool of ``pool`` available units (see the module doc)."""
        if pool <= 0 or (self.zero_at_or_below is not None and pool <= self.zero_at_or_below):
            return 0
        qty = pool - self.buffer
        if self.percentage is not None:
            qty = qty * self.percentage // 100
        if self.max_shown is not None and qty > self.max_shown:
            qty = self.max_shown
        return qty if qty > 0 else 0


NO_RULE = ChannelRule()


@dataclass(frozen=True, slots=True)
class LocationConfig:
    name: str
    safety_stock: int = 0
    low_stock_threshold: int | None = None


@dataclass(frozen=True, slots=True)
class ChannelConfig:
    name: str
    locations: frozenset[str] | None = None  # None: every location
    rule: ChannelRule = NO_RULE
    on_insufficient: str = "reject"  # reject | backorder
    min_shelf_life_days: int | None = None  # None: any lot not expired

    def serves(self, location: str) -> bool:
        return self.locations is None or location in self.locations


@dataclass(frozen=True, slots=True)
class LedgerConfig:
    locations: Mapping[str, LocationConfig] = field(default_factory=dict)
    channels: Mapping[str, ChannelConfig] = field(default_factory=dict)
    default_location: str = "default"
    low_stock_threshold: int | None = None
    discrepancy_alert_threshold: int = 0
    applied_ids_limit: int = 10_000
    applied_ids_window_ms: int = 7 * 24 * 3600 * 1000
    journal_limit: int = 1_000
    journal_max_age_ms: int = 7 * 24 * 3600 * 1000
    hold_ttl_ms: int = 15 * 60 * 1000
    max_qty: int = MAX_QTY
    max_open_entries: int = 1_000
    # pre-order allowance: SKU -> channel -> cap (streams.ledger.preorders); {}: none
    preorders: Mapping[str, Mapping[str, int]] = field(default_factory=dict)

    def safety_stock(self, location: str) -> int:
        loc = self.locations.get(location)
        return loc.safety_stock if loc is not None else 0

    def low_stock(self, location: str) -> int | None:
        loc = self.locations.get(location)
        if loc is not None and loc.low_stock_threshold is not None:
            return loc.low_stock_threshold
        return self.low_stock_threshold

    def on_insufficient(self, channel: str | None) -> str:
        ch = self.channels.get(channel) if channel is not None else None
        return ch.on_insufficient if ch is not None else "reject"

    def min_shelf_life_days(self, channel: str | None) -> int:
        """Days of shelf life a lot must have left to go to ``channel`` (0: not expired)."""
        ch = self.channels.get(channel) if channel is not None else None
        days = ch.min_shelf_life_days if ch is not None else None
        return days if days is not None else 0


DEFAULT_CONFIG = LedgerConfig()

_TOP_KEYS = {
    "default_location",
    "low_stock_threshold",
    "discrepancy_alert_threshold",
    "applied_ids_limit",
    "applied_ids_window_seconds",
    "journal_limit",
    "journal_max_age_seconds",
    "hold_ttl_seconds",
    "max_qty",
    "max_open_entries",
    "locations",
    "channels",
    "preorders",
    "orders",  # the order book's (streams.orders.setup); the ledger ignores it
    "replenishment",  # suppliers and policies (streams.replenishment.config); ignored here
    "notifications",  # alert routing (streams.notifications.config); ignored here
    "fulfilment",  # waves and bins (streams.fulfilment.config); ignored here
    "bundles",  # bundle definitions (streams.bundles.catalogue); ignored here
    "shipping",  # the shipping service's rhythm (streams.shipping.config); ignored here
    "carriers",  # carrier accounts, parcels, ship-from (connectors.carriers.config); ignored
}
_LOCATION_KEYS = {"name", "safety_stock", "low_stock_threshold"}
_CHANNEL_KEYS = {"name", "locations", "rule", "on_insufficient", "min_shelf_life_days"}
MAX_SHELF_LIFE_DAYS = 36_500  # a hundred years: more is a unit error (minutes, hours)
_PREORDER_KEYS = {"sku", "channel", "cap"}
_RULE_KEYS = {"zero_at_or_below", "buffer", "percentage", "max_shown"}
_POLICIES = ("reject", "backorder")


def load_config(path: str | Path | None) -> LedgerConfig:
    """Read and validate the YAML file at ``path``; empty or ``None`` gives the default."""
    if not path:
        return DEFAULT_CONFIG
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            str(p), f"cannot read the file ({exc.strerror}); fix STOCKFLOW_CONFIG"
        ) from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(str(p), f"not valid YAML: {exc}") from None
    return parse_config({} if raw is None else raw)


def parse_config(raw: Any) -> LedgerConfig:
    """Validate an already-parsed mapping (the YAML document) into a :class:`LedgerConfig`."""
    _mapping(raw, "<config>", _TOP_KEYS)
    locations = _locations(raw.get("locations", []))
    channels = _channels(raw.get("channels", []), locations)
    default_location = raw.get("default_location", "default")
    _name(default_location, "default_location")
    if locations and default_location != "default" and default_location not in locations:
        raise ConfigError(
            "default_location",
            f"{default_location!r} is not one of locations[].name; add it under locations "
            "or correct the name",
        )
    return LedgerConfig(
        locations=locations,
        channels=channels,
        default_location=default_location,
        low_stock_threshold=_int(raw.get("low_stock_threshold"), "low_stock_threshold", None),
        discrepancy_alert_threshold=_int(
            raw.get("discrepancy_alert_threshold"), "discrepancy_alert_threshold", 0
        ),
        applied_ids_limit=_int(raw.get("applied_ids_limit"), "applied_ids_limit", 10_000, 1),
        applied_ids_window_ms=1000
        * _int(
            raw.get("applied_ids_window_seconds"), "applied_ids_window_seconds", 7 * 24 * 3600, 1
        ),
        journal_limit=_int(raw.get("journal_limit"), "journal_limit", 1_000, 1),
        journal_max_age_ms=1000
        * _int(raw.get("journal_max_age_seconds"), "journal_max_age_seconds", 7 * 24 * 3600, 1),
        hold_ttl_ms=1000 * _hold_ttl(raw.get("hold_ttl_seconds")),
        max_qty=_max_qty(raw.get("max_qty")),
        max_open_entries=_int(raw.get("max_open_entries"), "max_open_entries", 1_000, 10),
        preorders=_preorders(raw.get("preorders", []), channels),
    )


def _preorders(raw: Any, channels: Mapping[str, ChannelConfig]) -> dict[str, dict[str, int]]:
    """``preorders: [{sku, channel, cap}]`` as SKU -> channel -> cap."""
    if not isinstance(raw, list):
        raise ConfigError("preorders", "must be a list of {sku: ..., channel: ..., cap: ...} items")
    out: dict[str, dict[str, int]] = {}
    for i, item in enumerate(raw):
        path = f"preorders[{i}]"
        _mapping(item, path, _PREORDER_KEYS)
        sku = _name(item.get("sku"), f"{path}.sku")
        channel = _name(item.get("channel"), f"{path}.channel")
        if channels and channel not in channels:
            raise ConfigError(
                f"{path}.channel",
                f"{channel!r} is not one of channels[].name; declare it or fix the name",
            )
        if item.get("cap") is None:
            raise ConfigError(f"{path}.cap", "required: units that may be pre-sold, e.g. cap: 20")
        cap = _int(item.get("cap"), f"{path}.cap", None, 1)
        if cap > MAX_QTY:
            raise ConfigError(f"{path}.cap", f"{cap} is above {MAX_QTY:,}; a unit error?")
        if channel in out.get(sku, {}):
            raise ConfigError(f"{path}", f"{sku!r} on {channel!r} is listed twice; keep one entry")
        out.setdefault(sku, {})[channel] = cap
    return out


def _hold_ttl(raw: Any) -> int:
    """The default hold TTL, within the maximum every hold obeys (schemas.events)."""
    ttl: int = _int(raw, "hold_ttl_seconds", 900, 1)
    if ttl > MAX_HOLD_TTL_SECONDS:
        raise ConfigError(
            "hold_ttl_seconds",
            f"{ttl} is above the maximum hold TTL of {MAX_HOLD_TTL_SECONDS}; use less",
        )
    return ttl


MAX_QTY_CEILING = 10**12  # keeps every sum of a SKU's movements far inside a 64-bit integer


def _max_qty(raw: Any) -> int:
    value: int = _int(raw, "max_qty", MAX_QTY, 1)
    if value > MAX_QTY_CEILING:
        raise ConfigError(
            "max_qty",
            f"{value} is above {MAX_QTY_CEILING:,}; quantities that large are unit errors",
        )
    return value


def _locations(raw: Any) -> dict[str, LocationConfig]:
    if not isinstance(raw, list):
        raise ConfigError("locations", "must be a list of {name: ..., safety_stock: ...} items")
    out: dict[str, LocationConfig] = {}
    for i, item in enumerate(raw):
        path = f"locations[{i}]"
        _mapping(item, path, _LOCATION_KEYS)
        name = _name(item.get("name"), f"{path}.name")
        if name in out:
            raise ConfigError(f"{path}.name", f"{name!r} is listed twice; keep one entry")
        out[name] = LocationConfig(
            name=name,
            safety_stock=_int(item.get("safety_stock"), f"{path}.safety_stock", 0),
            low_stock_threshold=_int(
                item.get("low_stock_threshold"), f"{path}.low_stock_threshold", None
            ),
        )
    return out


def _channels(raw: Any, locations: Mapping[str, LocationConfig]) -> dict[str, ChannelConfig]:
    if not isinstance(raw, list):
        raise ConfigError("channels", "must be a list of {name: ..., rule: ...} items")
    out: dict[str, ChannelConfig] = {}
    for i, item in enumerate(raw):
        path = f"channels[{i}]"
        _mapping(item, path, _CHANNEL_KEYS)
        name = _name(item.get("name"), f"{path}.name")
        if name == "*":
            raise ConfigError(f"{path}.name", "'*' is reserved for the default quantity")
        if name in out:
            raise ConfigError(f"{path}.name", f"{name!r} is listed twice; keep one entry")
        serving: frozenset[str] | None = None
        if item.get("locations") is not None:
            locs = item["locations"]
            if not isinstance(locs, list) or not locs:
                raise ConfigError(
                    f"{path}.locations", "must be a non-empty list of location names, or absent"
                )
            for j, loc in enumerate(locs):
                _name(loc, f"{path}.locations[{j}]")
                if locations and loc not in locations:
                    raise ConfigError(
                        f"{path}.locations[{j}]",
                        f"{loc!r} is not one of locations[].name; declare it or fix the name",
                    )
            serving = frozenset(locs)
        policy = item.get("on_insufficient", "reject")
        if policy not in _POLICIES:
            raise ConfigError(f"{path}.on_insufficient", f"{policy!r}: use reject or backorder")
        out[name] = ChannelConfig(
            name=name,
            locations=serving,
            rule=_rule(item.get("rule"), f"{path}.rule"),
            on_insufficient=policy,
            min_shelf_life_days=_shelf_life(item.get("min_shelf_life_days"), path),
        )
    return out


def _shelf_life(raw: Any, path: str) -> int | None:
    days: int | None = _int(raw, f"{path}.min_shelf_life_days", None)
    if days is not None and days > MAX_SHELF_LIFE_DAYS:
        raise ConfigError(
            f"{path}.min_shelf_life_days",
            f"{days} days is above {MAX_SHELF_LIFE_DAYS}; write the remaining shelf life a "
            "lot needs for this channel in days, e.g. min_shelf_life_days: 30",
        )
    return days


def _rule(raw: Any, path: str) -> ChannelRule:
    if raw is None:
        return NO_RULE
    _mapping(raw, path, _RULE_KEYS)
    percentage = _int(raw.get("percentage"), f"{path}.percentage", None)
    if percentage is not None and percentage > 100:
        raise ConfigError(f"{path}.percentage", f"{percentage} is above 100; use 0..100")
    return ChannelRule(
        zero_at_or_below=_int(raw.get("zero_at_or_below"), f"{path}.zero_at_or_below", None),
        buffer=_int(raw.get("buffer"), f"{path}.buffer", 0),
        percentage=percentage,
        max_shown=_int(raw.get("max_shown"), f"{path}.max_shown", None),
    )


def _mapping(raw: Any, path: str, allowed: set[str]) -> None:
    if not isinstance(raw, dict):
        raise ConfigError(path, f"must be a mapping, got {type(raw).__name__}")
    for key in raw:
        if key not in allowed:
            known = ", ".join(sorted(allowed))
            where = key if path == "<config>" else f"{path}.{key}"
            raise ConfigError(where, f"unknown key; expected one of {known}")


def _name(raw: Any, path: str) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise ConfigError(path, "must be a non-empty string")
    return raw


def _int(raw: Any, path: str, default: Any, minimum: int = 0) -> Any:
    if raw is None:
        return default
    if isinstance(raw, bool) or not isinstance(raw, int):
        key = path.rsplit(".", 1)[-1]
        raise ConfigError(path, f"{raw!r} is not a whole number; write e.g. {key}: 5")
    if raw < minimum:
        raise ConfigError(path, f"{raw} is below {minimum}; use {minimum} or more")
    return raw
