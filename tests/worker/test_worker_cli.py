"""`relayq-worker` as a user runs it: arguments, the demo handler, graceful SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import relayq
from tests.support.helpers import wait_until

ROOT = Path(__file__).resolve().parents[2]


def worker_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "relayq.worker.cli", *args]


@pytest.mark.parametrize("args,message", [
    (["--queue", "bad name"], "invalid queue name"),
    (["--queue", "ok", "--concurrency", "0"], "argument --concurrency/-c: must be at least 1"),
    (["--queue", "ok", "--app", "nosuchmodule:app"], "cannot import 'nosuchmodule'"),
    (["--queue", "ok", "--app", "relayq:Queue"], "is not a relayq App"),
    (["--queue", "a:2", "--queue", "b"], "give a weight to every --queue or to none"),
    (["--queue", "ok", "--demo-fail-rate", "2"],
     "argument --demo-fail-rate: must be between 0 and 1"),
])
def test_bad_arguments_exit_2_with_one_line(args: list[str], message: str) -> None:
    proc = subprocess.run(worker_cmd(*args, "--redis", "redis://127.0.0.1:1/0"), cwd=ROOT,
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_help() -> None:
    proc = subprocess.run(worker_cmd("--help"), cwd=ROOT, capture_output=True, text=True,
                          timeout=30)
    assert proc.returncode == 0 and "--concurrency" in proc.stdout


def test_demo_handler_and_graceful_sigterm(q: relayq.Queue, redis_url: str) -> None:
    echo = q.enqueue({"hello": "world"}).id
    fail = q.enqueue({"fail": True}, max_attempts=1).id
    slow = q.enqueue({"sleep_ms": 800}).id
    proc = subprocess.Popen(worker_cmd("--queue", q.name, "--redis", redis_url,
                                       "--concurrency", "3", "--demo-fail-rate", "0"),
                            cwd=ROOT, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        wait_until(lambda: q.get(echo).state == "succeeded", message="echo job")
        assert q.get(echo).result == {"hello": "world"}
        wait_until(lambda: q.get(fail).state == "dead", message="failing job")
        assert "failed on request" in q.get(fail).last_error
        wait_until(lambda: q.get(slow).state == "running", message="slow job to start")
        proc.send_signal(signal.SIGTERM)  # drain: the running job finishes first
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert q.get(slow).state == "succeeded"
    log = proc.stderr.read()
    assert "worker.signal" in log and "worker.stopped" in log
