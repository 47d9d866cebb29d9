"""`stockflow worker`: run one ledger worker against the configured Kafka."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import sys

import faust
import uvloop

from schemas.codec import codec_for
from streams.bundles.catalogue import load_catalogue
from streams.kernel.kafka_admin import ensure_topics
from streams.kernel.settings import Settings
from streams.kernel.topics import TopicSpec, Writer
from streams.ledger.config import load_config
from streams.orders.setup import load_order_config

log = logging.getLogger("stockflow.worker")

# The batch step makes many short-lived objects per event (decoded events, states, outputs):
# with CPython's default first-generation threshold (700 allocations) the collector ran
# several times per batch. Long-lived objects (the table, after recovery) are frozen out of
# the collector's scans once partitions are assigned (``streams.worker.app``).
GC_THRESHOLDS = (50_000, 20, 100)


def _dump_tasks() -> None:
    """SIGUSR1: log where every asyncio task of the worker waits (for a stalled worker)."""
    import asyncio
    import io

    for task in asyncio.all_tasks(asyncio.get_event_loop()):
        out = io.StringIO()
        task.print_stack(limit=12, file=out)
        log.warning("task %s:\n%s", task.get_name(), out.getvalue())


def changelogs(settings: Settings, *tables: str) -> tuple[TopicSpec, ...]:
    """The tables' changelog topics, named and shaped as Faust would create them. Created
    before the worker joins its group: a topic Faust creates at start can still be missing
    from the group leader's metadata at the first rebalance (seen on a loaded machine), and
    its partitions are then assigned to nobody until the next rebalance."""
    return tuple(
        TopicSpec(
            name=f"{settings.app_id}-{table}-changelog",
            key="table key",
            value_schema="bytes",
            cleanup_policy="compact",
            writer=Writer.LEDGER,
            doc=f"Changelog of the worker's {table} table.",
        )
        for table in tables
    )


def run_worker(settings: Settings, *, loglevel: str = "info") -> int:
    """Declare the topics, then run the ledger until stopped (SIGINT/SIGTERM)."""
    gc.set_threshold(*GC_THRESHOLDS)
    # libuv's event loop: the worker's tasks, futures and socket reads and writes (aiokafka's
    # fetches and produce requests, Faust's consumer thread) cost less than on asyncio's own
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    from streams.worker import app
    from streams.worker import orders as order_book
    from streams.worker.app import Ledger
    from streams.worker.orders import replies_topic

    config = load_config(settings.config_path or None)
    orders = load_order_config(settings.config_path or None)
    bundles = load_catalogue(settings.config_path or None)
    codec = codec_for(settings)
    own = (
        replies_topic(settings),
        *changelogs(settings, app.TABLE_NAME, order_book.TABLE_NAME),
    )
    created = ensure_topics(settings) + ensure_topics(settings, own)
    if created:
        print(f"[worker] declared topics: {', '.join(created)}", file=sys.stderr)
    ledger = Ledger(settings, config, codec, orders=orders, bundles=bundles)
    worker = faust.Worker(ledger.app, loglevel=loglevel, quiet=True)
    signal.signal(signal.SIGUSR1, lambda *_: _dump_tasks())
    worker.execute_from_commandline()  # exits the process when the worker stops
    return 0
