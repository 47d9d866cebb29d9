"""Typed, frozen settings read from the environment (prefix ``STOCKFLOW_``).

Every setting names its variable and default here, and nowhere else.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, fields
from enum import StrEnum
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# A checkout keeps its local stack beside the code; an installed package keeps it in the
# user's state folder (site-packages is no place for Kafka's data).
IN_CHECKOUT = (PROJECT_ROOT / "pyproject.toml").is_file()


class SettingsError(ValueError):
    """A ``STOCKFLOW_*`` variable holds a value that cannot be used; the message says which."""


class Secret:
    """A value that never prints: ``str()`` and ``repr()`` show stars."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('****')" if self._value else "Secret('')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


class ProcessingGuarantee(StrEnum):
    """What the ledger promises when a worker crashes.

    ``at_least_once`` (the default and the only one we run): Kafka may hand an event to the
    ledger again after a crash or rebalance; the ledger keeps each SKU's applied event ids in
    the same changelogged table value as its quantities, so a redelivered event is skipped and
    counted, never applied twice. Output topics may then carry a record twice: downstream
    ClickHouse tables are duplicate-proof by id, and channel pushes are ordered by the per-SKU
    level version, so an older quantity is never written after a newer one.

    ``exactly_once`` turns on Faust's Kafka transactions. It is kept selectable for
    experiments only: Faust's EOS has open bugs (duplicates and losses after kill -9), and the
    ledger's guarantees above do not depend on it.
    """

    AT_LEAST_ONCE = "at_least_once"
    EXACTLY_ONCE = "exactly_once"


def _env(name: str, default: str) -> str:
    return os.environ.get(f"STOCKFLOW_{name}", default)


def _env_int(name: str, default: int) -> int:
    raw = _env(name, str(default))
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"STOCKFLOW_{name}={raw!r} is not an integer") from None
    if value < 0:
        raise SettingsError(f"STOCKFLOW_{name}={raw!r} must not be negative")
    return value


def _env_float(name: str, default: float) -> float:
    raw = _env(name, str(default))
    try:
        return float(raw)
    except ValueError:
        raise SettingsError(f"STOCKFLOW_{name}={raw!r} is not a number") from None


def _env_flag(name: str, *, default: bool) -> bool:
    raw = _env(name, "1" if default else "0").strip().lower()
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"STOCKFLOW_{name}={raw!r}: use 1 or 0")


def _state_dir() -> Path:
    if IN_CHECKOUT:
        default = PROJECT_ROOT / ".stack"
    else:
        xdg = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
        default = Path(xdg) / "stockflow"
    return Path(_env("STATE_DIR", str(default))).resolve()


