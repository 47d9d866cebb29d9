"""Apache Kafka in KRaft mode, from the jars that Maven fetches: one node, or a cluster of
several on this machine (each node broker and controller, every node a voter, own ports and
data folder).

One node keeps its data in ``kafka/data``; the nodes of an N-node cluster in
``kafka/cluster-N/node-<id>/data``, formatted with one cluster id. Node n listens on
``STOCKFLOW_KAFKA_PORT`` and ``STOCKFLOW_KAFKA_CONTROLLER_PORT`` plus
(n - 1) * ``STOCKFLOW_KAFKA_NODE_PORT_STEP``. The nodes started are recorded in
``kafka/cluster.json`` (``streams.kernel.settings.CLUSTER_FILE``), which ``stack down`` and
``status`` read, and the clients' default bootstrap list comes from.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka.admin import AdminClient

from deploy.local.certificates import write_private
from deploy.local.kafka_security import KafkaSecurity, marker
from deploy.local.process import (
    ManagedProcess,
    StackError,
    port_in_use,
    require_free_port,
    run_checked,
    wait_until,
)
from deploy.local.tools import render, require_java, require_maven, say
from streams.kernel.kafka_config import admin_config
from streams.kernel.settings import CLUSTER_FILE, Settings

# Kafka 3.x logs through slf4j 1.7 with no backend in its POM: reload4j binds it.
_LOGGING_3 = """    <dependency>
      <groupId>org.slf4j</groupId>
      <artifactId>slf4j-reload4j</artifactId>
      <version>1.7.36</version>
    </dependency>"""
# Kafka 4.x logs through log4j2, but its POM still brings slf4j-api 1.7.36 and no binding:
# the binding must be log4j-slf4j-impl (slf4j 1.x). log4j-slf4j2-impl is for slf4j 2 and
# leaves slf4j 1.7 on its silent NOP logger. log4j-api and -core at the version kafka-server
# 4.4.0 asks for, so Maven does not mix two log4j2 versions.
LOG4J2_VERSION = "2.25.5"
_LOGGING_4 = "\n".join(
    f"""    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>{artifact}</artifactId>
      <version>{LOG4J2_VERSION}</version>
    </dependency>"""
    for artifact in ("log4j-api", "log4j-core", "log4j-slf4j-impl")
)


@dataclass(frozen=True, slots=True)
class KafkaNode:
    """One node of a local cluster: its id and its two loopback ports."""

    node_id: int
    port: int
    controller_port: int


def cluster_nodes(settings: Settings, brokers: int) -> list[KafkaNode]:
    """The nodes of a ``brokers``-node local cluster on the settings' ports."""
    step = settings.kafka_node_port_step
    if brokers > 1 and step < 2:
        raise StackError("STOCKFLOW_KAFKA_NODE_PORT_STEP must be at least 2 for several brokers")
    return [
        KafkaNode(
            n, settings.kafka_port + (n - 1) * step, settings.kafka_controller_port + (n - 1) * step
        )
        for n in range(1, brokers + 1)
    ]


def cluster_replication(brokers: int) -> tuple[int, int]:
    """(replication factor, min.insync.replicas) a cluster of ``brokers`` nodes declares for
    every topic, its own internal ones included: 3 and 2 from three nodes on (one node lost,
    writes go on with two copies), else every node and 1."""
    return (3, 2) if brokers >= 3 else (brokers, 1)


def server_properties(node: KafkaNode, nodes: Sequence[KafkaNode], data_dir: Path) -> str:
    """The ``server.properties`` of one node of ``nodes``."""
    factor, min_isr = cluster_replication(len(nodes))
    return render(
        "kafka-server.properties",
        node_id=node.node_id,
        voters=",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in nodes),
        port=node.port,
        controller_port=node.controller_port,
        data_dir=data_dir,
        replication=factor,
        min_isr=min_isr,
    )


