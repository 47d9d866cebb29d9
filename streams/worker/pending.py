"""Checkout holds a request waits for: the ledger's decision, handed to the web view.

A ``POST /v1/holds`` is served by the worker that owns the SKU's partition, the one whose
batch step decides the hold. The step reports each decision (:meth:`PendingHolds.decided`,
called while encoding the batch's outputs) and then each stored state
(:meth:`PendingHolds.settle`, called once the outputs are acknowledged and the state is
written): only then is a waiting request answered, so an answer never announces a hold
that a crash could still undo. The answer's expiry is the one in the stored state, so a
retried request that lost the race to its first attempt still reads the recorded hold.

Everything here is in memory and bounded: a restart forgets it, and the stored state
answers retries from then on.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from streams.ledger.state import SkuState

__all__ = ["HoldOutcome", "PendingHolds", "Waiting"]

FORGET_AFTER_S = 120.0  # a request nobody answered (owner moved, event dead-lettered)


@dataclass(frozen=True, slots=True)
class HoldOutcome:
    """The ledger's answer to one hold: granted (location, qty, expiry) or refused (reason)."""

    hold_id: str
    granted: bool
    location: str | None = None
    qty: int = 0
    expires_at: int | None = None
    reason: str | None = None


@dataclass(slots=True)
class Waiting:
    """A hold published and not decided yet: a retry re-publishes the very same event."""

    key: bytes
    event: dict[str, Any]  # expires_at as requested; the stored state's value wins
    future: asyncio.Future[HoldOutcome]
    since: float


class PendingHolds:
    """Hold ids requests wait for, the decisions not yet stored, and recent answers."""

    def __init__(self, remember: int = 10_000) -> None:
        self._waiting: dict[str, Waiting] = {}
        self._decided: dict[str, dict[str, Any]] = {}
        self._recent: OrderedDict[str, HoldOutcome] = OrderedDict()
        self._remember = remember

    def expect(self, key: bytes, event: dict[str, Any]) -> Waiting:
        """Wait for the hold ``event`` (its id is the hold id; retries share one entry)."""
        self._forget_stale()
        hold_id = event["event_id"]
        waiting = self._waiting.get(hold_id)
        if waiting is None:
            future = asyncio.get_running_loop().create_future()
            waiting = self._waiting[hold_id] = Waiting(key, event, future, time.monotonic())
        return waiting

    def requested(self, hold_id: str) -> Waiting | None:
        """The request still waiting for ``hold_id``, if any."""
        return self._waiting.get(hold_id)

    def recent(self, hold_id: str) -> HoldOutcome | None:
        """The answer given to ``hold_id`` lately, if this process gave one."""
        return self._recent.get(hold_id)

    # -- called by the batch step -------------------------------------------------------

    def decided(self, decision: dict[str, Any]) -> None:
        """A Decision the step emitted; kept only if a request waits for it."""
        if self._waiting and decision["decision_id"] in self._waiting:
            self._decided[decision["decision_id"]] = decision

    def settle(self, key: bytes, state: SkuState) -> None:
        """``key``'s state is stored, its outputs acknowledged: answer its waiting holds."""
        if not self._decided:
            return
        for hold_id in [h for h in self._decided if self._waiting[h].key == key]:
            decision = self._decided.pop(hold_id)
            waiting = self._waiting.pop(hold_id)
            held = state.holds.get(hold_id)
            if decision["outcome"] == "accepted":
                outcome = HoldOutcome(
                    hold_id,
                    True,
                    decision["location"],
                    decision["qty"],
                    held.expires_at if held is not None else waiting.event["expires_at"],
                )
            else:
                outcome = HoldOutcome(hold_id, False, reason=decision["reason"])
            self._recent[hold_id] = outcome
            while len(self._recent) > self._remember:
                self._recent.popitem(last=False)
            if not waiting.future.done():
                waiting.future.set_result(outcome)

    def _forget_stale(self) -> None:
        limit = time.monotonic() - FORGET_AFTER_S
        for hold_id in [h for h, w in self._waiting.items() if w.since < limit]:
            del self._waiting[hold_id]
            self._decided.pop(hold_id, None)
