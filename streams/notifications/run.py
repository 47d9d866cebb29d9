"""`stockflow notify run`: stock.alerts.v1 → notifications, recorded on
notifications.deliveries.v1 (and by the sink in ClickHouse's ``alert_deliveries``).

Start:

1. read notifications.deliveries.v1 whole (to its end at start) into the notifier:
   deliveries already recorded, holds and digests still pending;
2. replay stock.alerts.v1 from its start up to the group's committed offsets through the
   dedup rules only (nothing is sent);
3. subscribe with the group (``stockflow-notifier`` unless ``--group``) and follow.

Commit order, per batch of alerts read: handle each alert in order (route, dedup, send with
retries, or hold/digest) → produce its delivery records → wait for Kafka to acknowledge every
record (idempotent, acks=all) → only then commit the alerts' offsets, synchronously. Held
notifications and digests are sent when due, between batches, and recorded the same way.
Sends with retries can take a while (a receiver down: every attempt times out), so a batch is
10 alerts and the group's ``max.poll.interval.ms`` is twice a batch's worst case
(:func:`max_poll_interval_ms`; about 22 minutes with the default retry policy).
A crash before the commit reads the batch again: deliveries already recorded are skipped,
so only a notification sent but not yet recorded can go out twice (at least once).

One ``notify run`` per installation: the dedup state spans every partition of the alerts.
A record that cannot be decoded is dead-lettered (its bytes and coordinates) and skipped.
SIGTERM/SIGINT: finish the batch in hand, record it, commit, close, exit 0.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Callable
from typing import Any

import aiohttp
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    Message,
    Producer,
    TopicPartition,
)
from prometheus_client import CollectorRegistry

from schemas.codec import Codec, codec_for
from schemas.times import now_ms
from streams.kernel.deadletter import dead_letter
from streams.kernel.kafka_admin import ensure_topics
from streams.kernel.kafka_config import consumer_config, producer_config
from streams.kernel.metrics import dead_letter_counter
from streams.kernel.produce import produce
from streams.kernel.settings import Settings
from streams.kernel.topics import NOTIFICATION_DELIVERIES, STOCK_ALERTS, STOCK_DEADLETTER
from streams.notifications.channels import TIMEOUT_S, send_email, send_webhook
from streams.notifications.config import NotificationsConfig
from streams.notifications.core import backoff_delays
from streams.notifications.notifier import Notifier, Record

log = logging.getLogger("stockflow.notify")

GROUP = "stockflow-notifier"
COMPONENT = "notifier"
BATCH = 10  # alerts handled between two reads of the topic (see max_poll_interval_ms)
PROGRESS_EVERY_S = 30.0


class SmtpAndWebhooks:
    """The real transport: the installation's SMTP relay and an aiohttp session."""

    def __init__(self, settings: Settings, session: aiohttp.ClientSession) -> None:
        self.settings = settings
        self.session = session

    async def email(self, to: str, subject: str, body: str) -> object:
        return await send_email(self.settings, to, subject, body)

    async def webhook(self, url: str, payload: dict[str, Any]) -> object:
        return await send_webhook(self.session, url, payload)


def _read_to_end(
    settings: Settings, topic: str, until: dict[int, int] | None, take: Callable[[Message], None]
) -> int:
    """Every record of ``topic`` from its start up to ``until`` (per partition, exclusive;
    None: the end at the time of the call), in partition order, to ``take``."""
    reader = Consumer(consumer_config(settings, f"{GROUP}-reader", **{"enable.auto.commit": False}))
    try:
        meta = reader.list_topics(topic, timeout=10).topics[topic]
        ends: dict[int, int] = {}
        for p in meta.partitions:
            low, high = reader.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            end = high if until is None else min(high, until.get(p, low))
            if end > low:
                ends[p] = end
        if not ends:
            return 0
        reader.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in ends])
        done: set[int] = set()
        n = 0
        while len(done) < len(ends):
            messages = reader.consume(500, timeout=1.0)
            if not messages:  # past the end without a record at end - 1 (a control record)
                positions = reader.position([TopicPartition(topic, p) for p in ends])
                done |= {tp.partition for tp in positions if tp.offset >= ends[tp.partition]}
            for message in messages:
                if message.error() is not None:
                    continue
                p, offset = message.partition(), message.offset()
                assert p is not None and offset is not None
                if p in done or offset >= ends[p]:
                    done.add(p)
                    continue
                take(message)
                n += 1
                if offset + 1 >= ends[p]:
                    done.add(p)
        return n
    finally:
        reader.close()


