"""The order agent: orders.v1 and the ledger's replies through the pure order book.

Topics (every one with the installation's partition count, keyed with murmur2, so Faust's
assignor gives one worker the same partition of each: they are co-partitioned):

- ``orders.v1`` (key: order id): the orders' events;
- ``{app id}-order-decisions`` (key: order id): the ledger sends each Decision on the order
  book's reservations (event ids ``ob|...``) there as well as to ``stock.decisions.v1``,
  in the same batch of outputs (:class:`streams.worker.agent.LedgerStep`), so each comes
  back to its order's partition. (A forwarding agent reading every Decision of
  ``stock.decisions.v1`` did the same at the cost of Faust's per-message path for each.)
- one agent reads both ``orders.v1`` and the ledger's replies: one stream, so one
  order's inputs are applied one at a time, in the order they arrive;
- the ``orders`` table (key: order id; also ``customer|{ref}``: the customer's book,
  owned per order partition - a customer whose orders fall on two partitions has two
  books);
- outputs: StockEvents to ``stock.events.v1``, OrderState to ``orders.state.v1``, bad
  inputs to ``stock.deadletter.v1``.

Why the exchange settles (at least once, crash at any point):

1. For a batch of inputs (applied in arrival order, one order's inputs one after the
   other), each touched order's new state is written to the table's changelog together
   with its outputs of the batch (``outbox_*`` fields), and Kafka acknowledges them; only
   then are the outputs sent and acknowledged; only then are the inputs acknowledged
   (Faust commits their offsets later, ``broker_commit_interval``).
2. A crash before (1) completes: the inputs are replayed onto the old states (nothing was
   sent).
3. A crash after (1): an input is replayed onto the new state, where it is a duplicate
   (the order event's id is in ``seen``; a Decision's line is no longer pending) and changes
   nothing. The outputs it may not have sent are in the stored outbox: on every partition
   assignment the agent sends again the outbox of every order stored in the last
   ``OUTBOX_RESEND_S`` seconds. Every output is idempotent: the ledger drops a StockEvent
   whose id it applied (7 days window), and OrderState records carry their version.
4. Reservations are sent before any release of the same SKU, through one producer, to the
   SKU's one partition: the ledger applies them in that order, so a release covers every
   reservation sent before it. Every reservation gets a Decision; an order waits for all of
   its attempt's Decisions before it releases or retries (:mod:`streams.orders.book`).
5. An order still ``routed`` after ``resend_after_seconds`` has its reservations sent again
   (same ids) by the timer, in case they were lost before reaching Kafka; after
   ``MAX_RESENDS`` resends without a Decision (the ledger dead-lettered them, or a group
   started at ``latest`` skipped the decisions) it releases every SKU of the attempt and
   is an ``exception``: it holds nothing, whatever the ledger had done.
6. The timer and the outbox resend act only while the partitions they looked at are
   owned: a revocation waits for the step under way and ends their round. A step after it
   would write from a store that may be stale, and move that store's changelog offset past
   records it never read (recovery would skip them when the partition comes back).
So once every Decision is in, each order holds all its lines or none (all_or_nothing).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import types
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, cast

import faust
from aiokafka.errors import KafkaError

from schemas.codec import Codec, CodecError
from schemas.times import now_ms
from streams.bundles.catalogue import Catalogue
from streams.bundles.expand import expand_order
from streams.kernel.deadletter import dead_letter
from streams.kernel.settings import Settings
from streams.kernel.topics import (
    ORDERS,
    ORDERS_STATE,
    STOCK_DEADLETTER,
    STOCK_DECISIONS,
    STOCK_EVENTS,
    STOCK_LEVELS,
    TopicSpec,
    Writer,
)
from streams.orders.approvals import CustomerBook
from streams.orders.book import (
    Network,
    OrderBookState,
    OrderInputError,
    Result,
    apply_decision,
    apply_order_event,
    on_timer,
    order_id_of_decision,
)
from streams.orders.setup import OrderConfig
from streams.worker import metrics
from streams.worker.agent import INTERNAL_ERROR, failure_summary
from streams.worker.batching import EventBatcher
from streams.worker.changelog import AckedTableWriter, ChangelogWriteError
from streams.worker.fastpath import BatchSender, Record, RecordTooLargeError, key_partition
from streams.worker.order_views import CapacityView, InFlight, LevelsView

log = logging.getLogger("stockflow.orders")

TABLE_NAME = "orders"
ORDER_SCHEMA = ORDERS.value_schema
DECISION_SCHEMA = STOCK_DECISIONS.value_schema
CUSTOMER_PREFIX = b"customer|"
OUTBOX_RESEND_S = 600  # outboxes younger than this are sent again after an assignment
TIMER_S = 2.0
LEVELS_READY_S = 120.0  # the agent waits at most this long for the levels' first read
COMPONENT = "order-book"
WATCHED = ("routed", "pending_approval")


@dataclass
class _Batch:
    now: int
    states: dict[bytes, tuple[OrderBookState, Any]] = field(default_factory=dict)
    # per order: (stock events, order states) produced in the batch, in order
    outboxes: dict[bytes, tuple[list[dict[str, Any]], list[dict[str, Any]]]] = field(
        default_factory=dict
    )
    customers: dict[bytes, tuple[CustomerBook, Any]] = field(default_factory=dict)
    dead: list[Record] = field(default_factory=list)


class _Handle:
    """What Faust's partitioned store and the changelog writer read of an event."""

    def __init__(self, partition: int) -> None:
        self.message = types.SimpleNamespace(partition=partition)


