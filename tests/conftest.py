"""Fixtures: a private redis-server for the session (never a Redis we did not start), unique
queue names per test, fakeredis beside it for script-level tests, and a check that no test
leaves relayq threads or child processes behind. The fixtures of the HTTP server and of S3 come
from tests/support (registered below); helpers tests import are in tests/support/helpers.py."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import fakeredis
import pytest

import relayq
from relayq.tools.redis_process import RedisProcess
from tests.support.topologies import session_url

pytest_plugins = ["tests.support.server", "tests.support.s3"]


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisProcess]:
    server = RedisProcess().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_url(request: pytest.FixtureRequest) -> str:
    """The Redis of the engine tests: the session's redis-server, or the cluster or Sentinel
    setup that RELAYQ_TEST_TOPOLOGY names (tests/support/topologies.py)."""
    return session_url(request)


@pytest.fixture
def r(redis_url: str) -> Iterator[Any]:
    client = relayq.connect(redis_url)
    yield client
    client.close()


@pytest.fixture
def queue_name() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def q(r: Any, queue_name: str) -> relayq.Queue[Any]:
    return relayq.Queue(queue_name, r)


@pytest.fixture(params=["redis", "fakeredis"])
def any_r(request: pytest.FixtureRequest) -> Iterator[Any]:
    """The script-level tests run twice: on the real server and on fakeredis (a fresh
    FakeServer each time: a script that set a global would poison later ones)."""
    if request.param == "redis":
        client = relayq.connect(request.getfixturevalue("redis_url"))
        yield client
        client.close()
    else:
        yield fakeredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True)


@pytest.fixture
def any_q(any_r: Any, queue_name: str) -> relayq.Queue[Any]:
    return relayq.Queue(queue_name, any_r)


@pytest.fixture(autouse=True)
def no_leftover_threads() -> Iterator[None]:
    before = {t.ident for t in threading.enumerate()}
    yield
    deadline = time.monotonic() + 5
    while True:
        left = [t for t in threading.enumerate()
                if t.ident not in before and t.name.startswith("relayq-") and t.is_alive()]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert not left, f"test left relayq threads running: {[t.name for t in left]}"
