"""One bench run: raw loop, ledger throughput, latency, sink, memory and recovery."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Sequence

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from deploy.bench.config import FULL, QUICK, BenchConfig, BenchError
from deploy.bench.kafka import delete_app_topics, trim
from deploy.bench.latency import run_latency
from deploy.bench.ledger import memory_and_recovery, prepare, run_ledger
from deploy.bench.raw import raw_loop
from deploy.bench.sink_rate import run_sink_rate
from deploy.bench.state_size import run_state_size
from deploy.bench.table import Row, render, to_json
from deploy.bench.topics import RAW_OUT
from deploy.bench.workload import progress
from deploy.local.children import ChildError, WorkerProcess
from schemas.codec import Codec, codec_for
from streams.kernel.kafka_admin import ensure_topics
from streams.kernel.settings import Settings
from streams.kernel.topics import ALL_TOPICS

PARTS = ("raw", "ledger", "latency", "sink", "recovery", "state")


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
    try:
        AdminClient({"bootstrap.servers": settings.bootstrap}).list_topics(timeout=5)
    except KafkaException:
        raise BenchError(
            f"Kafka is not reachable at {settings.bootstrap}; start it with `stockflow stack up`"
        ) from None
    ensure_topics(settings)


def _worker(settings: Settings, config: BenchConfig, kind: str) -> WorkerProcess:
    app_id = f"bench-{kind}-{uuid.uuid4().hex[:8]}"
    return WorkerProcess(
        app_id,
        config.web_port,
        settings.state_dir / "logs",
        log_name=f"bench-{app_id}.log",
        STOCKFLOW_OFFSET_RESET="earliest",
    )


def _run(settings: Settings, codec: Codec, config: BenchConfig, parts: set[str]) -> list[Row]:
    rows: list[Row] = []
    raw: Row | None = None
    first: Row | None = None
    if parts & {"raw", "ledger", "recovery"}:
        for skus, events in config.ledger_runs:
            memory_run = (skus, events) == config.memory_run and "recovery" in parts
            if not memory_run and not parts & {"raw", "ledger"}:
                continue
            data = prepare(settings, codec, skus, events)
            if raw is None and "raw" in parts:
                raw = raw_loop(settings, data.start, data.events, config.worker_timeout)
                rows.append(raw)
            if not memory_run and "ledger" not in parts:
                continue
            worker = _worker(settings, config, "ledger")
            try:
                row = run_ledger(settings, data, config, worker)
                rows.append(row)
                first = first or row
                if memory_run:
                    rows.extend(memory_and_recovery(settings, data, worker))
            finally:
                worker.stop()
                delete_app_topics(settings, worker.app_id)
    if raw is not None and first is not None and raw.value and first.value:
        ratio = 100 * first.value / raw.value
        rows.insert(
            rows.index(first) + 1,
            Row(
                "ledger / raw loop",
                ratio,
                "%",
                "≥ 25",
                first.measure,
                {"verdict": "yes" if ratio >= 25 else "no"},
            ),
        )
    if "latency" in parts:
        worker = _worker(settings, config, "latency")
        try:
            rows.extend(run_latency(settings, codec, config, worker))
        finally:
            worker.stop()
            delete_app_topics(settings, worker.app_id)
    if "sink" in parts:
        rows.append(run_sink_rate(settings, codec, config.sink_rows, config.worker_timeout))
    if "state" in parts:
        rows.append(run_state_size())
    if parts & {"raw", "ledger", "recovery", "latency", "sink"}:
        names = [RAW_OUT.name, *(t.name for t in ALL_TOPICS if t.cleanup_policy == "delete")]
        trim(settings, names)
        progress(f"trimmed the bench's records from {', '.join(names)}")
    progress("done")
    return rows
