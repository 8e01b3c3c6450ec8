"""Long-poll claims (`wait_ms`): they wake on enqueue, on a due delayed job and on resume, answer
204 at their deadline, pass on a wake-up nobody waits for any more, and a hundred idle ones
neither poll Redis nor slow down enqueues."""

from __future__ import annotations

import http.client
import json
import socket
import statistics
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import urllib3

import relayq
from relayq import Queue
from relayq.auth import KeyStore
from relayq.tools.redis_process import RedisProcess
from relayq.tools.server_process import ServerProcess
from tests.support.helpers import wait_until
from tests.support.http import Api
from tests.support.server import start_server


class LongPoll:
    """A claim with wait_ms on its own connection and thread; `result()` waits for its reply."""

    def __init__(self, url: str, key: str, queue: str, wait_ms: int, count: int = 1) -> None:
        self.reply: tuple[int, Any] | None = None
        parts = urlsplit(url)
        self._conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        self._args = (queue, key, {"wait_ms": wait_ms, "count": count})
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        queue, key, body = self._args
        self._conn.request("POST", f"/api/queues/{queue}/claim", json.dumps(body),
                           {"Authorization": f"Bearer {key}"} if key else {})
        try:
            response = self._conn.getresponse()
            data = response.read()
        except OSError:  # aborted
            return
        self.reply = (response.status, json.loads(data) if data else None)
        self._conn.close()

    def abort(self) -> None:
        """Hangs up without waiting for the reply."""
        self._conn.sock.shutdown(socket.SHUT_RDWR)
        self._thread.join(10)

    def result(self, timeout: float = 40.0) -> tuple[int, Any]:
        self._thread.join(timeout)
        assert self.reply is not None, "the long poll did not answer"
        return self.reply


def long_polls_open(api: Api) -> int:
    return api.call("GET", "/healthz").body["long_polls"]


def test_a_waiting_claim_wakes_on_enqueue(api: Api, server, admin_key: str, q: Queue) -> None:
    started = time.monotonic()
    poll = LongPoll(server.url, admin_key, q.name, 20_000)
    wait_until(lambda: long_polls_open(api) >= 1, message="the long poll to wait")
    job_id = q.enqueue({"n": 1}).id
    status, body = poll.result()
    assert status == 200 and body["jobs"][0]["id"] == job_id
    assert time.monotonic() - started < 10  # woken, not timed out at 20 s


def test_a_claim_with_nothing_to_take_answers_204_at_its_deadline(api: Api, q: Queue) -> None:
    started = time.monotonic()
    reply = api.call("POST", f"/api/queues/{q.name}/claim", {"wait_ms": 300})
    assert reply.status == 204 and time.monotonic() - started >= 0.3


def test_a_waiting_claim_gets_a_delayed_job_when_it_is_due(api: Api, q: Queue) -> None:
    job_id = q.enqueue({"n": 1}, delay_ms=400).id
    started = time.monotonic()
    reply = api.call("POST", f"/api/queues/{q.name}/claim", {"wait_ms": 20_000})
    assert reply.status == 200 and reply.body["jobs"][0]["id"] == job_id
    assert 0.35 <= time.monotonic() - started < 10


def test_a_waiting_claim_on_a_paused_queue_wakes_on_resume(api: Api, server, admin_key: str,
                                                           q: Queue) -> None:
    q.pause()
    job_id = q.enqueue({"n": 1}).id
    poll = LongPoll(server.url, admin_key, q.name, 20_000)
    wait_until(lambda: long_polls_open(api) >= 1, message="the long poll to wait")
    assert poll.reply is None
    q.resume()
    status, body = poll.result()
    assert status == 200 and body["jobs"][0]["id"] == job_id


def test_each_waiter_gets_its_own_job(api: Api, server, admin_key: str, q: Queue) -> None:
    polls = [LongPoll(server.url, admin_key, q.name, 20_000) for _ in range(5)]
    wait_until(lambda: long_polls_open(api) >= 5, message="five long polls to wait")
    ids = {r.id for r in q.enqueue_many(list(range(5)))}
    got = [p.result() for p in polls]
    assert all(status == 200 for status, _ in got)
    assert {body["jobs"][0]["id"] for _, body in got} == ids


def test_a_wake_up_nobody_waits_for_is_passed_on(api: Api, r, q: Queue) -> None:
    assert api.call("POST", f"/api/queues/{q.name}/claim", {"wait_ms": 100}).status == 204
    # The hub's thread is still in BLPOP (it ends within ~2 s): the enqueue's token reaches
    # it with no waiter left, and it must put the token back for an idle worker.
    q.enqueue({"n": 1})
    wait_until(lambda: r.llen(q.keys.wake) == 1, message="the token to be passed on")
    assert q.stats().ready == 1


def test_a_long_poll_whose_client_hung_up_stops_waiting_and_claims_nothing(
        api: Api, server, admin_key: str, q: Queue) -> None:
    wait_until(lambda: long_polls_open(api) == 0, message="earlier long polls to end")
    poll = LongPoll(server.url, admin_key, q.name, 30_000)
    wait_until(lambda: long_polls_open(api) == 1, message="the long poll to wait")
    poll.abort()
    wait_until(lambda: long_polls_open(api) == 0, message="the server to let it go")
    q.enqueue({"n": 1})
    assert q.stats().ready == 1


