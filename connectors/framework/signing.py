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
