"""A real ledger worker process for integration and fault tests (start, kill -9, restart)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from deploy.local import children
from streams.ledger.state import SkuState
from tests.support.processes import track


class WorkerProcess(children.WorkerProcess):
    """The package's worker process, tracked so none outlives the session; a new test worker
    ignores what earlier tests left in the shared input topic."""

    def __init__(self, app_id: str, web_port: int, log_dir: Path, **env: str) -> None:
        super().__init__(
            app_id, web_port, log_dir, on_spawn=track, STOCKFLOW_OFFSET_RESET="latest", **env
        )
        self.first_offsets: dict[int, int] = {}  # input offsets before its first start

    def start(self, timeout: float = 120) -> None:  # type: ignore[override]
        super().start()
        self.wait_ready(timeout)

    def stock(self, sku: str) -> dict[str, Any] | None:
        status, body = self.get(f"/v1/stock/{sku}")
        return body if status == 200 else None

    def post(self, path: str, body: Any) -> tuple[int, Any]:
        return self.request("POST", path, body)

    def delete(self, path: str) -> tuple[int, Any]:
        return self.request("DELETE", path)

    def metrics(self) -> str:
        import urllib.request

        request = urllib.request.Request(
            self.url + "/metrics", headers={"Authorization": f"Bearer {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            return str(answer.read().decode())

    def log_tail(self, lines: int = 60) -> str:
        return self.tail(lines)


def state_mismatches(
    sku: str, state: SkuState, got: dict[str, Any] | None
) -> list[tuple[str, str, Any, Any]]:
    """Where a worker's stock answer ``got`` for ``sku`` differs from ``state`` (the pure
    rules' result): ``(sku, location, wanted, had)`` per location; one row if no answer."""
    if got is None:
        return [(sku, "*", "a state", None)]
    found = []
    for name, loc in state.locations.items():
        want = (loc.on_hand, loc.reserved, loc.unsellable)
        have = tuple(
            got["locations"].get(name, {}).get(k) for k in ("on_hand", "reserved", "unsellable")
        )
        if want != have:
            found.append((sku, name, want, have))
    return found
