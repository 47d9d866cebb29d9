"""The secure stack's Kafka: a SASL_SSL listener (SCRAM-SHA-512), one principal per component,
and ACLs that give each only the topics and groups it uses (``stockflow stack up --secure``).

- Listeners: clients and the broker itself (inter-broker) speak SASL_SSL on the Kafka port;
  the KRaft controller listener speaks TLS and asks for a client certificate: only a process
  holding the stack's server key (the nodes) gets in, as ``User:CN=localhost``, a super user.
- Users: SCRAM credentials are written into the metadata log when the storage is formatted
  (``--add-scram``), passed to the JVM in an argument file (mode 600), never on a command
  line. Passwords live in ``<state>/secure/kafka-<user>.password`` (mode 600).
- ACLs (StandardAuthorizer, nothing allowed without an ACL): ``admin`` and ``broker`` are
  super users; ``ledger``, ``sink`` and ``connectors`` get the rights of the table below,
  derived from the topic registry's single-writer rule.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Iterable
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
)

from deploy.local.certificates import Certificates, write_private
from deploy.local.process import StackError
from streams.kernel import topics
from streams.kernel.access.store import TOKENS_GROUP_PREFIX
from streams.kernel.kafka_config import admin_config
from streams.kernel.settings import Secret, Settings
from streams.kernel.topics import API_TOKENS

MECHANISM = "SCRAM-SHA-512"
LISTENER = "SASL_SSL"
SUPER_USERS = ("broker", "admin")
COMPONENTS = ("ledger", "sink", "connectors")
USERS = (*SUPER_USERS, *COMPONENTS)
CLICKHOUSE_USERS = ("sink", "admin")  # the processes that talk to ClickHouse (sink, reports)
# The controller listener's principal: the nodes present the stack's server certificate.
NODE_PRINCIPAL = "CN=localhost"
CONNECTORS_GROUP = "stockflow-connectors"  # the connectors config's default consumer group

# What each component reads; what it writes comes from the topic registry's writers.
READS: dict[str, tuple[topics.TopicSpec, ...]] = {
    "ledger": (
        topics.STOCK_EVENTS,
        topics.API_TOKENS,  # the API checks tokens
        # the worker's order book: orders, the ledger's decisions (routed back to their
        # orders) and the levels (its routing's view)
        topics.ORDERS,
        topics.STOCK_DECISIONS,
        topics.STOCK_LEVELS,
    ),
    "sink": topics.SINK_TOPICS,
    "connectors": (
        topics.STOCK_LEVELS,
        topics.STOCK_DECISIONS,
        topics.API_TOKENS,
        topics.PRICE_EVENTS,  # the price book (prices: channels)
    ),
}
WRITER_OF: dict[str, tuple[topics.Writer, ...]] = {
    "ledger": (
        topics.Writer.LEDGER,
        topics.Writer.LEDGER_AND_CONNECTORS,
        topics.Writer.ANY,
        topics.Writer.API,
        topics.Writer.ORDER_BOOK,
    ),
    "sink": (topics.Writer.ANY,),
    "connectors": (
        topics.Writer.CONNECTORS,
        topics.Writer.LEDGER_AND_CONNECTORS,
        topics.Writer.ANY,
        topics.Writer.API,
    ),
}
# the worker's HTTP intake and the hold-expiry timer write stock events too
EXTRA_WRITES: dict[str, tuple[topics.TopicSpec, ...]] = {"ledger": (topics.STOCK_EVENTS,)}


class KafkaSecurity:
    """The credentials, broker settings and ACLs of one secure local stack."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.folder = settings.state_dir / "secure"
        self.certificates = Certificates(self.folder)

    @staticmethod
    def is_on(settings: Settings) -> bool:
        """True when this state folder holds a secure stack (its broker was formatted so)."""
        return marker(settings).exists()

    def password_file(self, user: str) -> Path:
        return self.folder / f"kafka-{user}.password"

    def ensure(self) -> None:
        """Certificates and one password per user; existing ones are kept."""
        self.certificates.ensure()
        for user in USERS:
            if not self.password_file(user).exists():
                write_private(self.password_file(user), secrets.token_urlsafe(24) + "\n")
        for component in (*COMPONENTS, "admin"):
            write_private(self.folder / f"{component}.env", self.env_text(component))

    def env_text(self, user: str) -> str:
        """The environment a client process of ``user`` needs (paths only, no secret)."""
        return "".join(
            f"{name}={value}\n"
            for name, value in {
                "STOCKFLOW_KAFKA_SECURITY_PROTOCOL": LISTENER,
                "STOCKFLOW_KAFKA_SASL_MECHANISM": MECHANISM,
                "STOCKFLOW_KAFKA_USER": user,
                "STOCKFLOW_KAFKA_PASSWORD_FILE": self.password_file(user),
                "STOCKFLOW_KAFKA_CA_FILE": self.certificates.ca_file,
                **(self.clickhouse_env() if user in CLICKHOUSE_USERS else {}),
            }.items()
        )

    def clickhouse_env(self) -> dict[str, str]:
        return {
            "STOCKFLOW_CLICKHOUSE_SECURE": "1",
            "STOCKFLOW_CLICKHOUSE_CA_FILE": str(self.certificates.ca_file),
            "STOCKFLOW_CLICKHOUSE_PASSWORD_FILE": str(self.clickhouse_password_file),
        }

    @property
    def clickhouse_password_file(self) -> Path:
        return self.folder / "clickhouse.password"

    def password(self, user: str) -> Secret:
        return Secret(self.password_file(user).read_text().strip())

    def client_settings(self, user: str) -> Settings:
        """The stack's settings as the client ``user`` (for the stack's own admin work)."""
        return dataclasses.replace(
            self.settings,
            kafka_security_protocol=LISTENER,
            kafka_sasl_mechanism=MECHANISM,
            kafka_user=user,
            kafka_password=self.password(user),
            kafka_ca_file=str(self.certificates.ca_file),
        )

    def secure_config(self, text: str) -> str:
        """A broker's ``server.properties`` text, made secure: its PLAINTEXT listener (on
        whatever host and port, for one node or several) becomes SASL_SSL, the controller
        listener is left as it is, and the TLS, SASL and authorizer settings are added."""
        current = read_properties(text)
        return override_properties(text, {**secure_listeners(current), **self.broker_properties()})

    def broker_properties(self) -> dict[str, str]:
        """TLS, SCRAM and authorizer settings, the same on every node (see module doc)."""
        certs = self.certificates
        jaas = (
            "org.apache.kafka.common.security.scram.ScramLoginModule required "
            f'username="broker" password="{self.password("broker").reveal()}";'
        )
        return {
            "sasl.enabled.mechanisms": MECHANISM,
            "sasl.mechanism.inter.broker.protocol": MECHANISM,
            f"listener.name.{LISTENER.lower()}.{MECHANISM.lower()}.sasl.jaas.config": jaas,
            "ssl.keystore.type": "PKCS12",
            "ssl.keystore.location": str(certs.keystore),
            "ssl.keystore.password": certs.keystore_password(),
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(certs.ca_file),
            "ssl.endpoint.identification.algorithm": "https",
            "ssl.client.auth": "none",
            # the controller listener: TLS with client certificates, only the stack's own
            "listener.name.controller.ssl.client.auth": "required",
            "ssl.enabled.protocols": "TLSv1.3,TLSv1.2",
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "allow.everyone.if.no.acl.found": "false",
            "super.users": ";".join(f"User:{u}" for u in (*SUPER_USERS, NODE_PRINCIPAL)),
        }

    def format_arguments(self) -> list[str]:
        """``kafka-storage format`` arguments that create every SCRAM user."""
        args = []
        for user in USERS:
            args += [
                "--add-scram",
                f"{MECHANISM}=[name={user},password={self.password(user).reveal()}]",
            ]
        return args

    def apply_acls(self) -> int:
        """Create the components' ACLs (idempotent: an existing binding is not doubled)."""
        admin = AdminClient(admin_config(self.client_settings("admin")))
        bindings = acl_bindings(self.settings)
        for binding, future in admin.create_acls(bindings, request_timeout=30).items():
            try:
                future.result()
            except KafkaException as exc:
                raise StackError(f"creating the Kafka ACL {binding} failed: {exc}") from None
        return len(bindings)


