"""How Faust's aiokafka clients reach the brokers: plaintext, or SASL (SCRAM) over TLS."""

from __future__ import annotations

import ssl
from typing import Any

from faust.auth import SASLCredentials

from streams.kernel.settings import Settings


def ssl_context(settings: Settings) -> ssl.SSLContext:
    """A client TLS context that checks the broker's certificate and host name against the
    configured CA file (or the system's CAs when none is given)."""
    return ssl.create_default_context(cafile=settings.kafka_ca_file or None)


def faust_broker_auth(settings: Settings) -> dict[str, Any]:
    """The ``faust.App`` settings for the configured Kafka security: none for PLAINTEXT;
    ``broker_credentials`` for SASL_SSL (Faust hands them to each aiokafka consumer, producer
    and admin client it makes)."""
    if not settings.kafka_sasl:
        return {}
    return {
        "broker_credentials": SASLCredentials(
            username=settings.kafka_user,
            password=settings.kafka_password.reveal(),
            ssl_context=ssl_context(settings),
            mechanism=settings.kafka_sasl_mechanism,
        )
    }
