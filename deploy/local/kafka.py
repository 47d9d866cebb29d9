"""Apache Kafka, single node in KRaft mode, from the jars that Maven fetches."""

from __future__ import annotations

import shutil
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
from streams.kernel.settings import Settings

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


class Kafka:
    name = "kafka"

    def __init__(self, settings: Settings, *, secure: bool = False) -> None:
        self.settings = settings
        # SASL_SSL with ACLs instead of the plaintext listener (see kafka_security)
        self.security = KafkaSecurity(settings) if secure else None
        self.home = settings.state_dir / "kafka"
        self.lib = self.home / f"lib-{settings.kafka_version}"
        self.data = self.home / "data"
        self.process = ManagedProcess("kafka", settings.state_dir)

    @property
    def major(self) -> int:
        return int(self.settings.kafka_version.split(".")[0])

    def where(self) -> str:
        s = self.settings
        protocol = "SASL_SSL, " if self.security else ""
        return f"127.0.0.1:{s.kafka_port} ({protocol}KRaft, Kafka {s.kafka_version})"

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
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "log4j.properties").write_text(render("log4j.properties"))
        (self.home / "log4j2.xml").write_text(render("log4j2.xml"))
        props = self.home / "server.properties"
        text = render(
            "kafka-server.properties",
            port=self.settings.kafka_port,
            controller_port=self.settings.kafka_controller_port,
            data_dir=self.data,
        )
        if self.security:
            self.security.ensure()
            text = self.security.secure_config(text)
        write_private(props, text)  # holds the key store's and the broker's passwords
        return props

    def _format(self, props: Path) -> None:
        stamp = self.home / "data.version"  # the Kafka that formatted the data folder
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
        cluster_id = run_checked(
            [*self._java_args(), "kafka.tools.StorageTool", "random-uuid"],
            what="kafka-storage random-uuid",
        ).split()[-1]
        command = ["kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(props)]
        command.append("--ignore-formatted")
        if self.security is None:
            run_checked([*self._java_args(), *command], what="formatting the Kafka storage")
        else:
            # SCRAM users are written at format time; their passwords reach the JVM in an
            # argument file only the owner can read, not on a command line
            argfile = self.home / "format.args"
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
        if not port_in_use(self.settings.kafka_port):
            return False
        client = self.security.client_settings("admin") if self.security else self.settings
        admin = AdminClient(admin_config(client, **{"socket.timeout.ms": 2000}))
        meta = admin.list_topics(timeout=2)
        return bool(meta.brokers)

    def start(self) -> None:
        if self.process.pid() is not None:
            return
        require_free_port(self.settings.kafka_port, "Kafka", "STOCKFLOW_KAFKA_PORT")
        require_free_port(
            self.settings.kafka_controller_port,
            "the Kafka controller",
            "STOCKFLOW_KAFKA_CONTROLLER_PORT",
        )
        self.install()
        props = self._configure()
        self._format(props)
        say(f"starting Kafka on {self.where()}")
        self.process.start([*self._java_args(), "kafka.Kafka", str(props)], marker=str(props))
        wait_until(self.is_ready, what="Kafka", timeout=90, process=self.process)
        if self.security:
            say(f"Kafka ACLs in place ({self.security.apply_acls()} bindings)")

    def stop(self) -> bool:
        return self.process.stop(timeout=60)

    def wipe(self) -> None:
        if self.process.pid() is not None:
            raise StackError("stop Kafka before wiping its data")
        shutil.rmtree(self.data, ignore_errors=True)
        marker(self.settings).unlink(missing_ok=True)
        (self.home / "data.version").unlink(missing_ok=True)


def _line(version: str) -> tuple[int, ...]:
    """(major, minor) of a Kafka version: the release line that sets the metadata format."""
    return tuple(int(part) for part in version.split(".")[:2])
