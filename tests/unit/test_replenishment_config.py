"""The ``replenishment:`` section: parsed into the model, refused with the key path when wrong."""

from __future__ import annotations

import copy
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from streams.replenishment.config import (
    ReplenishmentConfigError,
    load_replenishment,
    parse_replenishment,
)
from streams.replenishment.model import AutoSend, Peak, Policy, PolicyKind, SendVia

ROOT = Path(__file__).resolve().parents[2]


def section() -> dict[str, Any]:
    return {
        "history_days": 60,
        "plan_every_seconds": 600,
        "suppliers": [
            {
                "id": "acme",
                "name": "ACME Furniture",
                "send_via": "email",
                "email": "orders@acme.example",
                "lead_time_days": 5,
                "currency": "EUR",
                "order_days": ["mon", "Wed"],
                "min_order_value": 20000,
                "auto_send": {"max_total": 50000, "max_change_percent": 25},
            },
            {
                "id": "bolt",
                "send_via": "edi",
                "edi_folder": "sftp://po@edi.bolt.example:22/in",
                "edi_sender": "STOCKFLOW",
                "edi_recipient": "BOLT",
                "lead_time_days": 2,
            },
        ],
        "items": [
            {
                "sku": "chair",
                "supplier": "acme",
                "supplier_sku": "A-1",
                "unit_cost": 2000,
                "pack_size": 6,
                "moq": 12,
            },
            {"sku": "chair", "supplier": "bolt", "unit_cost": 2100, "currency": "EUR"},
            {"sku": "table", "supplier": "acme", "unit_cost": 9000},
        ],
        "preferred": [{"sku": "chair", "location": "paris-wh", "supplier": "bolt"}],
        "categories": {"furniture": ["chair", "table"]},
        "policies": [
            {"sku": "chair", "location": "paris-wh", "kind": "min_max", "min": 10, "max": 40},
            {
                "category": "furniture",
                "location": "lyon",
                "kind": "reorder_point",
                "service_level": 0.9,
            },
            {"category": "furniture", "kind": "periodic", "review_days": 14, "safety_stock": 3},
        ],
        "default_policy": {"kind": "reorder_point"},
        "peaks": [
            {
                "name": "black-friday",
                "start": "2026-11-27",
                "end": date(2026, 11, 30),
                "factor": 2.5,
                "category": "furniture",
            },
        ],
    }


def test_a_full_section_becomes_the_model() -> None:
    """Given a section with every key
    When it is parsed
    Then suppliers, items, preferred, categories, policies, peaks and figures are all there."""
    config = parse_replenishment(section())
    acme = config.suppliers["acme"]
    assert acme.send_via is SendVia.EMAIL and acme.email == ("orders@acme.example",)
    assert acme.order_days == frozenset({0, 2})
    assert acme.auto_send == AutoSend(max_total=50000, max_change_percent=25.0)
    assert config.suppliers["bolt"].name == "bolt" and config.suppliers["bolt"].order_days == (
        frozenset(range(7))
    )
    assert [(x.sku, x.supplier, x.supplier_sku, x.pack_size, x.moq) for x in config.items] == [
        ("chair", "acme", "A-1", 6, 12),
        ("chair", "bolt", "chair", 1, 0),
        ("table", "acme", "table", 1, 0),
    ]
    assert config.preferred == {("chair", "paris-wh"): "bolt"}
    assert config.categories == {"chair": "furniture", "table": "furniture"}
    assert config.policies[("chair", "paris-wh")] == Policy(PolicyKind.MIN_MAX, min=10, max=40)
    assert config.policies[("furniture", "lyon")].service_level == 0.9
    assert config.policies[("furniture", None)] == Policy(
        PolicyKind.PERIODIC, review_days=14, safety_stock=3
    )
    assert config.default_policy == Policy(PolicyKind.REORDER_POINT)
    assert config.peaks == (
        Peak("black-friday", date(2026, 11, 27), date(2026, 11, 30), 2.5, "furniture"),
    )
    assert (config.history_days, config.plan_every_seconds) == (60, 600)


def test_no_section_plans_nothing() -> None:
    """Given no replenishment key / When parsed / Then an empty configuration."""
    config = parse_replenishment(None)
    assert config.suppliers == {} and config.default_policy is None


def _broken(path: list[Any], value: Any) -> dict[str, Any]:
    raw = section()
    target: Any = raw
    for key in path[:-1]:
        target = target[key]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return raw


_DELETE = object()

