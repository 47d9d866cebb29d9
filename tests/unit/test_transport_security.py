"""Transport security settings, client configs, broker settings and ACLs (no broker here)."""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

import pytest
from confluent_kafka.admin import AclOperation, ResourcePatternType, ResourceType

from deploy.local.certificates import Certificates, clickhouse_tls_config
from deploy.local.kafka_security import (
    acl_bindings,
    override_properties,
    read_properties,
    secure_listeners,
)
from deploy.local.tools import render
from streams.kernel import topics
from streams.kernel.access.store import TOKENS_GROUP_PREFIX
from streams.kernel.kafka_config import admin_config, consumer_config, producer_config
from streams.kernel.settings import Secret, Settings, SettingsError, load
from streams.warehouse.clickhouse import tls_options
from streams.worker.credentials import faust_broker_auth


@pytest.fixture
def secure_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    ca = tmp_path / "ca.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", str(tmp_path / "ca.key"), "-out", str(ca), "-subj", "/CN=test CA"),
        ],
        check=True,
        capture_output=True,
    )
    secret = tmp_path / "ledger.password"
    secret.write_text("s3cr3t-from-file\n")
    monkeypatch.setenv("STOCKFLOW_KAFKA_SECURITY_PROTOCOL", "sasl_ssl")
    monkeypatch.setenv("STOCKFLOW_KAFKA_USER", "ledger")
    monkeypatch.setenv("STOCKFLOW_KAFKA_PASSWORD_FILE", str(secret))
    monkeypatch.setenv("STOCKFLOW_KAFKA_CA_FILE", str(ca))
    monkeypatch.delenv("STOCKFLOW_KAFKA_PASSWORD", raising=False)
    return ca


def test_a_password_file_is_read_and_never_printed(secure_env: Path) -> None:
    """Given the password in a file, when the settings load, then the password is the file's
    line without its newline, and neither repr nor describe() shows it."""
    settings = load()
    assert settings.kafka_password.reveal() == "s3cr3t-from-file"
    assert "s3cr3t" not in repr(settings.describe())
    assert "s3cr3t" not in repr(settings)


