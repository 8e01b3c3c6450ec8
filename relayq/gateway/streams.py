"""Stream commands: a queue read as a stream, at least once, under leases.

- An entry id is derived from the job id and never changes: job ``q.<ms><6-digit seq>`` is
  entry ``<ms>-<seq>`` (and back), so XACK, XCLAIM and XPENDING name jobs by entry id.
- XADD q * field value ... enqueues the payload {field: value, ...} (values are strings).
- A queue is one consumer group: every group name is accepted and they all share the queue's
  jobs (competing consumers); XGROUP CREATE answers OK and creates nothing.
- XREADGROUP ... STREAMS q > claims jobs under a lease of `--resp-lease-ms` (RESP_LEASE_MS), the
  consumer name as the worker id: a pending entry is a running job. `0` instead of `>` reads the
  consumer's own pending entries again.
- XACK acks a pending entry whoever read it (as in Redis): with the lease this process handed
  out, or the job's current lease read from Redis.
- The lease is the entry's visibility: an entry not acked within it is recovered by the reaper
  (the gateway runs it before each read, at most every RESP_REAP_EVERY_MS, and so do
  relayq-workers) and delivered again by a later XREADGROUP >, as a retry of the job (its
  attempts count; when they are spent the job is dead). Until then XCLAIM and XAUTOCLAIM with a
  min-idle-time take entries over: the lease is renewed for a whole period (the idle time of an
  entry is the time since its lease began).
- XLEN is the number of jobs not finished (ready, scheduled and running); XPENDING lists running
  jobs (consumer = worker id, deliveries = attempts).
"""

from __future__ import annotations

import time
from typing import Any

from ..codec import dumps
from ..errors import RelayqError
from ..job import Job
from ..limits import (
    MAX_CLAIM_COUNT,
    MAX_PAGE,
    RESP_DEFAULT_COUNT,
    RESP_MAX_BLOCK_MS,
    RESP_REAP_EVERY_MS,
)
from ..metrics import record_claimed, record_enqueued
from ..queue import Queue
from ..results import NewJob
from .commands import integer, queue_of, text
from .resp import OK, Error, RespMap
from .session import QUEUE_CACHE_SIZE, Gateway, Session

SEQ_DIGITS = 6  # the sequence part of a job id's number (relayq.limits.ID_SEQUENCE_MODULUS)
# XCLAIM options -> how many arguments follow them
XCLAIM_OPTIONS = {b"IDLE": 1, b"TIME": 1, b"RETRYCOUNT": 1, b"LASTID": 1, b"FORCE": 0,
                  b"JUSTID": 0}
BAD_ID = "Invalid stream ID specified as stream command argument"


def entry_id(job_id: str) -> str:
    number = job_id.rpartition(".")[2]
    return f"{int(number[:-SEQ_DIGITS] or 0)}-{int(number[-SEQ_DIGITS:])}"


def job_id(q: Queue[Any], entry: bytes) -> str:
    """The job id an entry id names (Error for anything that is not an entry id)."""
    ms, dash, seq = entry.partition(b"-")
    if not (dash and ms.isdigit() and seq.isdigit() and int(seq) < 10 ** SEQ_DIGITS):
        raise Error(BAD_ID)
    number = f"{int(ms)}{int(seq):0{SEQ_DIGITS}d}" if int(ms) else str(int(seq))
    return f"{q.name}.{number}"


def _id_key(entry: str) -> tuple[int, int]:
    ms, _, seq = entry.partition("-")
    return int(ms), int(seq or 0)


def fields(payload: Any) -> list[str]:
    """A payload as an entry's field-value list: an object's members (values that are not
    strings as JSON), anything else as one field `payload`."""
    if isinstance(payload, dict):
        return [part for k, v in payload.items()
                for part in (k, v if isinstance(v, str) else dumps(v))]
    return ["payload", payload if isinstance(payload, str) else dumps(payload)]


def entry(job: Job[Any]) -> list[Any]:
    return [entry_id(job.id), fields(job.payload)]


