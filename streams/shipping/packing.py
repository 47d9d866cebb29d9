"""Packing: the parcels an order's picked units go in (pure).

Each unit weighs and measures what the configuration says for its SKU. Units are put in
parcels in line order, a new parcel when the next unit would pass the maximum weight (a unit
heavier than the maximum gets a parcel of its own). A parcel's footprint is its largest
unit's length and width; its height is the units' heights stacked. Every unit is in exactly
one parcel, so the weights add up to the order's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from connectors.carriers.model import Parcel


def pack(
    units: Iterable[tuple[str, int]], unit_of: Callable[[str], Parcel], max_weight_g: int
) -> list[Parcel]:
    """Parcels for ``(sku, qty)`` units; empty when there is no unit."""
    parcels: list[Parcel] = []
    box: list[Parcel] = []
    weight = 0
    for sku, qty in units:
        one = unit_of(sku)
        for _ in range(qty):
            if box and weight + one.weight_g > max_weight_g:
                parcels.append(_close(box))
                box, weight = [], 0
            box.append(one)
            weight += one.weight_g
    if box:
        parcels.append(_close(box))
    return parcels


def _close(box: list[Parcel]) -> Parcel:
    return Parcel(
        weight_g=sum(u.weight_g for u in box),
        length_mm=max(u.length_mm for u in box),
        width_mm=max(u.width_mm for u in box),
        height_mm=sum(u.height_mm for u in box),
    )
