"""The ledger's batch step: decode, apply the pure rules, emit, then store.

Commit order, per batch of events taken from ``stock.events.v1``:
 1. decode and apply every event to its SKU's state (pure rules, in partition order);
 2. send every output record (levels, movements, decisions, alerts, dead letters) and wait
    until Kafka acknowledged all of them;
 3. write each touched SKU's new state to the table's changelog (its main record, with the
    state pages sealed before it and the tombstones of dropped pages after it:
    :meth:`SkuState.records`) and wait until Kafka acknowledged all of them, then put them
    in the store (:mod:`streams.worker.changelog`);
 4. Faust acknowledges the events, and commits their offsets later.
A crash before 3 replays the events onto the old state: outputs may repeat (downstream
dedupes by id) but nothing is applied twice. A crash between 3 and 4 replays events at
input positions the state has passed (each SKU keeps the partition and offset of the last
event applied to it): they are skipped. So the state is exactly-once per event. Event ids
are remembered too, for a time window, against producers that send one event twice.

A schema registry that does not answer (``CodecError`` reason ``registry_unavailable``, on
decode or encode) is not the event's fault: the batch is applied again from the stored
states after a backoff, until the registry answers; nothing is dead-lettered for it.

One event never stops the ledger: any failure while applying or encoding it (a state that
does not decode, a value too large for its Avro field, a defect in a rule) dead-letters it
with reason ``internal_error`` and a traceback summary, puts its SKU back as it was before
the event, and the batch goes on. The rules change state in place, so nothing is copied on
the way: a rollback decodes the SKU's stored bytes again and re-applies the batch's earlier
events of that SKU (the rules are deterministic for one ``now``).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import traceback
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Protocol

from schemas.codec import Codec, CodecError
from schemas.times import now_ms
from streams.kernel.deadletter import dead_letter
from streams.kernel.topics import (
    STOCK_ALERTS,
    STOCK_DEADLETTER,
    STOCK_DECISIONS,
    STOCK_LEVELS,
    STOCK_MOVEMENTS,
)
from streams.ledger import InvalidEvent, LedgerConfig, SkuState, apply
from streams.orders.book import order_id_of_decision
from streams.worker import metrics
from streams.worker.registry import resolve_off_loop

log = logging.getLogger("stockflow.ledger")

EVENT_SCHEMA = "stockflow.v1.StockEvent"


# Labelled metric children, looked up once per label set (``labels()`` costs ~3 µs a call).
@functools.cache
def _events(kind: str, outcome: str) -> Any:
    return metrics.EVENTS.labels(type=kind, outcome=outcome)


@functools.cache
def _decisions(outcome: str) -> Any:
    return metrics.DECISIONS.labels(outcome=outcome)


@functools.cache
def _alerts(kind: str) -> Any:
    return metrics.ALERTS.labels(kind=kind)


Send = Callable[[str, bytes | None, bytes], Awaitable[Awaitable[Any]]]
# every (topic, partition or None, key, value) sent, returning once Kafka acknowledged all
SendAll = Callable[[Sequence[tuple[str, int | None, bytes | None, bytes | None]]], Awaitable[Any]]
Write = Callable[[Sequence[tuple[bytes, bytes | None, Any]]], Awaitable[None]]
Read = Callable[[bytes, Any], bytes | None]  # (key, event handle) -> stored bytes or None


class Message(Protocol):
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


class Table(Protocol):
    def get(self, key: bytes) -> bytes | None: ...
    def __setitem__(self, key: bytes, value: bytes) -> None: ...
    def __delitem__(self, key: bytes) -> None: ...


INTERNAL_ERROR = "internal_error"
REGISTRY_UNAVAILABLE = "registry_unavailable"
PAUSE_FIRST_S = 0.5
PAUSE_MAX_S = 30.0
_SUMMARY_FRAMES = 4
_SUMMARY_CHARS = 600


def failure_summary(exc: BaseException) -> str:
    """The exception's type, its message and the innermost frames (file:line in function),
    without local values, bounded in size: what a dead letter may carry."""
    message = " ".join(str(exc).split())[:200]
    frames = traceback.extract_tb(exc.__traceback__)[-_SUMMARY_FRAMES:]
    where = " < ".join(
        f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno} in {f.name}" for f in reversed(frames)
    )
    return f"{type(exc).__name__}: {message} [at {where}]"[:_SUMMARY_CHARS]


@dataclass
class BatchResult:
    applied: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    internal_errors: int = 0
    touched: dict[bytes, tuple[SkuState, Any]] = field(default_factory=dict)
    # per SKU touched: its stored bytes before the batch, and the events applied since
    base: dict[bytes, tuple[bytes | None, list[tuple[dict[str, Any], int, int]]]] = field(
        default_factory=dict
    )
    # metrics of the batch, counted here and added to the Prometheus metrics once per batch
    events: dict[tuple[str, str], int] = field(default_factory=dict)
    decisions: dict[str, int] = field(default_factory=dict)
    alerts: dict[str, int] = field(default_factory=dict)
    movements: int = 0
    levels: int = 0
    expired: int = 0

    def count(self, kind: str, outcome: str) -> None:
        key = (kind, outcome)
        self.events[key] = self.events.get(key, 0) + 1

    def publish(self) -> None:
        """Add the batch's counts to the Prometheus metrics (a few calls per batch)."""
        for (kind, outcome), n in self.events.items():
            _events(kind, outcome).inc(n)
        for outcome, n in self.decisions.items():
            _decisions(outcome).inc(n)
        for kind, n in self.alerts.items():
            _alerts(kind).inc(n)
        if self.movements:
            metrics.MOVEMENTS.inc(self.movements)
        if self.levels:
            metrics.LEVELS.inc(self.levels)
        if self.expired:
            metrics.HOLDS_EXPIRED.inc(self.expired)


