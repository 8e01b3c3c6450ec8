"""Hostile input over HTTP: generated paths, headers and bodies against every route (no 5xx,
nothing written on an error); huge and deeply nested JSON; unicode and control characters in
queue names, job ids, idempotency keys and types; payloads that look like HTML or terminal
escape sequences shown safely by `relayq job` and `relayq dlq list`. (Schema-shaped requests
are schemathesis's, in test_openapi.py.)"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import unicodedata
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relayq import Queue
from relayq.api.openapi import DOCUMENT
from relayq.limits import DEFAULT_MAX_PAYLOAD_BYTES, MAX_JSON_DEPTH
from tests.core.test_refusals import nested
from tests.support.helpers import writable
from tests.support.http import Api
from tests.support.server import ROOT


def refused_untouched(api: Api, r: Any, method: str, path: str, body: Any = None, *,
                      raw: bytes | None = None, status: int, code: str) -> None:
    before = writable(r, path)
    reply = api.call(method, path, body, raw=raw)
    assert (reply.status, reply.code) == (status, code), reply
    assert writable(r, path) == before


# -- generated paths, headers and bodies --------------------------------------------------------

ROUTES = [(method.upper(), path) for path, ops in DOCUMENT["paths"].items() for method in ops
          if path != "/api/events"]
SEGMENTS = {
    "{queue}": st.one_of(st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True), st.text()),
    "{job_id}": st.one_of(st.from_regex(r"[A-Za-z0-9_-]{1,8}\.[0-9]{1,20}", fullmatch=True),
                          st.text()),
    "{key_id}": st.one_of(st.from_regex(r"[0-9a-f]{16}", fullmatch=True), st.text()),
    "{worker_id}": st.one_of(st.from_regex(r"[a-z0-9:.-]{1,40}", fullmatch=True), st.text()),
    "{schedule_id}": st.one_of(st.from_regex(r"[A-Za-z0-9_.:-]{1,40}", fullmatch=True),
                               st.text()),
    "{group}": st.one_of(st.from_regex(r"[A-Za-z0-9_.:-]{1,40}", fullmatch=True), st.text()),
    # the dashboard's files: real names, path tricks, anything
    "{name}": st.one_of(st.sampled_from(["app.css", "main.js", "../README.md", "..%2f..",
                                         ".hidden.js", "x.py"]), st.text()),
}
HEADER_NAMES = ["Accept", "Content-Type", "User-Agent", "X-Forwarded-For", "X-Request-Id",
                "Accept-Encoding", "If-None-Match", "Range", "Origin", "Cookie", "Expect",
                "Accept-Language", "Authorization", "X-Api-Key", "Forwarded"]
HEADER_VALUES = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF,
                                      exclude_characters="\x7f"), max_size=80)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20)
BODIES = st.one_of(st.none(), st.binary(max_size=300),
                   JSON_VALUES.map(lambda v: json.dumps(v).encode()))


@st.composite
def hostile_requests(draw: Any) -> tuple[str, str, dict[str, str], bytes | None]:
    method, template = draw(st.sampled_from(ROUTES))
    method = draw(st.sampled_from([method, method, method, "GET", "POST", "PUT", "DELETE",
                                   "PATCH"]))
    path = re.sub(r"\{[^}]+\}", lambda m: quote(draw(SEGMENTS[m.group(0)]), safe=""),
                  template)
    path += draw(st.sampled_from(["", "", "/", "?limit=1&limit=2", "?x=%00", "/..",
                                  "?cursor=" + quote("\u202e")]))
    headers = draw(st.dictionaries(st.sampled_from(HEADER_NAMES), HEADER_VALUES, max_size=4))
    return method, path, headers, draw(BODIES)


@given(request=hostile_requests())
@settings(max_examples=250, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_generated_paths_headers_and_bodies_never_get_a_5xx_or_write_on_error(
        api: Api, r: Any, request: tuple[str, str, dict[str, str], bytes | None]) -> None:
    method, path, headers, body = request
    if "Authorization" not in headers:
        headers["Authorization"] = f"Bearer {api.key}"
    before = writable(r, path)
    response = api.http.request(method, api.url + path, body=body, headers=headers,
                                retries=False, timeout=30)
    assert response.status < 500, (method, path, headers, body, response.data[:300])
    if response.status >= 400:
        assert writable(r, path) == before, (method, path, response.status)
        if response.headers.get("Content-Type", "").startswith("application/json"):
            error = json.loads(response.data)["error"]
            assert isinstance(error["code"], str) and isinstance(error["message"], str)


@pytest.mark.parametrize("path", ["/" + "a" * 70_000, "/api/queues/" + "%" * 3,
                                  "/api/jobs/%ZZ", "/api/queues/%2e%2e/jobs",
                                  "/api/queues/q%2Fq/jobs", "//api//queues//q//jobs"])
def test_odd_urls_are_refused_cleanly(api: Api, r: Any, path: str) -> None:
    before = writable(r, path)
    response = api.http.request("POST", api.url + path, body=b'{"payload": 1}',
                                headers={"Authorization": f"Bearer {api.key}"},
                                retries=False, timeout=30)
    assert 300 <= response.status < 500  # merged slashes: a redirect to the canonical path
    assert writable(r, path) == before


# -- huge and deeply nested JSON ----------------------------------------------------------------


@pytest.mark.parametrize("raw", [b"[" * 100_000 + b"]" * 100_000,
                                 b'{"payload": ' + b'{"a":' * 50_000 + b"1" + b"}" * 50_001,
                                 b'{"payload": ' + b"[" * 5_000 + b"]" * 5_000 + b"}"])
def test_bodies_nested_beyond_any_stack_are_invalid_json(api: Api, r: Any, q: Queue,
                                                         raw: bytes) -> None:
    refused_untouched(api, r, "POST", f"/api/queues/{q.name}/jobs", raw=raw, status=400,
                      code="invalid_json")


def test_payloads_and_results_nested_deeper_than_the_limit_are_refused(
        api: Api, r: Any, q: Queue) -> None:
    too_deep = nested(MAX_JSON_DEPTH + 1)
    path = f"/api/queues/{q.name}/jobs"
    refused_untouched(api, r, "POST", path, {"payload": too_deep}, status=400,
                      code="invalid_payload")
    refused_untouched(api, r, "POST", path + "/batch",
                      {"jobs": [{"payload": 1}, {"payload": too_deep}]}, status=400,
                      code="invalid_payload")
    job_id = q.enqueue(1).id
    (job,) = q.claim()
    refused_untouched(api, r, "POST", f"/api/jobs/{job_id}/ack",
                      {"lease": job.lease, "result": too_deep}, status=400,
                      code="invalid_payload")


def test_the_deepest_payload_accepted_is_shown_everywhere(api: Api, q: Queue) -> None:
    """A job at the nesting limit can be read back by every route that shows it (one that
    was accepted and then could not be shown answered 500 on GET)."""
    deepest = nested(MAX_JSON_DEPTH)
    job_id = api.call("POST", f"/api/queues/{q.name}/jobs", {"payload": deepest}).body["id"]
    assert api.call("GET", f"/api/jobs/{job_id}").body["payload"] == deepest
    (claimed,) = api.call("POST", f"/api/queues/{q.name}/claim").body["jobs"]
    assert claimed["payload"] == deepest
    assert api.call("POST", f"/api/jobs/{job_id}/nack",
                    {"lease": claimed["lease"], "retry": False}).status == 200
    (dead,) = api.call("GET", f"/api/queues/{q.name}/dead").body["jobs"]
    assert dead["payload"] == deepest
    other = q.enqueue(1).id
    (job,) = q.claim()
    assert api.call("POST", f"/api/jobs/{other}/ack",
                    {"lease": job.lease, "result": deepest}).status == 200
    assert api.call("GET", f"/api/jobs/{other}").body["result"] == deepest


def test_huge_values_within_the_limits_round_trip(api: Api, r: Any, q: Queue) -> None:
    wide = {f"k{i}": i for i in range(60_000)}  # about 0.9 MiB, sixty thousand members
    job_id = api.call("POST", f"/api/queues/{q.name}/jobs", {"payload": wide}).body["id"]
    assert api.call("GET", f"/api/jobs/{job_id}").body["payload"] == wide
    at_limit = "x" * (DEFAULT_MAX_PAYLOAD_BYTES - 2)  # its JSON text is exactly the limit
    assert api.call("POST", f"/api/queues/{q.name}/jobs", {"payload": at_limit}).status == 201
    big_number = int("9" * 4000)
    job_id = api.call("POST", f"/api/queues/{q.name}/jobs", {"payload": big_number}).body["id"]
    assert api.call("GET", f"/api/jobs/{job_id}").body["payload"] == big_number
    path = f"/api/queues/{q.name}/jobs"
    for raw, code in [(b'{"payload": 1e99999}', "invalid_payload"),
                      (b'{"payload": ' + b"9" * 5000 + b"}", "invalid_json"),
                      (b'{"payload": "\\ud800"}', "invalid_payload")]:
        refused_untouched(api, r, "POST", path, raw=raw, status=400, code=code)
    job_id = q.enqueue(1).id
    (job,) = q.claim()
    refused_untouched(api, r, "POST", f"/api/jobs/{job_id}/ack",
                      {"lease": job.lease, "result": "x" * DEFAULT_MAX_PAYLOAD_BYTES},
                      status=413, code="payload_too_large")


# -- unicode and control characters -------------------------------------------------------------


@pytest.mark.parametrize("name", ["q%0A", "q%00", "%EF%BD%91", "%D9%A3", "q%E2%80%8B",
                                  "%E2%80%AEq", "q%1B%5B2J", "q%20", "%F0%9F%92%A5"])
def test_unicode_and_control_characters_in_queue_names_and_ids(api: Api, r: Any,
                                                               name: str) -> None:
    refused_untouched(api, r, "POST", f"/api/queues/{name}/jobs", {"payload": 1}, status=400,
                      code="invalid_queue_name")
    for job_id in (f"{name}.1795000000000000001", "q.%D9%A1%D9%A2", "q.1%00", "q.%EF%BC%91"):
        refused_untouched(api, r, "GET", f"/api/jobs/{job_id}", status=400,
                          code="invalid_job_id")


@pytest.mark.parametrize("key", ["\x00", "a\nb\r\n", "\x1b[2J\x1b]0;t\x07", "\u202eevil",
                                 "ünïcödé", "💥" * 128, "é" * 256, "NUL\x00in the middle"])
def test_idempotency_keys_and_types_are_byte_exact(api: Api, q: Queue, key: str) -> None:
    body = {"payload": {"k": key}, "idempotency_key": key, "type": key[:50]}
    first = api.call("POST", f"/api/queues/{q.name}/jobs", body)
    assert first.status == 201
    again = api.call("POST", f"/api/queues/{q.name}/jobs", body)
    assert (again.status, again.body["id"], again.body["duplicate"]) == (
        200, first.body["id"], True)
    job = api.call("GET", f"/api/jobs/{first.body['id']}").body
    assert (job["idempotency_key"], job["type"], job["payload"]) == (key, key[:50], {"k": key})
    other = unicodedata.normalize("NFD", key)
    if other != key and len(other.encode()) <= 512:  # another spelling: another key
        assert api.call("POST", f"/api/queues/{q.name}/jobs",
                        {"payload": 1, "idempotency_key": other}).status == 201


@pytest.mark.parametrize(("key", "status"), [("€" * 170, 201), ("€" * 171, 400),
                                             ("\ud800", 400)])
def test_idempotency_key_length_is_counted_in_utf8_bytes(api: Api, r: Any, q: Queue, key: str,
                                                         status: int) -> None:
    before = writable(r, f"/api/queues/{q.name}")
    reply = api.call("POST", f"/api/queues/{q.name}/jobs",
                     raw=json.dumps({"payload": 1, "idempotency_key": key}).encode())
    assert reply.status == status
    if status == 400:
        assert reply.code == "invalid_argument" and writable(r, f"/api/queues/{q.name}") == before


# -- what the CLI shows -------------------------------------------------------------------------

HOSTILE = {"html": "<script>alert(1)</script><img src=x onerror=alert(2)>",
           "ansi": "\x1b[31mred\x1b[0m\x1b]0;pwned\x07\x1b[2J", "c1": "\x9b31m", "bidi": "\u202e",
           "lines": "one\ntwo\rthree\x08\x00"}


def unsafe_characters(text: str) -> list[str]:
    """Characters a terminal would act on: controls (but newline) and format characters."""
    return [c for c in text if c != "\n" and unicodedata.category(c) in ("Cc", "Cf")]


def test_the_cli_shows_hostile_jobs_and_dead_letters_escaped(server, admin_key: str,
                                                             q: Queue) -> None:
    job_id = q.enqueue(HOSTILE, type="\x1b[1mtype\x07", idempotency_key="\x1b[2Jkey\u202e").id
    (job,) = q.claim(worker_id="\x1b[5mworker")
    q.nack(job_id, job.lease or "", "\x1b[1mboom\x07\nTraceback line\u202e", retry=False)
    env = {**os.environ, "RELAYQ_SERVER": server.url, "RELAYQ_API_KEY": admin_key}
    for argv in (["job", job_id], ["job", job_id, "--json"], ["dlq", "list", q.name],
                 ["dlq", "list", q.name, "--json"]):
        done = subprocess.run([sys.executable, "-m", "relayq.cli.main", *argv], cwd=ROOT,
                              env=env, capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        assert unsafe_characters(done.stdout) == [], argv
        assert unsafe_characters(done.stderr) == [], argv
        if argv[0] == "job":  # shown as text, not hidden
            assert "<script>alert(1)</script>" in done.stdout
        if "--json" in argv:
            shown = json.loads(done.stdout)
            shown = shown if argv[0] == "job" else shown["jobs"][0]
            assert shown["payload"] == HOSTILE  # and the exact value for machines
    lines = subprocess.run([sys.executable, "-m", "relayq.cli.main", "dlq", "list", q.name],
                           cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=30).stdout.splitlines()
    assert len(lines) == 2, "a header and one row: the newline in the error is escaped"
    assert "\\x1b[1mboom\\x07\\nTraceback" in lines[1]


def test_the_cli_shows_hostile_key_names_escaped(redis_url: str) -> None:
    name = "\x1b]0;owned\x07\x1b[2J<b>ops</b>\u202e"
    for argv in (["keys", "create", "--name", name, "--scopes", "jobs:read"],
                 ["keys", "list"]):
        done = subprocess.run([sys.executable, "-m", "relayq.cli.main", *argv, "--redis",
                               redis_url], cwd=ROOT, capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        assert unsafe_characters(done.stdout) == [], argv
        assert "\\x1b]0;owned\\x07" in done.stdout
