"""HMAC-SHA256 webhook signatures (Shopify and WooCommerce sign the same way)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence

from connectors.framework.types import SignatureError


def sign(secret: str, raw_body: bytes) -> str:
    """``base64(HMAC_SHA256(secret, raw body))``, as both channels put it in their header."""
    digest = hmac.new(secret.encode(), raw_body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def verify(secrets: Sequence[str], raw_body: bytes, header: str | None) -> None:
    """Accept the raw bytes if any configured secret (old and new during a rotation) signed
    them; compares in constant time and checks every secret, so timing tells nothing."""
    if not header:
        raise SignatureError("signature header missing")
    if not secrets:
        raise SignatureError("no webhook secret configured for this channel")
    matched = False
    for secret in secrets:
        matched |= hmac.compare_digest(sign(secret, raw_body).encode(), header.encode())
    if not matched:
        raise SignatureError("signature matches no configured secret")


class ForeignSourceError(ValueError):
    """A correctly signed delivery that names another shop than the configured one (two shops
    sharing an app secret, or a misdirected subscription): answered 403, nothing published.
    Point the shop's webhook at its own channel entry, or fix ``mapping.shop``/``site``."""


class ExpiredDeliveryError(ValueError):
    """A delivery triggered longer ago than the channel's ``webhook_max_age_s``: a replay of
    an old, captured delivery. Answered 410; the poller reads the order's current state."""


def _site(value: str) -> str:
    return value.strip().lower().rstrip("/")


def check_source(expected: str, header: str | None, name: str) -> None:
    """The delivery's shop header (``name``) must name the configured shop or site."""
    if header is None or _site(header) != _site(expected):
        raise ForeignSourceError(f"{name} is {header!r}, this channel serves {expected!r}")


def check_age(triggered_at_ms: int, now_ms: int, max_age_s: float) -> None:
    """Refuse a delivery triggered more than ``max_age_s`` before ``now_ms``."""
    age_s = (now_ms - triggered_at_ms) / 1000
    if age_s > max_age_s:
        raise ExpiredDeliveryError(
            f"delivery triggered {age_s:.0f}s ago, more than webhook_max_age_s={max_age_s:g}"
        )
