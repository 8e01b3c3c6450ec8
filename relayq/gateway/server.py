"""The RESP listener: an asyncio server, one coroutine per connection, Queue operations on a
small thread pool (redis-py is synchronous), blocking commands as futures (relayq.gateway.wake).

A connection reads what the client sent, parses every whole command in it (a pipeline) and
answers them in order: runs of ordinary commands go to the thread pool as one batch (one hop,
and consecutive pushes to one queue become one enqueue), a blocking command waits on the event
loop, holding no thread. Limits (relayq.limits, `GatewayConfig`): at most `max_connections`
connections (beyond: `-ERR max number of clients reached`, closed), an unfinished command of at
most the payload limit plus RESP_QUERY_SLACK_BYTES and `max_args` arguments (beyond: a protocol
error), a connection silent for `idle_timeout_ms` is closed (not while it waits in a blocking
command), TCP keepalive finds peers that vanished. A protocol error closes that connection
only; any other refusal is an error reply and the connection goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..errors import RelayqError
from ..limits import (
    RESP_KEEPALIVE_S,
    RESP_MAX_BLOCK_MS,
    RESP_QUERY_SLACK_BYTES,
    RESP_THREADS,
)
from ..logs import log_event
from ..metrics import record_resp_command, resp_connection
from .commands import Command, error_reply, pop_now, push_many, queue_of
from .resp import NIL_ARRAY, OK, Error, ProtocolError, RequestReader, RespMap
from .session import Gateway, GatewayConfig, Session
from .streams import ReadGroup, read_now
from .table import lookup, metric_name
from .table import run as run_command

log = logging.getLogger("relayq.gateway")
READ_SIZE = 64 * 1024
PUSHES = ("lpush", "rpush")


class GatewayServer:
    def __init__(self, config: GatewayConfig) -> None:
        self.gw = Gateway(config)
        self.pool = ThreadPoolExecutor(RESP_THREADS, thread_name_prefix="relayq-gateway")
        self.server: asyncio.base_events.Server | None = None

    async def start(self) -> None:
        config = self.gw.config
        self.server = await asyncio.start_server(self._serve, config.host, config.port,
                                                 backlog=max(128, config.max_connections),
                                                 limit=READ_SIZE)

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        self.gw.hub.close()
        if self.server is not None:
            self.server.close()
        self.pool.shutdown(wait=False, cancel_futures=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        gw = self.gw
        if gw.connections >= gw.config.max_connections:
            writer.write(b"-ERR max number of clients reached\r\n")
            with contextlib.suppress(OSError):
                await writer.drain()
            writer.close()
            return
        gw.connections += 1
        resp_connection(+1)
        _keepalive(writer)
        peer = writer.get_extra_info("peername") or ("-", 0)
        session = Session(gw.new_client_id(), f"{peer[0]}:{peer[1]}", str(peer[0]))
        conn = _Connection(self, reader, writer, session)
        try:
            await conn.run()
        except (ConnectionError, OSError):
            pass
        except Exception:  # a bug: log it, end this connection only
            log.exception("RESP connection failed")
        finally:
            conn.stop()
            gw.connections -= 1
            resp_connection(-1)
            writer.close()


def _keepalive(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is None:
        return
    with contextlib.suppress(OSError, AttributeError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, RESP_KEEPALIVE_S)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 10)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3)


class _Connection:
    def __init__(self, server: GatewayServer, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter, session: Session) -> None:
        self.gw = server.gw
        self.pool = server.pool
        self.reader = reader
        self.writer = writer
        self.session = session
        config = self.gw.config
        self.requests = RequestReader(config.max_payload_bytes + RESP_QUERY_SLACK_BYTES,
                                      config.max_args)
        self.read: asyncio.Future[bytes] | None = None  # the read under way

    def stop(self) -> None:
        if self.read is not None:
            self.read.cancel()

    async def run(self) -> None:
        idle_s = self.gw.config.idle_timeout_ms / 1000
        while not self.session.closing:
            if self.read is None:
                self.read = asyncio.ensure_future(self.reader.read(READ_SIZE))
            done, _ = await asyncio.wait({self.read}, timeout=idle_s)
            if not done:
                return  # idle too long
            data = self.read.result()
            self.read = None
            if not data:
                return
            try:
                commands = self.requests.feed(data)
            except ProtocolError as e:
                await self._answer(e.commands)
                self.writer.write(b"-ERR Protocol error: " + str(e).encode() + b"\r\n")
                await self.writer.drain()
                return
            await self._answer(commands)

    async def _answer(self, commands: list[list[bytes]]) -> None:
        """Answers the commands in order: batches of ordinary ones in the pool, the others
        here."""
        batch: list[list[bytes]] = []
        for args in commands:
            found = lookup(args)
            if isinstance(found, Command) and found.handler is None:
                if batch:
                    await self._send(await self._in_pool(self._run_batch, batch))
                    batch = []
                await self._send(await self._special(found, args))
                if self.session.closing:
                    return
            else:
                batch.append(args)
        if batch:
            await self._send(await self._in_pool(self._run_batch, batch))

    async def _send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def _in_pool(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)

    def _run_batch(self, commands: list[list[bytes]]) -> bytes:
        """In the pool: the replies to ordinary commands, in order; a run of pushes to one
        queue is one enqueue."""
        out: list[bytes] = []
        encode = self.session.writer.encode
        i = 0
        while i < len(commands):
            args = commands[i]
            found = lookup(args)
            record_resp_command(metric_name(args))
            if isinstance(found, Error):
                out.append(encode(found))
                i += 1
                continue
            if found.name in PUSHES:
                run = [args]
                while i + len(run) < len(commands) and _same_push(args, commands[i + len(run)]):
                    record_resp_command(commands[i + len(run)][0].decode().lower())
                    run.append(commands[i + len(run)])
                out.extend(encode(reply) for reply in self._pushes(found, run))
                i += len(run)
                continue
            out.append(encode(run_command(self.gw, self.session, found, args)))
            i += 1
        return b"".join(out)

    def _pushes(self, found: Command, run: list[list[bytes]]) -> list[Any]:
        try:
            self.session.require(self.gw, found.scope)
            return push_many(self.gw, run[0][1], run)
        except Error as e:
            return [e] * len(run)
        except RelayqError as e:
            return [error_reply(e)] * len(run)

    async def _special(self, found: Command, args: list[bytes]) -> bytes:
        """QUIT and the blocking commands."""
        encode = self.session.writer.encode
        record_resp_command(found.name)
        if found.name == "quit":
            self.session.closing = True
            return encode(OK)
        try:
            await self._in_pool(self.session.require, self.gw, found.scope)
            if found.name == "xreadgroup":
                return encode(await self._readgroup(args))
            return encode(await self._blocking_pop(args))
        except Error as e:
            return encode(e)
        except RelayqError as e:
            return encode(error_reply(e))

    async def _blocking_pop(self, args: list[bytes]) -> Any:
        """BRPOP/BLPOP q [q ...] timeout: [queue, value] of the first job taken, or nil."""
        try:
            timeout = float(args[-1])
        except ValueError:
            raise Error("timeout is not a float or out of range") from None
        if timeout < 0:
            raise Error("timeout is negative")
        if not timeout * 1000 <= RESP_MAX_BLOCK_MS:  # NaN and infinity too
            raise Error("timeout is out of range")
        queues = [queue_of(self.gw, key) for key in args[1:-1]]

        def attempt(order: list[Any]) -> tuple[Any, int | None]:
            hints = []
            for q in order:
                values, hint = pop_now(self.gw, self.session, q, 1)
                if values:
                    return [q.name, values[0]], None
                if hint is not None:
                    hints.append(hint)
            return None, min(hints) if hints else None

        return await self._wait_for(queues, timeout or None, attempt, NIL_ARRAY)

    async def _readgroup(self, args: list[bytes]) -> Any:
        spec = ReadGroup(args)
        queues = [queue_of(self.gw, key) for key in spec.keys]
        version3 = self.session.writer.version == 3

        def attempt(order: list[Any]) -> tuple[Any, int | None]:
            found: list[tuple[str, list[Any]]] = []
            hints = []
            for q, new in zip(queues, spec.new):
                entries, hint = read_now(self.gw, self.session, q, spec.consumer, spec.count,
                                         new, spec.noack)
                if entries or not new:
                    found.append((q.name, entries))
                if hint is not None:
                    hints.append(hint)
            if not found:
                return None, min(hints) if hints else None
            return (RespMap(found) if version3 else [list(pair) for pair in found]), None

        if spec.block_ms is None or not all(spec.new):
            reply, _ = await self._in_pool(attempt, queues)
            return NIL_ARRAY if reply is None else reply
        return await self._wait_for(queues, spec.block_ms / 1000 or None, attempt, NIL_ARRAY)

    async def _wait_for(self, queues: list[Any], timeout_s: float | None, attempt: Any,
                        nothing: Any) -> Any:
        """`attempt(queues)` now, and again each time a queue's wake-up token (or the hint of
        when a scheduled job is due) says it may find something, until `timeout_s` (None:
        forever). While waiting, a closed connection ends the wait."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        reply, hint = await self._in_pool(attempt, queues)
        while reply is None:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return nothing
            if hint is not None:
                remaining = hint / 1000 if remaining is None else min(remaining, hint / 1000)
            woken = await self._wait_watching_peer(queues, remaining)
            if woken is _GONE:
                self.session.closing = True
                return nothing
            order = queues if woken is None else (
                [q for q in queues if q.name == woken] + [q for q in queues if q.name != woken])
            reply, hint = await self._in_pool(attempt, order)
        return reply

    async def _wait_watching_peer(self, queues: list[Any], timeout_s: float | None) -> Any:
        """The hub's wait, ended early (_GONE) when the client closes its connection. What
        the client sends meanwhile (pipelined commands) is kept for after this one."""
        if self.read is None:
            self.read = asyncio.ensure_future(self.reader.read(READ_SIZE))
        wait = asyncio.ensure_future(self.gw.hub.wait(queues, timeout_s))
        pending: set[asyncio.Future[Any]] = {wait}
        if not self.read.done():
            pending.add(self.read)
        while True:
            done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            if wait in done:
                return wait.result()
            if self.read.done():
                pending.discard(self.read)
                if not self.read.result():  # closed: stop waiting (a taken token passes on)
                    wait.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await wait
                    return _GONE


_GONE = object()


def serve_forever(config: GatewayConfig, ready: Any = None) -> None:
    """Runs the gateway until the process is told to stop (SIGTERM) or `ready` (a
    multiprocessing connection to the parent) closes. Sends ("ok", port) or ("error", text) on
    `ready` once listening (or not)."""
    asyncio.run(_main(config, ready))


async def _main(config: GatewayConfig, ready: Any) -> None:
    import signal

    server = GatewayServer(config)
    try:
        await server.start()
    except OSError as e:
        if ready is not None:
            ready.send(("error", f"cannot listen on {config.host}:{config.port}: "
                                 f"{e.strerror or e}"))
        return
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    if ready is not None:
        ready.send(("ok", server.port))
        loop.add_reader(ready.fileno(), stop.set)  # the server process is gone
    log_event(log, logging.INFO, "gateway.listening", addr=f"{config.host}:{server.port}",
              auth="required" if config.auth else "off")
    await stop.wait()
    await server.close()


def _same_push(first: list[bytes], other: list[bytes]) -> bool:
    """`other` is a push to the same queue as `first` that can join its enqueue."""
    return (len(other) >= 3 and other[0].lower() in (b"lpush", b"rpush")
            and other[1] == first[1])

