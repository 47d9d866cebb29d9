"""A store's till on the real stack: ``POST /v1/pos/changes`` out of order and retried, the
store-scoped token, and the end-of-day CSV with a bad row (``stockflow pos import``)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from schemas.codec import codec_for
from streams.cli import main
from streams.kernel.access.command import create, revoke
from streams.kernel.access.tokens import EVENTS_WRITE
from streams.kernel.settings import Settings
from streams.kernel.topics import STOCK_DEADLETTER
from tests.support.kafka import read_topic, wait_for
from tests.support.ports import free_port
from tests.support.worker import WorkerProcess

pytestmark = pytest.mark.integration

RUN = uuid.uuid4().hex[:8]
STORE = f"paris-{RUN}"
DAY = datetime(2026, 11, 30, tzinfo=UTC)


def at(hour: int, minute: int = 0) -> str:
    return (DAY + timedelta(hours=hour, minutes=minute)).isoformat()


@pytest.fixture(scope="module")
def worker(local_stack: Settings) -> Iterator[WorkerProcess]:
    process = WorkerProcess(f"pos-{RUN}", free_port(), local_stack.state_dir / "logs")
    process.start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def till(local_stack: Settings, worker: WorkerProcess) -> Iterator[str]:
    """The bearer token of the store's till: events:write for its store only."""
    name = f"till-{RUN}"
    secret, _ = create(local_stack, name, [EVENTS_WRITE], [f"pos:{STORE}"], locations=[STORE])
    probe = {"idempotency_key": "probe", "store": "elsewhere", "changes": [{}]}
    wait_for(
        lambda: post(worker, secret, probe)[0] == 403, timeout=30, what="the worker knows the till"
    )
    yield secret
    revoke(local_stack, name)


