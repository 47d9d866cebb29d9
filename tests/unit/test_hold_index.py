"""The hold-expiry index a worker rebuilds after a restart, in the background."""

from __future__ import annotations

import asyncio

from schemas.events import stock_event
from streams.ledger import DEFAULT_CONFIG, SkuState, apply
from streams.worker.holds import HoldIndex

T0 = 1_700_000_000_000


def _held(sku: str, expires_at: int) -> SkuState:
    state, _ = apply(
        None, stock_event("stock_count", sku, f"{sku}-c", T0, qty=10), DEFAULT_CONFIG, T0
    )
    hold = stock_event(
        "hold", sku, f"{sku}-h{expires_at}", T0 + 1, qty=1, order_id=f"cart-{expires_at}",
        expires_at=expires_at,
    )  # fmt: skip
    state, _ = apply(state, hold, DEFAULT_CONFIG, T0 + 1)
    assert state is not None and state.next_hold_expiry == expires_at
    return state


def test_a_background_rebuild_indexes_every_held_sku_and_keeps_states_stored_meanwhile() -> None:
    """Given 5,000 stored SKUs, every 10th with a hold expiring at T0+1000,
    When the index is rebuilt in the background from a snapshot, in chunks of 100, and
    meanwhile a newer state of one snapshot SKU (hold now expiring at T0+5000) is stored,
    Then the event loop ran other work between chunks, every held SKU is due at T0+1000
    except the one stored meanwhile, which is due at T0+5000 only (the snapshot's older
    state did not replace it)."""
    stored = {
        f"s{n}".encode(): (_held(f"s{n}", T0 + 1000) if n % 10 == 0 else None) for n in range(5000)
    }
    snapshot = [(k, v.to_bytes() if v else None) for k, v in stored.items()]
    index = HoldIndex()
    turns = 0

    async def other_work() -> None:
        nonlocal turns
        while True:
            turns += 1
            if turns == 3:  # the agent stores a newer state while the rebuild runs
                index.track(b"s4990", _held("s4990", T0 + 5000))
            await asyncio.sleep(0)

    async def scenario() -> int:
        beside = asyncio.ensure_future(other_work())
        read = await index.rebuild_in_background(snapshot, dict(snapshot).get, chunk=100)
        beside.cancel()
        return read

    assert asyncio.run(scenario()) == 5000
    assert turns > 10
    due = set(index.due(T0 + 1000))
    assert due == {f"s{n}".encode() for n in range(0, 5000, 10)} - {b"s4990"}
    assert index.due(T0 + 5000) == [b"s4990"]