def max_poll_interval_ms(config: NotificationsConfig) -> int:
    """How long the group waits between two reads before it drops the notifier: a batch's
    worst case (every send of every alert timing out on every attempt, with the backoff
    between attempts; an alert's recipients are sent to concurrently), twice, and at least
    librdkafka's 5 minutes."""
    retry = config.retry
    per_alert = retry.max_attempts * TIMEOUT_S + sum(backoff_delays(retry))
    return int(max(300.0, 2 * BATCH * per_alert) * 1000)


def _committed(settings: Settings, group: str) -> dict[int, int]:
    probe = Consumer(consumer_config(settings, group))
    try:
        meta = probe.list_topics(STOCK_ALERTS.name, timeout=10).topics[STOCK_ALERTS.name]
        parts = [TopicPartition(STOCK_ALERTS.name, p) for p in meta.partitions]
        return {
            tp.partition: tp.offset for tp in probe.committed(parts, timeout=10) if tp.offset >= 0
        }
    finally:
        probe.close()


class NotifyRunner:
    def __init__(
        self,
        settings: Settings,
        config: NotificationsConfig,
        *,
        group: str = GROUP,
        codec: Codec | None = None,
    ) -> None:
        self.settings = settings
        self.config = config
        self.group = group
        self.codec = codec or codec_for(settings)
        self.producer = Producer(producer_config(settings, **{"client.id": "stockflow-notifier"}))
        self.dead_letters = dead_letter_counter(CollectorRegistry())
        self.stop = asyncio.Event()
        self.notifier: Notifier | None = None
        self._errors: list[str] = []

    # -- records -----------------------------------------------------------------------------

    def _record(self, records: list[Record]) -> None:
        """Produce delivery records and wait until Kafka acknowledged all of them."""

        def delivered(err: KafkaError | None, _: Message) -> None:
            if err is not None:
                self._errors.append(str(err))

        for record in records:
            value = self.codec.encode(NOTIFICATION_DELIVERIES.value_schema, record)
            produce(
                self.producer,
                NOTIFICATION_DELIVERIES.name,
                record["delivery_id"].encode(),
                value,
                on_delivery=delivered,
            )
        remaining = self.producer.flush(self.settings.produce_timeout_s)
        if remaining or self._errors:
            errors, self._errors = self._errors[:3], []
            raise RuntimeError(
                f"{NOTIFICATION_DELIVERIES.name}: {remaining} records unacknowledged, {errors};"
                " the alerts' offsets are not committed, they are read again at the next start"
            )

    def _dead_letter(self, message: Message, exc: Exception) -> None:
        value = message.value() or b""
        record = dead_letter(
            self.dead_letters,
            component=COMPONENT,
            reason=str(getattr(exc, "reason", None) or "undecodable"),
            error=f"{type(exc).__name__}: {exc}",
            original=value,
            topic=message.topic(),
            partition=message.partition(),
            offset=message.offset(),
            key=message.key(),
        )
        produce(
            self.producer,
            STOCK_DEADLETTER.name,
            message.key(),
            self.codec.encode(STOCK_DEADLETTER.value_schema, record),
        )

    # -- start -------------------------------------------------------------------------------

    def rebuild(self, notifier: Notifier) -> tuple[int, int]:
        """Steps 1 and 2 of the start: (delivery records read, alerts replayed)."""

        def take_delivery(message: Message) -> None:
            try:
                notifier.restore(self.codec.decode_as("AlertDelivery", message.value() or b""))
            except Exception as exc:  # a bad record there is skipped, not fatal
                log.warning(
                    "%s[%s] offset=%s: unreadable delivery record skipped: %s",
                    message.topic(),
                    message.partition(),
                    message.offset(),
                    exc,
                )

        def take_alert(message: Message) -> None:
            try:
                notifier.observe(self.codec.decode_as("Alert", message.value() or b""))
            except Exception:  # dead-lettered when it was first read
                return

        deliveries = _read_to_end(self.settings, NOTIFICATION_DELIVERIES.name, None, take_delivery)
        committed = _committed(self.settings, self.group)
        alerts = _read_to_end(self.settings, STOCK_ALERTS.name, committed, take_alert)
        return deliveries, alerts

    # -- the loop ----------------------------------------------------------------------------

    async def run(self) -> int:
        ensure_topics(self.settings, (STOCK_ALERTS, NOTIFICATION_DELIVERIES, STOCK_DEADLETTER))
        async with aiohttp.ClientSession() as session:
            notifier = Notifier(self.config, SmtpAndWebhooks(self.settings, session))
            self.notifier = notifier
            deliveries, alerts = await asyncio.to_thread(self.rebuild, notifier)
            log.info(
                "notify: rebuilt from %d delivery records and %d alerts already handled;"
                " %d held, %d digests pending; %d recipients, %d rules",
                deliveries,
                alerts,
                len(notifier.held),
                len(notifier.digests),
                len(self.config.recipients),
                len(self.config.rules),
            )
            consumer = Consumer(
                consumer_config(
                    self.settings,
                    self.group,
                    **{"max.poll.interval.ms": max_poll_interval_ms(self.config)},
                )
            )
            consumer.subscribe([STOCK_ALERTS.name])
            try:
                await self._loop(consumer, notifier)
            finally:
                await asyncio.to_thread(consumer.close)
                self.producer.flush(self.settings.produce_timeout_s)
        log.info("notify: stopped; %s", _progress(notifier))
        return 0

    async def _loop(self, consumer: Consumer, notifier: Notifier) -> None:
        last_log = time.monotonic()
        while not self.stop.is_set():
            messages = await asyncio.to_thread(consumer.consume, BATCH, 0.5)
            offsets: dict[tuple[str, int], int] = {}
            records: list[Record] = []
            for message in messages:
                err = message.error()
                if err is not None:
                    if err.fatal():
                        raise RuntimeError(f"consumer: {err}")
                    log.warning("notify: consumer error: %s", err)
                    continue
                topic, p, offset = message.topic(), message.partition(), message.offset()
                assert topic is not None and p is not None and offset is not None
                offsets[(topic, p)] = offset + 1
                try:
                    alert = self.codec.decode_as("Alert", message.value() or b"")
                except Exception as exc:  # the codec's CodecError, or a bad payload
                    self._dead_letter(message, exc)
                    continue
                records += await notifier.handle(alert, now_ms())
            records += await notifier.tick(now_ms())
            if records or offsets:
                await asyncio.to_thread(self._record, records)
            if offsets:
                await asyncio.to_thread(
                    consumer.commit,
                    offsets=[TopicPartition(t, p, o) for (t, p), o in offsets.items()],
                    asynchronous=False,
                )
            if records:
                log.debug("notify: recorded %d deliveries", len(records))
            if time.monotonic() - last_log >= PROGRESS_EVERY_S:
                last_log = time.monotonic()
                log.info("notify: %s", _progress(notifier))


def _progress(notifier: Notifier) -> str:
    t = notifier.tally
    statuses = ", ".join(f"{k} {v}" for k, v in sorted(t.statuses.items())) or "no deliveries"
    return (
        f"{t.alerts} alerts ({t.unrouted} unrouted, {t.stale} stale); {statuses};"
        f" {t.already_recorded} already recorded before a restart;"
        f" pending: {len(notifier.held)} held,"
        f" {sum(map(len, notifier.digests.values()))} in digests"
    )


def run_notify(settings: Settings, config: NotificationsConfig, *, group: str = GROUP) -> int:
    """Run until SIGTERM/SIGINT; exit 0 after a clean stop."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    runner = NotifyRunner(settings, config, group=group)

    async def main() -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, runner.stop.set)
        return await runner.run()

    return asyncio.run(main())
