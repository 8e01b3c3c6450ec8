"""`relayq-worker` as a user runs it: arguments, the demo handler, graceful SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import relayq
from relayq.tools.redis_process import RedisProcess, free_port
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


TASKS = '''
import relayq

app = relayq.App()  # Redis: $RELAYQ_REDIS_URL


@app.task(queue="QUEUE")
def send_email(payload):
    return {"sent_to": payload["to"]}
'''


def console_script(name: str) -> str:
    """The installed entry point (its sys.path starts with its own bin/, not the working
    directory, unlike `python -m`)."""
    return str(Path(sys.executable).parent / name)


def test_app_from_the_working_directory_serves_its_tasks_queues(
        tmp_path: Path, redis_url: str, queue_name: str) -> None:
    """`relayq-worker --app tasks:app` beside tasks.py, without PYTHONPATH or --queue: the
    worker imports it from the working directory and serves the queues its tasks name; a
    producer enqueues through the task handle."""
    (tmp_path / "tasks.py").write_text(TASKS.replace("QUEUE", queue_name))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RELAYQ_REDIS_URL": redis_url}
    proc = subprocess.Popen([console_script("relayq-worker"), "--app", "tasks:app"],
                            cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        produced = subprocess.run(
            [sys.executable, "-c", "from tasks import send_email; "
             "print(send_email.enqueue({'to': 'ada@example.com'}).id)"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30, check=True)
        job_id = produced.stdout.strip()
        q = relayq.Queue(queue_name, redis_url)
        wait_until(lambda: q.get(job_id).state == "succeeded" or proc.poll() is not None,
                   timeout=20, message="the worker to run the job")
        assert proc.poll() is None, proc.stderr.read()
        assert q.get(job_id).result == {"sent_to": "ada@example.com"}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert f"queues={queue_name}" in proc.stderr.read()


def test_without_queue_or_app_one_line_and_exit_2() -> None:
    proc = subprocess.run(worker_cmd("--redis", "redis://127.0.0.1:1/0"), cwd=ROOT,
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("relayq-worker: give --queue NAME (or --app, whose tasks "
                                   "name their queues)")


def test_unreachable_redis_at_start_is_waited_for_with_a_visible_backoff(
        queue_name: str) -> None:
    """A worker whose Redis is not there says so, one line per try with the growing delay to
    the next, and starts working once Redis comes up on that address."""
    port = free_port()
    proc = subprocess.Popen(worker_cmd("--queue", queue_name, "--redis",
                                       f"redis://127.0.0.1:{port}/0", "--demo-fail-rate", "0"),
                            cwd=ROOT, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    lines: list[str] = []
    try:
        assert proc.stderr is not None
        while len(lines) < 3:
            line = proc.stderr.readline()
            assert line, f"the worker ended: {lines}"
            lines.append(line)
        for line in lines:
            assert "WARNING redis.unreachable" in line and f"127.0.0.1:{port}" in line
            assert "Connection refused" in line and "--exit-if-unreachable" in line
        delays = [float(re.search(r"retry_in=([\d.]+)s", line).group(1)) for line in lines]
        assert delays[0] <= 1.0 and delays[2] >= 1.0 and delays[2] > delays[0]
        with RedisProcess(port=port) as redis_server:
            q = relayq.Queue(queue_name, redis_server.url)
            job = q.enqueue({"hello": "world"})
            wait_until(lambda: q.get(job.id).state == "succeeded", timeout=30,
                       message="the worker to connect and run the job")
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_exit_if_unreachable_exits_1_with_one_line() -> None:
    port = free_port()
    proc = subprocess.run(worker_cmd("--queue", "q", "--exit-if-unreachable", "--redis",
                                     f"redis://relayq:s3cret@127.0.0.1:{port}/0"),
                          cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"relayq-worker: cannot reach Redis at "
                                  f"redis://relayq:***@127.0.0.1:{port}/0: ")
    assert len(proc.stderr.strip().splitlines()) == 1 and "s3cret" not in proc.stderr
