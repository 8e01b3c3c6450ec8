"""The dashboard's session for its event stream (`POST /api/session`): an HttpOnly, SameSite=Strict
cookie scoped to /api/events that stands for the key, never holds it, is accepted on the stream
only, and dies with its key; and a revoked key ends a stream that is already open."""

from __future__ import annotations

import time
from http.cookies import SimpleCookie
from typing import Any

import pytest

from relayq.api.events import KEY_CHECK_S
from relayq.api.security import SESSION_COOKIE
from relayq.api.session import SESSION_TTL_S
from tests.support.http import Api, EventStream


def open_session(api: Api, key: str) -> tuple[str, Any]:
    """A new session of `key`: its token and the cookie's attributes."""
    reply = api.call("POST", "/api/session", key=key)
    assert reply.status == 204, reply
    cookie = SimpleCookie(reply.headers["Set-Cookie"])[SESSION_COOKIE]
    return cookie.value, cookie


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
    cookie = SimpleCookie(reply.headers["Set-Cookie"])[SESSION_COOKIE]
    assert reply.status == 204 and cookie.value == "" and cookie["path"] == "/api/events"
    assert int(cookie["max-age"]) == 0


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
