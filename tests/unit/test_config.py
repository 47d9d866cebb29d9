"""Ledger configuration: loading, defaults and validation messages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from streams.ledger import DEFAULT_CONFIG, ConfigError, load_config, parse_config

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "local" / "channels.example.yaml"


def test_the_example_configuration_loads() -> None:
    """Given deploy/local/channels.example.yaml, When loaded,
    Then its locations, channels, rules and limits are read as written."""
    config = load_config(EXAMPLE)
    assert config.default_location == "paris-wh"
    assert config.safety_stock("paris-wh") == 2 and config.safety_stock("elsewhere") == 0
    assert config.low_stock("lyon-store") == 2 and config.low_stock("paris-wh") == 5
    amazon = config.channels["amazon"]
    assert amazon.locations == frozenset({"paris-wh"})
    assert (amazon.rule.buffer, amazon.rule.max_shown) == (2, 50)
    assert config.on_insufficient("wholesale") == "backorder"
    assert config.on_insufficient("unknown") == "reject"
    assert config.hold_ttl_ms == 900_000 and config.journal_max_age_ms == 604_800_000


def test_no_file_or_an_empty_file_gives_the_default(tmp_path: Path) -> None:
    """Given no path, or an empty YAML file, When loaded, Then the default config."""
    assert load_config(None) is DEFAULT_CONFIG and load_config("") is DEFAULT_CONFIG
    empty = tmp_path / "c.yaml"
    empty.write_text("")
    assert load_config(empty) == DEFAULT_CONFIG


def test_an_unreadable_or_broken_file_is_a_config_error(tmp_path: Path) -> None:
    """Given a missing file and a file of broken YAML, When loaded,
    Then ConfigError names the file."""
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("channels: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


@pytest.mark.parametrize(
    ("raw", "path", "fix"),
    [
        ({"chanels": []}, "chanels", "unknown key"),
        (
            {"channels": [{"name": "a", "rule": {"bufer": 1}}]},
            "channels[0].rule.bufer",
            "expected one of buffer",
        ),
        (
            {"channels": [{"name": "a", "rule": {"buffer": -1}}]},
            "channels[0].rule.buffer",
            "below 0",
        ),
        (
            {"channels": [{"name": "a", "rule": {"percentage": 120}}]},
            "channels[0].rule.percentage",
            "0..100",
        ),
        (
            {"channels": [{"name": "a", "rule": {"max_shown": "ten"}}]},
            "channels[0].rule.max_shown",
            "whole number",
        ),
        (
            {"channels": [{"name": "a", "rule": {"buffer": True}}]},
            "channels[0].rule.buffer",
            "whole number",
        ),
        (
            {"channels": [{"name": "a", "on_insufficient": "queue"}]},
            "channels[0].on_insufficient",
            "reject or backorder",
        ),
        ({"channels": [{"name": "a"}, {"name": "a"}]}, "channels[1].name", "twice"),
        ({"channels": [{"rule": {}}]}, "channels[0].name", "non-empty string"),
        ({"channels": [{"name": "*"}]}, "channels[0].name", "reserved"),
        (
            {"locations": [{"name": "x"}], "channels": [{"name": "a", "locations": ["y"]}]},
            "channels[0].locations[0]",
            "not one of locations",
        ),
        ({"channels": [{"name": "a", "locations": []}]}, "channels[0].locations", "non-empty"),
        (
            {"locations": [{"name": "x", "safety_stock": -2}]},
            "locations[0].safety_stock",
            "below 0",
        ),
        ({"locations": {"x": {}}}, "locations", "must be a list"),
        (
            {"locations": [{"name": "x"}], "default_location": "y"},
            "default_location",
            "not one of locations",
        ),
        ({"applied_ids_limit": 0}, "applied_ids_limit", "below 1"),
        (["channels"], "<config>", "must be a mapping"),
    ],
)
def test_a_bad_configuration_names_the_key_path_and_the_fix(raw: Any, path: str, fix: str) -> None:
    """Given a configuration with one mistake, When validated,
    Then ConfigError's message starts with the key path and says what to do."""
    with pytest.raises(ConfigError) as err:
        parse_config(raw)
    assert err.value.path == path
    assert str(err.value).startswith(f"{path}: ") and fix in str(err.value)
