"""Every PromQL expression of the Grafana dashboards, run against a real Prometheus scrape."""

from __future__ import annotations

import dataclasses
import json
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deploy.local.prometheus import Prometheus
from schemas.codec import single_object_codec
from streams.settings import Settings
from tests.support.kafka import produce_events, produce_raw, stock_event
from tests.support.worker import WorkerProcess

pytestmark = pytest.mark.integration

DASHBOARDS = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "dashboards"
WORKER_PORT = 16074


def expressions() -> list[tuple[str, str, str]]:
    """(dashboard, panel title, expr) for every target of every dashboard."""
    found = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        board = json.loads(path.read_text())
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                found.append((path.name, panel["title"], target["expr"]))
    return found


def test_the_dashboards_have_expressions_to_check() -> None:
    """Given the provisioned dashboards, when read, then they hold PromQL to verify."""
    assert len(expressions()) >= 10


@pytest.fixture(scope="module")
def scraped(local_stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A worker that processed a realistic mix, scraped by a Prometheus of its own."""
    state = tmp_path_factory.mktemp("prom")
    settings = dataclasses.replace(
        local_stack, state_dir=state, prometheus_port=19490, worker_web_port=WORKER_PORT
    )
    prometheus = Prometheus(settings, scrape_interval="1s")
    prometheus.start()
    worker = WorkerProcess(f"dash-{uuid.uuid4().hex[:8]}", WORKER_PORT, state)
    worker.start()
    try:
        _drive(local_stack, worker)
        yield prometheus.url
    finally:
        worker.stop()
        prometheus.stop()


def _drive(settings: Settings, worker: WorkerProcess) -> None:
    """Counts, orders beyond stock, cancels, a discrepancy, a hold that expires, bad records,
    spread over several scrapes so rates and histograms have data."""
    codec = single_object_codec()
    sku = f"dash-{uuid.uuid4().hex[:6]}"
    now = int(time.time() * 1000)
    produce_events(
        settings, codec, [stock_event(f"{sku}-c0", "stock_count", sku, 5, location="default")]
    )
    status, _ = worker.post("/v1/holds", {"sku": sku, "qty": 1, "channel": "web", "ttl_seconds": 1})
    assert status == 202
    for round_ in range(8):
        events = [
            stock_event(
                f"{sku}-o{round_}-{i}",
                "order_placed",
                sku,
                1,
                channel="web",
                order_id=f"o{round_}-{i}",
            )
            for i in range(4)
        ]
        events.append(
            stock_event(f"{sku}-x{round_}", "order_cancelled", sku, 0, order_id=f"o{round_}-0")
        )
        events.append(stock_event(f"{sku}-r{round_}", "receipt", sku, 2, location="default"))
        produce_events(settings, codec, events)
        produce_events(settings, codec, events[:1])  # a redelivery
        produce_raw(settings, [(sku.encode(), b"\x00garbage")])
        time.sleep(1.5)
    produce_events(
        settings,
        codec,
        [stock_event(f"{sku}-c1", "stock_count", sku, 1, location="default", as_of=now + 60_000)],
    )
    time.sleep(4)


def _query(url: str, expr: str) -> dict[str, Any]:
    query = urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(f"{url}/api/v1/query?{query}", timeout=10) as answer:
        return json.loads(answer.read())


@pytest.mark.parametrize(("board", "title", "expr"), expressions())
def test_every_dashboard_query_returns_series_from_a_real_scrape(
    scraped: str, board: str, title: str, expr: str
) -> None:
    """Given Prometheus scraping a worker that processed events,
    when a dashboard's PromQL runs against its HTTP API,
    then the query is valid and returns at least one series."""
    answer = _query(scraped, expr)
    assert answer["status"] == "success", answer
    assert answer["data"]["result"], f"{board} / {title}: no series for {expr}"
