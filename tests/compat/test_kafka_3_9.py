"""Every client path of the project against a Kafka 3.9 broker, for users on an older cluster.

The local stack runs Kafka 4.x; this module starts a second broker, Kafka 3.9.2 (or
``STOCKFLOW_COMPAT_KAFKA_VERSION``) from Maven Central, on free ports with its own state
folder under the stack's (so its jars are fetched once). While the module runs, the
environment points at that broker, as a user of a 3.9 cluster would set it: the ledger
worker, the connectors and the sink started here all talk to 3.9. ClickHouse is the stack's.
"""

from __future__ import annotations

import dataclasses
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.local.kafka import Kafka
from deploy.local.process import StackError
from schemas.codec import codec_for
from streams.kernel.kafka_admin import ensure_topics
from streams.kernel.settings import Settings
from tests.fakes.e2e import Stack, e2e_stack
from tests.integration import test_kafka_clients as clients
from tests.integration.sink_support import drop_database, running_sink, scalar, sink_settings
from tests.support.kafka import wait_for
from tests.support.ports import free_port

pytestmark = pytest.mark.compat

VERSION = os.environ.get("STOCKFLOW_COMPAT_KAFKA_VERSION", "3.9.2")


@pytest.fixture(scope="module")
def kafka39(local_stack: Settings) -> Iterator[Settings]:
    """A fresh Kafka 3.9 cluster, and the environment pointing at it, for this module."""
    port, controller = free_port(), free_port()
    compat = dataclasses.replace(
        local_stack,
        kafka_version=VERSION,
        kafka_port=port,
        kafka_controller_port=controller,
        bootstrap_servers=f"127.0.0.1:{port}",
        state_dir=local_stack.state_dir / f"compat-kafka-{VERSION}",
    )
    broker = Kafka(compat)
    broker.stop()  # one an interrupted run left behind
    broker.wipe()  # an empty cluster every run; the jars stay
    broker.process.log_file.unlink(missing_ok=True)
    began = time.monotonic()
    try:
        broker.start()
        ensure_topics(compat)
        print(
            f"\n[compat] Kafka {VERSION} at {compat.bootstrap} in {time.monotonic() - began:.1f} s"
        )
        with pytest.MonkeyPatch.context() as env:
            env.setenv("STOCKFLOW_STATE_DIR", str(compat.state_dir))
            env.setenv("STOCKFLOW_KAFKA_VERSION", VERSION)
            env.setenv("STOCKFLOW_KAFKA_PORT", str(port))
            env.setenv("STOCKFLOW_KAFKA_CONTROLLER_PORT", str(controller))
            env.setenv("STOCKFLOW_BOOTSTRAP_SERVERS", compat.bootstrap)
            yield compat
    finally:
        broker.stop()


def test_the_broker_is_kafka_3_and_logs_through_its_backend(kafka39: Settings) -> None:
    """Given the second broker, then it is a 3.x release and its log is written (slf4j bound
    to reload4j, not the silent NOP logger)."""
    assert int(kafka39.kafka_version.split(".")[0]) == 3
    log = Kafka(kafka39).process.log_file.read_text(errors="replace")
    assert f"Kafka version: {VERSION}" in log
    assert "Kafka Server started" in log
    assert "no-operation (NOP) logger" not in log


def test_confluent_kafka_produces_and_consumes(kafka39: Settings, unique_name: str) -> None:
    """Given Kafka 3.9, when confluent-kafka (idempotent producer, classic group) runs its
    round trip, then all 500 records come back in order."""
    clients.test_confluent_kafka_produces_and_consumes_through_the_real_broker(
        kafka39.bootstrap, unique_name
    )


def test_aiokafka_creates_topics_and_round_trips_records(
    kafka39: Settings, unique_name: str
) -> None:
    """Given Kafka 3.9, when aiokafka (Faust's transport) creates a topic, produces and
    consumes in a group, then every record comes back."""
    clients.test_aiokafka_creates_topics_and_round_trips_records(kafka39.bootstrap, unique_name)


