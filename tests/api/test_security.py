"""Security of the HTTP API: auth bypass attempts, scope escalation, the constant-time key check,
secrets never logged, failed-auth throttling (429) and the security headers on API replies."""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

import relayq
import relayq.auth
from relayq import Queue
from relayq.api.statuses import status_of
from relayq.auth import KeyStore
from relayq.errors import TooManyRequests, Unauthorized
from relayq.keys import API_KEYS
from relayq.throttle import AuthThrottle
from relayq.tools.redis_process import RedisProcess
from relayq.tools.server_process import ServerProcess
from tests.support.helpers import keyspace, wait_until
from tests.support.http import Api
from tests.support.server import ROOT


def raw_request(url: str, method: str, path: str, headers: list[tuple[str, bytes | str]],
                body: bytes = b"", source: str | None = None) -> tuple[int, Any, Any]:
    """One request with exactly these header lines (repeats and odd bytes included)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10,
                                      source_address=(source, 0) if source else None)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for name, value in headers:
            conn.putheader(name, value)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        data = response.read()
        is_json = response.headers.get("Content-Type", "").startswith("application/json")
        return response.status, json.loads(data) if is_json else data, response.headers
    finally:
        conn.close()


# -- bypass attempts ----------------------------------------------------------------------------


def _variants(key: str, other: str) -> list[str]:
    key_id, secret = key.split("_", 2)[1:]
    other_secret = other.split("_", 2)[2]
    return [
        f"Bearer {key}x", f"Bearer {key[:-1]}", f"Bearer {key.upper()}",
        f"Bearer {key.replace('rq_', 'RQ_')}", f"Bearer {key} {key}",
        f"Bearer {key},Bearer {key}", f"Bearer rq_{key_id}_{other_secret}",
        f"Bearer {key.replace('_', '-')}", f"Bearer\t{key}", f"Bearer: {key}", key,
        f"Token {key}", f"Basic {base64.b64encode(f'admin:{key}'.encode()).decode()}",
        "Bearer eyJhbGciOiJub25lIn0.eyJzY29wZSI6ImFkbWluIn0.",  # an unsigned JWT
        f"Bearer rq_{key_id}_", f"Bearer rq__{secret}", f"Bearer rq_{key_id}_{secret}=",
        f"Bearer {hashlib.sha256(secret.encode()).hexdigest()}", "Bearer *", "",
    ]


def test_auth_bypass_attempts_are_401_and_write_nothing(api: Api, r, q: Queue, admin_key: str,
                                                        scoped_keys: dict[str, str]) -> None:
    path = f"/api/queues/{q.name}/jobs"
    for header in _variants(admin_key, scoped_keys["jobs:read"]):
        before = keyspace(r, q.name)
        status, body, headers = raw_request(api.url, "POST", path, [("Authorization", header)],
                                            b'{"payload": 1}')
        assert (status, body["error"]["code"]) == (401, "unauthorized"), header
        assert headers["WWW-Authenticate"].startswith("Bearer")
        assert keyspace(r, q.name) == before, header


@pytest.mark.parametrize("value", [b"Bearer \x00", b"Bearer rq_\xff\xfe",
                                   b"Bearer \xc3\xa9t\xc3\xa9", b"Bearer " + b"A" * 8000,
                                   b"\x1b[31mBearer",
                                   b"Bearer rq_0123456789abcdef_" + b"\x7f" * 43])
def test_odd_bytes_in_the_header_are_refused(api: Api, r, q: Queue, value: bytes) -> None:
    """Refused by relayq (401) or, for bytes HTTP does not allow, by the server (400)."""
    before = keyspace(r, q.name)
    status, body, _ = raw_request(api.url, "POST", f"/api/queues/{q.name}/jobs",
                                  [("Authorization", value)], b'{"payload": 1}')
    assert status in (400, 401), (status, body)
    if status == 401:
        assert body["error"]["code"] == "unauthorized"
    assert keyspace(r, q.name) == before


def test_keys_elsewhere_than_the_authorization_header_do_not_count(
        api: Api, r, q: Queue, admin_key: str) -> None:
    before = keyspace(r, q.name)
    for path, headers in [
        (f"/api/queues/{q.name}/jobs?access_token={admin_key}", []),
        (f"/api/queues/{q.name}/jobs?api_key={admin_key}", []),
        (f"/api/queues/{q.name}/jobs", [("X-Api-Key", admin_key)]),
        (f"/api/queues/{q.name}/jobs", [("Cookie", f"api_key={admin_key}")]),
    ]:
        status, body, _ = raw_request(api.url, "POST", path, headers, b'{"payload": 1}')
        assert (status, body["error"]["code"]) == (401, "unauthorized"), path
    assert keyspace(r, q.name) == before


@pytest.mark.parametrize("order", ["good first", "bad first"])
def test_a_good_and_a_bad_authorization_header_together_are_401(
        api: Api, r, q: Queue, admin_key: str, order: str) -> None:
    pair = [("Authorization", f"Bearer {admin_key}"), ("Authorization", "Bearer rq_x")]
    status, body, _ = raw_request(api.url, "GET", f"/api/queues/{q.name}",
                                  pair if order == "good first" else pair[::-1])
    assert (status, body["error"]["code"]) == (401, "unauthorized")


@pytest.mark.parametrize("template", ["BEARER {}", "Bearer   {}", "bearer {}  "])
def test_the_scheme_and_spacing_are_lenient_but_the_key_is_exact(
        api: Api, q: Queue, admin_key: str, template: str) -> None:
    status, _, _ = raw_request(api.url, "GET", f"/api/queues/{q.name}",
                               [("Authorization", template.format(admin_key))])
    assert status == 200


# -- scope escalation ---------------------------------------------------------------------------


@pytest.mark.parametrize(("holder", "scopes", "status"), [
    ("keys:admin", ["admin"], 403), ("keys:admin", ["jobs:write"], 403),
    ("keys:admin", ["keys:admin", "admin"], 403), ("keys:admin", ["keys:admin"], 201),
    ("jobs:write", ["jobs:write"], 403), ("queues:admin", ["queues:admin"], 403),
    ("admin", ["ADMIN"], 400), ("admin", ["admin "], 400), ("admin", ["*"], 400),
    ("admin", ["jobs:*"], 400), ("admin", [["admin"]], 400), ("admin", [None], 400),
])
def test_a_key_cannot_make_a_key_with_more_than_it_holds(
        api: Api, r, scoped_keys: dict[str, str], holder: str, scopes: list[Any],
        status: int) -> None:
    before = r.hgetall(API_KEYS)
    reply = api.with_key(scoped_keys[holder]).call("POST", "/api/keys",
                                                   {"name": "escalate", "scopes": scopes})
    assert reply.status == status, reply
    if status != 201:
        assert r.hgetall(API_KEYS) == before
    else:
        api.call("DELETE", f"/api/keys/{reply.body['id']}")


@pytest.mark.parametrize(("holder", "target", "status"), [
    ("keys:admin", ["admin"], 403), ("keys:admin", ["jobs:read"], 403),
    ("keys:admin", ["keys:admin", "jobs:read"], 403), ("keys:admin", ["keys:admin"], 200),
    ("admin", ["admin"], 200),  # other admin keys remain
])
def test_a_key_cannot_revoke_a_key_with_more_than_it_holds(
        api: Api, r, scoped_keys: dict[str, str], holder: str, target: list[str],
        status: int) -> None:
    """Revoke follows create's rule: a keys:admin key cannot take out an admin (or any stronger)
    key, so it cannot lock the administrators out."""
    made = KeyStore(r).create("revoke-target", target)[0]
    before = r.hgetall(API_KEYS)
    reply = api.with_key(scoped_keys[holder]).call("DELETE", f"/api/keys/{made.id}")
    assert reply.status == status, reply
    if status == 200:
        assert made.id not in r.hgetall(API_KEYS)
    else:
        assert reply.code == "forbidden" and "does not hold" in reply.body["error"]["message"]
        assert r.hgetall(API_KEYS) == before
        KeyStore(r).revoke(made.id)


def test_a_repeated_scopes_field_is_checked_as_read(api: Api, r,
                                                    scoped_keys: dict[str, str]) -> None:
    """JSON with the field twice: the last one counts, and it is the one checked."""
    before = r.hgetall(API_KEYS)
    raw = b'{"name": "dup", "scopes": ["keys:admin"], "scopes": ["admin"]}'
    reply = api.with_key(scoped_keys["keys:admin"]).call("POST", "/api/keys", raw=raw)
    assert (reply.status, reply.code) == (403, "forbidden")
    assert r.hgetall(API_KEYS) == before


# -- the key check ------------------------------------------------------------------------------


class CommandLog:
    """Passes every call on to a Redis client, noting the command's name."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.commands: list[str] = []

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.client, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            self.commands.append(name)
            return method(*args, **kwargs)

        return call


