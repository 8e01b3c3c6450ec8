"""The dashboard's session for its event stream (`POST /api/session`): an HttpOnly, SameSite=Strict
cookie scoped to /api/events (and to /api/session, to end it) that stands for the key, never holds
it, is accepted on the stream only, and dies with its key or at once on `DELETE /api/session`; a
revoked key ends a stream that is already open; the cookie is Secure behind a TLS-terminating
proxy the server was told to trust (`--behind-proxy`), and only then."""

from __future__ import annotations

import time
from http.cookies import SimpleCookie
from typing import Any

import pytest

from relayq.api.events import KEY_CHECK_S
from relayq.api.security import SESSION_COOKIE
from relayq.api.session import SESSION_TTL_S
from tests.support.http import Api, EventStream
from tests.support.server import start_server


def cookies(reply: Any) -> dict[str, Any]:
    """The session cookies a reply sets, by path."""
    morsels = [SimpleCookie(line)[SESSION_COOKIE] for line in reply.headers.getlist("Set-Cookie")]
    return {morsel["path"]: morsel for morsel in morsels}


def open_session(api: Api, key: str, headers: dict[str, str] | None = None) -> tuple[str, Any]:
    """A new session of `key`: its token and the stream cookie's attributes."""
    reply = api.call("POST", "/api/session", key=key, headers=headers)
    assert reply.status == 204, reply
    by_path = cookies(reply)
    assert set(by_path) == {"/api/events", "/api/session"}
    assert by_path["/api/events"].value == by_path["/api/session"].value
    assert all(str(c) == str(by_path["/api/events"]).replace("/api/events", path)
               for path, c in by_path.items())  # the same attributes but for the path
    return by_path["/api/events"].value, by_path["/api/events"]


def new_key(api: Api, scopes: list[str]) -> tuple[str, str]:
    made = api.call("POST", "/api/keys", {"name": "session-test", "scopes": scopes}).body
    return made["id"], made["key"]


def test_the_cookie_is_httponly_strict_short_lived_and_scoped_to_the_stream(
        api: Api, r) -> None:
    key_id, key = new_key(api, ["jobs:read"])
    token, cookie = open_session(api, key)
    assert cookie["httponly"] is True and cookie["samesite"] == "Strict"
    assert cookie["path"] == "/api/events" and int(cookie["max-age"]) == SESSION_TTL_S
    # The cookie holds a random token, not the key; Redis holds only the token's digest.
    assert key.split("_", 2)[2] not in token and token not in key
    stored = [k for k in r.scan_iter(match="relayq:session:*") if r.get(k) == key_id]
    assert len(stored) == 1 and token not in stored[0]
    assert 0 < r.ttl(stored[0]) <= SESSION_TTL_S


def test_the_stream_accepts_the_cookie_in_place_of_the_header(api: Api, server, q) -> None:
    _, key = new_key(api, ["jobs:read"])
    token, _ = open_session(api, key)
    stream = EventStream(server.url, None, f"?queue={q.name}",
                         headers={"Cookie": f"{SESSION_COOKIE}={token}"})
    try:
        assert stream.response.status == 200
        assert stream.next_of("stats")["queues"][0]["queue"] == q.name
    finally:
        stream.close()


@pytest.mark.parametrize("token", ["not-a-token", "A" * 43])
def test_a_bad_or_unknown_session_is_refused(server, token: str) -> None:
    stream = EventStream(server.url, None, headers={"Cookie": f"{SESSION_COOKIE}={token}"})
    try:
        assert stream.response.status == 401
    finally:
        stream.close()


def test_the_cookie_is_worth_nothing_on_other_routes(api: Api, admin_key: str) -> None:
    token, _ = open_session(api, admin_key)
    for method, path in (("GET", "/api/queues"), ("POST", "/api/session"),
                         ("GET", "/api/keys")):
        reply = api.call(method, path, key=None, headers={"Cookie": f"{SESSION_COOKIE}={token}"})
        assert (reply.status, reply.code) == (401, "unauthorized"), path


