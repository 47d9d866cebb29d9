"""The ceiling Faust itself gives: a Faust app whose agent only iterates the stock events.

Run as its own process (``python -m deploy.bench.bare``), on the same broker, topic and
partitions as the ledger, with the ledger's consumer settings; the agent acknowledges each
event as it takes the next (Faust's default) and does nothing else. When it has taken the
number of events the bench expects, it logs ``bare agent done: N events at T`` (T: wall
clock seconds), so the bench measures it like the ledger: from "Worker ready" to the last
event handled.
"""

from __future__ import annotations

import os
import re
import time
from typing import Any

DONE = re.compile(r"bare agent done: (\d+) events at ([0-9.]+)")


def main() -> None:
    import faust

    from streams.kernel.replication import replication
    from streams.kernel.settings import load
    from streams.kernel.topics import STOCK_EVENTS
    from streams.worker.credentials import faust_broker_auth

    settings = load()
    expect = int(os.environ["STOCKFLOW_BENCH_EXPECT"])
    app = faust.App(
        settings.app_id,
        broker=f"kafka://{settings.bootstrap}",
        **faust_broker_auth(settings),
        store="memory://",
        topic_partitions=settings.partitions,
        topic_replication_factor=replication(settings).factor,
        consumer_auto_offset_reset="earliest",
        table_standby_replicas=0,
        stream_buffer_maxsize=8192,
        broker_commit_interval=1.0,
        broker_session_timeout=10.0,
        autodiscover=False,
        web_enabled=False,
    )
    topic = app.topic(
        STOCK_EVENTS.name,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.partitions,
    )

    @app.agent(topic, name="bare")
    async def bare(stream: Any) -> None:
        seen = 0
        async for _ in stream.events():
            seen += 1
            if seen == expect:
                print(f"bare agent done: {seen} events at {time.time():.3f}", flush=True)

    faust.Worker(app, loglevel="info", quiet=True).execute_from_commandline()


if __name__ == "__main__":
    main()
