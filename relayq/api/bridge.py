"""Between granian and the Flask app: the RSGI application each server worker process runs
(relayq.api.cli starts granian with it). It owns what a request may hold before and while the
app runs:

- **The body is read on the event loop, never in a thread**, within `body_timeout_s` (else 408
  `request_timeout`): a client sending a byte a second holds no thread. A body longer than
  `max_request_bytes` is not read: the app answers its 413 from the Content-Length alone (a
  chunked body stops being read at the limit). Bodies being read or held share
  `body_budget_bytes` per process; past it 503 `server_busy`, so memory does not grow with the
  number of connections. (granian's own WSGI mode reads the body from the app's thread, which
  is why this layer exists.)
- **Lanes**: ordinary requests, long polls (a claim that may wait) and event streams each run
  on threads of their own, so waiting requests can never take the threads of enqueues. A lane
  that has no thread free (ordinary requests: nor a place in its short queue) answers 503
  `server_busy` with Retry-After at once instead of queueing without bound.
- **Native routes** (relayq.api.native: enqueue, settle, ack) run on the event loop
  itself once their body is read: no thread, no Flask. They count as ordinary requests (the
  lane's cap of threads + queue in flight, beyond it 503 `server_busy`), though none waits
  for a thread.
- A long poll learns that its client hung up through ``environ[CLIENT_DISCONNECTED]()``.

Connections themselves (how many, the header read deadline) are granian's: see relayq.api.cli.
"""

from __future__ import annotations

import asyncio
import io
import json
import sys
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from ..options import is_digits
from .headers import API_HEADERS

CLIENT_DISCONNECTED = "relayq.client_disconnected"
RETRY_AFTER_S = 1
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
Reply = tuple[int, list[tuple[str, str]], bytes]
JSON_HEADERS = [("Content-Type", "application/json"), *API_HEADERS.items()]


@dataclass(frozen=True)
class Limits:
    """One worker process's share of the server's limits (relayq.api.cli divides them)."""

    threads: int = 8  # ordinary requests running at once
    queue: int = 64  # ordinary requests waiting for a thread, beyond: 503
    long_polls: int = 128
    event_streams: int = 32
    max_request_bytes: int = 16 * 1024 * 1024
    body_budget_bytes: int = 64 * 1024 * 1024
    body_timeout_s: float = 10.0


def error_reply(status: int, code: str, message: str,
                extra: Iterable[tuple[str, str]] = ()) -> Reply:
    """An error reply of the API: its JSON, the API's headers and `extra` ones."""
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    return status, [*JSON_HEADERS, *extra], body


BUSY = error_reply(503, "server_busy", "the server has no room for this request now: retry "
                   "later", (("Retry-After", str(RETRY_AFTER_S)),))
TIMEOUT = error_reply(408, "request_timeout", "the request body did not arrive in time",
                      (("Connection", "close"),))


class Lane:
    """Threads for one kind of request, with a cap on how many may be in it at once. `busy`
    is only touched on the event loop's thread, so it needs no lock."""

    def __init__(self, name: str, threads: int, queue: int = 0) -> None:
        self.pool = ThreadPoolExecutor(max(1, threads), thread_name_prefix=f"relayq-{name}")
        self.limit = threads + queue
        self.busy = 0


