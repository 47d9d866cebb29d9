"""Checks shared by the multi-worker fault tests: the group caught up (or evidence of a
stall), every SKU as the pure rules compute it, and the outputs against the rules' own."""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any

from streams.kernel.settings import Settings
from streams.kernel.topics import STOCK_EVENTS
from streams.ledger.state import SkuState
from tests.support.kafka import end_offsets
from tests.support.worker import WorkerProcess, state_mismatches

# fields of a movement / decision that the rules decide (not the time it was applied at)
MOVEMENT_FIELDS = (
    "event_id",
    "sku",
    "location",
    "type",
    "delta_on_hand",
    "delta_reserved",
    "delta_unsellable",
    "delta_incoming",
    "on_hand_after",
    "reserved_after",
    "unsellable_after",
)
DECISION_FIELDS = ("event_id", "sku", "order_id", "location", "qty", "outcome", "reason")
DECISION_FIELDS_FULL = (*DECISION_FIELDS, "available_before")


CRAWL_EVENTS = 100  # a partition behind by more, that applied fewer in ``stall_s``: a stall


def caught_up(
    settings: Settings,
    workers: list[WorkerProcess],
    group: str,
    *,
    stall_s: float = 60.0,
    limit_s: float = 900.0,
) -> None:
    """Wait until every worker is ready and ``group`` has committed every input record.
    Fails, with evidence (the group's assignment and offsets, each worker's log tail, a
    py-spy dump of each worker if py-spy is installed), when a partition behind by more than
    CRAWL_EVENTS committed fewer than that in ``stall_s`` (each worker applies hundreds of
    events a second even on a crowded machine: a partition crawling is stalled, not slow)."""
    began = time.monotonic()
    for worker in workers:
        worker.wait_ready(max(30.0, limit_s - (time.monotonic() - began)))
    history: list[tuple[float, dict[int, int]]] = []
    lags: dict[int, int] = {}
    while time.monotonic() - began < limit_s:
        committed, ends = partition_offsets(settings, group)
        lags = {p: ends[p] - committed[p] for p in ends}
        if not any(lags.values()):
            return
        now = time.monotonic()
        history.append((now, committed))
        old = [c for t, c in history if t <= now - stall_s]
        if old:
            crawling = {
                p: committed[p] - old[-1][p]
                for p, lag in lags.items()
                if lag > CRAWL_EVENTS and committed[p] - old[-1][p] < CRAWL_EVENTS
            }
            if crawling:
                raise AssertionError(
                    f"stall: group {group}, partitions (applied in the last {stall_s:.0f} s) "
                    f"{crawling} still behind by {[lags[p] for p in crawling]}\n"
                    f"{stall_evidence(settings, workers, group)}"
                )
        time.sleep(1.0)
    raise AssertionError(
        f"group {group} not caught up after {limit_s:.0f} s (lags {lags})\n"
        f"{stall_evidence(settings, workers, group)}"
    )


def partition_offsets(settings: Settings, group: str) -> tuple[dict[int, int], dict[int, int]]:
    """(committed offset, end offset) of every input partition for ``group``."""
    from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
    from confluent_kafka.admin import AdminClient

    ends = end_offsets(settings, STOCK_EVENTS.name)
    admin = AdminClient({"bootstrap.servers": settings.bootstrap})
    request = ConsumerGroupTopicPartitions(
        group, [TopicPartition(STOCK_EVENTS.name, p) for p in ends]
    )
    found = admin.list_consumer_group_offsets([request])[group].result()
    return {tp.partition: max(tp.offset, 0) for tp in found.topic_partitions}, ends


