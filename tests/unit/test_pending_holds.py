"""Holds a request waits for are answered only once their SKU's state is stored."""

from __future__ import annotations

import asyncio

from streams.ledger import Hold, SkuState
from streams.worker.hold_ids import hold_id_for, sku_of_hold
from streams.worker.pending import PendingHolds


def _decision(hold_id: str, outcome: str, reason: str | None = None) -> dict[str, object]:
    location = "wh" if outcome == "accepted" else None
    return {
        "decision_id": hold_id,
        "outcome": outcome,
        "location": location,
        "qty": 2,
        "reason": reason,
    }


def test_a_waiting_hold_is_answered_after_its_state_is_stored_with_the_stored_expiry() -> None:
    """Given a request waiting for hold h, when the step decides it (accepted), then the
    request is not answered yet; when the SKU's state is stored, it is answered granted with
    the location and the expiry recorded in the state, and the answer is kept for retries."""

    async def scenario() -> None:
        pending = PendingHolds()
        future = pending.expect(b"chair", {"event_id": "h", "expires_at": 1_000}).future
        pending.decided(_decision("h", "accepted"))
        assert not future.done()
        state = SkuState(sku="chair", holds={"h": Hold("h", "wh", 2, "web", 900)})
        pending.settle(b"other", SkuState(sku="other"))
        assert not future.done()
        pending.settle(b"chair", state)
        outcome = future.result()
        assert (outcome.granted, outcome.location, outcome.expires_at) == (True, "wh", 900)
        assert pending.recent("h") == outcome
        assert pending.requested("h") is None

    asyncio.run(scenario())


def test_a_refused_hold_carries_the_reason_and_decisions_nobody_waits_for_are_dropped() -> None:
    """Given a request waiting for hold h, when the step refuses it, then after the store the
    answer is refused with the ledger's reason; a decision for a hold nobody waits for is
    not kept."""

    async def scenario() -> None:
        pending = PendingHolds()
        future = pending.expect(b"chair", {"event_id": "h", "expires_at": 1_000}).future
        pending.decided(_decision("x", "accepted"))
        pending.decided(_decision("h", "rejected", "insufficient_stock"))
        pending.settle(b"chair", SkuState(sku="chair"))
        assert (future.result().granted, future.result().reason) == (False, "insufficient_stock")
        assert pending.recent("x") is None

    asyncio.run(scenario())


def test_a_hold_id_derives_from_its_idempotency_key_and_sku_and_carries_the_sku() -> None:
    """Given an Idempotency-Key, when hold ids are made for it, then the same key and SKU give
    the same id, another SKU or key another id, no key a new id each time; each carries its
    SKU."""
    assert hold_id_for("chair", "k1") == hold_id_for("chair", "k1")
    assert hold_id_for("chair", "k1") != hold_id_for("table", "k1")
    assert hold_id_for("chair", "k1") != hold_id_for("chair", "k2")
    assert hold_id_for("chair") != hold_id_for("chair")
    assert sku_of_hold(hold_id_for("chair/é", "k1")) == "chair/é"
