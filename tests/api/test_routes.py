"""Every route of the HTTP API against a real server process and Redis: what it answers (each
reply also checked against /api/openapi.json by the `api` helper) and what it changed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from relayq import Queue
from relayq.limits import MIN_RATE
from tests.support.helpers import wait_until
from tests.support.http import Api


def enqueue(api: Api, queue: str, **body: Any) -> dict[str, Any]:
    reply = api.call("POST", f"/api/queues/{queue}/jobs", {"payload": {"n": 1}, **body})
    assert reply.status == 201, reply
    return reply.body


def claim_one(api: Api, queue: str, **body: Any) -> dict[str, Any]:
    reply = api.call("POST", f"/api/queues/{queue}/claim", body)
    assert reply.status == 200, reply
    (job,) = reply.body["jobs"]
    return job


def test_enqueue_creates_the_job_with_every_option(api: Api, q: Queue) -> None:
    run_at = datetime.now(UTC) + timedelta(hours=1)
    reply = api.call("POST", f"/api/queues/{q.name}/jobs", {
        "payload": {"to": "ada"}, "type": "email", "priority": 9, "max_attempts": 3,
        "timeout_ms": 5000, "run_at": run_at.isoformat(), "idempotency_key": "k1",
        "backoff_base_ms": 10, "backoff_cap_ms": 100})
    assert reply.status == 201 and reply.body["state"] == "scheduled"
    assert reply.body["duplicate"] is False
    job = q.get(reply.body["id"])
    assert (job.payload, job.type, job.priority, job.max_attempts, job.timeout_ms) == (
        {"to": "ada"}, "email", 9, 3, 5000)
    assert abs(job.run_at - run_at.timestamp() * 1000) <= 1


def test_a_duplicate_idempotency_key_answers_200_with_the_original(api: Api, q: Queue) -> None:
    first = enqueue(api, q.name, idempotency_key="once")
    again = api.call("POST", f"/api/queues/{q.name}/jobs",
                     {"payload": {"other": 1}, "idempotency_key": "once"})
    assert again.status == 200
    assert again.body == {"id": first["id"], "state": "ready", "duplicate": True}
    assert q.stats().ready == 1


def test_delay_ms_schedules(api: Api, q: Queue) -> None:
    assert enqueue(api, q.name, delay_ms=60_000)["state"] == "scheduled"
    assert q.stats().scheduled == 1


def test_batch_enqueues_all_in_order(api: Api, q: Queue) -> None:
    jobs = [{"payload": i, "priority": i % 3} for i in range(50)]
    reply = api.call("POST", f"/api/queues/{q.name}/jobs/batch", {"jobs": jobs})
    assert reply.status == 201
    ids = [r["id"] for r in reply.body["jobs"]]
    assert len(set(ids)) == 50
    assert [q.get(i).payload for i in ids] == list(range(50))


def test_claim_ack_roundtrip(api: Api, q: Queue) -> None:
    jid = enqueue(api, q.name)["id"]
    job = claim_one(api, q.name, worker_id="w-http", visibility_ms=10_000)
    assert job["id"] == jid and job["state"] == "running" and job["lease"]
    assert job["worker_id"] == "w-http" and job["attempts"] == 1
    reply = api.call("POST", f"/api/jobs/{jid}/ack", {"lease": job["lease"], "result": [1, 2]})
    assert reply.status == 200 and reply.body == {"state": "succeeded"}
    view = api.call("GET", f"/api/jobs/{jid}").body
    assert view["state"] == "succeeded" and view["result"] == [1, 2]
    assert "lease" not in view


def test_claim_count_takes_several_by_priority(api: Api, q: Queue) -> None:
    low = enqueue(api, q.name, priority=1)["id"]
    high = enqueue(api, q.name, priority=200)["id"]
    reply = api.call("POST", f"/api/queues/{q.name}/claim", {"count": 5})
    assert [j["id"] for j in reply.body["jobs"]] == [high, low]


def test_claim_on_an_empty_queue_answers_204(api: Api, q: Queue) -> None:
    reply = api.call("POST", f"/api/queues/{q.name}/claim")
    assert reply.status == 204 and reply.body is None


def test_ack_with_a_stale_lease_is_409_lease_lost(api: Api, q: Queue) -> None:
    jid = enqueue(api, q.name)["id"]
    first = claim_one(api, q.name, visibility_ms=1)
    wait_until(lambda: q.reap()[0] == 1, message="reap of the expired lease")
    second = claim_one(api, q.name)
    reply = api.call("POST", f"/api/jobs/{jid}/ack", {"lease": first["lease"]})
    assert reply.status == 409 and reply.code == "lease_lost"
    assert api.call("POST", f"/api/jobs/{jid}/ack", {"lease": second["lease"]}).status == 200


def test_nack_retries_then_dies(api: Api, q: Queue) -> None:
    jid = enqueue(api, q.name, max_attempts=2)["id"]
    job = claim_one(api, q.name)
    reply = api.call("POST", f"/api/jobs/{jid}/nack",
                     {"lease": job["lease"], "error": "boom", "delay_ms": 0})
    assert reply.body == {"state": "ready", "attempts": 1, "run_at": None}
    job = claim_one(api, q.name)
    reply = api.call("POST", f"/api/jobs/{jid}/nack", {"lease": job["lease"], "error": "again"})
    assert reply.body["state"] == "dead" and reply.body["attempts"] == 2
    assert q.get(jid).last_error == "again"


def test_nack_with_backoff_schedules_and_retry_false_kills(api: Api, q: Queue) -> None:
    a, b = enqueue(api, q.name)["id"], enqueue(api, q.name)["id"]
    ja, jb = claim_one(api, q.name), claim_one(api, q.name)
    scheduled = api.call("POST", f"/api/jobs/{a}/nack", {"lease": ja["lease"],
                                                        "delay_ms": 60_000}).body
    assert scheduled["state"] == "scheduled" and scheduled["run_at"].endswith("Z")
    dead = api.call("POST", f"/api/jobs/{b}/nack", {"lease": jb["lease"], "retry": False}).body
    assert dead["state"] == "dead"


def test_heartbeat_extends_the_lease(api: Api, q: Queue) -> None:
    jid = enqueue(api, q.name)["id"]
    job = claim_one(api, q.name, visibility_ms=1000)
    reply = api.call("POST", f"/api/jobs/{jid}/heartbeat",
                     {"lease": job["lease"], "visibility_ms": 600_000})
    assert reply.status == 200
    assert reply.body["lease_deadline"] > job["lease_deadline"]
    assert q.get(jid).lease_deadline - q.get(jid).started_at >= 599_000
    bad = api.call("POST", f"/api/jobs/{jid}/heartbeat", {"lease": "not-the-lease"})
    assert bad.status == 409 and bad.code == "lease_lost"


def test_get_and_cancel(api: Api, q: Queue) -> None:
    jid = enqueue(api, q.name)["id"]
    assert api.call("GET", f"/api/jobs/{jid}").body["state"] == "ready"
    reply = api.call("DELETE", f"/api/jobs/{jid}")
    assert reply.status == 200 and reply.body == {"state": "cancelled"}
    again = api.call("DELETE", f"/api/jobs/{jid}")
    assert again.status == 409 and again.code == "conflict"
    missing = api.call("GET", f"/api/jobs/{q.name}.12345")
    assert missing.status == 404 and missing.code == "not_found"


def test_cancel_of_a_running_job_is_requested_202_and_wins_over_its_ack(
        api: Api, q: Queue) -> None:
    jid = enqueue(api, q.name)["id"]
    claimed = claim_one(api, q.name)
    for _ in range(2):  # asked again: the same answer
        reply = api.call("DELETE", f"/api/jobs/{jid}")
        assert reply.status == 202
        assert reply.body == {"state": "running", "cancel_requested": True}
    view = api.call("GET", f"/api/jobs/{jid}").body
    assert (view["state"], view["cancel_requested"]) == ("running", True)
    api.call("POST", f"/api/jobs/{jid}/ack", {"lease": claimed["lease"], "result": 1})
    assert q.get(jid).state == "cancelled"
    finished = api.call("DELETE", f"/api/jobs/{jid}")
    assert finished.status == 409 and finished.code == "conflict"
    missing = api.call("DELETE", f"/api/jobs/{q.name}.12345")
    assert missing.status == 404 and missing.code == "not_found"


def test_an_http_worker_reports_progress_and_hears_of_a_cancel(api: Api, q: Queue) -> None:
    jid = enqueue(api, q.name)["id"]
    lease = claim_one(api, q.name)["lease"]
    path = f"/api/jobs/{jid}"
    reply = api.call("POST", path + "/progress", {"lease": lease, "progress": 0.4,
                                                  "info": {"rows": 40}})
    assert reply.status == 200 and reply.body == {"cancel_requested": False}
    view = api.call("GET", path).body
    assert (view["progress"], view["progress_info"]) == (0.4, {"rows": 40})
    beat = api.call("POST", path + "/heartbeat", {"lease": lease})
    assert beat.body["cancel_requested"] is False
    assert api.call("DELETE", path).status == 202
    assert api.call("POST", path + "/heartbeat", {"lease": lease}).body["cancel_requested"]
    assert api.call("POST", path + "/progress", {"lease": lease, "progress": 1}).body == {
        "cancel_requested": True}
    for body, status, code in [({"lease": lease, "progress": 1.5}, 400, "invalid_argument"),
                               ({"lease": lease, "progress": True}, 400, "invalid_argument"),
                               ({"lease": lease}, 400, "invalid_argument"),
                               ({"lease": "stale", "progress": 0.5}, 409, "lease_lost")]:
        refused = api.call("POST", path + "/progress", body)
        assert (refused.status, refused.code) == (status, code), body
    assert q.get(jid).progress == 1.0


def test_queue_stats_and_list(api: Api, q: Queue) -> None:
    enqueue(api, q.name)
    enqueue(api, q.name, delay_ms=60_000)
    stats = api.call("GET", f"/api/queues/{q.name}").body
    assert (stats["ready"], stats["scheduled"], stats["paused"]) == (1, 1, False)
    assert stats["totals"]["enqueued"] == 2
    listed = {s["queue"]: s for s in api.call("GET", "/api/queues").body["queues"]}
    # the oldest ready job has only aged between the two reads
    assert listed[q.name].pop("latency_ms") >= stats.pop("latency_ms")
    assert listed[q.name] == stats
    assert listed["listed-before-use"]["ready"] == 0  # from --queues, never used


def test_unused_queue_has_zero_stats(api: Api, queue_name: str) -> None:
    stats = api.call("GET", f"/api/queues/{queue_name}").body
    assert stats["ready"] == stats["dead"] == 0 and stats["rate_limit"] is None


def test_pause_and_resume(api: Api, q: Queue) -> None:
    enqueue(api, q.name)
    assert api.call("POST", f"/api/queues/{q.name}/pause").body == {"queue": q.name,
                                                                   "paused": True}
    assert api.call("POST", f"/api/queues/{q.name}/claim").status == 204
    assert q.stats().paused
    assert api.call("POST", f"/api/queues/{q.name}/resume").body["paused"] is False
    assert api.call("POST", f"/api/queues/{q.name}/claim").status == 200


def test_rate_limit_set_throttles_with_retry_after_and_clears(api: Api, q: Queue) -> None:
    for _ in range(3):
        enqueue(api, q.name)
    reply = api.call("PUT", f"/api/queues/{q.name}/rate-limit", {"rate": 0.5, "burst": 1})
    assert reply.body == {"queue": q.name, "rate_limit": {"rate": 0.5, "burst": 1}}
    assert api.call("POST", f"/api/queues/{q.name}/claim").status == 200
    throttled = api.call("POST", f"/api/queues/{q.name}/claim")
    assert throttled.status == 204 and 1 <= int(throttled.headers["Retry-After"]) <= 2
    cleared = api.call("DELETE", f"/api/queues/{q.name}/rate-limit")
    assert cleared.body == {"queue": q.name, "rate_limit": None}
    assert len(api.call("POST", f"/api/queues/{q.name}/claim", {"count": 5}).body["jobs"]) == 2


def test_the_slowest_rate_still_gives_a_sane_retry_after(api: Api, q: Queue) -> None:
    """At MIN_RATE a throttled claim is told to come back in at most 1 / MIN_RATE seconds, a
    whole number (a rate of 5e-324 used to drop the header, 1e-9 to say 1000000000)."""
    for _ in range(2):
        enqueue(api, q.name)
    assert api.call("PUT", f"/api/queues/{q.name}/rate-limit",
                    {"rate": MIN_RATE, "burst": 1}).status == 200
    assert api.call("POST", f"/api/queues/{q.name}/claim").status == 200
    throttled = api.call("POST", f"/api/queues/{q.name}/claim")
    assert throttled.status == 204
    assert throttled.headers["Retry-After"].isdigit()
    assert 1 / MIN_RATE - 5 <= int(throttled.headers["Retry-After"]) <= 1 / MIN_RATE


def _kill(api: Api, q: Queue, n: int) -> list[str]:
    ids = [enqueue(api, q.name, max_attempts=1)["id"] for _ in range(n)]
    for job in q.claim(n):
        q.nack(job.id, job.lease or "", "fatal")
    return ids


def test_dead_letters_list_page_requeue_and_purge(api: Api, q: Queue) -> None:
    ids = _kill(api, q, 5)
    page = api.call("GET", f"/api/queues/{q.name}/dead?limit=2").body
    assert [j["id"] for j in page["jobs"]] == ids[::-1][:2]
    rest = api.call("GET", f"/api/queues/{q.name}/dead?limit=10&cursor={page['next_cursor']}")
    assert [j["id"] for j in rest.body["jobs"]] == ids[::-1][2:]
    assert rest.body["next_cursor"] is None
    one = api.call("POST", f"/api/queues/{q.name}/dead/{ids[0]}/requeue")
    assert one.body == {"requeued": 1}
    assert q.get(ids[0]).state == "ready" and q.get(ids[0]).attempts == 0
    assert api.call("DELETE", f"/api/queues/{q.name}/dead/{ids[1]}").body == {"purged": 1}
    missing = api.call("DELETE", f"/api/queues/{q.name}/dead/{ids[1]}")
    assert missing.status == 404 and missing.code == "not_found"
    assert api.call("POST", f"/api/queues/{q.name}/dead/requeue").body == {"requeued": 3}
    _kill(api, q, 1 + 4)  # the 4 requeued plus one new, all ready: claim and kill them
    assert api.call("DELETE", f"/api/queues/{q.name}/dead").body == {"purged": 5}
    assert q.stats().dead == 0


def test_a_job_of_another_queue_is_refused_under_dead(api: Api, q: Queue) -> None:
    reply = api.call("POST", f"/api/queues/{q.name}/dead/other.123/requeue")
    assert reply.status == 400 and reply.code == "invalid_job_id"


def test_health_and_readiness_are_public(api: Api) -> None:
    public = api.with_key(None)
    assert public.call("GET", "/healthz").body["status"] == "ok"
    assert public.call("GET", "/readyz").body == {"status": "ready"}
    assert public.call("GET", "/api/openapi.json").body["openapi"].startswith("3.1")


def test_unknown_route_and_method(api: Api) -> None:
    assert api.call("GET", "/api/nothing-here").code == "not_found"
    reply = api.call("PATCH", "/api/queues")
    assert reply.status == 405 and reply.code == "method_not_allowed"
    assert "GET" in reply.headers["Allow"]


def test_requests_are_logged_without_secrets(api: Api, server, admin_key: str) -> None:
    api.call("GET", "/api/queues")
    log = server.stderr
    assert "http.request method=GET path=/api/queues status=200" in log
    assert admin_key not in log and admin_key.split("_", 2)[2] not in log  # secrets may hold "_"
    assert f"key={admin_key.split('_')[1]}" in log


def test_settings_read_and_changed_over_http(api: Api, q: Queue) -> None:
    """GET /api/queues/{q}/settings shows every setting of Queue.configure (defaults until
    set); PATCH changes those given, and the queue runs by them."""
    defaults = api.call("GET", f"/api/queues/{q.name}/settings").body
    assert defaults == {"queue": q.name, "settings": q.settings()}
    assert defaults["settings"]["max_running"] == 0
    changed = api.call("PATCH", f"/api/queues/{q.name}/settings",
                       {"max_running": 1, "group_rate": 2.5, "group_burst": 3})
    assert changed.status == 200
    assert {k: changed.body["settings"][k] for k in ("max_running", "group_rate",
                                                     "group_burst", "max_attempts")} == {
        "max_running": 1, "group_rate": 2.5, "group_burst": 3, "max_attempts": 5}
    q.enqueue_many([1, 2])
    assert len(q.claim(10)) == 1  # max_running, all workers together
