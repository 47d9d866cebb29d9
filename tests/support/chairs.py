"""The chairs scenario's opening: a count, then one-unit orders racing from three producers."""

from __future__ import annotations

import threading
from typing import Any

from schemas.codec import Codec
from streams.kernel.settings import Settings
from streams.kernel.topics import STOCK_DECISIONS
from tests.support.kafka import produce_events, read_topic, stock_event, wait_for
from tests.support.worker import WorkerProcess

CHANNELS = ("shopify", "amazon", "store")
CONFIG = """
default_location: main
locations:
  - name: main
channels:
  - name: shopify
  - name: amazon
  - name: store
"""


def race_for_chairs(
    writer: Settings,
    reader: Settings,
    codec: Codec,
    worker: WorkerProcess,
    sku: str,
    *,
    count: int = 100,
    per_channel: int = 50,
    timeout: float = 90,
) -> dict[str, dict[str, Any]]:
    """Count ``count`` units of ``sku`` at ``main`` and wait until the worker has it, then
    send ``per_channel`` orders of 1 from each of the three channels at once (one producer
    thread per channel, as ``writer``); returns the ledger's decisions by id, read as
    ``reader`` once every order is decided."""
    produce_events(
        writer, codec, [stock_event(f"{sku}-count", "stock_count", sku, count, location="main")]
    )
    wait_for(
        lambda: (
            (worker.stock(sku) or {}).get("locations", {}).get("main", {}).get("on_hand") == count
        ),
        timeout=timeout,
        what="the count to be applied",
    )

    def orders(channel: str) -> None:
        produce_events(
            writer,
            codec,
            [
                stock_event(
                    f"{sku}-{channel}-{i}",
                    "order_placed",
                    sku,
                    1,
                    channel=channel,
                    order_id=f"{channel}-{i}",
                )
                for i in range(per_channel)
            ],
        )

    threads = [threading.Thread(target=orders, args=(c,)) for c in CHANNELS]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wanted = per_channel * len(CHANNELS)
    found = read_topic(
        reader,
        codec,
        STOCK_DECISIONS,
        lambda r: r["sku"] == sku,
        until=lambda got: len({d["decision_id"] for d in got}) >= wanted,
        timeout=timeout,
    )
    return {d["decision_id"]: d for d in found}
