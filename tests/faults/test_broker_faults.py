"""kill -9 of Kafka brokers while the ledger works and a producer publishes.

Two clusters of the test's own, on free ports, in their own state folders: a single broker
(killed and restarted: the ledger and the producer wait and go on by themselves), and the
local stack's three-node KRaft cluster (``stockflow stack up --brokers 3``: replication 3,
``min.insync.replicas`` 2), where the broker leading most ``stock.events.v1`` partitions
and the ledger group's coordinator are killed and restarted in turn. Each run prints its
figures: events, kills, lost, doubled, how long the ledger took to commit progress again and
the cluster to have every replica back in sync.

Sizes (CI defaults; larger runs by environment): ``STOCKFLOW_BROKER_FAULT_EVENTS`` (8,000
at least; the producer goes on until every kill is over), ``STOCKFLOW_BROKER_FAULT_RATE``
(events/s offered, 200), ``STOCKFLOW_BROKER_KILLS`` (kills in the three-node cluster, 2),
``STOCKFLOW_BROKER_DOWN_SECONDS`` (how long a killed broker stays down, 5),
``STOCKFLOW_FAULT_KAFKA_HEAP_MB`` (heap per broker, 256).
"""

from __future__ import annotations

import dataclasses
import os
import random
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, Message, Producer
from confluent_kafka import TopicPartition as CkTopicPartition
from confluent_kafka.admin import AdminClient

from deploy.local.credentials import operator_token
from deploy.local.kafka import KafkaCluster, KafkaNode, cluster_nodes
from deploy.local.process import port_in_use
from schemas.codec import single_object_codec
from streams.kernel.kafka_admin import ensure_topics
from streams.kernel.kafka_config import consumer_config, producer_config
from streams.kernel.produce import produce
from streams.kernel.settings import Settings
from streams.kernel.topics import STOCK_EVENTS, STOCK_MOVEMENTS
from streams.ledger.config import DEFAULT_CONFIG
from streams.ledger.rules import apply
from streams.ledger.state import SkuState
from tests.faults.test_worker_crash import _stream
from tests.support.kafka import group_lag, read_topic, wait_for
from tests.support.ports import free_port
from tests.support.worker import WorkerProcess

pytestmark = [pytest.mark.integration, pytest.mark.faults]

EVENTS = int(os.environ.get("STOCKFLOW_BROKER_FAULT_EVENTS", "8000"))
RATE = int(os.environ.get("STOCKFLOW_BROKER_FAULT_RATE", "200"))
KILLS = int(os.environ.get("STOCKFLOW_BROKER_KILLS", "2"))
DOWN_S = float(os.environ.get("STOCKFLOW_BROKER_DOWN_SECONDS", "5"))
HEAP_MB = int(os.environ.get("STOCKFLOW_FAULT_KAFKA_HEAP_MB", "256"))


def _cluster_settings(base: Settings, bootstrap: str, folder: str) -> Settings:
    return dataclasses.replace(
        base,
        state_dir=base.state_dir / folder,
        bootstrap_servers=bootstrap,
        kafka_heap_mb=HEAP_MB,
        replication_factor=0,  # the cluster's own
        min_insync_replicas=0,
    )


@pytest.fixture(scope="module")
def one_broker(local_stack: Settings) -> Iterator[tuple[Settings, KafkaCluster]]:
    """A fresh single-node Kafka of this module's own."""
    node = KafkaNode(1, free_port(), free_port())
    settings = _cluster_settings(local_stack, f"127.0.0.1:{node.port}", "faults-kafka-1")
    settings = dataclasses.replace(
        settings, kafka_port=node.port, kafka_controller_port=node.controller_port
    )
    cluster = KafkaCluster(settings, [node])
    cluster.stop()  # one an interrupted run left behind
    cluster.wipe()
    try:
        cluster.start()
        ensure_topics(settings)
        yield settings, cluster
    finally:
        cluster.stop()


