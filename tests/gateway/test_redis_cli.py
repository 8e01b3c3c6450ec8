"""The gateway through redis-cli (Debian's redis-tools): a password, a pipe of pushes
(`--pipe`), a blocking pop woken by another client's push, a stream group read and acked, and a
wrong password."""

from __future__ import annotations

import subprocess
import time
from typing import Any

import relayq
from tests.gateway.conftest import Gateway


def cli(gateway: Gateway, key: str, *args: str, stdin: str | None = None
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["redis-cli", "-p", str(gateway.port), "-a", key, "--no-auth-warning",
                           *args], input=stdin, capture_output=True, text=True, timeout=30)


def test_push_pipe_and_pop(gateway: Gateway, admin_key: str, queue_name: str,
                           q: relayq.Queue[Any]) -> None:
    assert cli(gateway, admin_key, "LPUSH", queue_name, '{"n":1}').stdout == "1\n"
    pushes = "".join(f"LPUSH {queue_name} job-{i}\n" for i in range(100))
    # --pipe sends every command at once and reads the replies after
    piped = cli(gateway, admin_key, "--pipe", stdin=_resp(pushes))
    assert "errors: 0, replies: 100" in piped.stdout, piped.stdout + piped.stderr
    assert cli(gateway, admin_key, "LLEN", queue_name).stdout == "101\n"
    assert q.jobs("ready", 1)[0][0].payload == {"n": 1}
    assert cli(gateway, admin_key, "RPOP", queue_name).stdout == '{"n":1}\n'


def _resp(lines: str) -> str:
    out = []
    for line in lines.splitlines():
        parts = line.split()
        out.append(f"*{len(parts)}\r\n" + "".join(f"${len(p)}\r\n{p}\r\n" for p in parts))
    return "".join(out)


def test_brpop_waits_for_a_push(gateway: Gateway, admin_key: str, queue_name: str,
                                rc: Any) -> None:
    waiting = subprocess.Popen(["redis-cli", "-p", str(gateway.port), "-a", admin_key,
                                "--no-auth-warning", "BRPOP", queue_name, "20"],
                               stdout=subprocess.PIPE, text=True)
    time.sleep(0.3)
    assert waiting.poll() is None  # blocked
    rc.lpush(queue_name, "hello")
    out, _ = waiting.communicate(timeout=5)
    assert out == f"{queue_name}\nhello\n"


def test_stream_group(gateway: Gateway, admin_key: str, queue_name: str) -> None:
    entry = cli(gateway, admin_key, "XADD", queue_name, "*", "item", "book").stdout.strip()
    read = cli(gateway, admin_key, "XREADGROUP", "GROUP", "g", "cli", "COUNT", "5", "STREAMS",
               queue_name, ">").stdout
    assert read.split() == [queue_name, entry, "item", "book"]
    assert cli(gateway, admin_key, "XACK", queue_name, "g", entry).stdout == "1\n"
    assert cli(gateway, admin_key, "XLEN", queue_name).stdout == "0\n"


def test_wrong_password(gateway: Gateway, queue_name: str, q: relayq.Queue[Any]) -> None:
    done = cli(gateway, "not-a-key", "LPUSH", queue_name, "x")
    assert "WRONGPASS" in done.stderr + done.stdout
    assert "NOAUTH" in done.stdout
    assert q.stats().ready == 0
