"""The protocol between Python and the Lua scripts of lua/: for each script, one typed call that
builds its KEYS and ARGV (in the order the script's header lists them), and one reply type that
parses its answer by name. Nothing else in relayq knows a script's key order, argument order or
reply positions.

`QueueCalls(queue)` builds the calls of one queue (its KEYS tuples are made once). A `Call`
carries the parser of its reply, so a call runs alone (`run`) or pipelined with others
(`run_many`: a worker's outcomes and its next claim, the stats of many queues) and comes back
parsed either way. A refusal, a status that is an error code (`invalid_argument`,
`payload_too_large`, ...), raises its exception from relayq.errors; statuses a caller acts on
(`lease_lost` of one job in an ack, `empty` of a claim, ...) are part of the reply.

Input is checked by the caller (relayq.queue) before a call is built; the scripts check it again,
because Redis does not roll a script back.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from contextlib import contextmanager
from itertools import chain
from typing import Any, Generic, NamedTuple, TypeVar

from . import scripts
from .connection import RedisClient
from .errors import NotReplicated, ScheduleNotFound, error_for
from .job import Job, RestoredJob, make_job_id
from .keys import QueueKeys
from .replication import Wait
from .results import TOTALS, ClaimResult, EnqueueResult, NackResult, QueueStats

R = TypeVar("R")

ENQUEUE_FIELDS = 12  # per job of an enqueue call: payload, ten options, trace (enqueue.lua)

ENQUEUE, CLAIM, ACK, NACK, HEARTBEAT, RELEASE, STATS, REAP, PROMOTE, REQUEUE, PURGE, CANCEL, \
    PAUSE, RATE_LIMIT, CONFIGURE, RESTORE, PROGRESS = (scripts.script(name) for name in (
        "enqueue", "claim", "ack", "nack", "heartbeat", "release", "stats", "reap", "promote",
        "requeue", "purge", "cancel", "pause", "rate_limit", "configure", "restore",
        "progress"))
SAVE_SCHEDULE, DELETE_SCHEDULE, PAUSE_SCHEDULE, TRIGGER_SCHEDULE, FIRE_SCHEDULE, \
    DUE_SCHEDULES = (scripts.script(name) for name in (
        "save_schedule", "delete_schedule", "pause_schedule", "trigger_schedule",
        "fire_schedule", "due_schedules"))


class Call(NamedTuple, Generic[R]):
    """One script invocation and the parser of its reply. It has the fields of a
    `scripts.ScriptCall`, so relayq.scripts runs it as one."""

    script: scripts.Script
    keys: tuple[str, ...]
    args: tuple[Any, ...]
    parse: Callable[[Any], R]


class Scripts(NamedTuple):
    """A step of an operation (relayq.queue): run these calls (`run_many`, ending with `wait`);
    sent back their parsed replies, in order."""

    calls: Sequence[Call[Any]]
    wait: Wait | None = None


class Reads(NamedTuple):
    """A step of an operation: plain Redis commands (reads, and the one SADD/RPUSH of
    bookkeeping) in one round trip, not a transaction; sent back their replies as redis-py
    parses them (HGETALL a dict, ...)."""

    commands: Sequence[tuple[Any, ...]]


# An operation of a queue, without its I/O: a generator that yields Scripts and Reads steps, is
# sent each step's replies (or thrown its error) and returns the operation's result. relayq.Queue
# drives it with redis-py, relayq.aio.Queue with redis.asyncio: the rules are written once.
Op = Generator[Scripts | Reads, Any, R]


def parse_replies(calls: Sequence[Call[Any]], replies: Sequence[Any]) -> list[Any]:
    """The parsed replies of `calls` (run together)."""
    return [call.parse(reply) for call, reply in zip(calls, replies)]


@contextmanager
def parsing_not_replicated(calls: Sequence[Call[Any]]) -> Iterator[None]:
    """Around a pipeline of `calls`: a NotReplicated raised in it carries parsed replies."""
    try:
        yield
    except NotReplicated as e:
        e.result = parse_replies(calls, e.result)  # type: ignore[attr-defined]
        raise


def run(client: RedisClient, call: Call[R]) -> R:
    """Runs one call; its parsed reply."""
    return call.parse(scripts.run(client, call))


def run_many(client: RedisClient, calls: Sequence[Call[Any]],
             wait: Wait | None = None) -> list[Any]:
    """Runs calls in one round trip per node (each script atomic on its own, not a transaction)
    and ends it with `wait` (Redis WAIT) when given; their parsed replies, in order. A
    NotReplicated carries the parsed replies as its `result`."""
    if wait is None and len(calls) == 1:  # a pipeline costs more than the one call
        return [run(client, calls[0])]
    with parsing_not_replicated(calls):
        replies = scripts.run_pipelined(client, calls, wait)
    return parse_replies(calls, replies)


def _jobs(call: Call[Any]) -> int:
    """Jobs in an enqueue call (ARGV[3]) or an ack call (id, lease, result triples)."""
    return int(call.args[2]) if call.script is ENQUEUE else (len(call.args) - 3) // 3


def group_mergeable(calls: Sequence[Call[Any]], max_jobs: int) -> list[list[int]]:
    """Indexes of `calls` in groups that can run as one call (group commit: see
    relayq.api.group_commit): enqueue calls of one queue together, ack calls of one queue
    with the same result limit together, up to `max_jobs` jobs a group; any other call alone."""
    groups: list[list[int]] = []
    open_groups: dict[tuple[Any, ...], tuple[list[int], int]] = {}
    for i, call in enumerate(calls):
        if call.script is ENQUEUE:
            kind: tuple[Any, ...] = (ENQUEUE.name, call.keys)
        elif call.script is ACK:
            kind = (ACK.name, call.keys, call.args[2])
        else:
            groups.append([i])
            continue
        jobs = _jobs(call)
        group, count = open_groups.get(kind, (None, 0))
        if group is None or count + jobs > max_jobs:
            group, count = [], 0
            groups.append(group)
        group.append(i)
        open_groups[kind] = (group, count + jobs)
    return groups


def merge_calls(calls: Sequence[Call[R]]) -> Call[R]:
    """One call of every job of `calls` (a group of group_mergeable), in order. Enqueue and
    ack are all or nothing on validation: refused, the merged call wrote nothing, and each call
    can run again alone for its own answer."""
    first = calls[0]
    fields = chain.from_iterable(call.args[3:] for call in calls)
    third = str(sum(_jobs(call) for call in calls)) if first.script is ENQUEUE \
        else first.args[2]
    return Call(first.script, first.keys, (*first.args[:2], third, *fields), first.parse)


def split_merged(calls: Sequence[Call[list[Any]]], results: list[Any]) -> list[list[Any]]:
    """The per-job results of a merged call (merge_calls), back to each call's jobs."""
    out, start = [], 0
    for call in calls:
        jobs = _jobs(call)
        out.append(results[start:start + jobs])
        start += jobs
    return out


