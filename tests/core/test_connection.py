"""relayq/connection.py and relayq/eviction.py on real servers: every URL form, no automatic
resend on any client kind (single, cluster, Sentinel), and the maxmemory-policy startup check
(with CONFIG disabled too), including relayq-worker refusing to start."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

import relayq
from relayq import InvalidArgument, RedisBusy, RedisUnavailable, scripts
from relayq.eviction import check_eviction
from relayq.scripts import Script, ScriptCall
from relayq.tools.redis_process import RedisProcess, free_port
from tests.support.helpers import wait_until
from tests.support.topologies import Cluster, SentinelSetup, Single, admin, start_topology
from tests.support.workers import REPO

# Busy for ARGV[1] ms, then counts one run: a client that gives up before it ends and then
# resent the call would make the count 2.
SLOW = """local t0 = redis.call('TIME')
local start = t0[1] * 1000000 + t0[2]
repeat local t = redis.call('TIME') until (t[1] * 1000000 + t[2]) - start > ARGV[1] * 1000
return redis.call('INCR', KEYS[1])"""


def _script(name: str, source: str) -> Script:
    return Script(name, source, hashlib.sha1(source.encode()).hexdigest())


SLOW_SCRIPT = _script("slow", SLOW)


@pytest.fixture(scope="module", params=["single", "cluster", "sentinel"])
def topology(request: pytest.FixtureRequest) -> Iterator[Single | Cluster | SentinelSetup]:
    t = start_topology(request.param)
    yield t
    t.stop()


def primaries(t: Single | Cluster | SentinelSetup) -> list[RedisProcess]:
    if isinstance(t, Single):
        return [t.server]
    if isinstance(t, Cluster):
        return t.nodes[:t.masters]
    return [t.primary()]


def stays(predicate: Any, seconds: float) -> bool:
    """True when `predicate()` holds throughout `seconds` (for what must not happen)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not predicate():
            return False
        time.sleep(0.05)
    return True


def test_a_timed_out_call_is_never_resent(topology: Any) -> None:
    fast = relayq.connect(topology.url)
    impatient = relayq.connect(topology.url, socket_timeout=0.3)
    for i, run in enumerate((scripts.run, lambda c, call: scripts.run_pipelined(c, [call]))):
        counter = f"relayq:{{resend}}:runs{i}"
        with pytest.raises(RedisUnavailable):
            run(impatient, ScriptCall(SLOW_SCRIPT, (counter,), (600,)))
        wait_until(lambda c=counter: fast.get(c) == "1", timeout=10, message="the slow run")
        assert stays(lambda c=counter: fast.get(c) == "1", 1.0), "the call was sent again"
    fast.close()
    impatient.close()


def test_eviction_check_reads_every_primary(topology: Any) -> None:
    client = relayq.connect(topology.url)
    assert check_eviction(client).ok
    nodes = primaries(topology)
    admin(nodes[-1]).config_set("maxmemory-policy", "allkeys-lru")
    try:
        check = check_eviction(client)
        assert not check.ok and list(check.risky.values()) == ["allkeys-lru"]
        assert "allkeys-lru" in check.message() and "--allow-eviction" in check.message()
    finally:
        admin(nodes[-1]).config_set("maxmemory-policy", "noeviction")
    client.close()


def test_url_forms(tmp_path: Path) -> None:
    sock = tmp_path / "redis.sock"
    with RedisProcess(extra_args=["--unixsocket", str(sock)]) as server:
        client = relayq.connect(f"unix://{sock}?db=2")
        assert client.ping() and client.connection_pool.connection_kwargs["db"] == 2
        assert type(relayq.connect(server.url)) is redis.Redis
    tls = relayq.connect(f"rediss://127.0.0.1:{free_port()}/0")  # nobody there: no probe answer
    assert tls.connection_pool.connection_class is redis.SSLConnection
    for bad, message in [("http://x:1", "unsupported Redis URL scheme"),
                         ("redis+sentinel://127.0.0.1:1", "needs a service name"),
                         ("redis+cluster://127.0.0.1", "expected host:port"),
                         ("redis+cluster://127.0.0.1:\u00b2", "expected host:port")]:
        with pytest.raises(InvalidArgument, match=message):
            relayq.connect(bad)


