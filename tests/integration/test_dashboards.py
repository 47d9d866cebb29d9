"""Every PromQL expression of the Grafana dashboards, run against a real Prometheus scrape."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from deploy.demo.counters import OutcomeCounter
from deploy.demo.day import Day
from deploy.demo.setup import (
    SHOPIFY_ITEM,
    SHOPIFY_LOCATION,
    SHOPIFY_VARIANT,
    WOO_PRODUCT,
    write_configs,
)
from deploy.demo.view import Board
from deploy.local.children import CONNECTORS_READY, WORKER_READY, ChildProcess
from deploy.local.credentials import operator_token, token_name
from deploy.local.prometheus import Prometheus
from streams.kernel.access.command import revoke
from streams.kernel.settings import Settings
from streams.kernel.topics import STOCK_LEVELS
from tests.support.kafka import produce_raw
from tests.support.ports import free_port
from tests.support.processes import track

pytestmark = pytest.mark.integration

DASHBOARDS = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "dashboards"
# Chosen when the day starts, not at collection: a port free minutes earlier may be taken.
PORTS: dict[str, int] = {}
DEAD_LETTERS_PANEL = "Dead letters by component and reason"
# What dead-letters the poison records of the day: the ledger reads stock.events.v1; the sink
# reads every output topic, stock.levels.v1 among them; the connectors read stock.levels.v1.
DEAD_LETTERING = ("ledger", "sink", "connectors")


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
    """Worker, sink and connectors through a scripted day, scraped by a Prometheus of its own."""
    state = tmp_path_factory.mktemp("dash")
    PORTS.update(
        {name: free_port() for name in ("worker", "sink", "connectors", "shopify", "woo", "prom")}
    )
    settings = dataclasses.replace(
        local_stack,
        state_dir=state,
        prometheus_port=PORTS["prom"],
        worker_web_port=PORTS["worker"],
        sink_metrics_port=PORTS["sink"],
        connectors_port=PORTS["connectors"],
    )
    run = uuid.uuid4().hex[:8]
    sku = f"dash-chair-{run}"
    ledger_config, connectors_config = write_configs(
        state, sku, run, shopify_port=PORTS["shopify"], woo_port=PORTS["woo"]
    )
    env = {
        "STOCKFLOW_CONFIG": str(ledger_config),
        "STOCKFLOW_CONNECTORS_CONFIG": str(connectors_config),
        "STOCKFLOW_APP_ID": f"dash-{run}",
        "STOCKFLOW_OFFSET_RESET": "latest",
        "STOCKFLOW_WORKER_WEB_PORT": str(PORTS["worker"]),
        "STOCKFLOW_SINK_METRICS_PORT": str(PORTS["sink"]),
        "STOCKFLOW_SINK_GROUP": f"dash-sink-{run}",
        "STOCKFLOW_CONNECTORS_PORT": str(PORTS["connectors"]),
        "STOCKFLOW_CLICKHOUSE_DATABASE": f"dash_{run}",
    }
    children = [
        ChildProcess(name, args, state / f"demo-{name}.log", env, on_spawn=track)
        for name, args in (
            ("worker", ["worker"]),
            ("sink", ["sink"]),
            ("connectors", ["connectors", "serve"]),
        )
    ]
    prometheus = Prometheus(settings, scrape_interval="1s")
    prometheus.start()
    try:
        for child in children:
            child.start()
        children[0].wait_serving(f"http://127.0.0.1:{PORTS['worker']}/health", 120, WORKER_READY)
        children[2].wait_serving(
            f"http://127.0.0.1:{PORTS['connectors']}/health", 60, CONNECTORS_READY
        )
        asyncio.run(_day(local_stack, sku))
        time.sleep(4)  # a few more scrapes after the last change
        _wait_for_dead_letters(prometheus.url, timeout=60)
        yield prometheus.url
    finally:
        for child in reversed(children):
            child.stop()
        prometheus.stop()
        revoke(settings, token_name(settings, "prometheus"))  # its scrape token dies with it


async def _day(settings: Settings, sku: str) -> None:
    """The demo's day, plus a checkout hold that expires and a few undecodable records: on
    the events topic (the ledger dead-letters them) and on the levels topic (the sink and the
    connectors, caught up by now, each dead-letter it)."""
    from connectors.testing.shopify import FakeShopify
    from connectors.testing.woocommerce import FakeWooCommerce

    receiver = f"http://127.0.0.1:{PORTS['connectors']}"
    shopify = FakeShopify(port=PORTS["shopify"], webhook_target=f"{receiver}/webhooks/shopify")
    woo = FakeWooCommerce(port=PORTS["woo"], webhook_target=f"{receiver}/webhooks/woocommerce")
    shopify.add_item(SHOPIFY_ITEM, SHOPIFY_VARIANT, sku, SHOPIFY_LOCATION, 0)
    woo.add_product(WOO_PRODUCT, sku, 0)
    worker = f"http://127.0.0.1:{PORTS['worker']}"
    counter = OutcomeCounter(settings, sku)
    token = operator_token(settings)
    try:
        async with shopify, woo:
            day = Day(worker, sku, shopify, woo, Board(), counter, token=token)
            auth = {"Authorization": f"Bearer {token}"}
            async with aiohttp.ClientSession(headers=auth) as http:
                hold = {"sku": sku, "qty": 1, "channel": "store", "ttl_seconds": 1}
                async with http.post(f"{worker}/v1/holds", json=hold) as answer:
                    assert answer.status == 202
            produce_raw(settings, [(sku.encode(), b"\x00garbage")] * 3)
            produce_raw(settings, [(sku.encode(), b"\x00garbage")], STOCK_LEVELS)
            await day.play()
    finally:
        counter.stop()


def _panel_expr(title: str) -> str:
    [expr] = [e for _, t, e in expressions() if t == title]
    return expr


def _dead_lettering(url: str) -> set[str]:
    """Components with a series in the dead-letter panel (a connector that dead-letters a
    push is labelled ``connector:<channel>``, a levels record it cannot read ``connectors``)."""
    result = _query(url, _panel_expr(DEAD_LETTERS_PANEL))["data"]["result"]
    return {series["metric"].get("component", "") for series in result}


def _wait_for_dead_letters(url: str, timeout: float) -> None:
    """Until the panel shows every component that dead-lettered (``increase`` needs two
    scrapes of a series); on timeout the test of the panel says which one is missing."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not set(DEAD_LETTERING) <= _dead_lettering(url):
        time.sleep(1)


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


@pytest.mark.parametrize("component", DEAD_LETTERING)
def test_the_dead_letter_panel_shows_the_dead_letters_of_each_component(
    scraped: str, component: str
) -> None:
    """Given undecodable records that the ledger, the sink and the connectors each
    dead-lettered, each process serving its own /metrics to Prometheus,
    when the PromQL of the panel "Dead letters by component and reason" runs,
    then it returns a series labelled with that component."""
    found = _dead_lettering(scraped)
    assert component in found, f"{DEAD_LETTERS_PANEL}: no series of {component}; got {found}"
