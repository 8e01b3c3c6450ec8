"""The workers registry: which worker processes are alive, and what each is doing.

Every worker process keeps one entry (relayq.worker.registry writes it; `list_workers` reads
them for GET /api/workers and `relayq workers`):

- ``relayq:worker:<id>``: STRING, the entry as JSON (`WorkerEntry.to_dict()`: id, host, pid,
  queues, concurrency, busy, jobs, started_at, last_seen_at), written every WORKER_REFRESH_MS
  with a TTL of three refreshes (WORKER_TTL_MS): a worker that dies without a word (SIGKILL, a
  lost host) disappears once its TTL ends. A worker that stops gracefully deletes it.
- ``relayq:workers``: ZSET of worker ids by last seen (epoch ms), so that the registry can be
  listed without SCAN; each refresh drops ids not seen for a TTL.

Times are read from Redis (TIME), the one clock. These keys are outside every queue's hash slot
(like relayq:queues): no script touches them, so on Redis Cluster they live wherever their own
slots are, written by plain commands.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .connection import RedisClient, redis_errors
from .keys import WORKERS, worker
from .limits import WORKER_TTL_MS
from .rfc3339 import format_ms


def redis_now_ms(redis: RedisClient) -> int:
    """The Redis clock, epoch ms (on Redis Cluster, any node's: one reply per node may come
    back)."""
    reply = redis.time()
    seconds, micros = next(iter(reply.values())) if isinstance(reply, dict) else reply
    return int(seconds) * 1000 + int(micros) // 1000


@dataclass(slots=True)
class WorkerEntry:
    """One worker process. `busy`: jobs whose handler runs now; `jobs`: ids of every job it
    holds (running, or claimed ahead and waiting for a free thread). Times in epoch ms."""

    id: str
    host: str
    pid: int
    queues: list[str]
    concurrency: int
    busy: int = 0
    jobs: list[str] = field(default_factory=list)
    started_at: int = 0
    last_seen_at: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "host": self.host, "pid": self.pid, "queues": self.queues,
                "concurrency": self.concurrency, "busy": self.busy, "jobs": self.jobs,
                "started_at": format_ms(self.started_at),
                "last_seen_at": format_ms(self.last_seen_at)}


def write_entry(redis: RedisClient, entry: WorkerEntry, ttl_ms: int = WORKER_TTL_MS) -> None:
    """Writes (or refreshes) `entry`, seen now on the Redis clock, alive for `ttl_ms`; drops
    ids of workers not seen for a TTL from the index."""
    with redis_errors():
        now = redis_now_ms(redis)
        if not entry.started_at:
            entry.started_at = now
        entry.last_seen_at = now
        pipe = redis.pipeline(transaction=False)
        pipe.set(worker(entry.id), json.dumps(entry.to_dict()), px=ttl_ms)
        pipe.zadd(WORKERS, {entry.id: now})
        pipe.zremrangebyscore(WORKERS, "-inf", f"({now - ttl_ms}")
        pipe.execute()


def remove_entry(redis: RedisClient, worker_id: str) -> None:
    """Takes a worker out of the registry (it stops)."""
    with redis_errors():
        pipe = redis.pipeline(transaction=False)
        pipe.delete(worker(worker_id))
        pipe.zrem(WORKERS, worker_id)
        pipe.execute()


def list_workers(redis: RedisClient) -> list[dict[str, Any]]:
    """The entries of every live worker (JSON views), by id. Plain reads: an entry whose TTL
    ended is simply gone."""
    with redis_errors():
        ids = redis.zrange(WORKERS, 0, -1)
        pipe = redis.pipeline(transaction=False)
        for worker_id in ids:
            pipe.get(worker(worker_id))
        texts = pipe.execute() if ids else []
    return sorted((json.loads(text) for text in texts if text), key=lambda e: e["id"])
