"""Sellable quantities: per location, per channel, and the default for unconfigured channels.

``available = max(0, on_hand - reserved - unsellable - safety_stock)`` per location. A
channel's pool is the sum of ``available`` over the locations that serve it, and the
channel's rule (``ChannelRule.apply``) turns the pool into the quantity it is shown. A
channel the configuration does not name sells the full pool of every location, no rule:
that is ``default_quantity`` (key ``"*"`` in :func:`channel_quantities`).
"""

from __future__ import annotations

from collections.abc import Mapping

from streams.ledger.config import LedgerConfig
from streams.ledger.lots import allocatable
from streams.ledger.state import LocationStock, SkuState

__all__ = [
    "DEFAULT_CHANNEL",
    "channel_quantities",
    "channel_quantity",
    "location_available",
    "locations_available",
    "preorder_figures",
    "preorder_room",
    "serving",
]

DEFAULT_CHANNEL = "*"  # key of the default quantity (a channel the config does not name)


def location_available(
    stock: LocationStock, name: str, config: LedgerConfig, day: int | None = None, min_days: int = 0
) -> int:
    """``available`` at one location. With lots and a ``day`` (the UTC day of the event),
    what an order line needing ``min_days`` of shelf life could reserve there: expired
    lots, and lots short of ``min_days``, are not sellable (:mod:`streams.ledger.lots`)."""
    safety = config.safety_stock(name)
    if day is None or not stock.lots:
        return stock.available(safety)
    return allocatable(stock, safety, day, min_days)


def locations_available(
    state: SkuState, config: LedgerConfig, day: int | None = None
) -> dict[str, int]:
    """``available`` of every location of the SKU."""
    return {n: location_available(s, n, config, day) for n, s in state.locations.items()}


def channel_quantities(
    state: SkuState, config: LedgerConfig, day: int | None = None
) -> dict[str, int]:
    """Quantity shown on every configured channel, plus ``"*"`` for every other channel.
    A channel with ``min_shelf_life_days`` counts only the lots that meet it at ``day``, so
    it is never shown units the ledger would then refuse its orders."""
    avail = locations_available(state, config, day)
    total = sum(avail.values())
    out: dict[str, int] = {}
    for name, ch in config.channels.items():
        if ch.min_shelf_life_days and day is not None:
            pool = channel_pool(state, config, ch.name, day)
        elif ch.locations is None:
            pool = total
        else:
            pool = sum(a for n, a in avail.items() if n in ch.locations)
        out[name] = ch.rule.apply(pool)
    out[DEFAULT_CHANNEL] = total
    return out


def channel_pool(
    state: SkuState, config: LedgerConfig, channel: str | None, day: int | None = None
) -> int:
    """Sum of what an order line of ``channel`` may reserve over the locations serving it."""
    ch = config.channels.get(channel) if channel is not None else None
    min_days = config.min_shelf_life_days(channel)
    pool = 0
    for n, s in state.locations.items():
        if ch is None or ch.serves(n):
            pool += location_available(s, n, config, day, min_days)
    return pool


def channel_quantity(
    state: SkuState, config: LedgerConfig, channel: str | None, day: int | None = None
) -> int:
    """Quantity shown on one channel (``None`` or unconfigured: the default quantity)."""
    ch = config.channels.get(channel) if channel is not None else None
    pool = channel_pool(state, config, channel, day)
    return ch.rule.apply(pool) if ch is not None else pool


# -- pre-orders (streams.ledger.preorders has the rules) ------------------------------


def serving(
    state: SkuState, config: LedgerConfig, channel: str | None, wanted: str | None
) -> list[str]:
    """Locations an order line of ``channel`` may take units from (``wanted``: the one
    it names)."""
    if wanted is not None:
        return [wanted] if wanted in state.locations else []
    ch = config.channels.get(channel) if channel is not None else None
    return [n for n in state.locations if ch is None or ch.serves(n)]


def preorder_room(
    state: SkuState,
    config: LedgerConfig,
    caps: Mapping[str, int],
    channel: str | None,
    wanted: str | None = None,
) -> int:
    """Units ``channel`` may still pre-sell (0 without an allowance there): its cap less
    its waiting pre-orders, and at most the incoming of the locations serving it less every
    waiting backorder (they are served first)."""
    cap = caps.get(channel) if channel is not None else None
    if cap is None:
        return 0
    incoming = sum(state.locations[n].incoming for n in serving(state, config, channel, wanted))
    waiting = mine = 0
    for b in state.backorders.values():
        waiting += b.qty
        if b.preorder and b.channel == channel:
            mine += b.qty
    return max(0, min(cap - mine, incoming - waiting))


def preorder_figures(
    state: SkuState, config: LedgerConfig, caps: Mapping[str, int]
) -> dict[str, int]:
    """The pre-order figure of every channel with an allowance (StockLevel.preorders)."""
    return {channel: preorder_room(state, config, caps, channel) for channel in caps}
