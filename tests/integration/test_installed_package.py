"""The package as a user installs it: a built wheel, run outside the checkout."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from streams.kernel.settings import PROJECT_ROOT, Settings
from tests.support.ports import free_port

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's wheel, built and installed into a folder of its own (dependencies are
    the test environment's)."""
    work = tmp_path_factory.mktemp("installed")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", work, PROJECT_ROOT],
        check=True,
        timeout=300,
    )
    [wheel] = work.glob("stockflow-*.whl")
    target = work / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", target, wheel],
        check=True,
        timeout=300,
    )
    return target


def _run(installed: Path, cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(installed), **env},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_the_installed_package_imports_nothing_from_the_checkout(
    installed: Path, tmp_path: Path
) -> None:
    """Given the wheel installed in a folder of its own, when its modules are imported from
    another folder, then every one of them (fakes and schema files included) comes from the
    installed copy."""
    probe = (
        "import streams.cli, connectors.testing.shopify, deploy.demo.run, deploy.bench.runner\n"
        "from schemas.loader import SCHEMAS_DIR\n"
        "import streams, connectors, deploy\n"
        "print(streams.__file__, connectors.__file__, deploy.__file__, SCHEMAS_DIR)\n"
    )
    result = _run(installed, tmp_path, "-c", probe)
    assert result.returncode == 0, result.stderr
    paths = result.stdout.split()
    assert len(paths) == 4 and all(p.startswith(str(installed)) for p in paths), paths


def test_stockflow_demo_runs_from_the_installed_package(
    installed: Path, tmp_path: Path, local_stack: Settings
) -> None:
    """Given the wheel installed outside the checkout and the local stack up,
    when `stockflow demo` runs from another folder, then the day plays through and the
    summary shows the accepted orders, the four shops with their quantity and price, the
    Magento order, the till, the ERP snapshot and the rows in ClickHouse."""
    result = _run(
        installed,
        tmp_path,
        "-m",
        "streams.cli",
        "demo",
        STOCKFLOW_STATE_DIR=str(local_stack.state_dir),
        STOCKFLOW_WORKER_WEB_PORT=str(free_port()),
        STOCKFLOW_CONNECTORS_PORT=str(free_port()),
        STOCKFLOW_SINK_METRICS_PORT=str(free_port()),
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Summary for office-chair-" in result.stdout
    assert "rows in ClickHouse (distinct ids): stock_movements" in result.stdout
    summary = result.stdout.split("Summary for office-chair-", 1)[1]
    for shop in ("shopify", "woocommerce", "magento", "prestashop"):
        assert f"\n  {shop} " in summary, shop
    assert "on every shop: magento 129.00" in summary
    assert "prestashop 122.95" in summary and "shopify 141.99" in summary
    assert "Magento order" in summary and "polled in and reserved" in summary
    assert "POST /v1/pos/changes" in summary
    assert "nightly ERP snapshot" in summary
    # the rush on the marketplaces: never more reserved than the 100 chairs counted, every
    # Mirakl order answered, and each marketplace ends showing the ledger's figure
    rush = re.search(r"the rush: (\d+) chairs reserved of the 100 counted", summary)
    assert rush and 0 < int(rush.group(1)) <= 100, summary
    assert re.search(r"Mirakl \(leroymerlin\): (\d+) orders awaiting acceptance", summary)
    # a desk set sold as its components, a pre-order served first, the warehouse's wave
    assert re.search(r"desk set desk-set-\S+ \(bundle: 1 chair \+ 1 desk\).*: allocated", summary)
    assert "reason preorder, promised" in summary and "pre-order was served first" in summary
    waves = re.search(r"waves plan --location paris-wh: (\d+) wave", summary)
    assert waves and int(waves.group(1)) >= 1 and "pick-list.pdf, summary.pdf" in summary
    for market in ("amazon", "mirakl-leroymerlin"):
        shown = re.search(rf"\n  {market} +(\d+)  ->  (\d+)", summary)
        assert shown and shown.group(1) == shown.group(2), market