def stall_evidence(settings: Settings, workers: list[WorkerProcess], group: str) -> str:
    from confluent_kafka.admin import AdminClient

    lines = []
    try:
        committed, ends = partition_offsets(settings, group)
        lines.append(
            "committed/end: " + ", ".join(f"[{p}] {committed[p]}/{ends[p]}" for p in sorted(ends))
        )
        admin = AdminClient({"bootstrap.servers": settings.bootstrap})
        described = admin.describe_consumer_groups([group])[group].result(timeout=10)
        lines.append(f"group {group}: {described.state.name}")
        for m in described.members:
            parts = sorted(
                f"{tp.topic}[{tp.partition}]"
                for tp in (m.assignment.topic_partitions if m.assignment else [])
                if tp.topic == STOCK_EVENTS.name
            )
            lines.append(f"  member {m.member_id}: {parts}")
    except Exception as exc:
        lines.append(f"group {group}: not described ({exc})")
    spy = shutil.which("py-spy")
    for worker in workers:
        alive = worker.alive()
        lines.append(
            f"--- {worker.url} pid {worker.proc.pid if worker.proc else None} alive {alive}"
        )
        if spy and alive:
            dump = subprocess.run(
                [spy, "dump", "--pid", str(worker.pid)], capture_output=True, text=True, timeout=60
            )
            lines.append(dump.stdout[-6000:] or dump.stderr[-2000:])
        lines.append(worker.log_tail(30))
    return "\n".join(lines)


def stock_mismatches(
    workers: list[WorkerProcess], expected: dict[str, SkuState], timeout: float = 60
) -> list[tuple[str, str, Any, Any]]:
    """SKUs whose figures, read through the workers (any worker routes to the owner), differ
    from ``expected``; retried while a worker may still be recovering a partition."""
    deadline = time.monotonic() + timeout
    while True:
        found = []
        for i, (sku, state) in enumerate(expected.items()):
            got = None
            for k in range(len(workers)):  # a worker restarted last may be away
                worker = workers[(i + k) % len(workers)]
                got = worker.stock(sku) if worker.alive() else None
                if got is not None:
                    break
            found += state_mismatches(sku, state, got)
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(1.0)


@dataclass
class OutputChecks:
    records: int = 0  # output records read
    unique: int = 0  # distinct ids among them
    repeats: int = 0  # records sent again with the same content (a replay; downstream dedupes)
    lost: int = 0  # ids the rules emit, not on the topics
    doubled: int = 0  # ids on the topics with two different contents (applied twice)
    wrong: int = 0  # ids whose one content differs from the rules'
    unexpected: int = 0  # ids on the topics the rules never emit
    first_seen: list[dict[str, Any]] = field(default_factory=list)
    examples: list[Any] = field(default_factory=list)


def movement_or_decision_checks(
    movements: list[tuple[int, dict[str, Any]]],
    decisions: list[tuple[int, dict[str, Any]]],
    want_movements: dict[str, dict[str, Any]],
    want_decisions: dict[str, dict[str, Any]],
    *,
    decision_fields: tuple[str, ...] = DECISION_FIELDS_FULL,
) -> OutputChecks:
    """Movements and decisions read from the topics, against those the pure rules emit."""
    out = OutputChecks()
    for records, want, fields_, id_field in (
        (movements, want_movements, MOVEMENT_FIELDS, "movement_id"),
        (decisions, want_decisions, decision_fields, "decision_id"),
    ):
        seen: dict[str, list[tuple[Any, ...]]] = {}
        for _, record in records:
            content = tuple(record[f] for f in fields_)
            got = seen.setdefault(record[id_field], [])
            if not got:
                out.first_seen.append(record)
            if content in got:
                out.repeats += 1
            else:
                got.append(content)
        out.records += len(records)
        out.unique += len(seen)
        for id_, contents in seen.items():
            if len(contents) > 1:
                out.doubled += 1
                out.examples.append((id_, contents))
            rule = want.get(id_)
            if rule is None:
                out.unexpected += 1
                out.examples.append((id_, "not emitted by the rules", contents))
            elif tuple(rule[f] for f in fields_) not in contents:
                out.wrong += 1
                out.examples.append((id_, "rules:", tuple(rule[f] for f in fields_), contents))
        missing = [id_ for id_ in want if id_ not in seen]
        out.lost += len(missing)
        out.examples.extend(("lost", id_) for id_ in missing[:5])
    out.examples = out.examples[:10]
    return out
