"""`edge serve --workers N` binds one port as N listening sockets of one SO_REUSEPORT group.

On one shared socket, the worker that wakes first takes most connections and keeps them
(keep-alive); a socket per worker lets the kernel spread them. The workers themselves are
tested end to end in tests/test_lifecycle.py; this checks what the supervisor binds.
"""
from __future__ import annotations

import socket

import pytest

from edge.server import _listening_sockets


@pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT"), reason="no SO_REUSEPORT on this platform")
@pytest.mark.parametrize("count", [2, 3])
def test_one_socket_per_worker_on_one_port(count):
    socks = _listening_sockets("127.0.0.1", 0, count)
    try:
        assert len(socks) == count and len({id(s) for s in socks}) == count
        assert len({s.getsockname() for s in socks}) == 1
        assert all(s.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) for s in socks)
        assert all(s.get_inheritable() for s in socks)
        # Every socket of the group accepts: a connection lands on one of them.
        with socket.create_connection(socks[0].getsockname(), timeout=5):
            pass
    finally:
        for s in socks:
            s.close()


def test_a_port_in_use_is_refused():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(OSError):
            _listening_sockets("127.0.0.1", taken.getsockname()[1], 2)
