"""Bad input over HTTP: each gets its documented 4xx with a stable code, and nothing is written
(the queue's keyspace, compared byte for byte, and the key store are unchanged)."""

from __future__ import annotations

import http.client
import json
import time
from typing import Any
from urllib.parse import urlsplit

import pytest

from relayq import Queue
from relayq.keys import API_KEYS, QUEUES
from relayq.limits import MAX_DURATION_MS, MIN_RATE
from relayq.rfc3339 import format_ms
from tests.support.helpers import keyspace
from tests.support.http import Api

BIG = 1024 * 1024


def refused(api: Api, r: Any, q: Queue, method: str, path: str, body: Any = None, *,
            status: int, code: str, raw: bytes | None = None, **kw: Any) -> None:
    before, keys_before = keyspace(r, q.name), r.hgetall(API_KEYS)
    reply = api.call(method, path.format(q=q.name), body, raw=raw, **kw)
    assert (reply.status, reply.code) == (status, code), reply
    assert reply.body["error"]["message"]
    assert keyspace(r, q.name) == before
    assert r.hgetall(API_KEYS) == keys_before


ENQUEUE = "/api/queues/{q}/jobs"


def far_run_at() -> str | None:
    """A run_at just past the one bound (MAX_DURATION_MS from now)."""
    return format_ms(int(time.time() * 1000) + MAX_DURATION_MS + 86_400_000)


@pytest.mark.parametrize(("raw", "code"), [
    (b"{", "invalid_json"),
    (b'{"payload": NaN}', "invalid_json"),
    (b'{"payload": 1} trailing', "invalid_json"),
    (b"\xff\xfe{}", "invalid_json"),
    (b"[1, 2]", "invalid_argument"),
    (b'"just a string"', "invalid_argument"),
    (b"{}", "invalid_argument"),                              # payload missing
])
def test_enqueue_malformed_bodies(api: Api, r, q: Queue, raw: bytes, code: str) -> None:
    refused(api, r, q, "POST", ENQUEUE, raw=raw, status=400, code=code)


@pytest.mark.parametrize("fields", [
    {"priority": "5"}, {"priority": True}, {"priority": 256}, {"priority": -1},
    {"priority": 1.5}, {"priority": None}, {"delay_ms": -1}, {"max_attempts": 0},
    {"max_attempts": None}, {"type": 5}, {"type": ""}, {"run_at": "tomorrow"},
    {"run_at": "2030-01-01T00:00:00"}, {"run_at": 1893456000000},
    {"run_at": "2030-01-01T00:00:00Z", "delay_ms": 5}, {"run_at": "2030-W01-1T00:00Z"},
    {"run_at": "2030-01-01T00:00:00.1234567Z"}, {"run_at": "2030-01-01T00:00:00+01"},
    {"run_at": "2030-01-01 00:00:00Z"}, {"run_at": "2030-12-31T23:59:60Z"},
    {"run_at": "２０３０-01-01T00:00:00Z"}, {"run_at": far_run_at()}, {"idempotency_key": ""},
    {"idempotency_key": "k" * 513}, {"timeout_ms": 0}, {"delay": 5}, {"Payload": 1},
    {"backoff_base_ms": -1},
])
def test_enqueue_wrong_options(api: Api, r, q: Queue, fields: dict[str, Any]) -> None:
    refused(api, r, q, "POST", ENQUEUE, {"payload": 1, **fields}, status=400,
            code="invalid_argument")


def test_a_refused_enqueue_does_not_list_the_queue(api: Api, r, queue_name: str) -> None:
    """A new queue's name goes into relayq:queues only once a job was accepted: run_at in 2040
    was refused by the script only after Python (which allowed ~2047) had listed the queue."""
    for run_at in ("2040-01-01T00:00:00Z", far_run_at()):
        reply = api.call("POST", f"/api/queues/{queue_name}/jobs",
                         {"payload": 1, "run_at": run_at})
        assert (reply.status, reply.code) == (400, "invalid_argument"), reply
        assert reply.body["error"]["message"].startswith("run_at must be between 0 and")
    listed = api.call("GET", "/api/queues").body["queues"]
    assert queue_name not in [s["queue"] for s in listed] and not r.sismember(QUEUES, queue_name)
    assert api.call("POST", f"/api/queues/{queue_name}/jobs", {"payload": 1}).status == 201
    assert r.sismember(QUEUES, queue_name)


