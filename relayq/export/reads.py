"""Every read export and restore make of Redis, in one place. Nothing here writes.

Export reads a queue's jobs without ever blocking Redis for long: `SCAN` with `MATCH
relayq:{<q>}:job:*` and a `COUNT` (each call walks about COUNT buckets of the key table, never
the whole table, unlike `KEYS`), and for each batch of keys found, one pipeline of `HGETALL`s:
a pipeline is many short commands sent together, not one long command, so other clients are
served between them. On Redis Cluster the scan runs on the node that owns the queue's slot (every
key of a queue shares its hash tag), so one node is asked and every job key lives there.

What SCAN promises is what a snapshot promises (docs/export.md): a key present for the whole scan
is returned at least once (possibly twice, when Redis resizes its table meanwhile); a key created
or deleted during the scan may or may not be. Each HGETALL is atomic, so each job is read whole,
as it was at one moment; a waiting job (workflows) is read again with the set of parents it still
waits for, both in one MULTI, so that the two agree.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from ..connection import RedisClient, node_client, redis_errors
from ..keys import QueueKeys
from ..limits import DEFAULT_MAX_PAYLOAD_BYTES
from ..queue import Queue

SCAN_COUNT = 500  # keys walked per SCAN call: about a millisecond of Redis time at most
# Queue settings (relayq:{<q>}:meta) worth recording; the rate limiter's token state is not.
SETTINGS = ("paused", "rate", "burst", "max_attempts", "backoff_base_ms", "backoff_cap_ms",
            "succeeded_ttl_ms", "dead_ttl_ms", "idempotency_ttl_ms", "max_payload_bytes")


def redis_time_ms(redis: RedisClient) -> int:
    """Now on the Redis clock (the one clock), in epoch milliseconds."""
    with redis_errors():
        seconds, micros = redis.time()
    return seconds * 1000 + micros // 1000


def job_hashes(redis: RedisClient, queue: str, count: int | None = None
               ) -> Iterator[list[tuple[str, dict[str, str], list[str] | None]]]:
    """Batches of (local id, job hash, parents still waited for or None) of every job of
    `queue`, as SCAN finds them (`count`: SCAN's COUNT, default SCAN_COUNT). A key that is gone
    by the time it is read (expired, purged) is left out."""
    count = count or SCAN_COUNT
    keys = QueueKeys(queue)
    pattern = keys.job("*")
    start = len(keys.job(""))
    node = node_client(redis, keys.meta)
    with redis_errors():
        cursor = 0
        while True:
            cursor, found = node.scan(cursor, match=pattern, count=count)
            if found:
                pipe = node.pipeline(transaction=False)
                for key in found:
                    pipe.hgetall(key)
                hashes = pipe.execute()
                yield _with_parents(node, keys, [key[start:] for key in found], hashes)
            if cursor == 0:
                return


def _with_parents(node: RedisClient, keys: QueueKeys, local_ids: list[str],
                  hashes: list[dict[str, str]]
                  ) -> list[tuple[str, dict[str, str], list[str] | None]]:
    """(local id, hash, None) per job still there; the waiting ones read again with their
    pending parents (deps:<id>), all in one MULTI, so that each hash and its set agree."""
    waiting = [local for local, h in zip(local_ids, hashes) if h.get("s") == "waiting"]
    again: dict[str, tuple[dict[str, str], list[str] | None]] = {}
    if waiting:
        pipe = node.pipeline(transaction=True)
        for local in waiting:
            pipe.hgetall(keys.job(local))
            pipe.smembers(keys.prefix + "deps:" + local)
        replies = pipe.execute()
        for local, h, pending in zip(waiting, replies[::2], replies[1::2]):
            again[local] = h, sorted(pending) if h.get("s") == "waiting" else None
    jobs = [(local, *again.get(local, (h, None))) for local, h in zip(local_ids, hashes)]
    return [(local, h, pending) for local, h, pending in jobs if h]


def queue_sequence(redis: RedisClient, queue: str) -> int:
    """The queue's id sequence (relayq:{<q>}:seq), 0 if it has none."""
    with redis_errors():
        return int(redis.get(QueueKeys(queue).seq) or 0)


def queue_settings(redis: RedisClient, queue: str) -> dict[str, str]:
    """The queue's recorded settings (pause, rate limit, defaults, retention)."""
    with redis_errors():
        values = redis.hmget(QueueKeys(queue).meta, SETTINGS)
    return {name: value for name, value in zip(SETTINGS, values) if value is not None}


def max_payload_bytes(redis: RedisClient, queue: str) -> int:
    """The queue's payload limit as its scripts apply it: its `max_payload_bytes` setting, else
    the default."""
    with redis_errors():
        value = redis.hget(QueueKeys(queue).meta, "max_payload_bytes")
    return int(value) if value else DEFAULT_MAX_PAYLOAD_BYTES


def existing(redis: RedisClient, queue: str, local_ids: Iterable[str]) -> list[bool]:
    """Whether each job exists (for a dry-run restore), in one pipeline."""
    keys = QueueKeys(queue)
    with redis_errors():
        pipe = node_client(redis, keys.meta).pipeline(transaction=False)
        for local in local_ids:
            pipe.exists(keys.job(local))
        return [bool(n) for n in pipe.execute()]


def estimated_jobs(redis: RedisClient, queue: str) -> int:
    """Jobs the queue indexes (ready, scheduled, running, dead, succeeded, waiting): the
    progress bar's total for an export. Cancelled jobs are not indexed, so the true count can be
    a little higher."""
    stats = Queue(queue, redis).stats()
    return (stats.ready + stats.scheduled + stats.running + stats.dead + stats.succeeded
            + stats.waiting)


