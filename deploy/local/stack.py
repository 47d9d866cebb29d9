"""`stockflow stack up|down|status`: the local Kafka, ClickHouse, Prometheus (and registry)."""

from __future__ import annotations

import time
from typing import Protocol

from deploy.local.clickhouse import ClickHouse
from deploy.local.kafka import Kafka, KafkaCluster, cluster_nodes, recorded_nodes
from deploy.local.process import ManagedProcess, StackError, port_in_use
from deploy.local.prometheus import Prometheus
from deploy.local.registry import Registry
from deploy.local.tools import say
from streams.kernel.settings import Settings


class Service(Protocol):
    name: str
    process: ManagedProcess

    def where(self) -> str: ...
    def start(self) -> None: ...
    def stop(self) -> bool: ...


def kafka_cluster(settings: Settings, brokers: int | None = None) -> KafkaCluster:
    """The stack's Kafka nodes: ``brokers`` of them, or those it last started (one if none)."""
    if brokers is not None:
        return KafkaCluster(settings, cluster_nodes(settings, brokers))
    return KafkaCluster(settings, recorded_nodes(settings) or cluster_nodes(settings, 1))


def services(
    settings: Settings, *, with_registry: bool = False, brokers: int | None = None
) -> list[Service]:
    """The stack's services in start order."""
    chosen: list[Service] = [*kafka_cluster(settings, brokers).nodes]
    chosen += [ClickHouse(settings), Prometheus(settings)]
    if with_registry:
        chosen.append(Registry(settings))
    return chosen


def up(settings: Settings, *, with_registry: bool = False, brokers: int | None = None) -> None:
    """Start whatever is not running yet; idempotent. ``brokers``: Kafka nodes (default:
    the cluster running in this state folder, else one)."""
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    cluster = kafka_cluster(settings)  # the nodes last started here, if any still runs
    if any(kafka.process.pid() is not None for kafka in cluster.nodes):
        if brokers is not None and brokers != len(cluster.nodes):
            raise StackError(
                f"a {len(cluster.nodes)}-broker Kafka runs in {settings.state_dir}; "
                f"stop the stack first (stockflow stack down) to start {brokers}"
            )
    else:
        cluster = kafka_cluster(settings, brokers or 1)
    waiting = [kafka for kafka in cluster.nodes if kafka.process.pid() is None]
    for kafka in cluster.nodes:
        if kafka not in waiting:
            say(f"{kafka.name} already running on {kafka.where()}")
    if waiting:
        began = time.monotonic()
        cluster.start()
        for kafka in waiting:
            say(f"{kafka.name} ready in {time.monotonic() - began:.1f} s")
    cluster.record()
    for service in services(settings, with_registry=with_registry)[len(cluster.nodes) :]:
        if service.process.pid() is not None:
            say(f"{service.name} already running on {service.where()}")
            continue
        began = time.monotonic()
        service.start()
        say(f"{service.name} ready in {time.monotonic() - began:.1f} s")


def down(settings: Settings) -> list[str]:
    """Stop every service this stack started (by pid); returns the names stopped."""
    stopped = []
    for service in reversed(services(settings, with_registry=True)):
        if service.stop():
            say(f"{service.name} stopped")
            stopped.append(service.name)
    return stopped


def status(settings: Settings) -> list[tuple[str, str, str]]:
    """(service, state, where) for each service."""
    rows = []
    for service in services(settings, with_registry=True):
        pid = service.process.pid()
        state = f"running (pid {pid})" if pid else "stopped"
        rows.append((service.name, state, service.where()))
    return rows


def print_status(settings: Settings) -> bool:
    """Print the status table; True when Kafka, ClickHouse and Prometheus all run."""
    rows = status(settings)
    width = max(len(name) for name, _, _ in rows)
    print(f"state folder: {settings.state_dir}")
    for name, state, where in rows:
        print(f"{name:<{width}}  {state:<22}  {where}")
    core = {"kafka", "clickhouse", "prometheus"}
    return all(
        state.startswith("running")
        for name, state, _ in rows
        if name.split("-")[0] in core  # every node of a Kafka cluster: kafka-1, kafka-2, ...
    )


def foreign_ports(settings: Settings) -> list[int]:
    """Ports of the stack that something else (not this stack) is listening on."""
    taken = []
    for service in services(settings, with_registry=True):
        if service.process.pid() is None:
            ports = service.ports if isinstance(service, Kafka) else _ports(settings, service.name)
            for port in ports:
                if port_in_use(port):
                    taken.append(port)
    return taken


def _ports(settings: Settings, name: str) -> list[int]:
    return {
        "clickhouse": [settings.clickhouse_port, settings.clickhouse_http_port],
        "prometheus": [settings.prometheus_port],
        "registry": [settings.registry_port],
    }[name]