def xadd(gw: Gateway, s: Session, args: list[bytes]) -> Any:
    q = queue_of(gw, args[1])
    if args[2] != b"*":
        raise Error("relayq assigns entry ids: use XADD <queue> * field value [field value ...]"
                    " (options such as MAXLEN or NOMKSTREAM are not supported)")
    pairs = args[3:]
    if len(pairs) % 2:
        raise Error("wrong number of arguments for 'xadd' command")
    payload = {text(pairs[i], "field"): text(pairs[i + 1]) for i in range(0, len(pairs), 2)}
    (result,) = q.enqueue_many([NewJob(payload)])
    record_enqueued(q.name, 0 if result.duplicate else 1)
    return entry_id(result.id)


def xlen(gw: Gateway, s: Session, args: list[bytes]) -> Any:
    stats = queue_of(gw, args[1]).stats()
    return stats.ready + stats.scheduled + stats.running


def xinfo(gw: Gateway, s: Session, args: list[bytes]) -> Any:
    if args[1].upper() != b"STREAM" or len(args) != 3:
        raise Error("XINFO supports STREAM <queue> only")
    stats = queue_of(gw, args[2]).stats()
    return RespMap({"length": stats.ready + stats.scheduled + stats.running, "groups": 1,
                    "ready": stats.ready, "scheduled": stats.scheduled,
                    "running": stats.running, "dead": stats.dead,
                    "succeeded": stats.succeeded, "paused": int(stats.paused),
                    "first-entry": None, "last-entry": None})


def xgroup(gw: Gateway, s: Session, args: list[bytes]) -> Any:
    sub = args[1].upper()
    if sub == b"CREATE" and len(args) >= 4:
        queue_of(gw, args[2])  # a bad name is refused; there is nothing to create
        return OK
    if sub in (b"CREATECONSUMER", b"DELCONSUMER", b"DESTROY", b"SETID") and len(args) >= 4:
        queue_of(gw, args[2])
        return 0 if sub != b"SETID" else OK
    raise Error(f"unknown subcommand '{text(args[1], 'subcommand')}'. Try XGROUP HELP.")


def reap_now_and_then(gw: Gateway, q: Queue[Any]) -> None:
    """Recovers expired stream leases of `q`, at most every RESP_REAP_EVERY_MS."""
    now = time.monotonic()
    if now - gw.reaped_at.get(q.name, 0.0) >= RESP_REAP_EVERY_MS / 1000:
        if len(gw.reaped_at) >= QUEUE_CACHE_SIZE:
            gw.reaped_at.clear()  # bounded: at worst a queue is reaped once more than needed
        gw.reaped_at[q.name] = now
        q.reap()


def read_now(gw: Gateway, s: Session, q: Queue[Any], consumer: str, count: int,
             new: bool, noack: bool) -> tuple[list[list[Any]], int | None]:
    """XREADGROUP of one stream: its entries and, when there are none, in how many ms to ask
    again (the next scheduled job; None: no hint). `new`: `>` (claim), else the consumer's own
    pending entries."""
    if not new:
        return [entry(job) for job in _pending(q, consumer, count)], None
    reap_now_and_then(gw, q)
    claimed = q.claim(count, visibility_ms=gw.config.lease_ms, worker_id=consumer)
    if not claimed:
        return [], claimed.retry_in_ms
    record_claimed(q.name, claimed)
    if noack:
        q.ack_many([(job.id, job.lease, None) for job in claimed])
    else:
        for job in claimed:
            gw.remember_lease(job.id, job.lease)
    return [entry(job) for job in claimed], None


def _pending(q: Queue[Any], consumer: str | None, count: int) -> list[Job[Any]]:
    """Running jobs (of `consumer` when given), by lease deadline, at most `count`: looked for
    among the first MAX_PAGE running jobs of the queue."""
    jobs, _ = q.jobs("running", MAX_PAGE)
    return [job for job in jobs if consumer is None or job.worker_id == consumer][:count]


