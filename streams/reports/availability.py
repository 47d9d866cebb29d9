"""Time in stock and out of stock, from the sequence of quantities a channel was given.

Pure: the report feeds it the deduplicated stock level rows of one SKU x channel.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

HOUR_MS = 3_600_000


@dataclass(frozen=True, slots=True)
class Availability:
    in_stock_ms: int
    out_of_stock_ms: int
    unknown_ms: int  # before the first known quantity (the SKU was not on the channel yet)
    stockouts: int  # times it went from in stock to out of stock inside the period

    @property
    def known_ms(self) -> int:
        return self.in_stock_ms + self.out_of_stock_ms

    @property
    def pct_in_stock(self) -> float | None:
        """Share of the *known* time in stock, in percent; None if nothing was known."""
        return 100.0 * self.in_stock_ms / self.known_ms if self.known_ms else None


def availability(points: Iterable[tuple[int, int]], start: int, end: int) -> Availability:
    """Split ``[start, end)`` (epoch ms) by the quantity in force at each moment.

    ``points`` are ``(time_ms, quantity)`` in the order the ledger produced them (by level
    version). A quantity holds from its time until the next one; the last one before
    ``start`` is the state at ``start``. Times are clamped to never go backwards, so a level
    stamped by a clock that stepped back still counts after its predecessor. In stock means
    quantity > 0. Invariant: in_stock + out_of_stock + unknown == end - start.
    """
    if end < start:
        raise ValueError(f"period ends ({end}) before it starts ({start})")
    spent = {True: 0, False: 0, None: 0}
    state: bool | None = None
    cursor = start
    latest = 0
    stockouts = 0
    for time, quantity in points:
        latest = max(latest, time)
        in_stock = quantity > 0
        if latest <= start:
            state = in_stock
            continue
        if latest >= end:
            break
        spent[state] += latest - cursor
        cursor = latest
        if state is True and not in_stock:
            stockouts += 1
        state = in_stock
    spent[state] += end - cursor
    return Availability(spent[True], spent[False], spent[None], stockouts)
