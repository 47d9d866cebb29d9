"""The wave as other parts see it: plain frozen dataclasses, the content of fulfilment.waves.v1.

A wave groups orders of one location picked together. Its status moves
planned -> picking -> picked -> closed; each pick confirmation sets `picked_qty` on a line.
An order of a wave is ready to pack when every one of its lines is confirmed
(`WaveOrder.picked`); the units to ship are the picked ones (`WaveLine.picked_qty`), the
missing ones (`WaveLine.missing`) were routed again (the order's line then holds only the
picked units; the missing ones are a new line ``<line>/r<n>``, waved where it is reserved).
Records of the topic to and from these: :mod:`streams.fulfilment.records`; documents
(delivery note with the tracking number): :mod:`streams.fulfilment.documents`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum


class WaveStatus(StrEnum):
    PLANNED = "planned"  # written by the planner, nothing picked yet
    PICKING = "picking"  # at least one line confirmed
    PICKED = "picked"  # every line confirmed
    CLOSED = "closed"  # every order of the wave left (or was given up)


@dataclass(frozen=True, slots=True)
class WaveLine:
    """One order line to pick: where (bin), what (sku, lot), how many."""

    line_id: str
    sku: str
    qty: int
    bin: str | None = None  # None: the SKU has no bin at the location (picked last)
    lot: str | None = None  # the lot the ledger reserved (FEFO), where lots apply
    picked_qty: int | None = None  # None until the line is confirmed

    @property
    def confirmed(self) -> bool:
        return self.picked_qty is not None

    @property
    def missing(self) -> int:
        """Units not found at confirmation (0 until confirmed)."""
        return 0 if self.picked_qty is None else self.qty - self.picked_qty


@dataclass(frozen=True, slots=True)
class WaveOrder:
    """One order of a wave (its lines at the wave's location only)."""

    order_id: str
    channel: str
    lines: tuple[WaveLine, ...]
    express: bool = False
    carrier: str | None = None  # carrier the planner grouped it under (its cut-off)
    country: str | None = None
    postal_code: str | None = None

    @property
    def picked(self) -> bool:
        """Every line confirmed: the order can be packed and shipped."""
        return all(line.confirmed for line in self.lines)

    @property
    def picked_units(self) -> int:
        return sum(line.picked_qty or 0 for line in self.lines)


@dataclass(frozen=True, slots=True)
class Wave:
    """A wave on fulfilment.waves.v1 (key: wave_id); `version` grows by one per change."""

    wave_id: str
    location: str
    status: WaveStatus
    orders: tuple[WaveOrder, ...]
    created_at_ms: int
    updated_at_ms: int
    version: int = 1
    carrier: str | None = None
    cutoff: str | None = None  # "HH:MM" local cut-off of the carrier the wave was planned for
    zone: str | None = None
    kind: str = "multi"  # "single" (single-line orders only) or "multi"
    priority: int = 0  # pick order at the location, lower first (express waves first)
    picks: tuple[str, ...] = field(default_factory=tuple)  # ids of the confirmations applied

    @property
    def order_ids(self) -> tuple[str, ...]:
        return tuple(order.order_id for order in self.orders)

    def picked_orders(self) -> tuple[WaveOrder, ...]:
        """Orders whose every line is confirmed (ready to pack)."""
        return tuple(order for order in self.orders if order.picked)

    def line(self, order_id: str, line_id: str) -> WaveLine | None:
        for order in self.orders:
            if order.order_id == order_id:
                for line in order.lines:
                    if line.line_id == line_id:
                        return line
        return None

    def with_status(self, status: WaveStatus, at_ms: int) -> Wave:
        return replace(self, status=status, updated_at_ms=at_ms, version=self.version + 1)