def test_sasl_without_a_password_or_with_both_sources_is_refused(
    secure_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given SASL_SSL, when the password is set both inline and as a file, or not at all,
    then the settings refuse to load and name the variables (not the password)."""
    monkeypatch.setenv("STOCKFLOW_KAFKA_PASSWORD", "inline")
    with pytest.raises(SettingsError, match="not both"):
        load()
    monkeypatch.delenv("STOCKFLOW_KAFKA_PASSWORD")
    monkeypatch.delenv("STOCKFLOW_KAFKA_PASSWORD_FILE")
    with pytest.raises(SettingsError, match="STOCKFLOW_KAFKA_PASSWORD_FILE"):
        load()


def test_an_unknown_protocol_or_mechanism_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """Given a protocol or SASL mechanism stockflow does not configure, then loading fails."""
    monkeypatch.setenv("STOCKFLOW_KAFKA_SECURITY_PROTOCOL", "SSL")
    with pytest.raises(SettingsError, match="PLAINTEXT or SASL_SSL"):
        load()
    monkeypatch.setenv("STOCKFLOW_KAFKA_SECURITY_PROTOCOL", "PLAINTEXT")
    monkeypatch.setenv("STOCKFLOW_KAFKA_SASL_MECHANISM", "PLAIN")
    with pytest.raises(SettingsError, match="SCRAM-SHA-512"):
        load()


def test_every_confluent_client_logs_in_over_tls(secure_env: Path) -> None:
    """Given SASL_SSL settings, then producers, consumers and admin clients all carry the
    protocol, mechanism, user, password and CA file; plaintext settings carry none."""
    settings = load()
    for config in (
        producer_config(settings),
        consumer_config(settings, "g"),
        admin_config(settings),
    ):
        assert config["security.protocol"] == "SASL_SSL"
        assert config["sasl.mechanism"] == "SCRAM-SHA-512"
        assert config["sasl.username"] == "ledger"
        assert config["sasl.password"] == "s3cr3t-from-file"
        assert config["ssl.ca.location"] == str(secure_env)
    plain = dataclasses.replace(settings, kafka_security_protocol="PLAINTEXT")
    assert "security.protocol" not in producer_config(plain)


def test_faust_gets_scram_credentials_with_a_checking_tls_context(secure_env: Path) -> None:
    """Given SASL_SSL settings, then Faust's broker_credentials are SCRAM-SHA-512 over
    SASL_SSL with a context that verifies certificates and host names."""
    import ssl

    auth = faust_broker_auth(load())["broker_credentials"]
    assert auth.protocol.value == "SASL_SSL"
    assert auth.mechanism.value == "SCRAM-SHA-512"
    assert (auth.username, auth.password) == ("ledger", "s3cr3t-from-file")
    assert auth.ssl_context.verify_mode == ssl.CERT_REQUIRED
    assert auth.ssl_context.check_hostname
    assert faust_broker_auth(Settings(kafka_security_protocol="PLAINTEXT")) == {}


def test_clickhouse_tls_checks_the_server_certificate(secure_env: Path) -> None:
    """Given STOCKFLOW_CLICKHOUSE_SECURE, then the driver runs TLS, verifying the CA file."""
    settings = dataclasses.replace(
        Settings(), clickhouse_secure=True, clickhouse_ca_file=str(secure_env)
    )
    assert tls_options(settings) == {"secure": True, "verify": True, "ca_certs": str(secure_env)}
    assert tls_options(Settings()) == {}


def _rights(user: str) -> set[tuple[str, str, str]]:
    settings = Settings()
    return {
        (b.restype.name, b.name, b.operation.name)
        for b in acl_bindings(settings)
        if b.principal == f"User:{user}"
    }


def test_each_component_may_write_only_the_topics_the_registry_names_it_writer_of() -> None:
    """Given the topic registry, then the sink writes only dead letters, the connectors never
    write a ledger output topic, and the worker reads of its outputs only what its order
    book needs (the levels for routing, the decisions on its reservations)."""
    sink = _rights("sink")
    writes = {name for kind, name, op in sink if kind == "TOPIC" and op == "WRITE"}
    assert writes == {topics.STOCK_DEADLETTER.name}
    connectors = _rights("connectors")
    for spec in (topics.STOCK_LEVELS, topics.STOCK_MOVEMENTS, topics.STOCK_DECISIONS):
        assert ("TOPIC", spec.name, "WRITE") not in connectors
    assert ("TOPIC", topics.STOCK_EVENTS.name, "WRITE") in connectors
    ledger = _rights("ledger")
    assert ("TOPIC", topics.STOCK_MOVEMENTS.name, "READ") not in ledger
    assert ("TOPIC", topics.STOCK_LEVELS.name, "READ") in ledger
    assert ("TOPIC", topics.ORDERS_STATE.name, "WRITE") in ledger
    assert ("TOPIC", topics.STOCK_EVENTS.name, "READ") in ledger


def test_groups_and_faust_topics_are_granted_by_prefix() -> None:
    """Given the settings' app id and sink group, then each component reads only in groups
    under its own prefix (the ledger and the connectors also under the token store's, whose
    consumers only assign), and only the ledger owns the topics under the app id."""
    bindings = acl_bindings(Settings())
    groups = {
        (b.principal, b.name)
        for b in bindings
        if b.restype == ResourceType.GROUP
        and b.resource_pattern_type == ResourcePatternType.PREFIXED
    }
    settings = Settings()
    assert groups == {
        ("User:ledger", settings.app_id),
        ("User:sink", settings.sink_group),
        ("User:connectors", "stockflow-connectors"),
        ("User:ledger", TOKENS_GROUP_PREFIX),
        ("User:connectors", TOKENS_GROUP_PREFIX),
    }
    owners = {b.principal for b in bindings if b.operation == AclOperation.ALL}
    assert owners == {"User:ledger"}


def test_the_plaintext_listener_becomes_sasl_ssl_in_place() -> None:
    """Given the broker template, when its listeners are secured and the result written back,
    then the client listener is SASL_SSL on the same port, the controller speaks SSL,
    each key appears once, and no PLAINTEXT client listener is left."""
    text = render("kafka-server.properties", port=1, controller_port=2, data_dir="/d")
    out = override_properties(text, secure_listeners(read_properties(text)))
    props = read_properties(out)
    assert props["listeners"] == "SASL_SSL://127.0.0.1:1,CONTROLLER://127.0.0.1:2"
    assert props["advertised.listeners"] == "SASL_SSL://127.0.0.1:1"
    assert props["inter.broker.listener.name"] == "SASL_SSL"
    assert props["listener.security.protocol.map"] == "CONTROLLER:SSL,SASL_SSL:SASL_SSL"
    assert sum(line.startswith("listeners=") for line in out.splitlines()) == 1
    assert "PLAINTEXT://" not in out


def test_listeners_of_any_node_keep_their_hosts_and_ports() -> None:
    """Given a node of a several-broker cluster (its own ports, a broker-only node without a
    controller listener), when its listeners are secured, then only the name changes."""
    node = {
        "listeners": "PLAINTEXT://127.0.0.1:19093",
        "advertised.listeners": "PLAINTEXT://localhost:19093",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
    }
    secured = secure_listeners(node)
    assert secured["listeners"] == "SASL_SSL://127.0.0.1:19093"
    assert secured["advertised.listeners"] == "SASL_SSL://localhost:19093"


def test_clickhouse_config_keeps_no_plaintext_port(tmp_path: Path) -> None:
    """Given the ClickHouse template, when TLS is applied, then the native and HTTP ports are
    served only as tcp_port_secure and https_port, with the stack's certificate."""
    text = render(
        "clickhouse-config.xml", state="/s", http_port=11, tcp_port=12, interserver_port=13
    )
    out = clickhouse_tls_config(text, Certificates(tmp_path))
    assert "<tcp_port_secure>12</tcp_port_secure>" in out
    assert "<https_port>11</https_port>" in out
    assert "<tcp_port>" not in out and "<http_port>" not in out
    assert f"<certificateFile>{tmp_path / 'server.pem'}</certificateFile>" in out


def test_secret_type_masks_the_password_when_given_inline() -> None:
    """Given a Secret, then str and repr show stars, and reveal gives the value."""
    secret = Secret("abc")
    assert "abc" not in f"{secret} {secret!r}"
    assert secret.reveal() == "abc"
