"""Real `relayq-worker` processes for the scale and failover tests, and the app they run.

`recording_app` appends the id of every job it runs to the file named by RELAYQ_TEST_RECORD (one
file per worker process), so a test counts executions outside Redis: a crash can take Redis
state with it, but not these files. `WorkerProcesses` starts N workers with
`[sys.executable, "-m", "relayq.worker.cli", ...]` in their own process groups and stops them
(SIGTERM, then SIGKILL) in its finalizer.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from relayq import App, current_job

REPO = Path(__file__).resolve().parents[2]
RECORD_ENV = "RELAYQ_TEST_RECORD"

recording_app = App("recording")
_lock = threading.Lock()


@recording_app.task(name="record", default=True)
def record(payload: Any) -> Any:
    with _lock, open(os.environ[RECORD_ENV], "a") as f:
        f.write(current_job().id + "\n")
    return payload


class WorkerProcesses:
    def __init__(self, count: int, url: str, queues: list[str], directory: Path, *,
                 concurrency: int = 4, visibility_s: float = 3.0,
                 extra: list[str] | None = None,
                 app: str = "tests.support.workers:recording_app") -> None:
        self.directory = directory
        self.procs: list[subprocess.Popen[bytes]] = []
        args = [sys.executable, "-m", "relayq.worker.cli", "--redis", url,
                "--app", app, "--concurrency", str(concurrency),
                "--visibility", str(visibility_s), "--grace", "5", "--log-level", "warning",
                *[a for q in queues for a in ("--queue", q)], *(extra or [])]
        self.args = args
        for _ in range(count):
            self.add()

    def add(self) -> subprocess.Popen[bytes]:
        """Starts one more worker process (its own record and log files)."""
        i = len(self.procs)
        env = {**os.environ, RECORD_ENV: str(self.directory / f"worker-{i}.ran"),
               "PYTHONPATH": str(REPO)}
        with open(self.directory / f"worker-{i}.log", "wb") as log:
            proc = subprocess.Popen(self.args, cwd=REPO, env=env, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append(proc)
        return proc

    def kill(self, index: int) -> None:
        """SIGKILL one worker process (no drain, no release: its leases must expire)."""
        os.killpg(self.procs[index].pid, signal.SIGKILL)
        self.procs[index].wait(10)

    def executions(self) -> Counter[str]:
        """How many times each job id ran, over every worker."""
        runs: Counter[str] = Counter()
        for path in self.directory.glob("worker-*.ran"):
            runs.update(path.read_text().split())
        return runs

    def alive(self) -> bool:
        return all(p.poll() is None for p in self.procs if p.returncode != -signal.SIGKILL)

    def logs(self) -> str:
        return "\n".join(p.read_text()[-3000:] for p in sorted(self.directory.glob("*.log")))

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(5)
