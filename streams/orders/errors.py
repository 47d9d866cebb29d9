"""Errors of the order book's configuration."""

from __future__ import annotations

__all__ = ["OrderConfigError"]


class OrderConfigError(ValueError):
    """A configuration error under ``orders:``; ``path`` is the key path at fault
    (``orders.approvals.channels[0].total_above``), ``message`` the cause and the fix."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message
