"""The production-like deployment, checked as far as a machine without Docker allows."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from streams.kernel.settings import Settings
from streams.ledger.config import load_config

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
COMPOSE: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
SERVICES = COMPOSE["services"]


def _env(service: str) -> dict[str, str]:
    return {k: str(v) for k, v in SERVICES[service].get("environment", {}).items()}


def test_the_compose_file_describes_the_whole_pipeline() -> None:
    """Given compose.yaml, when parsed, then every component of the pipeline is a service."""
    assert set(SERVICES) >= {
        "kafka",
        "clickhouse",
        "prometheus",
        "grafana",
        "worker",
        "sink",
        "connectors",
    }
    assert [SERVICES[s]["command"][0] for s in ("worker", "sink", "connectors")] == [
        "worker",
        "sink",
        "connectors",
    ]


def test_every_file_the_compose_file_mounts_or_builds_exists() -> None:
    """Given the volumes and the build of every service, when resolved from deploy/,
    then each local file or folder exists."""
    missing = []
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            source = volume["source"] if isinstance(volume, dict) else volume.split(":")[0]
            if source.startswith(".") and not (DEPLOY / source).exists():
                missing.append(f"{name}: {source}")
        build = service.get("build")
        if build:
            context = DEPLOY / build["context"]
            if not (context / build["dockerfile"]).exists():
                missing.append(f"{name}: {build['dockerfile']}")
    assert missing == []


def test_ports_agree_with_the_settings_and_the_prometheus_targets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Given the default settings, when compared with compose and Prometheus, then the worker,
    sink and connectors ports are the same everywhere, and so are Kafka's and ClickHouse's."""
    for key in [k for k in os.environ if k.startswith("STOCKFLOW_")]:
        monkeypatch.delenv(key)
    defaults = Settings()
    assert _env("worker")["STOCKFLOW_WORKER_WEB_PORT"] == str(defaults.worker_web_port)
    assert _env("sink")["STOCKFLOW_SINK_METRICS_PORT"] == str(defaults.sink_metrics_port)
    assert _env("connectors")["STOCKFLOW_CONNECTORS_PORT"] == str(defaults.connectors_port)
    assert f"127.0.0.1:{defaults.kafka_port}:9092" in SERVICES["kafka"]["ports"]
    assert f"127.0.0.1:{defaults.clickhouse_port}:9000" in SERVICES["clickhouse"]["ports"]
    prometheus = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    targets = json.dumps(prometheus["scrape_configs"])
    assert str(defaults.worker_web_port) in targets
    assert f"sink:{defaults.sink_metrics_port}" in targets
    assert f"connectors:{defaults.connectors_port}" in targets


def test_grafana_loads_the_dashboards_from_where_compose_mounts_them() -> None:
    """Given the dashboard provider and the grafana volumes, then the paths match and every
    dashboard uses the provisioned datasource."""
    provider = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "dashboards" / "stockflow.yml").read_text()
    )
    path = provider["providers"][0]["options"]["path"]
    assert any(v.endswith(":" + path + ":ro") for v in SERVICES["grafana"]["volumes"])
    datasource = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )
    uid = datasource["datasources"][0]["uid"]
    for board in (DEPLOY / "grafana" / "dashboards").glob("*.json"):
        for panel in json.loads(board.read_text())["panels"]:
            assert panel["datasource"]["uid"] == uid, (board.name, panel["title"])


@pytest.mark.parametrize("example", ["channels.example.yaml"])
def test_the_example_ledger_configuration_is_valid(example: str) -> None:
    """Given the example configuration shipped for operators, when loaded, then it validates."""
    config = load_config(DEPLOY / "local" / example)
    assert config.channels
