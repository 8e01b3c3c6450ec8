"""Redis Sentinel, for real (a primary, a replica, one sentinel): worker processes and a producer
ride out a forced failover and a kill -9 of the primary, reconnect to the new primary on their
own, and the queues drain. The replicated-write mode is proved against a lagging replica: the
default mode loses writes it confirmed, the replicated mode confirms none it could lose.
~45 s in all."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import relayq
from relayq import JobNotFound, NotReplicated, Queue
from relayq.api.wake_hub import WakeHub
from relayq.results import ClaimResult
from relayq.worker import waker
from tests.support.failover import crash_scenario, record
from tests.support.helpers import wait_until
from tests.support.topologies import SentinelSetup, admin, pause, resume

QUEUES = ["orders", "emails"]


@pytest.fixture
def sentinel() -> Iterator[SentinelSetup]:
    s = SentinelSetup().start()
    yield s
    s.stop()


def kill_primary(setup: SentinelSetup) -> Callable[[], dict[str, float]]:
    def crash() -> dict[str, float]:
        old, new = setup.primary(), setup.replica()
        start = time.monotonic()
        old.kill()
        setup.wait_primary_is(new)
        failover_s = time.monotonic() - start
        setup.rejoin(old)
        return {"failover_s": round(failover_s, 2)}
    return crash


def force_failover(setup: SentinelSetup) -> Callable[[], dict[str, float]]:
    def crash() -> dict[str, float]:
        new = setup.replica()
        start = time.monotonic()
        setup.failover()
        setup.wait_primary_is(new)
        failover_s = time.monotonic() - start
        setup.wait_replicated()  # the old primary follows the new one
        return {"failover_s": round(failover_s, 2)}
    return crash


@pytest.mark.parametrize("replicas", [0, 1], ids=["default", "replicated"])
def test_workers_follow_a_forced_failover(sentinel: SentinelSetup, tmp_path: Path,
                                          replicas: int) -> None:
    """Replicated mode refuses writes (NotReplicated) until Sentinel demotes the old primary
    (~8-10 s) and it follows the new one: with one replica, the new primary has none before."""
    old = sentinel.primary()
    result = crash_scenario(sentinel.url, QUEUES, tmp_path, crash=force_failover(sentinel),
                            replicas=replicas,
                            label=f"sentinel SENTINEL FAILOVER, replicas={replicas}")
    assert sentinel.primary() is not old
    assert result["upfront_lost"] == 0 and result["confirmed"] > 200, result
    if replicas:
        assert result["lost"] == 0, result


def test_clients_leave_a_demoted_primary_within_a_second(sentinel: SentinelSetup) -> None:
    """After SENTINEL FAILOVER the old primary stays up and accepts writes until Sentinel
    demotes it (~8 s), then throws them away. A client whose pooled connection still points
    there must move to the new primary on its own (connection.follow_primary)."""
    client = relayq.connect(sentinel.url)
    q: Queue[Any] = Queue("moving", client)
    q.enqueue({})  # a pooled connection to the old primary
    old, new = sentinel.primary(), sentinel.replica()
    sentinel.failover()
    sentinel.wait_primary_is(new)
    failed_over = time.monotonic()

    def lands_on_new() -> bool:
        local = q.enqueue({}).id.split(".")[1]
        return bool(admin(new).exists(q.keys.job(local)))
    wait_until(lands_on_new, timeout=2, interval=0.1, message="writes to reach the new primary")
    assert time.monotonic() - failed_over < 2
    assert admin(old).info("replication")["role"] == "master"  # not demoted yet: it mattered
    client.close()


@pytest.mark.parametrize("replicas", [0, 1], ids=["default", "replicated"])
def test_kill_9_of_the_primary_while_workers_run(sentinel: SentinelSetup, tmp_path: Path,
                                                 replicas: int) -> None:
    result = crash_scenario(sentinel.url, QUEUES, tmp_path, crash=kill_primary(sentinel),
                            replicas=replicas, label=f"sentinel kill -9, replicas={replicas}")
    assert result["upfront_lost"] == 0 and result["confirmed"] > 200, result
    if replicas:
        assert result["lost"] == 0, result


def _lost_in_a_crash(setup: SentinelSetup, replicas: int) -> dict[str, Any]:
    """Enqueues 20 jobs, then cuts the replica off: SIGSTOP, and the primary drops its
    replication link (SIGSTOP alone is not enough: the stream would wait in the stopped
    replica's socket buffer). Enqueues more, kills the primary, lets the replica take over.
    Counts what was confirmed and what the new primary no longer has."""
    client = relayq.connect(setup.url, socket_timeout=5)
    q: Queue[Any] = Queue(f"lag-{replicas}", client, replicas=replicas, replica_timeout_ms=200)
    before = [q.enqueue({"n": i}, replicas=1, replica_timeout_ms=10_000).id for i in range(20)]
    primary, replica = setup.primary(), setup.replica()
    confirmed, refused = [], 0
    pause(replica)
    admin(primary).client_kill_filter(_type="replica")
    try:
        for i in range(20, 20 + (3 if replicas else 50)):  # under the 1 s down-after
            try:
                confirmed.append(q.enqueue({"n": i}).id)
            except NotReplicated:
                refused += 1
    finally:
        primary.kill()
        resume(replica)
    setup.wait_primary_is(replica)

    def missing(job_id: str) -> bool:
        try:
            q.get(job_id)
        except JobNotFound:
            return True
        return False

    result = {"scenario": "sentinel lagging replica + kill -9", "replicas": replicas,
              "before_lost": sum(map(missing, before)), "confirmed_during_lag": len(confirmed),
              "lost": sum(map(missing, confirmed)), "not_replicated": refused}
    client.close()
    setup.rejoin(primary)
    record(result)
    return result


def test_replicated_writes_survive_a_crash_that_loses_default_writes(
        sentinel: SentinelSetup) -> None:
    default = _lost_in_a_crash(sentinel, replicas=0)
    assert default["before_lost"] == 0
    assert default["lost"] == default["confirmed_during_lag"] == 50  # confirmed, then gone
    replicated = _lost_in_a_crash(sentinel, replicas=1)
    assert replicated["before_lost"] == 0
    assert replicated["confirmed_during_lag"] == replicated["lost"] == 0
    assert replicated["not_replicated"] == 3  # the caller was told each time


def test_idle_wakers_move_to_the_new_primary(sentinel: SentinelSetup,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """An idle worker's blocking wait must follow a forced failover before Sentinel demotes the
    old primary (which would then drop its clients): the old one gets no more wake tokens."""
    monkeypatch.setattr(waker, "MAX_BLOCK_S", 1.0)
    ran: list[float] = []
    app = relayq.App()
    app.task(lambda payload: ran.append(time.monotonic()), name="note", default=True)
    worker = relayq.Worker(["idle"], app, sentinel.url, concurrency=1)
    old, new = sentinel.primary(), sentinel.replica()
    worker.start()
    try:
        wait_until(lambda: admin(old).info("clients")["blocked_clients"] >= 1, timeout=10,
                   message="the waker to block on the primary")
        sentinel.failover()
        sentinel.wait_primary_is(new)
        wait_until(lambda: admin(new).info("clients")["blocked_clients"] >= 1, timeout=4,
                   message="the waker to block on the new primary")
        assert admin(old).info("replication")["role"] == "master"  # not demoted yet
        sent = time.monotonic()
        Queue("idle", relayq.connect(sentinel.url)).enqueue({})
        wait_until(lambda: ran, timeout=5, message="the job to run")
        assert ran[0] - sent < 0.5  # woken by the token, not by a timeout
    finally:
        worker.stop(grace_s=2)


def test_idle_long_polls_move_to_the_new_primary(sentinel: SentinelSetup) -> None:
    """The server's wake hub waits for tokens the same way as a worker's waker: a waiting long
    poll must follow a forced failover before Sentinel demotes the old primary too."""
    client = relayq.connect(sentinel.url)
    queue: Queue[Any] = Queue("polled", client)
    hub = WakeHub(max_waiters=4, block_s=1.0)
    old, new = sentinel.primary(), sentinel.replica()
    got: list[tuple[float, ClaimResult]] = []
    poll = threading.Thread(target=lambda: got.append(
        (time.monotonic(), hub.claim(queue, 30_000, lambda: queue.claim(1)))))
    poll.start()
    try:
        wait_until(lambda: admin(old).info("clients")["blocked_clients"] >= 1, timeout=10,
                   message="the hub to block on the primary")
        sentinel.failover()
        sentinel.wait_primary_is(new)
        wait_until(lambda: admin(new).info("clients")["blocked_clients"] >= 1, timeout=4,
                   message="the hub to block on the new primary")
        assert admin(old).info("replication")["role"] == "master"  # not demoted yet
        sent = time.monotonic()
        job_id = queue.enqueue({}).id
        poll.join(5)
        assert got and [job.id for job in got[0][1]] == [job_id]
        assert got[0][0] - sent < 0.5  # woken by the token, not by a timeout
    finally:
        hub.close()
        poll.join(5)
        client.close()