class ReadGroup:
    """XREADGROUP GROUP g consumer [COUNT n] [BLOCK ms] [NOACK] STREAMS q ... id ..."""

    def __init__(self, args: list[bytes]) -> None:
        if args[1].upper() != b"GROUP":
            raise Error("syntax error")
        self.consumer = text(args[3], "consumer")
        self.count = RESP_DEFAULT_COUNT
        self.block_ms: int | None = None
        self.noack = False
        i = 4
        while i < len(args) and args[i].upper() != b"STREAMS":
            option = args[i].upper()
            if option == b"COUNT" and i + 1 < len(args):
                self.count = integer(args[i + 1], "COUNT", 1, MAX_CLAIM_COUNT)
                i += 2
            elif option == b"BLOCK" and i + 1 < len(args):
                self.block_ms = integer(args[i + 1], "BLOCK", 0, RESP_MAX_BLOCK_MS)
                i += 2
            elif option == b"NOACK":
                self.noack, i = True, i + 1
            else:
                raise Error("syntax error")
        rest = args[i + 1:]
        if i >= len(args) or not rest or len(rest) % 2:
            raise Error("Unbalanced 'xreadgroup' list of streams: for each stream key an ID or "
                        "'>' must be specified.")
        half = len(rest) // 2
        self.keys = rest[:half]
        self.new = [arg == b">" for arg in rest[half:]]


def xack(gw: Gateway, s: Session, args: list[bytes]) -> Any:
    q = queue_of(gw, args[1])
    ids = [job_id(q, arg) for arg in args[3:]]
    leases = {i: gw.lease_of(i) for i in ids}
    for i, lease in leases.items():
        if lease is None:
            leases[i] = _current_lease(q, i)
    acked = _ack(gw, q, [(i, lease) for i, lease in leases.items() if lease])
    retry = [i for i, status in acked.items() if status == "lease_lost"]
    if retry:  # another claim took it since: ack the lease it holds now, as Redis would
        fresh = [(i, lease) for i in retry if (lease := _current_lease(q, i))]
        acked.update(_ack(gw, q, fresh))
    return sum(status == "ok" for status in acked.values())


def _ack(gw: Gateway, q: Queue[Any], leases: list[tuple[str, str]]) -> dict[str, str]:
    if not leases:
        return {}
    statuses = q.ack_many([(i, lease, None) for i, lease in leases])
    for i, _ in leases:
        gw.forget_lease(i)
    return {i: status for (i, _), status in zip(leases, statuses)}


def _current_lease(q: Queue[Any], job: str) -> str | None:
    try:
        return q.get(job).lease
    except RelayqError:
        return None


def xpending(gw: Gateway, s: Session, args: list[bytes]) -> Any:
    """XPENDING q g (summary) | XPENDING q g [IDLE ms] start end count [consumer]."""
    q = queue_of(gw, args[1])
    if len(args) == 3:
        jobs = _pending(q, None, MAX_PAGE)
        if not jobs:
            return [0, None, None, None]
        by_consumer: dict[str, int] = {}
        for job in jobs:
            by_consumer[job.worker_id or ""] = by_consumer.get(job.worker_id or "", 0) + 1
        ids = sorted((entry_id(job.id) for job in jobs), key=_id_key)
        return [q.stats().running, ids[0], ids[-1],
                [[c, str(n)] for c, n in by_consumer.items()]]
    rest = args[3:]
    min_idle = 0
    if rest[0].upper() == b"IDLE" and len(rest) >= 2:
        min_idle, rest = integer(rest[1], "IDLE", 0, RESP_MAX_BLOCK_MS), rest[2:]
    if len(rest) not in (3, 4):
        raise Error("syntax error")
    low, high = _bound(rest[0]), _bound(rest[1])
    count = integer(rest[2], "count", 0, MAX_PAGE)
    consumer = text(rest[3], "consumer") if len(rest) == 4 else None
    now = gw.redis_time_ms()
    out = []
    for job in _pending(q, consumer, MAX_PAGE):
        eid, idle = entry_id(job.id), _idle(gw, job, now)
        if low <= _id_key(eid) <= high and idle >= min_idle:
            out.append([eid, job.worker_id or "", idle, job.attempts])
    return sorted(out, key=lambda e: _id_key(e[0]))[:count]


