"""The ClickHouse sink against the real local stack: Kafka output topics in, ClickHouse rows out."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from schemas.codec import codec_for
from streams.kernel.settings import Settings
from streams.kernel.topics import (
    STOCK_ALERTS,
    STOCK_DEADLETTER,
    STOCK_DECISIONS,
    STOCK_LEVELS,
    STOCK_MOVEMENTS,
    TopicSpec,
)
from streams.reports.period import Period
from streams.reports.queries import Filters, best_sellers, channel_availability, turnover
from streams.sink.deadletters import Codec
from streams.sink.sink import SinkConfig
from streams.warehouse.clickhouse import connect
from streams.warehouse.migrations import migrate
from streams.warehouse.schema import MIGRATIONS
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
from tests.support.kafka import group_lag, read_topic, wait_for

pytestmark = pytest.mark.integration

H = 3_600_000
DAY0 = 1_794_960_000_000  # 2026-11-18T00:00:00Z


@pytest.fixture
def env(local_stack: Settings, unique_name: str) -> Iterator[tuple[Settings, Codec, str]]:
    """Its own ClickHouse database and consumer group, the group starting at the topics' end."""
    settings = sink_settings(local_stack, unique_name)
    group = f"sink-{unique_name}"
    set_group_offsets(settings, group, end_offsets(settings))
    try:
        yield settings, codec_for(settings), group
    finally:
        drop_database(settings)


def test_migrations_run_twice_create_the_schema_once(env: tuple[Settings, Codec, str]) -> None:
    """Given an empty server, when the migrations run twice, then the first run applies
    every version, the second applies none, and the contract tables exist."""
    settings, _, _ = env
    db = settings.clickhouse_database
    client = connect(settings)
    try:
        assert migrate(client, db) == sorted(m.version for m in MIGRATIONS)
        assert migrate(client, db) == []
        tables = {t for (t,) in client.execute(f"SHOW TABLES FROM {db}")}
        versions = client.execute(f"SELECT version FROM {db}.schema_migrations FINAL")
    finally:
        client.disconnect()
    assert {
        "stock_movements",
        "stock_levels",
        "decisions",
        "alerts",
        "audit",
        "daily_sales",
        "daily_location_movements",
        "schema_migrations",
        "orders",
        "order_lines",
        "order_transitions",
    } <= tables
    assert sorted(v for (v,) in versions) == sorted(m.version for m in MIGRATIONS)


