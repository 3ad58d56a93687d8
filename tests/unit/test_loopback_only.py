"""The suite's own guard: nothing but loopback is reached or even looked up from the test process.

Checked without ever trying a real address: if the guard were broken, a test of it must not be the
thing that sends a packet out.
"""

from __future__ import annotations

import socket

import pytest

from tests import loopback_only


def test_the_guard_is_installed_for_every_test() -> None:
    assert socket.socket.connect is loopback_only._connect
    assert socket.socket.connect_ex is loopback_only._connect_ex
    assert socket.getaddrinfo is loopback_only._getaddrinfo


def test_a_public_address_is_refused_before_the_socket_connects() -> None:
    with socket.socket() as sock, pytest.raises(ConnectionRefusedError, match="loopback only"):
        loopback_only._check(sock, ("192.0.2.1", 443))


def test_loopback_still_works() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        with socket.create_connection(server.getsockname(), timeout=5):
            pass
    assert socket.getaddrinfo("localhost", 80)


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("localhost", True),
        ("10.0.0.1", False),
        ("dynamodb.us-east-1.amazonaws.com", False),
        ("::ffff:10.0.0.1", False),
        ("169.254.169.254", False),
    ],
)
def test_what_counts_as_loopback(host: str, expected: bool) -> None:
    assert loopback_only.is_loopback(host) is expected