def _free_layout(nodes: int) -> tuple[int, int, int]:
    """A (broker port, controller port, step) whose nodes' ports are all free, below the
    kernel's ephemeral range: the nodes bind one after another, seconds apart, and a port
    of that range can meanwhile become the local end of some client's connection."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for _ in range(100):
        base, step = random.randrange(10_000, low - 1_000), random.randrange(7, 200)
        ports = [base + (n * step) + d for n in range(nodes) for d in (0, 1)]
        if all(p < low and not port_in_use(p) for p in ports):
            return base, base + 1, step
    raise RuntimeError("no free ports for a local cluster")


def _stockflow(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streams.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.fixture(scope="module")
def three_brokers(local_stack: Settings) -> Iterator[tuple[Settings, KafkaCluster]]:
    """`stockflow stack up --brokers 3` in a state folder of its own, on free ports; `stack
    status` shows every node, `stack down` stops them all."""
    port, controller, step = _free_layout(3)
    state = local_stack.state_dir / "faults-cluster-3"
    env = {
        "STOCKFLOW_STATE_DIR": str(state),
        "STOCKFLOW_KAFKA_PORT": str(port),
        "STOCKFLOW_KAFKA_CONTROLLER_PORT": str(controller),
        "STOCKFLOW_KAFKA_NODE_PORT_STEP": str(step),
        "STOCKFLOW_KAFKA_HEAP_MB": str(HEAP_MB),
        "STOCKFLOW_CLICKHOUSE_PORT": str(free_port()),
        "STOCKFLOW_CLICKHOUSE_HTTP_PORT": str(free_port()),
        "STOCKFLOW_PROMETHEUS_PORT": str(free_port()),
        "STOCKFLOW_BOOTSTRAP_SERVERS": "",
        "STOCKFLOW_REPLICATION_FACTOR": "0",
        "STOCKFLOW_MIN_INSYNC_REPLICAS": "0",
    }
    base = dataclasses.replace(
        local_stack,
        state_dir=state,
        kafka_port=port,
        kafka_controller_port=controller,
        kafka_node_port_step=step,
    )
    nodes = cluster_nodes(base, 3)
    settings = _cluster_settings(
        local_stack, ",".join(f"127.0.0.1:{n.port}" for n in nodes), "faults-cluster-3"
    )
    cluster = KafkaCluster(settings, nodes)
    _stockflow(env, "stack", "down")  # what an interrupted run left behind
    cluster.wipe()
    began = time.monotonic()
    try:
        up = _stockflow(env, "stack", "up", "--brokers", "3")
        assert up.returncode == 0, up.stderr[-3000:]
        print(f"\n[cluster] 3 brokers at {settings.bootstrap} in {time.monotonic() - began:.1f} s")
        status = _stockflow(env, "stack", "status")
        assert status.returncode == 0, status.stdout + status.stderr
        for node in nodes:
            row = next(
                r for r in status.stdout.splitlines() if r.startswith(f"kafka-{node.node_id}")
            )
            assert "running" in row and str(node.port) in row
        yield settings, cluster
    finally:
        down = _stockflow(env, "stack", "down")
        assert down.returncode == 0, down.stderr
        assert not any(port_in_use(p) for n in nodes for p in (n.port, n.controller_port))


@dataclass
class Publisher:
    """Publishes ``events`` at ``rate``/s with the project's producer settings (idempotent,
    acks=all) until at least ``minimum`` are out and ``done`` is set; counts failures."""

    settings: Settings
    events: list[dict[str, Any]]
    minimum: int
    rate: int
    done: threading.Event = field(default_factory=threading.Event)
    sent: int = 0
    failed: list[str] = field(default_factory=list)

    def run(self) -> None:
        codec = single_object_codec()
        producer = Producer(
            producer_config(self.settings, **{"client.id": "broker-faults", "log_level": 2})
        )

        def delivered(err: KafkaError | None, _: Message) -> None:
            if err is not None:
                self.failed.append(str(err))

        began = time.monotonic()
        for event in self.events:
            if self.sent >= self.minimum and self.done.is_set():
                break
            value = codec.encode(STOCK_EVENTS.value_schema, event)
            produce(
                producer, STOCK_EVENTS.name, event["sku"].encode(), value, on_delivery=delivered
            )
            self.sent += 1
            ahead = self.sent / self.rate - (time.monotonic() - began)
            if ahead > 0:
                time.sleep(ahead)
            producer.poll(0)
        left = producer.flush(300)
        if left:
            self.failed.append(f"{left} records not delivered after 300 s")


class Probe:
    """Reads the ledger group's committed offsets and the cluster's metadata through one
    consumer that never joins the group, for the whole run. Not an admin client: librdkafka
    2.16's admin requests can abort the process (``rd_kafka_enq_once_del_source_return``)
    when their broker dies under them. Quiet about refused connections."""

    def __init__(self, settings: Settings, group: str) -> None:
        self.consumer = Consumer(
            consumer_config(settings, group, **{"socket.timeout.ms": 2000, "log_level": 2})
        )
        self.parts = [
            CkTopicPartition(STOCK_EVENTS.name, p)
            for p in self.consumer.list_topics(STOCK_EVENTS.name, timeout=10)
            .topics[STOCK_EVENTS.name]
            .partitions
        ]

    def committed(self) -> int | None:
        """The sum of the group's committed offsets on the input; None while unanswered."""
        try:
            found = self.consumer.committed(self.parts, timeout=3)
        except Exception:  # the cluster or the group's coordinator is down: no answer yet
            return None
        return sum(max(tp.offset, 0) for tp in found)

    def whole(self, brokers: int) -> bool:
        """Every partition of every topic has a leader and all its replicas in sync."""
        try:
            meta = self.consumer.list_topics(timeout=3)
        except Exception:
            return False
        if len(meta.brokers) < brokers:
            return False
        return all(
            p.leader >= 0 and len(p.isrs) == len(p.replicas)
            for t in meta.topics.values()
            for p in t.partitions.values()
        )

    def close(self) -> None:
        self.consumer.close()