class Bridge:
    """The RSGI application of one worker process, around the WSGI `app`."""

    def __init__(self, app: WsgiApp, limits: Limits, on_stop: Callable[[], None],
                 native: Any = None) -> None:
        """`native`: the routes served on the event loop (relayq.api.native.NativeApi)."""
        self.app = app
        self.native = native
        self.limits = limits
        self.on_stop = on_stop
        self.ordinary = Lane("http", limits.threads, limits.queue)
        # one thread beyond each cap, so that the request over it gets the app's own 503
        self.long_polls = Lane("long-poll", limits.long_polls + 1, 0)
        self.streams = Lane("events", limits.event_streams + 1, 0)
        if native is not None:
            native.offload = self.ordinary.pool  # large bodies of native routes are parsed there
        self.body_bytes = 0  # bodies read or being read now (event loop thread only)
        self.base_environ = {
            "wsgi.version": (1, 0), "wsgi.errors": sys.stderr, "wsgi.multithread": True,
            "wsgi.multiprocess": True, "wsgi.run_once": False, "SCRIPT_NAME": "",
        }

    def __rsgi_del__(self, loop: Any) -> None:
        self.on_stop()

    def _lane(self, method: str, path: str, body: bytes) -> Lane:
        if path == "/api/events":
            return self.streams
        if method == "POST" and path.endswith("/claim") and b"wait_ms" in body:
            return self.long_polls
        return self.ordinary

    async def __rsgi__(self, scope: Any, proto: Any) -> None:
        method = scope.method
        headers = scope.headers
        length_text = headers.get("content-length")
        reserved = 0
        try:
            if length_text is None and method in ("GET", "HEAD", "DELETE"):
                body, length = b"", None
            else:
                # ASCII digits only: "²".isdigit() is true, and int() of it fails
                length = int(length_text) if is_digits(length_text) else None
                if length is not None and length > self.limits.max_request_bytes:
                    body = b""  # not read: the app answers 413 from the length alone
                else:
                    reserved = length if length is not None else self.limits.max_request_bytes
                    if self.body_bytes + reserved > self.limits.body_budget_bytes:
                        reserved = 0
                        return _respond(proto, BUSY)
                    self.body_bytes += reserved
                    try:
                        async with asyncio.timeout(self.limits.body_timeout_s):
                            body = await self._read(proto, length)
                    except TimeoutError:
                        return _respond(proto, TIMEOUT)
                    if length is None:
                        length = len(body)
                        if length > self.limits.max_request_bytes:
                            body = b""
            found = self.native.match(method, scope.path) if self.native is not None else None
            lane = self.ordinary if found is not None else self._lane(method, scope.path, body)
            if lane.busy >= lane.limit:
                return _respond(proto, BUSY)
            if found is not None:  # served here, on the event loop, within the lane's cap
                lane.busy += 1
                try:
                    return _respond(proto, await self.native.serve(*found, scope, body, length))
                finally:
                    lane.busy -= 1
            environ = self._environ(scope, headers, body, length)
            lane.busy += 1
            try:
                if lane is self.streams:
                    await self._stream(proto, environ)
                    return None
                watch = None
                if lane is self.long_polls:
                    gone = asyncio.Event()
                    watch = asyncio.ensure_future(_watch_disconnect(proto, gone))
                    environ[CLIENT_DISCONNECTED] = gone.is_set
                loop = asyncio.get_running_loop()
                try:
                    reply = await loop.run_in_executor(lane.pool, self._call, environ)
                finally:
                    if watch is not None:
                        watch.cancel()
                return _respond(proto, reply)
            finally:
                lane.busy -= 1
        finally:
            self.body_bytes -= reserved

    async def _read(self, proto: Any, length: int | None) -> bytes:
        if length is not None:
            return await proto() if length else b""
        chunks, size = [], 0
        async for chunk in proto:  # chunked: read until the limit, not beyond
            chunks.append(chunk)
            size += len(chunk)
            if size > self.limits.max_request_bytes:
                break
        return b"".join(chunks)

    def _environ(self, scope: Any, headers: Any, body: bytes,
                 length: int | None) -> dict[str, Any]:
        environ = self.base_environ.copy()
        server_host, _, server_port = scope.server.rpartition(":")
        environ.update({
            # WSGI wants the path's bytes as latin-1 characters; granian gives it decoded
            "REQUEST_METHOD": scope.method, "PATH_INFO": _wsgi_text(scope.path),
            "QUERY_STRING": scope.query_string, "SERVER_PROTOCOL": f"HTTP/{scope.http_version}",
            "SERVER_NAME": server_host, "SERVER_PORT": server_port,
            "REMOTE_ADDR": scope.client.rpartition(":")[0].strip("[]"),
            "wsgi.url_scheme": scope.scheme, "wsgi.input": io.BytesIO(body),
        })
        if length is not None:
            environ["CONTENT_LENGTH"] = str(length)
        for name, value in headers.items():
            if name == "content-type":
                environ["CONTENT_TYPE"] = value
            elif name != "content-length":
                key = "HTTP_" + name.upper().replace("-", "_")
                environ[key] = f"{environ[key]}, {value}" if key in environ else value
        return environ

    def _call(self, environ: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
        """Runs the app on a lane's thread: the whole reply."""
        reply: list[Any] = []

        def start_response(status: str, headers: list[tuple[str, str]],
                           exc_info: Any = None) -> None:
            reply[:] = [int(status[:3]), headers]

        chunks = self.app(environ, start_response)
        try:
            body = b"".join(chunks)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        return reply[0], reply[1], body

    async def _stream(self, proto: Any, environ: dict[str, Any]) -> None:
        """An event stream: the app's iterator runs on the stream lane's thread and hands each
        chunk to the loop; the stream ends when the iterator does or the client is gone."""
        loop = asyncio.get_running_loop()
        inbox: asyncio.Queue[Any] = asyncio.Queue()
        gone = False

        def run() -> None:
            def start_response(status: str, headers: list[tuple[str, str]],
                               exc_info: Any = None) -> None:
                loop.call_soon_threadsafe(inbox.put_nowait, (int(status[:3]), headers))

            chunks = self.app(environ, start_response)
            try:
                for chunk in chunks:
                    if gone:
                        break
                    loop.call_soon_threadsafe(inbox.put_nowait, chunk)
            finally:
                close = getattr(chunks, "close", None)
                if close is not None:
                    close()
                loop.call_soon_threadsafe(inbox.put_nowait, None)

        done = loop.run_in_executor(self.streams.pool, run)
        first = await inbox.get()
        if first is None:  # the app failed before it answered
            await done
            return
        status, headers = first
        transport = proto.response_stream(status, headers)
        while (chunk := await inbox.get()) is not None:
            if not gone and chunk:
                try:
                    await transport.send_bytes(chunk)
                except Exception:  # the client went away: the iterator stops at its next item
                    gone = True
        await done


def _wsgi_text(text: str) -> str:
    return text if text.isascii() else text.encode("utf-8", "surrogateescape").decode("latin-1")


async def _watch_disconnect(proto: Any, gone: asyncio.Event) -> None:
    await proto.client_disconnect()
    gone.set()


def _respond(proto: Any, reply: tuple[int, list[tuple[str, str]], bytes]) -> None:
    status, headers, body = reply
    proto.response_bytes(status, headers, body)
