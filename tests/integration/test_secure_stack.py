"""The secure stack: Kafka over SASL_SSL (SCRAM-SHA-512) with ACLs, ClickHouse over TLS.

One secure stack for the module (``stack up --secure``'s Kafka and ClickHouse, on free
ports, in a state folder of its own beside the local stack's): the chairs scenario runs
through a real ledger worker logged in as ``ledger``, orders come from the ``connectors``
user, the sink (user ``sink``) writes them to ClickHouse over TLS and a report reads them
back. Clients without the right ACL, with a wrong password or in plaintext are refused with
a clear error.
"""

from __future__ import annotations

import dataclasses
import io
import socket
import ssl
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from clickhouse_driver import errors as ch_errors
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient

from deploy.local.children import ChildError
from deploy.local.clickhouse import ClickHouse
from deploy.local.credentials import operator_token
from deploy.local.kafka import Kafka
from deploy.local.kafka_security import USERS, KafkaSecurity
from schemas.codec import Codec, single_object_codec
from streams.kernel.kafka_admin import ensure_topics
from streams.kernel.kafka_config import admin_config, consumer_config, producer_config
from streams.kernel.settings import Secret, Settings
from streams.kernel.topics import STOCK_DECISIONS, STOCK_MOVEMENTS
from streams.reports import run_report
from streams.warehouse.clickhouse import connect
from tests.integration.sink_support import drop_database, running_sink, wait_rows
from tests.support.chairs import CHANNELS, CONFIG, race_for_chairs
from tests.support.kafka import wait_for
from tests.support.ports import free_port
from tests.support.worker import WorkerProcess

pytestmark = pytest.mark.integration


@dataclass
class SecureStack:
    base: Settings
    security: KafkaSecurity
    clickhouse: ClickHouse
    env: dict[str, str]  # what a process of this stack is started with, besides its user's

    def user(self, name: str) -> Settings:
        """Settings of a client logged in to Kafka as ``name`` (ClickHouse over TLS too)."""
        return dataclasses.replace(
            self.security.client_settings(name),
            **{
                f.name: getattr(self.clickhouse.client_settings(), f.name)
                for f in dataclasses.fields(Settings)
                if f.name.startswith("clickhouse_") and f.name != "clickhouse_database"
            },
        )

    def user_env(self, name: str) -> dict[str, str]:
        text = (self.security.folder / f"{name}.env").read_text()
        pairs = (line.split("=", 1) for line in text.splitlines() if line)
        return {**self.env, **dict(pairs)}


@pytest.fixture(scope="module")
def secure(settings: Settings) -> Iterator[SecureStack]:
    """A fresh secure Kafka and a TLS ClickHouse, and the environment pointing at them."""
    kafka_port = free_port()
    base = dataclasses.replace(
        settings,
        state_dir=settings.state_dir / "secure-stack",
        kafka_port=kafka_port,
        kafka_controller_port=free_port(),
        bootstrap_servers=f"127.0.0.1:{kafka_port}",
        clickhouse_port=free_port(),
        clickhouse_http_port=free_port(),
        clickhouse_password=Secret(""),  # the stack makes one
    )
    kafka, clickhouse = Kafka(base, secure=True), ClickHouse(base, secure=True)
    for service in (kafka, clickhouse):
        service.stop()  # one an interrupted run left behind
    kafka.wipe()  # an empty cluster every run; the jars and the certificates stay
    began = time.monotonic()
    try:
        kafka.start()
        clickhouse.start()
        security = KafkaSecurity(base)
        ensure_topics(security.client_settings("admin"))
        print(f"\n[secure] Kafka SASL_SSL at {base.bootstrap} in {time.monotonic() - began:.1f} s")
        env = {
            "STOCKFLOW_STATE_DIR": str(base.state_dir),
            "STOCKFLOW_KAFKA_PORT": str(base.kafka_port),
            "STOCKFLOW_KAFKA_CONTROLLER_PORT": str(base.kafka_controller_port),
            "STOCKFLOW_BOOTSTRAP_SERVERS": base.bootstrap,
            "STOCKFLOW_CLICKHOUSE_PORT": str(base.clickhouse_port),
            "STOCKFLOW_CLICKHOUSE_HTTP_PORT": str(base.clickhouse_http_port),
        }
        yield SecureStack(base, security, clickhouse, env)
    finally:
        kafka.stop()
        clickhouse.stop()


@pytest.fixture(scope="module")
def codec() -> Codec:
    return single_object_codec()


