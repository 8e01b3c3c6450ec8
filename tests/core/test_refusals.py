"""Bad input gets a clear error and changes nothing: every refusal, from Python or from a
script called directly, leaves the queue's keyspace byte-for-byte unchanged."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from redis.exceptions import RedisClusterException

import relayq
from relayq import scripts, workflows
from relayq.errors import (
    Conflict,
    InvalidArgument,
    InvalidJobId,
    InvalidPayload,
    InvalidQueueName,
    JobNotFound,
    LeaseLost,
    PayloadTooLarge,
)
from relayq.job import RestoredJob
from relayq.keys import QUEUES
from relayq.limits import MAX_DURATION_MS, MAX_JSON_DEPTH, MAX_RATE, MIN_RATE, TRACEPARENT_BYTES
from relayq.options import json_too_deep
from relayq.scripts import ScriptCall
from tests.support.helpers import keyspace


@pytest.fixture
def busy(q: relayq.Queue) -> dict[str, Any]:
    """A queue with a job in every state, so refusals have something to disturb."""
    q.enqueue_many([{"n": i} for i in range(4)])
    q.enqueue({"later": True}, delay_ms=600_000)
    running, to_ack, to_kill, _ = q.claim(4)
    q.ack(to_ack.id, to_ack.lease, {"ok": 1})
    q.nack(to_kill.id, to_kill.lease, "dead", retry=False)
    fresh = q.enqueue({"fresh": True}, idempotency_key="idem").id
    return {"running": running, "succeeded": to_ack, "dead": to_kill, "ready": fresh}


def unchanged(r, q: relayq.Queue, action, error: type[Exception]) -> None:
    before = keyspace(r, q.name)
    with pytest.raises(error):
        action()
    assert keyspace(r, q.name) == before


@pytest.mark.parametrize("kwargs,error", [
    ({"priority": 256}, InvalidArgument),
    ({"priority": -1}, InvalidArgument),
    ({"priority": "high"}, InvalidArgument),
    ({"priority": True}, InvalidArgument),
    ({"delay_ms": -5}, InvalidArgument),
    ({"delay_ms": 1.5}, InvalidArgument),
    ({"max_attempts": 0}, InvalidArgument),
    ({"max_attempts": 1001}, InvalidArgument),
    ({"timeout_ms": 0}, InvalidArgument),
    ({"idempotency_key": ""}, InvalidArgument),
    ({"idempotency_key": "k" * 513}, InvalidArgument),
    ({"type": "t" * 201}, InvalidArgument),
    ({"delay_ms": 10, "run_at": 1_900_000_000_000}, InvalidArgument),
    ({"colour": "red"}, TypeError),
])
def test_bad_enqueue_options(r, q: relayq.Queue, busy, kwargs, error) -> None:
    unchanged(r, q, lambda: q.enqueue({"x": 1}, **kwargs), error)


@pytest.mark.parametrize("options", [{"type": ["a", "list"]}, {"type": {"a": 1}},
                                     {"priority": {"a": 1}}])
def test_a_batch_with_unhashable_options_is_refused_whole(r, q: relayq.Queue, busy,
                                                         options: dict[str, Any]) -> None:
    # (the batch's values reach the checks as they came: a JSON body's lists and objects)
    jobs = [relayq.NewJob({"n": 1}), relayq.NewJob({"n": 2}, relayq.JobOptions(**options))]
    unchanged(r, q, lambda: q.enqueue_many(jobs), InvalidArgument)


@pytest.mark.parametrize("payload,error", [
    ({1, 2}, InvalidPayload),
    (float("nan"), InvalidPayload),
    (object(), InvalidPayload),
    ({"x": "a" * (1024 * 1024)}, PayloadTooLarge),
    ({"x": "\ud800"}, InvalidPayload),
    (["\udca5 low half first", "\ud83d\udca5"], InvalidPayload),
])
def test_bad_payloads(r, q: relayq.Queue, busy, payload, error) -> None:
    unchanged(r, q, lambda: q.enqueue(payload), error)


def test_the_scripts_refuse_a_payload_over_the_queues_own_limit(
        r, q: relayq.Queue, busy) -> None:
    """The queue's configured limit is checked by the enqueue script (the client's is higher);
    their refusal status alone makes it a PayloadTooLarge, not the message."""
    q.configure(max_payload_bytes=100)
    unchanged(r, q, lambda: q.enqueue({"x": "a" * 200}), PayloadTooLarge)
    unchanged(r, q, lambda: q.enqueue_many([{"x": 1}, {"x": "a" * 200}]), PayloadTooLarge)


def test_refused_input_does_not_list_a_new_queue(r, queue_name: str) -> None:
    """A refused enqueue, restore, configure or rate limit leaves no trace, not even the
    queue's name in the list of queues: whether Python refuses it or only the script does
    (here: a payload over the queue's limit that this Queue object would allow, and a
    restored payload that is not JSON), the name is added only once a script accepted."""
    q = relayq.Queue(queue_name, r)
    lenient = relayq.Queue(queue_name, r, max_payload_bytes=4 * 1024 * 1024)
    too_far = datetime.now(UTC) + timedelta(milliseconds=MAX_DURATION_MS, days=1)
    refusals = [
        (lambda: q.enqueue({"x": "\ud800"}), InvalidPayload),
        (lambda: q.enqueue({"x": 1}, run_at=too_far), InvalidArgument),
        (lambda: lenient.enqueue({"x": "a" * (2 * 1024 * 1024)}), PayloadTooLarge),
        (lambda: lenient.enqueue_many([{"x": 1}, {"x": "a" * (2 * 1024 * 1024)}]),
         PayloadTooLarge),
        (lambda: q.restore([RestoredJob("1700000000000000001", "ready", 0,
                                        '{"x": "\\ud800"}', None, 0, 5, 1_700_000_000_000)]),
         InvalidPayload),
        (lambda: q.configure(max_attempts=0), InvalidArgument),
        (lambda: q.set_rate_limit(1e-9), InvalidArgument),
    ]
    for action, error in refusals:
        with pytest.raises(error):
            action()
        assert not r.sismember(QUEUES, queue_name) and keyspace(r, queue_name) == {}
    assert q.enqueue({"emoji": "\U0001f4a5"}).state == "ready"  # a proper pair is fine
    assert r.sismember(QUEUES, queue_name)


def test_run_at_has_one_bound_with_one_name(r, q: relayq.Queue, busy) -> None:
    """run_at may lie at most MAX_DURATION_MS ahead, whether Python or the script checks it,
    and both call it run_at (Python used to allow ~2047 and the script now + 10 years)."""
    now_ms = int(time.time() * 1000)
    for when in (now_ms + MAX_DURATION_MS + 86_400_000,
                 datetime.now(UTC) + timedelta(milliseconds=MAX_DURATION_MS, days=1),
                 datetime(2047, 1, 1, tzinfo=UTC), -1):
        before = keyspace(r, q.name)
        with pytest.raises(InvalidArgument, match="^run_at must be between 0 and"):
            q.enqueue({"x": 1}, run_at=when)
        assert keyspace(r, q.name) == before
    k = q.keys
    beyond = str(now_ms + MAX_DURATION_MS + 86_400_000)
    reply = raw(q, "enqueue", (k.meta, k.prios, k.scheduled, k.totals, k.seq, k.wake),
                (k.prefix, q.name, "1", '{"a":1}', "", "0", "", beyond, "", "", "", "", "", "", ""))
    assert reply[0] == "invalid_argument" and reply[1].startswith("run_at must be between 0")
    assert q.get(q.enqueue({"x": 1}, run_at=now_ms + MAX_DURATION_MS - 60_000).id).state == \
        "scheduled"


def test_enqueue_refuses_an_overlong_trace_and_writes_nothing(q: Any, r: Any) -> None:
    """The trace field (a traceparent, checked in relayq/tracing.py) is bounded in the script
    too: a caller of the raw script cannot store an arbitrary blob in it."""
    k = q.keys
    before = keyspace(r, q.name)
    reply = raw(q, "enqueue", (k.meta, k.prios, k.scheduled, k.totals, k.seq, k.wake),
                (k.prefix, q.name, "1", '{"a":1}', "", "0", "", "", "", "", "", "", "", "",
                 "x" * (TRACEPARENT_BYTES + 1)))
    assert reply == ["invalid_argument", f"trace must be at most {TRACEPARENT_BYTES} bytes"]
    assert keyspace(r, q.name) == before


def nested(depth: int) -> Any:
    """A JSON value `depth` levels deep: lists and objects in turn, with a bracket in a
    string on the way (it must not count)."""
    value: Any = "[{"
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


def test_payloads_and_results_nested_too_deep_are_refused(r, q: relayq.Queue, busy) -> None:
    """Deeper than MAX_JSON_DEPTH is refused up front: such a job could be enqueued, but
    rendering it over HTTP (one level per frame) failed later, depending on the stack."""
    unchanged(r, q, lambda: q.enqueue(nested(MAX_JSON_DEPTH + 1)), InvalidPayload)
    unchanged(r, q, lambda: q.enqueue_many([{"ok": 1}, nested(900)]), InvalidPayload)
    running = busy["running"]
    unchanged(r, q, lambda: q.ack(running.id, running.lease, nested(MAX_JSON_DEPTH + 1)),
              InvalidPayload)
    deepest = q.enqueue(nested(MAX_JSON_DEPTH)).id
    assert q.get(deepest).payload == nested(MAX_JSON_DEPTH)


@pytest.mark.parametrize(("text", "too_deep"), [
    ("[" * 129 + "]" * 129, True), ("[" * 128 + "]" * 128, False),
    ("[" * 64 + "{}," * 200 + "1" + "]" * 64, False),            # many brackets, shallow
    ('["' + "[" * 200 + '"]', False),                              # brackets inside a string
    (json.dumps(["\\", nested(129)]), True),                       # an escaped backslash
    (json.dumps(['a"]{[' * 100, nested(127)]), False),              # escaped quotes, brackets
])
def test_json_depth_counts_nesting_not_brackets_in_strings(text: str, too_deep: bool) -> None:
    assert json_too_deep(text) is too_deep


def test_a_bad_job_in_a_batch_writes_none(r, q: relayq.Queue, busy) -> None:
    jobs = [relayq.NewJob({"n": i}) for i in range(10)]
    jobs[7] = relayq.NewJob({"n": 7}, relayq.JobOptions(priority=300))
    unchanged(r, q, lambda: q.enqueue_many(jobs), InvalidArgument)


@pytest.mark.parametrize("name", ["", "a b", "x" * 65, "é", "q:1", "{q}", None, 7, "a.b"])
def test_invalid_queue_names(name) -> None:
    with pytest.raises(InvalidQueueName):
        relayq.Queue(name, "redis://127.0.0.1:1/0")


@pytest.mark.parametrize("job_id", ["", "nodot", "q.", ".123", "q.12a", "q.-1", "bad name.1",
                                    "q." + "9" * 21, None, 12])
def test_invalid_job_ids(r, q: relayq.Queue, busy, job_id) -> None:
    unchanged(r, q, lambda: q.get(job_id), InvalidJobId)
    unchanged(r, q, lambda: q.cancel(job_id), InvalidJobId)


def test_job_of_another_queue_is_refused(r, q: relayq.Queue, busy) -> None:
    unchanged(r, q, lambda: q.cancel("other.1795000000000000001"), InvalidJobId)


def test_fencing_refusals(r, q: relayq.Queue, busy) -> None:
    running, succeeded, dead = busy["running"], busy["succeeded"], busy["dead"]
    unchanged(r, q, lambda: q.ack(running.id, "stale"), LeaseLost)
    unchanged(r, q, lambda: q.nack(running.id, "stale", "x"), LeaseLost)
    unchanged(r, q, lambda: q.heartbeat(running.id, "stale"), LeaseLost)
    unchanged(r, q, lambda: q.ack(dead.id, dead.lease or "x"), LeaseLost)
    unchanged(r, q, lambda: q.ack(f"{q.name}.1700000000000000001", "x"), JobNotFound)
    unchanged(r, q, lambda: q.cancel(dead.id), Conflict)
    unchanged(r, q, lambda: q.cancel(succeeded.id), Conflict)
    unchanged(r, q, lambda: q.progress(running.id, "stale", 0.5), LeaseLost)
    unchanged(r, q, lambda: q.progress(succeeded.id, succeeded.lease or "x", 0.5), LeaseLost)
    unchanged(r, q, lambda: q.progress(running.id, running.lease, 1.01), InvalidArgument)
    unchanged(r, q, lambda: q.progress(running.id, running.lease, 0.5, "x" * 2_000_000),
              PayloadTooLarge)
    unchanged(r, q, lambda: q.requeue_dead_job(running.id), JobNotFound)
    unchanged(r, q, lambda: q.purge_dead_job(succeeded.id), JobNotFound)


def test_bad_operator_arguments(r, q: relayq.Queue, busy) -> None:
    running = busy["running"]
    unchanged(r, q, lambda: q.claim(0), InvalidArgument)
    unchanged(r, q, lambda: q.claim(1001), InvalidArgument)
    unchanged(r, q, lambda: q.claim(1, visibility_ms=0), InvalidArgument)
    unchanged(r, q, lambda: q.heartbeat(running.id, running.lease, visibility_ms=-1),
              InvalidArgument)
    unchanged(r, q, lambda: q.nack(running.id, running.lease, "x", delay_ms=-1),
              InvalidArgument)
    unchanged(r, q, lambda: q.set_rate_limit(0), InvalidArgument)
    unchanged(r, q, lambda: q.set_rate_limit(5, burst=0), InvalidArgument)
    unchanged(r, q, lambda: q.configure(max_attempts=0), InvalidArgument)
    unchanged(r, q, lambda: q.configure(retention="forever"), InvalidArgument)
    unchanged(r, q, lambda: q.dead(limit=0), InvalidArgument)
    unchanged(r, q, lambda: q.dead(cursor="abc"), InvalidArgument)
    for cursor in ("\u00b2", "\u0663", "1_0", " 5", "+5", "1" * 13):  # ², Arabic-Indic three
        unchanged(r, q, lambda cursor=cursor: q.dead(cursor=cursor), InvalidArgument)
    for rate in (5e-324, 1e-9, MIN_RATE / 2, MAX_RATE * 2, float("inf"), float("nan")):
        unchanged(r, q, lambda rate=rate: q.set_rate_limit(rate), InvalidArgument)


def raw(q: relayq.Queue, name: str, keys: tuple[str, ...], args: tuple[Any, ...]) -> Any:
    return scripts.run(q.redis, ScriptCall(scripts.script(name), keys, args))


def test_scripts_called_directly_with_wrong_types_and_counts(r, q: relayq.Queue, busy) -> None:
    k = q.keys
    enq = (k.meta, k.prios, k.scheduled, k.totals, k.seq, k.wake)
    good_job = ['{"a":1}', "", "0", "", "", "", "", "", "", "", "", ""]
    sched = (k.meta, k.schedules, k.due_schedules)
    cases = [
        ("enqueue", enq, (k.prefix, q.name, "1", *good_job[:-1])),           # too few fields
        ("enqueue", enq, (k.prefix, q.name, "2", *good_job)),                # count mismatch
        ("enqueue", enq, (k.prefix, q.name, "x", *good_job)),                # count not int
        ("enqueue", enq, (k.prefix, q.name, "1", "{not json", *good_job[1:]), "invalid_payload"),
        ("enqueue", enq, (k.prefix, q.name, "1", '{"a":1}', "", "1e3", *good_job[3:])),
        ("enqueue", enq, (k.prefix, q.name, "1", '{"a":1}', "", "0", "-3", *good_job[4:])),
        ("claim", (k.meta, k.prios, k.scheduled, k.running, k.totals, k.wake, k.leases),
         (k.prefix, q.name, "zero", "1000", "w", "n")),
        ("claim", (k.meta, k.prios, k.scheduled, k.running, k.totals, k.wake, k.leases),
         (k.prefix, q.name, "1", "1000", "", "n")),
        ("ack", (k.meta, k.running, k.succeeded, k.totals), (k.prefix, q.name, "100", "a")),
        ("ack", (k.meta, k.running, k.succeeded, k.totals),
         (k.prefix, q.name, "100", "1", "l", "{bad"), "invalid_payload"),
        ("ack", (k.meta, k.running, k.succeeded, k.totals),
         (k.prefix, q.name, "5", "1", "l", '"a result"'), "payload_too_large"),
        ("nack", (k.meta, k.running, k.scheduled, k.prios, k.dead, k.totals, k.wake),
         (k.prefix, q.name, "1", "l", "e", "maybe", "", "0.5")),
        ("nack", (k.meta, k.running, k.scheduled, k.prios, k.dead, k.totals, k.wake),
         (k.prefix, q.name, "1", "l", "e", "1", "", "2")),
        ("heartbeat", (k.running,), (k.prefix, "1000", "only-an-id")),
        ("release", (k.meta, k.running, k.prios, k.wake, k.totals), (k.prefix, q.name, "id")),
        ("progress", (k.meta,), (k.prefix, q.name, "1", "l", "1.5", "")),
        ("progress", (k.meta,), (k.prefix, q.name, "1", "l", "nan", "")),
        ("progress", (k.meta,), (k.prefix, q.name, "1", "l", "0.5", "{not json"),
         "invalid_payload"),
        ("rate_limit", (k.meta, k.prios, k.wake), ("-1", "5")),
        ("rate_limit", (k.meta, k.prios, k.wake), ("5", "1.5")),
        ("rate_limit", (k.meta, k.prios, k.wake), ("5e-324", "1")),        # below MIN_RATE
        ("rate_limit", (k.meta, k.prios, k.wake), ("1e-9", "1")),
        ("configure", (k.meta,), ("max_attempts",)),
        ("pause", (k.meta, k.prios, k.wake), ("yes",)),
        ("reap", (k.meta, k.running, k.prios, k.dead, k.succeeded, k.totals, k.wake),
         (k.prefix, q.name, "0")),
        ("requeue", (k.meta, k.dead, k.prios, k.wake), (k.prefix, q.name, "many")),
        ("purge", (k.dead,), (k.prefix, q.name, "-1")),
        ("cancel", (k.meta, k.prios, k.scheduled, k.totals), (k.prefix, q.name)),  # no id
        ("promote", (k.scheduled, k.prios, k.wake, k.meta), (k.prefix, q.name, "x")),
        ("heartbeat", (k.running,), (k.prefix, "1000")),                     # no pairs
        ("configure", (k.meta,), ("max_attempts", "3", "colour", "red")),
        ("restore", (k.meta, k.prios, k.scheduled, k.dead, k.succeeded, k.seq, k.wake),
         (k.prefix, q.name, "", "1", "1", "bogus-state", *[""] * 15)),
        ("save_schedule", sched, (k.prefix, q.name, "s", "{}", "[]", "", "", "")),  # template
        ("save_schedule", sched, (k.prefix, q.name, "s", "{}",
                                  json.dumps(["{}", "", "999", *[""] * 9]), "", "", "")),
        ("save_schedule", sched, (k.prefix, q.name, "s", "{}",
                                  json.dumps(["{", *[""] * 11]), "", "", ""), "invalid_payload"),
        ("save_schedule", sched, (k.prefix, q.name, "bad id!", "{}",
                                  json.dumps(["{}", *[""] * 11]), "", "", "")),
        ("save_schedule", sched, (k.prefix, q.name, "s", "not json",
                                  json.dumps(["{}", *[""] * 11]), "", "", "")),
        ("save_schedule", sched, (k.prefix, q.name, "s", "{}",
                                  json.dumps(["{}", *[""] * 11]), "", "maybe", "")),
        ("delete_schedule", sched[1:], (k.prefix, q.name, "nope"), "not_found"),
        ("delete_schedule", sched[1:], (k.prefix, q.name, "bad id!")),
        ("pause_schedule", (k.due_schedules,), (k.prefix, q.name, "nope", "1"), "not_found"),
        ("pause_schedule", (k.due_schedules,), (k.prefix, q.name, "nope", "yes")),
        ("trigger_schedule", enq, (k.prefix, q.name, "nope"), "not_found"),
        ("fire_schedule", (*enq, k.due_schedules), (k.prefix, q.name, "nope", "1", "", "end",
                                                    "0"), "not_found"),
        ("due_schedules", (k.due_schedules,), (k.prefix, "0")),
    ]
    for name, keys, args, *status in cases:
        before = keyspace(r, q.name)
        reply = raw(q, name, keys, args)
        assert reply[0] == (status[0] if status else "invalid_argument"), (name, args, reply)
        assert isinstance(reply[1], str) and reply[1]
        assert keyspace(r, q.name) == before, (name, args)


class _Captured(Exception):
    pass


def calls_of(monkeypatch: pytest.MonkeyPatch, action: Any) -> list[ScriptCall]:
    """The script calls `action` makes (each as it would be sent), without running any."""
    seen: list[ScriptCall] = []

    def capture(_client: Any, call: Any) -> Any:
        seen.extend(call if isinstance(call, list) else [call])  # run_pipelined: a list
        raise _Captured

    with monkeypatch.context() as m:
        m.setattr(scripts, "run", capture)
        m.setattr(scripts, "run_pipelined", capture)
        with pytest.raises(_Captured):
            action()
    return seen


def fire_one(q: relayq.Queue) -> None:
    """A firing of a schedule (its call only: the refusal tests look at the call)."""
    q._run(q._calls.fire_schedule("s", "1", "", None, []))


def _operations(q: relayq.Queue, busy: dict[str, Any]) -> dict[str, Any]:
    running, dead = busy["running"], busy["dead"]
    restored = RestoredJob("1700000000000000001", "ready", 0, '{"n":1}', None, 0, 5,
                           1_700_000_000_000)
    return {
        "enqueue": lambda: q.enqueue({"x": 1}), "claim": lambda: q.claim(1),
        "ack": lambda: q.ack(running.id, running.lease),
        "nack": lambda: q.nack(running.id, running.lease, "e"),
        "heartbeat": lambda: q.heartbeat(running.id, running.lease),
        "release": lambda: q.release_many([(running.id, running.lease)]),
        "cancel": lambda: q.cancel(busy["ready"]), "reap": q.reap, "promote": q.promote,
        "stats": q.stats, "pause": q.pause, "rate_limit": lambda: q.set_rate_limit(5),
        "configure": lambda: q.configure(max_attempts=3),
        "requeue": lambda: q.requeue_dead_job(dead.id), "purge": lambda: q.purge_dead_job(dead.id),
        "restore": lambda: q.restore([restored]),
        "progress": lambda: q.progress(running.id, running.lease, 0.5),
        "save_schedule": lambda: q.schedule("s", {}, every_ms=1000),
        "delete_schedule": lambda: q.unschedule("s"),
        "pause_schedule": lambda: q.pause_schedule("s"),
        "trigger_schedule": lambda: q.trigger_schedule("s"),
        "fire_schedule": lambda: fire_one(q),
        "due_schedules": q.fire_schedules,
        # workflows (relayq/workflows.py)
        "enqueue_deps": lambda: q.enqueue({"x": 1}, depends_on=[busy["ready"]]),
        "link": lambda: q._run(workflows._link_call(q.name, [(q.local_id(running.id),
                                                               "other-queue.1")])),
        "deps_apply": lambda: q._run(workflows.apply_call(
            q.name, [(q.local_id(busy["ready"]), "other-queue.1", "succeeded", "")])),
        "outbox_done": lambda: q._run(workflows._outbox_done_call(q.name, ["1-0"])),
        "group_limits": lambda: q.set_group_limits("tenant-a", max_running=2),
        "groups": q.groups,
    }


def test_workflow_scripts_refuse_bad_input_and_write_nothing(r, q: relayq.Queue, busy) -> None:
    k = q.keys
    enq = (k.meta, k.prios, k.scheduled, k.totals, k.seq, k.wake)
    job = ['{"a":1}', "", "0", "", "", "", "", "", "", "", ""]
    ready = q.local_id(busy["ready"])
    cases = [
        ("enqueue_deps", enq, (k.prefix, q.name, "1", *job, f"{q.name}.999", "")),  # unknown
        ("enqueue_deps", enq, (k.prefix, q.name, "1", *job, "nope", "")),
        ("enqueue_deps", enq, (k.prefix, q.name, "1", *job, "@1", "")),  # itself
        ("enqueue_deps", enq, (k.prefix, q.name, "2", *job, "", "", *job, "@3", "")),
        ("enqueue_deps", enq, (k.prefix, q.name, "1", *job, busy["ready"], "maybe")),
        ("enqueue_deps", enq, (k.prefix, q.name, "1", *job, ",", "")),
        ("enqueue_deps", enq, (k.prefix, q.name, "1", *job,
                               ",".join(f"x.{i}" for i in range(1001)), "")),
        ("link", (k.meta,), (k.prefix, q.name, "abc", "other.1")),
        ("link", (k.meta,), (k.prefix, q.name, ready)),
        ("deps_apply", (k.meta,), (k.prefix, q.name, ready, "other.1", "won", "")),
        ("deps_apply", (k.meta,), (k.prefix, q.name, ready, "bad", "dead", "")),
        ("outbox_done", (k.prefix + "outbox",), ("not-an-id",)),
        ("outbox_done", (k.meta,), ("1-0",)),
    ]
    for name, keys, args in cases:
        before = keyspace(r, q.name)
        reply = raw(q, name, keys, args)
        assert reply[0] == "invalid_argument", (name, args[2:6], reply)
        assert keyspace(r, q.name) == before, (name, args[2:6])


def test_every_script_has_an_operation_here(q: relayq.Queue, busy) -> None:
    assert set(_operations(q, busy)) == set(scripts.SCRIPTS)


@pytest.mark.parametrize("name", sorted(scripts.SCRIPTS))
def test_scripts_refuse_wrong_key_counts_and_another_queues_keys(
        r, q: relayq.Queue, busy, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """A script given one key too few or too many, a key of another queue, or another queue's
    prefix or name in ARGV refuses before it writes (too few keys used to write half a
    transition and then fail on the missing key)."""
    (call,) = calls_of(monkeypatch, _operations(q, busy)[name])
    other = "relayq:{other-queue}:"
    keys, args = call.keys, call.args
    variants = [(keys[:-1], args), (keys + (q.keys.prefix + "extra",), args)]
    if len(keys) > 1:
        variants.append((keys[:-1] + (other + keys[-1].rsplit(":", 1)[1],), args))
    if args and args[0] == q.keys.prefix:
        variants.append((keys, (other, *args[1:])))
    if len(args) > 1 and args[1] == q.name:
        variants.append((keys, (args[0], "other-queue", *args[2:])))
    for keys, args in variants:
        before, others = keyspace(r, q.name), keyspace(r, "other-queue")
        try:
            reply = raw(q, name, keys, args)
        except RedisClusterException as e:
            # On Redis Cluster the client refuses keys of two slots before any script runs.
            assert any(k.startswith(other) for k in keys) and "same key slot" in str(e)
        else:
            assert reply[0] == "invalid_argument", (keys, args, reply)
        assert keyspace(r, q.name) == before and keyspace(r, "other-queue") == others
