"""Hostile clients cannot exhaust the server (issue 20 #1 and #6, issue 12 "Bad input and
load"), each proved with raw sockets against a real server: idle connections leave /healthz
answering, a connection without a whole request header is closed at the header deadline, slow
bodies hold no thread and end in 408, a full lane or body budget answers 503 `server_busy`
with Retry-After at once, and a body of millions of tiny JSON values is refused before it is
built."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request
from typing import Any

import psutil
import pytest

import relayq
from tests.support.helpers import wait_until
from tests.support.server import start_server


def _healthz_seconds(url: str) -> float:
    started = time.monotonic()
    with urllib.request.urlopen(url + "/healthz", timeout=10) as reply:
        assert reply.status == 200
    return time.monotonic() - started


def _post(url: str, path: str, key: str, body: bytes) -> tuple[int, dict[str, Any], Any]:
    request = urllib.request.Request(url + path, data=body, method="POST", headers={
        "Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.status, json.loads(reply.read() or b"null"), reply.headers
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null"), e.headers


def _closed_within(sock: socket.socket, seconds: float) -> tuple[bool, bytes]:
    """Whether the server closed `sock` within `seconds`, and what it sent before."""
    sock.settimeout(seconds)
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except TimeoutError:
        return False, received
    except ConnectionResetError:
        pass
    return True, received


def test_500_idle_connections_leave_healthz_answering(redis_url: str) -> None:
    server = start_server(redis_url, "--workers", "2")
    idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(500)]
    try:
        assert _healthz_seconds(server.url) < 2
    finally:
        for s in idle:
            s.close()
        server.stop()


@pytest.fixture(scope="module")
def deadline_server(redis_url: str):
    server = start_server(redis_url, "--header-timeout", "1", "--body-timeout", "1",
                          "--threads", "1", "--queue", "0")
    yield server
    server.stop()


@pytest.mark.parametrize("sent", [b"", b"GET /healthz HT", b"GET /healthz HTTP/1.1\r\nHo"],
                         ids=["nothing", "half a request line", "half a header"])
def test_a_connection_without_a_whole_header_is_closed_at_the_deadline(deadline_server,
                                                                      sent: bytes) -> None:
    sock = socket.create_connection(("127.0.0.1", deadline_server.port))
    sock.sendall(sent)
    assert _closed_within(sock, 10)[0]
    sock.close()


def test_an_idle_keep_alive_connection_is_closed_at_the_deadline(deadline_server) -> None:
    sock = socket.create_connection(("127.0.0.1", deadline_server.port))
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    closed, received = _closed_within(sock, 10)
    assert closed and received.startswith(b"HTTP/1.1 200")
    sock.close()


def test_slow_bodies_hold_no_thread_and_end_in_408(deadline_server, admin_key: str) -> None:
    """The server has one thread for ordinary requests; five clients send a byte of their body
    and then nothing: an enqueue still gets through, and each slow client gets 408."""
    slow = []
    for _ in range(5):
        sock = socket.create_connection(("127.0.0.1", deadline_server.port))
        sock.sendall(b"POST /api/queues/slow/jobs HTTP/1.1\r\nHost: x\r\n"
                     b"Authorization: Bearer " + admin_key.encode() +
                     b"\r\nContent-Length: 100\r\n\r\n{")
        slow.append(sock)
    status, body, _ = _post(deadline_server.url, "/api/queues/slow/jobs", admin_key,
                            b'{"payload": 1}')
    assert status == 201
    for sock in slow:
        closed, received = _closed_within(sock, 10)
        assert received.startswith(b"HTTP/1.1 408") and b"request_timeout" in received
        sock.close()


def test_a_full_lane_answers_503_server_busy_at_once(redis_url: str, admin_key: str) -> None:
    """One thread and one place in the queue; Redis holds writes for 3 s: of six enqueues
    sent at once, two wait for Redis and the others are refused at once, not queued."""
    server = start_server(redis_url, "--threads", "1", "--queue", "1")
    r = relayq.connect(redis_url)
    replies: list[tuple[float, tuple[int, Any, Any]]] = []

    def enqueue() -> None:
        started = time.monotonic()
        reply = _post(server.url, "/api/queues/busy/jobs", admin_key, b'{"payload": 1}')
        replies.append((time.monotonic() - started, reply))

    try:
        r.execute_command("CLIENT", "PAUSE", 3000, "WRITE")
        threads = [threading.Thread(target=enqueue) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    finally:
        r.execute_command("CLIENT", "UNPAUSE")
        server.stop()
    refused = [(s, reply) for s, reply in replies if reply[0] == 503]
    assert len(replies) == 6 and 1 <= len(refused) <= 4
    assert all(reply[0] == 201 for _, reply in replies if reply[0] != 503)
    for seconds, (_, body, headers) in refused:
        assert body["error"]["code"] == "server_busy" and headers["Retry-After"] == "1"
        assert seconds < 2  # at once, not after Redis came back


def test_bodies_in_flight_stay_within_the_budget(redis_url: str, admin_key: str) -> None:
    """--max-request-bytes 1000 gives each worker a budget of 4000 body bytes: four clients
    that announce 1000 and send nothing fill it; a fifth body is refused at once."""
    server = start_server(redis_url, "--max-request-bytes", "1000", "--body-timeout", "30")
    held = []
    try:
        for _ in range(4):
            sock = socket.create_connection(("127.0.0.1", server.port))
            sock.sendall(b"POST /api/queues/b/jobs HTTP/1.1\r\nHost: x\r\n"
                         b"Content-Length: 1000\r\n\r\n")
            held.append(sock)

        def refused() -> bool:
            status, body, headers = _post(server.url, "/api/queues/b/jobs", admin_key,
                                          b'{"payload": 1}')
            return status == 503 and body["error"]["code"] == "server_busy" \
                and headers["Retry-After"] == "1"

        wait_until(refused, timeout=10, message="a body beyond the budget to be refused")
        for sock in held:
            sock.close()
        wait_until(lambda: _post(server.url, "/api/queues/b/jobs", admin_key,
                                 b'{"payload": 1}')[0] == 201,
                   timeout=10, message="the budget to come back")
    finally:
        server.stop()


def _rss_mib(pid: int) -> float:
    root = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)]) / 2**20


def test_a_body_of_millions_of_tiny_values_is_refused_before_it_is_built(
        redis_url: str, admin_key: str) -> None:
    """16 MiB of `[{},{},...]` (5.6 million dicts, ~500 MiB once parsed) is refused with 413
    and the server's memory grows by far less than parsing it would take."""
    server = start_server(redis_url)
    try:
        body = b'{"jobs": [' + b",".join([b"{}"] * (16 * 2**20 // 3 - 10)) + b"]}"
        assert _post(server.url, "/api/queues/big/jobs", admin_key, b'{"payload": 1}')[0] == 201
        before = _rss_mib(server.proc.pid)
        for _ in range(2):
            status, reply, _ = _post(server.url, "/api/queues/big/jobs/batch", admin_key, body)
            assert status == 413 and reply["error"]["code"] == "payload_too_large"
        grown = _rss_mib(server.proc.pid) - before
        print(f"server RSS {before:.0f} MiB, grown by {grown:.0f} MiB")
        assert grown < 150
    finally:
        server.stop()
