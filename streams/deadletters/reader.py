"""Read the dead-letter topic from end to end (or from ``--since``), filtered."""

from __future__ import annotations

import json
import re
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from schemas.codec import CodecError, codec_for
from schemas.times import iso, iso_to_ms, now_ms
from streams.kernel.kafka_config import consumer_config
from streams.kernel.settings import Settings
from streams.kernel.topics import STOCK_DEADLETTER

_AGO = re.compile(r"^(\d+)([smhd])$")
_UNIT_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


class FilterError(ValueError):
    """A filter the operator gave cannot be understood; the message says what to write."""


@dataclass(frozen=True)
class Filters:
    component: str | None = None
    reason: str | None = None
    since_ms: int | None = None
    topic: str | None = None

    @classmethod
    def parse(
        cls,
        *,
        component: str | None = None,
        reason: str | None = None,
        since: str | None = None,
        topic: str | None = None,
    ) -> Filters:
        return cls(component or None, reason or None, parse_since(since), topic or None)

    def match(self, letter: DeadLetter) -> bool:
        record = letter.record
        return (
            (self.component is None or record["component"] == self.component)
            and (self.reason is None or record["reason"] == self.reason)
            and (self.since_ms is None or int(record["at"]) >= self.since_ms)
            and (self.topic is None or record.get("topic") == self.topic)
        )


def parse_since(value: str | None, now: int | None = None) -> int | None:
    """Epoch ms from ``2026-11-29``, ``2026-11-29T10:00:00Z`` (UTC when no offset) or an age
    such as ``90s``, ``30m``, ``6h``, ``7d``."""
    if not value:
        return None
    text = value.strip()
    ago = _AGO.match(text)
    if ago:
        return (now if now is not None else now_ms()) - int(ago.group(1)) * _UNIT_MS[ago.group(2)]
    try:
        return iso_to_ms(text, naive_is_utc=True)
    except ValueError:
        raise FilterError(
            f"--since {value!r} is neither an ISO date or time (2026-11-29, "
            "2026-11-29T10:00:00Z) nor an age (90s, 30m, 6h, 7d)"
        ) from None


@dataclass(frozen=True)
class DeadLetter:
    partition: int  # coordinates in the dead-letter topic
    offset: int
    record: dict[str, Any]

    @property
    def origin(self) -> tuple[str | None, int | None, int | None]:
        return self.record.get("topic"), self.record.get("partition"), self.record.get("offset")


def read_dead_letters(settings: Settings, filters: Filters) -> list[DeadLetter]:
    """Every dead letter now in the topic that matches ``filters``, oldest first per
    partition; unreadable dead letters are reported on stderr and skipped."""
    return list(_read(settings, filters))


def _read(settings: Settings, filters: Filters) -> Iterator[DeadLetter]:
    codec = codec_for(settings)
    consumer = Consumer(consumer_config(settings, f"stockflow-deadletters-{uuid.uuid4().hex}"))
    try:
        topic = STOCK_DEADLETTER.name
        meta = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if meta is None or meta.error is not None or not meta.partitions:
            return
        parts = [TopicPartition(topic, p) for p in sorted(meta.partitions)]
        ends = {tp.partition: consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in parts}
        starts = _starts(consumer, parts, ends, filters.since_ms)
        todo = {p for p in ends if starts[p] < ends[p]}
        if not todo:
            return
        consumer.assign([TopicPartition(topic, p, starts[p]) for p in sorted(todo)])
        deadline = time.monotonic() + 300
        while todo and time.monotonic() < deadline:
            for message in consumer.consume(num_messages=1000, timeout=1.0):
                if message.error() is not None:
                    continue
                p, o = message.partition() or 0, message.offset() or 0
                if o >= ends[p]:
                    todo.discard(p)
                    continue
                if o + 1 >= ends[p]:
                    todo.discard(p)
                try:
                    record = codec.decode_as(STOCK_DEADLETTER.value_schema, message.value() or b"")
                except CodecError as exc:
                    print(
                        f"{topic}[{p}] offset={o}: unreadable dead letter: {exc}", file=sys.stderr
                    )
                    continue
                letter = DeadLetter(p, o, record)
                if filters.match(letter):
                    yield letter
            for tp in consumer.position([TopicPartition(topic, p) for p in list(todo)]):
                if tp.offset >= ends[tp.partition]:
                    todo.discard(tp.partition)
    finally:
        consumer.close()


def _starts(
    consumer: Consumer, parts: list[TopicPartition], ends: dict[int, int], since_ms: int | None
) -> dict[int, int]:
    """Where to start reading each partition: its first offset, or the first record produced
    after ``since_ms`` (less a minute: Kafka stamps a dead letter a moment after its ``at``)."""
    lows = {tp.partition: consumer.get_watermark_offsets(tp, timeout=10)[0] for tp in parts}
    if since_ms is None:
        return lows
    asked = [TopicPartition(tp.topic, tp.partition, max(0, since_ms - 60_000)) for tp in parts]
    starts: dict[int, int] = {}
    for tp in consumer.offsets_for_times(asked, timeout=10):
        found = tp.offset if tp.offset >= 0 else ends[tp.partition]  # -1: none that late
        starts[tp.partition] = max(found, lows[tp.partition])
    return starts


def print_letters(letters: list[DeadLetter], *, limit: int | None, as_json: bool) -> None:
    shown = letters if not limit else letters[-limit:]
    if as_json:
        for letter in shown:
            print(json.dumps(_jsonable(letter)))
    else:
        for letter in shown:
            r = letter.record
            print(
                f"{iso(int(r['at']))} {r['component']:<11} {r['reason']:<22}"
                f" {r.get('topic')}[{r.get('partition')}] offset={r.get('offset')}"
                f" event_id={r.get('event_id')} ({STOCK_DEADLETTER.name}[{letter.partition}]"
                f" offset={letter.offset}): {str(r['error'])[:160]}"
            )
    by: dict[tuple[str, str], int] = {}
    for letter in letters:
        k = (letter.record["component"], letter.record["reason"])
        by[k] = by.get(k, 0) + 1
    summary = ", ".join(f"{c}/{r} {n}" for (c, r), n in sorted(by.items()))
    print(f"{len(letters)} dead letters found{': ' + summary if summary else ''}", file=sys.stderr)


def _jsonable(letter: DeadLetter) -> dict[str, Any]:
    r = dict(letter.record)
    key, original = r.pop("key", None), r.pop("original", b"")
    return {
        "deadletter_partition": letter.partition,
        "deadletter_offset": letter.offset,
        **r,
        "at": iso(int(r["at"])),
        "key": key.decode(errors="replace") if key is not None else None,
        "original_bytes": len(original),
    }
