"""Typed, frozen settings read from the environment (prefix ``STOCKFLOW_``).

Every setting names its variable and default here, and nowhere else.
"""

from __future__ import annotations

import json
import os
import socket
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


def _env_secret(name: str) -> Secret:
    """``STOCKFLOW_<name>``, or the contents of the file ``STOCKFLOW_<name>_FILE`` names
    (one trailing newline dropped). Never read from a command line; errors never show it."""
    path = os.environ.get(f"STOCKFLOW_{name}_FILE", "")
    if not path:
        return Secret(_env(name, ""))
    if f"STOCKFLOW_{name}" in os.environ:
        raise SettingsError(f"set STOCKFLOW_{name} or STOCKFLOW_{name}_FILE, not both")
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise SettingsError(
            f"STOCKFLOW_{name}_FILE={path!r} cannot be read ({exc.strerror})"
        ) from None
    return Secret(text[:-1] if text.endswith("\n") else text)


KAFKA_SECURITY_PROTOCOLS = ("PLAINTEXT", "SASL_SSL")
KAFKA_SASL_MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256")


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
    # Kafka transport security of every client: PLAINTEXT, or SASL_SSL (TLS checked against
    # the CA file, SCRAM login as kafka_user with the password from the environment or a file)
    kafka_security_protocol: str = field(
        default_factory=lambda: _env("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT").upper()
    )
    kafka_sasl_mechanism: str = field(
        default_factory=lambda: _env("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512").upper()
    )
    kafka_user: str = field(default_factory=lambda: _env("KAFKA_USER", ""))
    kafka_password: Secret = field(default_factory=lambda: _env_secret("KAFKA_PASSWORD"))
    kafka_ca_file: str = field(default_factory=lambda: _env("KAFKA_CA_FILE", ""))
    clickhouse_host: str = field(default_factory=lambda: _env("CLICKHOUSE_HOST", "127.0.0.1"))
    clickhouse_port: int = field(default_factory=lambda: _env_int("CLICKHOUSE_PORT", 9000))
    clickhouse_http_port: int = field(
        default_factory=lambda: _env_int("CLICKHOUSE_HTTP_PORT", 8123)
    )
    clickhouse_user: str = field(default_factory=lambda: _env("CLICKHOUSE_USER", "default"))
    clickhouse_password: Secret = field(default_factory=lambda: _env_secret("CLICKHOUSE_PASSWORD"))
    # TLS to ClickHouse's native port (its tcp_port_secure), checked against this CA file
    clickhouse_secure: bool = field(
        default_factory=lambda: _env_flag("CLICKHOUSE_SECURE", default=False)
    )
    clickhouse_ca_file: str = field(default_factory=lambda: _env("CLICKHOUSE_CA_FILE", ""))
    clickhouse_database: str = field(
        default_factory=lambda: _env("CLICKHOUSE_DATABASE", "stockflow")
    )
    prometheus_port: int = field(default_factory=lambda: _env_int("PROMETHEUS_PORT", 9090))
    registry_port: int = field(default_factory=lambda: _env_int("REGISTRY_PORT", 8081))
    registry_version: str = field(default_factory=lambda: _env("REGISTRY_VERSION", "3.3.3"))
    schema_registry_url: str = field(default_factory=lambda: _env("SCHEMA_REGISTRY_URL", ""))
    app_id: str = field(default_factory=lambda: _env("APP_ID", "stockflow-ledger"))
    worker_web_port: int = field(default_factory=lambda: _env_int("WORKER_WEB_PORT", 6066))
    # the address each listener binds (0.0.0.0: every interface) and the URL other workers
    # reach this one at (a template, see ``worker_url``)
    worker_web_bind: str = field(default_factory=lambda: _env("WORKER_WEB_BIND", LOOPBACK))
    worker_url_template: str = field(default_factory=lambda: _env("WORKER_URL", ""))
    sink_metrics_bind: str = field(default_factory=lambda: _env("SINK_METRICS_BIND", LOOPBACK))
    connectors_bind: str = field(default_factory=lambda: _env("CONNECTORS_BIND", LOOPBACK))
    sink_group: str = field(default_factory=lambda: _env("SINK_GROUP", "stockflow-sink"))
    sink_metrics_port: int = field(default_factory=lambda: _env_int("SINK_METRICS_PORT", 9464))
    connectors_port: int = field(default_factory=lambda: _env_int("CONNECTORS_PORT", 8088))
    waves_port: int = field(default_factory=lambda: _env_int("WAVES_PORT", 8096))  # `waves run`
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
    # HTTP APIs: write requests per second and burst per token and process (a token's own
    # --rate/--burst win), and how far behind the token topic a process may be and still
    # accept a token (also the bound on a revocation reaching every process)
    api_rate: float = field(default_factory=lambda: _env_float("API_RATE", 50.0))
    api_burst: int = field(default_factory=lambda: _env_int("API_BURST", 100))
    tokens_stale_s: float = field(default_factory=lambda: _env_float("TOKENS_STALE_SECONDS", 5.0))
    # outgoing email (purchase orders, alert notifications): one SMTP relay for the installation
    smtp_host: str = field(default_factory=lambda: _env("SMTP_HOST", "127.0.0.1"))
    smtp_port: int = field(default_factory=lambda: _env_int("SMTP_PORT", 25))
    smtp_from: str = field(default_factory=lambda: _env("SMTP_FROM", "stockflow@localhost"))
    smtp_user: str = field(default_factory=lambda: _env("SMTP_USER", ""))
    smtp_password: Secret = field(default_factory=lambda: _env_secret("SMTP_PASSWORD"))
    smtp_starttls: bool = field(default_factory=lambda: _env_flag("SMTP_STARTTLS", default=False))
    # purchase orders sent to suppliers (streams/purchasing/sending.py): the buyer named on
    # them, the EDIFACT directory, SFTP credentials and host keys, and the webhook signing key
    po_buyer: str = field(default_factory=lambda: _env("PO_BUYER", "stockflow"))
    edifact_syntax: str = field(default_factory=lambda: _env("EDIFACT_SYNTAX", "D96A").upper())
    sftp_password: Secret = field(default_factory=lambda: _env_secret("SFTP_PASSWORD"))
    sftp_key_file: str = field(default_factory=lambda: _env("SFTP_KEY_FILE", ""))
    sftp_known_hosts: str = field(default_factory=lambda: _env("SFTP_KNOWN_HOSTS", ""))
    webhook_secret: Secret = field(default_factory=lambda: _env_secret("WEBHOOK_SECRET"))
    send_timeout_s: float = field(default_factory=lambda: _env_float("SEND_TIMEOUT_SECONDS", 30.0))
    # the shipping service's label route (`stockflow ship run`)
    ship_port: int = field(default_factory=lambda: _env_int("SHIP_PORT", 8095))
    ship_bind: str = field(default_factory=lambda: _env("SHIP_BIND", LOOPBACK))
    # the purchasing service and its ordering page (`stockflow web`)
    web_port: int = field(default_factory=lambda: _env_int("WEB_PORT", 8090))
    web_bind: str = field(default_factory=lambda: _env("WEB_BIND", LOOPBACK))
    # the page's users file (default <state dir>/web/users.yaml), the key its session cookies
    # are signed with (default: one generated into <state dir>/web/session.key) and their life
    web_users: str = field(default_factory=lambda: _env("WEB_USERS", ""))
    web_secret: Secret = field(default_factory=lambda: _env_secret("WEB_SECRET"))
    web_session_minutes: int = field(default_factory=lambda: _env_int("WEB_SESSION_MINUTES", 480))

    def __post_init__(self) -> None:
        if self.produce_timeout_s <= 0:
            raise SettingsError("STOCKFLOW_PRODUCE_TIMEOUT_SECONDS must be positive")
        if self.api_rate <= 0 or self.api_burst < 1 or self.tokens_stale_s <= 0:
            raise SettingsError(
                "STOCKFLOW_API_RATE and STOCKFLOW_TOKENS_STALE_SECONDS must be positive, "
                "STOCKFLOW_API_BURST at least 1"
            )
        if self.edifact_syntax not in ("D96A", "D01B"):
            raise SettingsError(
                f"STOCKFLOW_EDIFACT_SYNTAX={self.edifact_syntax!r}: use D96A or D01B"
            )
        if self.send_timeout_s <= 0:
            raise SettingsError("STOCKFLOW_SEND_TIMEOUT_SECONDS must be positive")
        if self.rocksdb_memory_mb < 16:
            raise SettingsError("STOCKFLOW_ROCKSDB_MEMORY_MB must be at least 16")
        if 0 < self.replication_factor < self.min_insync_replicas:
            raise SettingsError(
                f"STOCKFLOW_MIN_INSYNC_REPLICAS={self.min_insync_replicas} is more than "
                f"STOCKFLOW_REPLICATION_FACTOR={self.replication_factor}: no write could succeed"
            )
        if self.partitions < 1:
            raise SettingsError("STOCKFLOW_PARTITIONS must be at least 1")
        self._check_transport_security()
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

    def _check_transport_security(self) -> None:
        if self.kafka_security_protocol not in KAFKA_SECURITY_PROTOCOLS:
            raise SettingsError(
                f"STOCKFLOW_KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol!r}: "
                f"use {' or '.join(KAFKA_SECURITY_PROTOCOLS)}"
            )
        if self.kafka_sasl_mechanism not in KAFKA_SASL_MECHANISMS:
            raise SettingsError(
                f"STOCKFLOW_KAFKA_SASL_MECHANISM={self.kafka_sasl_mechanism!r}: "
                f"use {' or '.join(KAFKA_SASL_MECHANISMS)}"
            )
        if self.kafka_sasl and not (self.kafka_user and self.kafka_password.reveal()):
            raise SettingsError(
                "STOCKFLOW_KAFKA_SECURITY_PROTOCOL=SASL_SSL needs STOCKFLOW_KAFKA_USER and "
                "STOCKFLOW_KAFKA_PASSWORD_FILE (or STOCKFLOW_KAFKA_PASSWORD)"
            )
        for name, path in (
            ("KAFKA_CA_FILE", self.kafka_ca_file),
            ("CLICKHOUSE_CA_FILE", self.clickhouse_ca_file),
        ):
            if path and not Path(path).is_file():
                raise SettingsError(f"STOCKFLOW_{name}={path!r} is not a file")

    @property
    def kafka_sasl(self) -> bool:
        """True when Kafka clients log in with SASL over TLS."""
        return self.kafka_security_protocol == "SASL_SSL"

    @property
    def worker_datadir(self) -> Path:
        """Where a ledger worker keeps its table store (one folder per app id and web port)."""
        return self.state_dir / "worker" / f"{self.app_id}-{self.worker_web_port}"

    @property
    def worker_url(self) -> str:
        """The URL this worker advertises to its group, where the others forward requests for
        the SKUs it owns: ``STOCKFLOW_WORKER_URL`` with ``{host}`` (this host's name),
        ``{fqdn}``, ``{ip}`` (the address the host's name resolves to) and ``{port}`` filled
        in; without it, ``http://<bind address>:<port>``, or ``http://<fqdn>:<port>`` when
        the worker binds every interface."""
        template = self.worker_url_template
        if not template:
            bind = self.worker_web_bind
            host = "{fqdn}" if bind in WILDCARDS else f"[{bind}]" if ":" in bind else bind
            template = f"http://{host}:{{port}}"
        return expand_url(template, self.worker_web_port)

    @property
    def bootstrap(self) -> str:
        """STOCKFLOW_BOOTSTRAP_SERVERS; else every node of the local stack's cluster."""
        return self.bootstrap_servers or _stack_bootstrap(self) or f"127.0.0.1:{self.kafka_port}"

    def describe(self) -> dict[str, Any]:
        """Every setting with its value, secrets masked: safe to print or log."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


LOOPBACK = "127.0.0.1"
WILDCARDS = ("0.0.0.0", "::", "")  # noqa: S104 - names of "every interface", compared only
_PLACEHOLDERS = ("{host}", "{fqdn}", "{ip}", "{port}")


def expand_url(template: str, port: int) -> str:
    """``template`` with ``{host}``, ``{fqdn}``, ``{ip}`` and ``{port}`` filled in for this
    machine (only those looked up that it names)."""
    names = {"port": str(port)}
    if "{host}" in template:
        names["host"] = socket.gethostname()
    if "{fqdn}" in template:
        names["fqdn"] = socket.getfqdn()
    if "{ip}" in template:
        try:
            names["ip"] = socket.gethostbyname(socket.gethostname())
        except OSError as exc:
            raise SettingsError(
                f"STOCKFLOW_WORKER_URL={template!r}: this host's name {socket.gethostname()!r} "
                f"does not resolve ({exc}); use {{host}} or a fixed address"
            ) from None
    url = template
    for name, value in names.items():
        url = url.replace("{" + name + "}", value)
    if "{" in url or not url.startswith(("http://", "https://")):
        raise SettingsError(
            f"STOCKFLOW_WORKER_URL={template!r}: an http(s) URL, with only "
            f"{', '.join(_PLACEHOLDERS)} as placeholders"
        )
    return url


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
