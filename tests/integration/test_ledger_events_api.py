"""The worker's HTTP API on the real stack: idempotent holds, holds decided within the
request, hold TTLs at intake, transfers beyond stock, purchase orders, quarantine releases."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from schemas.codec import single_object_codec
from schemas.events import MAX_HOLD_TTL_SECONDS
from streams.kernel.settings import Settings
from streams.kernel.topics import STOCK_DECISIONS
from tests.support.kafka import read_topic, wait_for
from tests.support.ports import free_port
from tests.support.worker import WorkerProcess

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def worker(local_stack: Settings) -> Iterator[WorkerProcess]:
    process = WorkerProcess(
        f"api-{uuid.uuid4().hex[:8]}", free_port(), local_stack.state_dir / "logs"
    )
    process.start()
    yield process
    process.stop()


def call(
    worker: WorkerProcess, method: str, path: str, body: Any = None, key: str | None = None
) -> tuple[int, Any]:
    """(status, JSON body) of one request, with an Idempotency-Key header when given."""
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {worker.token}"}
    if key is not None:
        headers["Idempotency-Key"] = key
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(worker.url + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def post_events(worker: WorkerProcess, *events: dict[str, Any]) -> None:
    status, body = call(worker, "POST", "/v1/events", list(events))
    assert status == 202, body


def where(worker: WorkerProcess, sku: str, name: str, **expected: int) -> dict[str, Any]:
    """The location's figures once they are ``expected`` (waits for the ledger)."""
    seen: dict[str, Any] = {}

    def reached() -> bool:
        stock = worker.stock(sku)
        seen.update((stock or {}).get("locations", {}).get(name, {}))
        return all(seen.get(k) == v for k, v in expected.items())

    wait_for(reached, timeout=30, what=f"{sku} at {name}: {expected}")
    return seen


def new_sku() -> str:
    return f"api-{uuid.uuid4().hex[:10]}"


def test_a_retried_hold_with_the_same_idempotency_key_is_the_same_hold_after_a_restart_too(
    worker: WorkerProcess,
) -> None:
    """Given 5 units, when a checkout posts a hold of 2 with an Idempotency-Key and retries
    it at once, then both answers name the same hold id and expiry and 2 units are
    reserved, not 4; when the worker restarts and the checkout retries again, the answer
    is the same hold (granted, same expiry) and still 2 are reserved, and a refused hold
    retried is refused again (not placed anew); another key is another hold."""
    sku = new_sku()
    post_events(worker, {"event_id": f"{sku}-r", "type": "receipt", "sku": sku, "qty": 5})
    where(worker, sku, "default", on_hand=5)
    hold = {"sku": sku, "qty": 2, "channel": "web", "ttl_seconds": 600}
    first = call(worker, "POST", "/v1/holds", hold, key="cart-1")
    again = call(worker, "POST", "/v1/holds", hold, key="cart-1")
    assert first[0] == 202, first
    assert again[0] in (200, 202), again
    assert again[1]["hold_id"] == first[1]["hold_id"]
    assert again[1]["expires_at"] == first[1]["expires_at"]
    where(worker, sku, "default", reserved=2)
    too_many = {**hold, "qty": 4}
    refused = call(worker, "POST", "/v1/holds?wait=1", too_many, key="cart-9")
    assert (refused[0], refused[1]["reason"]) == (409, "insufficient_stock")
    worker.stop()
    worker.start()
    forgotten = call(worker, "POST", "/v1/holds?wait=1", too_many, key="cart-9")
    assert (forgotten[0], forgotten[1]["reason"]) == (409, "hold_not_live")
    after = call(worker, "POST", "/v1/holds", hold, key="cart-1")
    assert after[0] == 200, after
    assert (after[1]["hold_id"], after[1]["expires_at"]) == (
        first[1]["hold_id"],
        first[1]["expires_at"],
    )
    assert after[1]["status"] == "granted"
    other = call(worker, "POST", "/v1/holds?wait=1", hold, key="cart-2")
    assert other[0] == 201 and other[1]["hold_id"] != first[1]["hold_id"]
    assert where(worker, sku, "default", reserved=4)["available"] == 1


