"""`Queue`: every operation on a queue, each one script call (or one pipeline of them).

The HTTP server, the CLI and the worker all go through these methods; none of them talks to
Redis about jobs in any other way. Each method checks its input first (so bad input fails
before anything is sent), builds the script's KEYS and ARGV, runs it, and turns the script's
status into a return value or an exception from `relayq.errors`.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Generic, TypeVar

from . import scripts
from .codec import Codec, codec_for, dumps
from .connection import Client, connect, redis_errors
from .deprecation import deprecated
from .errors import InvalidArgument, InvalidJobId, JobNotFound, NotReplicated, error_for_status
from .job import Job, RestoredJob, make_job_id, parse_job_id
from .keys import QUEUES, QueueKeys, check_queue_name
from .options import (
    DEFAULT_MAX_PAYLOAD_BYTES,
    DEFAULT_OPTIONS,
    TEN_YEARS_MS,
    JobOptions,
    check_int,
    check_json_text,
    check_payload_size,
    check_str,
)
from .replication import DEFAULT_TIMEOUT_MS, Wait, override, wait_for
from .results import (
    TOTALS,
    ClaimResult,
    EnqueueResult,
    NackResult,
    NewJob,
    Outcome,
    QueueStats,
)
from .scripts import ScriptCall

T = TypeVar("T")

BATCH_LIMIT = 1000  # jobs per enqueue script call: all or nothing within one call
RESTORE_BATCH = 50  # jobs per restore script call: a few ms of Redis time each (measured)
DEFAULT_VISIBILITY_MS = 30_000



def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def list_queues(redis: Client) -> list[str]:
    """Names of every queue that has been used, sorted."""
    with redis_errors():
        return sorted(redis.smembers(QUEUES))


def stats_many(redis: Client, names: Sequence[str]) -> list[QueueStats]:
    """Stats of many queues in one round trip (each queue's snapshot is consistent on its own)."""
    queues = [Queue(name, redis) for name in names]
    replies = scripts.run_pipelined(redis, [q.stats_call() for q in queues])
    return [q.parse_stats(reply) for q, reply in zip(queues, replies)]


def _check(reply: Any) -> Any:
    """Raises the exception for a script refusal; returns the reply otherwise."""
    if reply and reply[0] not in ("ok", "empty", "paused", "throttled"):
        raise error_for_status(reply[0], reply[1] if len(reply) > 1 else "")
    return reply


def _as_dict(flat: Sequence[str]) -> dict[str, str]:
    it = iter(flat)
    return dict(zip(it, it))


class Queue(Generic[T]):
    """One named queue. `redis` is a URL or a client from `relayq.connect()`; `payload_type`
    (e.g. a dataclass) picks a codec so that payloads come back typed (`Queue[Order]`).

    `replicas=N`: the replicated-write mode (relayq/replication.py) for enqueue, ack, nack and
    settle; each of those calls can override `replicas` and `replica_timeout_ms`."""

    def __init__(self, name: str, redis: Client | str | None = None, *,
                 payload_type: type[T] | None = None, codec: Codec[T] | None = None,
                 max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES, replicas: int = 0,
                 replica_timeout_ms: int = DEFAULT_TIMEOUT_MS) -> None:
        self.name = check_queue_name(name)
        self.keys = QueueKeys(name)
        self.redis: Client = connect(redis) if redis is None or isinstance(redis, str) else redis
        self.codec: Codec[Any] = codec or codec_for(payload_type)
        self.max_payload_bytes = max_payload_bytes
        self.replication = wait_for(replicas, replica_timeout_ms)
        self._registered = False
        self._id_prefix = name + "."

    def __repr__(self) -> str:
        return f"Queue({self.name!r})"

    @property
    def wait(self) -> Wait | None:
        """Deprecated: `replication`."""
        deprecated("Queue.wait", "Queue.replication")
        return self.replication

    @wait.setter
    def wait(self, value: Wait | None) -> None:
        deprecated("Queue.wait", "Queue.replication")
        self.replication = value

    # -- plumbing -------------------------------------------------------------------------

    def _call(self, name: str, keys: Sequence[str], args: Sequence[Any]) -> ScriptCall:
        return ScriptCall(scripts.script(name), tuple(keys), (self.keys.prefix, self.name, *args))

    def _run(self, call: ScriptCall, wait: Wait | None = None) -> Any:
        if wait is None:
            return _check(scripts.run(self.redis, call))
        return self._pipelined([call], wait, lambda replies: _check(replies[0]))

    def _pipelined(self, calls: list[ScriptCall], wait: Wait | None,
                   parse: Callable[[list[Any]], Any]) -> Any:
        """parse(replies of `calls`); a NotReplicated carries the parsed result."""
        try:
            if wait is None and len(calls) == 1:  # a pipeline object costs more than the call
                return parse([scripts.run(self.redis, calls[0])])
            return parse(scripts.run_pipelined(self.redis, calls, wait))
        except NotReplicated as e:
            e.result = parse(e.result)
            raise

    def _register(self) -> None:
        """Records the queue's name in relayq:queues (once per Queue object)."""
        if not self._registered:
            with redis_errors():
                self.redis.sadd(QUEUES, self.name)
            self._registered = True

    def local_id(self, job_id: str) -> str:
        """The number part of a job id of this queue (InvalidJobId for another queue's job)."""
        if isinstance(job_id, str) and job_id.startswith(self._id_prefix):
            local = job_id[len(self._id_prefix):]
            if local.isascii() and local.isdigit() and len(local) <= 20:
                return local  # the fast path: ids this queue handed out
        queue, local = parse_job_id(job_id)
        if queue != self.name:
            raise InvalidJobId(f"job {job_id} belongs to queue {queue}, not {self.name}")
        return local

    def _job(self, local: str, fields: Sequence[str] | dict[str, str]) -> Job[T]:
        h = fields if isinstance(fields, dict) else _as_dict(fields)
        return Job.from_hash(self.name, local, h, self.codec.decode)

    def _jobs(self, reply: Sequence[Any]) -> list[Job[T]]:
        """Jobs from a claim reply: id, flat hash, id, flat hash, ..."""
        name, decode, from_hash = self.name, self.codec.decode, Job.from_hash
        return [from_hash(name, reply[i], _as_dict(reply[i + 1]), decode)
                for i in range(1, len(reply), 2)]

    # -- producing ------------------------------------------------------------------------

    def enqueue(self, payload: T, *, replicas: int | None = None,
                replica_timeout_ms: int | None = None, **options: Any) -> EnqueueResult:
        """Adds one job. Options: type, priority (0-255, higher first), delay_ms or run_at
        (datetime or epoch ms), max_attempts, idempotency_key, timeout_ms, backoff_base_ms,
        backoff_cap_ms. A duplicate idempotency key creates nothing: `duplicate=True` and the
        original id. `replicas`, `replica_timeout_ms`: override the queue's WAIT."""
        opts = JobOptions(**options) if options else DEFAULT_OPTIONS
        text = check_json_text(check_payload_size(self.codec.encode(payload),
                                                  self.max_payload_bytes))
        self._register()
        call = self._call("enqueue", self._enqueue_keys(), ("1", text, *opts.script_args()))
        return self._pipelined([call], override(self.replication, replicas, replica_timeout_ms),
                               self._parse_enqueue)[0]

    def enqueue_many(self, jobs: Iterable[NewJob[T] | T], *, replicas: int | None = None,
                     replica_timeout_ms: int | None = None) -> list[EnqueueResult]:
        """Adds many jobs in one round trip. Every job is checked before any is written; in
        Redis each call of up to 1000 jobs is all or nothing."""
        wait = override(self.replication, replicas, replica_timeout_ms)
        jobs = [j if isinstance(j, NewJob) else NewJob(j) for j in jobs]
        if not jobs:
            return []
        fields: list[list[str]] = []
        for i, job in enumerate(jobs):
            try:
                text = check_json_text(check_payload_size(self.codec.encode(job.payload),
                                                           self.max_payload_bytes))
                fields.append([text, *job.options.script_args()])
            except InvalidArgument as e:
                if len(jobs) > 1:
                    e.message = f"job {i + 1}: {e.message}"
                    e.args = (e.message,)
                raise
        self._register()
        calls = []
        for start in range(0, len(fields), BATCH_LIMIT):
            chunk = fields[start:start + BATCH_LIMIT]
            args = [str(len(chunk))] + [f for job_fields in chunk for f in job_fields]
            calls.append(self._call("enqueue", self._enqueue_keys(), args))
        return self._pipelined(calls, wait, self._parse_enqueue)

    def _parse_enqueue(self, replies: list[Any]) -> list[EnqueueResult]:
        results = []
        for reply in map(_check, replies):
            for i in range(1, len(reply), 3):
                results.append(EnqueueResult(make_job_id(self.name, reply[i]),
                                             reply[i + 1] or None, reply[i + 2] == 1))
        return results

    def _enqueue_keys(self) -> tuple[str, ...]:
        k = self.keys
        return (k.meta, k.prios, k.scheduled, k.totals, k.seq, k.wake)

    # -- consuming ------------------------------------------------------------------------

    def claim_call(self, count: int = 1, *, visibility_ms: int = DEFAULT_VISIBILITY_MS,
                   worker_id: str | None = None) -> ScriptCall:
        check_int(count, "count", 1, 1000)
        check_int(visibility_ms, "visibility_ms", 1, 86_400_000)
        worker = check_str(worker_id or default_worker_id(), "worker_id", 200)
        k = self.keys
        return self._call("claim", (k.meta, k.prios, k.scheduled, k.running, k.totals, k.wake,
                                    k.leases), (count, visibility_ms, worker, os.urandom(4).hex()))

    def parse_claim(self, reply: Any) -> ClaimResult:
        status = _check(reply)[0]
        if status == "ok":
            return ClaimResult(self._jobs(reply))
        hint = reply[1] if len(reply) > 1 and reply[1] >= 0 else None
        return ClaimResult((), status, hint)

    def claim(self, count: int = 1, *, visibility_ms: int = DEFAULT_VISIBILITY_MS,
              worker_id: str | None = None) -> ClaimResult:
        """Takes up to `count` jobs (highest priority first, FIFO within one), each under a
        fresh lease of `visibility_ms`. Empty when nothing is claimable; see ClaimResult."""
        return self.parse_claim(scripts.run(self.redis, self.claim_call(
            count, visibility_ms=visibility_ms, worker_id=worker_id)))

    def ack(self, job_id: str, lease: str, result: Any = None, *, replicas: int | None = None,
            replica_timeout_ms: int | None = None) -> None:
        """Marks a running job succeeded. LeaseLost if `lease` is no longer the job's lease."""
        status = self.ack_many([(job_id, lease, result)], replicas=replicas,
                               replica_timeout_ms=replica_timeout_ms)[0]
        if status != "ok":
            raise error_for_status(status, f"ack of {job_id} refused: {status}")

    def ack_many(self, acks: Iterable[tuple[str, str, Any]], *, replicas: int | None = None,
                 replica_timeout_ms: int | None = None) -> list[str]:
        """Acks (job_id, lease, result) triples in one call; a status per job
        ('ok' | 'not_found' | 'lease_lost')."""
        return self._run(self._ack_call(
            [(job_id, lease, "" if result is None else dumps(result))
             for job_id, lease, result in acks]),
            override(self.replication, replicas, replica_timeout_ms))[1:]

    def _ack_call(self, acks: list[tuple[str, str, str]], checked: bool = False) -> ScriptCall:
        """`acks`: (job_id, lease, result as JSON text or ''); `checked`: the results have been
        through `_fit` already (settle)."""
        args: list[Any] = [self.max_payload_bytes]
        for job_id, lease, text in acks:
            if text and not checked:
                check_json_text(check_payload_size(text, self.max_payload_bytes, "result"),
                                "result")
            args += [self.local_id(job_id), lease, text]
        k = self.keys
        return self._call("ack", (k.meta, k.running, k.succeeded, k.totals), args)

    def nack(self, job_id: str, lease: str, error: str = "", *, retry: bool = True,
             delay_ms: int | None = None, replicas: int | None = None,
             replica_timeout_ms: int | None = None) -> NackResult:
        """Marks a running job failed: retried after a full-jitter backoff (or `delay_ms`), or
        dead when `retry` is False or its attempts are spent."""
        return self._pipelined([self._nack_call(job_id, lease, error, retry, delay_ms)],
                               override(self.replication, replicas, replica_timeout_ms),
                               lambda replies: self._parse_nack(job_id, replies[0]))

    def _nack_call(self, job_id: str, lease: str, error: str, retry: bool,
                   delay_ms: int | None) -> ScriptCall:
        if not isinstance(error, str):
            raise InvalidArgument("error must be a string")
        if delay_ms is not None:
            check_int(delay_ms, "delay_ms", 0, TEN_YEARS_MS)
        error = error.encode("utf-8", "backslashreplace").decode("utf-8")[:65536]
        k = self.keys
        return self._call("nack", (k.meta, k.running, k.scheduled, k.prios, k.dead, k.totals,
                                   k.wake),
                          (self.local_id(job_id), lease, error, "1" if retry else "0",
                           "" if delay_ms is None else delay_ms,
                           repr(int.from_bytes(os.urandom(7), "big") / 2**56)))

    @staticmethod
    def _parse_nack(job_id: str, reply: Any) -> NackResult:
        if reply[0] == "lease_lost":
            raise error_for_status("lease_lost", f"nack of {job_id} refused: lease lost "
                                   f"(job is {reply[1]})")
        _check(reply)
        return NackResult(reply[1], int(reply[2]), int(reply[3]) if reply[3] else None)

    def heartbeat(self, job_id: str, lease: str, visibility_ms: int = DEFAULT_VISIBILITY_MS) -> int:
        """Extends a running job's lease to now + visibility_ms; returns the new deadline (ms)."""
        status, deadline = self.heartbeat_many([(job_id, lease)], visibility_ms)[0]
        if status != "ok":
            raise error_for_status(status, f"heartbeat of {job_id} refused: {status}")
        return deadline

    def heartbeat_many(self, leases: Iterable[tuple[str, str]],
                       visibility_ms: int = DEFAULT_VISIBILITY_MS) -> list[tuple[str, int]]:
        """Extends many leases in one call: (status, new deadline ms or -1) per job."""
        check_int(visibility_ms, "visibility_ms", 1, 86_400_000)
        args: list[Any] = [visibility_ms]
        for job_id, lease in leases:
            args += [self.local_id(job_id), lease]
        call = ScriptCall(scripts.script("heartbeat"), (self.keys.running,),
                          (self.keys.prefix, *args))
        reply = self._run(call)
        return [(reply[i], int(reply[i + 1])) for i in range(1, len(reply), 2)]

    def _release_call(self, leases: list[tuple[str, str]]) -> ScriptCall:
        k = self.keys
        args = [x for job_id, lease in leases for x in (self.local_id(job_id), lease)]
        return self._call("release", (k.meta, k.running, k.prios, k.wake), args)

    def release_many(self, leases: Iterable[tuple[str, str]]) -> list[str]:
        """Hands running jobs back to the head of the queue without spending an attempt."""
        return self._run(self._release_call(list(leases)))[1:]

    def settle(self, outcomes: Sequence[Outcome], claim: ScriptCall | None = None
               ) -> tuple[list[str], ClaimResult | None]:
        """Records many outcomes and (optionally) claims the next jobs, in one round trip.
        Returns a status per outcome, in order ('ok' | 'not_found' | 'lease_lost'), and the
        claim's result. This is the worker's hot path."""
        outcomes = [self._fit(o) for o in outcomes]
        acks = [(o.job_id, o.lease, o.result_json) for o in outcomes if o.kind == "ack"]
        releases = [(o.job_id, o.lease) for o in outcomes if o.kind == "release"]
        nacks = [o for o in outcomes if o.kind == "nack"]
        calls = ([self._ack_call(acks, checked=True)] if acks else []) + [
            self._nack_call(o.job_id, o.lease, o.error, o.retry, o.delay_ms) for o in nacks
        ] + ([self._release_call(releases)] if releases else []) + ([claim] if claim else [])
        if not calls:
            return [], None
        wait = self.replication if acks or nacks else None
        return self._pipelined(calls, wait, lambda replies: self._parse_settle(
            outcomes, replies, acks, nacks, releases, claim))

    def _parse_settle(self, outcomes: list[Outcome], replies: list[Any], acks: list[Any],
                      nacks: list[Outcome], releases: list[Any], claim: ScriptCall | None
                      ) -> tuple[list[str], ClaimResult | None]:
        replies = list(replies)
        ack_statuses = iter(_check(replies.pop(0))[1:] if acks else [])
        nack_statuses = iter(r[0] for r in replies[:len(nacks)])
        del replies[:len(nacks)]
        release_statuses = iter(_check(replies.pop(0))[1:] if releases else [])
        claimed = self.parse_claim(replies[0]) if claim else None
        by_kind = {"ack": ack_statuses, "nack": nack_statuses, "release": release_statuses}
        return [next(by_kind[o.kind]) for o in outcomes], claimed

    def _fit(self, outcome: Outcome) -> Outcome:
        """An ack whose result is over the size limit or nested too deep becomes a failure
        that names why."""
        if outcome.kind != "ack" or not outcome.result_json:
            return outcome
        try:
            if len(outcome.result_json) > self.max_payload_bytes // 4:
                check_payload_size(outcome.result_json, self.max_payload_bytes, "result")
            check_json_text(outcome.result_json, "result")
        except InvalidArgument as e:
            return outcome._replace(kind="nack", result_json="", retry=False, error=e.message)
        return outcome

    # -- reading --------------------------------------------------------------------------

    def get(self, job_id: str) -> Job[T]:
        """The job with this id; JobNotFound when there is none (or it has expired)."""
        local = self.local_id(job_id)
        with redis_errors():
            h = self.redis.hgetall(self.keys.job(local))
        if not h:
            raise JobNotFound(f"job {job_id} not found")
        return self._job(local, h)

    def stats(self) -> QueueStats:
        return self.parse_stats(scripts.run(self.redis, self.stats_call()))

    def stats_call(self) -> ScriptCall:
        """The stats script call, to run alone or pipelined with other queues' (`stats_many`)."""
        k = self.keys
        return ScriptCall(scripts.script("stats"), (
            k.meta, k.prios, k.scheduled, k.running, k.dead, k.succeeded, k.totals), (k.prefix,))

    def parse_stats(self, r: Any) -> QueueStats:
        totals = {name: 0 for name in TOTALS}
        totals.update({name: int(v) for name, v in _as_dict(r[9]).items()})
        rate_limit = {"rate": float(r[7]), "burst": int(r[8])} if r[7] else None
        return QueueStats(self.name, r[1], r[2], r[3], r[4], r[5], r[6] == "1", rate_limit,
                          totals, r[10] if r[10] >= 0 else None)

    def dead(self, limit: int = 50, cursor: str | None = None) -> tuple[list[Job[T]], str | None]:
        """Dead jobs, most recent first: a page of up to `limit` and the cursor of the next
        page (None at the end)."""
        check_int(limit, "limit", 1, 1000)
        offset = 0
        if cursor is not None:
            if not (isinstance(cursor, str) and cursor.isdigit()) or len(cursor) > 12:
                raise InvalidArgument(f"invalid cursor {cursor!r}")
            offset = int(cursor)
        with redis_errors():
            ids = self.redis.zrevrange(self.keys.dead, offset, offset + limit)
            pipe = self.redis.pipeline(transaction=False)
            for local in ids[:limit]:
                pipe.hgetall(self.keys.job(local))
            hashes = pipe.execute()
        jobs = [self._job(local, h) for local, h in zip(ids, hashes) if h]
        return jobs, str(offset + limit) if len(ids) > limit else None

    # -- operating ------------------------------------------------------------------------

    def restore(self, jobs: Sequence[RestoredJob], *, min_sequence: int | None = None
                ) -> list[str]:
        """Puts jobs back as they were (from a snapshot), each only if its id is absent: a status
        per job, 'ok' | 'present' | 'conflict' (the id holds another job) | 'expired' (finished
        and past its retention). Running jobs come back ready. The id sequence is raised to
        `min_sequence`. Each script call (50 jobs) is checked whole before anything is
        written."""
        if not jobs:
            return []
        self._register()
        k = self.keys
        keys = (k.meta, k.prios, k.scheduled, k.dead, k.succeeded, k.seq, k.wake)
        calls = []
        for start in range(0, len(jobs), RESTORE_BATCH):
            chunk = jobs[start:start + RESTORE_BATCH]
            args = ["" if min_sequence is None else min_sequence, len(chunk)]
            for job in chunk:
                args += ["" if value is None else value for value in job]
            calls.append(self._call("restore", keys, args))
        return [s for reply in scripts.run_pipelined(self.redis, calls) for s in _check(reply)[2:]]

    def cancel(self, job_id: str) -> None:
        """Cancels a ready or scheduled job. Conflict when it is running or finished."""
        k = self.keys
        reply = scripts.run(self.redis, self._call(
            "cancel", (k.meta, k.prios, k.scheduled, k.totals), (self.local_id(job_id),)))
        if reply[0] == "conflict":
            raise error_for_status("conflict", f"job {job_id} is {reply[1]}: only ready or "
                                   "scheduled jobs can be cancelled")
        if reply[0] == "not_found":
            raise JobNotFound(f"job {job_id} not found")
        _check(reply)

    def requeue_dead_job(self, job_id: str) -> None:
        """Moves one dead job back to ready with its attempts reset; JobNotFound when it is
        not dead."""
        self._dead_op("requeue", job_id, 1)

    def purge_dead_job(self, job_id: str) -> None:
        """Deletes one dead job for good; JobNotFound when it is not dead."""
        self._dead_op("purge", job_id, 1)

    def requeue_all_dead(self) -> int:
        """Requeues every dead job, in calls of 1000 so that Redis never blocks for long."""
        return self._repeat("requeue")

    def purge_all_dead(self) -> int:
        """Deletes every dead job, in calls of 1000."""
        return self._repeat("purge")

    def requeue_dead(self, job_id: str | None = None, *, limit: int = 1000) -> int:
        """Deprecated: `requeue_dead_job(id)` for one job, `requeue_all_dead()` for all."""
        deprecated("Queue.requeue_dead", "requeue_dead_job(id) or requeue_all_dead()")
        return self._dead_op("requeue", job_id, limit)

    def purge_dead(self, job_id: str | None = None, *, limit: int = 1000) -> int:
        """Deprecated: `purge_dead_job(id)` for one job, `purge_all_dead()` for all."""
        deprecated("Queue.purge_dead", "purge_dead_job(id) or purge_all_dead()")
        return self._dead_op("purge", job_id, limit)

    def _repeat(self, name: str) -> int:
        total = 0
        while moved := self._dead_op(name, None, 1000):
            total += moved
        return total

    def _dead_op(self, name: str, job_id: str | None, limit: int) -> int:
        check_int(limit, "limit", 1, 10000)
        ids = () if job_id is None else (self.local_id(job_id),)
        k = self.keys
        keys = (k.meta, k.dead, k.prios, k.wake) if name == "requeue" else (k.dead,)
        reply = self._run(self._call(name, keys, (limit, *ids)))
        if job_id is not None and reply[2] != "ok":
            raise JobNotFound(f"no dead job {job_id}")
        return int(reply[1])

    def pause(self) -> None:
        """Stops handing out jobs (enqueues still succeed) until `resume()`."""
        self._register()
        self._run(ScriptCall(scripts.script("pause"), self._meta_keys(), ("1",)))

    def resume(self) -> None:
        self._register()
        self._run(ScriptCall(scripts.script("pause"), self._meta_keys(), ("0",)))

    def set_rate_limit(self, rate: float, burst: int | None = None) -> None:
        """At most `rate` jobs per second handed out, in bursts of up to `burst` (default: one
        second's worth, at least 1). Enforced atomically by the claim script."""
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 < rate <= 1e6:
            raise InvalidArgument("rate must be a number greater than 0 and at most 1000000")
        burst = max(1, int(rate)) if burst is None else check_int(burst, "burst", 1, 1_000_000)
        self._register()
        self._run(ScriptCall(scripts.script("rate_limit"), self._meta_keys(),
                             (repr(float(rate)), str(burst))))

    def clear_rate_limit(self) -> None:
        self._run(ScriptCall(scripts.script("rate_limit"), self._meta_keys(), ("", "")))

    def _meta_keys(self) -> tuple[str, ...]:
        return (self.keys.meta, self.keys.prios, self.keys.wake)

    def configure(self, **settings: int) -> None:
        """Changes the queue's defaults for new jobs and its retention: max_attempts,
        backoff_base_ms, backoff_cap_ms, succeeded_ttl_ms, dead_ttl_ms, idempotency_ttl_ms,
        max_payload_bytes."""
        if not settings:
            raise InvalidArgument("configure needs at least one setting")
        args = [x for name, value in settings.items() for x in (name, str(value))]
        self._run(ScriptCall(scripts.script("configure"), (self.keys.meta,), tuple(args)))
        self._register()  # after: the script checks the values (a refusal lists nothing)

    # -- maintenance (the worker's reaper and promoter) ------------------------------------

    def pass_wake(self) -> None:
        """Leaves a wake-up token for another idle worker (one this worker took but cannot use).
        At worst the wake list holds two tokens for a moment: a spare wake-up, nothing more."""
        with redis_errors():
            self.redis.rpush(self.keys.wake, "1")

    def reap(self, limit: int = 1000) -> tuple[int, int]:
        """Recovers jobs whose lease expired: (requeued, dead)."""
        k = self.keys
        reply = self._run(self._call("reap", (k.meta, k.running, k.prios, k.dead, k.succeeded,
                                              k.totals, k.wake), (limit,)))
        return int(reply[1]), int(reply[2])

    def promote(self, limit: int = 1000) -> tuple[int, int | None]:
        """Moves due scheduled jobs to ready: (moved, ms until the next is due or None)."""
        k = self.keys
        reply = self._run(self._call("promote", (k.scheduled, k.prios, k.wake, k.meta), (limit,)))
        return int(reply[1]), (int(reply[2]) if reply[2] >= 0 else None)
