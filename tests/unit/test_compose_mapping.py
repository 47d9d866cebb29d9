"""The mapping that runs compose services as local processes changes only what it says."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.compose import ComposeError, Mapping, interpolate

SERVICES = {
    "kafka": {},
    "clickhouse": {},
    "worker": {
        "environment": {
            "STOCKFLOW_BOOTSTRAP_SERVERS": "kafka:9092",
            "STOCKFLOW_CLICKHOUSE_HOST": "clickhouse",
            "STOCKFLOW_CLICKHOUSE_PORT": "9000",
            "STOCKFLOW_WORKER_WEB_PORT": "6066",
            "STOCKFLOW_WORKER_URL": "http://{ip}:{port}",
            "STOCKFLOW_CONFIG": "/etc/stockflow/channels.yaml",
            "STOCKFLOW_STORE": "rocksdb://",
        },
        "volumes": ["./local/channels.example.yaml:/etc/stockflow/channels.yaml:ro", "/var/lib/x"],
    },
}


def test_interpolation_follows_compose() -> None:
    """Given compose's interpolation forms, when resolved, then each behaves as compose's:
    defaults for unset (and, with a colon, empty) variables, errors for required ones, $$
    for a dollar."""
    variables = {"SET": "v", "EMPTY": ""}
    assert interpolate("${SET}-${UNSET}-${UNSET:-d}-${EMPTY:-d}-${EMPTY-d}-$$x", variables) == (
        "v--d-d--$x"
    )
    assert interpolate({"a": ["${SET:?no}"]}, variables) == {"a": ["v"]}
    with pytest.raises(ComposeError, match="EMPTY"):
        interpolate("${EMPTY:?set it}", variables)


def test_host_names_ports_and_mounted_paths_are_mapped_and_nothing_else(tmp_path: Path) -> None:
    """Given a worker's compose environment, when mapped for replica 1, then service names
    become 127.0.0.1 with the services' ports here, its own port its replica's, a mounted
    file's container path the project's file, a path in a volume the test's folder, and
    every other value stays as written."""
    mapping = Mapping(tmp_path / "deploy", tmp_path / "scratch", SERVICES)
    mapping.ports.update({("kafka", 9092): 19092, ("clickhouse", 9000): 19000})
    mapping.replica_ports.update({("worker", 6066, 0): 16066, ("worker", 6066, 1): 16067})
    env = mapping.environment("worker", 1, {"STOCKFLOW_STATE_DIR": "/var/lib/x/state"})
    assert env == {
        "STOCKFLOW_STATE_DIR": str(tmp_path / "scratch" / "worker-1" / "var/lib/x" / "state"),
        "STOCKFLOW_BOOTSTRAP_SERVERS": "127.0.0.1:19092",
        "STOCKFLOW_CLICKHOUSE_HOST": "127.0.0.1",
        "STOCKFLOW_CLICKHOUSE_PORT": "19000",
        "STOCKFLOW_WORKER_WEB_PORT": "16067",
        "STOCKFLOW_WORKER_URL": "http://{ip}:{port}",
        "STOCKFLOW_CONFIG": str(tmp_path / "deploy" / "local" / "channels.example.yaml"),
        "STOCKFLOW_STORE": "rocksdb://",
    }


def test_dns_discovery_of_replicas_becomes_their_static_list(tmp_path: Path) -> None:
    """Given Prometheus discovering the worker replicas by DNS and the sink statically, when
    mapped, then both are static targets here, one per replica."""
    mapping = Mapping(tmp_path, tmp_path, {"worker": {}, "sink": {}})
    mapping.ports[("sink", 9464)] = 19464
    mapping.replica_ports.update({("worker", 6066, 0): 16066, ("worker", 6066, 1): 16067})
    mapping.ports[("worker", 6066)] = 16066
    config = {
        "scrape_configs": [
            {"job_name": "w", "dns_sd_configs": [{"names": ["worker"], "type": "A", "port": 6066}]},
            {"job_name": "s", "static_configs": [{"targets": ["sink:9464"]}]},
        ]
    }
    mapped = mapping.prometheus_config(config, {"worker": 2})
    assert mapped["scrape_configs"] == [
        {"job_name": "w", "static_configs": [{"targets": ["127.0.0.1:16066", "127.0.0.1:16067"]}]},
        {"job_name": "s", "static_configs": [{"targets": ["127.0.0.1:19464"]}]},
    ]


def test_bind_mounts_in_long_syntax_or_absolute_map_prometheus_credentials_file(
    tmp_path: Path,
) -> None:
    """Given Prometheus bind-mounting its config (short syntax) and an operator's token file
    given by an absolute path (long syntax), when its configuration is mapped, then
    credentials_file is the operator's file and nothing else of the job changes; without
    the token mount it is a path in the container's own (empty) folder."""
    token = tmp_path / "operator" / "prometheus.token"
    prometheus = {
        "volumes": [
            "./prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro",
            {"type": "bind", "source": str(token), "target": "/etc/prometheus/stockflow.token"},
        ]
    }
    mapping = Mapping(tmp_path / "deploy", tmp_path / "scratch", {"prometheus": prometheus})
    auth = {"type": "Bearer", "credentials_file": "/etc/prometheus/stockflow.token"}
    config = {"scrape_configs": [{"job_name": "w", "authorization": auth}]}
    assert mapping.prometheus_config(config, {})["scrape_configs"] == [
        {
            "job_name": "w",
            "authorization": {"type": "Bearer", "credentials_file": str(token)},
            "static_configs": [],
        }
    ]
    assert mapping.path("prometheus", 0, "/etc/prometheus/prometheus.yml") == str(
        tmp_path / "deploy" / "prometheus" / "prometheus.yml"
    )
    prometheus["volumes"] = prometheus["volumes"][:1]
    unmounted = mapping.prometheus_config(config, {})["scrape_configs"][0]
    assert unmounted["authorization"]["credentials_file"] == str(
        tmp_path / "scratch" / "prometheus-0" / "container" / "etc/prometheus/stockflow.token"
    )
    assert config["scrape_configs"][0]["authorization"] is auth  # the input is left alone
