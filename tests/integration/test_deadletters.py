"""`stockflow deadletters list|replay` against the real broker and the real ledger."""

from __future__ import annotations

import argparse
import dataclasses
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer
from prometheus_client import CollectorRegistry

from schemas.codec import single_object_codec
from streams.cli import main
from streams.deadletters import run_deadletters
from streams.deadletters.reader import Filters, read_dead_letters
from streams.deadletters.replay import replay
from streams.kernel.deadletter import dead_letter
from streams.kernel.kafka_config import producer_config
from streams.kernel.metrics import dead_letter_counter
from streams.kernel.settings import Settings
from streams.kernel.topics import STOCK_DEADLETTER, STOCK_EVENTS
from tests.support.kafka import produce_raw, read_topic, stock_event, wait_for
from tests.support.ports import free_port
from tests.support.worker import WorkerProcess

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def worker(local_stack: Settings) -> Iterator[WorkerProcess]:
    process = WorkerProcess(
        f"dl-{uuid.uuid4().hex[:8]}", free_port(), local_stack.state_dir / "logs"
    )
    process.start()
    yield process
    process.stop()


@pytest.fixture
def operator(local_stack: Settings, tmp_path: Path) -> Settings:
    """The operator's settings: the stack's Kafka, a state folder of their own."""
    return dataclasses.replace(local_stack, state_dir=tmp_path)


def on_hand(worker: WorkerProcess, sku: str) -> int | None:
    stock = worker.stock(sku) or {}
    return stock.get("locations", {}).get("main", {}).get("on_hand")


def mine(settings: Settings, sku: str, **filters: Any) -> list[Any]:
    """Dead letters of the last 10 minutes matching ``filters`` whose key is ``sku``."""
    letters = read_dead_letters(settings, Filters.parse(since="10m", **filters))
    return [letter for letter in letters if letter.record.get("key") == sku.encode()]


def test_the_ledgers_dead_letters_are_listed_and_filtered(
    operator: Settings, worker: WorkerProcess
) -> None:
    """Given garbage bytes and a sale of a negative quantity that the real ledger dead-letters,
    when dead letters are listed by component, by reason and since a time, then each filter
    keeps exactly the matching ones, and a time after them keeps none."""
    codec = single_object_codec()
    sku = f"dl-{uuid.uuid4().hex[:8]}"
    garbage = b"\x13not avro at all"
    negative = codec.encode(
        STOCK_EVENTS.value_schema, stock_event(f"{sku}-neg", "sale", sku, -5, location="main")
    )
    produce_raw(operator, [(sku.encode(), garbage), (sku.encode(), negative)])
    wait_for(lambda: len(mine(operator, sku)) >= 2, timeout=90, what="two dead letters")

    both = mine(operator, sku, component="ledger")
    assert {letter.record["original"] for letter in both} == {garbage, negative}
    reasons = {letter.record["reason"] for letter in both}
    assert len(reasons) == 2
    one = sorted(reasons)[0]
    assert {letter.record["reason"] for letter in mine(operator, sku, reason=one)} == {one}
    assert mine(operator, sku, component="sink") == []
    later = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    assert [
        letter
        for letter in read_dead_letters(operator, Filters.parse(since=later))
        if letter.record.get("key") == sku.encode()
    ] == []


def test_a_replayed_dead_letter_is_applied_once_however_often_it_is_replayed(
    operator: Settings, worker: WorkerProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    """Given a good receipt of 5 units the ledger once dead-lettered (a failure since fixed),
    when it is replayed, then its original bytes and key are back in the input topic and the
    ledger applies it (on_hand 5); when replayed again, it is skipped as replayed before;
    when forced again (--again), it is published again and the ledger's dedupe keeps
    on_hand at 5."""
    codec = single_object_codec()
    sku = f"dl-{uuid.uuid4().hex[:8]}"
    event = stock_event(f"{sku}-receipt", "receipt", sku, 5, location="main")
    original = codec.encode(STOCK_EVENTS.value_schema, event)
    record = dead_letter(
        dead_letter_counter(CollectorRegistry()),
        component="ledger",
        reason="internal_error",
        error="RuntimeError: a bug, since fixed",
        original=original,
        topic=STOCK_EVENTS.name,
        partition=0,
        offset=123,
        key=sku.encode(),
        event_id=event["event_id"],
    )
    p = Producer(producer_config(operator))
    p.produce(
        STOCK_DEADLETTER.name,
        key=STOCK_EVENTS.name.encode(),
        value=codec.encode(STOCK_DEADLETTER.value_schema, record),
    )
    assert p.flush(30) == 0
    wait_for(lambda: len(mine(operator, sku)) == 1, timeout=30, what="the dead letter")
    assert on_hand(worker, sku) is None

    assert replay(operator, mine(operator, sku), dry_run=True, again=False) == 0
    assert "replayed 0 (dry run: 1 would be)" in capsys.readouterr().out
    assert replay(operator, mine(operator, sku), dry_run=False, again=False) == 0
    assert "found 1, replayed 1, skipped 0" in capsys.readouterr().out
    wait_for(lambda: on_hand(worker, sku) == 5, timeout=60, what="the replayed receipt")
    copies = read_topic(
        operator,
        codec,
        STOCK_EVENTS,
        lambda r: r.get("event_id") == event["event_id"],
        until=lambda found: len(found) >= 1,
        timeout=30,
    )
    assert len(copies) == 1

    assert replay(operator, mine(operator, sku), dry_run=False, again=False) == 0
    assert "found 1, replayed 0, skipped 1 (1 replayed before)" in capsys.readouterr().out
    assert replay(operator, mine(operator, sku), dry_run=False, again=True) == 0
    assert "found 1, replayed 1" in capsys.readouterr().out
    copies = read_topic(
        operator,
        codec,
        STOCK_EVENTS,
        lambda r: r.get("event_id") == event["event_id"],
        until=lambda found: len(found) >= 2,
        timeout=30,
    )
    assert len(copies) == 2
    time.sleep(5)  # room for the ledger to (wrongly) apply the second copy
    assert on_hand(worker, sku) == 5


def test_bad_filters_are_refused_with_the_fix_and_a_non_zero_exit(
    operator: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    """Given an unreadable --since, when dead letters are listed or replayed, then the command
    exits 2 and says which forms it takes; an unknown action is refused by the parser."""
    args = argparse.Namespace(
        action="replay",
        component=None,
        reason=None,
        since="last tuesday",
        topic=None,
        limit=None,
        json=False,
        dry_run=True,
        again=False,
    )
    assert run_deadletters(operator, args) == 2
    assert "30m, 6h, 7d" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        main(["deadletters", "purge"])
    assert exited.value.code == 2
