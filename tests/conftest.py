"""Shared fixtures. Feature fixtures live in tests/support/ and are registered here."""
import socket

import pytest

pytest_plugins: list[str] = ["tests.support.backends", "tests.support.redis", "tests.support.auth"]


@pytest.fixture
def unused_port() -> int:
    """A loopback TCP port nothing listens on (bound and released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
