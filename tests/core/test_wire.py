"""relayq/wire.py on a real server: each thread keeps one connection for its script calls, a
forked child never talks on its parent's socket, and a connection the server closed is replaced
before anything is sent on it. (Restarts, timeouts that must not resend, Sentinel failovers and
Cluster nodes are covered where those are tested: test_scripts, test_connection, test_sentinel,
test_cluster_failover.)"""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Iterator

import pytest
import redis

import relayq
from relayq.tools.redis_process import RedisProcess
from tests.support.helpers import wait_until


@pytest.fixture
def server() -> Iterator[RedisProcess]:
    with RedisProcess() as process:
        yield process


def test_each_thread_keeps_one_connection(server: RedisProcess) -> None:
    admin = relayq.connect(server.url)
    # Named, so that only this client's connections are counted (a free port may be reused,
    # and something of an earlier test may still knock at it).
    client = redis.Redis(port=server.port, client_name="wire-test", decode_responses=True)
    queue = relayq.Queue("wire", client)
    queue.enqueue({"n": 0})  # registers the queue (one pooled connection) and keeps one

    def connected_clients() -> int:
        return sum(c["name"] == "wire-test" for c in admin.client_list())

    before = connected_clients()
    errors: list[BaseException] = []
    enqueued = threading.Barrier(5)
    counted = threading.Event()

    def produce() -> None:
        try:
            for n in range(200):
                queue.enqueue({"n": n})
        except BaseException as e:  # noqa: BLE001 - reported by the assertion below
            errors.append(e)
        enqueued.wait(30)
        counted.wait(30)  # alive until counted: a thread's connection closes when it ends

    threads = [threading.Thread(target=produce) for _ in range(4)]
    for t in threads:
        t.start()
    enqueued.wait(30)
    try:
        assert not errors
        assert queue.stats().ready == 801
        # one more connection per thread, however many calls each made
        assert connected_clients() == before + 4
    finally:
        counted.set()
        for t in threads:
            t.join(30)
    wait_until(lambda: connected_clients() == before, timeout=10,
               message="the ended threads' connections to close")
    admin.close()


def _enqueue_in_child(queue: relayq.Queue, count: int, done: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    done.put([queue.enqueue({"child": n}).id for n in range(count)])


def test_a_forked_child_takes_its_own_connection(server: RedisProcess) -> None:
    """The child inherits the parent's Queue, client and kept connection. Had it written on the
    parent's socket, the two would read each other's replies: ids answered to the wrong
    process, or unreadable replies."""
    queue = relayq.Queue("wire", relayq.connect(server.url))
    queue.enqueue({"parent": -1})  # the parent now keeps a connection
    context = multiprocessing.get_context("fork")
    done = context.Queue()
    child = context.Process(target=_enqueue_in_child, args=(queue, 300, done))
    child.start()
    parent_ids = [queue.enqueue({"parent": n}).id for n in range(300)]
    child_ids = done.get(timeout=30)
    child.join(30)
    assert child.exitcode == 0
    assert len(set(parent_ids) | set(child_ids)) == 600
    assert {queue.get(i).payload["parent"] for i in parent_ids} == set(range(300))
    assert {queue.get(i).payload["child"] for i in child_ids} == set(range(300))


def test_a_connection_the_server_closed_is_replaced_before_use(server: RedisProcess) -> None:
    queue = relayq.Queue("wire", relayq.connect(server.url))
    queue.enqueue({"n": 1})
    with relayq.connect(server.url) as admin:
        killed = admin.client_kill_filter(_type="normal", skipme=True)
    assert killed >= 1  # the kept connection, closed by the server
    # found closed before the command is sent, so the call goes through
    assert queue.enqueue({"n": 2}).state == "ready"
    assert queue.stats().ready == 2
