"""Shared by the export tests: a queue with a job in every state, and wiping a queue's keys
(on the suite's own redis-server only)."""

from __future__ import annotations

from typing import Any

from relayq import Queue

HOUR = 3_600_000


def populate(q: Queue[Any], ready: int = 20) -> dict[str, str]:
    """Jobs in every state; returns one id per state (the last ready one for "ready")."""
    ids = {"running": q.enqueue({"run": 1}, priority=250, max_attempts=3).id,
           "succeeded": q.enqueue({"done": 1}, priority=250, type="t").id,
           "dead": q.enqueue({"die": 1}, priority=250).id}
    claimed = {j.id: j for j in q.claim(3, worker_id="w-1")}
    assert set(claimed) == set(ids.values())
    q.ack(ids["succeeded"], claimed[ids["succeeded"]].lease, {"result": [1, 2]})
    q.nack(ids["dead"], claimed[ids["dead"]].lease, "boom", retry=False)
    ids["cancelled"] = q.enqueue({"c": 1}).id
    q.cancel(ids["cancelled"])
    ids["scheduled"] = q.enqueue({"later": True}, delay_ms=HOUR, idempotency_key="later").id
    for i in range(ready):
        ids["ready"] = q.enqueue({"n": i, "text": "é\u2028"}, priority=i % 3,
                                 idempotency_key=f"k{i}", backoff_base_ms=5).id
    return ids


def wipe(q: Queue[Any]) -> None:
    """Deletes every key of the queue: Redis lost."""
    for key in list(q.redis.scan_iter(match=f"relayq:{{{q.name}}}:*", count=1000)):
        q.redis.delete(key)


def views(q: Queue[Any], ids: list[str]) -> dict[str, dict[str, Any]]:
    """Each job's JSON view as a snapshot holds it: all of it but the attempt history, which
    export does not write (docs/export.md)."""
    return {i: snapshot_view(q, i) for i in ids}


def snapshot_view(q: Queue[Any], job_id: str) -> dict[str, Any]:
    view = q.get(job_id).to_dict()
    view.pop("history", None)
    return view


def all_ids(q: Queue[Any]) -> list[str]:
    prefix = f"relayq:{{{q.name}}}:job:"
    return sorted(f"{q.name}.{k[len(prefix):]}" for k in q.redis.scan_iter(match=prefix + "*"))