def leader_of_most_events(settings: Settings) -> int:
    admin = AdminClient({"bootstrap.servers": settings.bootstrap})
    parts = admin.list_topics(STOCK_EVENTS.name, timeout=10).topics[STOCK_EVENTS.name].partitions
    return Counter(p.leader for p in parts.values()).most_common(1)[0][0]


def coordinator_of(settings: Settings, group: str) -> int:
    admin = AdminClient({"bootstrap.servers": settings.bootstrap})
    described = admin.describe_consumer_groups([group])[group].result(timeout=10)
    return int(described.coordinator.id)


@dataclass
class Kill:
    node: int
    role: str
    resumed_s: float = 0.0  # until the ledger committed progress again
    whole_s: float = 0.0  # until every replica was back in sync


def _kill_and_restart(
    probe: Probe, cluster: KafkaCluster, group: str, node_id: int, role: str
) -> Kill:
    kill = Kill(node_id, role)
    before = probe.committed() or 0
    kafka = cluster.node(node_id)
    began = time.monotonic()
    assert kafka.kill(), f"broker {node_id} was not running"
    time.sleep(DOWN_S)
    kafka.launch()  # restarted on its data folder, as after a crash
    resumed: float | None = None
    while time.monotonic() - began < 240:
        if resumed is None and (probe.committed() or 0) > before:
            resumed = time.monotonic() - began
        if resumed is not None and probe.whole(len(cluster.nodes)):
            kill.resumed_s, kill.whole_s = resumed, time.monotonic() - began
            return kill
        time.sleep(0.25)
    raise AssertionError(
        f"after killing broker {node_id} ({role}): ledger resumed after {resumed} s, "
        f"cluster not whole within 240 s; see {kafka.process.log_file}"
    )


