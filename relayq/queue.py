"""`Queue`: every operation on a queue, each one script call (or one pipeline of them).

The HTTP server, the CLI and the worker all go through these methods; none of them talks to
Redis about jobs in any other way. Each method checks its input first (so bad input fails
before anything is sent), has the protocol layer (relayq/protocol.py) build the script's call,
runs it, and turns the parsed reply into a return value or an exception from `relayq.errors`.

The operations are written once, without I/O, in `QueueOps`: each is a generator (`Op`) that
yields the steps it needs (`Scripts` to run, `Reads` to make) and is sent their replies.
`Queue` drives them with redis-py, `relayq.aio.Queue` with redis.asyncio; a driver only does
I/O, so the two cannot disagree on a rule. (A generator costs about a microsecond an
operation, against tens for the round trip: see the commit that introduced it for the bench.)
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Generic, TypeVar

from . import events as event_log
from . import listing, protocol, tracing, workflows
from .codec import Codec, codec_for, dumps
from .connection import RedisClient, connect, redis_errors
from .deprecation import deprecated
from .errors import (
    Conflict,
    InvalidArgument,
    InvalidJobId,
    JobNotFound,
    LeaseLost,
    NotReplicated,
    RelayqError,
    error_for,
)
from .job import Job, RestoredJob, parse_job_id
from .keys import QUEUES, SCHEDULED_QUEUES, check_queue_name
from .limits import (
    BATCH_LIMIT,
    DEFAULT_MAX_PAYLOAD_BYTES,
    DEFAULT_PAGE,
    DEFAULT_VISIBILITY_MS,
    EVENTS_PAGE,
    MAX_BURST,
    MAX_CLAIM_COUNT,
    MAX_DURATION_MS,
    MAX_ERROR_BYTES,
    MAX_JOB_ID_DIGITS,
    MAX_RATE,
    MAX_SWEEP_LIMIT,
    MAX_VISIBILITY_MS,
    MAX_WORKER_ID_BYTES,
    MIN_RATE,
    OUTBOX_BATCH,
    SETTING_DEFAULTS,
    SWEEP_LIMIT,
    settings_value,
)
from .options import (
    DEFAULT_OPTIONS,
    JobOptions,
    check_fraction,
    check_int,
    check_json_text,
    check_payload_size,
    check_str,
)
from .protocol import Call, Op, QueueCalls, Reads, Scripts
from .queue_groups import GroupOperations, GroupOps
from .queue_schedules import ScheduleOperations, ScheduleOps
from .replication import DEFAULT_TIMEOUT_MS, Wait, override, wait_for
from .results import ClaimResult, EnqueueResult, NackResult, NewJob, Outcome, QueueStats
from .schedules import FireReport
from .steps import Sleep, drive
from .waiting import until_finished

T = TypeVar("T")
R = TypeVar("R")

RESTORE_BATCH = 50  # jobs per restore script call: a few ms of Redis time each (measured)


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def list_queues(redis: RedisClient) -> list[str]:
    """Names of every queue that has been used, sorted."""
    with redis_errors():
        return sorted(redis.smembers(QUEUES))


def stats_many(redis: RedisClient, names: Sequence[str]) -> list[QueueStats]:
    """Stats of many queues in one round trip (each queue's snapshot is consistent on its own)."""
    return protocol.run_many(redis, [QueueCalls(name).stats() for name in names])


def list_scheduled_queues(redis: RedisClient) -> list[str]:
    """Names of the queues that have had a periodic schedule, sorted (never shrinks: a queue
    whose schedules were all deleted costs a firer one read of a missing key per round)."""
    with redis_errors():
        return sorted(redis.smembers(SCHEDULED_QUEUES))


def fire_schedules_many(redis: RedisClient, names: Sequence[str]) -> dict[str, FireReport]:
    """Fires the due schedule ticks of many queues (relayq-server's loop): one round trip reads
    what is due in every queue; only the queues with something due are fired. The reports of
    those, by queue."""
    calls = [QueueCalls(name).due_schedules(1) for name in names]
    reports = {}
    for name, due in zip(names, protocol.run_many(redis, calls) if calls else []):
        if due.schedules:
            reports[name] = Queue(name, redis).fire_schedules()
    return reports


def _refused(status: str, message: str) -> RelayqError:
    """The exception for a job's refusal status in a reply (lease_lost, not_found, ...)."""
    return error_for(status, message, about_job=True)


class QueueOps(ScheduleOps, GroupOps, Generic[T]):
    """Every operation of a queue, without I/O: input checks, the calls built through
    relayq.protocol, the replies turned into results or exceptions. `Queue` (redis-py) and
    `relayq.aio.Queue` (redis.asyncio) drive these generators; see the module's docstring."""

    def __init__(self, name: str, *, payload_type: type[T] | None = None,
                 codec: Codec[T] | None = None,
                 max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES, replicas: int = 0,
                 replica_timeout_ms: int = DEFAULT_TIMEOUT_MS) -> None:
        self.name = check_queue_name(name)
        self.codec: Codec[Any] = codec or codec_for(payload_type)
        self._calls = QueueCalls(name, self.codec.decode)
        self.keys = self._calls.keys
        self.max_payload_bytes = max_payload_bytes
        self.replication = wait_for(replicas, replica_timeout_ms)
        self._registered = False
        self._id_prefix = name + "."

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    def _register(self) -> Op[None]:
        """Records the queue's name in relayq:queues (once per Queue object)."""
        if not self._registered:
            yield Reads([("SADD", QUEUES, self.name)])
            self._registered = True

    def local_id(self, job_id: str) -> str:
        """The number part of a job id of this queue (InvalidJobId for another queue's job)."""
        if isinstance(job_id, str) and job_id.startswith(self._id_prefix):
            local = job_id[len(self._id_prefix):]
            if local.isascii() and local.isdigit() and len(local) <= MAX_JOB_ID_DIGITS:
                return local  # the fast path: ids this queue handed out
        queue, local = parse_job_id(job_id)
        if queue != self.name:
            raise InvalidJobId(f"job {job_id} belongs to queue {queue}, not {self.name}")
        return local

    def _job(self, local: str, h: dict[str, str]) -> Job[T]:
        return Job.from_hash(self.name, local, h, self.codec.decode)

    # -- producing ------------------------------------------------------------------------

    def _enqueue(self, payload: T, replicas: int | None, replica_timeout_ms: int | None,
                 options: dict[str, Any]) -> Op[EnqueueResult]:
        opts = JobOptions(**options) if options else DEFAULT_OPTIONS
        text = check_json_text(check_payload_size(self.codec.encode(payload),
                                                  self.max_payload_bytes))
        with tracing.enqueue_span(self.name, opts.type, 1) as trace:
            wait = override(self.replication, replicas, replica_timeout_ms)
            if opts.depends_on is not None or opts.on_parent_failure is not None:  # workflows
                return (yield from self._enqueue_dependent([[text, *opts.script_args(), trace]],
                                                           [opts], wait))[0]
            call = self._calls.enqueue((text, *opts.script_args(), trace))
            if wait is None:
                result = (yield Scripts((call,)))[0][0]
                if not self._registered:
                    yield from self._register()
                return result
            return (yield from self._enqueued([call], wait))[0][0]

    def _enqueue_many(self, jobs: Iterable[NewJob[T] | T], replicas: int | None,
                      replica_timeout_ms: int | None) -> Op[list[EnqueueResult]]:
        wait = override(self.replication, replicas, replica_timeout_ms)
        jobs = [j if isinstance(j, NewJob) else NewJob(j) for j in jobs]
        if not jobs:
            return []
        # the span's type: the batch's one type, if it has one (not yet checked: compared, not
        # hashed, so that a bad one is refused by the checks below and not by a TypeError here)
        first = jobs[0].options.type
        same = isinstance(first, str) and all(job.options.type == first for job in jobs)
        # the span is open while the jobs are checked: a refused batch is a failed enqueue
        with tracing.enqueue_span(self.name, first if same else None, len(jobs)) as trace:
            fields = self._job_fields(jobs, trace)
            if workflows.has_dependencies(job.options for job in jobs):
                return (yield from self._enqueue_dependent(fields, [j.options for j in jobs],
                                                           wait))
            return (yield from self._enqueued(self._enqueue_calls(fields), wait))[0]

    def _push(self, payloads: list[T]) -> Op[tuple[list[EnqueueResult], int]]:
        """Jobs of `payloads` (no options), and how many jobs are ready right after them, in
        one round trip: what a Redis list's LPUSH answers (the RESP gateway). The count is read
        by the stats script just after the enqueue, so it may include other clients' jobs."""
        jobs: list[NewJob[T]] = [NewJob(payload) for payload in payloads]
        with tracing.enqueue_span(self.name, None, len(jobs)) as trace:
            calls = self._enqueue_calls(self._job_fields(jobs, trace))
            results, (stats,) = yield from self._enqueued(calls, self.replication,
                                                          (self._calls.stats(),))
        return results, stats.ready

    def _job_fields(self, jobs: list[NewJob[T]], trace: str) -> list[list[str]]:
        """Each job's fields for enqueue.lua, checked here first (InvalidArgument; in a batch,
        naming the job)."""
        fields: list[list[str]] = []
        for i, job in enumerate(jobs):
            try:
                text = check_json_text(check_payload_size(self.codec.encode(job.payload),
                                                           self.max_payload_bytes))
                fields.append([text, *job.options.script_args(), trace])
            except InvalidArgument as e:
                if len(jobs) > 1:
                    e.message = f"job {i + 1}: {e.message}"
                    e.args = (e.message,)
                raise
        return fields

    def _enqueue_calls(self, fields: list[list[str]]) -> list[Call[list[EnqueueResult]]]:
        """enqueue.lua calls of at most BATCH_LIMIT jobs each."""
        return [self._calls.enqueue([f for job_fields in fields[start:start + BATCH_LIMIT]
                                     for f in job_fields])
                for start in range(0, len(fields), BATCH_LIMIT)]

    def _enqueue_dependent(self, fields: list[list[str]], options: list[JobOptions], wait: Any
                           ) -> Op[list[EnqueueResult]]:
        """Jobs some of which have parents (relayq/workflows.py)."""
        results = yield from workflows.enqueue_dependent(self.name, fields, options, wait)
        yield from self._register()
        return results

    def _enqueued(self, calls: list[Call[list[EnqueueResult]]], wait: Any,
                  after: Sequence[Call[Any]] = ()) -> Op[tuple[list[EnqueueResult], list[Any]]]:
        """The results of enqueue calls, in order, and the replies of `after`: calls sent behind
        them in the same round trip. A NotReplicated carries the results. The queue is listed
        once the scripts accepted the jobs, so a refused call leaves no name behind."""
        try:
            replies = yield Scripts((*calls, *after), wait)
        except NotReplicated as e:
            e.result = [r for rs in e.result[:len(calls)] for r in rs]  # type: ignore[attr-defined]
            yield from self._register()  # written, only short of replicas
            raise
        yield from self._register()
        return [r for rs in replies[:len(calls)] for r in rs], list(replies[len(calls):])

    # -- consuming ------------------------------------------------------------------------

    def claim_call(self, count: int, visibility_ms: int, worker_id: str | None
                   ) -> Call[ClaimResult]:
        """A claim as a script call, checked: run by `claim` and `settle`, and sent by the
        worker's waker on a connection of its own, behind its BLPOP (relayq.wake)."""
        check_int(count, "count", 1, MAX_CLAIM_COUNT)
        check_int(visibility_ms, "visibility_ms", 1, MAX_VISIBILITY_MS)
        worker = check_str(worker_id or default_worker_id(), "worker_id", MAX_WORKER_ID_BYTES)
        return self._calls.claim(count, visibility_ms, worker, os.urandom(4).hex())

    def _claim(self, count: int, visibility_ms: int, worker_id: str | None) -> Op[ClaimResult]:
        started = tracing.clock()
        claimed = (yield Scripts((self.claim_call(count, visibility_ms, worker_id),)))[0]
        if started:
            tracing.claimed(self.name, claimed, started)
        return claimed

    def _ack(self, job_id: str, lease: str, result: Any, replicas: int | None,
             replica_timeout_ms: int | None) -> Op[str]:
        status = (yield from self._ack_many([(job_id, lease, result)], replicas,
                                            replica_timeout_ms))[0]
        if status == "cancelled":
            return status
        if status != "ok":
            raise _refused(status, f"ack of {job_id} refused: {status}")
        return "succeeded"

    def _ack_many(self, acks: Iterable[tuple[str, str, Any]], replicas: int | None,
                  replica_timeout_ms: int | None) -> Op[list[str]]:
        call = self._ack_call([(job_id, lease, "" if result is None else dumps(result))
                               for job_id, lease, result in acks])
        return (yield Scripts((call,), override(self.replication, replicas,
                                                replica_timeout_ms)))[0]

    def _ack_call(self, acks: list[tuple[str, str, str]], checked: bool = False
                  ) -> Call[list[str]]:
        """`acks`: (job_id, lease, result as JSON text or ''); `checked`: the results have been
        through `_fit` already (settle)."""
        if not checked:
            for _, _, text in acks:
                if text:
                    check_json_text(check_payload_size(text, self.max_payload_bytes, "result"),
                                    "result")
        return self._calls.ack(self.max_payload_bytes, [
            (self.local_id(job_id), lease, text) for job_id, lease, text in acks])

    def _nack(self, job_id: str, lease: str, error: str, retry: bool, delay_ms: int | None,
              replicas: int | None, replica_timeout_ms: int | None) -> Op[NackResult]:
        call = self._nack_call(job_id, lease, error, retry, delay_ms)
        wait = override(self.replication, replicas, replica_timeout_ms)
        try:
            nacked = (yield Scripts((call,), wait))[0]
        except NotReplicated as e:
            e.result = self._nack_result(job_id, e.result[0])  # type: ignore[attr-defined]
            raise
        return self._nack_result(job_id, nacked)

    @staticmethod
    def _nack_result(job_id: str, nacked: protocol.Nacked) -> NackResult:
        if nacked.outcome is not None:
            return nacked.outcome
        if nacked.status == "lease_lost":
            raise LeaseLost(f"nack of {job_id} refused: lease lost (job is "
                            f"{nacked.current_state})")
        raise JobNotFound(f"nack of {job_id} refused: {nacked.status}")

    def _nack_call(self, job_id: str, lease: str, error: str, retry: bool,
                   delay_ms: int | None) -> Call[protocol.Nacked]:
        if not isinstance(error, str):
            raise InvalidArgument("error must be a string")
        if delay_ms is not None:
            check_int(delay_ms, "delay_ms", 0, MAX_DURATION_MS)
        error = error.encode("utf-8", "backslashreplace").decode("utf-8")[:MAX_ERROR_BYTES]
        return self._calls.nack(self.local_id(job_id), lease, error, retry, delay_ms,
                                repr(int.from_bytes(os.urandom(7), "big") / 2**56))

    def _beat(self, job_id: str, lease: str, visibility_ms: int) -> Op[protocol.Heartbeat]:
        beat = (yield from self._heartbeat_many([(job_id, lease)], visibility_ms))[0]
        if beat.status != "ok":
            raise _refused(beat.status, f"heartbeat of {job_id} refused: {beat.status}")
        return beat

    def _heartbeat(self, job_id: str, lease: str, visibility_ms: int) -> Op[int]:
        return (yield from self._beat(job_id, lease, visibility_ms)).deadline_ms

    def _heartbeat_many(self, leases: Iterable[tuple[str, str]], visibility_ms: int
                        ) -> Op[list[protocol.Heartbeat]]:
        check_int(visibility_ms, "visibility_ms", 1, MAX_VISIBILITY_MS)
        return (yield Scripts((self._calls.heartbeat(visibility_ms, [
            (self.local_id(job_id), lease) for job_id, lease in leases]),)))[0]

    def _release_call(self, leases: list[tuple[str, str]]) -> Call[list[str]]:
        return self._calls.release([(self.local_id(job_id), lease) for job_id, lease in leases])

    def _release_many(self, leases: Iterable[tuple[str, str]]) -> Op[list[str]]:
        return (yield Scripts((self._release_call(list(leases)),)))[0]

    def _settle(self, outcomes: Sequence[Outcome], claim: int, visibility_ms: int,
                worker_id: str | None) -> Op[tuple[list[str], ClaimResult | None]]:
        claim_call = self.claim_call(claim, visibility_ms, worker_id) if claim else None
        outcomes = [self._fit(o) for o in outcomes]
        acks = [(o.job_id, o.lease, o.result_json) for o in outcomes if o.kind == "ack"]
        releases = [(o.job_id, o.lease) for o in outcomes if o.kind == "release"]
        nacks = [o for o in outcomes if o.kind == "nack"]
        calls: list[Call[Any]] = ([self._ack_call(acks, checked=True)] if acks else []) + [
            self._nack_call(o.job_id, o.lease, o.error, o.retry, o.delay_ms) for o in nacks
        ] + ([self._release_call(releases)] if releases else []) + (
            [claim_call] if claim_call else [])
        if not calls:
            return [], None
        wait = self.replication if acks or nacks else None
        started = tracing.clock() if claim_call else 0
        try:
            replies = yield Scripts(calls, wait)
        except NotReplicated as e:
            e.result = self._settled(outcomes, e.result, acks, nacks,  # type: ignore[attr-defined]
                                     releases, claim_call)
            raise
        settled = self._settled(outcomes, replies, acks, nacks, releases, claim_call)
        if started and settled[1] is not None:
            tracing.claimed(self.name, settled[1], started)
        return settled

    @staticmethod
    def _settled(outcomes: list[Outcome], replies: list[Any], acks: list[Any],
                 nacks: list[Outcome], releases: list[Any], claim: Call[Any] | None
                 ) -> tuple[list[str], ClaimResult | None]:
        """The replies of settle's calls (acks, each nack, releases, claim) as a status per
        outcome, in the outcomes' order, and the claim's result."""
        replies = list(replies)
        ack_statuses = iter(replies.pop(0) if acks else [])
        nack_statuses = iter(nacked.status for nacked in replies[:len(nacks)])
        del replies[:len(nacks)]
        release_statuses = iter(replies.pop(0) if releases else [])
        claimed = replies[0] if claim else None
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

    def _get(self, job_id: str) -> Op[Job[T]]:
        local = self.local_id(job_id)
        h, history = yield from listing.read_history(self.keys, local)
        if not h:
            raise JobNotFound(f"job {job_id} not found")
        job = self._job(local, h)
        job.history = history
        if h.get("ch") == "1":  # workflows: its children
            job.children = yield from workflows.read_children(self.name, local)
        return job

    def _wait(self, job_id: str, timeout: float, poll_s: float,
              on_change: Callable[[Job[T]], None] | None) -> Op[Job[T]]:
        return (yield from until_finished(lambda: self._get(job_id), timeout, poll_s, on_change))

    def _stats(self) -> Op[QueueStats]:
        return (yield Scripts((self._calls.stats(),)))[0]

    def _jobs(self, state: str, limit: int, cursor: str | None, search: str | None
              ) -> Op[tuple[list[Job[T]], str | None]]:
        return (yield from listing.list_jobs(self.keys, self.name, self._job, state, limit,
                                             cursor, search))

    # -- operating ------------------------------------------------------------------------

    def _restore(self, jobs: Sequence[RestoredJob], min_sequence: int | None) -> Op[list[str]]:
        if not jobs:
            return []
        calls = [self._calls.restore(min_sequence, jobs[start:start + RESTORE_BATCH])
                 for start in range(0, len(jobs), RESTORE_BATCH)]
        statuses = [s for restored in (yield Scripts(calls, None)) for s in restored.statuses]
        yield from self._register()  # after: a refused restore lists nothing
        return statuses

    def _cancel(self, job_id: str) -> Op[str]:
        cancelled = (yield Scripts((self._calls.cancel(self.local_id(job_id)),)))[0]
        if cancelled.status == "conflict":
            raise Conflict(f"job {job_id} is {cancelled.state}: a finished job cannot be "
                           "cancelled")
        if cancelled.status == "not_found":
            raise JobNotFound(f"job {job_id} not found")
        return cancelled.state or "cancelled"

    def _progress(self, job_id: str, lease: str, fraction: float, info: Any) -> Op[bool]:
        fraction = check_fraction(fraction)
        info_json = ""
        if info is not None:
            info_json = check_json_text(
                check_payload_size(dumps(info), self.max_payload_bytes, "progress info"),
                "progress info")
        progressed = (yield Scripts((self._calls.progress(self.local_id(job_id), lease,
                                                          fraction, info_json),)))[0]
        if progressed.status != "ok":
            raise _refused(progressed.status, f"progress of {job_id} refused: "
                           f"{progressed.current_state or progressed.status}")
        return progressed.cancel_requested

    def _repeat(self, build: Any) -> Op[int]:
        total = 0
        while moved := (yield from self._dead_op(build, None, SWEEP_LIMIT)):
            total += moved
        return total

    def _dead_op(self, build: Any, job_id: str | None, limit: int) -> Op[int]:
        check_int(limit, "limit", 1, MAX_SWEEP_LIMIT)
        ids = () if job_id is None else (self.local_id(job_id),)
        done = (yield Scripts((build(limit, ids),)))[0]
        if job_id is not None and done.statuses[0] != "ok":
            raise JobNotFound(f"no dead job {job_id}")
        return done.moved

    def _script(self, call: Call[Any], register: bool = False) -> Op[Any]:
        """One call; the queue listed after it when `register` (a refusal lists nothing)."""
        reply = (yield Scripts((call,)))[0]
        if register:
            yield from self._register()
        return reply

    def _rate_limit_call(self, rate: float, burst: int | None) -> Call[Any]:
        if (isinstance(rate, bool) or not isinstance(rate, (int, float))
                or not MIN_RATE <= rate <= MAX_RATE):
            raise InvalidArgument(f"rate must be a number between {MIN_RATE:g} and {MAX_RATE} "
                                  "(jobs per second)")
        burst = max(1, int(rate)) if burst is None else check_int(burst, "burst", 1, MAX_BURST)
        return self._calls.rate_limit(rate, burst)

    def _configure_call(self, settings: dict[str, int]) -> Call[Any]:
        if not settings:
            raise InvalidArgument("configure needs at least one setting")
        return self._calls.configure(settings)

    def _settings(self) -> Op[dict[str, float]]:
        names = list(SETTING_DEFAULTS)
        (values,) = yield Reads([("HMGET", self.keys.meta, *names)])
        return {name: settings_value(name, value) for name, value in zip(names, values)}

    def _move_workflow_facts(self) -> Op[int]:
        # (the fact movers, which ask every queue every round, skip a queue with no outbox and
        # no links under way with one pipelined EXISTS for all: relayq/worker/fact_mover.py)
        total = 0
        while (moved := (yield from workflows.move_facts(self.name))) > 0:
            total += moved  # a full read: more may wait (a parent with many children)
            if moved < OUTBOX_BATCH:
                break
        return total + (yield from workflows.relink(self.name))

    def _pass_wake(self) -> Op[None]:
        yield Reads([("RPUSH", self.keys.wake, "1")])


class Queue(ScheduleOperations, GroupOperations, QueueOps[T]):
    """One named queue. `redis` is a URL or a client from `relayq.connect()`; `payload_type`
    (e.g. a dataclass) picks a codec so that payloads come back typed (`Queue[Order]`).

    `replicas=N`: the replicated-write mode (relayq/replication.py) for enqueue, ack, nack and
    settle; each of those calls can override `replicas` and `replica_timeout_ms`. The periodic
    schedule operations (`schedule`, `schedules`, ...) come from relayq/queue_schedules.py."""

    def __init__(self, name: str, redis: RedisClient | str | None = None, *,
                 payload_type: type[T] | None = None, codec: Codec[T] | None = None,
                 max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES, replicas: int = 0,
                 replica_timeout_ms: int = DEFAULT_TIMEOUT_MS) -> None:
        super().__init__(name, payload_type=payload_type, codec=codec,
                         max_payload_bytes=max_payload_bytes, replicas=replicas,
                         replica_timeout_ms=replica_timeout_ms)
        self.redis: RedisClient = (
            connect(redis) if redis is None or isinstance(redis, str) else redis)

    @property
    def wait(self) -> Wait | None:
        """Deprecated: `replication`."""
        deprecated("Queue.wait", "Queue.replication")
        return self.replication

    @wait.setter
    def wait(self, value: Wait | None) -> None:
        deprecated("Queue.wait", "Queue.replication")
        self.replication = value

    # -- plumbing: the I/O of the operations of QueueOps ------------------------------------

    def _drive(self, op: Op[R]) -> R:
        """Runs an operation, each step done with redis-py (relayq/steps.py)."""
        return drive(op, self._step)

    def _step(self, step: Scripts | Reads | Sleep) -> Any:
        if type(step) is Sleep:
            time.sleep(step.seconds)
            return None
        if type(step) is Scripts:
            if step.wait is None and len(step.calls) == 1:
                return [self._run(step.calls[0])]
            return self._run_many(step.calls, step.wait)
        with redis_errors():
            if len(step.commands) == 1:
                return [self.redis.execute_command(*step.commands[0])]
            pipe = self.redis.pipeline(transaction=False)
            for command in step.commands:
                pipe.execute_command(*command)
            return pipe.execute()  # type: ignore[no-any-return]

    def _run(self, call: Call[Any]) -> Any:
        return protocol.run(self.redis, call)

    def _run_many(self, calls: Sequence[Call[Any]], wait: Wait | None = None) -> list[Any]:
        """Every script call of this queue goes through `_run` or `_run_many` (the server's
        queues share round trips between requests: relayq.api.group_commit)."""
        return protocol.run_many(self.redis, calls, wait)

    # -- producing ------------------------------------------------------------------------

    def enqueue(self, payload: T, *, replicas: int | None = None,
                replica_timeout_ms: int | None = None, **options: Any) -> EnqueueResult:
        """Adds one job. Options: type, priority (higher first), delay_ms or run_at (datetime or
        epoch ms), max_attempts, idempotency_key, timeout_ms, backoff_base_ms, backoff_cap_ms
        (their ranges: relayq.limits). A duplicate idempotency key creates nothing:
        `duplicate=True` and the original id. `replicas`, `replica_timeout_ms`: override the
        queue's WAIT. The queue is listed (relayq:queues) once a script accepted a job."""
        return self._drive(self._enqueue(payload, replicas, replica_timeout_ms, options))

    def enqueue_many(self, jobs: Iterable[NewJob[T] | T], *, replicas: int | None = None,
                     replica_timeout_ms: int | None = None) -> list[EnqueueResult]:
        """Adds many jobs in one round trip. Every job is checked before any is written; in
        Redis each call of up to BATCH_LIMIT jobs is all or nothing."""
        return self._drive(self._enqueue_many(jobs, replicas, replica_timeout_ms))

    def push(self, payloads: list[T]) -> tuple[list[EnqueueResult], int]:
        """Adds a job per payload (no options) and says how many jobs are ready right after,
        in one round trip, like a Redis list's LPUSH (the RESP gateway's)."""
        return self._drive(self._push(payloads))

    # -- consuming ------------------------------------------------------------------------

    def claim(self, count: int = 1, *, visibility_ms: int = DEFAULT_VISIBILITY_MS,
              worker_id: str | None = None) -> ClaimResult:
        """Takes up to `count` jobs (highest priority first, FIFO within one), each under a
        fresh lease of `visibility_ms`. Empty when nothing is claimable; see ClaimResult."""
        return self._drive(self._claim(count, visibility_ms, worker_id))

    def ack(self, job_id: str, lease: str, result: Any = None, *, replicas: int | None = None,
            replica_timeout_ms: int | None = None) -> str:
        """Marks a running job succeeded; returns its state then: 'succeeded', or 'cancelled'
        when its cancel was requested while it ran (the cancel wins; the result is kept).
        LeaseLost if `lease` is no longer the job's lease."""
        return self._drive(self._ack(job_id, lease, result, replicas, replica_timeout_ms))

    def ack_many(self, acks: Iterable[tuple[str, str, Any]], *, replicas: int | None = None,
                 replica_timeout_ms: int | None = None) -> list[str]:
        """Acks (job_id, lease, result) triples in one call; a status per job
        ('ok' | 'cancelled' (its cancel was requested: it ended cancelled) | 'not_found' |
        'lease_lost')."""
        return self._drive(self._ack_many(acks, replicas, replica_timeout_ms))

    def nack(self, job_id: str, lease: str, error: str = "", *, retry: bool = True,
             delay_ms: int | None = None, replicas: int | None = None,
             replica_timeout_ms: int | None = None) -> NackResult:
        """Marks a running job failed: retried after a full-jitter backoff (or `delay_ms`), or
        dead when `retry` is False or its attempts are spent."""
        return self._drive(self._nack(job_id, lease, error, retry, delay_ms, replicas,
                                      replica_timeout_ms))

    def heartbeat(self, job_id: str, lease: str, visibility_ms: int = DEFAULT_VISIBILITY_MS) -> int:
        """Extends a running job's lease to now + visibility_ms; returns the new deadline (ms)."""
        return self._drive(self._heartbeat(job_id, lease, visibility_ms))

    def beat(self, job_id: str, lease: str, visibility_ms: int = DEFAULT_VISIBILITY_MS
             ) -> protocol.Heartbeat:
        """`heartbeat`, answering also whether the job's cancel was requested."""
        return self._drive(self._beat(job_id, lease, visibility_ms))

    def heartbeat_many(self, leases: Iterable[tuple[str, str]],
                       visibility_ms: int = DEFAULT_VISIBILITY_MS) -> list[protocol.Heartbeat]:
        """Extends many leases in one call: per job (status, new deadline ms or -1, whether its
        cancel was requested): the worker's lease keeper learns of cancels from it."""
        return self._drive(self._heartbeat_many(leases, visibility_ms))

    def release_many(self, leases: Iterable[tuple[str, str]]) -> list[str]:
        """Hands running jobs back to the head of the queue without spending an attempt."""
        return self._drive(self._release_many(leases))

    def settle(self, outcomes: Sequence[Outcome], claim: int = 0, *,
               visibility_ms: int = DEFAULT_VISIBILITY_MS, worker_id: str | None = None
               ) -> tuple[list[str], ClaimResult | None]:
        """Records many outcomes and (with `claim` > 0) claims up to that many jobs, as
        `claim()` would, in one round trip. Returns a status per outcome, in order ('ok' |
        'not_found' | 'lease_lost'), and the claim's result (None without a claim). This is the
        worker's hot path. A NotReplicated carries that pair as its `result`."""
        return self._drive(self._settle(outcomes, claim, visibility_ms, worker_id))

    # -- reading --------------------------------------------------------------------------

    def get(self, job_id: str) -> Job[T]:
        """The job with this id, with its history; JobNotFound when there is none (or it has
        expired)."""
        return self._drive(self._get(job_id))

    def wait_for_job(self, job_id: str, timeout: float = 30.0, *, poll_s: float = 0.05,
                     on_change: Callable[[Job[T]], None] | None = None) -> Job[T]:
        """The job once it is finished (succeeded, dead or cancelled), read at a growing
        interval from `poll_s` to 1 s; TimeoutError after `timeout` seconds. `on_change(job)`
        hears of each state seen. (`Client.wait` over HTTP; `Queue.wait` is still the
        deprecated replication setting.)"""
        return self._drive(self._wait(job_id, timeout, poll_s, on_change))

    def stats(self) -> QueueStats:
        return self._drive(self._stats())

    def dead(self, limit: int = DEFAULT_PAGE, cursor: str | None = None
             ) -> tuple[list[Job[T]], str | None]:
        """Dead jobs, most recent first: a page of up to `limit` and the cursor of the next
        page (None at the end)."""
        return self.jobs("dead", limit, cursor)

    def jobs(self, state: str, limit: int = DEFAULT_PAGE, cursor: str | None = None,
             search: str | None = None) -> tuple[list[Job[T]], str | None]:
        """Jobs of one state, a page of up to `limit` and the cursor of the next page (None at
        the end): ready in claim order, scheduled by due time, running by lease deadline,
        succeeded and dead newest first; waiting and cancelled give an empty page (no index
        keeps them). `search`: only jobs whose id, type or last error contains it (a page reads
        at most SEARCH_SCAN_LIMIT jobs, so it may hold fewer; follow the cursor). Plain reads,
        see relayq/listing.py."""
        return self._drive(self._jobs(state, limit, cursor, search))

    # -- operating ------------------------------------------------------------------------

    def restore(self, jobs: Sequence[RestoredJob], *, min_sequence: int | None = None
                ) -> list[str]:
        """Puts jobs back as they were (from a snapshot), each only if its id is absent: a status
        per job, 'ok' | 'present' | 'conflict' (the id holds another job) | 'expired' (finished
        and past its retention). Running jobs come back ready. The id sequence is raised to
        `min_sequence`. Each script call (50 jobs) is checked whole before anything is
        written."""
        return self._drive(self._restore(jobs, min_sequence))

    def cancel(self, job_id: str) -> str:
        """Cancels a job that has not finished. Returns its state: 'cancelled' (it was ready or
        scheduled), or 'running': its cancel is requested, its handler learns it within about
        CANCEL_CHECK_MS and the job then ends `cancelled`, never retried (asked again, nothing
        changes). Conflict when it is finished; JobNotFound when there is no such job."""
        return self._drive(self._cancel(job_id))

    def progress(self, job_id: str, lease: str, fraction: float, info: Any = None) -> bool:
        """Records how far a running job got: `fraction` in [0, 1] and optional `info` (any
        JSON value within the payload limit), fenced by its lease, shown in the job's view and
        its queue's event log. Returns whether the job's cancel was requested. In a handler,
        use `current_job().progress(...)`, which also limits how often it writes."""
        return self._drive(self._progress(job_id, lease, fraction, info))

    def events(self, since: str | None = None, *, wait_s: float | None = None
               ) -> Iterator[event_log.Event]:
        """The queue's event log (relayq/events.py) after position `since` (an event's id;
        None: from now), as it grows: every state change and progress, in order, each once. A
        `reset` event comes first when the log no longer holds `since` (events were lost). Ends
        once nothing came for `wait_s` seconds (None: never)."""
        if since is not None:
            since = event_log.check_event_id(since)
        return event_log.follow(self._drive, self.keys, self.name, since, wait_s)

    def read_events(self, after: str, limit: int = EVENTS_PAGE) -> list[event_log.Event]:
        """One page of the event log after position `after` (see `events`), without waiting."""
        return self._drive(event_log.read_page(self.keys, self.name, after, limit))

    def last_event_id(self) -> str:
        """The position of the newest event in the log ('0-0' when empty)."""
        return self._drive(event_log.last_position(self.keys))

    def requeue_dead_job(self, job_id: str) -> None:
        """Moves one dead job back to ready with its attempts reset; JobNotFound when it is
        not dead."""
        self._drive(self._dead_op(self._calls.requeue, job_id, 1))

    def purge_dead_job(self, job_id: str) -> None:
        """Deletes one dead job for good; JobNotFound when it is not dead."""
        self._drive(self._dead_op(self._calls.purge, job_id, 1))

    def requeue_all_dead(self) -> int:
        """Requeues every dead job, in calls of SWEEP_LIMIT so that Redis never blocks for
        long."""
        return self._drive(self._repeat(self._calls.requeue))

    def purge_all_dead(self) -> int:
        """Deletes every dead job, in calls of SWEEP_LIMIT."""
        return self._drive(self._repeat(self._calls.purge))

    def requeue_dead(self, job_id: str | None = None, *, limit: int = SWEEP_LIMIT) -> int:
        """Deprecated: `requeue_dead_job(id)` for one job, `requeue_all_dead()` for all."""
        deprecated("Queue.requeue_dead", "requeue_dead_job(id) or requeue_all_dead()")
        return self._drive(self._dead_op(self._calls.requeue, job_id, limit))

    def purge_dead(self, job_id: str | None = None, *, limit: int = SWEEP_LIMIT) -> int:
        """Deprecated: `purge_dead_job(id)` for one job, `purge_all_dead()` for all."""
        deprecated("Queue.purge_dead", "purge_dead_job(id) or purge_all_dead()")
        return self._drive(self._dead_op(self._calls.purge, job_id, limit))

    def pause(self) -> None:
        """Stops handing out jobs (enqueues still succeed) until `resume()`."""
        self._drive(self._script(self._calls.pause(True), register=True))

    def resume(self) -> None:
        self._drive(self._script(self._calls.pause(False), register=True))

    def set_rate_limit(self, rate: float, burst: int | None = None) -> None:
        """At most `rate` jobs per second handed out, in bursts of up to `burst` (default: one
        second's worth, at least 1). Enforced atomically by the claim script."""
        self._drive(self._script(self._rate_limit_call(rate, burst), register=True))

    def clear_rate_limit(self) -> None:
        self._drive(self._script(self._calls.rate_limit(None, None)))

    def configure(self, **settings: float) -> None:
        """Changes the queue's defaults for new jobs and its retention: max_attempts,
        backoff_base_ms, backoff_cap_ms, succeeded_ttl_ms, dead_ttl_ms, idempotency_ttl_ms,
        max_payload_bytes, and event_log_max (the entries its event log keeps, about; 0: no
        log); and its fair-queue limits (docs/fair-queues.md; 0: none): max_running (running
        jobs of the queue, all workers together), group_max_running, group_rate (jobs per
        second) and group_burst (the defaults of every group)."""
        # the queue is listed after: the script checks the values (a refusal lists nothing)
        self._drive(self._script(self._configure_call(settings), register=True))

    def settings(self) -> dict[str, float]:
        """Every setting of `configure`, as the queue has it now (its default when never set)."""
        return self._drive(self._settings())

    # -- maintenance (the worker's reaper and promoter) ------------------------------------

    def pass_wake(self) -> None:
        """Leaves a wake-up token for another idle worker (one this worker took but cannot use).
        At worst the wake list holds two tokens for a moment: a spare wake-up, nothing more."""
        self._drive(self._pass_wake())

    def reap(self, limit: int = SWEEP_LIMIT) -> tuple[int, int]:
        """Recovers jobs whose lease expired: (requeued, dead). A job whose cancel was requested
        before its worker was lost ends cancelled instead (counted in the totals only)."""
        reaped = self._drive(self._script(self._calls.reap(limit)))
        return reaped.requeued, reaped.dead

    def promote(self, limit: int = SWEEP_LIMIT) -> tuple[int, int | None]:
        """Moves due scheduled jobs to ready: (moved, ms until the next is due or None)."""
        return self._drive(self._script(self._calls.promote(limit)))

    def move_workflow_facts(self) -> int:
        """Workflows (docs/workflows.md): applies the facts of this queue's outbox (its jobs
        that ended, for children in other queues) and redoes links an enqueue left unfinished;
        how many. Run by the fact movers of workers and of relayq-server
        (relayq/worker/fact_mover.py)."""
        return self._drive(self._move_workflow_facts())
