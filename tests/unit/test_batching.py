"""The ledger's batcher: events flushed by size or once the oldest has waited its delay."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from streams.worker.batching import EventBatcher


def test_events_that_arrive_during_a_flush_wait_no_longer_than_the_delay() -> None:
    """Given a batcher with a 200 ms delay whose first flush takes 500 ms,
    when events keep arriving every 20 ms during that flush,
    then the next flush starts as soon as the first flush ends (their oldest event has
    waited longer than the delay already), not a further 200 ms later, and every event is
    acknowledged once, in order."""
    starts: list[float] = []
    ends: list[float] = []
    acked: list[int] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()

        async def process(events: Sequence[Any]) -> None:
            starts.append(loop.time())
            await asyncio.sleep(0.5 if len(starts) == 1 else 0)
            ends.append(loop.time())

        async def ack(event: Any) -> None:
            acked.append(event)

        batcher = EventBatcher(process, max_events=1000, max_delay=0.2)
        timer = asyncio.create_task(batcher.run_timer())
        await batcher.add(0, ack)
        for n in range(1, 21):
            await asyncio.sleep(0.02)
            await batcher.add(n, ack)
        await asyncio.sleep(0.8)
        timer.cancel()

    asyncio.run(main())
    assert acked == list(range(21))
    assert len(starts) >= 2
    assert starts[1] - ends[0] < 0.1  # not ends[0] + 0.2
