"""Twins: the same test body runs on the sync class and on its relayq.aio twin. `Blocking`
runs an asyncio object's coroutine methods to completion on a private event loop, so that a
test calls `twin.enqueue(...)` alike on both and compares what they do and raise."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterator
from typing import Any

import pytest

import relayq
import relayq.aio


class Blocking:
    """Calls `target`'s methods; a coroutine's result is awaited on `loop`."""

    def __init__(self, target: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._target = target
        self._loop = loop

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._target, name)
        if not inspect.iscoroutinefunction(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            return self._loop.run_until_complete(attribute(*args, **kwargs))
        return call


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture(params=["sync", "aio"])
def twin_q(request: pytest.FixtureRequest, redis_url: str, queue_name: str,
           loop: asyncio.AbstractEventLoop) -> Iterator[Any]:
    """A queue named `queue_name`: a relayq.Queue, or a relayq.aio.Queue run by Blocking."""
    if request.param == "sync":
        queue = relayq.Queue(queue_name, redis_url)
        yield queue
        queue.redis.close()
    else:
        queue = relayq.aio.Queue(queue_name, redis_url)
        yield Blocking(queue, loop)
        loop.run_until_complete(queue.aclose())


@pytest.fixture(params=["sync", "aio"])
def twin_client(request: pytest.FixtureRequest, server: Any, admin_key: str,
                loop: asyncio.AbstractEventLoop) -> Iterator[Any]:
    """A client of the session's relayq-server: relayq.Client or relayq.aio.Client."""
    yield from _client(request.param, loop, server.url, admin_key)


def _client(kind: str, loop: asyncio.AbstractEventLoop, *args: Any, **kwargs: Any
            ) -> Iterator[Any]:
    if kind == "sync":
        with relayq.Client(*args, **kwargs) as client:
            yield client
    else:
        client = relayq.aio.Client(*args, **kwargs)
        yield Blocking(client, loop)
        loop.run_until_complete(client.aclose())


@pytest.fixture
def make_client(request: pytest.FixtureRequest, loop: asyncio.AbstractEventLoop) -> Any:
    """make_client(kind, *args, **kwargs): a client of either kind, closed after the test."""
    made: list[Iterator[Any]] = []

    def make(kind: str, *args: Any, **kwargs: Any) -> Any:
        made.append(_client(kind, loop, *args, **kwargs))
        return next(made[-1])
    yield make
    for gen in made:
        next(gen, None)
