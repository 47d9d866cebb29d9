"""Servers that are up but unwell: a schema registry that does not answer, ClickHouse
read-only and then refusing the sink's credentials. The pipeline waits, alerts and resumes;
it dead-letters nothing, loses nothing and counts nothing twice.

Durations: ``STOCKFLOW_REGISTRY_FAULT_SECONDS`` (default 20), ``STOCKFLOW_READONLY_SECONDS``
(default 20), ``STOCKFLOW_AUTH_FAULT_SECONDS`` (default 10).
"""

from __future__ import annotations

import dataclasses
import io
import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import fastavro
import pytest

from deploy.local.registry import Registry
from schemas.codec import Codec, codec_for
from schemas.loader import historical_schemas
from schemas.registry import RegistryClient
from streams.kernel.settings import Settings
from streams.kernel.topics import STOCK_LEVELS, STOCK_MOVEMENTS
from streams.sink.metrics import SinkMetrics
from streams.sink.sink import SinkConfig
from streams.warehouse.clickhouse import connect
from tests.integration.sink_support import (
    drop_database,
    end_offsets,
    level,
    movement,
    produce,
    running_sink,
    scalar,
    set_group_offsets,
    sink_settings,
    wait_rows,
)
from tests.support.kafka import produce_events, stock_event, wait_for
from tests.support.ports import free_port
from tests.support.worker import WorkerProcess

pytestmark = [pytest.mark.integration, pytest.mark.faults]

REGISTRY_SECONDS = float(os.environ.get("STOCKFLOW_REGISTRY_FAULT_SECONDS", "12"))
READONLY_SECONDS = float(os.environ.get("STOCKFLOW_READONLY_SECONDS", "12"))
AUTH_SECONDS = float(os.environ.get("STOCKFLOW_AUTH_FAULT_SECONDS", "6"))
DAY0 = 1_794_960_000_000


