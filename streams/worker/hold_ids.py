"""Hold ids carry their SKU, so a release can be routed to the SKU's partition."""

from __future__ import annotations

import base64
import binascii
import uuid


def hold_id_for(sku: str) -> str:
    """A new hold id that carries its SKU, so DELETE /v1/holds/{id} can find the partition."""
    encoded = base64.urlsafe_b64encode(sku.encode()).decode().rstrip("=")
    return f"h.{encoded}.{uuid.uuid4().hex}"


def sku_of_hold(hold_id: str) -> str | None:
    parts = hold_id.split(".")
    if len(parts) != 3 or parts[0] != "h":
        return None
    try:
        padded = parts[1] + "=" * (-len(parts[1]) % 4)
        sku = base64.b64decode(padded, altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    return sku or None
