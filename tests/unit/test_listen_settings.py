"""Where each listener binds and the URL a worker advertises to its group."""

from __future__ import annotations

import os
import socket

import pytest

from streams.kernel.settings import Settings, SettingsError
from streams.worker.routing import FORWARDED, forwarded_headers


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in [k for k in os.environ if k.startswith("STOCKFLOW_")]:
        monkeypatch.delenv(key)


def test_every_listener_binds_loopback_and_the_worker_advertises_it_by_default() -> None:
    """Given no setting, when read, then the worker, the sink's metrics and the connectors
    bind 127.0.0.1 only and the worker advertises http://127.0.0.1:<its port>."""
    s = Settings()
    assert (s.worker_web_bind, s.sink_metrics_bind, s.connectors_bind) == ("127.0.0.1",) * 3
    assert s.worker_url == "http://127.0.0.1:6066"


def test_each_bind_address_comes_from_its_own_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Given a bind variable per listener, when read, then each listener has its own."""
    monkeypatch.setenv("STOCKFLOW_WORKER_WEB_BIND", "0.0.0.0")
    monkeypatch.setenv("STOCKFLOW_SINK_METRICS_BIND", "10.0.0.5")
    monkeypatch.setenv("STOCKFLOW_CONNECTORS_BIND", "::")
    s = Settings()
    assert (s.worker_web_bind, s.sink_metrics_bind, s.connectors_bind) == (
        "0.0.0.0",
        "10.0.0.5",
        "::",
    )


def test_a_worker_bound_to_one_address_advertises_that_address(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Given a worker bound to one address (IPv4 or IPv6), when its URL is asked, then it is
    that address and its port."""
    monkeypatch.setenv("STOCKFLOW_WORKER_WEB_PORT", "7001")
    monkeypatch.setenv("STOCKFLOW_WORKER_WEB_BIND", "10.1.2.3")
    assert Settings().worker_url == "http://10.1.2.3:7001"
    monkeypatch.setenv("STOCKFLOW_WORKER_WEB_BIND", "fd00::7")
    assert Settings().worker_url == "http://[fd00::7]:7001"


def test_a_worker_bound_to_every_interface_advertises_its_host_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Given a worker bound to 0.0.0.0 and no URL, when its URL is asked, then it is this
    host's fully qualified name, never a loopback address the others cannot reach."""
    monkeypatch.setenv("STOCKFLOW_WORKER_WEB_BIND", "0.0.0.0")
    assert Settings().worker_url == f"http://{socket.getfqdn()}:6066"


def test_one_url_template_serves_every_replica(monkeypatch: pytest.MonkeyPatch) -> None:
    """Given one STOCKFLOW_WORKER_URL template for all replicas (as compose's --scale and a
    StatefulSet give), when each expands it, then it names the replica's own host, address
    and port."""
    monkeypatch.setenv("STOCKFLOW_WORKER_WEB_PORT", "6067")
    monkeypatch.setenv("STOCKFLOW_WORKER_URL", "http://{host}.stockflow-worker:{port}")
    assert Settings().worker_url == f"http://{socket.gethostname()}.stockflow-worker:6067"
    monkeypatch.setenv("STOCKFLOW_WORKER_URL", "http://{ip}:{port}")
    ip = socket.gethostbyname(socket.gethostname())
    assert Settings().worker_url == f"http://{ip}:6067"
    monkeypatch.setenv("STOCKFLOW_WORKER_URL", "http://{fqdn}:{port}")
    assert Settings().worker_url == f"http://{socket.getfqdn()}:6067"


@pytest.mark.parametrize(
    "template", ["{host}:{port}", "http://{hostname}:{port}", "ftp://x:1", "http://{pod}"]
)
def test_a_url_template_that_cannot_work_is_refused_with_its_name(
    monkeypatch: pytest.MonkeyPatch, template: str
) -> None:
    """Given a template without a scheme, or with an unknown placeholder, when expanded,
    then a SettingsError names the variable and the placeholders it may use."""
    monkeypatch.setenv("STOCKFLOW_WORKER_URL", template)
    with pytest.raises(SettingsError, match=r"STOCKFLOW_WORKER_URL=.*\{host\}, \{fqdn\}"):
        _ = Settings().worker_url


def test_a_forwarded_request_keeps_the_callers_headers_as_they_came() -> None:
    """Given a caller's request with a bearer token, an idempotency key and connection
    headers, when forwarded to the SKU's owner, then its end-to-end headers go as they came,
    its connection-only ones (and Host, Content-Length) do not, and the forwarded mark is
    set."""
    headers = {
        "Authorization": "Bearer s3cr3t",
        "Idempotency-Key": "k-1",
        "Content-Type": "application/json",
        "Accept": "application/json",
        "Host": "worker-0:6066",
        "Content-Length": "42",
        "Connection": "keep-alive",
        "Transfer-Encoding": "chunked",
        "Proxy-Authorization": "Basic eA==",
    }
    assert forwarded_headers(headers) == {
        "Authorization": "Bearer s3cr3t",
        "Idempotency-Key": "k-1",
        "Content-Type": "application/json",
        "Accept": "application/json",
        FORWARDED: "1",
    }