def refuse(reply: Sequence[Any]) -> None:
    """Raises the exception for a refusal reply: {code, message}. Every script's `not_found`
    is about a job, so it is a JobNotFound."""
    raise error_for(reply[0], reply[1] if len(reply) > 1 else "", about_job=True)


def _ok(reply: Sequence[Any]) -> Sequence[Any]:
    if reply[0] != "ok":
        refuse(reply)
    return reply


def _as_dict(flat: Sequence[str]) -> dict[str, str]:
    it = iter(flat)
    return dict(zip(it, it))


# -- reply types that are not results of relayq.results ----------------------------------------

class Nacked(NamedTuple):
    """nack.lua's reply: `status` ok (then `outcome` says where the job went), not_found, or
    lease_lost (then `current_state` is the job's state)."""

    status: str
    outcome: NackResult | None = None
    current_state: str | None = None


class Cancelled(NamedTuple):
    """cancel.lua's reply: `status` ok (then `state` is 'cancelled', or 'running' for a running
    job whose cancel is now requested), not_found, or conflict (then `state` is why)."""

    status: str
    state: str | None = None


class Heartbeat(NamedTuple):
    """heartbeat.lua's answer for one job: status ok | not_found | lease_lost, the new lease
    deadline (ms, -1 unless ok), and whether the job's cancel was requested."""

    status: str
    deadline_ms: int
    cancel_requested: bool


