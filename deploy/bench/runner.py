"""One bench run: raw loop, bare Faust agent, ledger throughput (one and two workers),
latency, sale→channel, sink, memory and recovery, changelog bytes."""

from __future__ import annotations

import logging
import sys
import uuid
from collections.abc import Sequence

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from deploy.bench.config import FULL, QUICK, BenchConfig, BenchError
from deploy.bench.kafka import delete_app_topics, trim
from deploy.bench.latency import run_latency
from deploy.bench.ledger import Input, memory_and_recovery, prepare, run_bare, run_ledger
from deploy.bench.raw import raw_loop
from deploy.bench.sale import run_sale
from deploy.bench.sink_rate import run_sink_rate
from deploy.bench.state_size import run_state_size
from deploy.bench.table import Row, machine, render, to_json
from deploy.bench.topics import RAW_OUT
from deploy.bench.workload import progress
from deploy.local.children import ChildError, WorkerProcess, free_port
from schemas.codec import Codec, codec_for
from streams.kernel.kafka_admin import ensure_topics
from streams.kernel.kafka_config import admin_config
from streams.kernel.settings import Settings
from streams.kernel.topics import ALL_TOPICS

PARTS = ("raw", "bare", "ledger", "workers", "latency", "sale", "sink", "recovery", "state")
TWO_WORKERS_TARGET = 1.5


def run_bench(
    settings: Settings, *, quick: bool, as_json: bool, only: Sequence[str] = PARTS
) -> int:
    """Run the chosen parts, print the table (or JSON) on stdout; 0 when every part ran."""
    unknown = set(only) - set(PARTS)
    if unknown:
        print(
            f"stockflow bench: unknown part(s) {sorted(unknown)}; choose from {', '.join(PARTS)}",
            file=sys.stderr,
        )
        return 2
    config = QUICK if quick else FULL
    mode = "quick" if quick else "full"
    try:
        _check_stack(settings)
        rows = _run(settings, codec_for(settings), config, set(only))
    except (BenchError, ChildError) as exc:
        print(f"stockflow bench: {exc}", file=sys.stderr)
        return 1
    print(to_json(rows, mode) if as_json else render(rows, mode))
    return 0


def _check_stack(settings: Settings) -> None:
    quiet = logging.getLogger("stockflow.bench.probe")  # the probe's connection failures
    quiet.addHandler(logging.NullHandler())  # are the one message below, not a log flood
    quiet.propagate = False
    try:
        probe = AdminClient(admin_config(settings, logger=quiet, error_cb=lambda _error: None))
        probe.list_topics(timeout=5)
    except KafkaException:
        raise BenchError(
            f"Kafka is not reachable at {settings.bootstrap}; start it with `stockflow stack up`"
        ) from None
    ensure_topics(settings)


def _worker(settings: Settings, config: BenchConfig, kind: str) -> WorkerProcess:
    app_id = f"bench-{kind}-{uuid.uuid4().hex[:8]}"
    return WorkerProcess(
        app_id,
        free_port(),
        settings.state_dir / "logs",
        log_name=f"bench-{app_id}.log",
        STOCKFLOW_OFFSET_RESET="earliest",
    )


def _run(settings: Settings, codec: Codec, config: BenchConfig, parts: set[str]) -> list[Row]:
    rows: list[Row] = []
    raw: Row | None = None
    bare: Row | None = None
    first: Row | None = None
    if parts & {"raw", "bare", "ledger", "workers", "recovery"}:
        for skus, events in config.ledger_runs:
            memory_run = (skus, events) == config.memory_run and "recovery" in parts
            first_run = (skus, events) == config.ledger_runs[0]
            if not memory_run and not (
                "ledger" in parts or (first_run and parts & {"raw", "bare", "workers"})
            ):
                continue
            data = prepare(settings, codec, skus, events)
            if raw is None and "raw" in parts:
                raw = raw_loop(settings, data.start, data.events, config.worker_timeout)
                rows.append(raw)
            if bare is None and "bare" in parts:
                bare = run_bare(settings, data, config, settings.state_dir / "logs")
                rows.append(bare)
            single: Row | None = None
            if memory_run or "ledger" in parts or (first_run and "workers" in parts):
                worker = _worker(settings, config, "ledger")
                try:
                    single = run_ledger(settings, data, config, worker)
                    rows.append(single)
                    first = first or single
                    if memory_run:
                        rows.extend(memory_and_recovery(settings, data, worker))
                finally:
                    worker.stop()
                    delete_app_topics(settings, worker.app_id, worker.web_port)
            if first_run and "workers" in parts and single is not None:
                rows.extend(_two_workers(settings, config, data, single))
    if first is not None:
        for base, target in ((bare, 50), (raw, 10)):  # each inserted first: raw ends first
            if base is None or not base.value or not first.value:
                continue
            ratio = 100 * first.value / base.value
            rows.insert(
                rows.index(first) + 1,
                Row(
                    f"ledger / {base.measure.split(' (')[0]}",
                    ratio,
                    "%",
                    f"≥ {target}",
                    first.measure,
                    {"verdict": "yes" if ratio >= target else "no"},
                ),
            )
    if "latency" in parts:
        worker = _worker(settings, config, "latency")
        try:
            rows.extend(run_latency(settings, codec, config, worker))
        finally:
            worker.stop()
            delete_app_topics(settings, worker.app_id, worker.web_port)
    if "sale" in parts:
        rows.append(run_sale(settings, config))
    if "sink" in parts:
        rows.append(run_sink_rate(settings, codec, config.sink_rows, config.worker_timeout))
    if "state" in parts:
        rows.append(run_state_size())
    if parts & {"raw", "bare", "ledger", "workers", "recovery", "latency", "sale", "sink"}:
        names = [RAW_OUT.name, *(t.name for t in ALL_TOPICS if t.cleanup_policy == "delete")]
        trim(settings, names)
        progress(f"trimmed the bench's records from {', '.join(names)}")
    progress("done")
    return rows


def _two_workers(settings: Settings, config: BenchConfig, data: Input, one: Row) -> list[Row]:
    """Two worker processes in one consumer group on the same input as ``one`` (1 worker)."""
    first = _worker(settings, config, "pair")
    second = WorkerProcess(
        first.app_id,
        free_port(),
        settings.state_dir / "logs",
        log_name=f"bench-{first.app_id}-2.log",
        STOCKFLOW_OFFSET_RESET="earliest",
    )
    try:
        pair = run_ledger(settings, data, config, first, second)
    finally:
        first.stop()
        second.stop()
        delete_app_topics(settings, first.app_id, first.web_port, second.web_port)
    rows = [pair]
    if pair.value and one.value:
        ratio = pair.value / one.value
        rows.append(
            Row(
                "two workers / one worker",
                ratio,
                "×",
                f"≥ {TWO_WORKERS_TARGET}",
                f"{pair.value:,.0f} / {one.value:,.0f} events/s, {machine()['cpus']} CPUs",
                {"verdict": "yes" if ratio >= TWO_WORKERS_TARGET else "no"},
            )
        )
    return rows
