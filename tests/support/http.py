"""Raw HTTP for the API tests: `Api.call()` sends one request with urllib3 and checks every
reply it gets against the server's own OpenAPI document (status documented, body valid against
its schema), so each test that talks HTTP also keeps /api/openapi.json true. `EventStream`
reads the Server-Sent Events of /api/events."""

from __future__ import annotations

import http.client
import json
import re
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import urllib3
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

DOC_URI = "urn:relayq-openapi"
# The SPEC's time format exactly: RFC 3339 UTC with milliseconds.
TIMES = FormatChecker()
TIMES.checks("date-time")(
    lambda v: not isinstance(v, str)
    or re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", v) is not None)


@dataclass
class Reply:
    status: int
    body: Any
    headers: Any

    @property
    def code(self) -> str | None:
        """The error code of an error reply."""
        return self.body["error"]["code"] if isinstance(self.body, dict) and "error" in \
            self.body else None


class OpenApiChecker:
    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        resource = Resource.from_contents(document, default_specification=DRAFT202012)
        self.registry = Registry().with_resource(DOC_URI, resource)
        self.routes = [(re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$"), path)
                       for path in document["paths"]]

    def template(self, method: str, path: str) -> str | None:
        """The most specific documented path (fewest parameters) with this method."""
        matches = [t for rx, t in self.routes
                   if rx.match(path) and method.lower() in self.document["paths"][t]]
        return min(matches, key=lambda t: t.count("{")) if matches else None

    def check(self, method: str, path: str, reply: Reply) -> None:
        template = self.template(method, path.split("?")[0])
        if template is None:
            assert reply.status in (404, 405), f"{method} {path}: undocumented, got {reply}"
            assert reply.code in ("not_found", "method_not_allowed")
            return
        operation = self.document["paths"][template][method.lower()]
        response = operation["responses"].get(str(reply.status))
        assert response is not None, f"{method} {template}: undocumented status {reply}"
        content = response.get("content", {}).get("application/json")
        if content is None:
            assert reply.body is None or not content, f"{method} {template}: unexpected body"
            return
        schema = {"$ref": DOC_URI + content["schema"]["$ref"]} if "$ref" in content.get(
            "schema", {}) else content.get("schema", {})
        validator = Draft202012Validator(schema, registry=self.registry,
                                         format_checker=TIMES)
        errors = sorted(validator.iter_errors(reply.body), key=lambda e: e.path)
        assert not errors, f"{method} {template} {reply.status}: {errors[0].message} " \
                           f"at {list(errors[0].path)} in {reply.body}"


class Api:
    """Requests to one server with one default key; every reply is checked by `checker`."""

    def __init__(self, url: str, key: str | None, checker: OpenApiChecker | None) -> None:
        self.url = url
        self.key = key
        self.checker = checker
        self.http = urllib3.PoolManager(maxsize=4)

    def call(self, method: str, path: str, body: Any = None, *, key: str | None = "default",
             raw: bytes | None = None, headers: dict[str, Any] | None = None,
             timeout: float = 30.0) -> Reply:
        sent = dict(headers or {})
        key = self.key if key == "default" else key
        if key is not None:
            sent.setdefault("Authorization", f"Bearer {key}")
        data = raw if raw is not None else None if body is None else json.dumps(body).encode()
        response = self.http.request(method, self.url + path, body=data, headers=sent,
                                     retries=False, timeout=timeout, preload_content=True)
        text = response.data
        is_json = response.headers.get("Content-Type", "").startswith("application/json")
        reply = Reply(response.status, json.loads(text) if is_json and text else
                      (text or None), response.headers)
        if self.checker is not None:
            self.checker.check(method, path, reply)
        return reply

    def with_key(self, key: str | None) -> Api:
        return Api(self.url, key, self.checker)


class EventStream:
    """An SSE client of GET /api/events: `next()` reads one event as (name, data). `key` goes
    in the Authorization header; `headers` are sent as well (a Cookie, say)."""

    def __init__(self, url: str, key: str | None, query: str = "",
                 headers: dict[str, str] | None = None) -> None:
        parts = urlsplit(url)
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=15)
        sent = dict(headers or {})
        if key:
            sent["Authorization"] = f"Bearer {key}"
        self.conn.request("GET", f"/api/events{query}", headers=sent)
        self.response = self.conn.getresponse()

    def next(self) -> tuple[str, Any]:
        name, data = "message", None
        while True:
            line = self.response.readline().decode()
            if not line:
                raise EOFError("stream ended")
            line = line.rstrip("\n")
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data = json.loads(line[6:])
            elif line == "" and data is not None:
                return name, data

    def next_of(self, name: str, deadline_s: float = 10.0) -> Any:
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            event, data = self.next()
            if event == name:
                return data
        raise AssertionError(f"no {name} event within {deadline_s}s")

    def close(self) -> None:
        self.response.close()  # else the response's file keeps the socket open
        self.conn.close()
