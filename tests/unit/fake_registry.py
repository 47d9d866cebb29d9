"""A tiny in-process HTTP registry with the Confluent API, for unit tests of the codec."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _Registry:
    def __init__(self) -> None:
        self.schemas: dict[int, str] = {}
        self.ids: dict[str, int] = {}


@contextmanager
def fake_registry() -> Iterator[str]:
    registry = _Registry()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _answer(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            text = body["schema"]
            if text not in registry.ids:
                registry.ids[text] = len(registry.ids) + 1
                registry.schemas[registry.ids[text]] = text
            self._answer(200, {"id": registry.ids[text]})

        def do_GET(self) -> None:
            schema_id = int(self.path.rsplit("/", 1)[-1])
            if schema_id in registry.schemas:
                self._answer(200, {"schema": registry.schemas[schema_id]})
            else:
                self._answer(404, {"error_code": 40403, "message": "Schema not found"})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