def test_a_database_made_before_lots_gains_the_lot_column(
    env: tuple[Settings, Codec, str],
) -> None:
    """Given a database migrated to version 3 (no lot) holding a movement,
    When the lot migration's statement has run but was not recorded (a crash between the
    two) and the migrations run,
    Then version 4 is applied again without error (with the later ones), stock_movements
    has a nullable lot, and the old row reads it as null."""
    settings, _, _ = env
    db = settings.clickhouse_database
    client = connect(settings)
    try:
        assert migrate(client, db, MIGRATIONS[:3]) == [1, 2, 3]
        client.execute(
            f"INSERT INTO {db}.stock_movements (movement_id, event_id, sku, location, channel,"
            " type, delta_on_hand, delta_reserved, delta_unsellable, delta_incoming,"
            " on_hand_after, reserved_after, unsellable_after, occurred_at, occurred_at_ms,"
            " applied_at, applied_at_ms, kafka_partition, kafka_offset, ver) VALUES",
            [("m:0", "m", "old", "wh", "", "receipt", 1, 0, 0, 0, 1, 0, 0,
              DAY0 // 1000, DAY0, DAY0 // 1000, DAY0, 0, 0, 1)],
        )  # fmt: skip
        for statement in MIGRATIONS[3].statements:  # applied, then a crash: not recorded
            client.execute(statement.format(db=db))
        assert migrate(client, db) == [m.version for m in MIGRATIONS[3:]]
        columns = dict(
            (name, kind)
            for name, kind, *_ in client.execute(f"DESCRIBE TABLE {db}.stock_movements")
        )
        lots = client.execute(f"SELECT lot FROM {db}.stock_movements WHERE sku = 'old'")
    finally:
        client.disconnect()
    assert columns["lot"] == "Nullable(String)"
    assert lots == [(None,)]


def _day_of(sku: str) -> list[tuple[TopicSpec, dict[str, Any]]]:
    """A receipt of 10, three sales on two channels, a shipped order, a count discrepancy;
    levels for web going to 0 at hour 12; one decision and one alert."""
    m = [
        movement(f"{sku}-r:0", sku, "receipt", +10, 10, DAY0 + 1 * H, channel=None),
        movement(f"{sku}-s1:0", sku, "sale", -2, 8, DAY0 + 2 * H, channel="web"),
        movement(f"{sku}-s2:0", sku, "sale", -1, 7, DAY0 + 3 * H, channel="amazon"),
        movement(f"{sku}-o1:1", sku, "order_shipped", -3, 4, DAY0 + 4 * H, channel="web"),
        movement(f"{sku}-c:0", sku, "discrepancy", -1, 3, DAY0 + 5 * H, channel=None),
    ]
    levels = [
        level(sku, 1, {"web": 10, "amazon": 10}, DAY0 + 1 * H),
        level(sku, 2, {"web": 3, "amazon": 3}, DAY0 + 5 * H),
        level(sku, 3, {"web": 0, "amazon": 3}, DAY0 + 12 * H),
    ]
    decision = {
        "decision_id": f"{sku}-o1",
        "event_id": f"{sku}-o1",
        "sku": sku,
        "order_id": "A-1",
        "channel": "web",
        "location": "wh1",
        "qty": 3,
        "outcome": "accepted",
        "reason": None,
        "available_before": 7,
        "occurred_at": DAY0 + 3 * H,
        "at": DAY0 + 3 * H,
    }
    alert = {
        "alert_id": f"{sku}-x:out_of_stock:web",
        "kind": "out_of_stock",
        "sku": sku,
        "location": None,
        "channel": "web",
        "value": 0,
        "threshold": 0,
        "message": f"{sku} sells 0 on web",
        "event_id": f"{sku}-x",
        "at": DAY0 + 12 * H,
    }
    return (
        [(STOCK_MOVEMENTS, r) for r in m]
        + [(STOCK_LEVELS, r) for r in levels]
        + [(STOCK_DECISIONS, decision), (STOCK_ALERTS, alert)]
    )


def test_duplicates_and_a_replay_after_restart_are_counted_once_by_the_reports(
    env: tuple[Settings, Codec, str], unique_name: str
) -> None:
    """Given a day of movements, levels, a decision and an alert, each produced twice, when
    the sink stores them, is stopped, its group rewound (a restart that replays uncommitted
    offsets) and run again, then ClickHouse holds 4 copies of each record, yet the reports
    count each once: 6 units sold, 3 on hand (= sum of deltas), web out of stock 12 h."""
    settings, codec, group = env
    sku = f"chair-{unique_name}"
    start = end_offsets(settings)
    records = _day_of(sku)
    produce(settings, codec, records + records)
    db = settings.clickhouse_database
    with running_sink(settings, codec, group):
        wait_rows(settings, "stock_movements", "sku = %(sku)s", {"sku": sku}, 10)
        wait_rows(settings, "stock_levels", "sku = %(sku)s", {"sku": sku}, 2 * 3 * 3)
        wait_rows(settings, "alerts", "sku = %(sku)s", {"sku": sku}, 2)
        wait_rows(settings, "decisions", "sku = %(sku)s", {"sku": sku}, 2)
    set_group_offsets(settings, group, start)  # the replay a crash before commit causes
    with running_sink(settings, codec, group):
        wait_rows(settings, "stock_movements", "sku = %(sku)s", {"sku": sku}, 20)
        wait_rows(settings, "alerts", "sku = %(sku)s", {"sku": sku}, 4)
        wait_for(
            lambda: group_lag(settings, group, STOCK_ALERTS.name) == 0,
            timeout=30,
            what="the sink to commit the replay",
        )

    p = {"sku": sku}
    assert (
        scalar(settings, f"SELECT count() FROM {db}.stock_movements WHERE sku = %(sku)s", p) == 20
    )
    on_hand = scalar(
        settings,
        f"SELECT sum(d) FROM (SELECT movement_id, any(delta_on_hand)"
        f" AS d FROM {db}.stock_movements WHERE sku = %(sku)s"
        " GROUP BY movement_id)",
        p,
    )
    assert on_hand == 3

    client = connect(settings)
    try:
        period = Period(DAY0, DAY0 + 24 * H)
        only = Filters(sku=sku)
        [(rank, _, units, orders, channels)] = best_sellers(client, db, period, only).rows
        assert (rank, units, orders, channels) == (1, 6, 3, 2)
        [(_, sold, opening, closing, _)] = turnover(client, db, period, only).rows
        assert (sold, opening, closing) == (6, 0, 3)
        avail = {row[1]: row for row in channel_availability(client, db, period, only).rows}
        # web: unknown until 01:00, in stock 01:00-12:00, out 12:00-24:00
        assert avail["web"][2:7] == (11.0, 12.0, 1.0, round(100 * 11 / 23, 2), 1)
        assert avail["amazon"][2:5] == (23.0, 0.0, 1.0)
        [(trend_units,)] = client.execute(
            f"SELECT sum(units) FROM (SELECT movement_id, any(units) AS units"
            f" FROM {db}.daily_sales WHERE sku = %(sku)s GROUP BY movement_id)",
            p,
        )
        assert trend_units == 6
    finally:
        client.disconnect()


def test_a_poison_record_goes_to_the_dead_letter_topic_and_the_good_ones_land(
    env: tuple[Settings, Codec, str], unique_name: str
) -> None:
    """Given a good movement, bytes no codec reads, a movement whose time ClickHouse cannot
    store, and another good movement, when the sink runs, then both bad records reach the
    dead-letter topic with their reason and offsets, both good ones land, and the sink
    commits past all four."""
    settings, codec, group = env
    sku = f"lamp-{unique_name}"
    garbage = f"not avro {unique_name}".encode()
    bad_time = movement(f"{sku}-bad:0", sku, "sale", -1, 0, DAY0)
    bad_time["occurred_at"] = 2**62
    with running_sink(settings, codec, group):
        produce(
            settings,
            codec,
            [(STOCK_MOVEMENTS, movement(f"{sku}-a:0", sku, "receipt", 5, 5, DAY0, channel=None))],
        )
        produce(settings, codec, [], raw=[(STOCK_MOVEMENTS, sku.encode(), garbage)])
        produce(settings, codec, [(STOCK_MOVEMENTS, bad_time)])
        produce(
            settings,
            codec,
            [(STOCK_MOVEMENTS, movement(f"{sku}-b:0", sku, "sale", -1, 4, DAY0 + H))],
        )
        wait_rows(settings, "stock_movements", "sku = %(sku)s", {"sku": sku}, 2)
        wait_for(
            lambda: group_lag(settings, group, STOCK_MOVEMENTS.name) == 0,
            timeout=30,
            what="the sink to commit past the poison records",
        )
    dead = read_topic(
        settings,
        codec,
        STOCK_DEADLETTER,
        lambda r: (
            r["component"] == "sink" and (r["original"] == garbage or r["event_id"] == f"{sku}-bad")
        ),
        until=lambda found: len(found) >= 2,
        timeout=30,
    )
    try:
        codec.decode(garbage)
    except ValueError as exc:  # the codec's CodecError names why it could not read it
        codec_reason = getattr(exc, "reason", "undecodable")
    reasons = {("garbage" if d["original"] == garbage else "bad time"): d["reason"] for d in dead}
    assert reasons == {"garbage": codec_reason, "bad time": "bad_time"}
    assert all(d["topic"] == STOCK_MOVEMENTS.name and d["offset"] is not None for d in dead)
    db = settings.clickhouse_database
    ids = scalar(
        settings,
        f"SELECT groupArray(movement_id) FROM (SELECT movement_id FROM"
        f" {db}.stock_movements WHERE sku = %(sku)s ORDER BY movement_id)",
        {"sku": sku},
    )
    assert ids == [f"{sku}-a:0", f"{sku}-b:0"]


def test_the_sink_stores_fifty_thousand_movements_and_reports_its_rate(
    env: tuple[Settings, Codec, str], unique_name: str
) -> None:
    """Given 50,000 movements over 100 SKUs already in Kafka, when a sink starts, then every
    one is in ClickHouse once, and the rate it reached is printed (figures, not adjectives)."""
    settings, codec, group = env
    n, skus = 50_000, 100
    prefix = f"bulk-{unique_name}"
    records = [
        (
            STOCK_MOVEMENTS,
            movement(
                f"{prefix}-{i}:0", f"{prefix}-{i % skus}", "sale", -1, -(i // skus) - 1, DAY0 + i
            ),
        )
        for i in range(n)
    ]
    produce(settings, codec, records)
    started = time.monotonic()
    with running_sink(settings, codec, group, SinkConfig(max_age=0.5)):
        wait_rows(
            settings, "stock_movements", "startsWith(sku, %(p)s)", {"p": prefix}, n, timeout=180
        )
        elapsed = time.monotonic() - started
    db = settings.clickhouse_database
    distinct = scalar(
        settings,
        f"SELECT uniqExact(movement_id) FROM {db}.stock_movements WHERE startsWith(sku, %(p)s)",
        {"p": prefix},
    )
    assert distinct == n
    print(
        f"\n[sink] {n} movements Kafka→ClickHouse in {elapsed:.1f} s ="
        f" {n / elapsed:,.0f} rows/s (includes start-up, group join"
        " and migrations)"
    )
