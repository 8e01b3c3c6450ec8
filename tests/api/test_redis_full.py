"""Issue 20 #5: with Redis full (`maxmemory` under `noeviction`, on a redis-server of this module
alone) the server answers 503 `redis_busy` with Retry-After, logs one line and no traceback, and
the SDK retries the calls that are safe to repeat and raises RedisBusy for the others."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

import relayq
from relayq import Client, RedisBusy
from relayq.tools.redis_process import RedisProcess
from relayq.tools.server_process import ServerProcess
from tests.support.helpers import wait_until
from tests.support.http import Api, OpenApiChecker
from tests.support.server import start_server


@pytest.fixture(scope="module")
def full() -> Iterator[tuple[ServerProcess, Any]]:
    """A server (auth off) and a client of its Redis, which each test fills and empties."""
    redis_server = RedisProcess().start()
    server = start_server(redis_server.url, "--auth", "off")
    r = relayq.connect(redis_server.url)
    r.config_set("maxmemory-policy", "noeviction")
    yield server, r
    r.close()
    server.stop()
    redis_server.stop()


@pytest.fixture
def server(full: tuple[ServerProcess, Any]) -> Iterator[ServerProcess]:
    server, r = full
    r.config_set("maxmemory", 1)  # every command that may grow memory is refused (OOM)
    yield server
    r.config_set("maxmemory", 0)


def refusals(server: ServerProcess, path: str) -> int:
    return server.stderr.count(f"path={path} status=503")


def test_an_enqueue_into_a_full_redis_is_503_redis_busy_without_a_traceback(
        server: ServerProcess) -> None:
    checker = OpenApiChecker(Api(server.url, None, None).call("GET", "/api/openapi.json").body)
    api = Api(server.url, None, checker)  # the reply is also checked against the OpenAPI
    for path, body in (("/api/queues/full/jobs", {"payload": {"n": 1}}),
                       ("/api/queues/full/jobs/batch", {"jobs": [{"payload": 1}]})):
        reply = api.call("POST", path, body)
        assert (reply.status, reply.code) == (503, "redis_busy"), reply
        assert reply.headers["Retry-After"] == "1"
        assert "OOM" in reply.body["error"]["message"]
    wait_until(lambda: refusals(server, "/api/queues/full/jobs/batch") == 1,
               message="the refusal logged")
    log = server.stderr
    assert "code=redis_busy" in log
    assert "Traceback" not in log and "internal_error" not in log and "status=500" not in log


def test_the_sdk_raises_redis_busy_for_a_call_it_cannot_repeat(server: ServerProcess) -> None:
    path = "/api/queues/once/jobs"
    with Client(server.url, retries=3, backoff_s=0.01) as c, pytest.raises(RedisBusy):
        c.enqueue("once", {"n": 1})
    wait_until(lambda: refusals(server, path) >= 1, message="the refusal logged")
    assert refusals(server, path) == 1  # sent once: a write without an idempotency key


def test_the_sdk_retries_an_idempotent_enqueue_until_redis_has_room(
        full: tuple[ServerProcess, Any], server: ServerProcess) -> None:
    _, r = full
    path = "/api/queues/later/jobs"

    def make_room() -> None:  # once the first try was refused (the SDK waits Retry-After)
        wait_until(lambda: refusals(server, path) >= 1, message="the first refusal")
        r.config_set("maxmemory", 0)

    helper = threading.Thread(target=make_room)
    helper.start()
    with Client(server.url, retries=3, backoff_s=0.01) as c:
        result = c.enqueue("later", {"n": 1}, idempotency_key="once-only")
        assert not result.duplicate and c.get(result.id).state == "ready"
    helper.join()
    assert refusals(server, path) >= 1
