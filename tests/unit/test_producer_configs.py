"""Every producer of the project is idempotent with acks=all: pinned here, producer by producer."""

from __future__ import annotations

import ast
import asyncio
import dataclasses
from pathlib import Path

import aiokafka
import pytest

from schemas.codec import single_object_codec
from streams.kernel.kafka_config import producer_config
from streams.kernel.replication import Replication
from streams.kernel.settings import PROJECT_ROOT, Settings
from streams.ledger.config import DEFAULT_CONFIG
from streams.worker.producer import FAUST_VERSION, IdempotentProducer, producer_settings

PACKAGES = ("streams", "connectors", "deploy", "schemas")


def _confluent_producers() -> list[tuple[str, ast.Call]]:
    """Every ``Producer(...)`` call of confluent-kafka in the package, with where it is."""
    found = []
    for package in PACKAGES:
        for path in sorted((PROJECT_ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text())
            imported = any(
                isinstance(node, ast.ImportFrom)
                and node.module == "confluent_kafka"
                and any(alias.name == "Producer" for alias in node.names)
                for node in ast.walk(tree)
            )
            if not imported:
                continue
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Name)
                    and node.func.id == "Producer"
                ):
                    found.append((f"{path.relative_to(PROJECT_ROOT)}:{node.lineno}", node))
    return found


def test_every_confluent_kafka_producer_is_built_from_the_idempotent_config() -> None:
    """Given the package's sources, when every confluent-kafka ``Producer(...)`` is found,
    then each one is built from ``producer_config`` (the connectors' events, the sink's and
    the replay's dead letters, the bench) and none passes its own configuration."""
    producers = _confluent_producers()
    where = {place.split(":")[0] for place, _ in producers}
    assert {
        "connectors/framework/kafka.py",
        "streams/sink/deadletters.py",
        "streams/deadletters/replay.py",
    } <= where
    for place, call in producers:
        first = call.args[0] if call.args else None
        built_by = (
            first.func.id
            if isinstance(first, ast.Call) and isinstance(first.func, ast.Name)
            else None
        )
        assert built_by == "producer_config", f"{place}: Producer not built by producer_config"
        assert not call.keywords, f"{place}: Producer given settings of its own"


def test_the_confluent_kafka_config_is_idempotent_and_cannot_be_made_otherwise() -> None:
    """Given the project's producer configuration, then it asks for idempotence and acks=all,
    and an override of either is refused rather than quietly taken."""
    config = producer_config(Settings(), **{"client.id": "x"})
    assert config["enable.idempotence"] is True
    assert config["acks"] == "all"
    assert config["client.id"] == "x"
    for key, value in (("enable.idempotence", False), ("acks", "1")):
        with pytest.raises(ValueError, match=key):
            producer_config(Settings(), **{key: value})


def test_the_ledger_faust_producer_is_idempotent_with_acks_all(tmp_path: Path) -> None:
    """Given the ledger's Faust app (at_least_once, no transactions, where Faust alone would
    not ask for idempotence), when its producer's aiokafka settings are read and an
    AIOKafkaProducer is built from them, then it is idempotent (a transaction manager
    numbers its batches) with acks=all."""
    from streams.worker.app import Ledger

    assert __import__("faust").__version__ == FAUST_VERSION  # re-read _settings_extra on upgrade
    settings = dataclasses.replace(Settings(), state_dir=tmp_path)
    ledger = Ledger(settings, DEFAULT_CONFIG, single_object_codec(), copies=Replication(3, 2))
    assert isinstance(ledger.app.producer, IdempotentProducer)
    config = producer_settings(ledger.app)
    assert config["enable_idempotence"] is True
    assert config["acks"] in ("all", -1)

    async def idempotent() -> bool:
        producer = aiokafka.AIOKafkaProducer(**config)
        try:
            return producer._txn_manager is not None  # numbers batches per producer id
        finally:
            await producer.stop()

    assert asyncio.run(idempotent())


def test_the_ledger_declares_its_topics_with_the_cluster_replication(tmp_path: Path) -> None:
    """Given a cluster keeping 3 copies with 2 in sync, when the ledger's app is built,
    then its input topic and its table's changelog are declared with replication 3 and
    min.insync.replicas 2."""
    from streams.worker.app import Ledger

    settings = dataclasses.replace(Settings(), state_dir=tmp_path)
    ledger = Ledger(settings, DEFAULT_CONFIG, single_object_codec(), copies=Replication(3, 2))
    assert ledger.app.conf.topic_replication_factor == 3
    assert ledger.events.config == {"min.insync.replicas": "2"}
    changelog = ledger.table.changelog_topic
    assert changelog.config == {"min.insync.replicas": "2"}
    assert (changelog.replicas or ledger.app.conf.topic_replication_factor) == 3
