"""`stockflow stack up|down|status`: the local Kafka, ClickHouse, Prometheus (and registry)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from deploy.local.clickhouse import ClickHouse
from deploy.local.kafka import Kafka, KafkaCluster, cluster_nodes, recorded_nodes
from deploy.local.kafka_security import KafkaSecurity
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


def kafka_cluster(
    settings: Settings, brokers: int | None = None, *, secure: bool = False
) -> KafkaCluster:
    """The stack's Kafka nodes: ``brokers`` of them, or those it last started (one if none)."""
    nodes = cluster_nodes(settings, brokers) if brokers is not None else None
    nodes = nodes or recorded_nodes(settings) or cluster_nodes(settings, 1)
    return KafkaCluster(settings, nodes, secure=secure)


def services(
    settings: Settings,
    *,
    with_registry: bool = False,
    brokers: int | None = None,
    secure: bool = False,
) -> list[Service]:
    """The stack's services in start order. ``secure`` (or a state folder whose broker was
    formatted secure): Kafka over SASL_SSL with ACLs, ClickHouse over TLS with a password."""
    secure = secure or KafkaSecurity.is_on(settings)
    chosen: list[Service] = [*kafka_cluster(settings, brokers, secure=secure).nodes]
    chosen += [ClickHouse(settings, secure=secure), Prometheus(settings)]
    if with_registry:
        chosen.append(Registry(settings))
    return chosen


def up(
    settings: Settings,
    *,
    with_registry: bool = False,
    brokers: int | None = None,
    secure: bool = False,
) -> None:
    """Start whatever is not running yet; idempotent. ``brokers``: Kafka nodes (default:
    the cluster running in this state folder, else one). ``secure``: see :func:`services`;
    one broker only."""
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    secure = secure or KafkaSecurity.is_on(settings)
    if secure and (brokers or 1) > 1:
        raise StackError(
            "the secure local stack runs one broker: start --secure without --brokers, "
            "or --brokers N without --secure"
        )
    cluster = kafka_cluster(settings, secure=secure)  # the nodes last started here, if any
    if any(kafka.process.pid() is not None for kafka in cluster.nodes):
        if brokers is not None and brokers != len(cluster.nodes):
            raise StackError(
                f"a {len(cluster.nodes)}-broker Kafka runs in {settings.state_dir}; "
                f"stop the stack first (stockflow stack down) to start {brokers}"
            )
    else:
        cluster = kafka_cluster(settings, brokers or 1, secure=secure)
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
    rest = services(settings, with_registry=with_registry, secure=secure)[len(cluster.nodes) :]
    for service in rest:
        if service.process.pid() is not None:
            say(f"{service.name} already running on {service.where()}")
            continue
        began = time.monotonic()
        service.start()
        say(f"{service.name} ready in {time.monotonic() - began:.1f} s")


def secure_access(settings: Settings) -> KafkaSecurity | None:
    """The secure stack's credentials, or None for a plaintext stack."""
    return KafkaSecurity(settings) if KafkaSecurity.is_on(settings) else None


def down(settings: Settings) -> list[str]:
    """Stop every service this stack started (by pid); returns the names stopped."""
    stopped = []
    chosen = services(settings, with_registry=True)
    nodes = [s for s in chosen if isinstance(s, Kafka)]
    for service in reversed([s for s in chosen if not isinstance(s, Kafka)]):
        if service.stop():
            say(f"{service.name} stopped")
            stopped.append(service.name)
    # a cluster's nodes stop together: stopped one by one, the last ones lose their
    # controller quorum and wait out their shutdown timeout
    with ThreadPoolExecutor(max_workers=max(1, len(nodes))) as pool:
        for node, done in zip(nodes, pool.map(lambda n: n.stop(), nodes), strict=True):
            if done:
                say(f"{node.name} stopped")
                stopped.append(node.name)
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
