"""A compose file's services as local processes, with the environment the file gives them.

No container engine runs here, so each service of ``deploy/compose.yaml`` that stockflow
provides becomes a process of this machine, and each service the local stack provides
(Kafka, ClickHouse, Prometheus) is the local stack's program. What a container would have
and a process here has not is mapped, and only that (:class:`Mapping`):

1. **Interpolation**: ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``, ``${VAR:?error}``,
   ``${VAR?error}`` and ``$$`` are resolved as ``docker compose`` does, from the variables
   the caller gives (its "shell" or ``.env``).
2. **Host names**: a value that is a service's name, or ``name:port``, names 127.0.0.1.
3. **Ports**: each (service, container port) has a port of this machine: the local stack's
   for Kafka and ClickHouse, a free one for every other service and replica (a published
   port is that same one). A ``name:port`` value takes it; a variable ``X_PORT`` holding a
   bare port takes the port of the service named by ``X_HOST``, else of its own service.
4. **Mounts**: a value that is a path under a mount's container path becomes the path of
   the mounted file (``./x`` of a bind mount, relative to the compose file, or an absolute
   ``/x``; short or long syntax) or of a folder of the test (a named or anonymous volume,
   or the container's own filesystem for the image's ``STOCKFLOW_STATE_DIR`` when nothing
   is mounted there).
5. **DNS discovery**: Prometheus' ``dns_sd_configs`` (type A) of a service name becomes
   the static list of that service's replicas' addresses, as Docker's DNS would answer.
   Prometheus' own container paths (``authorization.credentials_file``) are mapped by
   rule 4.

The image's own environment (``ENV`` of ``deploy/Dockerfile``; ``PATH`` and ``LANG`` of
its ``python`` base image) comes first, then the service's ``environment``; nothing of the
test's own environment reaches a service.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LOCAL_HOST = "127.0.0.1"
_INTERPOLATION = re.compile(
    r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
)


class ComposeError(ValueError):
    """The compose file cannot be used as written (an unset required variable...)."""


def interpolate(value: Any, variables: dict[str, str]) -> Any:
    """``value`` with compose's variable interpolation applied, recursively."""
    if isinstance(value, dict):
        return {k: interpolate(v, variables) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, variables) for v in value]
    if not isinstance(value, str):
        return value

    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match.group("name", "op", "arg")
        present = name in variables
        empty = not variables.get(name)
        if op in (":-", "-"):
            missing = empty if op == ":-" else not present
            return arg if missing else variables[name]
        if op in (":?", "?"):
            missing = empty if op == ":?" else not present
            if missing:
                raise ComposeError(f"required variable {name} is missing a value: {arg}")
        return variables.get(name, "")

    return _INTERPOLATION.sub(one, value)


def image_environment(dockerfile: Path) -> dict[str, str]:
    """The environment a container of the image starts with: the base image's (python:*
    sets PATH and LANG) and the Dockerfile's ``ENV KEY=VALUE`` lines."""
    env = {"PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"), "LANG": "C.UTF-8"}
    for line in dockerfile.read_text().splitlines():
        if line.startswith("ENV "):
            for pair in line.removeprefix("ENV ").split():
                key, _, value = pair.partition("=")
                env[key] = value
    return env


