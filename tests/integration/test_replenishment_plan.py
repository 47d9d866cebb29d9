"""Replenishment on the real stack: movements and purchase orders through the real sink into
ClickHouse, then `stockflow replenish plan` and `stockflow report purchasing` read them."""

from __future__ import annotations

import copy
import io
import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from schemas.codec import codec_for
from streams.cli import main
from streams.kernel.settings import Settings
from streams.kernel.topics import REPLENISHMENT_PROPOSALS, SINK_TOPICS, STOCK_MOVEMENTS
from streams.reports import run_report
from streams.sink.deadletters import Codec
from tests.integration.sink_support import (
    drop_database,
    end_offsets,
    movement,
    produce,
    running_sink,
    scalar,
    set_group_offsets,
    sink_settings,
    wait_rows,
)
from tests.unit.schema_samples import SAMPLES

pytestmark = pytest.mark.integration

DAY = 86_400_000


def ms(day: str) -> int:
    return int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp() * 1000)


def days(day: str) -> int:
    return ms(day) // DAY


def config_file(folder: Path) -> Path:
    path = folder / "stockflow.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "default_location": "paris-wh",
                "locations": [{"name": "paris-wh", "safety_stock": 1}, {"name": "lyon-store"}],
                "channels": [{"name": "web"}],
                "replenishment": {
                    "suppliers": [
                        {
                            "id": "acme",
                            "send_via": "email",
                            "email": "orders@acme.example",
                            "lead_time_days": 5,
                            "auto_send": {"max_total": 100000, "max_change_percent": 25},
                        }
                    ],
                    "items": [
                        {"sku": "chair", "supplier": "acme", "supplier_sku": "AC-CH",
                         "unit_cost": 2000, "pack_size": 6, "moq": 12},
                        {"sku": "table", "supplier": "acme", "unit_cost": 5000},
                    ],
                    "policies": [
                        {"sku": "chair", "location": "paris-wh", "kind": "min_max",
                         "min": 10, "max": 40},
                    ],
                    "default_policy": {"kind": "min_max", "min": 5, "max": 20},
                },
            }
        )
    )  # fmt: skip
    return path


def po(proposal_id: str, version: int, status: str, qty: int, received: int) -> dict[str, Any]:
    """A purchase order of chairs for paris-wh planned 2026-11-20, expected 2026-11-25."""
    record = copy.deepcopy(SAMPLES["stockflow.v1.Proposal"])
    [line] = record["lines"]
    line.update(qty=qty, proposed_qty=qty, received_qty=received)
    record.update(
        proposal_id=proposal_id,
        version=version,
        status=status,
        total=qty * line["unit_cost"],
        expected_on=days("2026-11-25"),
        created_at=ms("2026-11-20"),
        updated_at=ms("2026-11-20") + version,
    )
    return record


@pytest.fixture
def env(local_stack: Settings, unique_name: str) -> Iterator[tuple[Settings, Codec, str]]:
    """Its own ClickHouse database and consumer group, the group starting at the topics' end."""
    settings = sink_settings(local_stack, unique_name)
    group = f"sink-{unique_name}"
    set_group_offsets(settings, group, end_offsets(settings, SINK_TOPICS))
    try:
        yield settings, codec_for(settings), group
    finally:
        drop_database(settings)