def test_a_hold_with_wait_is_granted_or_refused_within_the_request(
    worker: WorkerProcess,
) -> None:
    """Given 3 units, when a checkout asks ?wait=1 for 2, then it gets 201 granted with the
    location and expiry; when another asks for 2, 409 refused with insufficient_stock;
    retrying the first key answers the same grant and nothing more is reserved; a SKU the
    ledger never saw is refused as unknown_sku."""
    sku = new_sku()
    post_events(worker, {"event_id": f"{sku}-r", "type": "receipt", "sku": sku, "qty": 3})
    where(worker, sku, "default", on_hand=3)
    hold = {"sku": sku, "qty": 2, "channel": "web", "ttl_seconds": 600}
    status, granted = call(worker, "POST", "/v1/holds?wait=1", hold, key="a")
    assert status == 201, granted
    assert granted["status"] == "granted" and granted["location"] == "default"
    assert granted["qty"] == 2 and granted["expires_at"] > 0
    status, refused = call(worker, "POST", "/v1/holds?wait=1", hold, key="b")
    assert status == 409, refused
    assert (refused["status"], refused["reason"]) == ("refused", "insufficient_stock")
    assert call(worker, "POST", "/v1/holds?wait=1", hold, key="b") == (409, refused)
    status, retried = call(worker, "POST", "/v1/holds?wait=1", hold, key="a")
    assert (status, retried) == (201, granted)
    assert worker.stock(sku)["locations"]["default"]["reserved"] == 2  # type: ignore[index]
    unknown = {**hold, "sku": new_sku()}
    status, body = call(worker, "POST", "/v1/holds?wait=1", unknown)
    assert (status, body["reason"]) == (409, "unknown_sku")


def test_a_hold_through_the_events_intake_obeys_the_maximum_ttl(worker: WorkerProcess) -> None:
    """Given a hold posted to /v1/events expiring 7 days and 1 second after it was placed,
    when posted, then it is refused with the TTL named and nothing reaches the ledger; the
    same hold at exactly 7 days is accepted, and /v1/holds refuses a ttl_seconds above it,
    and a hold the contract refuses (a location too long) at once rather than undecided."""
    sku = new_sku()
    post_events(worker, {"event_id": f"{sku}-r", "type": "receipt", "sku": sku, "qty": 3})
    placed = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    week = placed + timedelta(seconds=MAX_HOLD_TTL_SECONDS)  # still ahead: the hold holds

    def iso(moment: datetime) -> str:
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")

    too_long = {
        "event_id": f"{sku}-h1",
        "type": "hold",
        "sku": sku,
        "qty": 1,
        "order_id": "cart",
        "occurred_at": iso(placed),
        "expires_at": iso(week + timedelta(seconds=1)),
    }
    status, body = call(worker, "POST", "/v1/events", too_long)
    assert status == 400, body
    assert any(
        "expires_at" in e and str(MAX_HOLD_TTL_SECONDS) in e for e in body["results"][0]["errors"]
    )
    longest = {**too_long, "event_id": f"{sku}-h2", "expires_at": iso(week)}
    assert call(worker, "POST", "/v1/events", longest)[0] == 202
    where(worker, sku, "default", on_hand=3, reserved=1)
    hold = {"sku": sku, "qty": 1, "channel": "web", "ttl_seconds": MAX_HOLD_TTL_SECONDS + 1}
    status, body = call(worker, "POST", "/v1/holds", hold)
    assert status == 400 and "ttl_seconds" in body["errors"][0]
    unfit = {**hold, "ttl_seconds": 60, "location": "x" * 300}
    status, body = call(worker, "POST", "/v1/holds?wait=1", unfit)
    assert status == 400 and body["errors"] == ["location: longer than 256 characters"]


def test_a_transfer_over_the_source_stock_is_refused_with_a_decision(
    local_stack: Settings, worker: WorkerProcess
) -> None:
    """Given 5 units at "a", 2 of them held, when a transfer of 4 to "b" is posted, then a
    rejected decision (insufficient_stock, 3 movable) is published, "a" keeps its 5 and no
    "b" appears; a transfer of 3 then moves."""
    sku = new_sku()
    post_events(
        worker, {"event_id": f"{sku}-r", "type": "receipt", "sku": sku, "qty": 5, "location": "a"}
    )
    hold = {"sku": sku, "qty": 2, "channel": "web", "ttl_seconds": 600}
    assert call(worker, "POST", "/v1/holds?wait=1", hold)[0] == 201
    move = {"type": "transfer", "sku": sku, "location": "a", "to_location": "b"}
    post_events(worker, {**move, "event_id": f"{sku}-t1", "qty": 4})
    [decision] = read_topic(
        local_stack,
        single_object_codec(),
        STOCK_DECISIONS,
        lambda d: d["event_id"] == f"{sku}-t1",
        until=lambda found: bool(found),
    )
    assert (decision["outcome"], decision["reason"]) == ("rejected", "insufficient_stock")
    assert decision["available_before"] == 3
    stock = worker.stock(sku)
    assert stock is not None and set(stock["locations"]) == {"a"}
    assert stock["locations"]["a"]["on_hand"] == 5
    post_events(worker, {**move, "event_id": f"{sku}-t2", "qty": 3})
    where(worker, sku, "b", on_hand=3)
    assert where(worker, sku, "a", on_hand=2, reserved=2)["available"] == 0


