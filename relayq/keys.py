"""The Redis key layout: one function per key, every queue key under one hash tag.

All keys of queue `q` start with ``relayq:{q}:`` so that a queue lives in one Redis Cluster slot
and every script touches one slot only. Field-level details are in docs/data-model.md.

| key                      | type   | written by                                | TTL           |
|--------------------------|--------|-------------------------------------------|---------------|
| relayq:{q}:job:<id>      | HASH   | every transition of that job              | retention     |
|                          |        |                                           | once finished |
| relayq:{q}:ready:<prio>  | LIST   | enqueue, promote, claim, nack, reap,      | none          |
|                          |        | release, requeue, cancel (FIFO per prio)  |               |
| relayq:{q}:prios         | ZSET   | with ready:<prio>: the priorities whose   | none          |
|                          |        | ready list is non-empty                   |               |
| relayq:{q}:scheduled     | ZSET   | enqueue, nack, promote, claim, cancel     | none          |
|                          |        | (score: due time, ms)                     |               |
| relayq:{q}:running       | ZSET   | claim, heartbeat, ack, nack, reap,        | none          |
|                          |        | release (score: lease deadline, ms)       |               |
| relayq:{q}:dead          | ZSET   | nack, reap, requeue, purge (score: died)  | trimmed: reap |
| relayq:{q}:succeeded     | ZSET   | ack (score: finished, ms)                 | trimmed: ack, |
|                          |        |                                           | reap          |
| relayq:{q}:meta          | HASH   | pause, rate_limit, configure, claim       | none          |
| relayq:{q}:totals        | HASH   | every transition (lifetime counters)      | none          |
| relayq:{q}:history:<id> | LIST   | nack, reap: the job's failed or lost      | with the job  |
|                          |        | attempts, newest first (HISTORY_LIMIT);   | hash (finish, |
|                          |        | requeue keeps it, purge deletes it        | requeue)      |
| relayq:{q}:schedule:<id> | HASH   | save_, pause_, delete_, trigger_ and      | none          |
|                          |        | fire_schedule: one periodic schedule      |               |
| relayq:{q}:schedules     | SET    | save_/delete_schedule: every schedule id  | none          |
| relayq:{q}:due_schedules | ZSET   | save_/pause_/delete_/fire_schedule:       | none          |
|                          |        | active schedule id by next tick (ms; 0:   |               |
|                          |        | to be computed)                           |               |
| relayq:{q}:waiting, deps:<id>, children:<id>, outbox, linking: workflows, see              |
|                          |        | lua/lib/deps.lua and docs/workflows.md    |               |
| relayq:{q}:idem:<key>    | STRING | enqueue, purge (value: job id)            | idempotency   |
| relayq:{q}:seq           | STRING | enqueue (id sequence)                     | none          |
| relayq:{q}:leases        | STRING | claim (lease sequence)                    | none          |
| relayq:{q}:wake          | LIST   | whatever makes jobs ready (a token);      | none          |
|                          |        | BLPOP by idle workers                     |               |
| relayq:{q}:events        | PUBSUB | every transition (a channel, not a key)   | -             |
| relayq:{q}:log           | STREAM | every transition and progress, in the     | none (trimmed |
|                          |        | same script (lua/lib/events.lua): the     | near the      |
|                          |        | queue's durable event log                 | event_log_max |
|                          |        |                                           | setting)      |
| relayq:{q}:gring         | LIST   | fair queues (lua/lib/groups.lua): the     | none          |
|                          |        | round robin of groups that may be claimed |               |
|                          |        | from ('' for the jobs without a group)    |               |
| relayq:{q}:gparked       | ZSET   | groups held back: at their limit (+inf)   | none          |
|                          |        | or throttled (score: next token, ms)      |               |
| relayq:{q}:groups        | ZSET   | group -> ready count (ready, running or   | none          |
|                          |        | limited groups): the listing              |               |
| relayq:{q}:group:<g>     | HASH   | a group: running count, limits, bucket    | none; idle:   |
|                          |        |                                           | bucket refill |
| relayq:{q}:gprios:<g>    | ZSET   | priorities of the group's ready lists     | none          |
| relayq:{q}:gready:<p>:<g>| LIST   | the group's ready jobs of priority p      | none          |
| relayq:queues            | SET    | Queue on first use (all queue names)      | none          |
| relayq:scheduled_queues  | SET    | Queue.schedule: queues that have had a    | none          |
|                          |        | schedule (what relayq-server fires)       |               |
| relayq:apikeys           | HASH   | the API key store (key id -> record)      | none          |
| relayq:workers           | ZSET   | each worker process (relayq.worker.       | none (pruned  |
|                          |        | registry): its id by last seen (ms)       | by last seen) |
| relayq:worker:<id>       | STRING | that worker process: its entry as JSON,   | WORKER_TTL_MS |
|                          |        | written every WORKER_REFRESH_MS           |               |
| relayq:session:<sha256>  | STRING | POST /api/session: a dashboard session    | session TTL   |
|                          |        | (SHA-256 of its token -> the key's id)    | (10 minutes)  |

`restore` (relayq restore, lua/restore.lua) also writes: job hashes and their indexes (ready
lists, prios, scheduled, dead, succeeded), idem keys, seq (only ever raised) and wake.
"""

