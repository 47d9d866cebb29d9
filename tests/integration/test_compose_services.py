"""Every service of deploy/compose.yaml, run as a local process with the environment the
file gives it: each answers, the workers answer for each other's SKUs, Prometheus scrapes
them all.

What had to be mapped, and nothing else (``tests/support/compose.py`` says it precisely):
compose's ``${...}`` variables are given as an operator's ``.env`` would give them (the
connectors' secrets; ``STOCKFLOW_PARTITIONS`` = the local stack's, whose topics exist);
service host names are 127.0.0.1; each service's container ports are ports of this
machine (the local stack's Kafka and ClickHouse, free ones for the others, one per worker
replica); container paths of mounted files are the files of deploy/, volumes and the
containers' own folders are folders of the test; Prometheus' DNS discovery of the worker
replicas is their static list. Kafka and ClickHouse are the local stack's (Kafka 4.4.0 in
place of the file's 3.9.2 image); Prometheus is Debian's, with the file's configuration;
Grafana is not started (no Grafana here).

The API tokens are made as the README tells an operator to, before the services start:
``stockflow token create`` run with the worker service's environment (``docker compose run
--rm -T worker token create ...``), its output redirected into the file compose mounts into
Prometheus (given as ``STOCKFLOW_PROMETHEUS_TOKEN_FILE`` of the operator's ``.env``). The
names carry the run's id, as the local stack's Kafka outlives a run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy.local.children import WORKER_READY, ChildProcess, http_json
from deploy.local.tools import ensure_debian_package
from streams.kernel.settings import Settings
from tests.support.compose import LOCAL_HOST, Mapping, image_environment, interpolate
from tests.support.ports import free_port
from tests.support.processes import track

pytestmark = pytest.mark.integration

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
# `docker compose up --scale worker=N`: replicas sharing one environment
WORKERS = int(os.environ.get("STOCKFLOW_COMPOSE_WORKERS", "2"))
# a fresh group of the file's app id reads stock.events.v1 from its start: after a long
# suite that is a backlog
READY_TIMEOUT_S = float(os.environ.get("STOCKFLOW_COMPOSE_READY_SECONDS", "300"))
STOCKFLOW_COMMANDS = ("worker", "sink", "connectors")


@pytest.fixture
def compose(local_stack: Settings, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """The compose file's services started here: what the local stack provides is the local
    stack's, the rest are processes; returns where each listens."""
    operator_dir = tmp_path / "operator"
    operator_dir.mkdir(mode=0o700)  # `install -d -m 700 deploy/secrets`
    prometheus_token = operator_dir / "prometheus.token"
    operator_env = {
        "STOCKFLOW_PROMETHEUS_TOKEN_FILE": str(prometheus_token),
        "SHOPIFY_TOKEN": "shpat-compose-test",
        "SHOPIFY_WEBHOOK_SECRET": "shopify-compose-test",
        "WOO_CONSUMER_KEY": "ck-compose-test",
        "WOO_CONSUMER_SECRET": "cs-compose-test",
        "WOO_WEBHOOK_SECRET": "woo-compose-test",
        "STOCKFLOW_PARTITIONS": str(local_stack.partitions),
    }
    raw = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services: dict[str, Any] = interpolate(raw["services"], operator_env)
    mapping = Mapping(DEPLOY, tmp_path, services)
    s = local_stack
    mapping.ports.update(
        {
            ("kafka", 9092): s.kafka_port,
            ("clickhouse", 9000): s.clickhouse_port,
            ("clickhouse", 8123): s.clickhouse_http_port,
        }
    )
    replicas = {"worker": WORKERS}
    for name, service in services.items():
        if name in ("kafka", "clickhouse"):
            continue
        for port in [*service.get("expose", []), *service.get("ports", [])]:
            container_port = int(str(port).split(":")[-1])
            for replica in range(replicas.get(name, 1)):
                mapping.replica_ports[(name, container_port, replica)] = free_port()
            mapping.ports[(name, container_port)] = mapping.replica_ports[(name, container_port, 0)]
    image_env = image_environment(DEPLOY / "Dockerfile")
    logs = s.state_dir / "logs"
    run = uuid.uuid4().hex[:6]
    # the operator's first steps: Prometheus' token into the file compose mounts, a
    # client's token for the calls below (`docker compose run --rm -T worker token ...`)
    operator = mapping.environment("worker", 0, image_env)
    with prometheus_token.open("w") as out:
        _stockflow(
            operator, ["token", "create", f"prometheus-{run}", "--scopes", "metrics:read"], out
        )
    with (operator_dir / "client.token").open("w") as out:
        scopes = ["--scopes", "events:write,stock:read"]
        _stockflow(operator, ["token", "create", f"compose-client-{run}", *scopes], out)
    children: list[ChildProcess] = []
    where: dict[str, Any] = {
        "workers": [],
        "mapping": mapping,
        "client_token": (operator_dir / "client.token").read_text().strip(),
        "metrics_token": prometheus_token.read_text().strip(),
    }
    for name in STOCKFLOW_COMMANDS:
        for replica in range(replicas.get(name, 1)):
            child = ChildProcess(
                f"{name}-{replica}",
                list(services[name]["command"]),
                logs / f"compose-{run}-{name}-{replica}.log",
                on_spawn=track,
            )
            child.env = mapping.environment(name, replica, image_env)  # the file's only
            print(f"\n[compose] {name}-{replica}: {json.dumps(_shown(child.env))}")
            children.append(child)
    prometheus_home = tmp_path / "prometheus"
    prometheus_home.mkdir()
    config_path = Path(mapping.path("prometheus", 0, "/etc/prometheus/prometheus.yml"))
    config = mapping.prometheus_config(yaml.safe_load(config_path.read_text()), replicas)
    (prometheus_home / "prometheus.yml").write_text(yaml.safe_dump(config))
    prometheus_port = mapping.port("prometheus", 9090)
    with (logs / f"compose-{run}-prometheus.log").open("ab") as log:
        prometheus = track(
            subprocess.Popen(
                [
                    ensure_debian_package("prometheus", "prometheus"),
                    f"--config.file={prometheus_home / 'prometheus.yml'}",
                    f"--storage.tsdb.path={prometheus_home / 'data'}",
                    f"--web.listen-address={LOCAL_HOST}:{prometheus_port}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        )
    where["prometheus"] = f"http://{LOCAL_HOST}:{prometheus_port}"
    try:
        for child in children:
            child.start()
        for child in children:
            name, replica = child.name.rsplit("-", 1)
            if name == "worker":
                url = f"http://{LOCAL_HOST}:{mapping.port('worker', 6066, int(replica))}"
                child.wait_serving(url + "/health", READY_TIMEOUT_S, WORKER_READY)
                where["workers"].append(url)
            elif name == "sink":
                url = f"http://{LOCAL_HOST}:{mapping.port('sink', 9464)}"
                child.wait_serving(url + "/metrics", 120)
                where["sink"] = url
            else:
                url = f"http://{LOCAL_HOST}:{mapping.port('connectors', 8088)}"
                child.wait_serving(url + "/health", 120)
                where["connectors"] = url
        yield where
    finally:
        for child in reversed(children):
            child.stop()
        prometheus.terminate()
        prometheus.wait(30)


def _stockflow(env: dict[str, str], args: list[str], out: Any) -> None:
    """`stockflow ARGS` in a service's environment, its output into ``out`` (a shell's
    ``> FILE``)."""
    subprocess.run(
        [sys.executable, "-m", "streams.cli", *args], env=env, stdout=out, check=True, timeout=120
    )


def _shown(env: dict[str, str]) -> dict[str, str]:
    """The environment without the test's secrets (the log shows what was mapped)."""
    return {
        k: ("***" if "SECRET" in k or "TOKEN" in k or "KEY" in k else v) for k, v in env.items()
    }


def _text(url: str, token: str | None = None) -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return int(answer.status), answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_every_compose_service_answers_and_prometheus_scrapes_each(
    local_stack: Settings, compose: dict[str, Any]
) -> None:
    """Given every stockflow service of deploy/compose.yaml (two worker replicas sharing one
    environment, the sink, the connectors) started as processes with the file's environment,
    Prometheus with the file's configuration and the token file it mounts, and a client's
    token, both made with `stockflow token create` as the README tells the operator,
    when each is asked, then each answers on the port it listens on (every interface, as
    in its container), the worker's and connectors' /metrics refuse a call without a token
    and answer one with Prometheus', a receipt posted with the client's token to one worker
    is answered for by every worker (each forwards to the owner, with the caller's token,
    through the URL the owner advertises), and Prometheus reports every worker, the sink
    and the connectors as targets it scrapes, all up."""
    client, metrics = compose["client_token"], compose["metrics_token"]
    for url in compose["workers"]:
        assert http_json(url + "/health")[0] == 200
        assert _text(url + "/metrics")[0] == 401
        assert "stockflow_" in _text(url + "/metrics", metrics)[1]
    assert _text(compose["sink"] + "/metrics")[0] == 200
    assert http_json(compose["connectors"] + "/health")[0] == 200
    assert _text(compose["connectors"] + "/metrics")[0] == 401
    assert "stockflow_connector" in _text(compose["connectors"] + "/metrics", metrics)[1]

    sku = f"compose-{uuid.uuid4().hex[:8]}"
    receipt = {"event_id": f"{sku}-r", "type": "receipt", "sku": sku, "qty": 7}
    posted = http_json(compose["workers"][0] + "/v1/events", "POST", receipt, token=client)
    assert posted[0] == 202, posted
    began = time.monotonic()
    answers: list[tuple[int, Any]] = []
    while time.monotonic() - began < READY_TIMEOUT_S:
        answers = [
            http_json(f"{url}/v1/stock/{sku}", timeout=10, token=client)
            for url in compose["workers"]
        ]
        if all(status == 200 for status, _ in answers):
            break
        time.sleep(0.5)
    print(f"\n[compose] {sku} answered by every worker after {time.monotonic() - began:.1f} s")
    assert [status for status, _ in answers] == [200] * WORKERS, answers
    assert all(body == answers[0][1] for _, body in answers)
    assert sum(loc["on_hand"] for loc in answers[0][1]["locations"].values()) == 7

    expected = {("stockflow-worker", url.removeprefix("http://")) for url in compose["workers"]} | {
        ("stockflow-sink", compose["sink"].removeprefix("http://")),
        ("stockflow-connectors", compose["connectors"].removeprefix("http://")),
    }
    targets: set[tuple[str, str, str]] = set()
    began = time.monotonic()
    while time.monotonic() - began < 90:
        status, body = http_json(compose["prometheus"] + "/api/v1/targets")
        if status == 200:
            targets = {
                (t["labels"]["job"], t["labels"]["instance"], t["health"])
                for t in body["data"]["activeTargets"]
            }
            if {(job, instance) for job, instance, health in targets if health == "up"} == expected:
                break
        time.sleep(1)
    print(f"[compose] Prometheus targets: {sorted(targets)}")
    assert {(job, instance, "up") for job, instance in expected} == targets
