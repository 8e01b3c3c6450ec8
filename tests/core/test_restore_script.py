"""lua/restore.lua through `Queue.restore`, on a real redis-server and on fakeredis: jobs put back
only where absent, each state's index, retention, idempotency keys, the id sequence, and
refusals that leave the keyspace unchanged."""

from __future__ import annotations

import pytest

from relayq import InvalidArgument, Queue
from relayq.job import RestoredJob
from tests.support.helpers import keyspace

HOUR = 3_600_000


def now_ms(q: Queue) -> int:
    seconds, micros = q.redis.time()
    return seconds * 1000 + micros // 1000


def job(local_id: str, state: str, created: int, **fields: object) -> RestoredJob:
    base = dict(local_id=local_id, state=state, priority=0, payload='{"n":1}', type=None,
                attempts=0, max_attempts=5, created_at=created)
    return RestoredJob(**{**base, **fields})


def test_each_state_goes_back_to_its_index(any_q: Queue) -> None:
    t = now_ms(any_q)
    k = any_q.keys
    statuses = any_q.restore([
        job("1", "ready", t - 5, priority=3),
        job("2", "running", t - 4, attempts=2, started_at=t - 3),
        job("3", "scheduled", t - 3, run_at=t + HOUR),
        job("4", "dead", t - 2, attempts=5, finished_at=t - 1, last_error="boom"),
        job("5", "succeeded", t - 2, attempts=1, finished_at=t - 1, result='{"ok":true}'),
        job("6", "cancelled", t - 2, finished_at=t - 1),
    ])
    assert statuses == ["ok"] * 6
    r = any_q.redis
    assert r.lrange(k.ready(3), 0, -1) == ["1"] and r.lrange(k.ready(0), 0, -1) == ["2"]
    assert r.zscore(k.scheduled, "3") == t + HOUR
    assert r.zscore(k.dead, "4") == t - 1 and r.zscore(k.succeeded, "5") == t - 1
    running = any_q.get(f"{any_q.name}.2")
    assert running.state == "ready" and running.attempts == 2 and running.lease is None
    assert any_q.get(f"{any_q.name}.4").last_error == "boom"
    assert any_q.get(f"{any_q.name}.5").result == {"ok": True}
    assert any_q.get(f"{any_q.name}.6").state == "cancelled"
    for finished in ("4", "5", "6"):
        assert r.pttl(k.job(finished)) > 0
    assert r.pttl(k.job("1")) == -1
    (claimed,) = any_q.claim(1)
    assert claimed.id == f"{any_q.name}.1"  # priority 3 first


def test_restore_is_idempotent_and_detects_a_reused_id(any_q: Queue) -> None:
    t = now_ms(any_q)
    jobs = [job(str(i), "ready", t - 10) for i in range(1, 4)]
    assert any_q.restore(jobs) == ["ok"] * 3
    assert any_q.restore(jobs) == ["present"] * 3
    assert any_q.restore([job("2", "ready", t - 99)]) == ["conflict"]
    assert any_q.redis.lrange(any_q.keys.ready(0), 0, -1) == ["1", "2", "3"]


def test_restoring_again_changes_nothing_byte_for_byte(q: Queue) -> None:
    t = now_ms(q)
    jobs = [job("1", "ready", t, idempotency_key="k"), job("2", "dead", t, finished_at=t),
            job("3", "scheduled", t, run_at=t + HOUR)]
    q.restore(jobs, min_sequence=3)
    before = keyspace(q.redis, q.name)
    assert q.restore(jobs, min_sequence=3) == ["present"] * 3
    assert keyspace(q.redis, q.name) == before