from __future__ import annotations

import re

from .errors import InvalidQueueName
from .limits import MAX_QUEUE_NAME_LENGTH, QUEUE_NAME_PATTERN

QUEUE_NAME = re.compile(QUEUE_NAME_PATTERN)
QUEUES = "relayq:queues"
SCHEDULED_QUEUES = "relayq:scheduled_queues"
API_KEYS = "relayq:apikeys"
WORKERS = "relayq:workers"


def worker(worker_id: str) -> str:
    """The registry entry of one worker process (outside every queue's slot: no script reads
    it)."""
    return f"relayq:worker:{worker_id}"


def session(token_sha256: str) -> str:
    """The record of one dashboard session, by the SHA-256 (hex) of its token."""
    return f"relayq:session:{token_sha256}"


def check_queue_name(name: object) -> str:
    """`name` if it is a valid queue name, else InvalidQueueName."""
    if not isinstance(name, str) or not QUEUE_NAME.fullmatch(name):
        raise InvalidQueueName(
            f"invalid queue name {name!r}: use 1-{MAX_QUEUE_NAME_LENGTH} characters from "
            "A-Z a-z 0-9 _ -"
        )
    return name


def prefix(queue: str) -> str:
    """The common prefix of every key of `queue` (includes the hash tag)."""
    return f"relayq:{{{queue}}}:"


class QueueKeys:
    """The fixed keys of one queue, computed once."""

    __slots__ = (
        "prefix", "meta", "prios", "scheduled", "running", "dead", "succeeded", "totals",
        "seq", "leases", "wake", "events", "log", "schedules", "due_schedules", "waiting",
        "groups", "gparked",
    )

    def __init__(self, queue: str) -> None:
        p = prefix(check_queue_name(queue))
        self.prefix = p
        self.meta = p + "meta"
        self.prios = p + "prios"
        self.scheduled = p + "scheduled"
        self.running = p + "running"
        self.dead = p + "dead"
        self.succeeded = p + "succeeded"
        self.totals = p + "totals"
        self.seq = p + "seq"
        self.leases = p + "leases"
        self.wake = p + "wake"
        self.events = p + "events"
        self.log = p + "log"
        self.schedules = p + "schedules"
        self.due_schedules = p + "due_schedules"
        self.waiting = p + "waiting"  # workflows: lua/lib/deps.lua
        self.groups = p + "groups"
        self.gparked = p + "gparked"

    def job(self, local_id: str) -> str:
        return f"{self.prefix}job:{local_id}"

    def ready(self, priority: int | str) -> str:
        return f"{self.prefix}ready:{priority}"

    def history(self, local_id: str) -> str:
        return f"{self.prefix}history:{local_id}"

    def schedule(self, schedule_id: str) -> str:
        return f"{self.prefix}schedule:{schedule_id}"

    def group_prios(self, group: str) -> str:
        return f"{self.prefix}gprios:{group}"

    def group_ready(self, priority: int | str, group: str) -> str:
        return f"{self.prefix}gready:{priority}:{group}"

    def idempotency(self, key: str) -> str:
        return f"{self.prefix}idem:{key}"
