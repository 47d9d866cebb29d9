"""A changelog that refuses the ledger's state writes: the worker stops, a restart loses nothing."""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource

from schemas.codec import single_object_codec
from streams.kernel.kafka_config import admin_config
from streams.kernel.settings import Settings
from tests.support.kafka import produce_events, stock_event, wait_for
from tests.support.ports import free_port
from tests.support.worker import WorkerProcess

pytestmark = [pytest.mark.integration, pytest.mark.faults]

RECEIPTS = 50
PRODUCE_TIMEOUT_S = 2


def _max_message_bytes(settings: Settings, topic: str, size: int | None) -> None:
    """Set the topic's max.message.bytes (None: back to the broker's default). Below a state
    record's size, the broker refuses every write (MESSAGE_TOO_LARGE). (min.insync.replicas
    above the replication factor does not do it: Kafka 4 acknowledges such writes.)"""
    admin = AdminClient(admin_config(settings))
    entry = ConfigEntry(
        "max.message.bytes",
        str(size) if size is not None else None,
        incremental_operation=AlterConfigOpType.SET if size else AlterConfigOpType.DELETE,
    )
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=[entry])
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(timeout=30)


def _on_hand(worker: WorkerProcess, sku: str) -> int | None:
    stock = worker.stock(sku) or {}
    value = stock.get("locations", {}).get("main", {}).get("on_hand")
    return int(value) if value is not None else None


def test_a_changelog_that_refuses_writes_stops_the_worker_and_nothing_is_lost(
    local_stack: Settings,
) -> None:
    """Given a worker whose table changelog stops taking writes (its max.message.bytes set
    below a state record's size), when receipts arrive, then the worker retries, stops on
    its own and never acknowledges events whose state Kafka did not take; and once the
    changelog takes writes again and the worker is restarted, every receipt is applied
    exactly once."""
    app_id = f"unacked-{uuid.uuid4().hex[:8]}"
    sku = f"unacked-{uuid.uuid4().hex[:6]}"
    codec = single_object_codec()
    worker = WorkerProcess(
        app_id,
        free_port(),
        local_stack.state_dir / "logs",
        STOCKFLOW_PRODUCE_TIMEOUT_SECONDS=str(PRODUCE_TIMEOUT_S),
    )
    changelog = f"{app_id}-sku-state-changelog"
    worker.start()
    try:
        produce_events(
            local_stack, codec, [stock_event(f"{sku}-0", "receipt", sku, 1, location="main")]
        )
        wait_for(lambda: _on_hand(worker, sku) == 1, timeout=60, what="the first receipt")
        _max_message_bytes(local_stack, changelog, 64)
        receipts = [
            stock_event(f"{sku}-{i}", "receipt", sku, 1, location="main")
            for i in range(1, RECEIPTS + 1)
        ]
        produce_events(local_stack, codec, receipts)
        wait_for(lambda: not worker.alive(), timeout=120, what="the worker to stop")
        code = worker.proc.returncode if worker.proc is not None else None
        logged = worker.logged()
        assert code != 0, f"the worker exited with {code}"
        assert "ledger stops" in logged and "not acknowledged" in logged, worker.log_tail()
        _max_message_bytes(local_stack, changelog, None)
        worker.start()
        wait_for(lambda: _on_hand(worker, sku) == RECEIPTS + 1, timeout=120, what="every receipt")
        print(
            f"\n[changelog refused] worker stopped by itself (exit {code}) after "
            f"{RECEIPTS} receipts its changelog did not take; restarted: on_hand "
            f"{_on_hand(worker, sku)}/{RECEIPTS + 1}"
        )
    finally:
        worker.stop()