def test_the_key_check_is_one_lookup_and_one_constant_time_compare(
        r, monkeypatch: pytest.MonkeyPatch) -> None:
    store = KeyStore(r)
    record, key = store.create("timing", ["jobs:read"])
    _, other = store.create("timing-other", ["jobs:read"])
    secret, other_secret = key.split("_", 2)[2], other.split("_", 2)[2]
    unknown_id = next(i for i in ("0123456789abcdef", "fedcba9876543210")
                      if r.hget(API_KEYS, i) is None)
    compared: list[tuple[Any, Any]] = []
    real = hmac.compare_digest
    monkeypatch.setattr(relayq.auth.hmac, "compare_digest",
                        lambda a, b: compared.append((a, b)) or real(a, b))
    for attempt, good in [(key, True), (f"rq_{record.id}_{other_secret}", False),
                          (f"rq_{unknown_id}_{secret}", False)]:
        compared.clear()
        spy = CommandLog(r)
        checker = KeyStore(spy)
        if good:
            assert checker.authenticate(attempt).id == record.id
        else:
            with pytest.raises(Unauthorized):
                checker.authenticate(attempt)
        assert spy.commands == ["hget"], "one O(1) lookup by id, nothing else"
        assert len(compared) == 1, "every check ends in exactly one digest comparison"
        (a, b), = compared
        assert isinstance(a, str) and isinstance(b, str) and len(a) == len(b) == 64


