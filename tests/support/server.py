"""Fixtures of the HTTP API tests: one real `relayq-server` process (this checkout's code,
auth required) on the session's private redis-server, an admin key, a key per scope, the raw
`api` helper (which checks every reply against /api/openapi.json) and the SDK client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import relayq
from relayq.auth import SCOPES, KeyStore
from relayq.tools.server_process import ServerProcess
from tests.support.http import Api, OpenApiChecker

ROOT = Path(__file__).resolve().parents[2]


def start_server(redis_url: str, *args: str, env: dict[str, str] | None = None) -> ServerProcess:
    """A server of one worker process unless `args` say otherwise: what a test counts on
    /healthz (long polls, event streams) is one process's."""
    workers = () if "--workers" in args else ("--workers", "1")
    return ServerProcess(redis_url, *workers, *args, cwd=ROOT, env=env).start()


@pytest.fixture(scope="session")
def server(redis_url: str) -> Iterator[ServerProcess]:
    # many tests here fail to authenticate on purpose, all from 127.0.0.1: not throttled
    process = start_server(redis_url, "--queues", "listed-before-use",
                           "--auth-failure-burst", "1000000")
    yield process
    process.stop()


@pytest.fixture(scope="session")
def scoped_keys(redis_url: str) -> dict[str, str]:
    """A key per scope (scope -> key string), made straight in Redis."""
    store = KeyStore(relayq.connect(redis_url))
    return {scope: store.create(f"test-{scope}", [scope])[1] for scope in SCOPES}


@pytest.fixture(scope="session")
def admin_key(scoped_keys: dict[str, str]) -> str:
    return scoped_keys["admin"]


@pytest.fixture(scope="session")
def checker(server: ServerProcess, admin_key: str) -> OpenApiChecker:
    return OpenApiChecker(Api(server.url, None, None).call("GET", "/api/openapi.json").body)


@pytest.fixture
def api(server: ServerProcess, admin_key: str, checker: OpenApiChecker) -> Api:
    return Api(server.url, admin_key, checker)


@pytest.fixture
def client(server: ServerProcess, admin_key: str) -> Iterator[relayq.Client]:
    with relayq.Client(server.url, admin_key) as c:
        yield c


@pytest.fixture
def job_in(q: relayq.Queue[Any]) -> str:
    """The id of a fresh ready job in the test's queue."""
    return q.enqueue({"n": 1}).id
