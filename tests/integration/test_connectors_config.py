"""``stockflow connectors serve`` refuses a bad configuration with exit 2 and the key path."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from connectors.config import ConnectorConfigError, load_connectors_config

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "local" / "connectors.example.yaml"


def test_the_example_configuration_loads_and_never_prints_its_secrets() -> None:
    """Given deploy/local/connectors.example.yaml, when it is loaded, then both channels are
    there and their credentials print as stars."""
    config = load_connectors_config(EXAMPLE)
    assert [c.kind for c in config.channels] == ["shopify", "woocommerce"]
    assert "shpat_test" not in repr(config)
    assert "cs_test" not in repr(config)


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ("channels: []", "channels"),
        ("channels: [{name: s, kind: ebay}]", "channels[0].kind"),
        (
            "channels: [{name: s, kind: shopify, base_url: https://x, credentials: {token: t,"
            " webhook_secrets: [a, b, c]}, mapping: {shop: x, push_location_id: 1}}]",
            "channels[0].credentials.webhook_secrets",
        ),
        (
            "channels: [{name: s, kind: shopify, base_url: https://x, credentials: {token: t,"
            " webhook_secrets: [a]}, mapping: {shop: x}}]",
            "channels[0].mapping.push_location_id",
        ),
        (
            "channels: [{name: s, kind: shopify, base_url: http://shop.example, credentials:"
            " {token: t, webhook_secrets: [a]}, mapping: {shop: x, push_location_id: 1}}]",
            "channels[0].base_url",
        ),
    ],
)
def test_a_bad_configuration_exits_2_naming_the_key_path(
    tmp_path: Path, text: str, path: str
) -> None:
    """Given a connectors configuration with one mistake, when `stockflow connectors serve`
    starts, then it exits 2 before touching Kafka and says which key is wrong."""
    config = tmp_path / "connectors.yaml"
    config.write_text(text)
    with pytest.raises(ConnectorConfigError) as raised:
        load_connectors_config(config)
    assert raised.value.path == path
    done = subprocess.run(
        [sys.executable, "-m", "streams.cli", "connectors", "serve"],
        env={**os.environ, "STOCKFLOW_CONNECTORS_CONFIG": str(config)},
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert path in done.stderr.decode()
