"""The gateway through redis-py, as its users use it: a password, pipelines, blocking pops woken
by another client's push, a stream consumed with a group and acked, RESP3; and every refusal
(wrong key, missing scope, wrong arity, bad queue name, payload over the limit) as a Redis
error that writes nothing and keeps the connection."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import redis

import relayq
from tests.gateway.conftest import Gateway


def test_push_pipeline_and_pop(rc: redis.Redis, queue_name: str, q: relayq.Queue[Any]) -> None:
    pipe = rc.pipeline(transaction=False)
    for i in range(50):
        pipe.lpush(queue_name, f'{{"n": {i}}}')
    pipe.rpush(queue_name, "plain text", "42")
    replies = pipe.execute()
    assert replies[:3] == [1, 2, 3] and replies[-1] == 52
    assert rc.llen(queue_name) == 52
    job = q.jobs("ready", 1)[0][0]
    assert job.payload == {"n": 0}  # JSON text became the payload: an ordinary job
    assert rc.rpop(queue_name) == '{"n":0}'  # the oldest first, as LPUSH + RPOP
    assert rc.lpop(queue_name, 2) == ['{"n":1}', '{"n":2}']
    assert len(rc.rpop(queue_name, 1000)) == 49
    assert rc.rpop(queue_name) is None and rc.rpop(queue_name, 3) is None
    stats = q.stats()
    assert (stats.ready, stats.running, stats.succeeded) == (0, 0, 52)  # at most once: acked


def test_brpop_is_woken_by_a_push_from_another_client(
        gateway: Gateway, admin_key: str, queue_name: str) -> None:
    other = f"{queue_name}-other"
    waiter, pusher = gateway.client(admin_key), gateway.client(admin_key)
    got: list[Any] = []
    started = threading.Event()

    def wait() -> None:
        started.set()
        got.append(waiter.brpop([other, queue_name], timeout=20))

    thread = threading.Thread(target=wait)
    thread.start()
    started.wait()
    time.sleep(0.3)  # let it block: a pop before the push would prove nothing
    pushed_at = time.monotonic()
    pusher.lpush(queue_name, "wake up")
    thread.join(10)
    assert got == [(queue_name, "wake up")]
    assert time.monotonic() - pushed_at < 2  # woken by the push, not by a poll or the timeout
    assert waiter.blpop([queue_name], timeout=0.2) is None  # the timeout answers nil
    waiter.close()
    pusher.close()


def test_many_blocked_pops_each_get_one_job(gateway: Gateway, admin_key: str,
                                            queue_name: str, q: relayq.Queue[Any]) -> None:
    """Twenty connections blocked on one queue, twenty pushes in one pipeline: every job goes
    to exactly one of them (the wake-up tokens cascade from waiter to waiter), none is lost."""
    clients = [gateway.client(admin_key) for _ in range(20)]
    got: list[Any] = []
    threads = [threading.Thread(target=lambda c=c: got.append(c.brpop([queue_name], 15)))
               for c in clients]
    for thread in threads:
        thread.start()
    time.sleep(0.5)  # let them all block
    pusher = gateway.client(admin_key)
    pipe = pusher.pipeline(transaction=False)
    for n in range(20):
        pipe.lpush(queue_name, f"job-{n}")
    pipe.execute()
    for thread in threads:
        thread.join(15)
    assert sorted(value for _, value in got) == sorted(f"job-{n}" for n in range(20))
    assert q.stats().ready == 0 and q.stats().succeeded == 20
    for client in [*clients, pusher]:
        client.close()


def test_brpop_takes_a_delayed_job_when_it_is_due(rc: redis.Redis, queue_name: str,
                                                  q: relayq.Queue[Any]) -> None:
    """No worker runs to promote it and no enqueue wakes anyone: the claim's hint (when the
    next scheduled job is due) does."""
    q.enqueue("later", delay_ms=600)
    started = time.monotonic()
    assert rc.brpop([queue_name], timeout=10) == (queue_name, "later")
    assert 0.5 < time.monotonic() - started < 3


def test_stream_consumed_with_a_group_and_acked(rc: redis.Redis, queue_name: str,
                                                q: relayq.Queue[Any]) -> None:
    assert rc.xgroup_create(queue_name, "workers", id="0", mkstream=True)
    ids = [rc.xadd(queue_name, {"item": f"book-{i}", "n": str(i)}) for i in range(3)]
    assert rc.xlen(queue_name) == 3
    info = rc.xinfo_stream(queue_name)
    assert (info["length"], info["ready"], info["running"]) == (3, 3, 0)
    entries = rc.xreadgroup("workers", "alice", {queue_name: ">"}, count=2)
    assert entries == [[queue_name, [(ids[0], {"item": "book-0", "n": "0"}),
                                     (ids[1], {"item": "book-1", "n": "1"})]]]
    pending = rc.xpending(queue_name, "workers")
    assert pending["pending"] == 2 and pending["consumers"] == [{"name": "alice", "pending": 2}]
    detail = rc.xpending_range(queue_name, "workers", "-", "+", 10)
    assert [d["message_id"] for d in detail] == ids[:2]
    assert detail[0]["consumer"] == "alice" and detail[0]["times_delivered"] == 1
    # the consumer's own pending entries again (after a restart), by id 0
    again = rc.xreadgroup("workers", "alice", {queue_name: "0"})
    assert [e[0] for e in again[0][1]] == ids[:2]
    assert rc.xack(queue_name, "workers", *ids[:2]) == 2
    assert rc.xack(queue_name, "workers", ids[0]) == 0  # acked already
    assert q.stats().succeeded == 2
    rest = rc.xreadgroup("workers", "bob", {queue_name: ">"}, count=10, block=100)
    assert rest[0][1][0][0] == ids[2]
    assert not rc.xreadgroup("workers", "bob", {queue_name: ">"}, count=10, block=100)


def test_xreadgroup_block_is_woken_by_an_xadd(gateway: Gateway, admin_key: str,
                                              queue_name: str) -> None:
    reader, writer = gateway.client(admin_key), gateway.client(admin_key)
    got: list[Any] = []
    thread = threading.Thread(target=lambda: got.append(
        reader.xreadgroup("g", "c", {queue_name: ">"}, count=5, block=20_000)))
    thread.start()
    time.sleep(0.3)  # let it block
    added_at = time.monotonic()
    entry = writer.xadd(queue_name, {"n": "1"})
    thread.join(10)
    assert got == [[[queue_name, [(entry, {"n": "1"})]]]]
    assert time.monotonic() - added_at < 2
    reader.close()
    writer.close()


def test_entry_ids_are_the_job_ids(rc: redis.Redis, queue_name: str,
                                   q: relayq.Queue[Any]) -> None:
    job_id = q.enqueue({"from": "python"}).id
    number = job_id.rpartition(".")[2]
    entry = rc.xreadgroup("g", "c", {queue_name: ">"})[0][1][0]
    assert entry == (f"{int(number[:-6])}-{int(number[-6:])}", {"from": "python"})
    assert q.get(job_id).state == "running" and q.get(job_id).worker_id == "c"


def test_an_unacked_entry_is_taken_over_and_delivered_again(
        rc: redis.Redis, queue_name: str, q: relayq.Queue[Any]) -> None:
    """The gateway of this session has a lease of 2 s (--resp-lease-ms)."""
    first = rc.xadd(queue_name, {"n": "1"})
    second = rc.xadd(queue_name, {"n": "2"})
    rc.xreadgroup("g", "crashed", {queue_name: ">"}, count=2)
    assert rc.xclaim(queue_name, "g", "rescuer", 60_000, [first]) == []  # not idle that long
    time.sleep(0.2)
    claimed = rc.xclaim(queue_name, "g", "rescuer", 100, [first])
    assert claimed == [(first, {"n": "1"})]
    taken = rc.xautoclaim(queue_name, "g", "rescuer", 100, "0-0", count=5, justid=True)
    assert taken == [second]
    # nobody acks: when the lease runs out the entry comes back to the stream, an attempt spent
    redelivered = None
    deadline = time.monotonic() + 10
    while not redelivered and time.monotonic() < deadline:
        redelivered = rc.xreadgroup("g", "next", {queue_name: ">"}, count=2, block=500)
    assert redelivered
    assert {e[0] for e in redelivered[0][1]} <= {first, second}
    detail = rc.xpending_range(queue_name, "g", "-", "+", 10, consumername="next")
    assert detail and detail[0]["times_delivered"] == 2


def test_resp3(gateway: Gateway, admin_key: str, queue_name: str) -> None:
    client = gateway.client(admin_key, protocol=3, username="default")
    assert client.ping()
    client.xadd(queue_name, {"a": "1"})
    reply = client.xreadgroup("g", "c", {queue_name: ">"})
    assert list(reply) == [queue_name]
    assert client.client_id() > 0
    client.client_setname("resp3-client")
    assert client.client_getname() == "resp3-client"
    assert client.execute_command("BRPOP", queue_name, "0.1") is None
    client.close()


def test_wrong_or_missing_key(gateway: Gateway, queue_name: str, q: relayq.Queue[Any]) -> None:
    with pytest.raises(redis.AuthenticationError):
        gateway.client("rq_0123456789abcdef_" + "x" * 43).ping()
    anonymous = gateway.client(None)
    with pytest.raises(redis.AuthenticationError, match="Authentication required"):
        anonymous.lpush(queue_name, "x")
    assert q.stats().ready == 0
    anonymous.close()


def test_scopes_are_the_http_scopes(gateway: Gateway, scoped_keys: dict[str, str],
                                    queue_name: str, q: relayq.Queue[Any]) -> None:
    reader = gateway.client(scoped_keys["jobs:read"])
    with pytest.raises(redis.exceptions.NoPermissionError, match="jobs:write"):
        reader.lpush(queue_name, "x")
    with pytest.raises(redis.exceptions.NoPermissionError, match="jobs:work"):
        reader.rpop(queue_name)
    assert reader.llen(queue_name) == 0  # the connection goes on; read is allowed
    writer = gateway.client(scoped_keys["jobs:write"])
    assert writer.lpush(queue_name, "x") == 1
    with pytest.raises(redis.exceptions.NoPermissionError):
        writer.xreadgroup("g", "c", {queue_name: ">"})
    assert q.stats().ready == 1
    reader.close()
    writer.close()


def test_a_revoked_key_stops_working_on_an_open_connection(
        gateway: Gateway, redis_url: str, queue_name: str) -> None:
    store = relayq.auth.KeyStore(relayq.connect(redis_url))
    record, key = store.create("revoked-soon", ["admin"])
    client = gateway.client(key)
    assert client.llen(queue_name) == 0
    store.revoke(record.id)
    time.sleep(1.1)  # RESP_KEY_RECHECK_MS: a key is read again at most every second
    with pytest.raises(redis.AuthenticationError):
        client.llen(queue_name)
    client.close()


def test_refusals_write_nothing_and_keep_the_connection(
        rc: redis.Redis, queue_name: str, q: relayq.Queue[Any], r: Any) -> None:
    before = sorted(r.keys(f"relayq:{{{queue_name}}}:*"))
    cases = [
        (("LPUSH", queue_name), "wrong number of arguments for 'lpush'"),
        (("LPUSH", "no spaces here", "x"), "invalid_queue_name"),
        (("LPUSH", "x" * 65, "x"), "invalid_queue_name"),
        (("LPUSH", queue_name, "x" * (1024 * 1024 + 1)), "payload_too_large"),
        (("XADD", queue_name, "1-1", "a", "b"), "relayq assigns entry ids"),
        (("XADD", queue_name, "*", "a"), "wrong number of arguments"),
        (("XACK", queue_name, "g", "not-an-id"), "Invalid stream ID"),
        (("RPOP", queue_name, "-1"), "must be between"),
        (("BRPOP", queue_name, "-1"), "timeout is negative"),
        (("BRPOP", queue_name, "inf"), "timeout is out of range"),
        (("BLPOP", queue_name, "soon"), "timeout is not a float"),
        (("XREADGROUP", "GROUP", "g", "c", "BLOCK", "-1", "STREAMS", queue_name, ">"),
         "BLOCK must be between"),
        (("XREADGROUP", "GROUP", "g", "c", "STREAMS", queue_name), "wrong number of arguments"),
        (("XREADGROUP", "GROUP", "g", "c", "COUNT", "1", "STREAMS", queue_name, "a", ">"),
         "Unbalanced"),
        (("SELECT", "1"), "DB index is out of range"),
        (("FLUSHALL",), "unknown command 'FLUSHALL'"),
        (("GET", "k"), "unknown command"),
    ]
    for command, message in cases:
        with pytest.raises(redis.ResponseError, match=message):
            rc.execute_command(*command)
        assert rc.ping()
    assert sorted(r.keys(f"relayq:{{{queue_name}}}:*")) == before


def test_connection_commands(rc: redis.Redis) -> None:
    assert rc.echo("hi") == "hi"
    assert rc.execute_command("SELECT", "0")
    assert rc.info()["redis_version"]
    assert rc.command_count() > 20
    assert rc.execute_command("CLIENT", "SETINFO", "LIB-NAME", "test") == "OK"
