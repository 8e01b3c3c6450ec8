"""`RedisProcess` (relayq/testing/redis_process.py) against real redis-servers: a port taken
between free_port() and the server's bind (another test run in parallel) costs a retry on fresh
ports, not a failed start; a port the caller chose is never swapped."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
import redis

from relayq.testing import redis_process
from relayq.testing.redis_process import RedisProcess


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port held by a listening socket for the whole test."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def test_a_port_taken_before_the_bind_is_picked_again(taken_port: int,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    picks = iter([taken_port, taken_port])  # its cluster bus port, then its own port
    real = redis_process.free_port
    monkeypatch.setattr(redis_process, "free_port", lambda: next(picks, None) or real())
    server = RedisProcess(extra_args=["--cluster-enabled", "yes",
                                      "--cluster-port", str(redis_process.free_port())])
    assert server.port == taken_port
    try:
        server.start()
        assert server.port != taken_port and redis.Redis(port=server.port).ping()
        bus = int(server.extra_args[server.extra_args.index("--cluster-port") + 1])
        assert bus != taken_port
    finally:
        server.stop()


def test_a_port_the_caller_chose_is_kept_and_the_failure_said(taken_port: int) -> None:
    server = RedisProcess(port=taken_port)
    try:
        with pytest.raises(RuntimeError, match="Address already in use"):
            server.start()
        assert server.port == taken_port
    finally:
        server.stop()


def test_another_redis_server_on_the_port_is_not_taken_for_ours(
        monkeypatch: pytest.MonkeyPatch) -> None:
    with RedisProcess() as other:
        picks = iter([other.port])
        real = redis_process.free_port
        monkeypatch.setattr(redis_process, "free_port", lambda: next(picks, None) or real())
        with RedisProcess() as ours:
            assert ours.port != other.port
            assert redis.Redis(port=ours.port).info("server")["process_id"] == ours.proc.pid
