"""The Faust application of the ledger: topics, the SKU table, the agent, the timer, the web API."""

from __future__ import annotations

import asyncio
import gc
import logging
import socket
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, cast

import faust
from aiokafka.errors import KafkaError
from faust.streams import _current_event  # the current-event context Faust's tables read
from yarl import URL

from schemas.codec import Codec
from streams.bundles.catalogue import Catalogue
from streams.kernel.replication import Replication, replication
from streams.kernel.settings import ProcessingGuarantee, Settings, SettingsError
from streams.kernel.topics import STOCK_EVENTS
from streams.ledger.config import LedgerConfig
from streams.orders.setup import OrderConfig
from streams.worker.access import protect
from streams.worker.agent import LedgerStep
from streams.worker.batching import EventBatcher
from streams.worker.bundle_levels import BundleLevels
from streams.worker.changelog import AckedTableWriter, ChangelogWriteError, stored_reader
from streams.worker.credentials import faust_broker_auth
from streams.worker.fastpath import BatchSender
from streams.worker.holds import HoldIndex
from streams.worker.order_table import TableOrderBook
from streams.worker.orders import OrderBook, replies_topic
from streams.worker.pending import PendingHolds
from streams.worker.producer import LedgerApp
from streams.worker.web import register_views

log = logging.getLogger("stockflow.ledger")

TABLE_NAME = "sku-state"