def test_finished_jobs_past_their_retention_are_not_restored(any_q: Queue) -> None:
    t = now_ms(any_q)
    any_q.configure(dead_ttl_ms=HOUR)
    statuses = any_q.restore([job("1", "dead", t - 3 * HOUR, finished_at=t - 2 * HOUR),
                              job("2", "dead", t - 3 * HOUR, finished_at=t - HOUR // 2)])
    assert statuses == ["expired", "ok"]
    assert any_q.redis.zrange(any_q.keys.dead, 0, -1) == ["2"]
    assert 0 < any_q.redis.pttl(any_q.keys.job("2")) <= HOUR // 2


def test_idempotency_keys_and_the_sequence_come_back(any_q: Queue) -> None:
    t = now_ms(any_q)
    any_q.restore([job("1", "ready", t - 1000, idempotency_key="welcome"),
                   job("2", "ready", t - 2 * 86_400_000, idempotency_key="stale")],
                  min_sequence=41)
    dup = any_q.enqueue({"again": True}, idempotency_key="welcome")
    assert dup.duplicate and dup.id == f"{any_q.name}.1"
    assert not any_q.enqueue({}, idempotency_key="stale").duplicate  # its TTL had run out
    assert int(any_q.redis.get(any_q.keys.seq)) >= 41
    any_q.restore([job("3", "ready", t)], min_sequence=5)  # never lowered
    assert int(any_q.redis.get(any_q.keys.seq)) >= 42


@pytest.mark.parametrize("bad, message", [
    ({"local_id": "x1"}, "id must be"),
    ({"state": "limbo"}, "unknown state"),
    ({"payload": "{not json"}, "payload is not valid JSON"),
    ({"state": "scheduled"}, "needs run_at"),
    ({"state": "dead"}, "needs finished_at"),
    ({"priority": 256}, "priority"),
    ({"result": "{"}, "result is not valid JSON"),
])
def test_a_bad_job_refuses_the_whole_call_and_writes_nothing(
        any_q: Queue, bad: dict, message: str) -> None:
    t = now_ms(any_q)
    any_q.restore([job("1", "ready", t)])
    before = sorted(any_q.redis.scan_iter(match=f"relayq:{{{any_q.name}}}:*"))
    before_ready = any_q.redis.lrange(any_q.keys.ready(0), 0, -1)
    with pytest.raises(InvalidArgument, match=message):
        any_q.restore([job("2", "ready", t), job("3", "ready", t)._replace(**bad)])
    assert sorted(any_q.redis.scan_iter(match=f"relayq:{{{any_q.name}}}:*")) == before
    assert any_q.redis.lrange(any_q.keys.ready(0), 0, -1) == before_ready


def test_a_refusal_is_byte_for_byte_nothing(q: Queue) -> None:
    t = now_ms(q)
    q.restore([job("1", "dead", t, finished_at=t)])
    before = keyspace(q.redis, q.name)
    with pytest.raises(InvalidArgument):
        q.restore([job("2", "ready", t), job("3", "ready", t)._replace(state="nope")])
    assert keyspace(q.redis, q.name) == before


def test_payload_and_result_are_held_to_the_queues_limit(any_q: Queue) -> None:
    """As enqueue holds payloads (issue 20: a 200 MB payload was restored)."""
    t = now_ms(any_q)
    any_q.configure(max_payload_bytes=100)
    big = '"' + "x" * 100 + '"'
    before = sorted(any_q.redis.scan_iter(match=f"relayq:{{{any_q.name}}}:*"))
    with pytest.raises(InvalidArgument, match="payload is 102 bytes, over the limit of 100"):
        any_q.restore([job("1", "ready", t), job("2", "ready", t, payload=big)])
    with pytest.raises(InvalidArgument, match="result is 102 bytes, over the limit of 100"):
        any_q.restore([job("3", "succeeded", t, finished_at=t, result=big)])
    assert sorted(any_q.redis.scan_iter(match=f"relayq:{{{any_q.name}}}:*")) == before
    assert any_q.restore([job("4", "ready", t, payload='"' + "x" * 98 + '"')]) == ["ok"]


def test_a_creation_time_in_the_future_holds_a_key_no_longer_than_its_ttl(any_q: Queue) -> None:
    t = now_ms(any_q)
    any_q.configure(idempotency_ttl_ms=HOUR)
    any_q.restore([job("1", "ready", t + 100 * 365 * 86_400_000, idempotency_key="k")])
    assert 0 < any_q.redis.pttl(any_q.keys.prefix + "idem:k") <= HOUR


def test_a_key_held_by_another_job_is_never_taken(any_q: Queue) -> None:
    held = any_q.enqueue({"mine": True}, idempotency_key="k")
    t = now_ms(any_q)
    assert any_q.restore([job("1", "ready", t, idempotency_key="k")]) == ["ok"]
    assert any_q.enqueue({}, idempotency_key="k").id == held.id


def test_new_ids_never_take_restored_ones_of_the_same_millisecond(any_q: Queue) -> None:
    """Enqueue checks ids against those in use only while they may be taken (lua/enqueue.lua:
    id_ms, id_seq); restored ids of milliseconds still to come are: each of them must survive
    the enqueues made in those milliseconds. The restored ids cover SPAN milliseconds with the
    next PER_MS sequence numbers each, so that an enqueue landing in any of them (a slow one
    too: fakeredis takes milliseconds) meets an id it must not take."""
    span, per_ms = 20, 50
    any_q.enqueue({"n": "first"})  # the script loaded, the queue listed: enqueues are quick
    for margin_ms in (300, 1000, 3000, 10_000):  # tries, on a busy machine
        soon = now_ms(any_q) + margin_ms
        seq = int(any_q.redis.get(any_q.keys.seq) or 0)
        restored = [job(f"{ms}{(seq + i) % 1_000_000:06d}", "cancelled", ms - 1,
                        finished_at=ms - 1)
                    for ms in range(soon, soon + span) for i in range(1, per_ms + 1)]
        any_q.restore(restored)
        while now_ms(any_q) < soon - 3:  # to just before, enqueueing nothing
            pass
        made = []
        while now_ms(any_q) < soon + span:
            made.append(any_q.enqueue({"n": len(made)}).id)
        assert len(set(made)) == len(made)
        states = {any_q.get(f"{any_q.name}.{j.local_id}").state for j in restored}
        assert states == {"cancelled"}
        landed = [i for i in made if soon <= int(i.split(".")[1][:-6]) < soon + span]
        if landed:
            return  # enqueues were made in those milliseconds, and took none of their ids
    pytest.fail("no enqueue landed in the restored ids' milliseconds: the machine is too busy")


def test_group_and_workflow_fields_come_back(any_q: Queue) -> None:
    t = now_ms(any_q)
    name = any_q.name
    statuses = any_q.restore([
        job("1", "ready", t - 5, group="tenant-1"),
        job("2", "waiting", t - 4, group="tenant-2", depends_on=f"{name}.1,other.9",
            on_parent_failure="run", parent_results='{"other.9": "{\\"r\\":7}"}',
            waiting_for=f"{name}.1"),
        job("3", "waiting", t - 3, depends_on="other.9", parent_results='{"other.9": "null"}'),
    ])
    assert statuses == ["ok"] * 3
    r, k = any_q.redis, any_q.keys
    first = any_q.get(f"{name}.1")
    assert first.group == "tenant-1" and first.state == "ready"
    waiting = any_q.get(f"{name}.2")
    assert waiting.state == "waiting" and waiting.group == "tenant-2"
    assert waiting.depends_on == [f"{name}.1", "other.9"]
    assert waiting.on_parent_failure == "run" and waiting.parent_results == {"other.9": {"r": 7}}
    assert r.smembers(k.prefix + "deps:2") == {f"{name}.1"}
    assert r.zrange(k.prefix + "waiting", 0, -1) == ["2"]
    assert r.zrange(k.prefix + "linking", 0, -1) == ["2"]  # linked again by the movers
    # nothing left to wait for: ready at once, in its group's lists like the first
    assert any_q.get(f"{name}.3").state == "ready"
    assert sorted(j.id for j in any_q.claim(10)) == [f"{name}.1", f"{name}.3"]


@pytest.mark.parametrize("fields, message", [
    (dict(state="waiting"), "a waiting job needs depends_on"),
    (dict(state="waiting", depends_on="a.1", waiting_for="a.2"),
     "waiting_for names a job that is not a parent"),
    (dict(state="ready", depends_on="a.1", waiting_for="a.1"),
     "only a waiting job waits for parents"),
    (dict(state="ready", depends_on="a.x"), "depends_on holds an invalid job id"),
    (dict(state="ready", depends_on="a.1", on_parent_failure="maybe"),
     "on_parent_failure must be cancel or run"),
    (dict(state="ready", depends_on="a.1", parent_results='{"b.1": "1"}'),
     "parent_results names a job that is not a parent"),
    (dict(state="ready", depends_on="a.1", parent_results='{"a.1": "{"}'),
     "parent_results holds a result that is not JSON text"),
    (dict(state="ready", group="no spaces"), "group must be"),
])
def test_bad_workflow_fields_are_refused_and_change_nothing(
        any_q: Queue, fields: dict[str, str], message: str) -> None:
    t = now_ms(any_q)
    before = keyspace(any_q.redis, any_q.name)
    fields = {"state": "ready", **fields}
    with pytest.raises(InvalidArgument, match=message):
        any_q.restore([job("1", created=t, **fields)])
    assert keyspace(any_q.redis, any_q.name) == before
