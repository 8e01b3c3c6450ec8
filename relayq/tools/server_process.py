"""A `relayq-server` child process on a free loopback port: for the tests and `measure_http`'s
command line (and anything else that needs a real server for a while). Its stdout and stderr go
to files in a temp dir; `start()` waits until /healthz answers and picks up the admin key the
server printed, if it printed one. `port` picks the port (a free one by default): a server
started again on the port of a stopped one is the same server to its clients."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from ..limits import SERVER_STOP_TIMEOUT_S
from .redis_process import free_port

KEY_LINE = re.compile(r"^(rq_[0-9a-f]{16}_[A-Za-z0-9_-]{43})$", re.MULTILINE)


class ServerProcess:
    def __init__(self, redis_url: str, *args: str, cwd: str | Path | None = None,
                 env: dict[str, str] | None = None, port: int | None = None) -> None:
        self.redis_url = redis_url
        self.args = list(args)
        self.port = port or free_port()
        self.cwd = cwd
        self.env = env
        self.dir = Path(tempfile.mkdtemp(prefix="relayq-server-"))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def stdout(self) -> str:
        return (self.dir / "stdout").read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return (self.dir / "stderr").read_text(errors="replace")

    def printed_key(self) -> str | None:
        """The admin key the server printed at start, if any."""
        match = KEY_LINE.search(self.stdout)
        return match.group(1) if match else None

    def start(self, timeout: float = 30.0) -> ServerProcess:
        command = [sys.executable, "-m", "relayq.api.cli", "--addr", f"127.0.0.1:{self.port}",
                   "--redis", self.redis_url, *self.args]
        # appended: a restarted server (after kill()) keeps the earlier output
        with open(self.dir / "stdout", "ab") as out, open(self.dir / "stderr", "ab") as err:
            self.proc = subprocess.Popen(command, stdout=out, stderr=err, cwd=self.cwd,
                                         env={**os.environ, **(self.env or {})},
                                         start_new_session=True)
        deadline = time.monotonic() + timeout
        while not self._healthy():
            if self.proc.poll() is not None:
                raise RuntimeError(f"relayq-server exited with {self.proc.returncode}:\n"
                                   f"{self.stderr[-2000:]}")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"relayq-server did not answer within {timeout}s")
            time.sleep(0.05)
        return self

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/healthz", timeout=1) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def kill(self) -> None:
        """SIGKILL to the server's process group: no drain, no goodbye (for crash tests).
        `start()` brings it back on the same port."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def terminate(self) -> None:
        """SIGTERM, then the server's own drain (at most SERVER_STOP_TIMEOUT_S); past that, SIGKILL
        to its whole process group, so that no worker process outlives it. `start()` brings
        it back on the same port (a graceful restart)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(SERVER_STOP_TIMEOUT_S + 5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)

    def stop(self) -> None:
        """`terminate()`, and its output files are removed."""
        self.terminate()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
