"""Secrets never reach a log line, an exception text or a dead-letter record.

aiohttp's ``ClientResponseError`` family (``TooManyRedirects``, ``ContentTypeError``, …)
carries the ``RequestInfo`` of the failed request, and its ``repr()`` prints every request
header: a Shopify access token or a WooCommerce ``Authorization: Basic`` value would land in
the text. So:

- the clients describe a failure with :func:`describe` (type, status and message; never the
  request info) and raise their own error ``from None`` (no chained original to print);
- every secret the process uses is :func:`register`\\ ed when its client is built, and
  :func:`scrub` replaces any of them (and their Basic-auth encoding) in a text;
- :class:`RedactingFilter` scrubs every log record of the connectors process, a last guard
  for texts that did not come through :func:`describe`.
"""

from __future__ import annotations

import base64
import logging
import threading

import aiohttp

MASK = "****"
_lock = threading.Lock()
_secrets: set[str] = set()


def register(*secrets: str) -> None:
    """Remember values that must never be printed (empty strings are ignored)."""
    with _lock:
        _secrets.update(s for s in secrets if s)


def register_basic_auth(user: str, password: str) -> None:
    """The two halves and the encoded ``Authorization: Basic`` value of a key pair."""
    encoded = base64.b64encode(f"{user}:{password}".encode()).decode()
    register(user, password, encoded)


def scrub(text: str) -> str:
    """``text`` with every registered secret replaced by ``****`` (longest first)."""
    with _lock:
        known = sorted(_secrets, key=len, reverse=True)
    for secret in known:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def describe(exc: BaseException) -> str:
    """A one-line, secret-free description of ``exc`` for logs and dead letters."""
    if isinstance(exc, aiohttp.ClientResponseError):
        # str() and repr() of these carry the request's URL and headers: keep status only
        text = f"{type(exc).__name__}: status={exc.status} {exc.message}".rstrip()
    else:
        text = f"{type(exc).__name__}: {exc}".rstrip(": ")
    return scrub(text)


class RedactingFilter(logging.Filter):
    """Rewrites each record's message and exception text without registered secrets."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if record.exc_info:
            text = f"{text}\n{logging.Formatter().formatException(record.exc_info)}"
            record.exc_info = None
            record.exc_text = None
        cleaned = scrub(text)
        if cleaned != record.msg or record.args:
            record.msg, record.args = cleaned, None
        return True


def install_log_filter() -> None:
    """Put :class:`RedactingFilter` on every handler of the root logger."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
