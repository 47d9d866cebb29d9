"""Wave planning: which released orders of a location are picked together, and in what order.

Pure: the candidates are OrderState records (``orders.state.v1``), the waved lines those
already in a wave (read from ``fulfilment.waves.v1``). A line is a candidate when its order
is ``allocated`` or ``released``, delivery ``ship``, the line ``reserved`` at the location
and not yet in a wave (a short pick's re-routed remainder is a new line, so it is waved again
wherever it was reserved).

Rules (``fulfilment:`` configuration):

1. orders are grouped by carrier (the first rule whose countries hold the destination, else
   the default), express or not (``express_channels``), zone (``group_by_zone``: the zone of
   every bin of the order, ``None`` when they differ), single-line vs multi-line
   (``split_single_line``);
2. groups are planned express first, then by the carrier's cut-off (earliest first, none
   last), then zone and kind; in a group, orders oldest first;
3. a group is cut into waves of at most ``max_orders_per_wave`` orders and
   ``max_lines_per_wave`` lines (an order with more lines is a wave alone).

Wave ids are deterministic (location and the lines held), so planning the same candidates
again names the same waves. Pick lists are sorted by bin in walking order (natural order:
A-2 before A-10; lines without a bin last).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass
from typing import Any

from streams.fulfilment.config import FulfilmentConfig
from streams.fulfilment.model import Wave, WaveLine, WaveOrder, WaveStatus

__all__ = [
    "PickRow",
    "candidates",
    "finished",
    "pick_list",
    "plan_waves",
    "walk_key",
    "waved_lines",
]

# partially_shipped: a short pick's remainder, reserved again after the rest of the order left
WAVEABLE = frozenset({"allocated", "released", "partially_shipped"})
LEFT = frozenset({"shipped", "delivered", "cancelled", "rejected", "returned", "picked_up"})
_PARTS = re.compile(r"(\d+)")


def walk_key(bin_name: str | None) -> tuple[Any, ...]:
    """Walking order of bins: natural order of their parts; no bin last."""
    if bin_name is None:
        return (1,)
    parts = _PARTS.split(bin_name.upper())
    return (0, tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts if p))


def zone_of(bin_name: str | None) -> str | None:
    return None if bin_name is None else bin_name.split("-", 1)[0].upper()


def waved_lines(waves: Iterable[Wave]) -> set[tuple[str, str]]:
    """(order id, line id) of every line already in a wave."""
    return {
        (order.order_id, line.line_id)
        for wave in waves
        for order in wave.orders
        for line in order.lines
    }


def finished(waves: Iterable[Wave], states: Mapping[str, Mapping[str, Any]]) -> list[Wave]:
    """Picked waves whose every order left (shipped, delivered, cancelled...): to close."""
    return [
        wave
        for wave in waves
        if wave.status is WaveStatus.PICKED
        and all(states.get(o.order_id, {}).get("status") in LEFT for o in wave.orders)
    ]


@dataclass(frozen=True, slots=True)
class _Candidate:
    order: WaveOrder
    placed_at: int


def candidates(
    states: Iterable[Mapping[str, Any]],
    location: str,
    waved: Set[tuple[str, str]],
    config: FulfilmentConfig,
) -> list[_Candidate]:
    """Orders with lines to wave at ``location`` (only those lines), from OrderState records."""
    found = []
    for state in states:
        if state.get("status") not in WAVEABLE or state.get("delivery", "ship") != "ship":
            continue
        order_id = str(state["order_id"])
        lines = tuple(
            WaveLine(
                line_id=line["line_id"],
                sku=line["sku"],
                qty=int(line["qty"]) - int(line.get("shipped_qty") or 0),
                bin=config.bin_of(location, line["sku"]),
                lot=line.get("lot"),
            )
            for line in state.get("lines") or []
            if line.get("status") == "reserved"
            and line.get("location") == location
            and (order_id, line["line_id"]) not in waved
            and int(line["qty"]) > int(line.get("shipped_qty") or 0)
        )
        if not lines:
            continue
        country = state.get("country")
        rule = config.carrier_for(country)
        order = WaveOrder(
            order_id=order_id,
            channel=str(state["channel"]),
            lines=lines,
            express=state["channel"] in config.express_channels,
            carrier=rule.name if rule is not None else None,
            country=country,
            postal_code=state.get("postal_code"),
        )
        found.append(_Candidate(order, int(state.get("placed_at") or 0)))
    return found


def _group_key(c: _Candidate, config: FulfilmentConfig) -> tuple[Any, ...]:
    order = c.order
    rule = config.carrier_for(order.country)
    cutoff = rule.cutoff if rule is not None and rule.cutoff else None
    zone = None
    if config.group_by_zone:
        zones = {zone_of(line.bin) for line in order.lines}
        zone = zones.pop() if len(zones) == 1 else None
    kind = "single" if config.split_single_line and len(order.lines) == 1 else "multi"
    return (
        0 if order.express else 1,
        cutoff is None,
        cutoff or "",
        order.carrier or "",
        zone or "",
        kind,
        cutoff,
        zone,
    )


def _wave_id(location: str, orders: Iterable[WaveOrder]) -> str:
    digest = hashlib.sha256()
    digest.update(location.encode())
    for order in orders:
        for line in order.lines:
            digest.update(f"\0{order.order_id}\0{line.line_id}".encode())
    return f"wave-{location}-{digest.hexdigest()[:12]}"


def plan_waves(
    states: Iterable[Mapping[str, Any]],
    location: str,
    waved: Set[tuple[str, str]],
    config: FulfilmentConfig,
    now_ms: int,
) -> list[Wave]:
    """The new waves of ``location`` in pick order (see the module's rules)."""
    groups: dict[tuple[Any, ...], list[_Candidate]] = {}
    for c in candidates(states, location, waved, config):
        groups.setdefault(_group_key(c, config), []).append(c)
    waves: list[Wave] = []
    for key in sorted(groups, key=lambda k: k[:6]):
        members = sorted(groups[key], key=lambda c: (c.placed_at, c.order.order_id))
        chunks: list[list[WaveOrder]] = []
        current: list[WaveOrder] = []
        lines = 0
        for c in members:
            n = len(c.order.lines)
            full = len(current) >= config.max_orders_per_wave
            if current and (full or lines + n > config.max_lines_per_wave):
                chunks.append(current)
                current, lines = [], 0
            current.append(c.order)
            lines += n
        if current:
            chunks.append(current)
        cutoff, zone, kind = key[6], key[7], key[5]
        for chunk in chunks:
            waves.append(
                Wave(
                    wave_id=_wave_id(location, chunk),
                    location=location,
                    status=WaveStatus.PLANNED,
                    orders=tuple(chunk),
                    created_at_ms=now_ms,
                    updated_at_ms=now_ms,
                    carrier=chunk[0].carrier,
                    cutoff=cutoff,
                    zone=zone,
                    kind=kind,
                    priority=len(waves),
                )
            )
    return waves


@dataclass(frozen=True, slots=True)
class PickRow:
    """One row of a pick list: go to ``bin``, take ``qty`` of ``sku`` (from ``lot``)."""

    bin: str | None
    sku: str
    lot: str | None
    qty: int
    order_id: str
    line_id: str


def pick_list(wave: Wave) -> list[PickRow]:
    """The wave's lines in walking order (bin, then SKU, lot, order)."""
    rows = [
        PickRow(line.bin, line.sku, line.lot, line.qty, order.order_id, line.line_id)
        for order in wave.orders
        for line in order.lines
    ]
    return sorted(rows, key=lambda r: (walk_key(r.bin), r.sku, r.lot or "", r.order_id, r.line_id))
