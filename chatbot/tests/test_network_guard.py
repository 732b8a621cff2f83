import socket

import pytest
from pytest_socket import SocketConnectBlockedError


def test_tests_cannot_reach_the_network():
    with pytest.raises(SocketConnectBlockedError), pytest.warns(UserWarning):
        socket.create_connection(("93.184.216.34", 80), timeout=1)


def test_tests_can_reach_loopback():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with socket.create_connection(server.getsockname(), timeout=1):
            pass