class Progressed(NamedTuple):
    """progress.lua's reply: status ok | not_found | lease_lost (then `current_state`), and
    whether the job's cancel was requested."""

    status: str
    cancel_requested: bool = False
    current_state: str | None = None


class DeadMoved(NamedTuple):
    """requeue.lua's and purge.lua's reply: how many jobs moved, and a status per id given."""

    moved: int
    statuses: list[str]


class Reaped(NamedTuple):
    requeued: int
    dead: int
    cancelled: int  # running jobs whose cancel was requested before their worker was lost


class Promoted(NamedTuple):
    moved: int
    next_due_in_ms: int | None  # None: nothing is scheduled


class Restored(NamedTuple):
    restored: int
    statuses: list[str]  # per job: ok | present | conflict | expired


class ScheduleChanged(NamedTuple):
    """save_schedule.lua's, delete_schedule.lua's and pause_schedule.lua's reply: `outcome`
    created | updated | unchanged | deleted | paused | resumed, and the revision."""

    outcome: str
    revision: int


class Fired(NamedTuple):
    """fire_schedule.lua's and trigger_schedule.lua's reply: `status` ok (then `ids`: the local
    ids of the jobs made) or conflict (fire only: the schedule moved on or changed since it was
    read: nothing written)."""

    status: str
    ids: list[str]


class DueSchedules(NamedTuple):
    """due_schedules.lua's reply: the Redis clock, the earliest next tick not due yet (None:
    none), and the hash of each schedule read, by id (empty for an unknown id)."""

    now_ms: int
    next_due_ms: int | None
    schedules: dict[str, dict[str, str]]


def _refuse_schedule(reply: Sequence[Any]) -> None:
    """A refusal of a schedule script: its `not_found` is about a schedule."""
    if reply[0] == "not_found":
        raise ScheduleNotFound(reply[1])
    raise error_for(reply[0], reply[1] if len(reply) > 1 else "")


def _schedule_changed(reply: Sequence[Any]) -> ScheduleChanged:
    if reply[0] != "ok":
        _refuse_schedule(reply)
    return ScheduleChanged(reply[1], int(reply[2]))


def _fired(reply: Sequence[Any]) -> Fired:
    if reply[0] == "ok" or reply[0] == "conflict":
        return Fired(reply[0], list(reply[1:]) if reply[0] == "ok" else [])
    _refuse_schedule(reply)
    raise AssertionError  # always raises


def _due(reply: Sequence[Any]) -> DueSchedules:
    _, now, next_due, *flat = _ok(reply)
    it = iter(flat)
    return DueSchedules(int(now), int(next_due) if next_due >= 0 else None,
                        {sid: _as_dict(fields) for sid, fields in zip(it, it)})


def _statuses(reply: Sequence[Any]) -> list[str]:
    """{'ok', status_1, ..., status_N}: a status per job (ack, release)."""
    return list(_ok(reply)[1:])


def _nothing(reply: Sequence[Any]) -> None:
    _ok(reply)


def _nacked(reply: Sequence[Any]) -> Nacked:
    status = reply[0]
    if status == "ok":
        _, state, attempts, run_at = reply
        return Nacked(status, NackResult(state, int(attempts), int(run_at) if run_at else None))
    if status == "not_found":
        return Nacked(status)
    if status == "lease_lost":
        return Nacked(status, current_state=reply[1])
    refuse(reply)
    raise AssertionError  # refuse() always raises


def _heartbeats(reply: Sequence[Any]) -> list[Heartbeat]:
    it = iter(_ok(reply)[1:])
    return [Heartbeat(status, int(deadline), cancel == 1)
            for status, deadline, cancel in zip(it, it, it)]


def _progressed(reply: Sequence[Any]) -> Progressed:
    status = reply[0]
    if status == "ok":
        return Progressed(status, reply[1] == 1)
    if status == "not_found":
        return Progressed(status)
    if status == "lease_lost":
        return Progressed(status, current_state=reply[1])
    refuse(reply)
    raise AssertionError  # refuse() always raises


