"""Fixtures: a private redis-server for the session (never a Redis we did not start), unique
queue names per test, fakeredis beside it for script-level tests, and a check that no test
leaves relayq threads or child processes behind. `worker_process` runs a real relayq-worker."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import fakeredis
import pytest

import relayq
from relayq.keys import API_KEYS, QUEUE_NAME, QUEUES
from relayq.tools.redis_process import RedisProcess

from .topologies import session_url


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisProcess]:
    server = RedisProcess().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_url(request: pytest.FixtureRequest) -> str:
    """The Redis of the engine tests: the session's redis-server, or the cluster or Sentinel
    setup that RELAYQ_TEST_TOPOLOGY names (tests/topologies.py)."""
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


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.01,
               message: str = "condition") -> Any:
    """Polls `predicate` until it returns something truthy, or fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


@contextmanager
def worker_process(redis_url: str, queue: str, *args: str,
                   log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A real `relayq-worker` serving `queue` (the demo handler unless `args` name an --app),
    its output in `log`. On the way out SIGTERM drains it: it must exit 0 in time."""
    with log.open("wb") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "relayq.worker.cli", "--queue", queue, "--redis", redis_url,
             "--grace", "5", *args], stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield worker
    finally:
        worker.terminate()
        try:
            assert worker.wait(15) == 0, log.read_text(errors="replace")[-2000:]
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.wait(5)


def keyspace(client: Any, queue: str) -> dict[str, tuple[bytes, bool]]:
    """Every key of a queue with its DUMP (byte-for-byte state) and TTL presence."""
    keys = sorted(client.scan_iter(match=f"relayq:{{{queue}}}:*", count=1000))
    return {key: (client.execute_command("DUMP", key, NEVER_DECODE=True), client.pttl(key) > 0)
            for key in keys}


def writable(client: Any, path: str) -> Any:
    """All that an HTTP request to `path` could write: the keyspace of each queue the path
    names (as a queue or by a job id), the list of queues and the API key store."""
    queues = set()
    for part in path.split("?")[0].split("/"):
        for name in (part, part.rpartition(".")[0]):
            if QUEUE_NAME.fullmatch(name):
                queues.add(name)
    return ({name: keyspace(client, name) for name in sorted(queues)},
            client.smembers(QUEUES), client.hgetall(API_KEYS))


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