def marker(settings: Settings) -> Path:
    return settings.state_dir / "kafka" / "security"


def acl_bindings(settings: Settings) -> list[AclBinding]:
    """Each component's rights: read its input topics in its own consumer groups, write the
    topics the registry names it the writer of, and (the ledger) own its Faust topics."""
    groups = {
        "ledger": settings.app_id,
        "sink": settings.sink_group,
        "connectors": CONNECTORS_GROUP,
    }
    topic, group = ResourceType.TOPIC, ResourceType.GROUP
    literal, prefixed = ResourcePatternType.LITERAL, ResourcePatternType.PREFIXED
    bindings = []
    for user in COMPONENTS:
        bindings += [_allow(user, topic, t.name, literal, AclOperation.READ) for t in READS[user]]
        for spec in _writes(user):
            bindings.append(_allow(user, topic, spec.name, literal, AclOperation.WRITE))
            bindings.append(_allow(user, topic, spec.name, literal, AclOperation.DESCRIBE))
        bindings.append(_allow(user, group, groups[user], prefixed, AclOperation.READ))
        if API_TOKENS in READS[user]:  # the token store's consumer (assign only, never joins)
            bindings.append(_allow(user, group, TOKENS_GROUP_PREFIX, prefixed, AclOperation.READ))
        # the broker's replication defaults, which topic declarations follow (kernel.replication)
        bindings.append(
            _allow(
                user, ResourceType.BROKER, "kafka-cluster", literal, AclOperation.DESCRIBE_CONFIGS
            )
        )
    # Faust's own topics (table changelogs, the assignor's leader topic) start with the app id
    bindings.append(_allow("ledger", topic, settings.app_id, prefixed, AclOperation.ALL))
    return bindings


