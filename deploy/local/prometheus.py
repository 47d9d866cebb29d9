"""Prometheus from Debian's package, scraping the worker, the sink and the connectors."""

from __future__ import annotations

import urllib.request

from deploy.local.credentials import prometheus_token_file
from deploy.local.process import ManagedProcess, require_free_port, wait_until
from deploy.local.tools import ensure_debian_package, render, say
from streams.kernel.settings import Settings


class Prometheus:
    name = "prometheus"

    def __init__(self, settings: Settings, scrape_interval: str = "2s") -> None:
        self.settings = settings
        self.home = settings.state_dir / "prometheus"
        self.scrape_interval = scrape_interval
        self.process = ManagedProcess("prometheus", settings.state_dir)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.settings.prometheus_port}"

    def where(self) -> str:
        return f"{self.url} (scrapes 127.0.0.1:{self.settings.worker_web_port}/metrics and more)"

    def is_ready(self) -> bool:
        with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as answer:  # noqa: S310
            return bool(answer.status == 200)

    def start(self) -> None:
        if self.process.pid() is not None:
            return
        s = self.settings
        require_free_port(s.prometheus_port, "Prometheus", "STOCKFLOW_PROMETHEUS_PORT")
        binary = ensure_debian_package("prometheus", "prometheus")
        (self.home / "data").mkdir(parents=True, exist_ok=True)
        config = self.home / "prometheus.yml"
        config.write_text(
            render(
                "prometheus.yml",
                scrape_interval=self.scrape_interval,
                worker_port=s.worker_web_port,
                sink_port=s.sink_metrics_port,
                connectors_port=s.connectors_port,
                token_file=prometheus_token_file(s),
            )
        )
        say(f"starting Prometheus on {self.url}")
        self.process.start(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={self.home / 'data'}",
                f"--web.listen-address=127.0.0.1:{s.prometheus_port}",
                "--storage.tsdb.retention.time=2d",
                "--web.enable-lifecycle",
            ],
            marker=str(config),
        )
        wait_until(self.is_ready, what="Prometheus", timeout=60, process=self.process)

    def stop(self) -> bool:
        return self.process.stop(timeout=20)
