"""The gateway at the byte level, over raw sockets: the reader and writer alone, pipelines
answered in order, and what a hostile or broken client gets (malformed RESP, a bulk over the
limit, too many arguments, too many connections, silence): a protocol error closes that one
connection, and every other connection goes on."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from relayq.gateway.resp import NIL_ARRAY, OK, Error, ProtocolError, RequestReader, Writer
from relayq.limits import DEFAULT_MAX_PAYLOAD_BYTES, RESP_QUERY_SLACK_BYTES
from tests.gateway.conftest import Gateway, start_gateway
from tests.support.helpers import wait_until


def command(*args: str | bytes) -> bytes:
    parts = [a.encode() if isinstance(a, str) else a for a in args]
    return b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)


class Raw:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_until_closed(self) -> bytes:
        """What arrives until the server closes (a reset, when it closed with our bytes
        unread, may cost the last reply: TCP's doing)."""
        out = b""
        try:
            while chunk := self.sock.recv(65536):
                out += chunk
        except ConnectionResetError:
            pass
        return out

    def read(self, expected: bytes) -> bytes:
        out = b""
        while not out.endswith(expected):
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            out += chunk
        return out

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def raw(gateway: Gateway, admin_key: str) -> Iterator[Raw]:
    conn = Raw(gateway.port)
    conn.send(command("AUTH", admin_key))
    assert conn.read(b"\r\n") == b"+OK\r\n"
    yield conn
    conn.close()


def test_reader_takes_only_arrays_of_bulk_strings() -> None:
    reader = RequestReader(1000, 4)
    assert reader.feed(command("PING") + command("ECHO", "a")[:-3]) == [[b"PING"]]
    assert reader.feed(b"a\r\n") == [[b"ECHO", b"a"]]
    assert reader.feed(b"\r\n") == [] and reader.feed(b"\r\n" + command("PING")) == [[b"PING"]]
    for bad in (b"PING\r\n", b"+PING\r\n", b"*1\r\n:1\r\n", b"*1\r\n*1\r\n$1\r\na\r\n",
                b"*0\r\n", b"*1\r\n$-1\r\n", command("A", "B", "C", "D", "E")):
        with pytest.raises(ProtocolError):
            RequestReader(1000, 4).feed(bad)
    growing = RequestReader(1000, 4)
    growing.feed(b"*2\r\n$4\r\nECHO\r\n$5000\r\n")
    with pytest.raises(ProtocolError, match="over 1000 bytes"):
        growing.feed(b"x" * 1000)


def test_writer_speaks_resp2_then_resp3() -> None:
    w = Writer()
    value = {"a": [1, None, NIL_ARRAY, OK, b"x"]}
    assert w.encode(value) == b"*2\r\n$1\r\na\r\n*5\r\n:1\r\n$-1\r\n*-1\r\n+OK\r\n$1\r\nx\r\n"
    assert w.encode(Error("nope", "NOPERM")) == b"-NOPERM nope\r\n"
    w.version = 3
    assert w.encode(value) == b"%1\r\n$1\r\na\r\n*5\r\n:1\r\n_\r\n_\r\n+OK\r\n$1\r\nx\r\n"
    assert w.encode(1.5) == b",1.5\r\n"


def test_a_pipeline_is_answered_in_order(raw: Raw, queue_name: str) -> None:
    raw.send(command("LPUSH", queue_name, "a") + command("NOSUCH") + command("LLEN", queue_name)
             + command("BRPOP", queue_name, "1") + command("ECHO", "last"))
    reply = raw.read(b"$4\r\nlast\r\n")
    assert reply == (b":1\r\n-ERR unknown command 'NOSUCH', with args beginning with: \r\n:1\r\n"
                     b"*2\r\n$%d\r\n%s\r\n$1\r\na\r\n$4\r\nlast\r\n"
                     % (len(queue_name), queue_name.encode()))


def test_malformed_resp_closes_only_that_connection(gateway: Gateway, raw: Raw,
                                                    admin_key: str) -> None:
    bystander = gateway.client(admin_key)
    assert bystander.ping()
    raw.send(b"*1\r\n$4\r\nPING\r\n*x\r\n")
    assert raw.read_until_closed().startswith(b"+PONG\r\n-ERR Protocol error")
    assert bystander.ping()
    bystander.close()


def test_a_bulk_over_the_limit_closes_the_connection(raw: Raw, queue_name: str, r: Any
                                                     ) -> None:
    size = 2 * (DEFAULT_MAX_PAYLOAD_BYTES + RESP_QUERY_SLACK_BYTES)
    raw.send(b"*3\r\n$5\r\nLPUSH\r\n$%d\r\n%s\r\n$%d\r\n" % (len(queue_name), queue_name.encode(),
                                                            size))
    try:
        for _ in range(size // 65536 + 2):
            raw.send(b"x" * 65536)
    except OSError:
        pass  # closed on us while sending: what we expect
    reply = raw.read_until_closed()  # a timeout here: the connection was not closed
    assert reply in (b"", b"-ERR Protocol error: unfinished command over 1310720 bytes (a value "
                          b"over the payload limit?)\r\n")
    assert not r.keys(f"relayq:{{{queue_name}}}:*")


def test_too_many_arguments(raw: Raw) -> None:
    raw.send(command("PING", *["x"] * 3000))
    assert raw.read_until_closed().startswith(b"-ERR Protocol error: a command of more than")


@pytest.fixture(scope="module")
def small_gateway(redis_url: str) -> Iterator[Gateway]:
    """A gateway of 2 connections that closes a connection silent for 0.5 s."""
    gw = start_gateway(redis_url, "--auth", "off", "--resp-max-connections", "2",
                       "--resp-idle-timeout", "0.5")
    yield gw
    gw.server.stop()


def test_idle_connections_are_reaped_but_not_while_blocked(small_gateway: Gateway,
                                                           queue_name: str) -> None:
    idle = Raw(small_gateway.port)
    started = time.monotonic()
    assert idle.read_until_closed() == b""
    assert 0.4 < time.monotonic() - started < 5
    blocked = Raw(small_gateway.port)
    blocked.send(command("BRPOP", queue_name, "1.2"))
    assert blocked.read(b"\r\n") == b"*-1\r\n"  # answered at its own timeout, not reaped
    blocked.close()


def test_connections_over_the_limit_are_refused(small_gateway: Gateway) -> None:
    first, second = Raw(small_gateway.port), Raw(small_gateway.port)
    for conn in (first, second):
        conn.send(command("PING"))
        assert conn.read(b"\r\n") == b"+PONG\r\n"
    third = Raw(small_gateway.port)
    assert third.read_until_closed() == b"-ERR max number of clients reached\r\n"
    first.close()
    client = redis.Redis(port=small_gateway.port)
    assert wait_until(lambda: _pings(client), message="a free connection slot")
    client.close()
    second.close()
    third.close()


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


def test_metrics_count_connections_and_commands(gateway: Gateway, raw: Raw) -> None:
    import urllib.request

    raw.send(command("PING") + command("NOSUCH"))
    raw.read(b"beginning with: \r\n")

    def scraped() -> str:
        with urllib.request.urlopen(gateway.server.url + "/metrics", timeout=5) as response:
            return response.read().decode()

    text = wait_until(lambda: next((t for t in [scraped()] if 'command="unknown"' in t), None),
                      message="the RESP counters")
    assert 'relayq_resp_commands_total{command="ping"}' in text
    assert "relayq_resp_connections " in text
    assert 'command="nosuch"' not in text  # unknown names never become labels


def test_failed_auths_are_throttled_per_address(redis_url: str, admin_key: str) -> None:
    """The HTTP API's throttle (relayq.throttle): after --auth-failure-burst failures in a row
    an address is refused before its key is looked at, a good key too."""
    gw = start_gateway(redis_url, "--auth-failure-burst", "2", "--auth-failure-rate", "0.01")
    try:
        conn = Raw(gw.port)
        for _ in range(2):
            conn.send(command("AUTH", "wrong"))
            assert conn.read(b"\r\n").startswith(b"-WRONGPASS")
        conn.send(command("AUTH", admin_key))
        assert conn.read(b"\r\n").startswith(b"-ERR too_many_requests")
        conn.send(command("LLEN", "q"))
        assert conn.read(b"\r\n").startswith(b"-NOAUTH")
        conn.close()
    finally:
        gw.server.stop()


def test_blocking_commands_watch_a_bounded_number_of_queues(raw: Raw, queue_name: str) -> None:
    from relayq.limits import RESP_MAX_WATCHED_QUEUES

    names = [f"{queue_name}-{i}" for i in range(RESP_MAX_WATCHED_QUEUES + 1)]
    raw.send(command("BRPOP", *names, "0.1") + command("PING"))
    assert raw.read(b"+PONG\r\n").startswith(b"-ERR server_busy: blocking commands")


def test_hello_and_auth_forms(gateway: Gateway, admin_key: str) -> None:
    conn = Raw(gateway.port)
    conn.send(command("HELLO", "3"))
    assert conn.read(b"\r\n").startswith(b"-NOAUTH")
    conn.send(command("HELLO", "4"))
    assert conn.read(b"\r\n").startswith(b"-NOPROTO")
    conn.send(command("AUTH", "default", admin_key) + command("PING"))
    assert conn.read(b"+PONG\r\n") == b"+OK\r\n+PONG\r\n"
    conn.send(command("HELLO", "3", "SETNAME", "raw") + command("CLIENT", "GETNAME"))
    reply = conn.read(b"$3\r\nraw\r\n")
    assert reply.startswith(b"%7\r\n") and b"proto\r\n:3\r\n" in reply
    conn.send(command("QUIT"))
    assert conn.read_until_closed() == b"+OK\r\n"


def test_error_kinds_are_for_codes_that_exist() -> None:
    """The one code -> Redis error kind table of the gateway names only real codes (every other
    code is an -ERR that starts with the code)."""
    from relayq import errors
    from relayq.gateway.commands import KINDS, error_reply

    assert set(KINDS) <= set(errors.ERRORS)
    reply = error_reply(errors.InvalidQueueName("bad"))
    assert (reply.kind, reply.message) == ("ERR", "invalid_queue_name: bad")
    assert error_reply(errors.RedisBusy("full")).kind == "BUSY"
