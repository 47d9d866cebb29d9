"""Free loopback ports, so test processes never collide with another run on the machine."""

from __future__ import annotations

from deploy.local.children import free_port

__all__ = ["free_port"]
