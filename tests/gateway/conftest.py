"""Fixtures of the RESP gateway tests: one real `relayq-server --resp-addr` (auth required) on
the session's private redis-server, its RESP port, and redis-py clients of it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from relayq.tools.redis_process import free_port
from relayq.tools.server_process import ServerProcess
from tests.support.server import start_server


@dataclass
class Gateway:
    server: ServerProcess
    port: int

    def client(self, key: str | None, **options: Any) -> redis.Redis:
        """A redis-py client; it does not retry (redis-py 8 retries even a refused password,
        three times with a backoff: seconds per refusal)."""
        return redis.Redis(port=self.port, password=key, decode_responses=True,
                           socket_timeout=10, retry=Retry(NoBackoff(), 0), **options)


def start_gateway(redis_url: str, *args: str) -> Gateway:
    port = free_port()
    return Gateway(start_server(redis_url, "--resp-addr", f"127.0.0.1:{port}", *args), port)


@pytest.fixture(scope="session")
def gateway(redis_url: str) -> Iterator[Gateway]:
    gw = start_gateway(redis_url, "--resp-lease-ms", "2000")
    yield gw
    gw.server.stop()


@pytest.fixture
def rc(gateway: Gateway, admin_key: str) -> Iterator[redis.Redis]:
    """A redis-py client of the gateway, authenticated with an admin key."""
    client = gateway.client(admin_key)
    yield client
    client.close()