class LedgerStep:
    """Applies batches of raw Kafka events to the SKU table. Framework-agnostic."""

    def __init__(
        self,
        codec: Codec,
        config: LedgerConfig,
        table: Table,
        send: Send,
        on_state: Callable[[bytes, SkuState], None] | None = None,
        on_decision: Callable[[dict[str, Any]], None] | None = None,  # before on_state
        write: Write | None = None,
        send_all: SendAll | None = None,
        replies: str | None = None,
        read: Read | None = None,
    ) -> None:
        """``read``: a key's stored bytes in the partition of an event handle; without it,
        ``table.get`` under the handle's context.
        ``write``: stores a batch's (key, bytes or None to delete, event handle) and
        returns once they are durable; without it, ``table[key] = value`` (``del`` for None)
        under each event's context. A SKU's records are its main record and its state pages
        (:meth:`SkuState.records`), all under the event that touched it last.
        ``send_all``: sends a batch's outputs at once, returning when all are acknowledged;
        without it, ``send`` is called per output and the futures are gathered.
        ``replies``: the order book's topic; a Decision on one of its reservations is also
        sent there, keyed by its order, with the batch's other outputs (a forwarding agent
        reading every Decision back through Faust's per-message path cost ~6 % of the
        worker for the few that are the order book's)."""
        self.codec = codec
        self.config = config
        self.table = table
        self.send = send
        self.on_state = on_state
        self.on_decision = on_decision
        self.write = write
        self.send_all = send_all
        self.replies = replies
        self.read = read
        self._context: Callable[[Any], AbstractContextManager[Any]] | None = None

    async def run(
        self,
        items: Sequence[tuple[Message, Any]],
        write_context: Callable[[Any], AbstractContextManager[Any]] | None = None,
    ) -> BatchResult:
        """Apply ``items`` (message, opaque event handle) and store the states.

        ``write_context(handle)`` makes ``handle`` the framework's current event: each key is
        read and written under its own event, because a partitioned store (Faust's RocksDB
        store) serves a key from the partition of the current event.
        """
        self._context = write_context
        result, outbox = await self._apply_all(items)
        metrics.BATCH.observe(len(items))
        result.publish()
        # outputs acknowledged before the state moves on
        if self.send_all is not None:
            await self.send_all([(topic, None, key, value) for topic, key, value in outbox])
        else:
            pending = [await self.send(topic, key, value) for topic, key, value in outbox]
            if pending:
                await asyncio.gather(*pending)
        writes = [
            (name, value, handle)
            for key, (state, handle) in result.touched.items()
            for name, value in state.records(result.base[key][0])
        ]
        if self.write is not None:
            await self.write(writes)  # acknowledged by Kafka before the events are
        else:
            for name, value, handle in writes:
                with write_context(handle) if write_context else nullcontext():
                    if value is None:
                        del self.table[name]
                    else:
                        self.table[name] = value
        if self.on_state is not None:
            for key, (state, _) in result.touched.items():
                self.on_state(key, state)
        return result

    async def _apply_all(
        self, items: Sequence[tuple[Message, Any]]
    ) -> tuple[BatchResult, list[tuple[str, bytes | None, bytes]]]:
        """Apply the batch in memory; while the schema registry does not answer, wait and
        apply it again from the stored states (nothing was sent or stored yet): a registry
        outage pauses the ledger and never dead-letters good events."""
        delay = PAUSE_FIRST_S
        while True:
            result = BatchResult()
            outbox: list[tuple[str, bytes | None, bytes]] = []
            now = now_ms()
            try:
                # fetched in a thread: a hanging registry must not block the event loop
                await resolve_off_loop(self.codec, [message.value for message, _ in items])
                for message, handle in items:
                    self._apply_one(message, handle, now, result, outbox)
                return result, outbox
            except CodecError as exc:
                if exc.reason != REGISTRY_UNAVAILABLE:
                    raise
                metrics.PAUSES.labels(cause=REGISTRY_UNAVAILABLE).inc()
                log.warning(
                    "schema registry unavailable (%s): batch of %d events paused, retry in %.1f s",
                    exc,
                    len(items),
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, PAUSE_MAX_S)

    def _apply_one(
        self,
        message: Message,
        handle: Any,
        now: int,
        result: BatchResult,
        outbox: list[tuple[str, bytes | None, bytes]],
    ) -> None:
        raw = message.value or b""
        event_id: str | None = None
        event: dict[str, Any] = {}
        key: bytes | None = None
        mark = len(outbox)
        try:
            event = self.codec.decode_as(EVENT_SCHEMA, raw)
            event_id = event["event_id"]
            key = event["sku"].encode()
            if message.key is not None and message.key != key:
                raise InvalidEvent(
                    "key_mismatch",
                    f"record key {message.key!r} is not the event's SKU {event['sku']!r}; "
                    "producers must key stock events by SKU",
                )
            state = self._state(key, handle, result)
            if state is not None and state.at_position(message.partition, message.offset):
                result.duplicates += 1  # a Kafka redelivery of an event applied before
                result.count(event["type"], "duplicate")
                return
            state, emitted = apply(state, event, self.config, now)
            if emitted.duplicate:
                result.duplicates += 1
                result.count(event["type"], "duplicate")
                return
            self._emit(key, event, emitted, outbox, now, result)
        except CodecError as exc:
            if exc.reason == REGISTRY_UNAVAILABLE:
                raise  # a server is unwell, not the event: the batch pauses
            if key is not None:  # an output did not encode: the event changed state
                self._fail(message, outbox, mark, result, key, now, exc, event_id, event)
                return
            self._dead(message, outbox, result, exc.reason, str(exc), event_id)
            result.count("undecodable", "invalid")
            return
        except InvalidEvent as exc:  # raised before the rules change anything
            self._dead(message, outbox, result, exc.reason, str(exc), event_id)
            result.count(str(event.get("type")), "invalid")
            return
        except Exception as exc:  # a defect or a limit hit: this event only, never the batch
            self._fail(message, outbox, mark, result, key, now, exc, event_id, event)
            return
        state.in_partition, state.in_offset = message.partition, message.offset
        result.applied += 1
        result.touched[key] = (state, handle)
        result.base[key][1].append((event, message.partition, message.offset))
        result.count(event["type"], "applied")

    def _state(self, key: bytes, handle: Any, result: BatchResult) -> SkuState | None:
        """The SKU's state as this batch left it, else as stored (remembering the bytes)."""
        touched = result.touched.get(key)
        if touched is not None:
            return touched[0]
        read = self.read
        if read is not None:
            stored = read(key, handle)
            if key not in result.base:
                result.base[key] = (stored, [])
            pages = lambda name: read(name, handle)  # noqa: E731
            return SkuState.from_bytes(stored, pages) if stored is not None else None
        with self._context(handle) if self._context else nullcontext():
            stored = self.table.get(key)
            if key not in result.base:
                result.base[key] = (stored, [])
            return SkuState.from_bytes(stored, self.table.get) if stored is not None else None

    def _fail(
        self,
        message: Message,
        outbox: list[tuple[str, bytes | None, bytes]],
        mark: int,
        result: BatchResult,
        key: bytes | None,
        now: int,
        exc: Exception,
        event_id: str | None,
        event: dict[str, Any],
    ) -> None:
        """Dead-letter the event as ``internal_error`` and put its SKU back as it was."""
        del outbox[mark:]  # outputs of the failed event that did encode
        kind = event.get("type") if isinstance(event.get("type"), str) else None
        summary = failure_summary(exc)
        log.error(
            "%s[%s] offset=%s event_id=%s sku=%s: internal error, event dead-lettered and "
            "its SKU rolled back: %s",
            message.topic,
            message.partition,
            message.offset,
            event_id,
            key.decode(errors="replace") if key is not None else None,
            summary,
        )
        if key is not None and key in result.touched:
            handle = result.touched[key][1]
            with self._context(handle) if self._context else nullcontext():
                result.touched[key] = (self._replayed(key, result, now), handle)
        result.internal_errors += 1
        self._dead(message, outbox, result, INTERNAL_ERROR, summary, event_id)
        result.count(kind or "unknown", "failed")

    def _replayed(self, key: bytes, result: BatchResult, now: int) -> SkuState:
        """The SKU's state before the failed event: stored bytes + this batch's earlier events."""
        stored, applied = result.base[key]
        state = SkuState.from_bytes(stored, self.table.get) if stored is not None else None
        for event, partition, offset in applied:
            state, _ = apply(state, event, self.config, now)
            state.in_partition, state.in_offset = partition, offset
        assert state is not None  # at least one event was applied to be touched
        return state

    def _emit(
        self,
        key: bytes,
        event: dict[str, Any],
        emitted: Any,
        outbox: list[tuple[str, bytes | None, bytes]],
        now: int,
        result: BatchResult,
    ) -> None:
        """Encode the event's outputs into the outbox; their metrics are counted in
        ``result`` and published with the batch (an event rolled back later still counts)."""
        encode = self.codec.encode
        for movement in emitted.movements:
            outbox.append(
                (STOCK_MOVEMENTS.name, key, encode(STOCK_MOVEMENTS.value_schema, movement))
            )
        result.movements += len(emitted.movements)
        if emitted.decision is not None:
            decided = encode(STOCK_DECISIONS.value_schema, emitted.decision)
            outbox.append((STOCK_DECISIONS.name, key, decided))
            if self.replies is not None:
                order_id = order_id_of_decision(emitted.decision)
                if order_id is not None:
                    outbox.append((self.replies, order_id.encode(), decided))
            outcome = emitted.decision["outcome"]
            result.decisions[outcome] = result.decisions.get(outcome, 0) + 1
            if self.on_decision is not None:
                self.on_decision(emitted.decision)
        for alert in emitted.alerts:
            outbox.append((STOCK_ALERTS.name, key, encode(STOCK_ALERTS.value_schema, alert)))
            result.alerts[alert["kind"]] = result.alerts.get(alert["kind"], 0) + 1
        if emitted.level is not None:
            outbox.append(
                (STOCK_LEVELS.name, key, encode(STOCK_LEVELS.value_schema, emitted.level))
            )
            result.levels += 1
            metrics.LATENCY.observe(max(0, now - event["occurred_at"]) / 1000)
        if event["type"] == "hold_released" and event.get("reason") == "expired":
            result.expired += 1

    def _dead(
        self,
        message: Message,
        outbox: list[tuple[str, bytes | None, bytes]],
        result: BatchResult,
        reason: str,
        error: str,
        event_id: str | None,
    ) -> None:
        result.dead_letters += 1
        record = dead_letter(
            metrics.DEAD_LETTERS,
            component="ledger",
            reason=reason,
            error=error,
            original=message.value or b"",
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            key=message.key,
            event_id=event_id,
        )
        outbox.append(
            (
                STOCK_DEADLETTER.name,
                message.topic.encode(),
                self.codec.encode(STOCK_DEADLETTER.value_schema, record),
            )
        )
