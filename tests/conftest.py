"""Shared fixtures: the real local stack, started through the project's own stack scripts.

Integration tests never assume anything is running: the session fixture starts Kafka,
ClickHouse and Prometheus if they are not up, and stops at the end only what it started.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from deploy.local import stack
from deploy.local.registry import Registry
from streams.kernel.settings import Settings, load


@pytest.fixture(scope="session")
def settings() -> Settings:
    return load()


@pytest.fixture(scope="session", autouse=True)
def no_process_left_behind() -> Iterator[None]:
    """At the end of the session, no subprocess a test started is still running."""
    from tests.support.processes import stop_all

    yield
    leaked = stop_all()
    assert not leaked, f"test processes left running (killed now): {leaked}"


@pytest.fixture(scope="session")
def local_stack(settings: Settings) -> Iterator[Settings]:
    """Kafka, ClickHouse and Prometheus of the local stack, up for the whole session."""
    before = {name for name, state, _ in stack.status(settings) if state.startswith("running")}
    stack.up(settings)
    ch = f"127.0.0.1:{settings.clickhouse_port}"
    print(f"\n[stack] Kafka at {settings.bootstrap}, ClickHouse at {ch}")
    yield settings
    if os.environ.get("STOCKFLOW_KEEP_STACK") != "1":
        for service in stack.services(settings):
            if service.name not in before:
                service.stop()


@pytest.fixture(scope="session")
def bootstrap(local_stack: Settings) -> str:
    return local_stack.bootstrap


@pytest.fixture(scope="session")
def registry_url(local_stack: Settings) -> Iterator[str]:
    """URL of the Confluent-compatible API of the local Apicurio registry."""
    registry = Registry(local_stack)
    was_running = registry.process.pid() is not None
    registry.start()
    yield registry.url
    if not was_running and os.environ.get("STOCKFLOW_KEEP_STACK") != "1":
        registry.stop()


@pytest.fixture
def unique_name() -> str:
    """A name no other test uses: for throw-away topics, groups and tables."""
    return f"t{uuid.uuid4().hex[:12]}"


def _hypothesis_profiles() -> None:
    from hypothesis import HealthCheck
    from hypothesis import settings as hypothesis_settings

    # CI shares two cores with a broker: wall-clock deadlines would make tests flaky.
    hypothesis_settings.register_profile(
        "ci", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
    )
    hypothesis_settings.register_profile("dev", deadline=None, max_examples=50)
    hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


_hypothesis_profiles()