class Ledger:
    """One ledger worker: the Faust app and what it is made of."""

    def __init__(
        self,
        settings: Settings,
        config: LedgerConfig,
        codec: Codec,
        copies: Replication | None = None,
        orders: OrderConfig | None = None,
        bundles: Catalogue | None = None,
    ) -> None:
        if settings.processing_guarantee is not ProcessingGuarantee.AT_LEAST_ONCE:
            raise SettingsError(
                "the ledger runs at_least_once: its per-SKU applied-id set already makes each "
                "event count once; Faust's exactly_once has open bugs (see ProcessingGuarantee)"
            )
        self.settings = settings
        datadir = settings.worker_datadir
        datadir.mkdir(parents=True, exist_ok=True)
        self.config = config
        self.codec = codec
        url = settings.worker_url
        # as many copies as the cluster keeps (asked of it unless the settings say)
        copies = copies or replication(settings)
        self.app = LedgerApp(
            settings.app_id,
            datadir=str(datadir),
            broker=f"kafka://{settings.bootstrap}",
            **faust_broker_auth(settings),
            store=settings.store,
            topic_partitions=settings.partitions,
            topic_replication_factor=copies.factor,
            processing_guarantee=settings.processing_guarantee.value,
            web_host=URL(url).host,
            web_port=settings.worker_web_port,
            web_bind=settings.worker_web_bind,
            canonical_url=url,  # where the group's other workers forward this one's SKUs
            consumer_auto_offset_reset=settings.offset_reset,
            table_standby_replicas=0,
            producer_acks=-1,
            producer_linger_ms=5,
            # Faust's default is 20 minutes: a partition that never acknowledges (too few
            # in-sync replicas, a full disk) would hold the ledger that long per attempt
            producer_request_timeout=settings.produce_timeout_s,
            # the batch step sends one record batch per partition: room for a big batch's
            # outputs in one request (the broker's message.max.bytes default is 1 MiB)
            producer_max_batch_size=512 * 1024,
            stream_buffer_maxsize=8192,
            broker_commit_interval=1.0,
            # kill -9 leaves a ghost member: the group waits this long before a restarted
            # worker gets its partitions back (Faust's default of 60 s was all of recovery)
            broker_session_timeout=10.0,
            # static membership (KIP-345): a worker restarted with the same instance id takes
            # its member's place at once instead of waiting out the session timeout
            consumer_group_instance_id=_instance_id(settings),
            autodiscover=False,
            web_enabled=True,
            # Faust's /router and /table pages show the cluster and the table's values: off
            # (table_route forwards by itself); any other page needs admin (streams.worker.access)
            web_router_enabled=False,
            web_tables_enabled=False,
        )
        self.events = self.app.topic(
            STOCK_EVENTS.name,
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            partitions=settings.partitions,
            config=copies.topic_config(),
        )
        self.table = self.app.Table(
            TABLE_NAME,
            default=None,
            key_type=bytes,  # bytes in, bytes out: Faust picks the raw serializer for both
            value_type=bytes,
            partitions=settings.partitions,
            extra_topic_configs=copies.topic_config(),
            options=_rocksdb_options(settings),
        )
        self.holds = HoldIndex()
        self._indexing: asyncio.Future[None] | None = None
        self.pending = PendingHolds()  # holds a request waits for; settled once stored
        self.sender = BatchSender(lambda: self.app.producer)
        self.writer = AckedTableWriter(self.table, self.sender.send, _writing_as)
        self.step = LedgerStep(
            codec,
            config,
            self.table,
            self._send,
            on_state=self._stored,
            on_decision=self.pending.decided,
            write=self.writer.write,
            send_all=self.sender.send,
            replies=replies_topic(settings).name,
            read=stored_reader(self.table),
        )
        self._register()
        # the order book: its own agents and table in the same app (keys: order ids)
        self.orders = OrderBook(
            self.app,
            settings,
            orders or OrderConfig(),
            codec,
            copies.topic_config(),
            _writing_as,
            serves=lambda channel, location: (
                (ch := config.channels.get(channel)) is None or ch.serves(location)
            ),
            # a quarter of the SKU table's RocksDB memory (on top of the budget)
            store_options={
                k: v if k == "max_write_buffer_number" else v // 4
                for k, v in _rocksdb_options(settings).items()
            },
            catalogue=bundles,
        )
        # bundles: their levels from their components' (none configured: nothing runs)
        self.bundle_levels = BundleLevels(settings, codec, bundles) if bundles else None
        if self.bundle_levels is not None:

            @self.app.task
            async def follow_bundles() -> None:
                await self._follow_bundles()

        register_views(
            self.app,
            self.table,
            self.codec,
            self.config,
            self.pending,
            orders=TableOrderBook(self.orders.table),
            order_table=self.orders.table,
            bundles=bundles,
        )
        self.tokens = protect(self.app, self.settings)

    async def _follow_bundles(self) -> None:
        if self.bundle_levels is not None:
            self.bundle_levels.start()

    async def _index_holds(self) -> None:
        began = time.monotonic()
        try:
            items: Iterable[tuple[bytes, bytes | None]] = self.table.items()
            if self.settings.store.startswith("memory://"):
                items = list(items)  # a dict the agent grows meanwhile: scan a snapshot
            read = await self.holds.rebuild_in_background(items, self.table.get)
        except RuntimeError as exc:  # the partitions changed under the scan: a rebalance,
            log.info("holds index rebuild interrupted (%s); the next rebalance redoes it", exc)
            return
        log.info("holds indexed: %d SKUs read in %.1f s", read, time.monotonic() - began)

    def _stored(self, key: bytes, state: Any) -> None:
        self.holds.track(key, state)
        self.pending.settle(key, state)

    async def _send(self, topic: str, key: bytes | None, value: bytes) -> Any:
        return await self.app.producer.send(topic, key, value, None, None, None)

    def _register(self) -> None:
        app = self.app

        async def process(events: Sequence[Any]) -> None:
            try:
                await self.step.run([(event.message, event) for event in events], _writing_as)
            except ChangelogWriteError as exc:
                # the batch's events stay unacknowledged: stop, so a restart replays them
                log.critical("ledger stops: %s", exc)
                await self.app.crash(exc)
                raise
            except KafkaError as exc:  # outputs not acknowledged: the same, before any state
                log.critical(
                    "ledger stops: outputs of a batch of %d events not acknowledged by Kafka "
                    "(%s: %s); the events stay unacknowledged and are replayed after a restart",
                    len(events),
                    type(exc).__name__,
                    exc,
                )
                await self.app.crash(exc)
                raise

        batcher = EventBatcher(process, max_events=2000, max_delay=0.005)

        @app.agent(self.events, name="ledger")
        async def ledger(stream: faust.StreamT[Any]) -> None:
            manual = cast(
                faust.Stream[Any], stream
            ).noack()  # acknowledged by the batcher once the batch is stored
            async for event in manual.events():
                await batcher.add(event, manual.ack)

        @app.task
        async def flush_batches() -> None:
            await batcher.run_timer()

        @app.timer(interval=1.0)
        async def expire_holds() -> None:
            await self.holds.release_due(self.table, self.app.producer, self.codec)

        def index_holds(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
            gc.collect()
            gc.freeze()  # what recovery loaded stays: the collector no longer scans it
            # in the background: a restart with a million SKUs must not wait for it
            if self._indexing is not None:
                self._indexing.cancel()
            self._indexing = asyncio.ensure_future(self._index_holds())

        app.on_rebalance_complete.connect(index_holds)


def _instance_id(settings: Settings) -> str | None:
    """Stable across restarts of one worker, unique among the group's workers (one web port
    per worker and host); None without static membership."""
    if not settings.static_membership:
        return None
    return f"{settings.app_id}-{socket.gethostname()}-{settings.worker_web_port}"


def _rocksdb_options(settings: Settings) -> dict[str, int]:
    """RocksDB sized for the worker's memory budget, not Faust's defaults (a 2 GiB block
    cache and 3 write buffers of 64 MiB per partition database): half the budget for the
    write buffers (2 per partition), half for the block caches."""
    if not settings.store.startswith("rocksdb://"):
        return {}
    per_partition = settings.rocksdb_memory_mb * 1024 * 1024 // settings.partitions
    return {
        "write_buffer_size": per_partition // 4,
        "max_write_buffer_number": 2,
        "block_cache_size": per_partition // 2,
    }


@contextmanager
def _writing_as(event: Any) -> Iterator[None]:
    token = _current_event.set(_weak(event))
    try:
        yield
    finally:
        _current_event.reset(token)


def _weak(event: Any) -> Any:
    import weakref

    return weakref.ref(event)
