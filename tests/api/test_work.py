"""The routes of a worker over HTTP: settle, heartbeat of many leases, reap (relayq.api.work),
and its registry entry (PUT / DELETE /api/workers/{id}). Every reply is checked against the
OpenAPI document; bad input is a 400 that writes nothing."""

from __future__ import annotations

from typing import Any

import pytest

import relayq
from relayq.keys import WORKERS
from relayq.keys import worker as worker_key
from relayq.limits import MAX_HTTP_CLAIM_COUNT, MAX_HTTP_OUTCOMES
from tests.support.helpers import wait_until, writable
from tests.support.http import Api


def test_settle_records_outcomes_and_claims_in_one_request(api: Api,
                                                           q: relayq.Queue[Any]) -> None:
    ids = [q.enqueue({"n": n}).id for n in range(4)]
    acked, nacked, released = q.claim(3)
    body = {"outcomes": [
        {"id": acked.id, "lease": acked.lease, "outcome": "ack", "result": {"ok": 1}},
        {"id": nacked.id, "lease": nacked.lease, "outcome": "nack", "error": "boom",
         "retry": False},
        {"id": released.id, "lease": released.lease, "outcome": "release"},
        {"id": acked.id, "lease": "stale", "outcome": "ack"},
    ], "claim": 5, "worker_id": "w1"}
    reply = api.call("POST", f"/api/queues/{q.name}/settle", body)
    assert reply.status == 200
    assert reply.body["statuses"] == ["ok", "ok", "ok", "lease_lost"]
    claimed = [j["id"] for j in reply.body["jobs"]]
    assert sorted(claimed) == sorted([released.id, ids[3]])  # the released one, and the fourth
    assert reply.body["claim_status"] == "ok" and all(j["worker_id"] == "w1"
                                                      for j in reply.body["jobs"])
    assert q.get(acked.id).result == {"ok": 1} and q.get(nacked.id).state == "dead"
    rest = api.call("POST", f"/api/queues/{q.name}/settle", {"claim": 5})
    assert rest.body["jobs"] == [] and rest.body["claim_status"] == "empty"
    # the released job went back without spending an attempt, and came out again
    again = q.get(released.id)
    assert (again.state, again.attempts) == ("running", 1)
    nothing = api.call("POST", f"/api/queues/{q.name}/settle", {})
    assert nothing.body == {"statuses": [], "jobs": [], "claim_status": None,
                            "retry_in_ms": None}


def test_heartbeat_extends_many_leases(api: Api, q: relayq.Queue[Any]) -> None:
    q.enqueue(1)
    q.enqueue(2)
    first, second = q.claim(2, visibility_ms=1000)
    reply = api.call("POST", f"/api/queues/{q.name}/heartbeat", {"leases": [
        {"id": first.id, "lease": first.lease}, {"id": second.id, "lease": "stale"}],
        "visibility_ms": 60_000})
    assert [r["status"] for r in reply.body["leases"]] == ["ok", "lease_lost"]
    assert reply.body["leases"][1]["lease_deadline"] is None
    assert q.get(first.id).lease_deadline > q.get(second.id).lease_deadline + 50_000


def test_reap_puts_expired_leases_back(api: Api, q: relayq.Queue[Any]) -> None:
    job = q.enqueue(1)
    q.claim(1, visibility_ms=1)
    wait_until(lambda: api.call("POST", f"/api/queues/{q.name}/reap").body["requeued"] == 1,
               message="the lease to expire and be reaped")
    assert q.get(job.id).state == "ready"


def test_needs_the_work_scope(api: Api, q: relayq.Queue[Any],
                              scoped_keys: dict[str, str]) -> None:
    reader = api.with_key(scoped_keys["jobs:read"])
    for route in ("settle", "heartbeat", "reap"):
        assert reader.call("POST", f"/api/queues/{q.name}/{route}", {}).status == 403
    assert reader.call("PUT", "/api/workers/w", {}).status == 403
    assert reader.call("DELETE", "/api/workers/w").status == 403


JOB, LEASE = "<job>", "<lease>"  # replaced by a job the test holds


