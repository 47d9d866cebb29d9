"""Declare the contract topics with the partition count and cleanup policy of the registry,
replicated as the cluster says (:mod:`streams.kernel.replication`)."""

from __future__ import annotations

import time

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from streams.kernel.replication import replication
from streams.kernel.settings import Settings
from streams.kernel.topics import ALL_TOPICS, TopicSpec


def ensure_topics(settings: Settings, specs: tuple[TopicSpec, ...] = ALL_TOPICS) -> list[str]:
    """Create the missing topics and return their names; existing topics are left alone."""
    admin = AdminClient({"bootstrap.servers": settings.bootstrap})
    existing = set(admin.list_topics(timeout=10).topics)
    missing = [spec for spec in specs if spec.name not in existing]
    if not missing:
        return []
    copies = replication(settings, admin)
    wanted = [
        NewTopic(
            spec.name,
            num_partitions=settings.partitions,
            replication_factor=copies.factor,
            config={"cleanup.policy": spec.cleanup_policy, **copies.topic_config()},
        )
        for spec in missing
    ]
    created = []
    for name, future in admin.create_topics(wanted, operation_timeout=30).items():
        try:
            future.result()
            created.append(name)
        except KafkaException as exc:
            if exc.args[0].name() != "TOPIC_ALREADY_EXISTS":
                raise
    _wait_for_leaders(admin, [spec.name for spec in specs])
    return created


def _wait_for_leaders(admin: AdminClient, names: list[str], timeout: float = 30.0) -> None:
    """A topic just created answers NOT_LEADER_FOR_PARTITION until its leaders are elected."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        topics = admin.list_topics(timeout=10).topics
        if all(
            name in topics
            and topics[name].partitions
            and all(p.leader >= 0 for p in topics[name].partitions.values())
            for name in names
        ):
            return
        time.sleep(0.1)
    raise TimeoutError(f"topics {', '.join(names)} have no leader after {timeout:.0f} s")
