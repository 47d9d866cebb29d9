"""How many copies of each topic the cluster keeps, and how many must take a write.

The topic declarations (``kafka_admin.ensure_topics``, the ledger's Faust topics and table
changelog) use one answer: ``STOCKFLOW_REPLICATION_FACTOR`` and
``STOCKFLOW_MIN_INSYNC_REPLICAS`` when set, otherwise the cluster's own broker settings
``default.replication.factor`` and ``min.insync.replicas``, asked of a broker. The local
stack writes those into every node's configuration (1 and 1 for one node; 3 and 2 for three
or more), so a topic declared against it gets the cluster's replication without a setting,
and a production cluster keeps its operator's choices.
"""

from __future__ import annotations

from dataclasses import dataclass

from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType

from streams.kernel.kafka_config import admin_config
from streams.kernel.settings import Settings, SettingsError


@dataclass(frozen=True, slots=True)
class Replication:
    factor: int
    min_insync: int

    def topic_config(self) -> dict[str, str]:
        """Topic configuration that pins min.insync.replicas on the topic itself."""
        return {"min.insync.replicas": str(self.min_insync)}


def replication(settings: Settings, admin: AdminClient | None = None) -> Replication:
    """The settings' replication, completed from the cluster's broker configuration."""
    factor, min_insync = settings.replication_factor, settings.min_insync_replicas
    if not (factor and min_insync):
        defaults = broker_defaults(admin or AdminClient(admin_config(settings)))
        factor = factor or defaults.factor
        min_insync = min_insync or min(defaults.min_insync, factor)
    if min_insync > factor:
        raise SettingsError(
            f"min.insync.replicas {min_insync} is more than the replication factor {factor}: "
            "no write could succeed; set STOCKFLOW_MIN_INSYNC_REPLICAS"
        )
    return Replication(factor, min_insync)


def broker_defaults(admin: AdminClient, timeout: float = 10.0) -> Replication:
    """``default.replication.factor`` and ``min.insync.replicas`` of one live broker."""
    brokers = admin.list_topics(timeout=timeout).brokers
    if not brokers:
        raise RuntimeError("no Kafka broker answered; is the cluster up?")
    resource = ConfigResource(ResourceType.BROKER, str(min(brokers)))
    entries = admin.describe_configs([resource], request_timeout=timeout)[resource].result(
        timeout=timeout
    )
    return Replication(
        int(entries["default.replication.factor"].value),
        int(entries["min.insync.replicas"].value),
    )