def test_movements_and_purchase_orders_in_clickhouse_give_the_plan_and_the_purchasing_report(
    env: tuple[Settings, Codec, str],
    unique_name: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Given chair at paris-wh (safety stock 1): received 20, sold 17, 6 on a purchase order
    (that movement stored twice), table at paris-wh 50 on hand, chair at lyon-store 1; and on
    replenishment.proposals.v1 two purchase orders of chairs for paris-wh expected
    2026-11-25: PO-a (proposed, then sent, 30 units) and PO-b (proposed, sent, received 12
    of 12), and PO-c of 2 chairs for lyon-store, approved but not sent yet
    When the real sink stores them and `stockflow replenish plan --location paris-wh
    --format json --today 2026-11-30` runs
    Then one proposal PO-acme-paris-wh-20261130-1: chair available 2 + incoming 6 = 8 <=
    min 10, 32 to reach max 40, rounded to 36 (6 packs); last order 30 (PO-a is the last
    sent: PO-b was planned earlier), a 20 % change within 25 % and 720.00 EUR below
    1000.00 EUR: automatic; expected 2026-12-05. Without --location lyon-store's chair
    (1 + 2 unsent = 3 <= 5) gets 17 -> 18 (MOQ 12, packs of 6). purchase_orders holds the
    seven versions, and
    `report purchasing` lists PO-a open and late with 0 of 30 received, PO-b received 100 %."""
    settings, codec, group = env
    db = settings.clickhouse_database
    t0 = ms("2026-11-27")
    moves = [
        movement(f"r1-{unique_name}", "chair", "receipt", 20, 20, t0, None, "paris-wh"),
        movement(f"s1-{unique_name}", "chair", "sale", -17, 3, t0 + 1000, "web", "paris-wh"),
        {
            **movement(f"p1-{unique_name}", "chair", "purchase_ordered", 0, 3, t0 + 2000, None,
                       "paris-wh"),
            "delta_incoming": 6,
        },
        movement(f"r2-{unique_name}", "table", "receipt", 50, 50, t0, None, "paris-wh"),
        movement(f"r3-{unique_name}", "chair", "receipt", 1, 1, t0, None, "lyon-store"),
    ]  # fmt: skip
    moves.append(moves[2])  # a copy: incoming must still count 6
    older = po("PO-b", 1, "proposed", 12, 0)
    older.update(created_at=ms("2026-11-19"))
    orders = [
        po("PO-a", 1, "proposed", 30, 0),
        po("PO-a", 2, "sent", 30, 0),
        older,
        {**older, "version": 2, "status": "sent"},
        {**po("PO-b", 3, "received", 12, 12), "created_at": ms("2026-11-19")},
        {**po("PO-c", 1, "proposed", 2, 0), "location": "lyon-store"},
        {**po("PO-c", 2, "approved", 2, 0), "location": "lyon-store"},
    ]
    with running_sink(settings, codec, group):
        produce(settings, codec, [(STOCK_MOVEMENTS, m) for m in moves])
        produce(
            settings,
            codec,
            [],
            [
                (REPLENISHMENT_PROPOSALS, o["proposal_id"].encode(),
                 codec.encode(REPLENISHMENT_PROPOSALS.value_schema, o))
                for o in orders
            ],
        )  # fmt: skip
        wait_rows(settings, "stock_movements", "1", {}, len(moves))
        wait_rows(settings, "purchase_orders", "1", {}, len(orders))
        wait_rows(settings, "purchase_order_lines", "1", {}, len(orders))
    assert scalar(settings, f"SELECT count() FROM {db}.purchase_orders") == len(orders)

    monkeypatch.setenv("STOCKFLOW_CONFIG", str(config_file(tmp_path)))
    monkeypatch.setenv("STOCKFLOW_CLICKHOUSE_DATABASE", db)
    capsys.readouterr()
    today = ["--today", "2026-11-30", "--format", "json"]
    assert main(["replenish", "plan", "--location", "paris-wh", *today]) == 0
    [proposal] = json.loads(capsys.readouterr().out)
    with capsys.disabled():
        print(f"\n[plan] {json.dumps(proposal)}")
    assert proposal["proposal_id"] == "PO-acme-paris-wh-20261130-1"
    assert (proposal["auto"], proposal["review_reason"]) == (True, None)
    assert (proposal["total"], proposal["expected_on"]) == (72000, "2026-12-05")
    [line] = proposal["lines"]
    assert (line["sku"], line["qty"], line["available"], line["incoming"]) == ("chair", 36, 2, 6)
    assert line["last_order_qty"] == 30
    assert line["reason"] == (
        "available 2 + incoming 6 = 8 <= min 10: order up to max 40 -> 32,"
        " rounded to 36 (packs of 6)"
    )

    capsys.readouterr()
    assert main(["replenish", "plan", *today]) == 0
    lyon = {p["location"]: p for p in json.loads(capsys.readouterr().out)}["lyon-store"]
    assert [(x["sku"], x["incoming"], x["qty"]) for x in lyon["lines"]] == [("chair", 2, 18)]

    out = io.StringIO()
    assert run_report(settings, "purchasing", "json", {"since": "2026-11-01"}, out=out) == 0
    report = {r["proposal_id"]: r for r in json.loads(out.getvalue())}
    with capsys.disabled():
        print(f"[report] {report}")
    assert report["PO-a"]["status"] == "sent" and report["PO-a"]["days_late"] > 0
    assert (report["PO-a"]["ordered"], report["PO-a"]["received"]) == (30, 0)
    assert report["PO-b"]["status"] == "received" and report["PO-b"]["received_pct"] == 100.0


def test_replenish_plan_says_when_clickhouse_or_the_configuration_is_wrong(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Given a valid configuration and a port where no ClickHouse listens
    When `stockflow replenish plan` runs / Then exit 1 naming the address and the fix;
    given a pack size of -6 / Then exit 1 naming the key path."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = config_file(tmp_path)
    monkeypatch.setenv("STOCKFLOW_CONFIG", str(config))
    monkeypatch.setenv("STOCKFLOW_CLICKHOUSE_PORT", str(port))
    assert main(["replenish", "plan"]) == 1
    err = capsys.readouterr().err
    assert f"ClickHouse at 127.0.0.1:{port} is not answering" in err and "stack up" in err
    raw = yaml.safe_load(config.read_text())
    raw["replenishment"]["items"][0]["pack_size"] = -6
    config.write_text(yaml.safe_dump(raw))
    assert main(["replenish", "plan"]) == 1
    assert "replenishment.items[0].pack_size: -6 is below 1" in capsys.readouterr().err


def test_a_reorder_point_plan_forecasts_from_the_sales_in_clickhouse(
    env: tuple[Settings, Codec, str],
    unique_name: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Given lamp at paris-wh: 130 received 28 days ago, then 4 sold every day (18 left, 17
    available: the location keeps 1 as safety stock), a reorder_point policy (95 %), a
    supplier with 5 days of lead time and packs of 1
    When the real sink stores the movements and `stockflow replenish plan` runs
    Then the lamp's line comes from a forecast of about 4 a day: about 20 over the lead time,
    17 <= the reorder point, and the order brings the position to about 24 + safety stock."""
    settings, codec, group = env
    today = "2026-11-30"
    start = ms(today) - 28 * DAY
    moves = [movement(f"r-{unique_name}", "lamp", "receipt", 130, 130, start, None, "paris-wh")]
    for day in range(28):
        at = start + day * DAY + 3_600_000
        moves.append(
            movement(f"s{day}-{unique_name}", "lamp", "sale", -4, 126 - 4 * day, at, "web",
                     "paris-wh")
        )  # fmt: skip
    with running_sink(settings, codec, group):
        produce(settings, codec, [(STOCK_MOVEMENTS, m) for m in moves])
        wait_rows(settings, "stock_movements", "1", {}, len(moves))
    path = config_file(tmp_path)
    raw = yaml.safe_load(path.read_text())
    raw["replenishment"]["items"].append({"sku": "lamp", "supplier": "acme", "unit_cost": 100})
    raw["replenishment"]["policies"].append(
        {"sku": "lamp", "kind": "reorder_point", "service_level": 0.95}
    )
    path.write_text(yaml.safe_dump(raw))
    monkeypatch.setenv("STOCKFLOW_CONFIG", str(path))
    monkeypatch.setenv("STOCKFLOW_CLICKHOUSE_DATABASE", settings.clickhouse_database)
    capsys.readouterr()
    assert main(["replenish", "plan", "--today", today, "--format", "json"]) == 0
    [proposal] = json.loads(capsys.readouterr().out)
    [line] = proposal["lines"]
    with capsys.disabled():
        print(f"\n[plan] {line}")
    assert (line["sku"], line["policy"], line["available"]) == ("lamp", "reorder_point", 17)
    assert line["forecast_method"] is not None
    assert 18 <= line["forecast_lead_time"] <= 22
    assert 24 - 2 + line["safety_stock"] <= 17 + line["qty"] <= 24 + 2 + line["safety_stock"]