@pytest.fixture(scope="module")
def pipeline(kafka39: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    folder = tmp_path_factory.mktemp("compat-e2e")
    with e2e_stack(
        kafka39, folder, worker_port=free_port(), connectors_port=free_port(), n_skus=2
    ) as stack:
        yield stack


def test_ledger_connectors_and_sink_handle_a_small_day(kafka39: Settings, pipeline: Stack) -> None:
    """Given Kafka 3.9, a ledger worker (Faust), the connectors and the fake shops,
    when stock is counted, a Shopify order arrives and is cancelled, and a WooCommerce order
    is posted to the worker's HTTP API,
    then the ledger and both shops agree after each step, and the sink's ClickHouse movements
    add up to the ledger's on_hand."""
    stack = pipeline
    fakes = stack.fakes
    chairs, desks = stack.skus
    stack.count({chairs: 10, desks: 5})  # confluent-kafka → worker → levels → connectors

    order = fakes.call(lambda: fakes.shopify.place_order([(stack.variant(chairs), 3)]))
    assert fakes.run(fakes.shopify.deliver("orders/create", order)).statuses == [200]
    wait_for(lambda: fakes.woo_qty(stack.pid(chairs)) == 7, timeout=30, what="Woo shows 7")
    assert stack.ledger_qty(chairs, "shopify") == 7

    cancelled = fakes.call(lambda: fakes.shopify.cancel_order(order["id"]))
    assert fakes.run(fakes.shopify.deliver("orders/cancelled", cancelled)).statuses == [200]
    wait_for(lambda: fakes.woo_qty(stack.pid(chairs)) == 10, timeout=30, what="Woo back at 10")
    assert stack.ledger_qty(chairs, "woocommerce") == 10

    status, _ = stack.worker.post(
        "/v1/events",
        {
            "event_id": f"compat-{uuid.uuid4().hex[:8]}",
            "type": "order_placed",
            "sku": desks,
            "qty": 2,
            "channel": "woocommerce",
            "order_id": "w-1",
        },
    )
    assert status == 202  # the worker's intake publishes through Faust's aiokafka producer
    wait_for(lambda: fakes.shopify_qty(stack.item(desks)) == 3, timeout=30, what="Shopify shows 3")
    state = stack.worker.stock(desks)
    assert state is not None
    assert [(loc["on_hand"], loc["reserved"]) for loc in state["locations"].values()] == [(5, 2)]

    database = f"compat_{uuid.uuid4().hex[:10]}"
    settings = sink_settings(kafka39, database)
    try:
        with running_sink(settings, codec_for(settings), f"compat-sink-{database}"):
            wait_for(
                lambda: _movement_totals(settings, stack.skus) == {chairs: 10, desks: 5},
                timeout=60,
                what="the sink's movements to add up to the ledger's on_hand",
            )
    finally:
        drop_database(settings)


def _movement_totals(settings: Settings, skus: list[str]) -> dict[str, int]:
    """delta_on_hand summed per SKU over distinct movements; {} before the tables exist."""
    db = settings.clickhouse_database
    try:
        rows = scalar(
            settings,
            "SELECT groupArray((s, total)) FROM (SELECT s, sum(d) AS total FROM"
            " (SELECT movement_id, any(sku) AS s, any(delta_on_hand) AS d FROM"
            f" (SELECT * FROM {db}.stock_movements WHERE has(%(skus)s, sku))"
            " GROUP BY movement_id) GROUP BY s)",
            {"skus": skus},
        )
    except Exception:
        return {}
    return {sku: int(total) for sku, total in rows}


def test_data_formatted_by_a_newer_kafka_is_refused_with_a_way_out(
    kafka39: Settings, tmp_path: Path
) -> None:
    """Given a data folder formatted by Kafka 4.4.0, when Kafka 3.9 is asked to use it,
    then the stack refuses before starting Java and says what to do (3.9 cannot read it)."""
    broker = Kafka(dataclasses.replace(kafka39, state_dir=tmp_path))
    broker.data.mkdir(parents=True)
    (broker.data / "meta.properties").write_text("node.id=1\n")
    (broker.home / "data.version").write_text("4.4.0\n")
    with pytest.raises(StackError, match=r"formatted by Kafka 4\.4\.0.*STOCKFLOW_STATE_DIR"):
        broker._format(broker.home / "server.properties")