# -- secrets in logs ----------------------------------------------------------------------------


def test_no_secret_is_ever_logged(queue_name: str) -> None:
    with RedisProcess() as redis_server:
        server = ServerProcess(redis_server.url, "--log-level", "debug", cwd=ROOT).start()
        try:
            admin = server.printed_key()
            assert admin is not None
            api = Api(server.url, admin, None)
            made = api.call("POST", "/api/keys", {"name": "logged?", "scopes": ["jobs:read"]})
            other = made.body["key"]
            key_id = admin.split("_")[1]
            wrong = f"rq_{key_id}_{'W' * 43}"
            secrets_used = [admin, other, wrong]
            for key in (admin, other, wrong, "rq_garbage", f"{admin}x"):
                api.with_key(key).call("GET", f"/api/queues/{queue_name}")
                api.with_key(key).call("POST", f"/api/queues/{queue_name}/jobs", {"payload": 1})
            api.with_key(None).call("GET", f"/api/queues/{queue_name}?access_token={admin}")
            api.call("GET", f"/api/queues/{queue_name}?access_token={other}")
            api.call("GET", f"/api/queues/{queue_name}/dead?api_key={admin}")
            redis_server.kill()  # errors get logged too: with the key in use
            assert api.call("GET", f"/api/queues/{queue_name}").status == 503
            redis_server.start()
            api.call("DELETE", f"/api/keys/{made.body['id']}")
            logs = server.stderr
        finally:
            server.stop()
    lines = logs.splitlines()
    assert any("http.request" in line and f"key={key_id}" in line for line in lines)
    assert any("http.unavailable" in line for line in lines)
    for secret in secrets_used:
        part = secret.split("_", 2)[2]
        digest = hashlib.sha256(part.encode()).hexdigest()
        for line in lines:
            assert part not in line and digest not in line, line