@dataclass(frozen=True)
class Settings:
    """Ports, paths and choices of one stockflow installation."""

    state_dir: Path = field(default_factory=_state_dir)
    kafka_version: str = field(default_factory=lambda: _env("KAFKA_VERSION", "4.4.0"))
    kafka_port: int = field(default_factory=lambda: _env_int("KAFKA_PORT", 9092))
    kafka_controller_port: int = field(
        default_factory=lambda: _env_int("KAFKA_CONTROLLER_PORT", 9093)
    )
    kafka_heap_mb: int = field(default_factory=lambda: _env_int("KAFKA_HEAP_MB", 512))
    # node n of a local cluster listens on both Kafka ports plus (n - 1) * this step
    kafka_node_port_step: int = field(default_factory=lambda: _env_int("KAFKA_NODE_PORT_STEP", 100))
    bootstrap_servers: str = field(default_factory=lambda: _env("BOOTSTRAP_SERVERS", ""))
    clickhouse_host: str = field(default_factory=lambda: _env("CLICKHOUSE_HOST", "127.0.0.1"))
    clickhouse_port: int = field(default_factory=lambda: _env_int("CLICKHOUSE_PORT", 9000))
    clickhouse_http_port: int = field(
        default_factory=lambda: _env_int("CLICKHOUSE_HTTP_PORT", 8123)
    )
    clickhouse_user: str = field(default_factory=lambda: _env("CLICKHOUSE_USER", "default"))
    clickhouse_password: Secret = field(
        default_factory=lambda: Secret(_env("CLICKHOUSE_PASSWORD", ""))
    )
    clickhouse_database: str = field(
        default_factory=lambda: _env("CLICKHOUSE_DATABASE", "stockflow")
    )
    prometheus_port: int = field(default_factory=lambda: _env_int("PROMETHEUS_PORT", 9090))
    registry_port: int = field(default_factory=lambda: _env_int("REGISTRY_PORT", 8081))
    registry_version: str = field(default_factory=lambda: _env("REGISTRY_VERSION", "3.3.3"))
    schema_registry_url: str = field(default_factory=lambda: _env("SCHEMA_REGISTRY_URL", ""))
    app_id: str = field(default_factory=lambda: _env("APP_ID", "stockflow-ledger"))
    worker_web_port: int = field(default_factory=lambda: _env_int("WORKER_WEB_PORT", 6066))
    sink_group: str = field(default_factory=lambda: _env("SINK_GROUP", "stockflow-sink"))
    sink_metrics_port: int = field(default_factory=lambda: _env_int("SINK_METRICS_PORT", 9464))
    connectors_port: int = field(default_factory=lambda: _env_int("CONNECTORS_PORT", 8088))
    partitions: int = field(default_factory=lambda: _env_int("PARTITIONS", 8))
    # 0: the cluster's default.replication.factor / min.insync.replicas (kernel.replication)
    replication_factor: int = field(default_factory=lambda: _env_int("REPLICATION_FACTOR", 0))
    min_insync_replicas: int = field(default_factory=lambda: _env_int("MIN_INSYNC_REPLICAS", 0))
    processing_guarantee: ProcessingGuarantee = field(
        default_factory=lambda: _guarantee(_env("PROCESSING_GUARANTEE", "at_least_once"))
    )
    offset_reset: str = field(default_factory=lambda: _env("OFFSET_RESET", "earliest"))
    store: str = field(default_factory=lambda: _env("STORE", "rocksdb://"))
    rocksdb_memory_mb: int = field(default_factory=lambda: _env_int("ROCKSDB_MEMORY_MB", 256))
    static_membership: bool = field(
        default_factory=lambda: _env_flag("STATIC_MEMBERSHIP", default=False)
    )
    config_path: str = field(default_factory=lambda: _env("CONFIG", ""))
    # how long the worker waits for Kafka to acknowledge a record before it gives up on it
    produce_timeout_s: float = field(
        default_factory=lambda: _env_float("PRODUCE_TIMEOUT_SECONDS", 30.0)
    )

    def __post_init__(self) -> None:
        if self.produce_timeout_s <= 0:
            raise SettingsError("STOCKFLOW_PRODUCE_TIMEOUT_SECONDS must be positive")
        if self.rocksdb_memory_mb < 16:
            raise SettingsError("STOCKFLOW_ROCKSDB_MEMORY_MB must be at least 16")
        if 0 < self.replication_factor < self.min_insync_replicas:
            raise SettingsError(
                f"STOCKFLOW_MIN_INSYNC_REPLICAS={self.min_insync_replicas} is more than "
                f"STOCKFLOW_REPLICATION_FACTOR={self.replication_factor}: no write could succeed"
            )
        if self.partitions < 1:
            raise SettingsError("STOCKFLOW_PARTITIONS must be at least 1")
        if self.offset_reset not in ("earliest", "latest"):
            raise SettingsError(
                f"STOCKFLOW_OFFSET_RESET={self.offset_reset!r}: use earliest or latest"
            )
        if not self.store.startswith(("memory://", "rocksdb://")):
            raise SettingsError(
                f"STOCKFLOW_STORE={self.store!r}: "
                "use rocksdb:// (the default: recovery reads only the changelog's tail) or "
                "memory:// (every restart replays the whole changelog)"
            )

    @property
    def worker_datadir(self) -> Path:
        """Where a ledger worker keeps its table store (one folder per app id and web port)."""
        return self.state_dir / "worker" / f"{self.app_id}-{self.worker_web_port}"

    @property
    def bootstrap(self) -> str:
        """STOCKFLOW_BOOTSTRAP_SERVERS; else every node of the local stack's cluster."""
        return self.bootstrap_servers or _stack_bootstrap(self) or f"127.0.0.1:{self.kafka_port}"

    def describe(self) -> dict[str, Any]:
        """Every setting with its value, secrets masked: safe to print or log."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


CLUSTER_FILE = "kafka/cluster.json"  # written by `stockflow stack up`: the nodes it started


def _stack_bootstrap(settings: Settings) -> str:
    """The bootstrap list the local stack recorded, if its first node is on our Kafka port."""
    try:
        recorded = json.loads((settings.state_dir / CLUSTER_FILE).read_text())
        bootstrap = str(recorded["bootstrap"])
    except (OSError, ValueError, KeyError, TypeError):
        return ""
    return bootstrap if bootstrap.startswith(f"127.0.0.1:{settings.kafka_port},") else ""


def _guarantee(raw: str) -> ProcessingGuarantee:
    try:
        return ProcessingGuarantee(raw)
    except ValueError:
        choices = ", ".join(g.value for g in ProcessingGuarantee)
        raise SettingsError(
            f"STOCKFLOW_PROCESSING_GUARANTEE={raw!r}: choose one of {choices}"
        ) from None


def load() -> Settings:
    """Settings from the current environment."""
    return Settings()
