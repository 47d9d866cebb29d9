"""Apache Kafka, single node in KRaft mode, from the jars that Maven fetches."""

from __future__ import annotations

import shutil
from pathlib import Path

from confluent_kafka.admin import AdminClient

from deploy.local.process import (
    ManagedProcess,
    StackError,
    port_in_use,
    require_free_port,
    run_checked,
    wait_until,
)
from deploy.local.tools import render, require_java, require_maven, say
from streams.kernel.settings import Settings

# Kafka 3.x logs through slf4j 1.7 with no backend in its POM; 4.x moved to log4j2.
_LOGGING_3 = """    <dependency>
      <groupId>org.slf4j</groupId>
      <artifactId>slf4j-reload4j</artifactId>
      <version>1.7.36</version>
    </dependency>"""
_LOGGING_4 = """    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-core</artifactId>
      <version>2.25.2</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j2-impl</artifactId>
      <version>2.25.2</version>
    </dependency>"""


class Kafka:
    name = "kafka"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.home = settings.state_dir / "kafka"
        self.lib = self.home / f"lib-{settings.kafka_version}"
        self.data = self.home / "data"
        self.process = ManagedProcess("kafka", settings.state_dir)

    @property
    def major(self) -> int:
        return int(self.settings.kafka_version.split(".")[0])

    def where(self) -> str:
        return f"127.0.0.1:{self.settings.kafka_port} (KRaft, Kafka {self.settings.kafka_version})"

    def install(self) -> None:
        require_java()
        if self.lib.is_dir() and any(self.lib.glob("kafka_2.13-*.jar")):
            return
        mvn = require_maven()
        say(f"fetching Kafka {self.settings.kafka_version} jars from Maven Central")
        build = self.home / "build"
        build.mkdir(parents=True, exist_ok=True)
        (build / "pom.xml").write_text(
            render(
                "kafka-pom.xml",
                kafka_version=self.settings.kafka_version,
                logging_dependencies=_LOGGING_3 if self.major < 4 else _LOGGING_4,
            )
        )
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
        props.write_text(
            render(
                "kafka-server.properties",
                port=self.settings.kafka_port,
                controller_port=self.settings.kafka_controller_port,
                data_dir=self.data,
            )
        )
        return props

    def _format(self, props: Path) -> None:
        if (self.data / "meta.properties").exists():
            return
        cluster_id = run_checked(
            [*self._java_args(), "kafka.tools.StorageTool", "random-uuid"],
            what="kafka-storage random-uuid",
        ).split()[-1]
        run_checked(
            [
                *self._java_args(),
                "kafka.tools.StorageTool",
                "format",
                "-t",
                cluster_id,
                "-c",
                str(props),
                "--ignore-formatted",
            ],
            what="formatting the Kafka storage directory",
        )

    def is_ready(self) -> bool:
        if not port_in_use(self.settings.kafka_port):
            return False
        admin = AdminClient(
            {"bootstrap.servers": self.settings.bootstrap, "socket.timeout.ms": 2000}
        )
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

    def stop(self) -> bool:
        return self.process.stop(timeout=60)

    def wipe(self) -> None:
        if self.process.pid() is not None:
            raise StackError("stop Kafka before wiping its data")
        shutil.rmtree(self.data, ignore_errors=True)
