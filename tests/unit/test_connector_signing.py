"""Webhook signatures: base64 HMAC-SHA256 of the raw body, two secrets during a rotation."""

from __future__ import annotations

import pytest

from connectors.framework.signing import sign, verify
from connectors.framework.types import SignatureError

BODY = b'{"id": 1, "line_items": [{"sku": "chair", "quantity": 2}]}'


def test_a_body_signed_with_the_secret_verifies() -> None:
    """Given a body signed with the configured secret, when verified, then it passes."""
    verify(["s3cret"], BODY, sign("s3cret", BODY))


def test_during_a_rotation_either_secret_verifies() -> None:
    """Given the old and the new secret configured, when a body is signed with either, then it
    passes; signed with a third secret, it fails."""
    for secret in ("old", "new"):
        verify(["new", "old"], BODY, sign(secret, BODY))
    with pytest.raises(SignatureError):
        verify(["new", "old"], BODY, sign("other", BODY))


def test_a_tampered_or_re_serialised_body_fails() -> None:
    """Given a valid signature, when one byte of the body changed or it was re-serialised
    with other spacing, then verification fails."""
    header = sign("s3cret", BODY)
    with pytest.raises(SignatureError):
        verify(["s3cret"], BODY.replace(b"2", b"3"), header)
    with pytest.raises(SignatureError):
        verify(["s3cret"], BODY.replace(b": ", b":"), header)


def test_a_missing_header_or_missing_secret_fails_with_the_cause() -> None:
    """Given no header, or no secret configured, when verified, then the error says which."""
    with pytest.raises(SignatureError, match="header missing"):
        verify(["s3cret"], BODY, None)
    with pytest.raises(SignatureError, match="no webhook secret"):
        verify([], BODY, sign("s3cret", BODY))
