"""The local stack's Kafka cluster: node layout, each node's configuration, the recorded
bootstrap list and the replication the topic declarations take from the cluster."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from deploy.local.kafka import KafkaCluster, KafkaNode, cluster_nodes, server_properties
from deploy.local.process import StackError
from streams.cli import build_parser
from streams.kernel.replication import Replication, replication
from streams.kernel.settings import Settings, SettingsError


def _props(text: str) -> dict[str, str]:
    return dict(
        line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#")
    )


def _settings(tmp_path: Path, **changes: object) -> Settings:
    base = dataclasses.replace(
        Settings(),
        state_dir=tmp_path,
        kafka_port=24092,
        kafka_controller_port=24093,
        kafka_node_port_step=150,
        bootstrap_servers="",
    )
    return dataclasses.replace(base, **changes)


def test_three_nodes_have_their_own_ports_and_all_vote(tmp_path: Path) -> None:
    """Given the Kafka ports 24092/24093 and a node step of 150, when a 3-node cluster is
    laid out, then node n listens on both ports plus (n - 1) * 150, and each node's
    configuration names itself, its own listeners and data folder, and all three voters."""
    nodes = cluster_nodes(_settings(tmp_path), 3)
    assert nodes == [
        KafkaNode(1, 24092, 24093),
        KafkaNode(2, 24242, 24243),
        KafkaNode(3, 24392, 24393),
    ]
    for node in nodes:
        props = _props(server_properties(node, nodes, tmp_path / f"n{node.node_id}"))
        assert props["node.id"] == str(node.node_id)
        assert props["process.roles"] == "broker,controller"
        assert props["controller.quorum.voters"] == (
            "1@127.0.0.1:24093,2@127.0.0.1:24243,3@127.0.0.1:24393"
        )
        assert props["listeners"] == (
            f"PLAINTEXT://127.0.0.1:{node.port},CONTROLLER://127.0.0.1:{node.controller_port}"
        )
        assert props["log.dirs"] == str(tmp_path / f"n{node.node_id}")


def test_three_nodes_keep_three_copies_of_every_topic_two_in_sync(tmp_path: Path) -> None:
    """Given a 3-node cluster, then the brokers' defaults and Kafka's internal topics (group
    offsets, transactions, share-group state) keep 3 copies with 2 in sync; a single node
    keeps 1 and 1."""
    three = cluster_nodes(_settings(tmp_path), 3)
    props = _props(server_properties(three[0], three, tmp_path))
    for key in (
        "default.replication.factor",
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
        "share.coordinator.state.topic.replication.factor",
    ):
        assert props[key] == "3", key
    for key in (
        "min.insync.replicas",
        "transaction.state.log.min.isr",
        "share.coordinator.state.topic.min.isr",
    ):
        assert props[key] == "2", key
    one = cluster_nodes(_settings(tmp_path), 1)
    single = _props(server_properties(one[0], one, tmp_path))
    assert single["default.replication.factor"] == "1"
    assert single["min.insync.replicas"] == "1"
    assert single["controller.quorum.voters"] == "1@127.0.0.1:24093"


def test_each_node_of_a_cluster_has_its_own_folder_pid_file_and_name(tmp_path: Path) -> None:
    """Given a 3-node cluster, then its nodes are named kafka-1..3 with data folders of their
    own; a single node keeps the name and data folder of the one-broker stack."""
    settings = _settings(tmp_path)
    cluster = KafkaCluster(settings, cluster_nodes(settings, 3))
    names = [k.name for k in cluster.nodes]
    assert names == ["kafka-1", "kafka-2", "kafka-3"]
    assert len({k.data for k in cluster.nodes}) == 3
    assert len({k.process.pid_file for k in cluster.nodes}) == 3
    single = KafkaCluster(settings, cluster_nodes(settings, 1)).nodes[0]
    assert single.name == "kafka"
    assert single.data == tmp_path / "kafka" / "data"
    with pytest.raises(StackError, match="STOCKFLOW_KAFKA_NODE_PORT_STEP"):
        cluster_nodes(_settings(tmp_path, kafka_node_port_step=1), 3)


def test_clients_bootstrap_from_every_node_the_stack_recorded(tmp_path: Path) -> None:
    """Given `stack up --brokers 3` recorded its nodes, when settings are read without
    STOCKFLOW_BOOTSTRAP_SERVERS, then the bootstrap list names all three nodes (a client
    starting while node 1 is down still finds the cluster); an explicit list wins, and a
    record for another Kafka port is ignored."""
    settings = _settings(tmp_path)
    assert settings.bootstrap == "127.0.0.1:24092"
    KafkaCluster(settings, cluster_nodes(settings, 3)).record()
    recorded = json.loads((tmp_path / "kafka" / "cluster.json").read_text())
    assert recorded["brokers"] == 3
    assert settings.bootstrap == "127.0.0.1:24092,127.0.0.1:24242,127.0.0.1:24392"
    assert _settings(tmp_path, bootstrap_servers="h:1").bootstrap == "h:1"
    assert _settings(tmp_path, kafka_port=25092).bootstrap == "127.0.0.1:25092"


def test_explicit_replication_settings_win_and_impossible_ones_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given STOCKFLOW_REPLICATION_FACTOR and STOCKFLOW_MIN_INSYNC_REPLICAS, then the topic
    declarations take them without asking the cluster; a min.insync.replicas above the
    factor (no write could ever succeed) is refused with the variable's name."""
    settings = _settings(tmp_path, replication_factor=3, min_insync_replicas=2)
    assert replication(settings) == Replication(3, 2)
    assert Replication(3, 2).topic_config() == {"min.insync.replicas": "2"}
    monkeypatch.setenv("STOCKFLOW_REPLICATION_FACTOR", "2")
    monkeypatch.setenv("STOCKFLOW_MIN_INSYNC_REPLICAS", "3")
    with pytest.raises(SettingsError, match="STOCKFLOW_MIN_INSYNC_REPLICAS"):
        Settings()


def test_stack_up_takes_a_positive_broker_count() -> None:
    """Given `stockflow stack up --brokers 3`, then the command asks for 3 nodes; a plain
    `stack up` asks for none (one, or the cluster already running); 0 is refused."""
    parser = build_parser()
    assert parser.parse_args(["stack", "up", "--brokers", "3"]).brokers == 3
    assert parser.parse_args(["stack", "up"]).brokers is None
    with pytest.raises(SystemExit):
        parser.parse_args(["stack", "up", "--brokers", "0"])