def test_payload_over_the_limit_is_413(api: Api, r, q: Queue) -> None:
    refused(api, r, q, "POST", ENQUEUE, {"payload": "x" * BIG}, status=413,
            code="payload_too_large")


def test_body_over_the_request_limit_is_413(api: Api, r, q: Queue) -> None:
    raw = b'{"payload": "' + b"x" * (16 * BIG) + b'"}'
    refused(api, r, q, "POST", ENQUEUE, raw=raw, status=413, code="payload_too_large")


@pytest.mark.parametrize(("name", "code"), [
    ("bad.name", "invalid_queue_name"), ("x" * 65, "invalid_queue_name"),
    ("sp%20ace", "invalid_queue_name"), ("%C3%A9", "invalid_queue_name"),
])
def test_bad_queue_names(api: Api, r, q: Queue, name: str, code: str) -> None:
    for method, path, body in [("POST", f"/api/queues/{name}/jobs", {"payload": 1}),
                               ("POST", f"/api/queues/{name}/claim", None),
                               ("GET", f"/api/queues/{name}", None),
                               ("POST", f"/api/queues/{name}/pause", None)]:
        refused(api, r, q, method, path, body, status=400, code=code)


# the routes under /api/jobs/<id>: method, suffix, a body that is fine but for the id
JOB_ROUTES = [("GET", "", None), ("DELETE", "", None), ("POST", "/ack", {"lease": "x"}),
              ("POST", "/nack", {"lease": "x"}), ("POST", "/heartbeat", {"lease": "x"})]


@pytest.mark.parametrize("job_id", ["nodot", "{q}.abc", "{q}.", ".123", "{q}.1.2",
                                    "{q}.123456789012345678901"])
def test_bad_job_ids(api: Api, r, q: Queue, job_id: str) -> None:
    for method, suffix, body in JOB_ROUTES:
        refused(api, r, q, method, f"/api/jobs/{job_id}{suffix}", body, status=400,
                code="invalid_job_id")


def test_unknown_jobs_are_404(api: Api, r, q: Queue) -> None:
    for method, suffix, body in JOB_ROUTES:
        refused(api, r, q, method, f"/api/jobs/{{q}}.42{suffix}", body, status=404,
                code="not_found")


@pytest.mark.parametrize("items", [
    "not-a-list", [], [{"payload": i} for i in range(1001)],
    [{"payload": 1}, {"payload": 2, "priority": 999}],
    [{"payload": 1}, {"no_payload": 2}], [{"payload": 1}, 7],
])
def test_batch_is_all_or_nothing(api: Api, r, q: Queue, items: Any) -> None:
    refused(api, r, q, "POST", "/api/queues/{q}/jobs/batch", {"jobs": items}, status=400,
            code="invalid_argument")


def test_batch_with_one_oversized_payload_writes_nothing(api: Api, r, q: Queue) -> None:
    refused(api, r, q, "POST", "/api/queues/{q}/jobs/batch",
            {"jobs": [{"payload": 1}, {"payload": "x" * BIG}]}, status=413,
            code="payload_too_large")


@pytest.mark.parametrize("body", [
    {"count": 0}, {"count": 101}, {"count": "1"}, {"wait_ms": 30_001}, {"wait_ms": -1},
    {"visibility_ms": 0}, {"worker_id": ""}, {"worker_id": 5}, {"workers": 1}, [1],
])
def test_claim_bad_input(api: Api, r, q: Queue, job_in: str, body: Any) -> None:
    refused(api, r, q, "POST", "/api/queues/{q}/claim", body, status=400,
            code="invalid_argument")


@pytest.mark.parametrize(("suffix", "body"), [
    ("/ack", {}), ("/ack", {"lease": 5}), ("/ack", {"lease": ""}), ("/ack", {"lease": "x" * 129}),
    ("/ack", {"lease": "x", "extra": 1}), ("/nack", {"lease": "x", "retry": "yes"}),
    ("/nack", {"lease": "x", "error": 5}), ("/nack", {"lease": "x", "delay_ms": -1}),
    ("/heartbeat", {"lease": "x", "visibility_ms": 0}), ("/heartbeat", {"lease": None}),
])
def test_lease_operations_bad_input(api: Api, r, q: Queue, job_in: str, suffix: str,
                                    body: Any) -> None:
    q.claim()
    refused(api, r, q, "POST", f"/api/jobs/{job_in}{suffix}", body, status=400,
            code="invalid_argument")


