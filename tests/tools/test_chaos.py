"""`relayq chaos`: a CI-sized run kills every target twice under load and loses nothing (the
large runs are in docs/guarantees.md); the verdict counts what it should; nothing is left
running afterwards."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from relayq.tools.chaos import ChaosConfig, check
from tests.support.processes import processes_mentioning

ROOT = Path(__file__).resolve().parents[2]


def test_a_ci_sized_chaos_run_loses_nothing() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "relayq.cli.main", "chaos", "--jobs", "300", "--workers", "2",
         "--kills", "6", "--kill-interval", "1", "--seed", "7"],
        cwd=ROOT, capture_output=True, text=True, timeout=150)
    out = run.stdout.splitlines()
    assert run.returncode == 0, run.stdout + run.stderr[-3000:]
    assert out[-1] == "result: ZERO LOSS"
    assert "submitted: 300 " in run.stdout and "succeeded: 300" in out
    assert "lost: 0" in out
    assert "kills: 6 (worker 2, server 2, redis 2)" in run.stdout
    loaded = int(re.search(r"; (\d+) under load", run.stdout).group(1))
    assert loaded >= 5, "the kills should land while jobs are in flight"
    assert re.search(r"latency submit->succeeded: p50 \d+ ms, p95 \d+ ms, p99 \d+ ms", run.stdout)
    # every kill was reported on stderr as it happened, and progress too
    assert len(re.findall(r"kill \d/6: kill -9 (worker|server|redis)", run.stderr)) == 6
    assert "300 of 300 jobs confirmed" in run.stderr
    # nothing it started outlives it: no process mentions its Redis or server port any more
    ports = re.findall(r"127\.0\.0\.1:(\d+)", run.stderr)
    assert len(ports) >= 2
    for port in set(ports):
        left = processes_mentioning(f"127.0.0.1:{port}") + processes_mentioning(f"--port {port} ")
        assert left == [], f"left running: {left}"


def _job(state: str, finished_at: int | None = 2000) -> SimpleNamespace:
    return SimpleNamespace(state=state, finished_at=finished_at)


def test_the_verdict_counts_loss_duplicates_and_extra_jobs() -> None:
    config = ChaosConfig(jobs=5)
    confirmed = {0: "q.1", 1: "q.2", 2: "q.3", 3: "q.4"}  # job 4 never confirmed
    sent = {i: 1000.0 for i in range(5)}
    runs = {"q.1": 1, "q.2": 3, "q.4": 1}  # q.3 never completed a run
    jobs = {"q.1": _job("succeeded"), "q.2": _job("succeeded", 1500), "q.3": _job("succeeded"),
            "q.4": _job("dead")}
    report = check(config, confirmed, sent, runs, jobs, enqueued=6)
    assert report.lost == ["q.3", "q.4"]
    assert (report.succeeded, report.dead, report.duplicate_deliveries) == (2, 1, 2)
    assert (report.unconfirmed, report.extra_jobs) == (1, 2)
    assert report.latency_ms["p50"] == 750
    lines = report.lines()
    assert lines[-1] == "result: LOST 2"
    assert "error: 1 submits never confirmed within 120 s" in lines
    assert not report.ok


def test_a_missing_job_is_lost_and_a_clean_run_is_ok() -> None:
    config = ChaosConfig(jobs=2)
    sent = {0: 0.0, 1: 0.0}
    gone = check(config, {0: "q.1", 1: "q.2"}, sent, {"q.1": 1, "q.2": 1},
                 {"q.1": _job("succeeded")}, enqueued=2)
    assert gone.lost == ["q.2"] and gone.lines()[-1] == "result: LOST 1"
    clean = check(config, {0: "q.1", 1: "q.2"}, sent, {"q.1": 1, "q.2": 1},
                  {"q.1": _job("succeeded"), "q.2": _job("succeeded")}, enqueued=2)
    assert clean.ok and clean.lines()[-1] == "result: ZERO LOSS"


@pytest.mark.parametrize("args", [["--targets", "worker,database"], ["--jobs", "0"],
                                  ["--kill-interval", "0"], ["--flaky", "2"]])
def test_bad_arguments_exit_2_before_starting_anything(args: list[str]) -> None:
    run = subprocess.run([sys.executable, "-m", "relayq.cli.main", "chaos", *args],
                         cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert run.returncode == 2 and run.stderr.startswith("relayq chaos: ")
    assert "redis-server" not in run.stderr
