"""Apicurio Registry (optional): a schema registry with a Confluent-compatible API.

No Confluent registry is published where this project installs from; Apicurio is, on Maven
Central, as a runnable Quarkus distribution. It keeps schemas in memory: restart = empty.
"""

from __future__ import annotations

import shutil
import tarfile
import urllib.request
from pathlib import Path

from deploy.local.process import (
    ManagedProcess,
    StackError,
    require_free_port,
    run_checked,
    wait_until,
)
from deploy.local.tools import require_java, require_java_at_least, require_maven, say
from streams.kernel.settings import Settings

CCOMPAT_PATH = "/apis/ccompat/v7"


class Registry:
    name = "registry"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.home = settings.state_dir / "registry"
        self.dist = self.home / f"apicurio-{settings.registry_version}"
        self.process = ManagedProcess("registry", settings.state_dir)

    @property
    def url(self) -> str:
        """Base URL of the Confluent-compatible API, as STOCKFLOW_SCHEMA_REGISTRY_URL wants it."""
        return f"http://127.0.0.1:{self.settings.registry_port}{CCOMPAT_PATH}"

    def where(self) -> str:
        return f"{self.url} (Apicurio {self.settings.registry_version}, in-memory)"

    def install(self) -> None:
        require_java()
        if any(self.dist.glob("**/quarkus-run.jar")):
            return
        mvn = require_maven()
        version = self.settings.registry_version
        say(f"fetching Apicurio Registry {version} from Maven Central (about 160 MB, once)")
        download = self.home / "download"
        download.mkdir(parents=True, exist_ok=True)
        run_checked(
            [
                mvn,
                "-q",
                "-B",
                "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy",
                f"-Dartifact=io.apicurio:apicurio-registry-app:{version}:tar.gz:all",
                f"-DoutputDirectory={download}",
            ],
            what="fetching Apicurio Registry with Maven",
        )
        archives = list(download.glob("*.tar.gz"))
        if not archives:
            raise StackError(f"Maven reported success but left no archive in {download}")
        partial = self.home / "unpack.partial"
        shutil.rmtree(partial, ignore_errors=True)
        with tarfile.open(archives[0]) as tar:
            extract_safely(tar, partial)
        partial.rename(self.dist)
        for archive in archives:
            archive.unlink()

    def is_ready(self) -> bool:
        with urllib.request.urlopen(f"{self.url}/subjects", timeout=2) as answer:  # noqa: S310
            return bool(answer.status == 200)

    def start(self) -> None:
        if self.process.pid() is not None:
            return
        require_free_port(
            self.settings.registry_port, "the schema registry", "STOCKFLOW_REGISTRY_PORT"
        )
        self.install()
        jars = sorted(self.dist.glob("**/quarkus-run.jar"))
        if not jars:
            raise StackError(f"no quarkus-run.jar under {self.dist}; delete it and run up again")
        jar = jars[0]
        say(f"starting the schema registry on {self.url}")
        # Apicurio 3.x is built for Java 21 (class file 65); the broker is fine on 17.
        java = require_java_at_least(21, "Apicurio Registry 3")
        self.process.start(
            [
                java,
                "-Xms128m",
                "-Xmx384m",
                "-XX:+UseSerialGC",
                "-Dquarkus.http.host=127.0.0.1",
                f"-Dquarkus.http.port={self.settings.registry_port}",
                "-Dquarkus.log.level=WARN",
                # its management interface would take 0.0.0.0:9000, ClickHouse's port
                "-Dquarkus.management.host=127.0.0.1",
                f"-Dquarkus.management.port={self.settings.registry_port + 1}",
                "-jar",
                str(jar),
            ],
            marker=str(jar),
            cwd=jar.parent,
        )
        wait_until(self.is_ready, what="the schema registry", timeout=180, process=self.process)

    def stop(self) -> bool:
        return self.process.stop(timeout=30)


def extract_safely(tar: tarfile.TarFile, dest: Path) -> None:
    """Unpack ``tar`` into ``dest``, refusing members that would land outside it. Python
    3.11.4 and later do that with the ``data`` filter; 3.11.0-3.11.3 (Debian's python3.11)
    have no filters, so the members are checked here first."""
    if hasattr(tarfile, "data_filter"):
        tar.extractall(dest, filter="data")
        return
    outside = member_outside(tar, dest)
    if outside is not None:
        raise StackError(f"the archive's member {outside!r} would land outside {dest}")
    tar.extractall(dest)  # noqa: S202 (every member checked above)


def member_outside(tar: tarfile.TarFile, dest: Path) -> str | None:
    """The first member of ``tar`` that would be written, or link, outside ``dest``, or is a
    device; None when there is none."""
    root = dest.resolve()
    for member in tar.getmembers():
        target = (dest / member.name).resolve()
        if member.issym():
            linked = (target.parent / member.linkname).resolve()
        elif member.islnk():
            linked = (dest / member.linkname).resolve()
        else:
            linked = target
        if member.isdev() or not (target.is_relative_to(root) and linked.is_relative_to(root)):
            return member.name
    return None