def _allow(
    user: str,
    resource: ResourceType,
    name: str,
    pattern: ResourcePatternType,
    operation: AclOperation,
) -> AclBinding:
    return AclBinding(
        resource, name, pattern, f"User:{user}", "*", operation, AclPermissionType.ALLOW
    )


def _writes(component: str) -> list[topics.TopicSpec]:
    mine: Iterable[topics.TopicSpec] = (
        *(t for t in topics.ALL_TOPICS if t.writer in WRITER_OF[component]),
        *EXTRA_WRITES.get(component, ()),
    )
    return list(dict.fromkeys(mine))


def secure_listeners(current: dict[str, str]) -> dict[str, str]:
    """The listener settings of ``current`` with the listener named PLAINTEXT renamed
    SASL_SSL (and its protocol with it): ports, hosts and the other listeners are kept."""

    def rename(value: str) -> str:
        items = [item.strip() for item in value.split(",") if item.strip()]
        return ",".join(
            f"{LISTENER}{item[len('PLAINTEXT') :]}" if item.startswith("PLAINTEXT:") else item
            for item in items
        )

    protocols = dict(
        pair.split(":", 1) for pair in current.get("listener.security.protocol.map", "").split(",")
    )
    if "PLAINTEXT" not in protocols:
        raise StackError("the broker config has no PLAINTEXT listener to secure")
    protocols.pop("PLAINTEXT")
    protocols[LISTENER] = LISTENER
    if "CONTROLLER" in protocols:
        protocols["CONTROLLER"] = "SSL"
    return {
        "listeners": rename(current["listeners"]),
        "advertised.listeners": rename(current["advertised.listeners"]),
        "inter.broker.listener.name": LISTENER,
        "listener.security.protocol.map": ",".join(f"{k}:{v}" for k, v in protocols.items()),
    }


def read_properties(text: str) -> dict[str, str]:
    """``key=value`` lines of a properties text (comments and blank lines skipped)."""
    found = {}
    for line in text.splitlines():
        if "=" in line and not line.lstrip().startswith(("#", "!")):
            key, value = line.split("=", 1)
            found[key.strip()] = value.strip()
    return found


def override_properties(text: str, overrides: dict[str, str]) -> str:
    """``server.properties`` text with each key of ``overrides`` set: an existing line is
    replaced in place, a new key is appended."""
    lines = []
    left = dict(overrides)
    for line in text.splitlines():
        key = (
            line.split("=", 1)[0].strip()
            if "=" in line and not line.lstrip().startswith("#")
            else None
        )
        if key in left:
            lines.append(f"{key}={left.pop(key)}")
        else:
            lines.append(line)
    if left:
        lines.append("# transport security (stockflow stack up --secure)")
        lines += [f"{key}={value}" for key, value in left.items()]
    return "\n".join(lines) + "\n"