def sample(metrics: SinkMetrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def sink_dead_letters(metrics: SinkMetrics) -> float:
    """Every dead letter the sink produced, whatever the reason."""
    return sum(
        s.value
        for family in metrics.registry.collect()
        if family.name == "stockflow_dead_letters"
        for s in family.samples
        if s.name == "stockflow_dead_letters_total"
    )


def distinct_and_raw(settings: Settings, prefix: str) -> tuple[int, int, int]:
    """(distinct movement ids, sum of their on_hand deltas, raw rows) of SKUs with ``prefix``."""
    db, mine = settings.clickhouse_database, {"p": prefix}
    where = "WHERE startsWith(sku, %(p)s)"
    distinct = scalar(
        settings, f"SELECT uniqExact(movement_id) FROM {db}.stock_movements {where}", mine
    )
    deltas = scalar(
        settings,
        f"SELECT sum(d) FROM (SELECT movement_id, any(delta_on_hand) AS d"
        f" FROM {db}.stock_movements {where} GROUP BY movement_id)",
        mine,
    )
    raw = scalar(settings, f"SELECT count() FROM {db}.stock_movements {where}", mine)
    return int(distinct), int(deltas), int(raw)


# -- the schema registry does not answer ---------------------------------------------------


@pytest.fixture
def frozen_registry(local_stack: Settings, registry_url: str) -> Iterator[Registry]:
    """The stack's registry, thawed after the test whatever happened."""
    registry = Registry(local_stack)
    try:
        yield registry
    finally:
        pid = registry.process.pid()
        if pid is not None:
            os.kill(pid, signal.SIGCONT)


def test_a_registry_that_does_not_answer_dead_letters_no_good_event(
    local_stack: Settings, registry_url: str, unique_name: str, frozen_registry: Registry
) -> None:
    """Given the ledger and events flowing in registry mode, when the schema registry stops
    answering (frozen: connections hang, like a registry under a long GC pause or a network
    partition) and a sink and the ledger are (re)started meanwhile, then both wait (the sink
    with its registry_unavailable alert raised), and once the registry answers again every
    event is applied once and is in ClickHouse once; nothing is dead-lettered."""
    settings = dataclasses.replace(
        sink_settings(local_stack, unique_name), schema_registry_url=registry_url
    )
    codec = codec_for(settings)
    codec.preload()  # producers that already run know their schema ids
    group = f"sink-{unique_name}"
    set_group_offsets(settings, group, end_offsets(settings))
    sku = f"reg-{unique_name}"
    worker = WorkerProcess(
        f"reg-{uuid.uuid4().hex[:8]}",
        free_port(),
        local_stack.state_dir / "logs",
        STOCKFLOW_SCHEMA_REGISTRY_URL=registry_url,
    )
    worker.start()
    try:
        # the ledger has read a record and written its outputs: it knows their schema ids
        produce_events(
            settings, codec, [stock_event(f"{sku}-warm", "receipt", sku, 1, location="main")]
        )
        wait_for(lambda: _on_hand(worker, sku) == 1, timeout=60, what="the warm-up receipt")
        per_second, seconds = 50, int(REGISTRY_SECONDS) + 10
        total = 1 + per_second * seconds
        produced = threading.Event()

        def stream() -> None:
            for s in range(seconds):
                events = [
                    stock_event(f"{sku}-{s}-{i}", "receipt", sku, 1, location="main")
                    for i in range(per_second)
                ]
                produce_events(settings, codec, events)
                time.sleep(1)
            produced.set()

        threading.Thread(target=stream, daemon=True).start()
        pid = frozen_registry.process.pid()
        assert pid is not None, "the registry is not running"
        time.sleep(2)
        os.kill(pid, signal.SIGSTOP)
        frozen_at = time.monotonic()
        config = SinkConfig(max_age=0.5, backoff_max=2.0)
        with running_sink(settings, codec_for(settings), group, config) as sink:
            # the ledger restarted meanwhile: it must ask the registry for the events' schema
            ledger_dead = _ledger_dead_letters(worker)
            worker.stop()
            worker.start()
            restarted_at = time.monotonic()
            until = max(frozen_at + REGISTRY_SECONDS, restarted_at + 12)  # > one 10 s timeout
            time.sleep(max(0.0, until - time.monotonic()))
            alerted = sample(sink.metrics, "stockflow_sink_paused", cause="registry_unavailable")
            os.kill(pid, signal.SIGCONT)
            thawed_at = time.monotonic()
            assert produced.wait(seconds + 60), "producer did not finish"
            try:
                wait_for(lambda: _on_hand(worker, sku) == total, timeout=240, what="every receipt")
            except AssertionError as exc:
                raise AssertionError(f"{exc}; worker log:\n{worker.log_tail(80)}") from None
            wait_rows(settings, "stock_movements", "sku = %(s)s", {"s": sku}, total, timeout=120)
            caught_up = time.monotonic()
            applied = _on_hand(worker, sku)
            outages = sample(
                sink.metrics, "stockflow_sink_outages_total", cause="registry_unavailable"
            )
            cleared = sample(sink.metrics, "stockflow_sink_paused", cause="registry_unavailable")
            sink_dead = sink_dead_letters(sink.metrics)
        ledger_dead += _ledger_dead_letters(worker)
        ledger_waits = worker.logged().count("schema registry unavailable")
    finally:
        worker.stop()
    distinct, deltas, raw = distinct_and_raw(settings, sku)
    drop_database(settings)
    print(
        f"\n[registry] frozen {thawed_at - frozen_at:.1f} s: {total} events, 1 sink start"
        f" waiting {outages:.0f} outage(s); applied {applied}/{total}; {distinct} movements"
        f" stored ({total - distinct} lost, {raw - distinct} replayed rows absorbed, 0 doubled:"
        f" sum of deltas {deltas}); dead letters: sink {sink_dead:.0f}, ledger"
        f" {ledger_dead:.0f}; ledger restarted while frozen waited {ledger_waits} time(s);"
        f" caught up {caught_up - thawed_at:.1f} s after"
    )
    assert alerted == 1 and outages >= 1 and cleared == 0
    assert sink_dead == 0 and ledger_dead == 0 and ledger_waits >= 1
    assert distinct == total and deltas == total


def _on_hand(worker: WorkerProcess, sku: str) -> int | None:
    stock = worker.stock(sku) or {}
    value = stock.get("locations", {}).get("main", {}).get("on_hand")
    return int(value) if value is not None else None


def _ledger_dead_letters(worker: WorkerProcess) -> float:
    total = 0.0
    for line in worker.metrics().splitlines():
        if line.startswith("stockflow_dead_letters_total{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


# -- ClickHouse read-only, then refusing the sink's credentials ----------------------------


@pytest.fixture
def users_xml(local_stack: Settings) -> Iterator[Path]:
    """The stack's ClickHouse users file (reloaded by the server within seconds of a change),
    restored after the test whatever happened."""
    path = local_stack.state_dir / "clickhouse" / "users.xml"
    original = path.read_text()
    try:
        yield path
    finally:
        path.write_text(original)
        time.sleep(3)


def test_clickhouse_read_only_then_refusing_credentials_dead_letters_nothing(
    local_stack: Settings, unique_name: str, users_xml: Path
) -> None:
    """Given a sink storing a steady stream of movements, when ClickHouse becomes read-only
    (readonly=1 in the users' profile: code 164 to every insert), then refuses the sink's
    password (code 193), then is well again, then the sink pauses with the cause as alert,
    dead-letters nothing, and every movement is in ClickHouse exactly once after. (The table
    is detached for a second at the start, as a restart would, so the sink logs in again.)"""
    settings = sink_settings(local_stack, unique_name)
    codec: Codec = codec_for(settings)
    group = f"sink-{unique_name}"
    set_group_offsets(settings, group, end_offsets(settings))
    sku = f"ro-{unique_name}"
    per_second, seconds = 200, int(READONLY_SECONDS + AUTH_SECONDS) + 10
    total = per_second * seconds
    produced = threading.Event()

    def stream() -> None:
        for s in range(seconds):
            batch = [
                (
                    STOCK_MOVEMENTS,
                    movement(
                        f"{sku}-{s}-{i}:0", f"{sku}-{i % 10}", "sale", -1, 0, DAY0 + s * 1000 + i
                    ),
                )
                for i in range(per_second)
            ]
            produce(settings, codec, batch)
            time.sleep(1)
        produced.set()

    original = users_xml.read_text()
    read_only = original.replace(
        "<profile>default</profile>", "<profile>readonly</profile>"
    ).replace("<profiles>", "<profiles><readonly><readonly>1</readonly></readonly>")
    wrong_password = original.replace("<password>", "<password>rotated-elsewhere")
    assert read_only != original and wrong_password != original
    config = SinkConfig(max_age=0.5, capacity=20_000, batch_rows=1_000, backoff_max=2.0)
    admin = connect(settings)  # a session opened before the switch keeps its write rights
    table = f"{settings.clickhouse_database}.stock_movements"
    with running_sink(settings, codec, group, config) as sink:
        threading.Thread(target=stream, daemon=True).start()
        wait_rows(settings, "stock_movements", "startsWith(sku, %(p)s)", {"p": sku}, 1)
        admin.execute("SELECT 1")
        users_xml.write_text(read_only)
        time.sleep(3)  # the server reloads its users file; new sessions are read-only
        down_at = time.monotonic()
        # An open session keeps the settings it logged in with: detach and attach the table
        # (as a restart would), so the sink's next insert fails and it logs in again.
        admin.execute(f"DETACH TABLE {table}")
        wait_for(
            lambda: sample(sink.metrics, "stockflow_sink_insert_retries_total") > 0,
            timeout=30,
            what="an insert into the detached table",
        )
        admin.execute(f"ATTACH TABLE {table}")
        time.sleep(max(0.0, READONLY_SECONDS - (time.monotonic() - down_at)))
        read_only_alert = sample(
            sink.metrics, "stockflow_sink_paused", cause="clickhouse_read_only"
        )
        users_xml.write_text(wrong_password)
        time.sleep(AUTH_SECONDS)
        auth_alert = sample(sink.metrics, "stockflow_sink_paused", cause="clickhouse_auth")
        users_xml.write_text(original)
        up_at = time.monotonic()
        admin.disconnect()
        assert produced.wait(seconds + 60), "producer did not finish"
        wait_rows(
            settings, "stock_movements", "startsWith(sku, %(p)s)", {"p": sku}, total, timeout=120
        )
        caught_up = time.monotonic()
        m = sink.metrics
        retries = sample(m, "stockflow_sink_insert_retries_total")
        outages = {
            cause: sample(m, "stockflow_sink_outages_total", cause=cause)
            for cause in ("clickhouse_read_only", "clickhouse_auth")
        }
        still = sample(m, "stockflow_sink_paused", cause="clickhouse_read_only") + sample(
            m, "stockflow_sink_paused", cause="clickhouse_auth"
        )
        dead = sink_dead_letters(m)
    distinct, deltas, raw = distinct_and_raw(settings, sku)
    drop_database(settings)
    print(
        f"\n[clickhouse] read-only {READONLY_SECONDS:.0f} s then wrong password"
        f" {AUTH_SECONDS:.0f} s ({up_at - down_at:.1f} s in all): {total} movements,"
        f" {retries:.0f} failed inserts retried (outages {outages}); {distinct} stored"
        f" ({total - distinct} lost, {raw - distinct} replayed rows absorbed, sum of deltas"
        f" {deltas}); {dead:.0f} dead letters; caught up {caught_up - up_at:.1f} s after"
    )
    assert read_only_alert == 1 and auth_alert == 1 and still == 0
    assert outages["clickhouse_read_only"] >= 1 and outages["clickhouse_auth"] >= 1
    assert retries > 0
    assert dead == 0
    assert distinct == total and deltas == -total


def test_a_record_whose_schema_the_sink_must_fetch_waits_for_the_registry(
    local_stack: Settings, registry_url: str, unique_name: str, frozen_registry: Registry
) -> None:
    """Given a running sink in registry mode and levels written by an older producer with a
    schema version the sink has not seen (so it must ask the registry for it), when the
    registry stops answering, then the sink holds that partition at the record with its
    registry_unavailable alert raised and dead-letters nothing; when the registry answers
    again, every level is stored once."""
    settings = dataclasses.replace(
        sink_settings(local_stack, unique_name), schema_registry_url=registry_url
    )
    codec = codec_for(settings)
    group = f"sink-{unique_name}"
    set_group_offsets(settings, group, end_offsets(settings))
    old = next(s for s in historical_schemas() if s.name == STOCK_LEVELS.value_schema)
    schema_id = RegistryClient(registry_url).register(old.name, old.json)
    sku = f"old-{unique_name}"

    def old_level(version: int) -> bytes:
        record = level(sku, version, {"web": version}, DAY0 + version)
        del record["changed_channels"], record["default_quantity"]
        buf = io.BytesIO()
        buf.write(b"\x00" + schema_id.to_bytes(4, "big"))
        fastavro.schemaless_writer(buf, old.parsed, record)
        return buf.getvalue()

    with running_sink(settings, codec_for(settings), group, SinkConfig(max_age=0.3)) as sink:
        produce(settings, codec, [(STOCK_LEVELS, level(f"{sku}-new", 1, {"web": 1}, DAY0))])
        wait_rows(settings, "stock_levels", "sku = %(s)s", {"s": f"{sku}-new"}, 1)
        pid = frozen_registry.process.pid()
        assert pid is not None, "the registry is not running"
        os.kill(pid, signal.SIGSTOP)
        frozen_at = time.monotonic()
        produce(
            settings, codec, [], raw=[(STOCK_LEVELS, sku.encode(), old_level(v)) for v in (1, 2, 3)]
        )
        wait_for(
            lambda: (
                sample(sink.metrics, "stockflow_sink_paused", cause="registry_unavailable") == 1
            ),
            timeout=60,
            what="the sink's registry alert",
        )
        time.sleep(max(0.0, REGISTRY_SECONDS - (time.monotonic() - frozen_at)))
        held = scalar(
            settings,
            f"SELECT count() FROM {settings.clickhouse_database}.stock_levels WHERE sku = %(s)s",
            {"s": sku},
        )
        os.kill(pid, signal.SIGCONT)
        thawed_at = time.monotonic()
        wait_rows(settings, "stock_levels", "sku = %(s)s", {"s": sku}, 3, timeout=120)
        caught_up = time.monotonic()
        retries = sample(sink.metrics, "stockflow_sink_insert_retries_total")
        cleared = sample(sink.metrics, "stockflow_sink_paused", cause="registry_unavailable")
        dead = sink_dead_letters(sink.metrics)
    stored = scalar(
        settings,
        f"SELECT uniqExact(version) FROM {settings.clickhouse_database}.stock_levels"
        " WHERE sku = %(s)s",
        {"s": sku},
    )
    drop_database(settings)
    print(
        f"\n[registry/sink] frozen {thawed_at - frozen_at:.1f} s: 3 levels of an unseen schema"
        f" version held ({held} stored meanwhile), {retries:.0f} reads retried; {stored}/3"
        f" stored after, {dead:.0f} dead letters; caught up {caught_up - thawed_at:.1f} s after"
    )
    assert held == 0 and dead == 0 and stored == 3 and cleared == 0
