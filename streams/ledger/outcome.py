"""What applying one event produced, and the one place where quantities change.

:class:`Step` is the working context of one ``apply``: every quantity change goes through
:meth:`Step.move`, which mutates the location and records the matching StockMovement and
journal entry, so the movements add up to the state by construction (conservation).
:meth:`Step.finish` then emits a StockLevel if some channel quantity changed, and the
alerts of thresholds crossed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from schemas.events import InvalidEvent
from streams.ledger.availability import (
    DEFAULT_CHANNEL,
    channel_quantities,
    location_available,
    preorder_figures,
)
from streams.ledger.config import LedgerConfig
from streams.ledger.lots import day_of
from streams.ledger.state import Lot, SkuState

__all__ = ["Emitted", "InvalidEvent", "Step"]

Record = dict[str, Any]


@dataclass(slots=True)
class Emitted:
    """Records produced by one apply / expire_holds call, shaped like the Avro records.

    ``duplicate``: the event id was applied before; nothing changed, nothing is emitted.
    ``skipped``: applied (its id is recorded) but without effect, and why
    (``stale_count``, ``count_before_journal``, ``before_count``, ``unknown_order``,
    ``unknown_hold``, ``nothing_incoming``, ``no_preorders``).
    """

    movements: list[Record] = field(default_factory=list)
    decision: Record | None = None
    alerts: list[Record] = field(default_factory=list)
    level: Record | None = None
    duplicate: bool = False
    skipped: str | None = None


class Step:
    __slots__ = ("config", "event", "now", "out", "short", "state", "touched")

    def __init__(self, state: SkuState, event: Record, config: LedgerConfig, now: int) -> None:
        self.state = state
        self.event = event
        self.config = config
        self.now = now
        self.out = Emitted()
        self.touched: set[str] = set()
        self.short: set[str] = set()  # locations physically reduced below their reservations

    def move(
        self,
        location: str,
        kind: str,
        *,
        on_hand: int = 0,
        reserved: int = 0,
        unsellable: int = 0,
        incoming: int = 0,
        reason: str | None = None,
        channel: str | None = None,
        event_id: str | None = None,
        movement_id: str | None = None,
        occurred_at: int | None = None,
        journal_at: int | None = None,
        lot: str | None = None,
        expires_on: int | None = None,
    ) -> None:
        """Change one location's quantities and record the StockMovement saying so.

        ``journal_at`` is the time the on_hand change is true at, for count rebase
        (a count's own correction is true at its ``as_of``); default ``occurred_at``.
        ``lot``: the lot whose units these are (None: the unlotted part), created on first
        use with ``expires_on`` (the earlier date wins when it has one already).
        """
        ev = self.event
        state = self.state
        loc = state.location(location)
        loc.on_hand += on_hand
        loc.reserved += reserved
        loc.unsellable += unsellable
        loc.incoming += incoming
        if lot is not None:
            entry = loc.lots.get(lot)
            if entry is None:
                entry = loc.lots[lot] = Lot(expires=expires_on)
            elif expires_on is not None and (entry.expires is None or expires_on < entry.expires):
                entry.expires = expires_on
            entry.on_hand += on_hand
            entry.reserved += reserved
            if not entry.on_hand and not entry.reserved:
                del loc.lots[lot]
        cause = event_id if event_id is not None else ev["event_id"]
        when = occurred_at if occurred_at is not None else ev["occurred_at"]
        movements = self.out.movements
        movements.append(
            {
                "movement_id": movement_id or f"{cause}:{len(movements)}",
                "event_id": cause,
                "sku": state.sku,
                "location": location,
                "channel": channel if channel is not None else ev.get("channel"),
                "type": kind,
                "reason": reason if reason is not None else ev.get("reason"),
                "delta_on_hand": on_hand,
                "delta_reserved": reserved,
                "delta_unsellable": unsellable,
                "delta_incoming": incoming,
                "on_hand_after": loc.on_hand,
                "reserved_after": loc.reserved,
                "unsellable_after": loc.unsellable,
                "occurred_at": when,
                "applied_at": self.now,
                "source_ref": ev.get("source_ref"),
                "lot": lot,
            }
        )
        if on_hand:
            state.journal_add(when if journal_at is None else journal_at, loc, on_hand)
        if reserved <= 0 and (on_hand < 0 or unsellable > 0) and loc.uncovered():
            self.short.add(location)
        self.touched.add(location)

    def decide(
        self,
        outcome: str,
        qty: int,
        available_before: int,
        location: str | None = None,
        reason: str | None = None,
        lots: list[str] | None = None,
        preorder: bool = False,
        promised_on: int | None = None,
    ) -> None:
        ev = self.event
        self.out.decision = {
            "decision_id": ev["event_id"],
            "event_id": ev["event_id"],
            "sku": self.state.sku,
            "order_id": ev.get("order_id"),
            "channel": ev.get("channel"),
            "location": location,
            "qty": qty,
            "outcome": outcome,
            "reason": reason,
            "available_before": available_before,
            "occurred_at": ev["occurred_at"],
            "at": self.now,
            "lot": ",".join(lots) if lots else None,
            "preorder": preorder,
            "promised_on": promised_on,
        }

    def alert(
        self,
        kind: str,
        message: str,
        *,
        value: int,
        threshold: int = 0,
        location: str | None = None,
        channel: str | None = None,
    ) -> None:
        eid = self.event["event_id"]
        place = location or channel or DEFAULT_CHANNEL
        self.out.alerts.append(
            {
                "alert_id": f"{eid}:{kind}:{place}",
                "kind": kind,
                "sku": self.state.sku,
                "location": location,
                "channel": channel,
                "value": value,
                "threshold": threshold,
                "message": message,
                "event_id": eid,
                "at": self.now,
            }
        )

    def finish(self) -> Emitted:
        """Emit the level and crossing alerts; bound the journal. Returns the outcome."""
        state, config = self.state, self.config
        caps = config.preorders.get(state.sku) if config.preorders else None
        if not self.touched and not caps:  # (a pre-order moves no units: its figure does)
            return self.out
        state.journal_trim(config.journal_limit, self.now - config.journal_max_age_ms)
        sku = state.sku
        split_moved = False  # a location's available changed (a transfer keeps the totals)
        day = day_of(self.event["occurred_at"])
        for name in sorted(self.touched):
            avail = location_available(state.locations[name], name, config, day)
            before = state.last_available.get(name, 0)
            state.last_available[name] = avail
            split_moved = split_moved or before != avail
            threshold = config.low_stock(name)
            if threshold is not None and before > threshold >= avail:
                self.alert(
                    "low_stock",
                    f"{sku} at {name}: {avail} available, at or below {threshold}",
                    value=avail,
                    threshold=threshold,
                    location=name,
                )
        for name in sorted(self.short):
            loc = state.locations[name]
            over = loc.uncovered()
            if over:
                self.alert(
                    "oversell_attempt",
                    f"{sku} at {name}: {over} reserved units are no "
                    "longer on hand; orders cannot all ship",
                    value=over,
                    location=name,
                )
        qty = channel_quantities(state, config, day)
        last = state.last_qty
        changed = [c for c, q in qty.items() if last.get(c, 0) != q]
        pre = preorder_figures(state, config, caps) if caps else {}
        pre_changed: list[str] = []
        if pre != state.last_preorders:  # the pre-order figure is part of what is shown
            shown = state.last_preorders
            pre_changed = [c for c, n in pre.items() if shown.get(c) != n and c not in changed]
            state.last_preorders = pre
            split_moved = True
        if not changed and not split_moved:
            return self.out
        known = state.version > 0
        for c in changed:
            before, after = last.get(c, 0), qty[c]
            ch = None if c == DEFAULT_CHANNEL else c
            if after == 0 and before > 0:
                self.alert(
                    "out_of_stock", f"{sku} sells 0 on {ch or 'every channel'}", value=0, channel=ch
                )
            elif before == 0 and after > 0 and known:
                self.alert(
                    "back_in_stock",
                    f"{sku} back in stock on {ch or 'every channel'}: {after}",
                    value=after,
                    channel=ch,
                )
        state.last_qty = qty
        state.version += 1
        if pre_changed:
            changed.extend(pre_changed)
        default = qty[DEFAULT_CHANNEL]
        self.out.level = {
            "sku": sku,
            "version": state.version,
            "channels": {c: q for c, q in qty.items() if c != DEFAULT_CHANNEL},
            "changed_channels": changed,
            "default_quantity": default,
            "locations": {
                n: location_available(loc, n, config, day) for n, loc in state.locations.items()
            },
            "preorders": pre,
            "cause_event_id": self.event["event_id"],
            "occurred_at": self.event["occurred_at"],
            "at": self.now,
        }
        return self.out
