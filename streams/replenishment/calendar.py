"""Peaks: promotions and seasons that raise a category's demand on their days."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date

from streams.replenishment.model import Peak


def uplift_for(peaks: Sequence[Peak], category: str | None) -> Callable[[date], float]:
    """The factor of each day for a SKU of ``category``: the product of the factors of the
    peaks covering that day (``start`` to ``end`` inclusive) that apply to every category
    (``Peak.category`` None) or to this one; 1.0 outside every peak."""
    mine = tuple(p for p in peaks if p.category is None or p.category == category)

    def uplift(day: date) -> float:
        factor = 1.0
        for peak in mine:
            if peak.start <= day <= peak.end:
                factor *= peak.factor
        return factor

    return uplift