def test_a_purchase_order_shows_as_incoming_until_received_or_cancelled(
    worker: WorkerProcess,
) -> None:
    """Given a purchase order of 10 at "wh", when posted, then incoming is 10 and nothing is
    available; a receipt of 4 makes on_hand 4 and incoming 6; cancelling the rest of the
    line makes incoming 0."""
    sku = new_sku()
    po = {"sku": sku, "location": "wh", "source_ref": "PO-77"}
    post_events(worker, {**po, "event_id": f"{sku}-po", "type": "purchase_ordered", "qty": 10})
    assert where(worker, sku, "wh", incoming=10)["available"] == 0
    post_events(worker, {**po, "event_id": f"{sku}-in", "type": "receipt", "qty": 4})
    where(worker, sku, "wh", on_hand=4, incoming=6)
    post_events(worker, {**po, "event_id": f"{sku}-x", "type": "purchase_cancelled", "qty": 6})
    where(worker, sku, "wh", on_hand=4, incoming=0, available=4)


def test_quarantined_returns_are_released_to_stock_or_written_off(
    local_stack: Settings, worker: WorkerProcess
) -> None:
    """Given 5 units and 4 quarantined returns, when 2 are released as resellable and 1 as
    damaged, then on_hand is 8, unsellable 1 and 7 are available; a release of 2 more than
    the 1 left quarantined is refused with a decision and changes nothing."""
    sku = new_sku()
    post_events(
        worker,
        {"event_id": f"{sku}-r", "type": "receipt", "sku": sku, "qty": 5},
        {
            "event_id": f"{sku}-ret",
            "type": "return_received",
            "sku": sku,
            "qty": 4,
            "disposition": "quarantine",
        },
    )
    where(worker, sku, "default", on_hand=9, unsellable=4)
    release = {"type": "quarantine_released", "sku": sku, "reason": "inspected"}
    post_events(
        worker,
        {**release, "event_id": f"{sku}-q1", "qty": 2, "disposition": "resellable"},
        {**release, "event_id": f"{sku}-q2", "qty": 1, "disposition": "damaged"},
        {**release, "event_id": f"{sku}-q3", "qty": 2, "disposition": "damaged"},
    )
    [decision] = read_topic(
        local_stack,
        single_object_codec(),
        STOCK_DECISIONS,
        lambda d: d["event_id"] == f"{sku}-q3",
        until=lambda found: bool(found),
    )
    assert decision["reason"] == "insufficient_unsellable"
    where(worker, sku, "default", on_hand=8, unsellable=1, available=7)


def _skus_held(worker: WorkerProcess) -> float:
    for line in worker.metrics().splitlines():
        if line.startswith("stockflow_ledger_skus "):
            return float(line.split()[1])
    raise AssertionError("no stockflow_ledger_skus in /metrics")


def _hold_until_decided(
    worker: WorkerProcess, hold: dict[str, Any], key: str
) -> tuple[int, dict[str, Any]]:
    """POST ?wait=1, retried with the same key while partitions are being assigned."""
    answer: tuple[int, Any] = (0, None)

    def decided() -> bool:
        nonlocal answer
        answer = call(worker, "POST", "/v1/holds?wait=1", hold, key=key)
        return answer[0] in (201, 409)

    wait_for(decided, timeout=60, what=f"a decision on {hold['sku']}")
    return answer


def test_holds_posted_to_any_worker_are_decided_by_the_skus_owner(local_stack: Settings) -> None:
    """Given two workers of one app sharing the partitions and 12 SKUs of 1 unit each, when
    a checkout posts a hold of 1 with ?wait=1 for every SKU to the first worker, then each
    is granted (those the second worker owns are forwarded there with their key); retried
    through the second worker with the same keys, each answers the same hold; a further
    hold through the second worker is refused; and both workers hold some of the SKUs."""
    app = f"pair-{uuid.uuid4().hex[:8]}"
    logs = local_stack.state_dir / "logs"
    first, second = WorkerProcess(app, free_port(), logs), WorkerProcess(app, free_port(), logs)
    first.start()
    second.start()
    try:
        skus = [new_sku() for _ in range(12)]
        receipts = [{"event_id": f"{s}-r", "type": "receipt", "sku": s, "qty": 1} for s in skus]

        def stocked() -> bool:  # posted again while partitions settle: applied once by id
            post_events(first, *receipts)
            return all((first.stock(s) or {}).get("default_channel_quantity") == 1 for s in skus)

        wait_for(stocked, timeout=60, what="one unit of every SKU")
        granted = {}
        for sku in skus:
            hold = {"sku": sku, "qty": 1, "channel": "web", "ttl_seconds": 600}
            status, body = _hold_until_decided(first, hold, f"k-{sku}")
            assert status == 201, body
            granted[sku] = body
        for sku in skus:
            hold = {"sku": sku, "qty": 1, "channel": "web", "ttl_seconds": 600}
            assert _hold_until_decided(second, hold, f"k-{sku}") == (201, granted[sku])
            status, body = _hold_until_decided(second, hold, f"other-{sku}")
            assert (status, body["reason"]) == (409, "insufficient_stock")
        assert _skus_held(first) > 0 and _skus_held(second) > 0
    finally:
        second.stop()
        first.stop()
