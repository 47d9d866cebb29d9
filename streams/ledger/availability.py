"""Sellable quantities: per location, per channel, and the default for unconfigured channels.

``available = max(0, on_hand - reserved - unsellable - safety_stock)`` per location. A
channel's pool is the sum of ``available`` over the locations that serve it, and the
channel's rule (``ChannelRule.apply``) turns the pool into the quantity it is shown. A
channel the configuration does not name sells the full pool of every location, no rule:
that is ``default_quantity`` (key ``"*"`` in :func:`channel_quantities`).
"""

from __future__ import annotations

from streams.ledger.config import LedgerConfig
from streams.ledger.state import LocationStock, SkuState

__all__ = [
    "DEFAULT_CHANNEL",
    "channel_quantities",
    "channel_quantity",
    "location_available",
    "locations_available",
]

DEFAULT_CHANNEL = "*"  # key of the default quantity (a channel the config does not name)


def location_available(stock: LocationStock, name: str, config: LedgerConfig) -> int:
    return stock.available(config.safety_stock(name))


def locations_available(state: SkuState, config: LedgerConfig) -> dict[str, int]:
    """``available`` of every location of the SKU."""
    return {n: location_available(s, n, config) for n, s in state.locations.items()}


def channel_quantities(state: SkuState, config: LedgerConfig) -> dict[str, int]:
    """Quantity shown on every configured channel, plus ``"*"`` for every other channel."""
    avail = locations_available(state, config)
    total = sum(avail.values())
    out: dict[str, int] = {}
    for name, ch in config.channels.items():
        if ch.locations is None:
            pool = total
        else:
            pool = sum(a for n, a in avail.items() if n in ch.locations)
        out[name] = ch.rule.apply(pool)
    out[DEFAULT_CHANNEL] = total
    return out


def channel_quantity(state: SkuState, config: LedgerConfig, channel: str | None) -> int:
    """Quantity shown on one channel (``None`` or unconfigured: the default quantity)."""
    ch = config.channels.get(channel) if channel is not None else None
    pool = 0
    for n, s in state.locations.items():
        if ch is None or ch.serves(n):
            pool += location_available(s, n, config)
    return ch.rule.apply(pool) if ch is not None else pool