def _expected(
    events: list[dict[str, Any]],
) -> tuple[dict[str, SkuState], dict[str, tuple[Any, ...]]]:
    """The pure rules' states and movements (by id: deltas and quantities after)."""
    states: dict[str, SkuState] = {}
    movements: dict[str, tuple[Any, ...]] = {}
    for event in events:
        state, emitted = apply(
            states.get(event["sku"]), event, DEFAULT_CONFIG, event["ingested_at"]
        )
        states[event["sku"]] = state
        for m in emitted.movements:
            movements[m["movement_id"]] = _movement_facts(m)
    return states, movements


def _movement_facts(m: dict[str, Any]) -> tuple[Any, ...]:
    return (
        m["location"],
        m["delta_on_hand"],
        m["delta_reserved"],
        m["on_hand_after"],
        m["reserved_after"],
    )


def run_with_broker_kills(
    settings: Settings,
    cluster: KafkaCluster,
    kills: Sequence[Callable[[str], tuple[int, str]]],
    what: str,
) -> None:
    """Stream mixed events through a ledger worker while each of ``kills`` (a choice of
    broker, by group id) is killed and restarted; then compare with the pure rules."""
    prefix = f"bk-{uuid.uuid4().hex[:6]}"
    pool: list[dict[str, Any]] = []
    for round_ in range(max(1, -(-max(EVENTS, RATE * 120) // 20_000))):
        for e in _stream(prefix, random.Random(31 + round_)):
            if round_:
                e = {**e, "event_id": f"{e['event_id']}-r{round_}"}
                if e.get("order_id"):
                    e["order_id"] = f"{e['order_id']}-r{round_}"
            pool.append(e)

    app_id = f"brokers-{uuid.uuid4().hex[:8]}"
    worker = WorkerProcess(
        app_id,
        free_port(),
        settings.state_dir.parent / "logs",
        token=operator_token(settings),  # in this cluster's token topic, which it follows
        STOCKFLOW_BOOTSTRAP_SERVERS=settings.bootstrap,
        STOCKFLOW_REPLICATION_FACTOR="0",
        STOCKFLOW_MIN_INSYNC_REPLICAS="0",
    )
    publisher = Publisher(settings, pool, EVENTS, RATE)
    sender = threading.Thread(target=publisher.run)
    done: list[Kill] = []
    probe: Probe | None = None
    try:
        worker.start()
        probe = Probe(settings, app_id)
        sender.start()
        wait_for(
            lambda: publisher.sent > 0 and (probe.committed() or 0) > 0,
            timeout=60,
            what="first commit",
        )
        time.sleep(2.0)
        for choose in kills:
            node_id, role = choose(app_id)
            done.append(_kill_and_restart(probe, cluster, app_id, node_id, role))
            print(
                f"  killed broker {node_id} ({role}): ledger committed again after "
                f"{done[-1].resumed_s:.1f} s, every replica in sync after {done[-1].whole_s:.1f} s"
            )
        publisher.done.set()
        sender.join(timeout=600)
        assert not sender.is_alive()
        assert publisher.failed == [], publisher.failed[:5]
        wait_for(
            lambda: group_lag(settings, app_id, STOCK_EVENTS.name) == 0,
            timeout=300,
            what="catch-up",
        )
        assert worker.alive(), worker.log_tail()

        events = pool[: publisher.sent]
        expected, expected_moves = _expected(events)
        off = []
        for sku, state in expected.items():
            got = worker.stock(sku)
            have = got and {
                name: tuple(loc[k] for k in ("on_hand", "reserved", "unsellable"))
                for name, loc in got["locations"].items()
            }
            want = {
                name: (loc.on_hand, loc.reserved, loc.unsellable)
                for name, loc in state.locations.items()
            }
            if have != want:
                off.append((sku, want, have))

        codec = single_object_codec()
        dash = f"{prefix}-"
        records = read_topic(
            settings,
            codec,
            STOCK_MOVEMENTS,
            lambda r: r["sku"].startswith(dash),
            until=lambda _: False,
            timeout=15,
        )
        seen: dict[str, set[tuple[Any, ...]]] = {}
        for m in records:
            seen.setdefault(m["movement_id"], set()).add(_movement_facts(m))
        lost = len(expected_moves.keys() - seen.keys())
        doubled = len(seen.keys() - expected_moves.keys()) + sum(
            1
            for mid, facts in seen.items()
            if len(facts) > 1 or (mid in expected_moves and facts != {expected_moves[mid]})
        )
        inputs = read_topic(
            settings,
            codec,
            STOCK_EVENTS,
            lambda r: r["sku"].startswith(dash),
            until=lambda _: False,
            timeout=10,
        )
        repeated_inputs = len(inputs) - len({e["event_id"] for e in inputs})
        print(
            f"\n[{what}] {len(events):,} events, {len(done)} kills, "
            f"{len(expected_moves):,} movements expected; "
            f"lost {lost}, doubled {doubled}, SKUs off {len(off)}; "
            f"movement records {len(records):,} ({len(seen):,} unique), "
            f"input records repeated {repeated_inputs}; "
            f"ledger committed again after {', '.join(f'{k.resumed_s:.1f}' for k in done)} s, "
            f"replicas in sync after {', '.join(f'{k.whole_s:.1f}' for k in done)} s"
        )
        assert off == [], off[:5]
        assert (lost, doubled) == (0, 0)
        assert repeated_inputs == 0
    finally:
        publisher.done.set()
        publisher.minimum = 0
        if sender.is_alive():
            sender.join(timeout=300)
        worker.stop()
        if probe is not None:
            probe.close()


def test_the_single_broker_killed_mid_stream_loses_nothing_and_doubles_nothing(
    one_broker: tuple[Settings, KafkaCluster],
) -> None:
    """Given a ledger worker applying mixed events that an idempotent producer publishes
    through a single Kafka broker,
    when the broker is killed with SIGKILL and restarted a few seconds later,
    then the worker and the producer go on by themselves (no restart, no delivery failure),
    every SKU equals the state the pure rules compute from the input, every movement the
    rules emit is there once (none lost, none with two versions), and no input record was
    written twice."""
    settings, cluster = one_broker
    run_with_broker_kills(settings, cluster, [lambda _: (1, "the only broker")], "1 broker")


def test_three_brokers_with_the_leader_and_the_coordinator_killed_lose_nothing(
    three_brokers: tuple[Settings, KafkaCluster],
) -> None:
    """Given the local stack's three-broker KRaft cluster (replication 3, min.insync 2 for
    stockflow's and Kafka's internal topics), a ledger worker and an idempotent producer
    publishing mixed events,
    when the broker leading most stock-event partitions and then the ledger group's
    coordinator (in turn, ``STOCKFLOW_BROKER_KILLS`` times) are killed with SIGKILL and
    restarted under load,
    then nothing is lost, nothing is applied twice, every SKU equals the pure rules, and
    the worker and producer never needed a restart."""
    settings, cluster = three_brokers
    admin = AdminClient({"bootstrap.servers": settings.bootstrap})
    described = admin.list_topics(timeout=10).topics
    for topic in (STOCK_EVENTS.name, STOCK_MOVEMENTS.name):
        assert {len(p.replicas) for p in described[topic].partitions.values()} == {3}

    def leader(_: str) -> tuple[int, str]:
        return leader_of_most_events(settings), "leader of most stock.events.v1 partitions"

    def coordinator(group: str) -> tuple[int, str]:
        return coordinator_of(settings, group), "coordinator of the ledger's group"

    plan = [leader if k % 2 == 0 else coordinator for k in range(KILLS)]
    run_with_broker_kills(settings, cluster, plan, "3 brokers")
