"""Three workers of one group: any of them answers for every SKU and every order, with its
owner's figures."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from schemas.codec import single_object_codec
from streams.kernel.settings import Settings
from streams.kernel.topics import ORDERS, STOCK_DECISIONS, STOCK_EVENTS
from streams.worker.app import TABLE_NAME
from streams.worker.routing import FORWARDED
from tests.integration.sink_support import end_offsets, set_group_offsets
from tests.support.group import router_owner
from tests.support.kafka import produce_events, stock_event, wait_for
from tests.support.ports import free_port
from tests.support.worker import WorkerProcess

pytestmark = pytest.mark.integration

WORKERS = 3
SKUS = int(os.environ.get("STOCKFLOW_ROUTING_SKUS", "48"))
ORDERS_ASKED = int(os.environ.get("STOCKFLOW_ROUTING_ORDERS", "12"))


@pytest.fixture
def workers(local_stack: Settings, tmp_path: Path) -> Iterator[list[WorkerProcess]]:
    """Three workers of one application (one consumer group), each with its own web port and
    its own data folder, started one after the other, all ready."""
    app_id = f"routing-{uuid.uuid4().hex[:8]}"
    # the group starts where the input ends now: a partition that moves while the workers
    # join must not be read from "latest" again and skip the test's events
    set_group_offsets(
        local_stack, app_id, end_offsets(local_stack, (STOCK_EVENTS, ORDERS, STOCK_DECISIONS))
    )
    logs = local_stack.state_dir / "logs"
    started = [
        WorkerProcess(
            app_id,
            free_port(),
            logs,
            STOCKFLOW_STATE_DIR=str(tmp_path / f"worker-{i}"),
            STOCKFLOW_STORE="memory://",
        )
        for i in range(WORKERS)
    ]
    try:
        for worker in started:
            worker.start()
        yield started
    finally:
        for worker in reversed(started):
            worker.stop()


def _get(url: str, headers: dict[str, str]) -> tuple[int, Any]:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0, None


def test_every_worker_answers_for_every_sku_with_the_owners_figures(
    local_stack: Settings, workers: list[WorkerProcess]
) -> None:
    """Given three workers of one group on this machine (own ports and data folders), the
    partitions of the SKU table spread over them,
    when receipts for many SKUs are applied and every SKU is asked of every worker (with a
    bearer token, as a caller of a locked API would),
    then every worker answers 200 for every SKU with exactly the body its owner gives
    (the worker that holds it and answers it unforwarded), and each worker owns some SKUs,
    so each answer for another worker's SKU went through routing."""
    prefix = f"route-{uuid.uuid4().hex[:6]}"
    # the caller's credential: forwarded as it came, and checked again by the owner
    caller = {"Authorization": f"Bearer {workers[0].token}"}
    skus = [f"{prefix}-{i}" for i in range(SKUS)]
    produce_events(
        local_stack,
        single_object_codec(),
        [stock_event(f"{sku}-r", "receipt", sku, qty=i + 1) for i, sku in enumerate(skus)],
    )

    def local(worker: WorkerProcess, sku: str) -> tuple[int, Any]:
        """What ``worker`` itself holds for ``sku`` (the forwarded marker: no routing)."""
        return _get(f"{worker.url}/v1/stock/{sku}", {FORWARDED: "1", **caller})

    def owners() -> dict[str, tuple[int, Any]]:
        """Each SKU whose owner (as routing names it: ``X-Stockflow-Served-By``) holds it
        with its receipt applied: the owner's index and its own, unforwarded body."""
        by_url = {w.url: n for n, w in enumerate(workers)}
        found = {}
        for i, sku in enumerate(skus):
            owner = router_owner([workers[0].url], TABLE_NAME, sku)
            if owner not in by_url:
                continue
            n = by_url[owner]
            status, body = local(workers[n], sku)
            applied = status == 200 and sum(
                loc["on_hand"] for loc in body["locations"].values()
            ) == (i + 1)
            if applied:
                found[sku] = (n, body)
        return found

    wait_for(lambda: len(owners()) == len(skus), timeout=120, what="every SKU applied by its owner")
    owned = owners()
    for i, sku in enumerate(skus):
        on_hand = sum(loc["on_hand"] for loc in owned[sku][1]["locations"].values())
        assert on_hand == i + 1, sku
    per_worker = [sum(1 for n, _ in owned.values() if n == w) for w in range(WORKERS)]
    print(f"\n{len(skus)} SKUs owned per worker: {per_worker}")
    assert all(per_worker), f"a worker owns no SKU, routing is not exercised: {per_worker}"

    wrong = []
    for sku in skus:
        for n, worker in enumerate(workers):
            status, body = _get(f"{worker.url}/v1/stock/{sku}", caller)
            if (status, body) != (200, owned[sku][1]):
                wrong.append((sku, n, owned[sku][0], status, body))
    assert wrong == [], f"{len(wrong)} of {len(skus) * WORKERS} answers differ: {wrong[:5]}"


def test_every_worker_answers_for_every_order_with_the_owners_state(
    local_stack: Settings, workers: list[WorkerProcess]
) -> None:
    """Given three workers of one group, the order table's partitions spread over them,
    when orders are posted to one worker (each with stock) and every order is asked of every
    worker with GET /v1/orders/{id},
    then every worker answers 200 with the body of the order's owner (the one worker that
    holds it unforwarded), the orders are allocated, and more than one worker owns orders,
    so answers went through routing."""
    prefix = f"ro{uuid.uuid4().hex[:6]}"
    caller = {"Authorization": f"Bearer {workers[0].token}"}
    skus = [f"{prefix}-{i}" for i in range(ORDERS_ASKED)]
    produce_events(
        local_stack,
        single_object_codec(),
        [stock_event(f"{sku}-r", "receipt", sku, qty=5) for sku in skus],
    )
    wait_for(
        lambda: all(
            (workers[0].stock(sku) or {}).get("locations", {}).get("default", {}).get("on_hand")
            == 5
            for sku in skus
        ),
        timeout=120,
        what="every receipt applied",
    )
    orders = [
        {
            "order_id": f"{prefix}-{i}",
            "channel": "web",
            "lines": [{"line_id": "1", "sku": sku, "qty": 1}],
            "ship_to": {"country": "FR", "postal_code": "75001"},
        }
        for i, sku in enumerate(skus)
    ]
    status, answer = workers[0].post("/v1/orders", orders)
    assert status == 202, answer
    ids = [f"web:{o['order_id']}" for o in orders]

    def owned() -> dict[str, tuple[int, Any]]:
        found = {}
        for oid in ids:
            for n, worker in enumerate(workers):
                code, body = _get(f"{worker.url}/v1/orders/{oid}", {FORWARDED: "1", **caller})
                if code == 200 and body["status"] == "allocated":
                    found[oid] = (n, body)
        return found

    wait_for(lambda: len(owned()) == len(ids), timeout=120, what="every order allocated")
    owners = owned()
    per_worker = [sum(1 for n, _ in owners.values() if n == w) for w in range(WORKERS)]
    print(f"\n{len(ids)} orders owned per worker: {per_worker}")
    assert sum(1 for k in per_worker if k) > 1, f"one worker owns every order: {per_worker}"
    wrong = []
    for oid in ids:
        for n, worker in enumerate(workers):
            code, body = _get(f"{worker.url}/v1/orders/{oid}", caller)
            if (code, body) != (200, owners[oid][1]):
                wrong.append((oid, n, owners[oid][0], code, body))
    assert wrong == [], f"{len(wrong)} of {len(ids) * WORKERS} answers differ: {wrong[:3]}"
