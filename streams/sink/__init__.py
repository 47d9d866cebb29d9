"""ClickHouse sink: schema migrations, record→row mapping, the consume/insert/commit loop."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

from streams.kernel.settings import Settings

log = logging.getLogger("stockflow.sink")


def run_sink(settings: Settings) -> int:
    """``stockflow sink``: run until SIGTERM/SIGINT, then flush, commit and return 0."""
    from prometheus_client import start_http_server

    from schemas.codec import codec_for
    from streams.sink.metrics import SinkMetrics
    from streams.sink.order_gauges import run_order_gauges
    from streams.sink.sink import Sink

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("sink: %s received; flushing and committing", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    metrics = SinkMetrics()
    server, thread = start_http_server(
        settings.sink_metrics_port, addr=settings.sink_metrics_bind, registry=metrics.registry
    )
    log.info(
        "sink: metrics at http://%s:%d/metrics",
        settings.sink_metrics_bind,
        settings.sink_metrics_port,
    )
    gauges = run_order_gauges(settings, metrics.registry, stop)  # business dashboard figures
    try:
        sink = Sink(settings, codec_for(settings), metrics=metrics, group_id=settings.sink_group)
        return sink.run(stop)
    finally:
        stop.set()
        gauges.join(timeout=5)
        server.shutdown()
        thread.join(timeout=5)
