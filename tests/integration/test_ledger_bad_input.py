"""Bad input never stops the ledger: each bad record is dead-lettered, the good ones applied."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator

import pytest

from schemas.codec import Codec, single_object_codec
from streams.kernel.settings import Settings
from streams.kernel.topics import STOCK_DEADLETTER, STOCK_EVENTS, STOCK_LEVELS
from tests.support.kafka import produce_raw, read_topic, stock_event, wait_for
from tests.support.ports import free_port
from tests.support.worker import WorkerProcess

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def worker(local_stack: Settings) -> Iterator[WorkerProcess]:
    process = WorkerProcess(
        f"bad-{uuid.uuid4().hex[:8]}", free_port(), local_stack.state_dir / "logs"
    )
    process.start()
    yield process
    process.stop()


def _bad_records(
    codec: Codec, sku: str, rng: random.Random
) -> list[tuple[bytes | None, bytes, str]]:
    """1,000 malformed records of four kinds, each with the event id it can be traced by."""
    bad: list[tuple[bytes | None, bytes, str]] = []
    for i in range(1000):
        kind = i % 4
        tag = f"{sku}-bad-{i}"
        if kind == 0:  # garbage bytes
            bad.append((sku.encode(), rng.randbytes(rng.randint(0, 40)), tag))
        elif kind == 1:  # a valid Avro record of another schema
            level = {
                "sku": sku,
                "version": i,
                "channels": {},
                "changed_channels": [],
                "default_quantity": 0,
                "cause_event_id": tag,
                "occurred_at": 0,
                "at": 0,
            }
            bad.append((sku.encode(), codec.encode(STOCK_LEVELS.value_schema, level), tag))
        elif kind == 2:  # a negative quantity where only adjustments are signed
            event = stock_event(tag, "sale", sku, -5, location="main")
            bad.append((sku.encode(), codec.encode(STOCK_EVENTS.value_schema, event), tag))
        else:  # a type this ledger does not know
            event = stock_event(tag, "unknown", sku, 1, location="main")
            bad.append((sku.encode(), codec.encode(STOCK_EVENTS.value_schema, event), tag))
    return bad


def test_a_thousand_malformed_records_are_dead_lettered_and_the_good_ones_applied(
    local_stack: Settings, worker: WorkerProcess
) -> None:
    """Given 1,000 malformed records (garbage, wrong schema, negative quantity, unknown type)
    interleaved with 500 good receipts of one unit, when the ledger reads them,
    then every bad record is in the dead-letter topic with a reason and its original bytes,
    and on_hand is exactly 500."""
    codec = single_object_codec()
    rng = random.Random(7)
    sku = f"bad-{uuid.uuid4().hex[:8]}"
    good = [
        (
            sku.encode(),
            codec.encode(
                STOCK_EVENTS.value_schema,
                stock_event(f"{sku}-good-{i}", "receipt", sku, 1, location="main"),
            ),
        )
        for i in range(500)
    ]
    bad = _bad_records(codec, sku, rng)
    stream: list[tuple[bytes | None, bytes]] = []
    for i, (key, value, _) in enumerate(bad):
        stream.append((key, value))
        if i % 2 == 1:
            stream.append(good[i // 2])
    produce_raw(local_stack, stream)

    wait_for(
        lambda: (
            (worker.stock(sku) or {}).get("locations", {}).get("main", {}).get("on_hand") == 500
        ),
        timeout=120,
        what="all good receipts",
    )
    originals = {value for _, value, _ in bad}
    letters = read_topic(
        local_stack,
        codec,
        STOCK_DEADLETTER,
        lambda r: r["original"] in originals,
        until=lambda found: len({r["original"] for r in found}) >= len(originals),
        timeout=60,
    )
    assert {r["original"] for r in letters} == originals
    assert all(r["reason"] and r["error"] and r["component"] == "ledger" for r in letters)
    assert all(r["topic"] == STOCK_EVENTS.name and r["offset"] is not None for r in letters)
    reasons = {r["reason"] for r in letters}
    assert len(reasons) >= 3, reasons
    assert worker.stock(sku)["locations"]["main"]["on_hand"] == 500
    assert (worker.stock(sku) or {}) and worker.get("/health")[1] == {
        "status": "ok",
        "app": worker.app_id,
    }


def test_the_api_refuses_what_the_ledger_would_dead_letter_and_counts_it_as_refused(
    local_stack: Settings, worker: WorkerProcess
) -> None:
    """Given a receipt and three items the ledger cannot apply (a return of 0, an adjustment
    of 0, a transfer to its own location), when they are posted together to /v1/events,
    then the three are refused with their reasons, the receipt is applied, the refusals are
    counted as API refusals and not as dead letters, and nothing reaches the dead-letter
    topic for them."""
    sku = f"api-{uuid.uuid4().hex[:8]}"
    items = [
        {"event_id": f"{sku}-r", "type": "receipt", "sku": sku, "qty": 4, "location": "main"},
        {"event_id": f"{sku}-1", "type": "return_received", "sku": sku, "qty": 0},
        {"event_id": f"{sku}-2", "type": "adjustment", "sku": sku, "qty": 0, "reason": "x"},
        {
            "event_id": f"{sku}-3",
            "type": "transfer",
            "sku": sku,
            "qty": 1,
            "location": "main",
            "to_location": "main",
        },
    ]
    status, body = worker.post("/v1/events", items)
    assert status == 400
    assert [r["status"] for r in body["results"]] == ["accepted", *["rejected"] * 3]
    assert any("to_location" in e for e in body["results"][3]["errors"])
    wait_for(
        lambda: (worker.stock(sku) or {}).get("locations", {}).get("main", {}).get("on_hand") == 4,
        timeout=60,
        what="the receipt",
    )
    metrics = worker.metrics()
    assert 'stockflow_api_items_rejected_total{route="/v1/events"} 3.0' in metrics
    assert 'component="api"' not in metrics
    letters = read_topic(
        local_stack,
        single_object_codec(),
        STOCK_DEADLETTER,
        lambda r: (r["event_id"] or "").startswith(sku),
        until=bool,
        timeout=5,
    )
    assert letters == []