class OrderBook:
    """The order agent, its table and the timer, in ``app``."""

    def __init__(
        self,
        app: faust.App,
        settings: Settings,
        config: OrderConfig,
        codec: Codec,
        topic_config: Mapping[str, Any],
        writing_as: Callable[[Any], AbstractContextManager[Any]],
        serves: Callable[[str, str], bool] | None = None,
        store_options: Mapping[str, int] | None = None,
        catalogue: Catalogue | None = None,
    ) -> None:
        self.app = app
        self.settings = settings
        self.config = config
        self.catalogue = catalogue or Catalogue()  # bundle lines become component lines
        self.codec = codec
        self.writing_as = writing_as
        self.partitions = settings.partitions
        raw: dict[str, Any] = {
            "key_type": bytes,
            "value_type": bytes,
            "key_serializer": "raw",
            "value_serializer": "raw",
        }
        self.replies_name = replies_topic(settings).name
        self.replies = app.topic(
            self.replies_name,
            partitions=settings.partitions,
            internal=True,
            config=dict(topic_config),
            **raw,
        )
        self.inputs = app.topic(ORDERS.name, self.replies_name, **raw)
        self.table = app.Table(
            TABLE_NAME,
            default=None,
            key_type=bytes,
            value_type=bytes,
            partitions=settings.partitions,
            extra_topic_configs=dict(topic_config),
            options=dict(store_options or {}),
        )
        self.view = LevelsView(settings, codec, settings.worker_datadir / "levels-view")
        self.capacity = CapacityView(settings, codec)
        self.inflight = InFlight()
        self.levels = Network(
            lambda sku: self.inflight.less(sku, self.view(sku)),
            serves or (lambda _channel, _location: True),
            self.capacity,
            settled=self.view,
            preorders=self.view.preorder_room,
        )
        self.sender = BatchSender(lambda: app.producer)
        self.writer = AckedTableWriter(self.table, self.sender.send, writing_as)
        self.lock = asyncio.Lock()  # the agent and the timer never step one order at once
        # +1 at every revocation, under the lock: a timer round or an outbox resend begun
        # before it stops, so it never writes an order whose partition may have moved (its
        # local store is then stale, and its write would also move the store's changelog
        # offset past records it never read, losing them at the next assignment)
        self.epoch = 0
        self.watched: dict[bytes, str] = {}  # orders the timer looks at: routed, pending
        self._recovering: asyncio.Future[None] | None = None
        self._register()

    # -- a batch of inputs --------------------------------------------------------------

    async def process(self, events: Sequence[Any]) -> None:
        """Apply a batch of inputs of ``orders.v1`` and of the ledger's replies, in
        arrival order; then every touched state, with its outbox (all its outputs of the
        batch), is acknowledged by Kafka; then the outputs are sent and acknowledged."""
        async with self.lock:
            batch = _Batch(now=now_ms())
            for event in events:
                self._apply_one(event, batch)
            writes: list[tuple[bytes, bytes | None, Any]] = []
            for key, (state, event) in batch.states.items():
                outbox = batch.outboxes[key]
                state.outbox_events, state.outbox_states = outbox
                state.outbox_at = batch.now
                writes.append((key, state.to_bytes(), event))
            for customer_key, (book, event) in batch.customers.items():
                writes.append((customer_key, json.dumps(vars(book)).encode(), event))
            await self.writer.write(writes)
            records = list(batch.dead)
            for key, (state, _) in batch.states.items():
                self._watch(key, state)
                records += self._outbox_records(key, state)
            await self.sender.send(records)
            metrics.ORDER_TRANSITIONS.inc(sum(len(o[1]) for o in batch.outboxes.values()))

    def _apply_one(self, event: Any, batch: _Batch) -> None:
        message = event.message
        raw = message.value or b""
        is_order = message.topic == ORDERS.name
        schema = ORDER_SCHEMA if is_order else DECISION_SCHEMA
        event_id: str | None = None
        key: bytes | None = None
        before: bytes | None = None
        try:
            record = self.codec.decode_as(schema, raw)
            if is_order:  # a bundle's line: its components, as defined when placed
                record = dict(expand_order(record, self.catalogue))
            event_id = record.get("event_id")
            order_id = record["order_id"] if is_order else order_id_of_decision(record)
            if not order_id:
                raise OrderInputError("missing_order_id", "order_id: required")
            if message.key is not None and message.key != order_id.encode():
                raise OrderInputError(
                    "key_mismatch",
                    f"record key {message.key!r} is not the order id {order_id!r}",
                )
            key = order_id.encode()
            with self.writing_as(event):  # a partitioned store reads the event's partition
                state = self._state(key, batch)
                before = state.to_bytes() if state is not None else None
                customer_key = _customer_key(state, record if is_order else None)
                customer = self._customer(customer_key, batch)
            apply = apply_order_event if is_order else apply_decision
            if not is_order:
                self.inflight.decided(str(record.get("event_id")))
            result = apply(state, record, self.config, self.levels, batch.now, customer)
            if result.duplicate or result.state is None:
                return
            self.inflight.sent(result.events, batch.now)
            batch.states[key] = (result.state, event)
            outbox = batch.outboxes.setdefault(key, ([], []))
            outbox[0].extend(result.events)
            outbox[1].extend(result.states)
            if result.customer is not None and customer_key is not None:
                batch.customers[customer_key] = (result.customer, event)
        except CodecError as exc:
            if exc.reason == "registry_unavailable":
                raise
            batch.dead.append(self._dead(message, exc.reason, str(exc), event_id))
        except OrderInputError as exc:
            self._restore(key, before, batch)
            if not is_order and exc.reason == "unknown_order":
                # another order book's reply (a shared topic), or an order never stored here
                log.debug("decision %s ignored: %s", event_id, exc)
                return
            batch.dead.append(self._dead(message, exc.reason, exc.message, event_id))
        except Exception as exc:  # a defect with this input: this one only, never the stream
            self._restore(key, before, batch)
            summary = failure_summary(exc)
            log.error("order input %s: internal error, dead-lettered: %s", event_id, summary)
            batch.dead.append(self._dead(message, INTERNAL_ERROR, summary, event_id))

    def _state(self, key: bytes, batch: _Batch) -> OrderBookState | None:
        """The order as this batch left it, else as stored."""
        found = batch.states.get(key)
        if found is not None:
            return found[0]
        stored = self.table.get(key)
        return OrderBookState.from_bytes(stored) if stored is not None else None

    @staticmethod
    def _restore(key: bytes | None, before: bytes | None, batch: _Batch) -> None:
        """The order as it was before an input that failed half-way (the rules change the
        state in place)."""
        if key is not None and key in batch.states and before is not None:
            batch.states[key] = (OrderBookState.from_bytes(before), batch.states[key][1])

    async def _commit(
        self, key: bytes, event: Any, result: Result, customer_key: bytes | None, now: int
    ) -> None:
        """State (with its outbox) acknowledged by Kafka, then the outputs sent."""
        state = result.state
        assert state is not None
        state.outbox_events = result.events
        state.outbox_states = result.states
        state.outbox_at = now
        writes: list[tuple[bytes, bytes | None, Any]] = [(key, state.to_bytes(), event)]
        if result.customer is not None and customer_key is not None:
            book = json.dumps(vars(result.customer)).encode()
            writes.append((customer_key, book, event))
        await self.writer.write(writes)
        self._watch(key, state)
        await self._send_outbox(key, state)

    def _outbox_records(self, key: bytes, state: OrderBookState) -> list[Record]:
        encode = self.codec.encode
        records: list[Record] = [
            (STOCK_EVENTS.name, None, e["sku"].encode(), encode(STOCK_EVENTS.value_schema, e))
            for e in state.outbox_events
        ]
        records += [
            (ORDERS_STATE.name, None, key, encode(ORDERS_STATE.value_schema, s))
            for s in state.outbox_states
        ]
        return records

    async def _send_outbox(self, key: bytes, state: OrderBookState) -> None:
        await self.sender.send(self._outbox_records(key, state))

    def _customer(self, key: bytes | None, batch: _Batch | None = None) -> CustomerBook | None:
        if key is None:
            return None
        if batch is not None and key in batch.customers:
            return batch.customers[key][0]
        raw = self.table.get(key)
        return CustomerBook(**json.loads(raw)) if raw is not None else None

    def _watch(self, key: bytes, state: OrderBookState) -> None:
        if state.status in WATCHED:
            self.watched[key] = state.status
        else:
            self.watched.pop(key, None)

    def _dead(self, message: Any, reason: str, error: str, event_id: str | None) -> Record:
        record = dead_letter(
            metrics.DEAD_LETTERS,
            component=COMPONENT,
            reason=reason,
            error=error,
            original=message.value or b"",
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            key=message.key,
            event_id=event_id,
        )
        value = self.codec.encode(STOCK_DEADLETTER.value_schema, record)
        return (STOCK_DEADLETTER.name, None, message.topic.encode(), value)

    # -- time -----------------------------------------------------------------------------

    def _partition_of(self, key: bytes) -> int:
        return key_partition(self.sender._hash(key), self.partitions)

    def _owned(self) -> set[int]:
        return {tp.partition for tp in self.app.consumer.assignment() if tp.topic == ORDERS.name}

    async def tick(self) -> None:
        """Expired approvals and reservations without Decision, for the orders owned here."""
        epoch, owned = self.epoch, self._owned()
        self.inflight.lapse(now_ms())
        for key in list(self.watched):
            partition = self._partition_of(key)
            if partition not in owned:
                continue
            handle = _Handle(partition)
            async with self.lock:
                if self.epoch != epoch:
                    return  # partitions were revoked meanwhile: the next round looks again
                with self.writing_as(handle):
                    stored = self.table.get(key)
                if stored is None:
                    self.watched.pop(key, None)
                    continue
                state = OrderBookState.from_bytes(stored)
                now = now_ms()
                try:
                    result = on_timer(state, self.config, self.levels, now)
                except Exception as exc:  # a defect: this order waits, the others go on
                    log.error("order %r: timer step failed: %s", key, failure_summary(exc))
                    continue
                if result.events or result.states:
                    await self._commit(key, handle, result, None, now)
                else:
                    self._watch(key, state)

    async def recover(self) -> None:
        """After an assignment: send again the recent outboxes, find the orders to watch."""
        epoch, owned = self.epoch, self._owned()
        began, sent = time.monotonic(), 0
        since = now_ms() - OUTBOX_RESEND_S * 1000
        for key, raw in list(self._items()):
            if key.startswith(CUSTOMER_PREFIX) or raw is None:
                continue
            if self._partition_of(key) not in owned:
                continue
            async with self.lock:  # the state as it is now: never an older outbox after
                if self.epoch != epoch:
                    log.info("order book: partitions moved, outboxes left to the next owner")
                    return
                with self.writing_as(_Handle(self._partition_of(key))):
                    raw = self.table.get(key)
                if raw is None:
                    continue
                state = OrderBookState.from_bytes(raw)
                self._watch(key, state)
                if state.outbox_at >= since and (state.outbox_events or state.outbox_states):
                    await self._send_outbox(key, state)
                    sent += 1
        log.info(
            "order book: %d outboxes sent again, %d orders watched (%.1f s)",
            sent,
            len(self.watched),
            time.monotonic() - began,
        )

    async def revoked(self) -> None:
        """Partitions are being revoked: wait for the step under way, then end the timer
        round and the outbox resend in progress (the agent's own batches are waited for by
        Faust, which acknowledges them before it revokes)."""
        async with self.lock:
            self.epoch += 1

    def _items(self) -> Iterator[tuple[bytes, bytes | None]]:
        return iter(list(self.table.items()))

    # -- Faust --------------------------------------------------------------------------

    def _register(self) -> None:
        app = self.app

        @app.agent(self.inputs, name="orders")
        async def orders(stream: faust.StreamT[Any]) -> None:
            ready = await asyncio.get_running_loop().run_in_executor(
                None, self.view.ready.wait, LEVELS_READY_S
            )
            if not ready:  # routing sees only what was read: orders may be exceptions
                log.warning(
                    "order book starts before its view of %s is complete (%.0f s)",
                    STOCK_LEVELS.name,
                    LEVELS_READY_S,
                )
            manual = cast(faust.Stream[Any], stream).noack()  # acknowledged once stored
            async for event in manual.events():
                await batcher.add(event, manual.ack)

        async def process(events: Sequence[Any]) -> None:
            try:
                await self.process(events)
            except (ChangelogWriteError, KafkaError, RecordTooLargeError) as exc:
                # states or outputs not acknowledged: the inputs stay unacknowledged
                log.critical("order book stops: %s: %s", type(exc).__name__, exc)
                await self.app.crash(exc)
                raise

        batcher = EventBatcher(process, max_events=500, max_delay=0.005)

        @app.task
        async def flush_orders() -> None:
            await batcher.run_timer()

        @app.timer(interval=TIMER_S)
        async def order_timer() -> None:
            await self.tick()

        @app.task
        async def follow_levels() -> None:
            self.view.start()
            self.capacity.start()

        def recovered(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
            if self._recovering is not None:
                self._recovering.cancel()
            self._recovering = asyncio.ensure_future(self.recover())

        app.on_rebalance_complete.connect(recovered)

        async def revoking(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
            await self.revoked()

        app.on_partitions_revoked.connect(revoking)


def _customer_key(state: OrderBookState | None, record: Mapping[str, Any] | None) -> bytes | None:
    ref = state.customer_ref if state is not None else (record or {}).get("customer_ref")
    return CUSTOMER_PREFIX + str(ref).encode() if ref else None


def replies_topic(settings: Settings) -> TopicSpec:
    """The ledger's replies to the order book, written by the ledger step (created before
    the worker joins its group: Faust's assignor ignores a topic missing at the rebalance)."""
    return TopicSpec(
        name=f"{settings.app_id}-order-decisions",
        key="order id",
        value_schema=STOCK_DECISIONS.value_schema,
        cleanup_policy="delete",
        writer=Writer.LEDGER,
        doc="The ledger's Decisions on the order book's reservations, keyed by order id.",
    )
