"""The schedule routes (issue 13 #4) against a real server: PUT is an upsert (201 then 200, the
same definition leaves the revision alone), reads with jobs:read, changes need queues:admin,
404 for an unknown schedule, and every bad input of the issue is a 400 with its code that
writes nothing. Every reply is checked against /api/openapi.json by the `api` helper."""

from __future__ import annotations

from typing import Any

import pytest

from relayq import Queue
from tests.support.helpers import keyspace
from tests.support.http import Api

BAD = [
    ({"payload": {}, "cron": "61 * * * *"}, "invalid_argument"),          # invalid cron
    ({"payload": {}, "cron": "* * *"}, "invalid_argument"),               # too few fields
    ({"payload": {}, "cron": "* * * * *", "tz": "Mars/Olympus"}, "invalid_argument"),
    ({"payload": {}, "cron": "* * * * *", "every_ms": 1000}, "invalid_argument"),  # both
    ({"payload": {}}, "invalid_argument"),                                # neither
    ({"payload": {}, "every_ms": 99}, "invalid_argument"),                # below 100 ms
    ({"payload": {}, "every_ms": 1000, "start_at": "2030-01-02T00:00:00Z",
      "end_at": "2030-01-01T00:00:00Z"}, "invalid_argument"),             # end before start
    ({"payload": {}, "every_ms": 1000, "priority": 256}, "invalid_argument"),  # template
    ({"payload": {}, "every_ms": 1000, "max_attempts": 0}, "invalid_argument"),
    ({"payload": {}, "every_ms": 1000, "type": ""}, "invalid_argument"),
    ({"payload": {}, "every_ms": 1000, "delay_ms": 5}, "invalid_argument"),    # not for ticks
    ({"payload": {}, "every_ms": 1000, "misfire": "sometimes"}, "invalid_argument"),
    ({"payload": {}, "every_ms": 1000, "paused": "yes"}, "invalid_argument"),
    ({"every_ms": 1000}, "invalid_argument"),                             # no payload
]


def test_save_read_pause_resume_trigger_delete(api: Api, q: Queue) -> None:
    base = f"/api/queues/{q.name}/schedules"
    body = {"payload": {"report": "daily"}, "cron": "0 9 * * *", "tz": "Europe/Paris",
            "type": "report", "priority": 3}
    created = api.call("PUT", f"{base}/daily", body)
    assert created.status == 201, created
    s = created.body
    assert (s["cron"], s["tz"], s["type"], s["priority"], s["paused"]) == (
        "0 9 * * *", "Europe/Paris", "report", 3, False)
    assert s["next_run_at"] is not None and s["next_run_at"].endswith(":00:00.000Z")
    again = api.call("PUT", f"{base}/daily", body)
    assert again.status == 200 and again.body["revision"] == s["revision"]
    changed = api.call("PUT", f"{base}/daily", {**body, "cron": "30 9 * * *"})
    assert changed.status == 200 and changed.body["revision"] == s["revision"] + 1
    assert api.call("GET", base).body["schedules"][0]["id"] == "daily"
    assert api.call("GET", f"{base}/daily").body["cron"] == "30 9 * * *"
    paused = api.call("POST", f"{base}/daily/pause").body
    assert paused["paused"] is True and paused["next_run_at"] is None
    resumed = api.call("POST", f"{base}/daily/resume").body
    assert resumed["paused"] is False and resumed["next_run_at"] is not None
    fired = api.call("POST", f"{base}/daily/trigger")
    assert fired.status == 201
    job = api.call("GET", f"/api/jobs/{fired.body['job_id']}").body
    assert (job["schedule_id"], job["type"], job["payload"]) == ("daily", "report",
                                                                 {"report": "daily"})
    assert job["tick_at"] is not None
    assert api.call("GET", f"{base}/daily").body["last_job_id"] == fired.body["job_id"]
    assert api.call("DELETE", f"{base}/daily").body == {"queue": q.name, "id": "daily",
                                                         "deleted": True}
    for method, path in (("GET", "daily"), ("DELETE", "daily"), ("POST", "daily/pause"),
                         ("POST", "daily/resume"), ("POST", "daily/trigger")):
        reply = api.call(method, f"{base}/{path}")
        assert (reply.status, reply.code) == (404, "not_found"), (method, path)


def test_a_schedules_jobs_take_its_group(api: Api, q: Queue) -> None:
    """Fair queues: a template's group goes with every job the schedule makes."""
    base = f"/api/queues/{q.name}/schedules"
    saved = api.call("PUT", f"{base}/per-tenant",
                     {"payload": {}, "every_ms": 60_000, "group": "tenant-7"})
    assert saved.status == 201 and saved.body["group"] == "tenant-7"
    fired = api.call("POST", f"{base}/per-tenant/trigger").body
    assert api.call("GET", f"/api/jobs/{fired['job_id']}").body["group"] == "tenant-7"
    assert [g.group for g in q.groups().groups] == ["tenant-7"]
    bad = api.call("PUT", f"{base}/per-tenant", {"payload": {}, "every_ms": 60_000,
                                                 "group": "no spaces"})
    assert (bad.status, bad.code) == (400, "invalid_argument")


@pytest.mark.parametrize(("body", "code"), BAD)
def test_bad_input_is_a_400_that_writes_nothing(api: Api, q: Queue, r: Any,
                                                body: dict[str, Any], code: str) -> None:
    q.enqueue({})  # the queue exists: its keyspace must stay as it is
    before = keyspace(r, q.name)
    reply = api.call("PUT", f"/api/queues/{q.name}/schedules/s", body)
    assert (reply.status, reply.code) == (400, code), reply
    assert keyspace(r, q.name) == before


def test_a_bad_id_is_a_400(api: Api, q: Queue) -> None:
    reply = api.call("PUT", f"/api/queues/{q.name}/schedules/{'x' * 129}",
                     {"payload": {}, "every_ms": 1000})
    assert (reply.status, reply.code) == (400, "invalid_argument")
    assert q.schedules() == []


def test_scopes(api: Api, q: Queue, scoped_keys: dict[str, str]) -> None:
    base = f"/api/queues/{q.name}/schedules"
    reader = api.with_key(scoped_keys["jobs:read"])
    writer = api.with_key(scoped_keys["jobs:write"])
    admin = api.with_key(scoped_keys["queues:admin"])
    assert writer.call("PUT", f"{base}/s", {"payload": 1, "every_ms": 1000}).status == 403
    assert admin.call("PUT", f"{base}/s", {"payload": 1, "every_ms": 1000}).status == 201
    assert reader.call("GET", base).status == 200
    assert reader.call("GET", f"{base}/s").status == 200
    for verb in ("pause", "resume", "trigger"):
        assert reader.call("POST", f"{base}/s/{verb}").status == 403
    assert reader.call("DELETE", f"{base}/s").status == 403
    assert admin.call("DELETE", f"{base}/s").status == 200