def _reaped(reply: Sequence[Any]) -> Reaped:
    _, requeued, dead, cancelled = _ok(reply)
    return Reaped(int(requeued), int(dead), int(cancelled))


def _promoted(reply: Sequence[Any]) -> Promoted:
    _, moved, next_due_in_ms = _ok(reply)
    return Promoted(int(moved), int(next_due_in_ms) if next_due_in_ms >= 0 else None)


def _dead_moved(reply: Sequence[Any]) -> DeadMoved:
    moved, *statuses = _ok(reply)[1:]
    return DeadMoved(int(moved), statuses)


def _restored(reply: Sequence[Any]) -> Restored:
    restored, *statuses = _ok(reply)[1:]
    return Restored(int(restored), statuses)


def _cancelled(reply: Sequence[Any]) -> Cancelled:
    status = reply[0]
    if status == "not_found":
        return Cancelled(status)
    if status == "ok" or status == "conflict":
        return Cancelled(status, reply[1])
    refuse(reply)
    raise AssertionError  # refuse() always raises


class QueueCalls:
    """The script calls of one queue. Each method builds one script's call from checked values
    (ids are local ids, the number part of a job id). `decode` turns a claimed job's payload
    (JSON text) into the caller's type."""

    __slots__ = ("name", "keys", "decode", "_head", "_enqueue_keys", "_claim_keys", "_ack_keys",
                 "_nack_keys", "_release_keys", "_stats_keys", "_reap_keys", "_promote_keys",
                 "_requeue_keys", "_cancel_keys", "_meta_keys", "_restore_keys",
                 "_schedule_keys", "_fire_keys")

    def __init__(self, queue: str, decode: Callable[[str], Any] = json.loads) -> None:
        k = QueueKeys(queue)
        self.name = queue
        self.keys = k
        self.decode = decode
        self._head = (k.prefix, queue)  # ARGV[1], ARGV[2] of every script that names its queue
        self._enqueue_keys = (k.meta, k.prios, k.scheduled, k.totals, k.seq, k.wake)
        self._claim_keys = (k.meta, k.prios, k.scheduled, k.running, k.totals, k.wake, k.leases)
        self._ack_keys = (k.meta, k.running, k.succeeded, k.totals)
        self._nack_keys = (k.meta, k.running, k.scheduled, k.prios, k.dead, k.totals, k.wake)
        self._release_keys = (k.meta, k.running, k.prios, k.wake, k.totals)
        self._stats_keys = (k.meta, k.prios, k.scheduled, k.running, k.dead, k.succeeded,
                            k.totals)
        self._reap_keys = (k.meta, k.running, k.prios, k.dead, k.succeeded, k.totals, k.wake)
        self._promote_keys = (k.scheduled, k.prios, k.wake, k.meta)
        self._requeue_keys = (k.meta, k.dead, k.prios, k.wake)
        self._cancel_keys = (k.meta, k.prios, k.scheduled, k.totals)
        self._meta_keys = (k.meta, k.prios, k.wake)
        self._restore_keys = (k.meta, k.prios, k.scheduled, k.dead, k.succeeded, k.seq, k.wake)
        self._schedule_keys = (k.meta, k.schedules, k.due_schedules)
        self._fire_keys = (*self._enqueue_keys, k.due_schedules)

    # -- producing ------------------------------------------------------------------------

    def enqueue(self, fields: Sequence[str]) -> Call[list[EnqueueResult]]:
        """The fields of 1..1000 jobs, flat: per job its payload (JSON text), the ten option
        fields of `JobOptions.script_args()` and its trace ('' for none). All or nothing."""
        args = (*self._head, str(len(fields) // ENQUEUE_FIELDS), *fields)
        return Call(ENQUEUE, self._enqueue_keys, args, self._parse_enqueued)

    def _parse_enqueued(self, reply: Sequence[Any]) -> list[EnqueueResult]:
        """{'ok', id_1, state_1, duplicate_1, ...}"""
        it = iter(_ok(reply)[1:])
        name = self.name
        return [EnqueueResult(make_job_id(name, local), state or None, duplicate == 1)
                for local, state, duplicate in zip(it, it, it)]

    def restore(self, min_sequence: int | None, jobs: Sequence[RestoredJob]) -> Call[Restored]:
        """1..1000 jobs to put back where absent; the id sequence raised to `min_sequence`."""
        args: list[Any] = [*self._head, "" if min_sequence is None else min_sequence, len(jobs)]
        for job in jobs:
            args += ["" if value is None else value for value in job]
        return Call(RESTORE, self._restore_keys, tuple(args), _restored)

    # -- consuming ------------------------------------------------------------------------

    def claim(self, count: int, visibility_ms: int, worker_id: str, nonce: str
              ) -> Call[ClaimResult]:
        """Up to `count` jobs under leases of `visibility_ms`; `nonce` prefixes each lease."""
        return Call(CLAIM, self._claim_keys, (*self._head, count, visibility_ms, worker_id, nonce),
                    self._parse_claimed)

    def _parse_claimed(self, reply: Sequence[Any]) -> ClaimResult:
        status = reply[0]
        if status == "ok":  # {'ok', id_1, fields_1, ...}: the hot path
            name, decode, from_hash = self.name, self.decode, Job.from_hash
            return ClaimResult([from_hash(name, reply[i], _as_dict(reply[i + 1]), decode)
                                for i in range(1, len(reply), 2)])
        if status == "paused":
            return ClaimResult((), status)
        if status == "empty" or status == "throttled":
            retry_in_ms = reply[1]
            return ClaimResult((), status, retry_in_ms if retry_in_ms >= 0 else None)
        refuse(reply)
        raise AssertionError  # refuse() always raises

    def ack(self, max_result_bytes: int, acks: Iterable[tuple[str, str, str]]
            ) -> Call[list[str]]:
        """(local id, lease, result as JSON text or '') per job; a status per job: ok |
        cancelled (its cancel was requested: it ended cancelled, result kept) | not_found |
        lease_lost."""
        args = (*self._head, max_result_bytes, *chain.from_iterable(acks))
        return Call(ACK, self._ack_keys, args, _statuses)

    def nack(self, local_id: str, lease: str, error: str, retry: bool, delay_ms: int | None,
             jitter: str) -> Call[Nacked]:
        """`jitter`: a fraction in [0, 1) as text, picking the point in the backoff window."""
        args = (*self._head, local_id, lease, error, "1" if retry else "0",
                "" if delay_ms is None else delay_ms, jitter)
        return Call(NACK, self._nack_keys, args, _nacked)

    def heartbeat(self, visibility_ms: int, leases: Iterable[tuple[str, str]]
                  ) -> Call[list[Heartbeat]]:
        """(local id, lease) per job; a Heartbeat per job."""
        args = (self.keys.prefix, visibility_ms, *chain.from_iterable(leases))
        return Call(HEARTBEAT, (self.keys.running,), args, _heartbeats)

    def progress(self, local_id: str, lease: str, fraction: float, info_json: str
                 ) -> Call[Progressed]:
        """`fraction` in [0, 1]; `info_json` JSON text or '' for none."""
        args = (*self._head, local_id, lease, repr(float(fraction)), info_json)
        return Call(PROGRESS, (self.keys.meta,), args, _progressed)

    def release(self, leases: Iterable[tuple[str, str]]) -> Call[list[str]]:
        """(local id, lease) per job, handed back without spending an attempt; a status per job:
        ok | cancelled (its cancel was requested: it ended) | not_found | lease_lost."""
        args = (*self._head, *chain.from_iterable(leases))
        return Call(RELEASE, self._release_keys, args, _statuses)

    # -- reading --------------------------------------------------------------------------

    def stats(self) -> Call[QueueStats]:
        return Call(STATS, self._stats_keys, (self.keys.prefix,), self._parse_stats)

    def _parse_stats(self, reply: Sequence[Any]) -> QueueStats:
        (_, ready, scheduled, running, dead, succeeded, paused, rate, burst, totals,
         latency_ms, waiting) = _ok(reply)
        counts = dict.fromkeys(TOTALS, 0)
        counts.update({name: int(v) for name, v in _as_dict(totals).items()})
        return QueueStats(self.name, ready, scheduled, running, dead, succeeded, paused == "1",
                          {"rate": float(rate), "burst": int(burst)} if rate else None, counts,
                          latency_ms, waiting)

    # -- operating ------------------------------------------------------------------------

    def cancel(self, local_id: str) -> Call[Cancelled]:
        return Call(CANCEL, self._cancel_keys, (*self._head, local_id), _cancelled)

    def requeue(self, limit: int, local_ids: Sequence[str] = ()) -> Call[DeadMoved]:
        """The given dead jobs, or without ids up to `limit` of the oldest."""
        return Call(REQUEUE, self._requeue_keys, (*self._head, limit, *local_ids), _dead_moved)

    def purge(self, limit: int, local_ids: Sequence[str] = ()) -> Call[DeadMoved]:
        return Call(PURGE, (self.keys.dead,), (*self._head, limit, *local_ids), _dead_moved)

    def pause(self, paused: bool) -> Call[None]:
        return Call(PAUSE, self._meta_keys, ("1" if paused else "0",), _nothing)

    def rate_limit(self, rate: float | None, burst: int | None) -> Call[None]:
        """Sets the token bucket, or clears it when `rate` is None."""
        args = ("", "") if rate is None else (repr(float(rate)), str(burst))
        return Call(RATE_LIMIT, self._meta_keys, args, _nothing)

    def configure(self, settings: dict[str, Any]) -> Call[None]:
        args = tuple(x for name, value in settings.items() for x in (name, str(value)))
        return Call(CONFIGURE, (self.keys.meta,), args, _nothing)

    # -- maintenance ----------------------------------------------------------------------

    def reap(self, limit: int) -> Call[Reaped]:
        return Call(REAP, self._reap_keys, (*self._head, limit), _reaped)

    def promote(self, limit: int) -> Call[Promoted]:
        return Call(PROMOTE, self._promote_keys, (*self._head, limit), _promoted)

    # -- periodic schedules (relayq/schedules.py) ------------------------------------------

    def save_schedule(self, schedule_id: str, definition: str, template: Sequence[str],
                      start_at: int | None, paused: bool | None, origin: str
                      ) -> Call[ScheduleChanged]:
        """Saves a schedule (an upsert by id): `definition` canonical JSON, `template` the 11
        job fields of enqueue; `paused` None keeps the current state."""
        args = (*self._head, schedule_id, definition, json.dumps(list(template)),
                "" if start_at is None else start_at,
                "" if paused is None else ("1" if paused else "0"), origin)
        return Call(SAVE_SCHEDULE, self._schedule_keys, args, _schedule_changed)

    def delete_schedule(self, schedule_id: str) -> Call[ScheduleChanged]:
        return Call(DELETE_SCHEDULE, self._schedule_keys[1:], (*self._head, schedule_id),
                    _schedule_changed)

    def pause_schedule(self, schedule_id: str, paused: bool) -> Call[ScheduleChanged]:
        """Pauses (or, with `paused` False, resumes) a schedule."""
        return Call(PAUSE_SCHEDULE, (self.keys.due_schedules,),
                    (*self._head, schedule_id, "1" if paused else "0"), _schedule_changed)

    def fire_schedule(self, schedule_id: str, revision: str, expected_next: str,
                      new_next: int | None, ticks: Sequence[int]) -> Call[Fired]:
        """Makes the jobs of `ticks` and moves the next tick to `new_next` (None: no tick is
        left), if the schedule is still at `revision` and `expected_next`."""
        args = (*self._head, schedule_id, revision, expected_next,
                "end" if new_next is None else new_next, len(ticks), *ticks)
        return Call(FIRE_SCHEDULE, self._fire_keys, args, _fired)

    def trigger_schedule(self, schedule_id: str) -> Call[Fired]:
        return Call(TRIGGER_SCHEDULE, self._enqueue_keys, (*self._head, schedule_id), _fired)

    def due_schedules(self, limit: int, ids: Sequence[str] = ()) -> Call[DueSchedules]:
        """The due schedules (at most `limit`), or the schedules `ids` whether due or not."""
        return Call(DUE_SCHEDULES, (self.keys.due_schedules,), (self.keys.prefix, limit, *ids),
                    _due)