def test_eviction_policy_is_read_through_info_when_config_is_disabled() -> None:
    with RedisProcess(extra_args=["--maxmemory-policy", "volatile-lru",
                                  "--rename-command", "CONFIG", ""]) as server:
        check = check_eviction(relayq.connect(server.url))
        assert check.risky == {f"127.0.0.1:{server.port}": "volatile-lru"}
    with RedisProcess(extra_args=["--rename-command", "CONFIG", "",
                                  "--rename-command", "INFO", ""]) as server:
        check = check_eviction(relayq.connect(server.url))
        assert check.ok and list(check.unknown) == [f"127.0.0.1:{server.port}"]
        assert "could not read maxmemory-policy" in check.message()


def _worker(url: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "relayq.worker.cli", "--redis", url,
                             "--queue", "evict", *extra], cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def test_worker_refuses_an_evicting_redis_unless_allowed() -> None:
    with RedisProcess(extra_args=["--maxmemory-policy", "allkeys-lru"]) as server:
        refused = _worker(server.url)
        out, _ = refused.communicate(timeout=30)
        assert refused.returncode == 2 and "refusing to start" in out and "allkeys-lru" in out
        allowed = _worker(server.url, "--allow-eviction")
        try:
            assert allowed.stdout is not None
            lines = []
            for line in allowed.stdout:  # ends when the worker has started or died
                lines.append(line)
                if "worker.started" in line:
                    break
            assert any("redis.eviction_risk" in line for line in lines), lines
            assert allowed.poll() is None
        finally:
            allowed.terminate()
            allowed.wait(15)


def test_a_worker_started_before_its_cluster_waits_for_it(tmp_path: Path) -> None:
    """A cluster client must reach a node to be made: a worker started while no node answers
    (a cluster being brought up, or its primary just killed) waits with backoff, saying so,
    instead of dying; once the cluster is up it serves its queue."""
    cluster = Cluster(masters=1)  # ports chosen, nothing listening yet
    log = tmp_path / "worker.log"
    with log.open("w") as out:
        worker = subprocess.Popen([sys.executable, "-m", "relayq.worker.cli", "--redis",
                                   cluster.url, "--queue", "late"], cwd=REPO, text=True,
                                  stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: "redis.unreachable" in log.read_text(), timeout=30,
                   message="the worker to report that no node answers")
        assert worker.poll() is None, log.read_text()
        cluster.start()
        wait_until(lambda: "worker.started" in log.read_text(), timeout=30,
                   message="the worker to start once the cluster is up")
        queue = relayq.Queue("late", relayq.connect(cluster.url))
        job_id = queue.enqueue({"sleep_ms": 1}).id
        wait_until(lambda: queue.get(job_id).state == "succeeded", timeout=30,
                   message="the job to run")
    finally:
        worker.terminate()
        worker.wait(15)
        cluster.stop()


def test_a_server_that_stopped_serving_writes_is_unavailable_not_a_crash() -> None:
    """A plain URL pointing at a primary that became a replica: pipelined and single script
    writes answer READONLY, which must reach callers as RedisUnavailable (the worker's loops
    ride that out; a raw redis error would end them)."""
    write = _script("write", "return redis.call('INCR', KEYS[1])")
    with RedisProcess() as primary, RedisProcess() as demoted:
        client = relayq.connect(demoted.url)
        client.execute_command("REPLICAOF", "127.0.0.1", primary.port)
        call = ScriptCall(write, ("relayq:{demoted}:n",), ())
        with pytest.raises(RedisBusy, match="READONLY"):
            scripts.run_pipelined(client, [call])
        with pytest.raises(RedisBusy, match="READONLY"):
            scripts.run(client, call)
        client.close()


def test_a_primary_short_of_replicas_is_unavailable() -> None:
    """min-replicas-to-write (recommended in docs/scaling.md) refuses writes with NOREPLICAS."""
    with RedisProcess(extra_args=["--min-replicas-to-write", "1"]) as server:
        q = relayq.Queue("short", relayq.connect(server.url))
        with pytest.raises(RedisBusy, match="NOREPLICAS"):
            q.enqueue({})
        q.redis.close()