@pytest.mark.parametrize("body", [{}, {"rate": 0}, {"rate": "fast"}, {"rate": True},
                                  {"rate": 1, "burst": 0}, {"rate": 1e7}, {"rate": 1, "x": 1},
                                  {"rate": 5e-324}, {"rate": 1e-9}, {"rate": MIN_RATE / 2}])
def test_rate_limit_bad_input(api: Api, r, q: Queue, job_in: str, body: Any) -> None:
    refused(api, r, q, "PUT", "/api/queues/{q}/rate-limit", body, status=400,
            code="invalid_argument")


@pytest.mark.parametrize("body", [{}, {"max_running": -1}, {"max_running": "5"},
                                  {"max_running": True}, {"max_running": 1.5},
                                  {"max_running": None}, {"group_rate": 2},  # no burst
                                  {"max_attempts": 0}, {"succeeded_ttl_ms": 10**20},
                                  {"unknown": 1}, {"max_running": 2, "group_rate": -1}])
def test_settings_bad_input(api: Api, r, q: Queue, job_in: str, body: Any) -> None:
    refused(api, r, q, "PATCH", "/api/queues/{q}/settings", body, status=400,
            code="invalid_argument")


@pytest.mark.parametrize("query", ["limit=0", "limit=abc", "limit=1001", "limit=%C2%B2",
                                   "cursor=xyz", "cursor=-1", "cursor=%C2%B2", "cursor=%D9%A3",
                                   "cursor=1_0", "cursor=+1", "cursor=%205", "limit=%D9%A3"])
def test_dead_list_bad_query(api: Api, r, q: Queue, query: str) -> None:
    refused(api, r, q, "GET", f"/api/queues/{{q}}/dead?{query}", status=400,
            code="invalid_argument")


@pytest.mark.parametrize("body", [{"name": "k", "scopes": "admin"}, {"name": "k", "scopes": []},
                                  {"name": "k", "scopes": ["root"]}, {"name": "", "scopes": []},
                                  {"scopes": ["admin"]}, {"name": "k"}, {"name": 5, "scopes": []},
                                  {"name": "k", "scopes": ["admin"], "secret": "x"}])
def test_key_creation_bad_input(api: Api, r, q: Queue, body: Any) -> None:
    refused(api, r, q, "POST", "/api/keys", body, status=400, code="invalid_argument")


@pytest.mark.parametrize("header", [None, "Basic dXNlcjpwYXNz", "Bearer", "Bearer ",
                                    "Token rq_x", "Bearer not-a-key",
                                    "Bearer rq_0123456789abcdef_" + "A" * 43])
def test_odd_authorization_headers_are_401(api: Api, r, q: Queue, header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header}
    before = keyspace(r, q.name)
    reply = api.with_key(None).call("POST", f"/api/queues/{q.name}/jobs", {"payload": 1},
                                    headers=headers)
    assert (reply.status, reply.code) == (401, "unauthorized")
    assert reply.headers["WWW-Authenticate"].startswith("Bearer")
    assert keyspace(r, q.name) == before


def test_doubled_authorization_header_is_401(server, admin_key: str, r, q: Queue) -> None:
    before = keyspace(r, q.name)
    url = urlsplit(server.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    body = json.dumps({"payload": 1}).encode()
    conn.putrequest("POST", f"/api/queues/{q.name}/jobs")
    conn.putheader("Authorization", f"Bearer {admin_key}")
    conn.putheader("Authorization", f"Bearer {admin_key}")
    conn.putheader("Content-Length", str(len(body)))
    conn.endheaders(body)
    response = conn.getresponse()
    reply = json.loads(response.read())
    conn.close()
    assert (response.status, reply["error"]["code"]) == (401, "unauthorized")
    assert keyspace(r, q.name) == before


def test_the_scheme_is_case_insensitive(api: Api, q: Queue, admin_key: str) -> None:
    reply = api.with_key(None).call("GET", f"/api/queues/{q.name}",
                                    headers={"Authorization": f"bearer {admin_key}"})
    assert reply.status == 200
