"""A tiny in-process HTTP registry with the Confluent API, for unit tests of the codec.

It answers like Apicurio's ccompat API where the codec cares: ids per distinct schema (the
same schema under two subjects gets one id), 404 with error_code 40403 for an unknown id,
415 without the registry content type. Switches make it misbehave.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
_REGISTER = re.compile(r"^/subjects/([^/]+)/versions$")
_BY_ID = re.compile(r"^/schemas/ids/(\d+)$")


def _key(schema_text: str) -> str:
    return json.dumps(json.loads(schema_text), sort_keys=True, separators=(",", ":"))


@dataclass
class FakeRegistry:
    url: str = ""
    schemas: dict[int, str] = field(default_factory=dict)
    subjects: dict[str, list[int]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, path)
    _failures: list[tuple[int, str]] = field(default_factory=list)

    def add(self, schema_text: str, subject: str = "") -> int:
        """Register directly, as another producer would have; returns the id."""
        key = _key(schema_text)
        found = next((i for i, text in self.schemas.items() if _key(text) == key), None)
        schema_id = found if found is not None else 100 + len(self.schemas)  # ids != positions
        self.schemas.setdefault(schema_id, schema_text)
        if subject and schema_id not in self.subjects.setdefault(subject, []):
            self.subjects[subject].append(schema_id)
        return schema_id

    def fail_next(self, count: int, status: int = 503, body: str = '{"message":"busy"}') -> None:
        """The next ``count`` requests get ``status`` with ``body`` instead of an answer."""
        self._failures.extend([(status, body)] * count)

    def _take_failure(self) -> tuple[int, str] | None:
        return self._failures.pop(0) if self._failures else None


@contextmanager
def fake_registry() -> Iterator[FakeRegistry]:
    registry = FakeRegistry()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _answer(self, status: int, body: Any) -> None:
            data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", CONTENT_TYPE)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _failed(self) -> bool:
            registry.requests.append((self.command, self.path))
            failure = registry._take_failure()
            if failure is not None:
                self._answer(*failure)
            return failure is not None

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length)
            if self._failed():
                return
            if self.headers.get("Content-Type") != CONTENT_TYPE:
                self._answer(415, "")
                return
            match = _REGISTER.match(self.path)
            if match is None:
                self._answer(404, {"error_code": 404, "message": "HTTP 404 Not Found"})
                return
            self._answer(200, {"id": registry.add(json.loads(raw)["schema"], match[1])})

        def do_GET(self) -> None:
            if self._failed():
                return
            match = _BY_ID.match(self.path)
            schema_id = int(match[1]) if match else -1
            if schema_id in registry.schemas:
                self._answer(200, {"schema": registry.schemas[schema_id]})
            else:
                message = f"Schema {schema_id} not found."
                self._answer(404, {"error_code": 40403, "message": message})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    registry.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield registry
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
