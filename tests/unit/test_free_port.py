"""Ports handed to test and bench processes: free, and never ones the kernel may give an
outgoing connection while their process restarts."""

from __future__ import annotations

import socket

from deploy.local.children import LISTEN_PORTS_FROM, _ephemeral_low, free_port


def test_a_free_port_is_below_the_ephemeral_range_and_can_be_listened_on() -> None:
    for _ in range(20):
        port = free_port()
        assert LISTEN_PORTS_FROM <= port < _ephemeral_low()
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))
            sock.listen()