@pytest.mark.parametrize("workers", ["1", "2"])
def test_stopping_the_server_answers_waiting_long_polls_at_once(redis_url: str, queue_name: str,
                                                               workers: str) -> None:
    server = start_server(redis_url, "--auth", "off", "--workers", workers)
    api = Api(server.url, None, None)
    poll = LongPoll(server.url, "", queue_name, 30_000)
    # /healthz counts one worker's polls, and a connection may land on either worker, so with
    # two the wait is seen where it happens: a server connection blocked on a wake list (no
    # other test's poll waits now)
    redis = relayq.connect(redis_url)

    def waiting() -> bool:
        if workers == "1":
            return long_polls_open(api) == 1
        clients = redis.client_list()  # a cluster client answers per node
        if isinstance(clients, dict):
            clients = [c for node in clients.values() for c in node]
        return any(c.get("cmd") == "blpop" for c in clients)

    wait_until(waiting, message="the long poll to wait")
    redis.close()
    started = time.monotonic()
    server.stop()
    assert poll.result(timeout=10)[0] == 204
    assert time.monotonic() - started < 5


# -- a hundred idle long polls, on a server and Redis of their own -------------------------

@pytest.fixture(scope="module")
def quiet() -> Iterator[tuple[RedisProcess, ServerProcess, str]]:
    with RedisProcess() as redis_server:
        key = KeyStore(relayq.connect(redis_server.url)).create("bench", ["admin"])[1]
        server = start_server(redis_server.url, "--threads", "4", "--max-long-polls", "100")
        try:
            yield redis_server, server, key
        finally:
            server.stop()


def _enqueue_latencies(url: str, key: str, queue: str, n: int) -> list[float]:
    http_pool = urllib3.HTTPConnectionPool(urlsplit(url).hostname, urlsplit(url).port,
                                           maxsize=1)
    headers = {"Authorization": f"Bearer {key}"}
    latencies = []
    for i in range(n):
        started = time.perf_counter()
        response = http_pool.request("POST", f"/api/queues/{queue}/jobs", json={"payload": i},
                                     headers=headers)
        latencies.append(time.perf_counter() - started)
        assert response.status == 201
    http_pool.close()
    return latencies


def _commands(client: Any) -> dict[str, int]:
    stats = client.info("commandstats")
    return {name: stats.get(f"cmdstat_{name}", {}).get("calls", 0)
            for name in ("evalsha", "blpop", "eval")}


def _open_polls(api: Api, key: str, n: int) -> list[LongPoll]:
    polls = [LongPoll(api.url, key, "idle", 30_000) for _ in range(n)]
    wait_until(lambda: long_polls_open(api) == n, timeout=30, message=f"{n} long polls")
    return polls


def _release(polls: list[LongPoll], idle: Queue) -> None:
    """Enqueues one job per waiting poll: each must answer 200 with a job of its own."""
    ids = {res.id for res in idle.enqueue_many(list(range(len(polls))))}
    got = [p.result() for p in polls]
    assert [status for status, _ in got] == [200] * len(polls)
    assert {body["jobs"][0]["id"] for _, body in got} == ids


def test_idle_long_polls_neither_poll_redis_nor_slow_enqueues(quiet) -> None:
    redis_server, server, key = quiet
    r = relayq.connect(redis_server.url)
    api = Api(server.url, key, None)
    idle = Queue("idle", r)
    _enqueue_latencies(server.url, key, "busy", 20)  # warm up

    # The first 100 polls: while they wait, 200 enqueues go by. Not one claim runs for the
    # idle queue, and the hub's one thread for it blocks in BLPOP (a call per ~2 s).
    polls = _open_polls(api, key, 100)
    over_cap = api.call("POST", "/api/queues/idle/claim", {"wait_ms": 1000})
    assert (over_cap.status, over_cap.code) == (503, "server_busy")
    commands, started = _commands(r), time.monotonic()
    _enqueue_latencies(server.url, key, "busy", 200)
    elapsed, used = time.monotonic() - started, _commands(r)
    assert all(p.reply is None for p in polls)
    assert used["evalsha"] - commands["evalsha"] == 200
    assert used["blpop"] - commands["blpop"] <= elapsed / 2 + 2
    _release(polls, idle)

    # Latency: rounds without and with 100 idle polls alternate, so that the load of this
    # shared machine weighs on both sides alike; medians are compared with a tolerance.
    without: list[float] = []
    with_polls: list[float] = []
    for _ in range(3):
        without += _enqueue_latencies(server.url, key, "busy", 60)
        polls = _open_polls(api, key, 100)
        with_polls += _enqueue_latencies(server.url, key, "busy", 60)
        _release(polls, idle)
    p50 = statistics.median(without), statistics.median(with_polls)
    p99 = [sorted(x)[int(len(x) * 0.99)] for x in (without, with_polls)]
    print(f"enqueue latency p50 {p50[0] * 1000:.2f} -> {p50[1] * 1000:.2f} ms, "
          f"p99 {p99[0] * 1000:.2f} -> {p99[1] * 1000:.2f} ms with 100 idle long polls")
    assert p50[1] <= 2 * p50[0] + 0.001
    r.close()
