"""`relayq-worker --processes N` as a user runs it: real supervisor and worker processes on the
test's redis-server, the demo handler (sleep_ms, cpu_ms) as the work."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import psutil
import pytest

import relayq
from relayq.tools.redis_process import free_port
from relayq.worker.supervisor import Child, Supervisor
from tests.support.helpers import ROOT, wait_until, worker_process


def pid_of(job: relayq.Job[Any]) -> int:
    """The process that ran a job: worker ids are host:pid:suffix."""
    assert job.worker_id
    return int(job.worker_id.rsplit(":", 2)[1])


def children(proc: subprocess.Popen[bytes]) -> set[int]:
    return {c.pid for c in psutil.Process(proc.pid).children() if c.status() != "zombie"}


def test_two_processes_drain_a_queue_and_share_one_metrics_endpoint(
        q: relayq.Queue[Any], redis_url: str, tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "log"
    with worker_process(redis_url, q.name, "--processes", "2", "--concurrency", "2",
                        "--demo-fail-rate", "0", "--metrics-addr", f"127.0.0.1:{port}",
                        log=log) as sup:
        wait_until(lambda: log.read_text().count("worker.started") == 2, message="2 processes")
        ids = [q.enqueue({"sleep_ms": 40}).id for _ in range(20)]
        wait_until(lambda: all(q.get(i).state == "succeeded" for i in ids), timeout=20,
                   message="20 jobs on two processes")
        assert len({pid_of(q.get(i)) for i in ids}) == 2
        assert {pid_of(q.get(i)) for i in ids} == children(sup)
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
        line = f'relayq_jobs_succeeded_total{{queue="{q.name}"}} 20.0'
        assert line in text.decode(), "one endpoint sums the counts of every process"
        # SIGTERM while jobs run: every process drains them, then the supervisor exits 0
        slow = [q.enqueue({"sleep_ms": 1500}).id for _ in range(2)]
        wait_until(lambda: all(q.get(i).state == "running" for i in slow), message="running")
        pids = children(sup)
        sup.terminate()
        assert sup.wait(15) == 0
        assert all(q.get(i).state == "succeeded" for i in slow)
        assert not any(psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"
                       for p in pids)


def test_a_stuck_handler_is_stopped_by_its_timeout_then_retried_then_dead(
        q: relayq.Queue[Any], redis_url: str, tmp_path: Path) -> None:
    with worker_process(redis_url, q.name, "--processes", "1", "--concurrency", "2",
                        "--demo-fail-rate", "0", log=tmp_path / "log") as sup:
        first = wait_until(lambda: children(sup), message="a worker process")
        stuck = q.enqueue({"sleep_ms": 60_000}, timeout_ms=300, max_attempts=2,
                          backoff_base_ms=0).id
        wait_until(lambda: q.get(stuck).state == "dead", timeout=15, message="dead job")
        job = q.get(stuck)
        assert job.attempts == 2 and "timed out after 300 ms" in (job.last_error or "")
        # the stuck processes were stopped and a fresh one took the slot: it runs jobs
        wait_until(lambda: not any(psutil.pid_exists(p) for p in first), message="killed")
        ok = q.enqueue({"sleep_ms": 1}).id
        wait_until(lambda: q.get(ok).state == "succeeded", message="a fresh process")
        assert pid_of(q.get(ok)) not in first


def test_a_cancelled_handler_that_never_checks_is_stopped_and_its_job_ends_cancelled(
        q: relayq.Queue[Any], redis_url: str, tmp_path: Path) -> None:
    log = tmp_path / "log"
    with worker_process(redis_url, q.name, "--processes", "1", "--concurrency", "1",
                        "--demo-fail-rate", "0", log=log) as sup:
        # cpu_ms computes without ever calling check_cancelled(): only stopping it ends it
        busy = q.enqueue({"cpu_ms": 60_000}, max_attempts=3, backoff_base_ms=0).id
        prefetched = q.enqueue({"sleep_ms": 1}).id  # claimed by the same process, not started
        wait_until(lambda: q.get(busy).state == "running", message="running")
        first = children(sup)
        assert q.cancel(busy) == "running"
        # the cancel is heard in ~0.33 s, the handler gets PROCESS_CANCEL_GRACE_S (2 s), then
        # its process is stopped: well within 8 s
        wait_until(lambda: q.get(busy).state == "cancelled", timeout=8, message="cancelled")
        job = q.get(busy)
        assert job.attempts == 1, "a cancelled job is never retried"
        assert "did not stop within 2 s" in (job.last_error or "")
        # the stuck process is gone, the other job still runs, a fresh process serves the next
        wait_until(lambda: q.get(prefetched).state == "succeeded", message="the other job")
        wait_until(lambda: not any(psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"
                                   for p in first), message="the stuck process stopped")
        ok = q.enqueue({"sleep_ms": 1}).id
        wait_until(lambda: q.get(ok).state == "succeeded", message="a fresh process")
        assert pid_of(q.get(ok)) not in first
        assert q.get(busy).state == "cancelled" and q.get(busy).attempts == 1
    assert "supervisor.job_cancelled" in log.read_text()


def test_a_cancelled_handler_that_checks_ends_itself_and_keeps_its_process(
        q: relayq.Queue[Any], redis_url: str, tmp_path: Path) -> None:
    log = tmp_path / "log"
    with worker_process(redis_url, q.name, "--processes", "1", "--concurrency", "1",
                        "--demo-fail-rate", "0", log=log):
        job = q.enqueue({"sleep_ms": 60_000}).id  # sleeps in slices, checking for a cancel
        wait_until(lambda: q.get(job).state == "running", message="running")
        pid = pid_of(q.get(job))
        assert q.cancel(job) == "running"
        wait_until(lambda: q.get(job).state == "cancelled", timeout=5, message="cancelled")
        assert "did not stop" not in (q.get(job).last_error or "")
        ok = q.enqueue({"sleep_ms": 1}).id
        wait_until(lambda: q.get(ok).state == "succeeded", message="the next job")
        assert pid_of(q.get(ok)) == pid, "a handler that ended itself keeps its process"
    assert "supervisor.process_retiring" not in log.read_text().split("supervisor.signal")[0]


def test_the_end_of_an_overrun_attempt_does_not_forget_the_next_attempt_of_its_job() -> None:
    """A process whose handler overran (its job nacked and retried by the supervisor) can claim
    the job's next attempt while the first handler still runs: that handler's end names its own
    lease, and the supervisor keeps holding the new attempt (else, were the process then killed,
    nothing would hand it back before its lease ran out)."""
    report_r, report_w = os.pipe()
    os.set_blocking(report_r, False)
    sup = Supervisor([], 1, redis=None, grace_s=1.0)  # type: ignore[arg-type]  # no Redis used
    child = Child(0, None, report_r, -1, 0.0)  # type: ignore[arg-type]  # no process used
    lines = [{"c": [["j1", "lease-1"]], "q": "q"}, {"s": "j1", "q": "q", "l": "lease-1", "t": 0},
             {"c": [["j1", "lease-2"]], "q": "q"}, {"s": "j1", "q": "q", "l": "lease-2", "t": 0},
             {"x": "j1", "l": "lease-1"}, {"e": "j1", "l": "lease-1"}]
    try:
        os.write(report_w, "".join(json.dumps(line) + "\n" for line in lines).encode())
        sup._read(child)
        held = child.held["j1"]
        assert held.lease == "lease-2" and held.started is not None and not held.cancel_at
        os.write(report_w, b'{"x": "j1", "l": "lease-2"}\n{"e": "j1", "l": "lease-2"}\n')
        sup._read(child)
        assert child.held == {} and child.done == 1
    finally:
        os.close(report_r)
        os.close(report_w)


def test_a_killed_process_is_replaced_and_its_job_retried(
        q: relayq.Queue[Any], redis_url: str, tmp_path: Path) -> None:
    with worker_process(redis_url, q.name, "--processes", "2", "--demo-fail-rate", "0",
                        "--concurrency", "1", "--visibility", "2", log=tmp_path / "log") as sup:
        job_id = q.enqueue({"sleep_ms": 1500}, backoff_base_ms=0).id
        queued = q.enqueue({"sleep_ms": 1}).id  # prefetched by the same process, or run
        # its handler runs (it reports progress): "running" alone is the claim, and a job
        # claimed but not started is handed back without spending an attempt
        wait_until(lambda: q.get(job_id).progress is not None, message="the handler")
        victim = pid_of(q.get(job_id))
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda: q.get(job_id).state == "succeeded", timeout=15, message="retried")
        wait_until(lambda: q.get(queued).state == "succeeded", message="the other job")
        job = q.get(job_id)
        # nacked by the supervisor (the process reported the start before the handler ran),
        # or reaped when the 2 s lease ended: never lost
        assert job.attempts == 2 and pid_of(job) != victim
        assert "died (signal SIGKILL)" in (job.last_error or "") or \
            "lease expired" in (job.last_error or "")
        wait_until(lambda: len(children(sup)) == 2 and victim not in children(sup),
                   message="a replacement process")


def test_a_process_is_recycled_after_max_jobs(
        q: relayq.Queue[Any], redis_url: str, tmp_path: Path) -> None:
    with worker_process(redis_url, q.name, "--processes", "1", "--concurrency", "1",
                        "--prefetch", "0", "--max-jobs-per-process", "3",
                        "--demo-fail-rate", "0", log=tmp_path / "log"):
        ids = [q.enqueue({"sleep_ms": 1}).id for _ in range(9)]
        wait_until(lambda: all(q.get(i).state == "succeeded" for i in ids), timeout=20,
                   message="9 jobs")
        pids = [pid_of(q.get(i)) for i in ids]
        assert len(set(pids)) >= 3 and max(map(pids.count, set(pids))) <= 3


def test_a_process_over_its_memory_limit_is_recycled(
        q: relayq.Queue[Any], redis_url: str, tmp_path: Path) -> None:
    hungry = relayq.Queue("process-faults", q.redis)
    with worker_process(redis_url, hungry.name, "--processes", "1",
                        "--app", "tests.support.apps.process_faults:app",
                        "--max-memory-per-process", "120M", log=tmp_path / "log") as sup:
        job = hungry.enqueue({"n": 1}, type="hog").id
        wait_until(lambda: hungry.get(job).state == "succeeded", message="the hog job")
        first = pid_of(hungry.get(job))
        wait_until(lambda: children(sup) and first not in children(sup), timeout=15,
                   message="the process over 120 MiB replaced")
    assert "supervisor.memory_limit" in (tmp_path / "log").read_text()


def test_a_crash_loop_ends_the_supervisor_with_exit_1(redis_url: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "relayq.worker.cli", "--processes", "1",
                           "--app", "tests.support.apps.process_faults:app",
                           "--redis", redis_url, "--log-level", "warning"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "RELAYQ_TEST_CRASH": "1"})
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.count("supervisor.process_died") == 4
    assert "supervisor.crash_loop" in proc.stderr


@pytest.mark.parametrize("args,message", [
    (["--processes", "0"], "argument --processes: must be at least 1"),
    (["--processes", "2", "--max-memory-per-process", "1M"],
     "is below a worker process's start-up size"),
    (["--max-jobs-per-process", "3"], "need --processes"),
    (["--processes", "2", "--app", "nosuchmodule:app"], "cannot import 'nosuchmodule'"),
])
def test_bad_input_exits_2_with_one_line(args: list[str], message: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "relayq.worker.cli", "--queue", "ok",
                           "--redis", "redis://127.0.0.1:1/0", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_an_app_failing_to_import_in_a_process_exits_2_not_a_crash_loop(
        redis_url: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "relayq.worker.cli", "--processes", "2",
                           "--app", "tests.support.apps.child_import_fails:app",
                           "--redis", redis_url, "--log-level", "warning"], cwd=ROOT,
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2, proc.stderr
    assert "fails to import in a worker process" in proc.stderr
    assert "supervisor.bad_start" in proc.stderr and "crash_loop" not in proc.stderr
