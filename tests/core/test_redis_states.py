"""Redis refusing commands for a state it is in (OOM under noeviction, READONLY, MASTERDOWN,
BUSY, LOADING) reaches callers as RedisBusy at the one boundary (relayq.connection.redis_errors):
the command did not run, nothing was written, and the state passes. Each test on redis-servers of
its own."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from redis.exceptions import BusyLoadingError

import relayq
from relayq import RedisBusy, RedisUnavailable, scripts
from relayq.connection import redis_errors
from relayq.scripts import ScriptCall
from relayq.tools.redis_process import RedisProcess
from tests.support.helpers import keyspace, wait_until

from .test_connection import SLOW_SCRIPT


def fill(r: Any) -> None:
    """Redis full: every command that may grow memory is refused (OOM) from now on."""
    r.config_set("maxmemory-policy", "noeviction")
    r.config_set("maxmemory", 1)


def test_a_full_redis_is_redis_busy_writes_nothing_and_recovers() -> None:
    with RedisProcess() as server:
        r = relayq.connect(server.url)
        q = relayq.Queue("full", r)
        q.enqueue({"n": 0})  # the queue is registered: the enqueue script meets the OOM below
        fill(r)
        before = keyspace(r, q.name)
        with pytest.raises(RedisBusy, match="OOM"):
            q.enqueue({"n": 1})  # one script call
        with pytest.raises(RedisBusy, match="OOM"):
            q.enqueue({"n": 1}, replicas=1, replica_timeout_ms=10)  # pipelined, with WAIT
        with pytest.raises(RedisBusy, match="OOM"):
            relayq.Queue("new", r).enqueue({})  # a plain command (registering the queue)
        assert keyspace(r, q.name) == before
        assert q.stats().ready == 1  # reads still answer
        r.config_set("maxmemory", 0)
        assert q.enqueue({"n": 2}).state == "ready"
        r.close()


def test_a_replica_refuses_writes_and_a_stale_one_everything_as_redis_busy() -> None:
    with RedisProcess() as primary, RedisProcess() as replica:
        r = relayq.connect(replica.url)
        r.execute_command("REPLICAOF", "127.0.0.1", primary.port)
        wait_until(lambda: r.info("replication")["master_link_status"] == "up",
                   message="the replica to sync")
        q = relayq.Queue("copy", r)
        with pytest.raises(RedisBusy, match="READONLY"):
            q.enqueue({})
        primary.stop()
        r.config_set("replica-serve-stale-data", "no")
        wait_until(lambda: r.info("replication")["master_link_status"] == "down",
                   message="the replica to lose its primary")
        with pytest.raises(RedisBusy, match="MASTERDOWN"):
            q.get(f"{q.name}.1")
        r.close()


def test_a_redis_busy_running_a_long_script_is_redis_busy() -> None:
    with RedisProcess(extra_args=["--busy-reply-threshold", "50"]) as server:
        slow, r = relayq.connect(server.url), relayq.connect(server.url)
        q = relayq.Queue("patient", r)
        q.stats()  # connected and scripts loaded before the slow one runs
        runner = threading.Thread(target=scripts.run, args=(
            slow, ScriptCall(SLOW_SCRIPT, ("relayq:{patient}:runs",), (1500,))))
        runner.start()

        def refused() -> bool:
            try:
                q.stats()
            except RedisBusy as e:
                assert "BUSY" in str(e)
                return True
            return False

        wait_until(refused, timeout=1.4, message="a BUSY refusal")
        runner.join()
        assert q.stats().ready == 0  # the state passed
        slow.close()
        r.close()


def test_loading_is_redis_busy_not_a_broken_connection() -> None:
    """redis-py makes LOADING a ConnectionError; it is a state that passes, not an outage."""
    with pytest.raises(RedisBusy, match="LOADING"), redis_errors():
        raise BusyLoadingError("Redis is loading the dataset in memory", status_code="LOADING")


def test_redis_busy_is_a_redis_unavailable() -> None:
    """Every loop that rides out Redis being away (the worker's, the server's) rides this out."""
    assert issubclass(RedisBusy, RedisUnavailable)
