"""Group commit (relayq.api.group_commit): requests of one server process share round trips,
each still answered with its own result or error, and nothing waits for company when idle."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from relayq import InvalidArgument, scripts
from relayq.api.group_commit import Batcher, GroupCommit, GroupedQueue
from relayq.options import JobOptions
from tests.support.helpers import wait_until


def evalsha_calls(r: Any) -> int:
    return int(r.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0))


def enqueue_call(q: GroupedQueue, n: int, priority: str = "") -> Any:
    fields = list(JobOptions().script_args())
    fields[1] = priority  # straight to the script: Python's own checks are not in the way
    return q._calls.enqueue((f'{{"n": {n}}}', *fields, ""))  # no trace


def test_one_round_answers_each_request_with_its_own_result(r: Any, queue_name: str) -> None:
    commit = GroupCommit(r)
    a, b = GroupedQueue(queue_name, commit), GroupedQueue(queue_name + "-b", commit)
    (running,) = a.enqueue_many([{"n": -1}]) and a.claim(1)
    calls = [enqueue_call(a, 0), enqueue_call(b, 1), enqueue_call(a, 2), enqueue_call(b, 3),
             a._ack_call([(running.id, "not-the-lease", "")]), enqueue_call(a, 4)]
    scripts.load_all(r)  # no NOSCRIPT round in the count
    before = evalsha_calls(r)
    outcomes = commit._run_calls(calls)
    assert evalsha_calls(r) - before == 3, "a's enqueues in one call, b's in one, the ack"
    ids = [o[0].id for i, o in enumerate(outcomes) if i != 4]
    assert len(set(ids)) == 5
    assert [(b if "-b." in i else a).get(i).payload["n"] for i in ids] == [0, 1, 2, 3, 4]
    assert outcomes[4] == ["lease_lost"]


def test_a_refused_job_fails_only_its_own_request(r: Any, queue_name: str) -> None:
    commit = GroupCommit(r)
    q = GroupedQueue(queue_name, commit)
    calls = [enqueue_call(q, 0), enqueue_call(q, 1, priority="999"), enqueue_call(q, 2)]
    outcomes = commit._run_calls(calls)
    assert isinstance(outcomes[1], InvalidArgument) and "priority" in str(outcomes[1])
    assert "job 2" not in str(outcomes[1]), "the error of its own call, not of the merged one"
    assert [q.get(o[0].id).payload["n"] for o in (outcomes[0], outcomes[2])] == [0, 2]
    assert q.stats().ready == 2


def test_a_batcher_runs_at_once_when_idle_and_gathers_while_a_round_is_in_flight() -> None:
    rounds: list[list[int]] = []
    release = threading.Event()

    def flush(items: list[int]) -> list[Any]:
        rounds.append(items)
        if len(rounds) == 1:
            release.wait(10)
        return [ValueError(i) if i == 3 else i * 10 for i in items]

    batcher: Batcher[int, int] = Batcher(flush)
    results: dict[int, Any] = {}

    def submit(i: int) -> None:
        try:
            results[i] = batcher.submit(i)
        except ValueError as e:
            results[i] = e

    threads = [threading.Thread(target=submit, args=(0,))]
    threads[0].start()
    wait_until(lambda: rounds, message="the first submit leads a round at once")
    for i in range(1, 6):
        threads.append(threading.Thread(target=submit, args=(i,)))
        threads[-1].start()
    wait_until(lambda: len(batcher._waiting) == 5, message="five waiting for the round")
    release.set()
    for t in threads:
        t.join(10)
    assert rounds[0] == [0] and sorted(rounds[1]) == [1, 2, 3, 4, 5] and len(rounds) == 2
    assert {i: v for i, v in results.items() if i != 3} == {0: 0, 1: 10, 2: 20, 4: 40, 5: 50}
    assert isinstance(results[3], ValueError)
    assert batcher.submit(7) == 70 and len(rounds) == 3  # idle again: a round of its own


def test_key_lookups_of_a_round_are_one_hmget(r: Any) -> None:
    from relayq.auth import KeyStore

    commit = GroupCommit(r)
    store = KeyStore(r, lookup=commit.lookup_key)
    record, key = store.create("grouped", ["jobs:read"])
    before = int(r.info("commandstats").get("cmdstat_hmget", {}).get("calls", 0))
    assert commit._lookup_keys([record.id, "0123456789abcdef", record.id])[1] is None
    assert int(r.info("commandstats")["cmdstat_hmget"]["calls"]) - before == 1
    assert store.authenticate(key).id == record.id
    store.revoke(record.id)
    with pytest.raises(Exception, match="revoked"):
        store.authenticate(key)


def test_acks_of_one_queue_share_one_call_and_keep_their_own_answers(
        r: Any, queue_name: str) -> None:
    commit = GroupCommit(r)
    q = GroupedQueue(queue_name, commit)
    q.enqueue_many([{"n": i} for i in range(3)])
    jobs = list(q.claim(3))
    scripts.load_all(r)
    acks = [q._ack_call([(jobs[0].id, jobs[0].lease, '{"r": 0}')], checked=True),
            q._ack_call([(jobs[1].id, "stale", "")], checked=True),
            q._ack_call([(jobs[2].id, jobs[2].lease, "")], checked=True)]
    before = evalsha_calls(r)
    assert commit._run_calls(acks) == [["ok"], ["lease_lost"], ["ok"]]
    assert evalsha_calls(r) - before == 1
    assert [q.get(j.id).state for j in jobs] == ["succeeded", "running", "succeeded"]
    bad = q._ack_call([(jobs[1].id, jobs[1].lease, "{not json")], checked=True)
    again = q._ack_call([(jobs[0].id, jobs[0].lease, "")], checked=True)
    outcomes = commit._run_calls([bad, again])
    assert isinstance(outcomes[0], Exception) and outcomes[1] == ["ok"]
    assert q.get(jobs[1].id).state == "running"