@dataclass
class Mapping:
    """Where each compose service and replica is on this machine (see the module doc)."""

    compose_dir: Path
    scratch: Path  # folders standing in for volumes and container filesystems
    services: dict[str, Any]
    ports: dict[tuple[str, int], int] = field(default_factory=dict)  # (service, port) -> port
    replica_ports: dict[tuple[str, int, int], int] = field(default_factory=dict)

    def port(self, service: str, container_port: int, replica: int = 0) -> int:
        key = (service, container_port, replica)
        return self.replica_ports[key] if key in self.replica_ports else self.ports[key[:2]]

    def host_port(self, service: str, value: str, replica: int) -> str:
        """``name:port`` of a service, here."""
        name, _, port = value.rpartition(":")
        return f"{LOCAL_HOST}:{self.port(name, int(port), replica if name == service else 0)}"

    def mounts(self, service: str, replica: int) -> list[tuple[str, Path]]:
        """(container path, path here) of each of the service's volumes."""
        found = []
        for volume in self.services[service].get("volumes", []):
            if isinstance(volume, dict):  # long syntax
                kind, target = volume.get("type", "volume"), volume["target"]
                if kind == "bind":
                    found.append((target, (self.compose_dir / volume["source"]).resolve()))
                else:
                    name = volume.get("source")
                    where = f"volume-{name}" if name else f"{service}-{replica}/{target.strip('/')}"
                    found.append((target, self.scratch / where))
                continue
            parts = volume.split(":")
            if len(parts) == 1:  # anonymous volume: one per replica
                target = parts[0]
                source = self.scratch / f"{service}-{replica}" / target.strip("/")
            elif parts[0].startswith((".", "/")):  # bind mount of a file or folder
                target = parts[1]
                source = (self.compose_dir / parts[0]).resolve()
            else:  # named volume
                target = parts[1]
                source = self.scratch / f"volume-{parts[0]}"
            found.append((target, source))
        return found

    def path(self, service: str, replica: int, value: str) -> str:
        """A container path, here: under a mount, else in the container's own folder."""
        for target, source in sorted(self.mounts(service, replica), key=lambda m: -len(m[0])):
            if value == target or value.startswith(target.rstrip("/") + "/"):
                return str(source / value[len(target) :].lstrip("/")).rstrip("/")
        return str(self.scratch / f"{service}-{replica}" / "container" / value.strip("/"))

    def environment(self, service: str, replica: int, image_env: dict[str, str]) -> dict[str, str]:
        """The service's environment, its host names, ports and paths mapped."""
        given = {k: str(v) for k, v in self.services[service].get("environment", {}).items()}
        env = {**image_env, **given}
        mapped = {}
        for key, value in env.items():
            mapped[key] = self._value(service, replica, key, value, env)
        return mapped

    def _value(self, service: str, replica: int, key: str, value: str, env: dict[str, str]) -> str:
        if value in self.services:
            return LOCAL_HOST
        if re.fullmatch(r"[a-z][a-z0-9_-]*:\d+", value) and value.split(":")[0] in self.services:
            return self.host_port(service, value, replica)
        if key.endswith("_PORT") and value.isdigit():
            host = env.get(key.removesuffix("_PORT") + "_HOST")
            owner = host if host in self.services else service
            return str(self.port(owner, int(value), replica if owner == service else 0))
        if value.startswith("/") and key != "PATH":
            return self.path(service, replica, value)
        return value

    def prometheus_config(self, config: dict[str, Any], replicas: dict[str, int]) -> dict[str, Any]:
        """Prometheus' configuration with its targets (rules 2, 3 and 5) and the files it
        reads (rule 4, as the ``prometheus`` service mounts them) here."""
        jobs = []
        for job in config["scrape_configs"]:
            job = dict(job)
            if "credentials_file" in job.get("authorization", {}):
                authorization = dict(job["authorization"])
                authorization["credentials_file"] = self.path(
                    "prometheus", 0, authorization["credentials_file"]
                )
                job["authorization"] = authorization
            statics = [
                {"targets": [self.host_port("", t, 0) for t in c["targets"]]}
                for c in job.pop("static_configs", [])
            ]
            for dns in job.pop("dns_sd_configs", []):
                assert dns.get("type", "SRV") == "A", dns
                statics.extend(
                    {
                        "targets": [
                            f"{LOCAL_HOST}:{self.port(name, dns['port'], i)}"
                            for i in range(replicas.get(name, 1))
                        ]
                    }
                    for name in dns["names"]
                )
            job["static_configs"] = statics
            jobs.append(job)
        return {**config, "scrape_configs": jobs}
