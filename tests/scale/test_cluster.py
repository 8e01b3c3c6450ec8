"""Redis Cluster, for real: URL detection, scripts that never leave their queue's slot (and a
bad one that is caught), pipelines that follow MOVED, blocking wake-ups on every master, and
competing worker processes draining queues spread over three masters, each job run once.

Always part of the default run (a 3-master cluster and a 2-master one, ~2 s each to start).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from redis.cluster import RedisCluster
from redis.crc import key_slot

import relayq
import relayq.results
from relayq import InvalidArgument, JobOptions, NewJob, Queue, scripts
from relayq.job import RestoredJob
from relayq.queue import fire_schedules_many, stats_many
from relayq.scripts import Script, ScriptCall
from relayq.tools.redis_process import free_port
from tests.support.fairness import peak_running
from tests.support.helpers import wait_until
from tests.support.topologies import SLOTS, Cluster, admin
from tests.support.workers import WorkerProcesses

PROBE = "probe"  # the queue whose slot is alone on its node in the `isolated` cluster


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    c = Cluster(masters=3).start()
    yield c
    c.stop()


@pytest.fixture(scope="module")
def isolated() -> Iterator[Cluster]:
    """Two masters: the first owns only PROBE's slot, so Redis itself refuses any key of
    another slot in a script run for PROBE (Redis 7.0 checks keys a script did not declare
    only against the node, not the slot: on an ordinary layout a script could touch another
    slot of the same node unnoticed)."""
    slot = key_slot(f"{{{PROBE}}}".encode())
    c = Cluster(masters=2, slots=[[slot], [s for s in range(SLOTS) if s != slot]]).start()
    yield c
    c.stop()


def test_a_node_url_is_detected_as_a_cluster(cluster: Cluster) -> None:
    node = cluster.nodes[1]
    client = relayq.connect(f"redis://127.0.0.1:{node.port}/0")
    assert isinstance(client, RedisCluster)
    q = Queue(cluster.queue_names(0, 1, "detect")[0], client)  # a queue on another master
    jid = q.enqueue({"x": 1}).id
    assert [j.id for j in q.claim()] == [jid]
    with pytest.raises(InvalidArgument, match="only database 0"):
        relayq.connect(f"redis://127.0.0.1:{node.port}/1")
    unreachable = relayq.connect(f"redis://127.0.0.1:{free_port()}/0")
    assert type(unreachable) is redis.Redis
    client.close()


def exercise_every_script(q: Queue[Any]) -> None:
    """Runs each transition of `q` at least once, through the Queue API."""
    q.configure(max_attempts=3)
    q.set_rate_limit(1000, burst=1000)
    q.pause()
    q.resume()
    ids = [r.id for r in q.enqueue_many([{"n": i} for i in range(5)])]
    q.enqueue({"late": True}, delay_ms=1, idempotency_key="k")
    a, b, c = q.claim(3)
    q.ack(a.id, a.lease, {"ok": True})
    q.nack(b.id, b.lease, "bad", retry=False)
    q.heartbeat(c.id, c.lease)
    assert q.progress(c.id, c.lease, 0.5, {"step": 1}) is False  # no cancel requested
    assert q.release_many([(c.id, c.lease)]) == ["ok"]
    q.requeue_dead_job(b.id)
    assert q.get(b.id).state == "ready"
    q.cancel(ids[4])
    wait_until(lambda: q.promote()[0] or q.stats().scheduled == 0, timeout=5, message="promote")
    short = q.claim(1, visibility_ms=1)
    wait_until(lambda: q.reap()[0], timeout=5, message="reap of an expired lease")
    (job,) = q.claim(1)
    statuses, claimed = q.settle([relayq.results.Outcome(job.id, job.lease, "nack", error="x",
                                                       retry=False)], 1)
    assert statuses == ["ok"] and claimed is not None
    q.purge_dead_job(job.id)
    assert job.id not in {j.id for j in q.dead()[0]}
    assert short and q.stats().queue == q.name
    q.schedule("tick", {}, every_ms=100)  # schedule, due_schedules, fire_schedule
    wait_until(lambda: q.fire_schedules().fired, timeout=5, message="a tick fired")
    q.trigger_schedule("tick")
    q.pause_schedule("tick")
    q.unschedule("tick")
    q.clear_rate_limit()
    # fair queues (lua/lib/groups.lua builds its keys from the prefix: they must stay in slot)
    q.configure(max_running=10, group_max_running=1, group_rate=100, group_burst=10)
    q.set_group_limits("tenant-a", max_running=2)
    q.enqueue_many([NewJob(i, JobOptions(group=g)) for g in ("tenant-a", "tenant-b")
                    for i in range(3)])
    grouped = q.claim(10)
    assert sorted(j.group for j in grouped if j.group) == ["tenant-a", "tenant-a", "tenant-b"]
    for job in grouped:
        q.ack(job.id, job.lease)
    assert q.groups().total == 2
    q.clear_group_limits("tenant-a")
    now_ms = int(time.time() * 1000)
    assert q.restore([RestoredJob(f"{now_ms}000001", "ready", 0, '{"back": 1}', None, 0, 3,
                                  now_ms)]) == ["ok"]
    # workflows: a child in another queue (another slot) and one in this queue
    q.resume()
    other = Queue(q.name + "-wf", q.redis)
    parent = q.enqueue({"p": 1}).id
    child = other.enqueue({"c": 1}, depends_on=[parent]).id  # enqueue_deps there, link here
    assert q.enqueue({"s": 1}, depends_on=[parent]).state == "waiting"  # enqueue_deps here
    (p,) = [j for j in q.claim(100) if j.id == parent]
    q.ack(p.id, p.lease, "done")  # the fact for `child` goes to this queue's outbox
    q.move_workflow_facts()  # deps_apply there, outbox_done here
    assert other.get(child).state == "ready"


def test_every_script_stays_in_its_queue_slot(isolated: Cluster,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    ran: set[str] = set()
    run, run_pipelined = scripts.run, scripts.run_pipelined

    def recording_run(client: Any, call: ScriptCall) -> Any:
        ran.add(call.script.name)
        return run(client, call)

    def recording_pipelined(client: Any, calls: Any, wait: Any = None) -> Any:
        calls = list(calls)
        ran.update(c.script.name for c in calls)
        return run_pipelined(client, calls, wait)

    monkeypatch.setattr(scripts, "run", recording_run)
    monkeypatch.setattr(scripts, "run_pipelined", recording_pipelined)
    client = relayq.connect(isolated.url)
    try:
        exercise_every_script(Queue(PROBE, client))
    except redis.ResponseError as e:  # "non local key": a script left PROBE's slot
        pytest.fail(f"a script touched a key outside its queue's slot: {e}")
    finally:
        client.close()
    assert ran == set(scripts.SCRIPTS), f"scripts never exercised: {set(scripts.SCRIPTS) - ran}"


def _script(name: str, source: str) -> Script:
    return Script(name, source, hashlib.sha1(source.encode()).hexdigest())


def test_a_script_that_leaves_its_slot_is_caught(isolated: Cluster) -> None:
    """The check above is real: the same layout refuses a script that touches another queue."""
    q = Queue(PROBE, relayq.connect(isolated.url))
    own = _script("own", "redis.call('SET', ARGV[1] .. 'own', 1) return 1")
    bad = _script("bad", "redis.call('SET', ARGV[1] .. 'own', 1) "
                         "redis.call('SET', 'relayq:{other}:x', 1) return 1")
    assert scripts.run(q.redis, ScriptCall(own, (q.keys.meta,), (q.keys.prefix,))) == 1
    for run in (scripts.run, lambda c, call: scripts.run_pipelined(c, [call])):
        with pytest.raises(redis.ResponseError, match="non local key"):
            run(q.redis, ScriptCall(bad, (q.keys.meta,), (q.keys.prefix,)))
    q.redis.close()


def test_pipelines_follow_moved_after_a_stale_slot_map(cluster: Cluster) -> None:
    client = relayq.connect(cluster.url)
    q = Queue(cluster.queue_names(0, 1, "moved")[0], client)
    q.enqueue({})
    slot = key_slot(f"{{{q.name}}}".encode())
    right = client.nodes_manager.slots_cache[slot]
    wrong = next(n for n in client.get_primaries() if n.name != right[0].name)
    client.nodes_manager.slots_cache[slot] = [wrong]  # as if the slot had moved away
    results = q.enqueue_many([{"n": i} for i in range(3)])  # answered MOVED, then repeated
    assert len({r.id for r in results}) == 3 and q.stats().ready == 4
    assert client.nodes_manager.slots_cache[slot][0].name == right[0].name
    client.close()


def test_idle_workers_block_on_every_master_and_wake_at_once(cluster: Cluster) -> None:
    names = [cluster.queue_names(m, 1, "wake")[0] for m in range(3)]
    started: dict[str, float] = {}
    app = relayq.App()

    @app.task(default=True)
    def note(payload: Any) -> None:
        started[payload["q"]] = time.monotonic()

    worker = relayq.Worker(names, app, cluster.url, concurrency=2)
    worker.start()
    try:
        masters = cluster.nodes[:3]
        wait_until(lambda: all(admin(n).info("clients")["blocked_clients"] >= 1 for n in masters),
                   timeout=10, message="a blocked waker on every master")
        producer = relayq.connect(cluster.url)
        for name in names:
            sent = time.monotonic()
            Queue(name, producer).enqueue({"q": name})
            wait_until(lambda n=name: n in started, timeout=4, message=f"job of {name} to run")
            assert started[name] - sent < 1.0  # a wake-up, not the 5 s idle timeout
        producer.close()
    finally:
        worker.stop(grace_s=2)


def test_stats_of_queues_on_every_master_in_one_call(cluster: Cluster) -> None:
    names = [cluster.queue_names(m, 1, "stats")[0] for m in range(3)]
    client = relayq.connect(cluster.url)
    try:
        assert stats_many(client, []) == []
        for depth, name in enumerate(names, start=1):
            Queue(name, client).enqueue_many([{"n": i} for i in range(depth)])
        stats = stats_many(client, names)  # one round trip per master, replies in order
        assert [(s.queue, s.ready) for s in stats] == [(n, d) for d, n in enumerate(names, 1)]
    finally:
        client.close()


def test_schedules_of_queues_on_every_master_fire_from_one_call(cluster: Cluster) -> None:
    """relayq-server's round: what is due in every queue is read in one round trip per master,
    then the due ones fire, each in its own slot."""
    names = [cluster.queue_names(m, 1, "ticks")[0] for m in range(3)]
    client = relayq.connect(cluster.url)
    try:
        for name in names:
            Queue(name, client).schedule("tick", {}, every_ms=100)
        fired: dict[str, int] = {}

        def all_fired() -> bool:
            for name, report in fire_schedules_many(client, names).items():
                fired[name] = fired.get(name, 0) + report.fired
            return set(fired) == set(names) and all(fired.values())

        wait_until(all_fired, timeout=5, message="every queue's schedule fired")
    finally:
        client.close()


def test_competing_worker_processes_run_each_job_once(cluster: Cluster, tmp_path: Any) -> None:
    names = [n for m in range(3) for n in cluster.queue_names(m, 3, "cc")]
    client = relayq.connect(cluster.url)
    ids = {r.id for name in names
           for r in Queue(name, client).enqueue_many([{"n": i} for i in range(400)])}
    assert len(ids) == 3600
    workers = WorkerProcesses(3, cluster.url, names, tmp_path, concurrency=4)
    try:
        # Drained means acked: a handler's run is recorded before its (batched) ack lands.
        queues = [Queue(name, client) for name in names]
        wait_until(lambda: all(q.stats().succeeded == 400 for q in queues)
                   or not workers.alive(), timeout=180, interval=0.2,
                   message="the queues to drain")
        assert workers.alive(), workers.logs()
        runs = workers.executions()
        assert set(runs) == ids and set(runs.values()) == {1}, "a job ran twice, or never"
        assert len(list(tmp_path.glob("worker-*.ran"))) == 3  # all three took part
        for q in queues:
            stats = q.stats()
            assert (stats.succeeded, stats.totals["claimed"]) == (400, 400)
            assert stats.ready == stats.running == 0
    finally:
        workers.stop()
        client.close()


def test_group_limits_hold_with_competing_workers_on_every_master(cluster: Cluster,
                                                                  tmp_path: Any) -> None:
    """Fair queues on a cluster: a grouped queue on each master, drained by competing worker
    processes; no group ever ran more jobs at once than its limit (the event log replayed)."""
    names = [n for m in range(3) for n in cluster.queue_names(m, 1, "fair")]
    client = relayq.connect(cluster.url)
    queues = [Queue(name, client) for name in names]
    group_of: dict[str, str | None] = {}
    for q in queues:
        q.configure(group_max_running=2)
        q.set_group_limits("big", max_running=3)
        jobs = [NewJob({"n": i}, JobOptions(group=g)) for g in ("big", "a", "b")
                for i in range(60)]
        for res, job in zip(q.enqueue_many(jobs), jobs, strict=True):
            group_of[res.id] = job.options.group
    workers = WorkerProcesses(3, cluster.url, names, tmp_path, concurrency=4)
    try:
        wait_until(lambda: all(q.stats().succeeded == 180 for q in queues)
                   or not workers.alive(), timeout=120, interval=0.2,
                   message="the grouped queues to drain")
        assert workers.alive(), workers.logs()
        for q in queues:
            peak, _ = peak_running(q, group_of)
            assert peak["big"] <= 3 and peak["a"] <= 2 and peak["b"] <= 2, (q.name, peak)
            assert all(g.running == 0 for g in q.groups().groups)
    finally:
        workers.stop()
        client.close()