# -- throttling failed authentication -----------------------------------------------------------


def test_the_throttle_bucket() -> None:
    now = [100.0]
    throttle = AuthThrottle(rate=2.0, burst=3, max_addresses=2, clock=lambda: now[0])
    assert [throttle.failed("a") for _ in range(3)] == [False, False, True]
    with pytest.raises(TooManyRequests) as refused:
        throttle.check("a")
    assert refused.value.retry_after_s == 1 and status_of(refused.value) == 429
    throttle.check("b")  # another address has its own bucket
    now[0] += 0.5  # one failure forgiven
    throttle.check("a")
    assert throttle.failed("a") is True
    throttle.failed("b")
    throttle.failed("c")  # a third address: the least recently failed ("a") is dropped
    assert len(throttle) == 2
    throttle.check("a")
    off = AuthThrottle(burst=0)
    assert not any(off.failed("a") for _ in range(100))
    off.check("a")


@pytest.fixture
def strict_server(redis_url: str) -> Iterator[ServerProcess]:
    # one worker process: each worker keeps the buckets of the requests it serves
    server = ServerProcess(redis_url, "--workers", "1", "--auth-failure-burst", "3",
                           "--auth-failure-rate", "2", cwd=ROOT).start()
    yield server
    server.stop()


def test_failed_authentications_are_throttled_per_address(strict_server: ServerProcess,
                                                          admin_key: str, q: Queue) -> None:
    url, path = strict_server.url, f"/api/queues/{q.name}"

    def get(key: str, source: str = "127.0.0.1") -> tuple[int, Any, Any]:
        return raw_request(url, "GET", path, [("Authorization", f"Bearer {key}")],
                           source=source)

    assert [get("rq_bad")[0] for _ in range(3)] == [401, 401, 401]
    status, body, headers = get(admin_key)  # a good key is refused too: nothing to learn
    assert (status, body["error"]["code"], headers["Retry-After"]) == (
        429, "too_many_requests", "1")
    assert raw_request(url, "GET", "/healthz", [])[0] == 200  # public routes: never
    assert get(admin_key, source="127.0.0.2")[0] == 200  # another address: its own bucket
    assert get("rq_bad", source="127.0.0.2")[0] == 401
    wait_until(lambda: get(admin_key)[0] == 200, timeout=5, interval=0.1,
               message="a token to come back")
    assert [get(admin_key)[0] for _ in range(10)] == [200] * 10  # success costs nothing
    server_log = strict_server.stderr
    assert "auth.throttled" in server_log and "address=127.0.0.1" in server_log


# -- headers ------------------------------------------------------------------------------------


def test_api_replies_carry_security_headers(api: Api, q: Queue, server: ServerProcess) -> None:
    replies = [api.call("GET", f"/api/queues/{q.name}"),
               api.call("POST", f"/api/queues/{q.name}/claim"),  # 204
               api.call("GET", "/api/jobs/nope"),  # 400
               api.with_key(None).call("GET", "/api/queues"),  # 401
               api.call("GET", "/api/no-such-route"),  # 404
               api.call("GET", "/api/openapi.json"), api.call("GET", "/healthz"),
               api.call("GET", "/readyz")]
    for reply in replies:
        assert reply.headers["X-Content-Type-Options"] == "nosniff", reply
        assert reply.headers["Cache-Control"] == "no-store", reply
        assert reply.headers["X-Frame-Options"] == "DENY"
        assert reply.headers["Referrer-Policy"] == "no-referrer"
    stream = api.http.request("GET", server.url + "/api/events",
                              headers={"Authorization": f"Bearer {api.key}"},
                              preload_content=False, retries=False)
    stream.close()
    assert stream.headers["X-Content-Type-Options"] == "nosniff"
    assert stream.headers["Cache-Control"] == "no-cache"  # the stream's own choice is kept
