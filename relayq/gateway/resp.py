"""The Redis protocol on the wire: reading requests with hiredis, writing replies.

Requests are parsed by hiredis's `Reader` (the C parser redis-py itself uses), never by hand.
hiredis parses replies, which are a superset of requests, so `RequestReader` keeps only what a
client may send: an array of bulk strings. Anything else (a simple string, a nested array, a
nil, an inline command) is a protocol error, and so is a command that keeps growing past
`max_query_bytes` unfinished (a bulk length over the limit announced ahead of its bytes): the
connection answers `-ERR Protocol error: ...` and is closed, like Redis.

Replies are built by `Writer`, which speaks RESP2 until a client says `HELLO 3` and RESP3 from
then on (maps, sets, nulls and doubles have their own types there; in RESP2 a map is a flat
array and a null a nil bulk).
"""

from __future__ import annotations

from typing import Any

import hiredis


class ProtocolError(Exception):
    """The client broke the protocol: answer the whole commands before the break (`commands`),
    then the error, then close its connection."""

    def __init__(self, message: str, commands: list[list[bytes]] | None = None) -> None:
        super().__init__(message)
        self.commands = commands or []


class _ReplyError(Exception):
    """hiredis's replyError: a `-ERR` sent by a client, which no request may hold."""


class RequestReader:
    """Turns the bytes of one connection into commands (lists of bytes), in order."""

    def __init__(self, max_query_bytes: int, max_args: int) -> None:
        self._reader = self._new_reader()
        self.max_query_bytes = max_query_bytes
        self.max_args = max_args
        self._carried = 0  # bytes fed that belong to the command still unfinished

    @staticmethod
    def _new_reader() -> hiredis.Reader:
        return hiredis.Reader(protocolError=ProtocolError, replyError=_ReplyError)

    def feed(self, data: bytes) -> list[list[bytes]]:
        """The commands `data` completes (ProtocolError when it breaks the protocol)."""
        if not self._reader.has_data():
            # Between commands Redis skips empty lines (redis-cli --pipe sends one before its
            # closing ECHO): so do we, where no command has begun.
            data = data.lstrip(b"\r\n")
            if not data:
                return []
        self._reader.feed(data)
        carried = self._carried
        commands: list[list[bytes]] = []
        try:
            while True:
                request = self._reader.gets()
                if request is False:
                    break
                commands.append(self._check(request))
        except ProtocolError as e:
            # An empty line after a whole command, inside this chunk: go on after it with a
            # fresh parser. Where it starts is where the commands parsed so far end.
            used = sum(map(_size, commands)) - carried
            if 0 <= used < len(data) and data[used:used + 1] in (b"\r", b"\n"):
                self._reader = self._new_reader()
                self._carried = 0
                try:
                    return commands + self.feed(data[used:])
                except ProtocolError as later:
                    later.commands = commands + later.commands
                    raise
            e.commands = commands
            raise
        # The bytes of the command still unfinished (exact for the canonical encoding every
        # client sends: an approximation is harmless here, it only bounds memory).
        self._carried = max(0, carried + len(data) - sum(map(_size, commands)))
        if self._carried > self.max_query_bytes:
            raise ProtocolError(f"unfinished command over {self.max_query_bytes} bytes "
                                "(a value over the payload limit?)", commands)
        return commands

    def _check(self, request: Any) -> list[bytes]:
        if not isinstance(request, list) or not request:
            raise ProtocolError("expected a command: an array of bulk strings")
        if not all(isinstance(arg, bytes) for arg in request):
            raise ProtocolError("a command's arguments must be bulk strings")
        if len(request) > self.max_args:
            raise ProtocolError(f"a command of more than {self.max_args} arguments")
        return request


def _size(command: list[bytes]) -> int:
    """The bytes of `command` on the wire: `*<n>\\r\\n`, then `$<len>\\r\\n<arg>\\r\\n` each."""
    return len(b"*%d\r\n" % len(command)) + sum(len(arg) + len(b"%d" % len(arg)) + 5
                                                 for arg in command)


class Null:
    """The null reply (RESP2: a nil bulk, or a nil array where `array` says so)."""

    def __init__(self, array: bool = False) -> None:
        self.array = array


NIL = Null()
NIL_ARRAY = Null(array=True)


class Status(str):
    """A simple string reply (`+OK`), as opposed to a bulk string."""


class Error(Exception):
    """An error reply: `kind` is its first word (ERR, NOAUTH, NOPERM, WRONGPASS, ...)."""

    def __init__(self, message: str, kind: str = "ERR") -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


class RespMap(dict):  # type: ignore[type-arg]
    """A map reply (RESP3 `%`, a flat array of keys and values in RESP2)."""


OK = Status("OK")


class Writer:
    """Encodes replies in the connection's protocol version (2 until `HELLO 3`)."""

    def __init__(self) -> None:
        self.version = 2

    def encode(self, value: Any) -> bytes:
        out: list[bytes] = []
        self._encode(value, out)
        return b"".join(out)

    def _encode(self, value: Any, out: list[bytes]) -> None:
        if isinstance(value, Status):
            out.append(b"+" + value.encode() + b"\r\n")
        elif isinstance(value, (bytes, str)):
            data = value.encode() if isinstance(value, str) else value
            out.append(b"$%d\r\n%s\r\n" % (len(data), data))
        elif isinstance(value, bool):
            out.append((b"#t\r\n" if value else b"#f\r\n") if self.version == 3
                       else (b":1\r\n" if value else b":0\r\n"))
        elif isinstance(value, int):
            out.append(b":%d\r\n" % value)
        elif isinstance(value, float):
            out.append(b",%r\r\n" % value if self.version == 3
                       else self.encode(repr(value)))
        elif isinstance(value, Error):
            line = f"{value.kind} {value.message}".replace("\r", " ").replace("\n", " ")
            out.append(b"-" + line.encode() + b"\r\n")
        elif value is None or isinstance(value, Null):
            if self.version == 3:
                out.append(b"_\r\n")
            else:
                out.append(b"*-1\r\n" if isinstance(value, Null) and value.array else b"$-1\r\n")
        elif isinstance(value, dict):
            out.append((b"%%%d\r\n" if self.version == 3 else b"*%d\r\n")
                       % (len(value) if self.version == 3 else 2 * len(value)))
            for k, v in value.items():
                self._encode(k, out)
                self._encode(v, out)
        elif isinstance(value, (list, tuple)):
            out.append(b"*%d\r\n" % len(value))
            for item in value:
                self._encode(item, out)
        else:
            raise TypeError(f"no RESP encoding for {type(value).__name__}")
