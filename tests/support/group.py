"""Several ledger workers of one consumer group, for fault tests: who owns which partition
(sampled from the group coordinator), how long each partition stood without an owner, and
the ledger's output records read from given offsets."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from schemas.codec import Codec, CodecError
from streams.kernel.kafka_config import consumer_config
from streams.kernel.settings import Settings
from streams.kernel.topics import TopicSpec


@dataclass
class Sample:
    at: float  # time.monotonic()
    state: str  # the group's state: STABLE, PREPARING_REBALANCE, ...
    members: dict[str, set[int]]  # member id -> partitions of the topic assigned to it


@dataclass
class OwnershipSampler:
    """Samples the group's members and assignment every ``interval`` seconds in a thread,
    with confluent-kafka's ``AdminClient.describe_consumer_groups`` (the coordinator's view)."""

    settings: Settings
    group: str
    topic: str
    interval: float = 0.1
    samples: list[Sample] = field(default_factory=list)
    errors: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="ownership-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)

    def _run(self) -> None:
        admin = AdminClient({"bootstrap.servers": self.settings.bootstrap})
        while not self._stop.is_set():
            began = time.monotonic()
            try:
                found = admin.describe_consumer_groups([self.group], request_timeout=5)
                described = found[self.group].result()
                members = {
                    m.member_id: {
                        tp.partition
                        for tp in (m.assignment.topic_partitions if m.assignment else [])
                        if tp.topic == self.topic
                    }
                    for m in described.members
                }
                self.samples.append(Sample(began, described.state.name, members))
            except Exception:  # a coordinator moving or busy: that sample is missing
                self.errors += 1
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - began)))


def ownerless_episodes(
    samples: list[Sample], partitions: int, kills: list[float]
) -> dict[int, list[float]]:
    """Per partition, the lengths (s) of the stretches of samples in which no live member
    owned it: the group not STABLE, the partition assigned to nobody, or assigned to a member
    already killed. A killed member stays in the coordinator's view until its session times
    out; the member of a kill is the one that leaves the group next after it (each kill
    takes exactly one member away), and it counts as dead from the kill on."""
    last_seen: dict[str, float] = {}
    for s in samples:
        for member in s.members:
            last_seen[member] = s.at
    end = samples[-1].at if samples else 0.0
    departures = sorted((t, m) for m, t in last_seen.items() if t < end)
    dead_from: dict[str, float] = {}
    pending = sorted(kills)
    for left_at, member in departures:
        before = [k for k in pending if k <= left_at]
        if before:  # the latest kill before it left; a member that left on its own: none
            kill = before[-1]
            pending.remove(kill)
            dead_from[member] = kill
    episodes: dict[int, list[float]] = defaultdict(list)
    since: dict[int, float | None] = dict.fromkeys(range(partitions))
    for s in samples:
        for p in range(partitions):
            owned = s.state == "STABLE" and any(
                p in parts and not (m in dead_from and dead_from[m] <= s.at)
                for m, parts in s.members.items()
            )
            start = since[p]
            if not owned and start is None:
                since[p] = s.at
            elif owned and start is not None:
                episodes[p].append(s.at - start)
                since[p] = None
    for p, start in since.items():
        if start is not None:
            episodes[p].append(end - start)
    return dict(episodes)


def read_from(
    settings: Settings,
    codec: Codec,
    spec: TopicSpec,
    start: dict[int, int],
    keep: Callable[[dict[str, Any]], bool],
    idle: float = 5.0,
) -> list[tuple[int, dict[str, Any]]]:
    """(partition, record) of ``spec`` from the offsets ``start`` to the partitions' ends
    (as they are when reading begins), that ``keep`` selects; gives up ``idle`` s after the
    last record read."""
    consumer = Consumer(consumer_config(settings, f"test-reader-{time.time_ns()}"))
    try:
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(spec.name, p), timeout=10)[1]
            for p in start
        }
        todo = {p for p in start if ends[p] > start[p]}
        consumer.assign([TopicPartition(spec.name, p, start[p]) for p in todo])
        found: list[tuple[int, dict[str, Any]]] = []
        last = time.monotonic()
        while todo and time.monotonic() - last < idle:
            for msg in consumer.consume(num_messages=10_000, timeout=0.5):
                last = time.monotonic()
                p = msg.partition()
                if msg.error() is not None:
                    continue
                if msg.offset() + 1 >= ends[p]:
                    todo.discard(p)
                if msg.value() is None:
                    continue
                try:
                    _, record = codec.decode(msg.value())
                except CodecError:
                    continue  # poison records of other tests
                if keep(record):
                    found.append((p, record))
        if todo:
            raise AssertionError(f"{spec.name}: partitions {sorted(todo)} not read to their end")
        return found
    finally:
        consumer.close()


def router_owner(urls: list[str], table: str, key: str) -> str | None:
    """The URL of the worker owning SKU ``key`` as the first answering worker routes it: the
    ``X-Stockflow-Served-By`` header of its stock answer (404 for a SKU not yet applied names
    the owner too); None if none answers. ``table`` is the SKU table's (its only table)."""
    import urllib.error
    import urllib.request

    from deploy.local.credentials import operator_token
    from streams.kernel.settings import load
    from streams.worker.routing import SERVED_BY

    headers = {"Authorization": f"Bearer {operator_token(load())}"}
    for url in urls:
        request = urllib.request.Request(f"{url}/v1/stock/{key}", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=2) as answer:
                served = answer.headers.get(SERVED_BY)
        except urllib.error.HTTPError as exc:
            served = exc.headers.get(SERVED_BY)
        except (urllib.error.URLError, OSError):
            continue
        if served:
            return str(served).rstrip("/")
    return None
