"""Declare the contract topics with the partition count and cleanup policy of the registry,
replicated as the cluster says (:mod:`streams.kernel.replication`)."""

from __future__ import annotations

import logging
import time
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from streams.kernel.kafka_config import admin_config
from streams.kernel.replication import replication
from streams.kernel.settings import Settings
from streams.kernel.topics import ALL_TOPICS, TopicSpec

log = logging.getLogger("stockflow.topics")
_NOT_MINE = ("TOPIC_AUTHORIZATION_FAILED", "CLUSTER_AUTHORIZATION_FAILED")


def ensure_topics(settings: Settings, specs: tuple[TopicSpec, ...] = ALL_TOPICS) -> list[str]:
    """Create the missing topics and return their names; existing topics are left alone."""
    refusals: list[KafkaError] = []
    admin = AdminClient(admin_config(settings, error_cb=refusals.append))
    existing = set(_list_topics(admin, settings, refusals).topics)
    missing = [spec for spec in specs if spec.name not in existing]
    if not missing:
        return []
    copies = replication(settings, admin)
    wanted = [
        NewTopic(
            spec.name,
            num_partitions=spec.partitions or settings.partitions,
            replication_factor=copies.factor,
            config={"cleanup.policy": spec.cleanup_policy, **copies.topic_config()},
        )
        for spec in missing
    ]
    created = []
    hidden = set()
    for name, future in admin.create_topics(wanted, operation_timeout=30).items():
        try:
            future.result()
            created.append(name)
        except KafkaException as exc:
            reason = exc.args[0].name()
            if reason in _NOT_MINE:
                # A client whose ACLs neither show nor create the topic (a secure cluster's
                # component user): topics are the admin's to declare; the client's own use of
                # the topic fails with an authorization error if it needed one.
                log.warning("topic %s not declared: %s as this Kafka user", name, reason)
                hidden.add(name)
            elif reason != "TOPIC_ALREADY_EXISTS":
                raise
    _wait_for_leaders(admin, [spec.name for spec in specs if spec.name not in hidden])
    return created


class KafkaLoginError(RuntimeError):
    """The broker refused the client's SASL login (wrong user or password)."""


def _list_topics(admin: AdminClient, settings: Settings, refusals: list[KafkaError]) -> Any:
    """The cluster's metadata; a failed login is reported as such, not as the transport
    failure librdkafka raises for it."""
    try:
        return admin.list_topics(timeout=10)
    except KafkaException:
        admin.poll(0)  # serves the error callbacks that say why
        for error in refusals:
            if error.code() == KafkaError._AUTHENTICATION:
                raise KafkaLoginError(
                    f"Kafka at {settings.bootstrap} refused the login of user "
                    f"{settings.kafka_user!r} ({error.str()}); check STOCKFLOW_KAFKA_USER and "
                    "STOCKFLOW_KAFKA_PASSWORD_FILE"
                ) from None
        raise


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