def test_the_key_never_goes_in_the_url(api: Api, server, admin_key: str) -> None:
    stream = EventStream(server.url, None, f"?access_token={admin_key}")
    try:
        assert stream.response.status == 401
    finally:
        stream.close()


def test_a_session_needs_jobs_read(api: Api, scoped_keys: dict[str, str]) -> None:
    reply = api.call("POST", "/api/session", key=scoped_keys["jobs:write"])
    assert (reply.status, reply.code) == (403, "forbidden")
    assert "Set-Cookie" not in reply.headers


def test_closing_expires_the_cookie(api: Api) -> None:
    reply = api.call("DELETE", "/api/session", key=None)
    assert reply.status == 204
    by_path = cookies(reply)
    assert set(by_path) == {"/api/events", "/api/session"}
    assert all(c.value == "" and int(c["max-age"]) == 0 for c in by_path.values())


def test_closing_ends_the_session_in_redis_at_once(api: Api, server, r) -> None:
    key_id, key = new_key(api, ["jobs:read"])
    token, _ = open_session(api, key)
    cookie = {"Cookie": f"{SESSION_COOKIE}={token}"}
    stream = EventStream(server.url, None, headers=cookie)
    try:
        assert stream.response.status == 200
    finally:
        stream.close()
    reply = api.call("DELETE", "/api/session", key=None, headers=cookie)
    assert reply.status == 204
    assert [k for k in r.scan_iter(match="relayq:session:*") if r.get(k) == key_id] == []
    again = EventStream(server.url, None, headers=cookie)
    try:
        assert again.response.status == 401
    finally:
        again.close()


def test_revoking_the_key_ends_its_sessions_and_its_open_streams(api: Api, server) -> None:
    key_id, key = new_key(api, ["jobs:read"])
    token, _ = open_session(api, key)
    by_cookie = EventStream(server.url, None, headers={"Cookie": f"{SESSION_COOKIE}={token}"})
    by_header = EventStream(server.url, key)
    try:
        for stream in (by_cookie, by_header):
            stream.next_of("stats")
        assert api.call("DELETE", f"/api/keys/{key_id}").status == 200
        deadline = time.monotonic() + KEY_CHECK_S + 10
        for stream in (by_cookie, by_header):
            with pytest.raises(EOFError):
                while time.monotonic() < deadline:
                    stream.next()
    finally:
        by_cookie.close()
        by_header.close()
    again = EventStream(server.url, None, headers={"Cookie": f"{SESSION_COOKIE}={token}"})
    try:
        assert again.response.status == 401
    finally:
        again.close()


def test_the_cookie_is_secure_behind_a_trusted_tls_proxy_only(api: Api, redis_url: str,
                                                              admin_key: str) -> None:
    https = {"X-Forwarded-Proto": "https"}
    _, untrusted = open_session(api, admin_key, https)  # this server trusts no proxy
    assert not untrusted["secure"]
    proxied = start_server(redis_url, env={"RELAYQ_BEHIND_PROXY": "1"})
    try:
        behind = api.with_key(admin_key)
        behind.url = proxied.url
        _, plain = open_session(behind, admin_key)
        assert not plain["secure"]
        reply = behind.call("POST", "/api/session", headers=https)
        assert all(c["secure"] for c in cookies(reply).values())
        closed = behind.call("DELETE", "/api/session", key=None, headers=https)
        assert all(c["secure"] for c in cookies(closed).values())
    finally:
        proxied.stop()


def test_behind_a_proxy_failed_auth_is_throttled_per_forwarded_client(redis_url: str) -> None:
    proxied = start_server(redis_url, "--behind-proxy", "1", "--auth-failure-burst", "1")
    try:
        api = Api(proxied.url, "rq_0123456789abcdef_" + "B" * 43, None)
        first = {"X-Forwarded-For": "192.0.2.1"}
        assert api.call("GET", "/api/queues", headers=first).status == 401
        assert api.call("GET", "/api/queues", headers=first).status == 429
        other = api.call("GET", "/api/queues", headers={"X-Forwarded-For": "192.0.2.2"})
        assert other.status == 401  # another client behind the same proxy: its own budget
    finally:
        proxied.stop()
