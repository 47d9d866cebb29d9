"""`stockflow stack up|down|status`: the local Kafka, ClickHouse, Prometheus (and registry)."""

from __future__ import annotations

import time
from typing import Protocol

from deploy.local.clickhouse import ClickHouse
from deploy.local.kafka import Kafka
from deploy.local.kafka_security import KafkaSecurity
from deploy.local.process import ManagedProcess, port_in_use
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


def services(
    settings: Settings, *, with_registry: bool = False, secure: bool = False
) -> list[Service]:
    """The stack's services in start order. ``secure`` (or a state folder whose broker was
    formatted secure): Kafka over SASL_SSL with ACLs, ClickHouse over TLS with a password."""
    secure = secure or KafkaSecurity.is_on(settings)
    chosen: list[Service] = [
        Kafka(settings, secure=secure),
        ClickHouse(settings, secure=secure),
        Prometheus(settings),
    ]
    if with_registry:
        chosen.append(Registry(settings))
    return chosen


def up(settings: Settings, *, with_registry: bool = False, secure: bool = False) -> None:
    """Start whatever is not running yet; idempotent."""
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    for service in services(settings, with_registry=with_registry, secure=secure):
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
    return all(state.startswith("running") for name, state, _ in rows if name in core)


def foreign_ports(settings: Settings) -> list[int]:
    """Ports of the stack that something else (not this stack) is listening on."""
    taken = []
    for service in services(settings, with_registry=True):
        if service.process.pid() is None:
            for port in _ports(settings, service.name):
                if port_in_use(port):
                    taken.append(port)
    return taken


def _ports(settings: Settings, name: str) -> list[int]:
    return {
        "kafka": [settings.kafka_port, settings.kafka_controller_port],
        "clickhouse": [settings.clickhouse_port, settings.clickhouse_http_port],
        "prometheus": [settings.prometheus_port],
        "registry": [settings.registry_port],
    }[name]
