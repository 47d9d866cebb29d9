"""A client for a schema registry with the Confluent REST API (Confluent, Apicurio ccompat).

Plain ``urllib``: two calls are all the codec needs, register and look up by id.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


class RegistryError(RuntimeError):
    """The registry refused or could not be reached; ``status`` is the HTTP status or 0."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class RegistryClient:
    def __init__(self, url: str, timeout: float = 10.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise RegistryError(f"schema registry URL {url!r} must start with http:// or https://")
        self.url = url.rstrip("/")
        self.timeout = timeout

    def register(self, subject: str, schema_json: str) -> int:
        """Register (or find) ``schema_json`` under ``subject``; returns its global id."""
        answer = self._call(
            "POST",
            f"/subjects/{subject}/versions",
            {"schema": schema_json, "schemaType": "AVRO"},
        )
        return int(answer["id"])

    def schema_by_id(self, schema_id: int) -> str:
        """The schema text registered under ``schema_id``."""
        return str(self._call("GET", f"/schemas/ids/{schema_id}")["schema"])

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(  # noqa: S310 - the scheme is checked in __init__
            self.url + path,
            data=data,
            method=method,
            headers={"Content-Type": CONTENT_TYPE, "Accept": CONTENT_TYPE},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:  # noqa: S310
                return json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:500].decode(errors="replace")
            raise RegistryError(
                f"{method} {self.url}{path}: HTTP {exc.code} {detail}", exc.code
            ) from None
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            raise RegistryError(f"schema registry at {self.url} unreachable: {exc}") from None