def post(worker: WorkerProcess, token: str, body: Any) -> tuple[int, Any]:
    request = urllib.request.Request(
        worker.url + "/v1/pos/changes",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def settled(worker: WorkerProcess, token: str, sku: str, expected: int) -> int:
    """The store's on_hand of ``sku`` once every change posted before is applied: a marker
    sale of 1 (after everything, same partition) is posted and awaited at ``expected - 1``."""
    marker = {"type": "sale", "sku": sku, "qty": 1, "occurred_at": at(23), "id": f"m-{sku}"}
    status, _ = post(worker, token, call(f"marker-{sku}", marker))
    assert status == 200
    seen: dict[str, Any] = {}

    def reached() -> bool:
        stock = worker.stock(sku) or {}
        seen.update(stock.get("locations", {}).get(STORE, {}))
        return seen.get("on_hand") == expected - 1

    wait_for(reached, timeout=30, what=f"{sku} at {STORE}: on_hand {expected - 1}")
    return int(seen["on_hand"]) + 1


def call(key: str, *changes: dict[str, Any], store: str = STORE) -> dict[str, Any]:
    return {"idempotency_key": key, "store": store, "changes": list(changes)}


def test_a_tills_calls_out_of_order_and_retried_give_the_exact_stock(
    local_stack: Settings, worker: WorkerProcess, till: str
) -> None:
    """Given a till whose day is: count 20 at 10:00 (after a 09:30 sale of 3), sales of 2 at
    10:15, a return of 1 at 10:20, a damage of 1 at 10:30, count 15 at 11:00, a sale of 4 at
    11:05 (so 11 in the till's own order), and a second SKU sold without counts,
    When the calls arrive latest first, a bad change among them, and two calls are retried
    with the same idempotency key,
    Then the retries get the same answers, the bad change is refused and dead-lettered while
    its neighbours apply, the stock is exactly 11 and 3 (nothing doubled), and the till's
    token may not post for another store (403)."""
    sku, plain = f"mug-{RUN}", f"tee-{RUN}"
    a = call(
        "z-1",
        {"type": "sale", "sku": sku, "qty": 3, "occurred_at": at(9, 30), "id": "t1"},
        {"type": "count", "sku": sku, "qty": 20, "occurred_at": at(10)},
    )
    b = call(
        "z-2",
        {"type": "sale", "sku": sku, "qty": 2, "occurred_at": at(10, 15)},
        {"type": "return", "sku": sku, "qty": 1, "occurred_at": at(10, 20)},
        {"type": "theft", "sku": sku, "qty": 1, "occurred_at": at(10, 25)},
        {
            "type": "adjustment",
            "sku": sku,
            "qty": -1,
            "occurred_at": at(10, 30),
            "reason": "damage",
        },
        {"type": "return", "sku": plain, "qty": 5, "occurred_at": at(9), "id": "r-1"},
    )
    c = call(
        "z-3",
        {"type": "count", "sku": sku, "qty": 15, "occurred_at": at(11)},
        {"type": "sale", "sku": sku, "qty": 4, "occurred_at": at(11, 5)},
        {"type": "sale", "sku": plain, "qty": 2, "occurred_at": at(12), "id": "s-1"},
    )
    first_c = post(worker, till, c)
    first_b = post(worker, till, b)
    assert first_c[0] == 200 and first_c[1]["accepted"] == 3, first_c
    assert first_b[0] == 400 and first_b[1]["rejected"] == 1, first_b
    assert first_b[1]["results"][2]["status"] == "rejected"
    assert post(worker, till, a)[0] == 200
    assert post(worker, till, c) == first_c  # retried: same answer, nothing applied twice
    assert post(worker, till, b) == first_b
    forbidden = post(worker, till, call("z-4", a["changes"][0], store=f"lyon-{RUN}"))
    assert forbidden[0] == 403, forbidden
    assert settled(worker, till, sku, 11) == 11
    assert settled(worker, till, plain, 3) == 3
    letters = read_topic(
        local_stack,
        codec_for(local_stack),
        STOCK_DEADLETTER,
        lambda r: r["component"] == "pos" and STORE in r["error"],
        until=lambda found: len(found) >= 1,
        timeout=30,
    )
    assert "theft" in letters[0]["error"] and b"theft" in letters[0]["original"]


def test_the_end_of_day_csv_applies_its_good_rows_once_and_reports_the_bad_one(
    local_stack: Settings,
    worker: WorkerProcess,
    till: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Given a till that posted a sale (id s-7) through the API,
    When its end-of-day CSV lists that sale again, two more sales and a row whose quantity is
    not a number, and is imported twice,
    Then the bad row is reported by its line number and dead-lettered, the exit status is 2,
    and the stock counts each sale once: 10 - 1 - 2 - 3 = 4, after the second import too."""
    sku = f"cup-{RUN}"
    opening = {"type": "count", "sku": sku, "qty": 10, "occurred_at": at(8)}
    sold = {"type": "sale", "sku": sku, "qty": 1, "occurred_at": at(9), "id": "s-7"}
    assert post(worker, till, call("y-1", opening, sold))[0] == 200
    csv = tmp_path / "paris-2026-11-30.csv"
    csv.write_text(
        "id;sku;qty;occurred_at;type\n"
        f"s-7;{sku};1;{at(9)};sale\n"
        f"s-8;{sku};2;{at(10)};sale\n"
        f"s-9;{sku};two;{at(11)};sale\n"
        f"s-10;{sku};3;{at(12)};\n"
    )
    argv = ["pos", "import", str(csv), "--store", STORE]
    assert main(argv) == 2
    out = capsys.readouterr().out
    assert "line 4: qty" in out and "4 rows, 3 sent, 1 refused" in out, out
    assert main(argv) == 2
    assert settled(worker, till, sku, 4) == 4
    letters = read_topic(
        local_stack,
        codec_for(local_stack),
        STOCK_DEADLETTER,
        lambda r: r["component"] == "pos-import" and STORE in r["error"],
        until=lambda found: len(found) >= 2,
        timeout=30,
    )
    assert all("line 4" in r["error"] and b"two" in r["original"] for r in letters)