def _bound(arg: bytes) -> tuple[int, int]:
    if arg == b"-":
        return (0, 0)
    if arg == b"+":
        return (2**64, 0)
    raw = arg.lstrip(b"(")
    ms, dash, seq = raw.partition(b"-")
    if not ms.isdigit() or (dash and not seq.isdigit()):
        raise Error(BAD_ID)
    return int(ms), int(seq or 0)


def _idle(gw: Gateway, job: Job[Any], now: int) -> int:
    """Ms since the job's lease began (its claim, or its last renewal)."""
    if job.lease_deadline is None:
        return 0
    return max(0, now - (job.lease_deadline - gw.config.lease_ms))


def _take_over(gw: Gateway, q: Queue[Any], jobs: list[Job[Any]], min_idle: int,
               limit: int = MAX_PAGE) -> list[Job[Any]]:
    """The first `limit` jobs idle for at least `min_idle` ms, each with its lease renewed."""
    now = gw.redis_time_ms()
    idle = [job for job in jobs if job.lease and _idle(gw, job, now) >= min_idle][:limit]
    if not idle:
        return []
    statuses = q.heartbeat_many([(job.id, job.lease or "") for job in idle], gw.config.lease_ms)
    taken = [job for job, beat in zip(idle, statuses) if beat.status == "ok"]
    for job in taken:
        gw.remember_lease(job.id, job.lease or "")
    return taken


def xclaim(gw: Gateway, s: Session, args: list[bytes]) -> Any:
    """XCLAIM q g consumer min-idle-time id ... [JUSTID] (other options are accepted and not
    used): renews the lease of each entry idle that long."""
    q = queue_of(gw, args[1])
    min_idle = integer(args[4], "min-idle-time", 0, RESP_MAX_BLOCK_MS)
    ids, justid, rest = [], False, args[5:]
    while rest and rest[0].upper() not in XCLAIM_OPTIONS:
        ids.append(job_id(q, rest[0]))
        rest = rest[1:]
    while rest:
        option = rest[0].upper()
        takes = XCLAIM_OPTIONS.get(option, 0)
        if option not in XCLAIM_OPTIONS or len(rest) <= takes:
            raise Error("syntax error")
        justid = justid or option == b"JUSTID"
        rest = rest[1 + takes:]
    jobs = []
    for i in ids:
        try:
            job = q.get(i)
        except RelayqError:
            continue
        if job.state == "running":
            jobs.append(job)
    taken = _take_over(gw, q, jobs, min_idle)
    return [entry_id(job.id) for job in taken] if justid else [entry(job) for job in taken]


def xautoclaim(gw: Gateway, s: Session, args: list[bytes]) -> Any:
    """XAUTOCLAIM q g consumer min-idle-time start [COUNT n] [JUSTID]."""
    q = queue_of(gw, args[1])
    min_idle = integer(args[4], "min-idle-time", 0, RESP_MAX_BLOCK_MS)
    start = _bound(args[5])
    count, justid, rest = RESP_DEFAULT_COUNT, False, args[6:]
    while rest:
        if rest[0].upper() == b"COUNT" and len(rest) >= 2:
            count, rest = integer(rest[1], "COUNT", 1, MAX_PAGE), rest[2:]
        elif rest[0].upper() == b"JUSTID":
            justid, rest = True, rest[1:]
        else:
            raise Error("syntax error")
    reap_now_and_then(gw, q)
    jobs = sorted((job for job in _pending(q, None, MAX_PAGE)
                   if _id_key(entry_id(job.id)) >= start), key=lambda j: _id_key(entry_id(j.id)))
    taken = _take_over(gw, q, jobs, min_idle, count)
    shown = [entry_id(job.id) for job in taken] if justid else [entry(job) for job in taken]
    return ["0-0", shown, []]

