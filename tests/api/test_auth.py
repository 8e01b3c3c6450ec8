"""API keys end to end: every route × no key / bad key / each scope gives exactly the 401, 403
or 2xx the SPEC implies; revoke is immediate; keys are stored only as hashes; the bootstrap admin
key; `--auth off`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import urllib3

import relayq
from relayq import Queue
from relayq.auth import ADMIN, SCOPES, KeyStore
from relayq.errors import LastAdminKey
from relayq.keys import API_KEYS
from relayq.tools.redis_process import RedisProcess
from tests.support.http import Api
from tests.support.server import start_server

BAD_KEY = "rq_0123456789abcdef_" + "B" * 43

Prepared = tuple[str, str, Any]  # method, path, body


def _claim(q: Queue) -> Prepared:
    q.enqueue({"n": 1})
    return "POST", f"/api/queues/{q.name}/claim", None


def _lease_op(q: Queue, verb: str) -> Prepared:
    """A request to ack, nack, heartbeat or report progress of a job this test holds."""
    job_id = q.enqueue({"n": 1}).id
    (job,) = q.claim()
    return "POST", f"/api/jobs/{job_id}/{verb}", {"lease": job.lease}


def _leases(q: Queue) -> Prepared:
    """A batched heartbeat of a job this test holds."""
    q.enqueue({"n": 1})
    (job,) = q.claim()
    return "POST", f"/api/queues/{q.name}/heartbeat", {"leases": [{"id": job.id,
                                                                   "lease": job.lease}]}


def _progress(q: Queue) -> Prepared:
    method, path, body = _lease_op(q, "progress")
    return method, path, {**body, "progress": 0.5}


def _schedule(q: Queue) -> str:
    """The path of a schedule this test saved."""
    q.schedule("s", {}, every_ms=60_000)
    return f"/api/queues/{q.name}/schedules/s"


def _dead(q: Queue) -> str:
    job_id = q.enqueue({"n": 1}, max_attempts=1).id
    (job,) = q.claim()
    q.nack(job_id, job.lease or "", "fatal")
    return job_id


def _key_id(redis_url: str) -> str:
    """A key that both keys:admin and admin may revoke (a key revokes only keys whose scopes it
    holds)."""
    return KeyStore(relayq.connect(redis_url)).create("to-revoke", ["keys:admin"])[0].id


# route -> (scope it needs or None when public, how to make one request that succeeds)
ROUTES: dict[str, tuple[str | None, Callable[[Queue, str], Prepared]]] = {
    "enqueue": ("jobs:write", lambda q, _: ("POST", f"/api/queues/{q.name}/jobs",
                                            {"payload": 1})),
    "batch": ("jobs:write", lambda q, _: ("POST", f"/api/queues/{q.name}/jobs/batch",
                                          {"jobs": [{"payload": 1}]})),
    "flows": ("jobs:write", lambda q, _: ("POST", "/api/flows", {"jobs": [
        {"ref": "a", "queue": q.name, "payload": 1},
        {"ref": "b", "queue": q.name, "payload": 2, "depends_on": ["a"]}]})),
    "cancel": ("jobs:write", lambda q, _: ("DELETE", f"/api/jobs/{q.enqueue(1).id}", None)),
    "get": ("jobs:read", lambda q, _: ("GET", f"/api/jobs/{q.enqueue(1).id}", None)),
    "stats": ("jobs:read", lambda q, _: ("GET", f"/api/queues/{q.name}", None)),
    "queues": ("jobs:read", lambda q, _: ("GET", "/api/queues", None)),
    "jobs of a state": ("jobs:read", lambda q, _: (
        "GET", f"/api/queues/{q.name}/jobs?state=ready", None)),
    "workers": ("jobs:read", lambda q, _: ("GET", "/api/workers", None)),
    "events": ("jobs:read", lambda q, _: ("GET", f"/api/events?queue={q.name}", None)),
    "claim": ("jobs:work", lambda q, _: _claim(q)),
    "ack": ("jobs:work", lambda q, _: _lease_op(q, "ack")),
    "nack": ("jobs:work", lambda q, _: _lease_op(q, "nack")),
    "heartbeat": ("jobs:work", lambda q, _: _lease_op(q, "heartbeat")),
    "settle": ("jobs:work", lambda q, _: ("POST", f"/api/queues/{q.name}/settle", {"claim": 1})),
    "heartbeat many": ("jobs:work", lambda q, _: _leases(q)),
    "reap": ("jobs:work", lambda q, _: ("POST", f"/api/queues/{q.name}/reap", None)),
    "worker entry": ("jobs:work", lambda q, _: ("PUT", f"/api/workers/w-{q.name}", {
        "host": "h", "pid": 1, "queues": [q.name], "concurrency": 1, "ttl_ms": 1000})),
    "worker entry removed": ("jobs:work", lambda q, _: (
        "DELETE", f"/api/workers/w-{q.name}", None)),
    "progress": ("jobs:work", lambda q, _: _progress(q)),
    "schedule save": ("queues:admin", lambda q, _: (
        "PUT", f"/api/queues/{q.name}/schedules/s", {"payload": 1, "every_ms": 60_000})),
    "schedules": ("jobs:read", lambda q, _: ("GET", f"/api/queues/{q.name}/schedules", None)),
    "schedule": ("jobs:read", lambda q, _: ("GET", _schedule(q), None)),
    "schedule delete": ("queues:admin", lambda q, _: ("DELETE", _schedule(q), None)),
    "schedule pause": ("queues:admin", lambda q, _: ("POST", _schedule(q) + "/pause", None)),
    "schedule resume": ("queues:admin", lambda q, _: ("POST", _schedule(q) + "/resume", None)),
    "schedule trigger": ("queues:admin", lambda q, _: ("POST", _schedule(q) + "/trigger", None)),
    "pause": ("queues:admin", lambda q, _: ("POST", f"/api/queues/{q.name}/pause", None)),
    "resume": ("queues:admin", lambda q, _: ("POST", f"/api/queues/{q.name}/resume", None)),
    "rate-limit set": ("queues:admin", lambda q, _: (
        "PUT", f"/api/queues/{q.name}/rate-limit", {"rate": 5})),
    "rate-limit clear": ("queues:admin", lambda q, _: (
        "DELETE", f"/api/queues/{q.name}/rate-limit", None)),
    "settings": ("jobs:read", lambda q, _: ("GET", f"/api/queues/{q.name}/settings", None)),
    "settings change": ("queues:admin", lambda q, _: (
        "PATCH", f"/api/queues/{q.name}/settings", {"max_attempts": 3})),
    "groups": ("jobs:read", lambda q, _: ("GET", f"/api/queues/{q.name}/groups", None)),
    "group limits set": ("queues:admin", lambda q, _: (
        "PUT", f"/api/queues/{q.name}/groups/tenant-a/limits", {"max_running": 2})),
    "group limits clear": ("queues:admin", lambda q, _: (
        "DELETE", f"/api/queues/{q.name}/groups/tenant-a/limits", None)),
    "dead list": ("queues:admin", lambda q, _: ("GET", f"/api/queues/{q.name}/dead", None)),
    "dead requeue one": ("queues:admin", lambda q, _: (
        "POST", f"/api/queues/{q.name}/dead/{_dead(q)}/requeue", None)),
    "dead requeue all": ("queues:admin", lambda q, _: (
        "POST", f"/api/queues/{q.name}/dead/requeue", None)),
    "dead purge one": ("queues:admin", lambda q, _: (
        "DELETE", f"/api/queues/{q.name}/dead/{_dead(q)}", None)),
    "dead purge all": ("queues:admin", lambda q, _: (
        "DELETE", f"/api/queues/{q.name}/dead", None)),
    "keys create": ("keys:admin", lambda q, _: (
        "POST", "/api/keys", {"name": "made-in-test", "scopes": ["keys:admin"]})),
    "keys list": ("keys:admin", lambda q, _: ("GET", "/api/keys", None)),
    "keys revoke": ("keys:admin", lambda q, url: ("DELETE", f"/api/keys/{_key_id(url)}", None)),
    "session open": ("jobs:read", lambda q, _: ("POST", "/api/session", None)),
    "session close": (None, lambda q, _: ("DELETE", "/api/session", None)),
    "healthz": (None, lambda q, _: ("GET", "/healthz", None)),
    "readyz": (None, lambda q, _: ("GET", "/readyz", None)),
    "metrics": (None, lambda q, _: ("GET", "/metrics", None)),
    "openapi": (None, lambda q, _: ("GET", "/api/openapi.json", None)),
    "dashboard": (None, lambda q, _: ("GET", "/", None)),
    "dashboard icon": (None, lambda q, _: ("GET", "/favicon.svg", None)),
    "dashboard css": (None, lambda q, _: ("GET", "/css/app.css", None)),
    "dashboard js": (None, lambda q, _: ("GET", "/js/main.js", None)),
    "dashboard views": (None, lambda q, _: ("GET", "/js/views/queue.js", None)),
}

CALLERS = ["no key", "bad key", *SCOPES]


def _status(api: Api, method: str, path: str, body: Any, key: str | None) -> int:
    if path.startswith("/api/events"):  # a stream: look at the status line only
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        response = api.http.request(method, api.url + path, headers=headers,
                                    preload_content=False, retries=False)
        response.close()
        return response.status
    return api.call(method, path, body, key=key).status


def test_the_matrix_covers_every_documented_operation(checker, r, queue_name: str,
                                                      redis_url: str) -> None:
    covered = set()
    for i, (_scope, prepare) in enumerate(ROUTES.values()):
        method, path, _ = prepare(Queue(f"{queue_name}-{i}", r), redis_url)
        covered.add((method, checker.template(method, path.split("?")[0])))
    documented = {(m.upper(), p) for p, ops in checker.document["paths"].items() for m in ops}
    assert covered == documented


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("route", list(ROUTES))
def test_auth_matrix(api: Api, q: Queue, redis_url: str, scoped_keys: dict[str, str],
                     route: str, caller: str) -> None:
    scope, prepare = ROUTES[route]
    method, path, body = prepare(q, redis_url)
    key = {"no key": None, "bad key": BAD_KEY}[caller] if caller.endswith(" key") \
        else scoped_keys[caller]
    status = _status(api, method, path, body, key)
    if scope is None:
        expected = "2xx"
    elif caller in ("no key", "bad key"):
        expected = "401"
    elif caller in (scope, ADMIN):
        expected = "2xx"
    else:
        expected = "403"
    got = "2xx" if 200 <= status < 300 else str(status)
    assert got == expected, f"{caller} on {route} ({method} {path}): {status}"


def test_revoke_takes_effect_at_once(api: Api, q: Queue) -> None:
    made = api.call("POST", "/api/keys", {"name": "short-lived", "scopes": ["jobs:read"]})
    assert made.status == 201 and made.body["key"].startswith(f"rq_{made.body['id']}_")
    user = api.with_key(made.body["key"])
    assert user.call("GET", f"/api/queues/{q.name}").status == 200
    assert api.call("DELETE", f"/api/keys/{made.body['id']}").body == {
        "id": made.body["id"], "revoked": True}
    refused = user.call("GET", f"/api/queues/{q.name}")
    assert (refused.status, refused.code) == (401, "unauthorized")
    again = api.call("DELETE", f"/api/keys/{made.body['id']}")
    assert (again.status, again.code) == (404, "not_found")


def test_keys_are_stored_only_as_hashes_and_never_listed(api: Api, r) -> None:
    made = api.call("POST", "/api/keys", {"name": "secretive", "scopes": ["jobs:read"]}).body
    secret = made["key"].split("_", 2)[2]
    stored = r.hget(API_KEYS, made["id"])
    assert secret not in stored and made["key"] not in stored
    listed = api.call("GET", "/api/keys").body["keys"]
    mine = [k for k in listed if k["id"] == made["id"]]
    assert mine == [{"id": made["id"], "name": "secretive", "scopes": ["jobs:read"],
                     "created_at": made["created_at"]}]
    assert secret not in str(listed)


def test_a_key_cannot_grant_scopes_it_does_not_hold(api: Api, r, scoped_keys) -> None:
    before = r.hgetall(API_KEYS)
    keys_admin = api.with_key(scoped_keys["keys:admin"])
    reply = keys_admin.call("POST", "/api/keys", {"name": "escalate", "scopes": ["admin"]})
    assert (reply.status, reply.code) == (403, "forbidden")
    assert r.hgetall(API_KEYS) == before


def test_bootstrap_key_is_created_once_and_printed(queue_name: str) -> None:
    with RedisProcess() as redis_server:
        first = start_server(redis_server.url)
        try:
            key = first.printed_key()
            assert key is not None and "shown only this once" in first.stdout
            assert key not in first.stderr  # the log names the key's id only
            api = Api(first.url, key, None)
            assert api.call("POST", f"/api/queues/{queue_name}/jobs",
                            {"payload": 1}).status == 201
            assert [k["scopes"] for k in api.call("GET", "/api/keys").body["keys"]] == [[ADMIN]]
        finally:
            first.stop()
        second = start_server(redis_server.url)
        try:
            assert second.printed_key() is None
        finally:
            second.stop()


def test_the_last_admin_key_cannot_be_revoked_over_http() -> None:
    """Not by a keys:admin key (it does not hold admin), not by itself while it is the only one;
    once another admin key exists, either may go."""
    with RedisProcess() as redis_server:
        server = start_server(redis_server.url)
        try:
            bootstrap = server.printed_key()
            assert bootstrap is not None
            boot_id = bootstrap.split("_")[1]
            admin = Api(server.url, bootstrap, None)
            keys_admin = admin.with_key(admin.call("POST", "/api/keys", {
                "name": "key-keeper", "scopes": ["keys:admin"]}).body["key"])
            refused = keys_admin.call("DELETE", f"/api/keys/{boot_id}")
            assert (refused.status, refused.code) == (403, "forbidden")
            alone = admin.call("DELETE", f"/api/keys/{boot_id}")
            assert (alone.status, alone.code) == (409, "last_admin_key")
            assert "last key with the admin scope" in alone.body["error"]["message"]
            assert admin.call("GET", "/api/keys").status == 200  # still valid
            second = admin.call("POST", "/api/keys", {"name": "second", "scopes": [ADMIN]}).body
            successor = admin.with_key(second["key"])
            assert successor.call("DELETE", f"/api/keys/{boot_id}").status == 200
            alone = successor.call("DELETE", f"/api/keys/{second['id']}")
            assert (alone.status, alone.code) == (409, "last_admin_key")
            with relayq.Client(server.url, second["key"]) as client, \
                    pytest.raises(LastAdminKey):
                client.revoke_key(second["id"])
            assert [k["scopes"] for k in successor.call("GET", "/api/keys").body["keys"]] == [
                ["keys:admin"], [ADMIN]]
        finally:
            server.stop()


def test_auth_off_allows_everything_and_says_so(redis_url: str, queue_name: str) -> None:
    server = start_server(redis_url, "--auth", "off")
    try:
        assert "--auth off" in server.stderr and "WARNING" in server.stderr
        reply = urllib3.request("POST", f"{server.url}/api/queues/{queue_name}/jobs",
                                json={"payload": 1})
        assert reply.status == 201
    finally:
        server.stop()