BROKEN = [
    (["supplierz"], [], "replenishment.supplierz", "unknown key"),
    (["suppliers", 0, "colour"], "red", "replenishment.suppliers[0].colour", "unknown key"),
    (["items", 0, "pack_size"], -6, "replenishment.items[0].pack_size", "below 1"),
    (["items", 0, "pack_size"], 0, "replenishment.items[0].pack_size", "below 1"),
    (["items", 0, "moq"], -1, "replenishment.items[0].moq", "below 0"),
    (["items", 0, "unit_cost"], 12.5, "replenishment.items[0].unit_cost", "not a whole"),
    (["items", 2, "supplier"], "zeta", "replenishment.items[2].supplier", "not a supplier"),
    (["items", 1, "currency"], "USD", "replenishment.items[1].currency", "differs from"),
    (["policies", 0, "min"], 50, "replenishment.policies[0].min", "above max 40"),
    (
        ["policies", 1, "service_level"],
        1.0,
        "replenishment.policies[1].service_level",
        "outside (0.5, 0.999]",
    ),
    (["policies", 1, "service_level"], 0.5, "replenishment.policies[1].service_level", "outside"),
    (["policies", 2, "kind"], "weekly", "replenishment.policies[2].kind", "not one of"),
    (["policies", 2, "min"], 3, "replenishment.policies[2].min", "belongs to kind: min_max"),
    (["policies", 1, "category"], "toys", "replenishment.policies[1].category", "not a category"),
    (
        ["suppliers", 0, "order_days"],
        ["monday"],
        "replenishment.suppliers[0].order_days[0]",
        "mon, tue",
    ),
    (["suppliers", 0, "order_days"], [], "replenishment.suppliers[0].order_days", "names no"),
    (
        ["suppliers", 0, "email"],
        _DELETE,
        "replenishment.suppliers[0].email",
        "required with send_via: email",
    ),
    (
        ["suppliers", 0, "email"],
        "not-an-address",
        "replenishment.suppliers[0].email[0]",
        "not an email",
    ),
    (
        ["suppliers", 1, "edi_folder"],
        _DELETE,
        "replenishment.suppliers[1].edi_folder",
        "required with send_via: edi",
    ),
    (
        ["suppliers", 1, "edi_recipient"],
        _DELETE,
        "replenishment.suppliers[1].edi_recipient",
        "party id",
    ),
    (
        ["suppliers", 1, "send_via"],
        "webhook",
        "replenishment.suppliers[1].webhook_url",
        "required with send_via: webhook",
    ),
    (["suppliers", 1, "send_via"], "fax", "replenishment.suppliers[1].send_via", "not one of"),
    (
        ["suppliers", 1, "lead_time_days"],
        -2,
        "replenishment.suppliers[1].lead_time_days",
        "below 0",
    ),
    (["suppliers", 1, "id"], "acme", "replenishment.suppliers[1].id", "named twice"),
    (["suppliers", 1, "id"], "bo lt", "replenishment.suppliers[1].id", "no spaces"),
    (["suppliers", 0, "currency"], "euro", "replenishment.suppliers[0].currency", "ISO 4217"),
    (
        ["suppliers", 0, "auto_send", "max_change_percent"],
        -5,
        "replenishment.suppliers[0].auto_send.max_change_percent",
        "below 0",
    ),
    (
        ["preferred", 0, "supplier"],
        "acme2",
        "replenishment.preferred[0].supplier",
        "no item for SKU",
    ),
    (["peaks", 0, "end"], "2026-11-01", "replenishment.peaks[0].end", "before start"),
    (["peaks", 0, "start"], "next friday", "replenishment.peaks[0].start", "not a date"),
    (["peaks", 0, "factor"], 0, "replenishment.peaks[0].factor", "above 0"),
    (["history_days"], 3, "replenishment.history_days", "below 7"),
    (["default_policy", "kind"], None, "replenishment.default_policy.kind", "not one of"),
]


@pytest.mark.parametrize(("path", "value", "where", "says"), BROKEN)
def test_a_mistake_is_refused_with_its_key_path(
    path: list[Any], value: Any, where: str, says: str
) -> None:
    """Given a section with one mistake
    When it is parsed
    Then ReplenishmentConfigError names the key path and the cause."""
    with pytest.raises(ReplenishmentConfigError) as caught:
        parse_replenishment(_broken(path, value))
    assert caught.value.path == where
    assert says in caught.value.message


def test_a_policy_needs_exactly_one_of_sku_or_category() -> None:
    """Given a policy with both sku and category / When parsed / Then refused at its entry."""
    raw = section()
    raw["policies"][0]["category"] = "furniture"
    with pytest.raises(ReplenishmentConfigError, match=r"policies\[0\]: needs exactly one"):
        parse_replenishment(raw)


def test_a_location_the_ledger_does_not_know_is_refused_when_loading_the_file(
    tmp_path: Path,
) -> None:
    """Given the ledger's file declaring locations paris-wh and lyon
    When the replenishment section names lyon-store in a policy
    Then loading it names the key path and the known locations."""
    raw = section()
    ok = {"default_location": "paris-wh", "locations": [{"name": "lyon"}], "replenishment": raw}
    path = tmp_path / "channels.yaml"
    path.write_text(yaml.safe_dump(ok))
    assert load_replenishment(path).policies[("furniture", "lyon")]
    bad = copy.deepcopy(ok)
    bad["replenishment"]["policies"][1]["location"] = "lyon-store"
    path.write_text(yaml.safe_dump(bad))
    with pytest.raises(ReplenishmentConfigError) as caught:
        load_replenishment(path)
    assert caught.value.path == "replenishment.policies[1].location"
    assert "known: lyon, paris-wh" in caught.value.message


def test_an_unreadable_file_is_a_clear_error(tmp_path: Path) -> None:
    """Given a path with no file / When loaded / Then the error says it cannot be read."""
    with pytest.raises(ReplenishmentConfigError, match="cannot read"):
        load_replenishment(tmp_path / "missing.yaml")


def test_the_sample_configuration_parses() -> None:
    """Given deploy/local/channels.example.yaml / When loaded / Then its example section is
    valid (the file users copy must not fail at start)."""
    config = load_replenishment(ROOT / "deploy" / "local" / "channels.example.yaml")
    assert config.suppliers and config.items and config.policies