def test_a_worker_entry_is_written_refreshed_and_removed(api: Api, r: Any,
                                                        q: relayq.Queue[Any]) -> None:
    job = q.enqueue(1)
    entry = {"host": "h", "pid": 7, "queues": [q.name], "concurrency": 2, "busy": 1,
             "jobs": [job.id], "ttl_ms": 5000}
    first = api.call("PUT", "/api/workers/w-http-1", entry).body
    assert (first["id"], first["jobs"], first["busy"]) == ("w-http-1", [job.id], 1)
    assert 0 < r.pttl(worker_key("w-http-1")) <= 5000
    again = api.call("PUT", "/api/workers/w-http-1",
                     {**entry, "busy": 0, "started_at": first["started_at"]}).body
    assert again["started_at"] == first["started_at"] and again["busy"] == 0
    assert api.call("DELETE", "/api/workers/w-http-1").body == {"id": "w-http-1",
                                                                "removed": True}
    assert r.get(worker_key("w-http-1")) is None


@pytest.mark.parametrize("body,message", [
    ({"pid": 1, "queues": [], "concurrency": 1}, "needs the field 'host'"),
    ({"host": "h", "pid": -1, "queues": [], "concurrency": 1}, "pid"),
    ({"host": "h", "pid": 1, "queues": ["bad name"], "concurrency": 1}, "queue name"),
    ({"host": "h", "pid": 1, "queues": [], "concurrency": 1, "jobs": ["nope"]}, "job id"),
    ({"host": "h", "pid": 1, "queues": [], "concurrency": 0}, "concurrency"),
    ({"host": "h", "pid": 1, "queues": [], "concurrency": 1, "ttl_ms": 0}, "ttl_ms"),
])
def test_a_bad_worker_entry_is_400_and_writes_nothing(api: Api, r: Any, body: dict[str, Any],
                                                      message: str) -> None:
    reply = api.call("PUT", "/api/workers/w-http-bad", body)
    assert reply.status == 400 and message in reply.body["error"]["message"], reply.body
    assert r.get(worker_key("w-http-bad")) is None and r.zscore(WORKERS, "w-http-bad") is None


def _outcome(**fields: Any) -> dict[str, Any]:
    return {"id": JOB, "lease": LEASE, "outcome": "ack", **fields}


def _held(value: Any, job: relayq.Job[Any]) -> Any:
    """`value` with JOB and LEASE replaced by `job`'s id and lease."""
    if isinstance(value, dict):
        return {k: _held(v, job) for k, v in value.items()}
    if isinstance(value, list):
        return [_held(v, job) for v in value]
    return {JOB: job.id, LEASE: job.lease}.get(value, value) if isinstance(value, str) else value


@pytest.mark.parametrize("route,body,message", [
    ("settle", {"outcomes": {}}, "outcomes must be a list"),
    ("settle", {"outcomes": [_outcome()] * (MAX_HTTP_OUTCOMES + 1)}, "outcomes must be a list"),
    ("settle", {"outcomes": [_outcome(outcome="done")]}, "outcome must be one of"),
    ("settle", {"outcomes": [_outcome(error="x")]}, "error does not go with outcome 'ack'"),
    ("settle", {"outcomes": [_outcome(outcome="release", result=1)]}, "result does not go"),
    ("settle", {"outcomes": [_outcome(outcome="nack", retry="no")]}, "retry must be"),
    ("settle", {"outcomes": [_outcome(outcome="nack", delay_ms=-1)]}, "delay_ms"),
    ("settle", {"outcomes": [_outcome(id="other.1")]}, "belongs to queue other"),
    ("settle", {"outcomes": [_outcome(), {"id": JOB}]}, "outcome 2 needs the field"),
    ("settle", {"claim": MAX_HTTP_CLAIM_COUNT + 1}, "claim"),
    ("settle", {"claimed": 1}, "unknown field"),
    ("heartbeat", {"leases": []}, "leases must be a list of 1"),
    ("heartbeat", {"leases": [{"id": JOB}]}, "needs the field 'lease'"),
    ("heartbeat", {"leases": [{"id": JOB, "lease": LEASE}], "visibility_ms": 0},
     "visibility_ms"),
    ("reap", {"limit": 5}, "unknown field"),
])
def test_bad_input_is_400_and_writes_nothing(api: Api, q: relayq.Queue[Any], r: Any,
                                             route: str, body: dict[str, Any],
                                             message: str) -> None:
    q.enqueue(1)
    (job,) = q.claim(1)
    body = _held(body, job)
    path = f"/api/queues/{q.name}/{route}"
    before = writable(r, path)
    reply = api.call("POST", path, body)
    assert reply.status == 400 and message in reply.body["error"]["message"], reply.body
    assert writable(r, path) == before
