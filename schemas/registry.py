"""A client for a schema registry with the Confluent REST API (Confluent, Apicurio ccompat).

Plain ``urllib``: two calls are all the codec needs, register and look up by id. The URL is
the API's base, e.g. ``http://127.0.0.1:8081/apis/ccompat/v7`` for Apicurio.
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
_BASE_HINT = (
    "is the URL the registry's Confluent API base (Apicurio: http://host:port/apis/ccompat/v7)?"
)


class RegistryError(RuntimeError):
    """The registry refused or could not be reached; ``status`` is the HTTP status or 0."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class RegistryClient:
    def __init__(self, url: str, timeout: float = 10.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise RegistryError(
                f"schema registry URL {_without_credentials(url)!r} must start with http:// "
                "or https://; fix STOCKFLOW_SCHEMA_REGISTRY_URL"
            )
        self.url = url.rstrip("/")
        self.shown = _without_credentials(self.url)  # for messages: never the password
        self.timeout = timeout

    def register(self, subject: str, schema_json: str) -> int:
        """Register (or find) ``schema_json`` under ``subject``; returns its global id."""
        path = f"/subjects/{urllib.parse.quote(subject, safe='')}/versions"
        answer = self._call("POST", path, {"schema": schema_json, "schemaType": "AVRO"})
        try:
            return int(answer["id"])
        except (KeyError, TypeError, ValueError):
            raise RegistryError(f"POST {self.shown}{path} answered {answer!r}, no id") from None

    def schema_by_id(self, schema_id: int) -> str:
        """The schema text registered under ``schema_id``; RegistryError(status=404) if none."""
        path = f"/schemas/ids/{schema_id}"
        answer = self._call("GET", path)
        try:
            return str(answer["schema"])
        except (KeyError, TypeError):
            raise RegistryError(f"GET {self.shown}{path} answered {answer!r}, no schema") from None

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(  # noqa: S310 - the scheme is checked in __init__
            self.url + path,
            data=data,
            method=method,
            headers={"Content-Type": CONTENT_TYPE, "Accept": CONTENT_TYPE},
        )
        where = f"{method} {self.shown}{path}"
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:  # noqa: S310
                text = answer.read()
        except urllib.error.HTTPError as exc:
            with exc:  # close it: an unclosed HTTPError warns, and warnings are errors in tests
                detail = exc.read()[:500].decode(errors="replace")
            hint = f"; {_BASE_HINT}" if exc.code == 404 and method == "POST" else ""
            raise RegistryError(f"{where}: HTTP {exc.code} {detail}{hint}", exc.code) from None
        except (OSError, http.client.HTTPException) as exc:  # URLError and timeouts are OSError
            raise RegistryError(
                f"schema registry at {self.shown} unreachable ({where}): {exc}; start it, or fix "
                "STOCKFLOW_SCHEMA_REGISTRY_URL"
            ) from None
        try:
            return json.loads(text)
        except ValueError:
            raise RegistryError(f"{where} answered non-JSON {text[:100]!r}; {_BASE_HINT}") from None


def _without_credentials(url: str) -> str:
    """``url`` with any ``user:password@`` replaced by ``***@``: safe for logs and errors."""
    parts = urllib.parse.urlsplit(url)
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"***@{host}"))
