"""`relayq-server` refuses to start on bad flags (exit 2) or an unreachable Redis (exit 1),
with one line on stderr and no traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from relayq.redis_process import free_port

from .conftest import ROOT


@pytest.mark.parametrize(("args", "code", "says"), [
    (["--addr", "nonsense"], 2, "--addr expects host:port"),
    (["--queues", "ok,bad name"], 2, "invalid queue name"),
    (["--threads", "0"], 2, "--threads must be at least 1"),
    (["--redis", "redis://127.0.0.1:{port}/0"], 1, "Redis unavailable"),
])
def test_bad_starts_fail_cleanly(args: list[str], code: int, says: str) -> None:
    args = [a.format(port=free_port()) for a in args]
    done = subprocess.run([sys.executable, "-m", "relayq.api.cli", "--addr",
                           f"127.0.0.1:{free_port()}", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == code
    assert says in done.stderr and "Traceback" not in done.stderr
