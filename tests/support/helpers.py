"""Helpers shared by the tests: polling with a deadline, a real relayq-worker process, and
byte-for-byte snapshots of what a script or a request could have written."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from relayq.keys import API_KEYS, QUEUE_NAME, QUEUES

ROOT = Path(__file__).resolve().parents[2]


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
def worker_process(redis_url: str | None, queue: str, *args: str, log: Path,
                   server: tuple[str, str] | None = None,
                   env: dict[str, str] | None = None,
                   cwd: Path | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """A real `relayq-worker` serving `queue` (the demo handler unless `args` name an --app),
    its output in `log`, run in `cwd` (where --app is imported from). `server`: (url, key) to
    work over that relayq-server's HTTP API alone (`--server`, the key in $RELAYQ_API_KEY;
    `redis_url` must then be None, and $RELAYQ_REDIS_URL names a port where nothing listens, so
    that a use of Redis would fail). On the way out SIGTERM drains it: it must exit 0 in time."""
    assert (redis_url is None) == (server is not None), "give redis_url or server"
    where = ["--redis", redis_url] if redis_url is not None else ["--server", server[0]]
    environ = {**os.environ, **(env or {})}
    if server is not None:
        environ.update(RELAYQ_API_KEY=server[1], RELAYQ_REDIS_URL="redis://127.0.0.1:1/0")
    with log.open("wb") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "relayq.worker.cli", "--queue", queue, *where,
             "--grace", "5", *args], stdout=out, stderr=subprocess.STDOUT, env=environ,
            start_new_session=True, cwd=cwd)
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