@pytest.fixture(scope="module")
def worker(
    secure: SecureStack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    """A ledger worker logged in as ``ledger`` (its app id under the ledger's ACL prefix)."""
    config = tmp_path_factory.mktemp("secure") / "channels.yaml"
    config.write_text(CONFIG)
    process = WorkerProcess(
        f"{secure.base.app_id}-secure-{uuid.uuid4().hex[:8]}",
        free_port(),
        secure.base.state_dir / "logs",
        token=operator_token(secure.user("admin")),  # made by the operator, over SASL_SSL
        STOCKFLOW_CONFIG=str(config),
        STOCKFLOW_STORE="memory://",
        **secure.user_env("ledger"),
    )
    process.start()
    yield process
    process.stop()


def test_chairs_sold_over_sasl_ssl_never_oversell_and_reach_clickhouse_over_tls(
    secure: SecureStack, worker: WorkerProcess, codec: Codec
) -> None:
    """Given a secure stack, a ledger worker logged in as ``ledger`` and 100 chairs counted
    by the ``connectors`` user,
    when 150 orders of 1 arrive concurrently from three producers (user ``connectors``),
    then exactly 100 are accepted and 50 rejected and every channel shows 0;
    when the sink (user ``sink``) runs, then the 150 decisions reach ClickHouse over TLS and
    a report reads them back over TLS."""
    sku = f"chair-{uuid.uuid4().hex[:8]}"
    decisions = race_for_chairs(secure.user("connectors"), secure.user("admin"), codec, worker, sku)
    outcomes = [d["outcome"] for d in decisions.values()]
    assert (len(decisions), outcomes.count("accepted"), outcomes.count("rejected")) == (
        150,
        100,
        50,
    )
    wait_for(
        lambda: worker.stock(sku)["channels"] == dict.fromkeys(CHANNELS, 0),
        timeout=30,
        what="channels at 0",
    )

    sink = dataclasses.replace(secure.user("sink"), clickhouse_database=f"t{uuid.uuid4().hex[:8]}")
    assert sink.clickhouse_secure
    try:
        with running_sink(sink, codec, f"{sink.sink_group}-{uuid.uuid4().hex[:6]}"):
            rows = wait_rows(sink, "decisions", "sku = %(sku)s", {"sku": sku}, 150, timeout=90)
        assert rows >= 150
        out = io.StringIO()
        assert run_report(sink, "best-sellers", "json", {"sku": sku}, out=out) == 0
        assert out.getvalue().strip()
    finally:
        drop_database(sink)


def test_a_client_without_the_acl_is_refused_at_once(secure: SecureStack) -> None:
    """Given the secure stack's ACLs,
    when the ``connectors`` user writes to the ledger's movements topic, and the ``sink``
    user joins the ledger's consumer group,
    then each is refused with an authorization error (not a delivery timeout: no hang)."""
    connectors = secure.user("connectors")
    results: list[KafkaError | None] = []
    producer = Producer(producer_config(connectors, **{"message.timeout.ms": 20000}))
    producer.produce(STOCK_MOVEMENTS.name, key=b"k", value=b"v", on_delivery=_collect(results))
    producer.flush(30)
    assert results and results[0] is not None
    assert results[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, results[0]
    del producer

    consumer = Consumer(consumer_config(secure.user("sink"), secure.base.app_id))
    try:
        consumer.subscribe([STOCK_DECISIONS.name])
        error = _first_error(consumer, timeout=20)
        assert error is not None and error.code() == KafkaError.GROUP_AUTHORIZATION_FAILED, error
    finally:
        consumer.close()


def test_a_wrong_password_and_a_plaintext_client_are_refused(secure: SecureStack) -> None:
    """Given the secure stack,
    when a client logs in as ``connectors`` with a wrong password,
    then it gets an authentication error naming invalid credentials (and the password is
    not in it); when a client speaks plaintext to the SASL_SSL port, then it gets no
    metadata; when a ClickHouse client connects without TLS or with a wrong password, then
    it is refused."""
    wrong = dataclasses.replace(secure.user("connectors"), kafka_password=Secret("not-it-42"))
    errors: list[KafkaError] = []
    producer = Producer(producer_config(wrong, error_cb=errors.append))
    deadline = time.monotonic() + 30
    while not errors and time.monotonic() < deadline:
        producer.poll(0.2)
    assert errors, "no error reported for a wrong password"
    assert errors[0].code() == KafkaError._AUTHENTICATION, errors[0]
    assert "invalid credentials" in errors[0].str()
    assert "not-it-42" not in errors[0].str()
    del producer  # destroyed now: it would retry its login for the rest of the session

    plain = dataclasses.replace(secure.base, kafka_security_protocol="PLAINTEXT")
    admin = AdminClient(admin_config(plain))
    with pytest.raises(KafkaException):
        admin.list_topics(timeout=5)
    del admin

    sink = secure.user("sink")
    for refused in (
        dataclasses.replace(sink, clickhouse_secure=False),
        dataclasses.replace(sink, clickhouse_password=Secret("not-it-42")),
    ):
        client = connect(refused)
        try:
            with pytest.raises((ch_errors.NetworkError, ch_errors.ServerException)):
                client.execute("SELECT 1")
        finally:
            client.disconnect()
    client = connect(sink)
    try:
        assert client.execute("SELECT 1") == [(1,)]
    finally:
        client.disconnect()


def test_keys_and_passwords_stay_private_and_out_of_logs(
    secure: SecureStack, worker: WorkerProcess
) -> None:
    """Given the secure stack has run a worker and clients,
    then its secure folder is private to its owner, every key, key store and password file
    is mode 600, and no password appears in the worker's, Kafka's or ClickHouse's logs or
    in the settings a process prints."""
    folder = secure.security.folder
    assert folder.stat().st_mode & 0o777 == 0o700
    for private in [*folder.glob("*.password"), *folder.glob("*.key"), *folder.glob("*.p12")]:
        assert private.stat().st_mode & 0o777 == 0o600, private
    passwords = [secure.security.password(u).reveal() for u in USERS]
    passwords.append(secure.clickhouse.client_settings().clickhouse_password.reveal())
    logs = [worker.log_path, *Path(secure.base.state_dir / "logs").glob("*.log")]
    for log in logs:
        text = log.read_text(errors="replace")
        leaked = [p for p in passwords if p in text]
        assert not leaked, f"a password is written in {log}"
    described = repr(secure.user("sink").describe())
    assert not [p for p in passwords if p in described]


def _collect(into: list[KafkaError | None]) -> Any:
    return lambda error, _message: into.append(error)


def _first_error(consumer: Consumer, timeout: float) -> KafkaError | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is not None and message.error() is not None:
            return message.error()  # type: ignore[no-any-return]
    return None


def test_a_worker_with_a_wrong_password_exits_naming_the_refused_login(
    secure: SecureStack, tmp_path: Path
) -> None:
    """Given the ledger's environment with a wrong password file,
    when a worker starts, then it exits (no hang) with an error naming the refused user and
    the variables to check, and the wrong password is not in its log."""
    wrong = tmp_path / "wrong.password"
    wrong.write_text("not-it-42\n")
    env = {**secure.user_env("ledger"), "STOCKFLOW_KAFKA_PASSWORD_FILE": str(wrong)}
    process = WorkerProcess(
        f"{secure.base.app_id}-wrong-{uuid.uuid4().hex[:8]}",
        free_port(),
        secure.base.state_dir / "logs",
        **env,
    )
    with pytest.raises(ChildError) as refused:
        process.start(timeout=90)
    process.stop()
    assert "refused the login of user 'ledger'" in str(refused.value)
    assert "STOCKFLOW_KAFKA_PASSWORD_FILE" in str(refused.value)
    assert "not-it-42" not in process.log_path.read_text()


def test_the_controller_port_admits_only_the_nodes_certificate(secure: SecureStack) -> None:
    """Given the secure stack's KRaft controller listener,
    when a TLS client without a certificate connects, then the handshake is refused for the
    missing certificate; when one presents the nodes' certificate, then it is admitted."""
    certs = secure.security.certificates
    address = ("127.0.0.1", secure.base.kafka_controller_port)
    anonymous = ssl.create_default_context(cafile=str(certs.ca_file))
    with (
        pytest.raises(ssl.SSLError, match=r"BAD_CERTIFICATE|CERTIFICATE_REQUIRED"),
        socket.create_connection(address, timeout=10) as raw,
        anonymous.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        tls.recv(1)  # TLS 1.3: the server's refusal arrives after the handshake
    node = ssl.create_default_context(cafile=str(certs.ca_file))
    node.load_cert_chain(str(certs.server_cert), str(certs.server_key))
    with (
        socket.create_connection(address, timeout=10) as raw,
        node.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        assert tls.version() in ("TLSv1.2", "TLSv1.3")
        tls.settimeout(1)
        with pytest.raises(TimeoutError):
            tls.recv(1)  # admitted: the broker waits for a request
