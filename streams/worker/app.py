"""The Faust application of the ledger: topics, the SKU table, the agent, the timer, the web API."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, cast

import faust
from faust.streams import _current_event  # the current-event context Faust's tables read

from schemas.codec import Codec
from streams.kernel.settings import ProcessingGuarantee, Settings, SettingsError
from streams.kernel.topics import STOCK_EVENTS
from streams.ledger.config import LedgerConfig
from streams.worker.agent import LedgerStep
from streams.worker.batching import EventBatcher
from streams.worker.changelog import AckedTableWriter, ChangelogWriteError
from streams.worker.holds import HoldIndex
from streams.worker.pending import PendingHolds
from streams.worker.web import register_views

log = logging.getLogger("stockflow.ledger")

TABLE_NAME = "sku-state"


class Ledger:
    """One ledger worker: the Faust app and what it is made of."""

    def __init__(self, settings: Settings, config: LedgerConfig, codec: Codec) -> None:
        if settings.processing_guarantee is not ProcessingGuarantee.AT_LEAST_ONCE:
            raise SettingsError(
                "the ledger runs at_least_once: its per-SKU applied-id set already makes each "
                "event count once; Faust's exactly_once has open bugs (see ProcessingGuarantee)"
            )
        self.settings = settings
        datadir = settings.state_dir / "worker" / f"{settings.app_id}-{settings.worker_web_port}"
        datadir.mkdir(parents=True, exist_ok=True)
        self.config = config
        self.codec = codec
        self.app = faust.App(
            settings.app_id,
            datadir=str(datadir),
            broker=f"kafka://{settings.bootstrap}",
            store=settings.store,
            topic_partitions=settings.partitions,
            topic_replication_factor=settings.replication_factor,
            processing_guarantee=settings.processing_guarantee.value,
            web_host="127.0.0.1",
            web_port=settings.worker_web_port,
            web_bind="127.0.0.1",
            canonical_url=f"http://127.0.0.1:{settings.worker_web_port}",
            consumer_auto_offset_reset=settings.offset_reset,
            table_standby_replicas=0,
            producer_acks=-1,
            producer_linger_ms=5,
            stream_buffer_maxsize=8192,
            broker_commit_interval=1.0,
            # kill -9 leaves a ghost member: the group waits this long before a restarted
            # worker gets its partitions back (Faust's default of 60 s was all of recovery)
            broker_session_timeout=10.0,
            autodiscover=False,
            web_enabled=True,
        )
        self.events = self.app.topic(
            STOCK_EVENTS.name,
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            partitions=settings.partitions,
        )
        self.table = self.app.Table(
            TABLE_NAME,
            default=None,
            key_type=bytes,  # bytes in, bytes out: Faust picks the raw serializer for both
            value_type=bytes,
            partitions=settings.partitions,
        )
        self.holds = HoldIndex()
        self.pending = PendingHolds()  # holds a request waits for; settled once stored
        self.writer = AckedTableWriter(self.table, lambda: self.app.producer, _writing_as)
        self.step = LedgerStep(
            codec,
            config,
            self.table,
            self._send,
            on_state=self._stored,
            on_decision=self.pending.decided,
            write=self.writer.write,
        )
        self._register()

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
            self.holds.rebuild(self.table.items(), self.table.get)

        app.on_rebalance_complete.connect(index_holds)

        register_views(app, self.table, self.codec, self.config, self.pending)


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