class Kafka:
    """One Kafka node: by default the single node of the settings' ports."""

    def __init__(
        self,
        settings: Settings,
        node: KafkaNode | None = None,
        nodes: Sequence[KafkaNode] | None = None,
        *,
        secure: bool = False,
    ) -> None:
        self.settings = settings
        # SASL_SSL with ACLs instead of the plaintext listener (see kafka_security)
        self.security = KafkaSecurity(settings) if secure else None
        self.node = node or KafkaNode(1, settings.kafka_port, settings.kafka_controller_port)
        self.nodes = list(nodes or [self.node])
        self.home = settings.state_dir / "kafka"  # jars and logging configuration, shared
        self.lib = self.home / f"lib-{settings.kafka_version}"
        if len(self.nodes) == 1:
            self.name = "kafka"
            self.cluster_dir = self.node_dir = self.home
        else:
            self.name = f"kafka-{self.node.node_id}"
            self.cluster_dir = self.home / f"cluster-{len(self.nodes)}"
            self.node_dir = self.cluster_dir / f"node-{self.node.node_id}"
        self.data = self.node_dir / "data"
        self.process = ManagedProcess(self.name, settings.state_dir)

    @property
    def major(self) -> int:
        return int(self.settings.kafka_version.split(".")[0])

    @property
    def ports(self) -> list[int]:
        return [self.node.port, self.node.controller_port]

    def where(self) -> str:
        node = f"node {self.node.node_id} of {len(self.nodes)}, " if len(self.nodes) > 1 else ""
        protocol = "SASL_SSL, " if self.security else ""
        version = self.settings.kafka_version
        return f"127.0.0.1:{self.node.port} ({protocol}KRaft, {node}Kafka {version})"

    def install(self) -> None:
        require_java()
        pom = render(
            "kafka-pom.xml",
            kafka_version=self.settings.kafka_version,
            logging_dependencies=_LOGGING_3 if self.major < 4 else _LOGGING_4,
        )
        # The lib folder keeps the POM it was resolved from: jars resolved from another one
        # (say, with an older logging backend) are fetched again.
        stamp = self.lib / "pom.xml"
        if stamp.exists() and stamp.read_text() == pom and any(self.lib.glob("kafka_2.13-*.jar")):
            return
        mvn = require_maven()
        say(f"fetching Kafka {self.settings.kafka_version} jars from Maven Central")
        build = self.home / "build"
        build.mkdir(parents=True, exist_ok=True)
        (build / "pom.xml").write_text(pom)
        partial = self.home / f"lib-{self.settings.kafka_version}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        run_checked(
            [
                mvn,
                "-q",
                "-B",
                f"-DoutputDirectory={partial}",
                "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies",
            ],
            what=f"fetching Kafka {self.settings.kafka_version} with Maven",
            cwd=build,
        )
        (partial / "pom.xml").write_text(pom)
        shutil.rmtree(self.lib, ignore_errors=True)
        partial.rename(self.lib)  # only a complete download counts as installed

    def _java_args(self) -> list[str]:
        heap = self.settings.kafka_heap_mb
        logging = (
            f"-Dlog4j.configuration=file:{self.home / 'log4j.properties'}"
            if self.major < 4
            else f"-Dlog4j2.configurationFile={self.home / 'log4j2.xml'}"
        )
        return [
            require_java(),
            f"-Xms{min(256, heap)}m",
            f"-Xmx{heap}m",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            logging,
            "-cp",
            f"{self.lib}/*",
        ]

    def _configure(self) -> Path:
        self.node_dir.mkdir(parents=True, exist_ok=True)
        (self.home / "log4j.properties").write_text(render("log4j.properties"))
        (self.home / "log4j2.xml").write_text(render("log4j2.xml"))
        props = self.node_dir / "server.properties"
        text = server_properties(self.node, self.nodes, self.data)
        if self.security:
            self.security.ensure()
            text = self.security.secure_config(text)
        write_private(props, text)  # holds the key store's and the broker's passwords
        return props

    def _cluster_id(self) -> str:
        """One id for every node of a cluster (kept beside their folders); a single node
        takes a new one when it is formatted."""
        if len(self.nodes) == 1:
            return run_checked(
                [*self._java_args(), "kafka.tools.StorageTool", "random-uuid"],
                what="kafka-storage random-uuid",
            ).split()[-1]
        stamp = self.cluster_dir / "cluster.id"
        if not stamp.exists():
            self.cluster_dir.mkdir(parents=True, exist_ok=True)
            # KRaft's cluster id: a UUID's 16 bytes in URL-safe base64, without padding
            raw = uuid.uuid4().bytes
            stamp.write_text(base64.urlsafe_b64encode(raw).decode().rstrip("=") + "\n")
        return stamp.read_text().strip()

    def _format(self, props: Path) -> None:
        stamp = self.node_dir / "data.version"  # the Kafka that formatted the data folder
        if (self.data / "meta.properties").exists():
            if self.security and not marker(self.settings).exists():
                raise StackError(
                    f"{self.data} was formatted without --secure: its broker has no SCRAM "
                    f"users. Use another STOCKFLOW_STATE_DIR, or stop the stack and remove "
                    f"{self.data} (its topics are lost)"
                )
            formatted = stamp.read_text().strip() if stamp.exists() else ""
            if formatted and _line(formatted) > _line(self.settings.kafka_version):
                # A newer Kafka formats at its own metadata.version, unreadable to an older one
                # (3.9 on data of 4.x dies with "Can't read version 4 of BrokerEndpoint").
                raise StackError(
                    f"{self.data} was formatted by Kafka {formatted}; Kafka "
                    f"{self.settings.kafka_version} cannot read it. Select Kafka {formatted} or "
                    f"later, use another STOCKFLOW_STATE_DIR, or stop the stack and remove "
                    f"{self.data} (its topics are lost)"
                )
            return
        cluster_id = self._cluster_id()
        command = ["kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(props)]
        command.append("--ignore-formatted")
        if self.security is None:
            run_checked([*self._java_args(), *command], what="formatting the Kafka storage")
        else:
            # SCRAM users are written at format time; their passwords reach the JVM in an
            # argument file only the owner can read, not on a command line
            argfile = self.node_dir / "format.args"
            write_private(argfile, "\n".join([*command, *self.security.format_arguments()]))
            try:
                run_checked(
                    [*self._java_args(), f"@{argfile}"], what="formatting the Kafka storage"
                )
            finally:
                argfile.unlink(missing_ok=True)
            marker(self.settings).write_text("SASL_SSL\n")
        stamp.write_text(self.settings.kafka_version + "\n")

    def is_ready(self) -> bool:
        """This node answers on its port and is among the cluster's live brokers."""
        if not port_in_use(self.node.port):
            return False
        if self.security:
            client = dataclasses.replace(
                self.security.client_settings("admin"),
                bootstrap_servers=f"127.0.0.1:{self.node.port}",
            )
        else:
            client = dataclasses.replace(
                self.settings, bootstrap_servers=f"127.0.0.1:{self.node.port}"
            )
        admin = AdminClient(admin_config(client, **{"socket.timeout.ms": 2000}))
        meta = admin.list_topics(timeout=2)
        return self.node.node_id in meta.brokers

    def launch(self) -> None:
        """Start the node's process without waiting for it (a node of several cannot be
        ready before a majority of the voters runs)."""
        if self.process.pid() is not None:
            return
        step = " or STOCKFLOW_KAFKA_NODE_PORT_STEP" if len(self.nodes) > 1 else ""
        require_free_port(self.node.port, f"Kafka ({self.name})", f"STOCKFLOW_KAFKA_PORT{step}")
        require_free_port(
            self.node.controller_port,
            f"the Kafka controller ({self.name})",
            f"STOCKFLOW_KAFKA_CONTROLLER_PORT{step}",
        )
        self.install()
        props = self._configure()
        self._format(props)
        say(f"starting Kafka on {self.where()}")
        self.process.start([*self._java_args(), "kafka.Kafka", str(props)], marker=str(props))

    def wait_ready(self, timeout: float = 90) -> None:
        wait_until(
            self.is_ready, what=f"Kafka ({self.name})", timeout=timeout, process=self.process
        )
        if self.security:
            say(f"Kafka ACLs in place ({self.security.apply_acls()} bindings)")

    def start(self) -> None:
        if self.process.pid() is not None:
            return
        self.launch()
        self.wait_ready()

    def stop(self) -> bool:
        return self.process.stop(timeout=60)

    def kill(self) -> bool:
        """kill -9: no flush, no controlled shutdown. True if something was killed."""
        return self.process.kill()

    def wipe(self) -> None:
        if self.process.pid() is not None:
            raise StackError("stop Kafka before wiping its data")
        shutil.rmtree(self.data, ignore_errors=True)
        marker(self.settings).unlink(missing_ok=True)
        (self.node_dir / "data.version").unlink(missing_ok=True)


class KafkaCluster:
    """The nodes of one local cluster, started together."""

    def __init__(
        self, settings: Settings, nodes: Sequence[KafkaNode], *, secure: bool = False
    ) -> None:
        self.settings = settings
        self.nodes = [Kafka(settings, node, nodes, secure=secure) for node in nodes]

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{kafka.node.port}" for kafka in self.nodes)

    def node(self, node_id: int) -> Kafka:
        return next(kafka for kafka in self.nodes if kafka.node.node_id == node_id)

    def start(self, timeout: float = 120) -> None:
        """Start every node not running yet, then wait until each is a live broker."""
        for kafka in self.nodes:
            kafka.launch()
        for kafka in self.nodes:
            kafka.wait_ready(timeout)
        self.record()

    def record(self) -> None:
        """Write the cluster file: its nodes and their bootstrap list."""
        path = self.settings.state_dir / CLUSTER_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            json.dumps(
                {
                    "brokers": len(self.nodes),
                    "bootstrap": self.bootstrap,
                    "nodes": [
                        [k.node.node_id, k.node.port, k.node.controller_port] for k in self.nodes
                    ],
                }
            )
            + "\n"
        )

    def stop(self) -> bool:
        stopped = [kafka.stop() for kafka in reversed(self.nodes)]
        return any(stopped)

    def wipe(self) -> None:
        for kafka in self.nodes:
            kafka.wipe()
        if len(self.nodes) > 1:
            (self.nodes[0].cluster_dir / "cluster.id").unlink(missing_ok=True)


def recorded_nodes(settings: Settings) -> list[KafkaNode] | None:
    """The nodes the stack last started in this state folder, if it recorded them."""
    try:
        recorded = json.loads((settings.state_dir / CLUSTER_FILE).read_text())
        return [KafkaNode(int(n), int(p), int(c)) for n, p, c in recorded["nodes"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _line(version: str) -> tuple[int, ...]:
    """(major, minor) of a Kafka version: the release line that sets the metadata format."""
    return tuple(int(part) for part in version.split(".")[:2])
