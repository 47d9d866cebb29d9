"""The ledger's batch step: decode, apply the pure rules, emit, then store.

Commit order, per batch of events taken from ``stock.events.v1``:
 1. decode and apply every event to its SKU's state (pure rules, in partition order);
 2. send every output record (levels, movements, decisions, alerts, dead letters) and wait
    until Kafka acknowledged all of them;
 3. write each touched SKU's new state to the table (one changelog record per SKU);
 4. Faust acknowledges the events, and commits their offsets later.
A crash before 3 replays the events onto the old state: outputs may repeat (downstream
dedupes by id) but nothing is applied twice. A crash between 3 and 4 replays events whose
ids are already in the state: they are skipped. So the state is exactly-once per event.
"""

from __future__ import annotations

import asyncio
import functools
import logging
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
from streams.worker import metrics

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


class Message(Protocol):
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


class Table(Protocol):
    def get(self, key: bytes) -> bytes | None: ...
    def __setitem__(self, key: bytes, value: bytes) -> None: ...


@dataclass
class BatchResult:
    applied: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    touched: dict[bytes, tuple[SkuState, Any]] = field(default_factory=dict)


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
    ) -> None:
        self.codec = codec
        self.config = config
        self.table = table
        self.send = send
        self.on_state = on_state
        self.on_decision = on_decision

    async def run(
        self,
        items: Sequence[tuple[Message, Any]],
        write_context: Callable[[Any], AbstractContextManager[Any]] | None = None,
    ) -> BatchResult:
        """Apply ``items`` (message, opaque event handle) and store the states."""
        result, outbox = await self._apply_all(items)
        metrics.BATCH.observe(len(items))
        pending = [await self.send(topic, key, value) for topic, key, value in outbox]
        if pending:
            await asyncio.gather(*pending)  # outputs acknowledged before the state moves on
        for key, (state, handle) in result.touched.items():
            with write_context(handle) if write_context else nullcontext():
                self.table[key] = state.to_bytes()
            if self.on_state is not None:
                self.on_state(key, state)
        return result

    async def _apply_all(
        self, items: Sequence[tuple[Message, Any]]
    ) -> tuple[BatchResult, list[tuple[str, bytes | None, bytes]]]:
        """Apply every item; while the schema registry does not answer, wait and apply the
        whole batch again (nothing is sent or stored before this returns, so a retry is
        clean): an event is never dead-lettered because the registry is unwell."""
        delay = 0.5
        while True:
            result = BatchResult()
            outbox: list[tuple[str, bytes | None, bytes]] = []
            now = now_ms()
            try:
                for message, handle in items:
                    self._apply_one(message, handle, now, result, outbox)
                return result, outbox
            except CodecError as exc:
                if exc.reason != "registry_unavailable":
                    raise
                log.warning(
                    "ledger: schema registry unavailable (%s); batch of %d events applied"
                    " again in %.1f s, nothing dead-lettered",
                    exc,
                    len(items),
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

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
            touched = result.touched.get(key)
            if touched is not None:
                state: SkuState | None = touched[0]
            else:
                stored = self.table.get(key)
                state = SkuState.from_bytes(stored) if stored is not None else None
            state, emitted = apply(state, event, self.config, now)
        except CodecError as exc:
            if exc.reason == "registry_unavailable":
                raise  # not the event's fault: the batch is applied again later
            self._dead(message, outbox, result, exc.reason, str(exc), event_id)
            _events("undecodable", "invalid").inc()
            return
        except InvalidEvent as exc:
            self._dead(message, outbox, result, exc.reason, str(exc), event_id)
            _events(str(event.get("type")), "invalid").inc()
            return
        if emitted.duplicate:
            result.duplicates += 1
            _events(event["type"], "duplicate").inc()
            return
        result.applied += 1
        result.touched[key] = (state, handle)
        _events(event["type"], "applied").inc()
        self._emit(key, event, emitted, outbox, now)

    def _emit(
        self,
        key: bytes,
        event: dict[str, Any],
        emitted: Any,
        outbox: list[tuple[str, bytes | None, bytes]],
        now: int,
    ) -> None:
        encode = self.codec.encode
        for movement in emitted.movements:
            outbox.append(
                (STOCK_MOVEMENTS.name, key, encode(STOCK_MOVEMENTS.value_schema, movement))
            )
        metrics.MOVEMENTS.inc(len(emitted.movements))
        if emitted.decision is not None:
            outbox.append(
                (STOCK_DECISIONS.name, key, encode(STOCK_DECISIONS.value_schema, emitted.decision))
            )
            _decisions(emitted.decision["outcome"]).inc()
            if self.on_decision is not None:
                self.on_decision(emitted.decision)
        for alert in emitted.alerts:
            outbox.append((STOCK_ALERTS.name, key, encode(STOCK_ALERTS.value_schema, alert)))
            _alerts(alert["kind"]).inc()
        if emitted.level is not None:
            outbox.append(
                (STOCK_LEVELS.name, key, encode(STOCK_LEVELS.value_schema, emitted.level))
            )
            metrics.LEVELS.inc()
            metrics.LATENCY.observe(max(0, now - event["occurred_at"]) / 1000)
        if event["type"] == "hold_released" and event.get("reason") == "expired":
            metrics.HOLDS_EXPIRED.inc()

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
