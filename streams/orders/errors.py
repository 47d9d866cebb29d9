"""Errors of the order book's rules."""

from __future__ import annotations

__all__ = ["OrderConfigError"]


class OrderConfigError(ValueError):
    """The ``orders:`` configuration cannot be used; the message names the key path and the fix."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message
