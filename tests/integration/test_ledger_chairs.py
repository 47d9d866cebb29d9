"""The 100 chairs on three channels, through a real ledger worker on the real broker."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from schemas.codec import Codec, single_object_codec
from streams.kernel.settings import Settings
from streams.kernel.topics import STOCK_DECISIONS, STOCK_EVENTS
from tests.support.chairs import CHANNELS, CONFIG, race_for_chairs
from tests.support.kafka import (
    end_offsets,
    group_lag,
    produce_events,
    read_topic,
    rewind_group,
    stock_event,
    wait_for,
)
from tests.support.ports import free_port
from tests.support.stores import table_stores
from tests.support.worker import WorkerProcess

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def codec() -> Codec:
    return single_object_codec()


@pytest.fixture(scope="module", params=table_stores())
def worker(
    local_stack: Settings, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[WorkerProcess]:
    """A worker on each table store: Faust's in-memory store, and RocksDB."""
    folder = tmp_path_factory.mktemp("chairs")
    config = folder / "channels.yaml"
    config.write_text(CONFIG)
    process = WorkerProcess(
        f"chairs-{uuid.uuid4().hex[:8]}",
        free_port(),
        local_stack.state_dir / "logs",
        STOCKFLOW_CONFIG=str(config),
        STOCKFLOW_STORE=request.param,
    )
    # Everything this ledger ever sees is after these offsets (it starts at "latest"): the
    # replay below goes back here, not to other tests' events on the shared topic.
    process.first_offsets = end_offsets(local_stack, STOCK_EVENTS.name)
    process.start()
    yield process
    process.stop()


def test_one_hundred_chairs_sold_on_three_channels_at_once_never_oversell(
    local_stack: Settings, worker: WorkerProcess, codec: Codec, tmp_path: Path
) -> None:
    """Given a count of 100 chairs listed in full on three channels,
    when 150 orders of 1 arrive concurrently from three producers,
    then exactly 100 are accepted and 50 rejected, and every channel shows 0;
    when 10 accepted orders are cancelled, then every channel shows 10;
    when everything the ledger has read is replayed from its first offset, then nothing
    changes (no state moves, no order is decided twice)."""
    sku = f"chair-{uuid.uuid4().hex[:8]}"
    decisions = race_for_chairs(local_stack, local_stack, codec, worker, sku)
    outcomes = [d["outcome"] for d in decisions.values()]
    assert len(decisions) == 150
    assert outcomes.count("accepted") == 100
    assert outcomes.count("rejected") == 50
    wait_for(
        lambda: worker.stock(sku)["channels"] == dict.fromkeys(CHANNELS, 0),
        timeout=30,
        what="channels at 0",
    )
    assert worker.stock(sku)["locations"]["main"]["reserved"] == 100

    accepted = sorted(d["order_id"] for d in decisions.values() if d["outcome"] == "accepted")[:10]
    produce_events(
        local_stack,
        codec,
        [
            stock_event(
                f"{sku}-cancel-{o}", "order_cancelled", sku, 0, order_id=o, channel=o.split("-")[0]
            )
            for o in accepted
        ],
    )
    wait_for(
        lambda: worker.stock(sku)["channels"] == dict.fromkeys(CHANNELS, 10),
        timeout=30,
        what="channels at 10",
    )
    before = worker.stock(sku)

    # Replay: the ledger's group goes back to offset 0 of the input topic.
    worker.stop()
    rewind_group(local_stack, worker.app_id, STOCK_EVENTS.name, worker.first_offsets)
    assert group_lag(local_stack, worker.app_id, STOCK_EVENTS.name) >= 161
    worker.start()
    wait_for(
        lambda: group_lag(local_stack, worker.app_id, STOCK_EVENTS.name) == 0,
        timeout=120,
        what="the replay",
    )
    assert worker.stock(sku) == before
    again = read_topic(
        local_stack,
        codec,
        STOCK_DECISIONS,
        lambda r: r["sku"] == sku,
        until=lambda _: False,
        timeout=8,
    )
    assert len(again) == 150, "a replayed order must not be decided twice"
    assert 'outcome="duplicate"' in worker.metrics()
