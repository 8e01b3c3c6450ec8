"""`relayq-worker --processes N`: a supervisor of N worker processes, and the pipe by which each
tells it which jobs its handlers run.

Each worker process is a subprocess of relayq-worker itself (`python -m relayq.worker.cli` with
the same arguments), not a fork: forking a process that holds threads and Redis connections
copies locks in whatever state they were and sockets that two processes would then share; a
fresh interpreter runs exactly the code path of a single worker (same flags, same checks, its
own connections and threads), and can be SIGKILLed without harm to its siblings. The supervisor
runs no handler; it imports the app once (so that a bad `--app` is exit 2 before any process
starts) and holds one Redis client of its own for the nacks below.

The pipe (child -> supervisor, one JSON line per event, each under PIPE_BUF so that lines from
several threads never interleave): `{"c": [[id, lease], ...], "q": queue}` when it claims jobs
(at most CLAIM_REPORT jobs a line), `{"s": id, "q": queue, "l": lease, "t": timeout_ms}` when a
handler starts a job (t only for a synchronous handler with a timeout), `{"x": id, "l": lease}`
when its lease keeper hears that the job's cancel was requested, `{"e": id, "l": lease}` when the
handler returns or raises. The lease tells attempts of one job apart: a process whose handler
overran can claim the job's next attempt while the first still runs, and that handler's end must
not make the supervisor forget the new attempt. A second pipe (supervisor -> child) carries
nothing: its end-of-file tells a child that the supervisor is gone, and the child drains and
exits rather than live on orphaned.

What the supervisor does with that:
- `timeout_ms` is real for synchronous handlers: a job over its time is nacked here (the same
  `Queue.settle` the worker records outcomes with, under the job's lease: it follows its retry
  policy), and its process is stopped: SIGTERM (it hands back prefetched jobs, lets its other
  running jobs finish within --grace), then SIGKILL once the timed-out job is the only one left
  (after PROCESS_STUCK_KILL_S) or the grace is over. A fresh process takes the slot at once.
  The process's own lease keeper leaves those timeouts to the supervisor (no double nack).
- A cancel requested for a running job: its handler has PROCESS_CANCEL_GRACE_S to end itself
  (`check_cancelled()`; the job then ends `cancelled` through the worker's own settle). A
  handler still running then is stopped the way an overrun is: the job is nacked under its lease
  (the scripts end a cancel-requested job `cancelled`, never retried) and its process stopped
  and replaced.
- A process that dies with jobs started and not finished: those jobs are nacked ("worker process
  died"); jobs it had claimed but not started are released (back to their queue, no attempt
  spent). A job claimed in the instant before the death, not yet reported, comes back through
  the reaper when its lease ends. Every such settle goes under the lease the process held, so a
  job that has moved on since (acked, released, claimed elsewhere) is left alone. The slot is
  refilled after a backoff; PROCESS_CRASH_LOOP quick deaths in a row end the supervisor (exit
  1) instead of spinning. A process that exits 2 before running anything (bad
  arguments or an app that fails to import there) ends the supervisor with exit 2.
- Recycling: after `--max-jobs-per-process` jobs or over `--max-memory-per-process` (RSS from
  /proc), a process is drained (SIGTERM) while a fresh one takes its slot.
- SIGTERM / SIGINT: forwarded to every process (each drains gracefully; a second signal makes
  them hand running jobs back at once); the supervisor exits when all have.
- `--metrics-addr`: served by the supervisor from the counts of every process (prometheus_client
  multiprocess mode in one shared directory, relayq/metrics_dir.py).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..connection import RedisClient
from ..errors import InvalidArgument, RelayqError
from ..job import Job
from ..limits import (
    PROCESS_CANCEL_GRACE_S,
    PROCESS_CHECK_S,
    PROCESS_CRASH_LOOP,
    PROCESS_KILL_MARGIN_S,
    PROCESS_MEMORY_CHECK_S,
    PROCESS_QUICK_DEATH_S,
    PROCESS_RESTART_BASE_S,
    PROCESS_RESTART_CAP_S,
    PROCESS_STUCK_KILL_S,
)
from ..logs import log_event
from ..queue import Queue
from ..results import Outcome
from .app import App
from .events import WorkerEvents

log = logging.getLogger("relayq.worker")

CLAIM_REPORT = 40  # jobs per claim line: 40 ids and leases stay far below PIPE_BUF (4096)
EXIT_CRASH_LOOP = 1
EXIT_BAD_START = 2
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def memory_size(text: str) -> int:
    """`--max-memory-per-process`: bytes, or a number with K, M or G (binary: 512M, 1.5G)."""
    raw = text.strip().lower().removesuffix("ib").removesuffix("b")
    unit = raw[-1:] if raw[-1:] in _UNITS else ""
    try:
        value = float(raw[: len(raw) - len(unit)])
    except ValueError:
        raise InvalidArgument(f"bad memory size {text!r}: expected e.g. 512M or 2G") from None
    if not value > 0:
        raise InvalidArgument(f"memory size {text!r} must be positive")
    return int(value * _UNITS[unit])


def rss_bytes(pid: int) -> int | None:
    """Resident memory of a process, from /proc (None when it is gone)."""
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, IndexError, ValueError):
        return None


def _mib(n: int) -> str:
    return f"{n / 1024**2:.0f} MiB"


# -- the child's side ---------------------------------------------------------------------------

class Reporter(WorkerEvents):
    """The worker events of a process under a supervisor: forwards every event to `inner` (its
    metrics) and writes job starts and ends to the supervisor's pipe. `stop` (the worker's
    drain) is called when the supervisor goes away (its lifeline pipe closes or the report pipe
    breaks), and once `max_jobs` handlers have finished: the process stops claiming at once
    rather than when the supervisor's SIGTERM arrives, so that the limit is exact."""

    def __init__(self, report_fd: int, lifeline_fd: int, app: App, inner: WorkerEvents,
                 stop: Callable[[], None], max_jobs: int | None = None) -> None:
        self.fd = report_fd
        self.app = app
        self.inner = inner
        self.stop = stop
        self.max_jobs = max_jobs
        self._done = 0
        self._lock = threading.Lock()
        self._orphaned = threading.Event()
        threading.Thread(target=self._watch, args=(lifeline_fd,), name="relayq-lifeline",
                         daemon=True).start()

    def _watch(self, fd: int) -> None:
        with contextlib.suppress(OSError):
            while os.read(fd, 1):
                pass
        self._orphan()

    def _orphan(self) -> None:
        if not self._orphaned.is_set():
            self._orphaned.set()
            log_event(log, logging.WARNING, "worker.orphaned", action="drain")
            self.stop()

    def _send(self, message: dict[str, Any]) -> None:
        if self._orphaned.is_set():
            return
        try:
            os.write(self.fd, (json.dumps(message, separators=(",", ":")) + "\n").encode())
        except OSError:
            self._orphan()

    def started(self, job: Job[Any]) -> None:
        task = self.app.handler_for(job.type)
        timeout = job.timeout_ms if task is not None and not task.is_async else None
        self._send({"s": job.id, "q": job.queue, "l": job.lease or "", "t": timeout or 0})
        self.inner.started(job)

    def finished(self, job: Job[Any]) -> None:
        self._send({"e": job.id, "l": job.lease or ""})
        self.inner.finished(job)
        with self._lock:
            self._done += 1
            recycle = self._done == self.max_jobs
        if recycle:
            self.stop()

    def claimed(self, queue: str, jobs: list[Job[Any]], now_ms: float) -> None:
        for start in range(0, len(jobs), CLAIM_REPORT):
            chunk = jobs[start:start + CLAIM_REPORT]
            self._send({"c": [[job.id, job.lease or ""] for job in chunk], "q": queue})
        self.inner.claimed(queue, jobs, now_ms)

    def succeeded(self, job: Job[Any], duration_s: float) -> None:
        self.inner.succeeded(job, duration_s)

    def failed(self, job: Job[Any], duration_s: float, error: str) -> None:
        self.inner.failed(job, duration_s, error)

    def settled(self, job: Job[Any], kind: str, status: str) -> None:
        self.inner.settled(job, kind, status)

    def cancel_requested(self, job: Job[Any]) -> None:
        self._send({"x": job.id, "l": job.lease or ""})
        self.inner.cancel_requested(job)

    def throttled(self, queue: str) -> None:
        self.inner.throttled(queue)

    def reaped(self, queue: str, requeued: int, dead: int) -> None:
        self.inner.reaped(queue, requeued, dead)


def child_fds(text: str) -> tuple[int, int]:
    """The hidden `--supervisor-fds REPORT,LIFELINE` the supervisor gives its processes."""
    report, _, lifeline = text.partition(",")
    return int(report), int(lifeline)


# -- the supervisor -----------------------------------------------------------------------------

@dataclass(slots=True)
class Held:
    queue: str
    lease: str
    started: float | None = None  # monotonic, once its handler began; None while prefetched
    timeout_ms: int = 0  # 0: none the supervisor enforces; -1: stopped (overran) and nacked
    cancel_at: float = 0.0  # monotonic: when a cancelled handler still running is stopped


@dataclass(eq=False)
class Child:
    slot: int
    proc: subprocess.Popen[bytes]
    report_fd: int
    lifeline_fd: int
    born: float
    held: dict[str, Held] = field(default_factory=dict)
    done: int = 0
    buffer: bytes = b""
    retiring: str = ""  # why it was asked to stop: timeout, cancel, max_jobs, max_memory, stop
    kill_at: float = 0.0
    stuck: bool = False  # a handler overran (timeout, cancel): SIGKILL once the rest is done


class Supervisor:
    """Runs `processes` worker processes of `argv` (relayq-worker's own arguments)."""

    def __init__(self, argv: Sequence[str], processes: int, redis: RedisClient, *,
                 grace_s: float, max_jobs: int | None = None, max_memory: int | None = None,
                 metrics: bool = False) -> None:
        self.argv = list(argv)
        self.processes = processes
        self.redis = redis
        self.grace_s = grace_s
        self.max_jobs = max_jobs
        self.max_memory = max_memory
        self.metrics = metrics
        self.slots: list[Child | None] = [None] * processes
        self.retiring: list[Child] = []
        self.respawn_at: dict[int, float] = {}
        self.quick_deaths = [0] * processes
        self.selector = selectors.DefaultSelector()
        self.signals = 0
        self._forwarded = 0
        self.exit_code = 0
        self._queues: dict[str, Queue[Any]] = {}

    # -- processes --------------------------------------------------------------------------

    def _spawn(self, slot: int) -> None:
        report_r, report_w = os.pipe()
        lifeline_r, lifeline_w = os.pipe()
        cmd = [sys.executable, "-m", "relayq.worker.cli", *self.argv,
               "--supervisor-fds", f"{report_w},{lifeline_r}"]
        # its own process group: a terminal's Ctrl-C reaches the supervisor only, which
        # forwards it once (a second copy would make the workers release their jobs at once)
        proc = subprocess.Popen(cmd, pass_fds=(report_w, lifeline_r), process_group=0)
        os.close(report_w)
        os.close(lifeline_r)
        os.set_blocking(report_r, False)
        child = Child(slot, proc, report_r, lifeline_w, time.monotonic())
        self.selector.register(report_r, selectors.EVENT_READ, child)
        self.slots[slot] = child
        log_event(log, logging.INFO, "supervisor.process_started", slot=slot, pid=proc.pid)

    def _children(self) -> list[Child]:
        return [c for c in self.slots if c is not None] + self.retiring

    def _signal(self, child: Child, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            child.proc.send_signal(signum)

    def _retire(self, child: Child, reason: str) -> None:
        """Asks a process to drain and stop (SIGTERM); a fresh one takes its slot at once
        unless the supervisor is stopping."""
        if child.retiring:
            return
        child.retiring = reason
        child.kill_at = time.monotonic() + self.grace_s + PROCESS_KILL_MARGIN_S
        self._signal(child, signal.SIGTERM)
        if self.slots[child.slot] is child:
            self.slots[child.slot] = None
            self.retiring.append(child)
            if not self.signals:
                self._spawn(child.slot)
        log_event(log, logging.INFO, "supervisor.process_retiring", pid=child.proc.pid,
                  reason=reason, jobs_done=child.done)

    # -- the pipe ---------------------------------------------------------------------------

    def _read(self, child: Child) -> None:
        try:
            data = os.read(child.report_fd, 1 << 16)  # any size: lines are reassembled
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:  # the process is exiting: its exit is handled in _reap
            self._close_pipe(child)
            return
        *lines, child.buffer = (child.buffer + data).split(b"\n")
        now = time.monotonic()
        for line in lines:
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if "c" in message:
                for job_id, lease in message["c"]:
                    child.held[job_id] = Held(message["q"], lease)
            elif "s" in message:
                before = child.held.get(message["s"])  # a cancel may be heard before the start
                child.held[message["s"]] = Held(message["q"], message["l"], now,
                                                int(message.get("t") or 0),
                                                before.cancel_at if before else 0.0)
            elif "x" in message:
                held = self._attempt(child, message["x"], message)
                if held is not None and not held.cancel_at:
                    held.cancel_at = now + PROCESS_CANCEL_GRACE_S
            elif "e" in message and self._attempt(child, message["e"], message) is not None:
                del child.held[message["e"]]
                child.done += 1
                if child.stuck and not self._running(child):
                    child.kill_at = min(child.kill_at, now + PROCESS_STUCK_KILL_S)
                if self.max_jobs and child.done >= self.max_jobs:
                    self._retire(child, "max_jobs")

    @staticmethod
    def _attempt(child: Child, job_id: str, message: dict[str, Any]) -> Held | None:
        """What `child` holds of the attempt a line names (by its lease), else None."""
        held = child.held.get(job_id)
        return held if held is not None and held.lease == message.get("l", held.lease) else None

    def _close_pipe(self, child: Child) -> None:
        if child.report_fd >= 0:
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(child.report_fd)
            os.close(child.report_fd)
            child.report_fd = -1

    # -- jobs -------------------------------------------------------------------------------

    @staticmethod
    def _running(child: Child) -> bool:
        """True while a handler of `child` runs a job that has not timed out."""
        return any(h.started is not None and h.timeout_ms >= 0 for h in child.held.values())

    def _settle(self, job_id: str, held: Held, kind: str, error: str = "") -> None:
        """Nacks or releases a job that a process held, under its lease, as the worker itself
        would (Queue.settle)."""
        queue = self._queues.get(held.queue)
        if queue is None:
            queue = self._queues[held.queue] = Queue(held.queue, self.redis)
        try:
            statuses, _ = queue.settle([Outcome(job_id, held.lease, kind, error=error)])
        except RelayqError as e:  # Redis away: the reaper recovers it when its lease ends
            log_event(log, logging.WARNING, "supervisor.settle_failed", id=job_id, kind=kind,
                      error=str(e))
            return
        if statuses and statuses[0] == "ok" and held.cancel_at:  # the scripts ended it cancelled
            log_event(log, logging.INFO, "supervisor.job_cancelled", id=job_id, kind=kind,
                      error=error)
        elif statuses and statuses[0] == "ok":
            log_event(log, logging.WARNING if kind == "nack" else logging.INFO,
                      "supervisor.job_failed" if kind == "nack" else "supervisor.job_released",
                      id=job_id, error=error)

    @staticmethod
    def _overrun(held: Held, now: float) -> tuple[str, str] | None:
        """Why a running handler must be stopped (the reason and the job's error), or None:
        it is over its timeout_ms, or still running PROCESS_CANCEL_GRACE_S after its job's
        cancel was requested."""
        if held.started is None or held.timeout_ms < 0:
            return None
        if held.cancel_at and now >= held.cancel_at:
            return "cancel", (f"cancelled: its handler did not stop within "
                              f"{PROCESS_CANCEL_GRACE_S:g} s")
        if held.timeout_ms > 0 and (now - held.started) * 1000 > held.timeout_ms:
            return "timeout", f"timed out after {held.timeout_ms} ms"
        return None

    def _check_overruns(self, now: float) -> None:
        """Stops every handler that overran: its job is nacked under its lease (its retry
        policy applies; a cancel-requested job ends cancelled, the scripts decide) and its
        process retired, then SIGKILLed once nothing else runs there."""
        for child in self._children():
            for job_id, held in list(child.held.items()):
                overrun = self._overrun(held, now)
                if overrun is None:
                    continue
                reason, error = overrun
                self._settle(job_id, held, "nack",
                             f"{error} (its worker process {child.proc.pid} was stopped)")
                held.timeout_ms = -1  # nacked: not again, and not at its death either
                child.stuck = True
                self._retire(child, reason)
                if not self._running(child):
                    child.kill_at = min(child.kill_at, now + PROCESS_STUCK_KILL_S)

    def _check_memory(self) -> None:
        if not self.max_memory:
            return
        for child in [c for c in self.slots if c is not None]:
            rss = rss_bytes(child.proc.pid)
            if rss is None or rss <= self.max_memory:
                continue
            if child.done == 0 and not child.held:
                raise InvalidArgument(
                    f"--max-memory-per-process {_mib(self.max_memory)} is below a worker "
                    f"process's start-up size ({_mib(rss)} before any job)")
            log_event(log, logging.INFO, "supervisor.memory_limit", pid=child.proc.pid,
                      rss=_mib(rss), limit=_mib(self.max_memory))
            self._retire(child, "max_memory")

    def _reap(self, now: float) -> None:
        for child in self._children():
            code = child.proc.poll()
            if code is None:
                if child.retiring and now >= child.kill_at:
                    log_event(log, logging.WARNING, "supervisor.process_killed",
                              pid=child.proc.pid, reason=child.retiring)
                    self._signal(child, signal.SIGKILL)
                    child.kill_at = now + 3600.0
                continue
            self._exited(child, code, now)

    def _exited(self, child: Child, code: int, now: float) -> None:
        if child.report_fd >= 0:  # its last lines (jobs it finished) before its death
            self._read(child)
            self._close_pipe(child)
        os.close(child.lifeline_fd)
        if self.metrics:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(child.proc.pid)
        how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit {code}"
        for job_id, held in child.held.items():
            if held.started is None:
                self._settle(job_id, held, "release")
            elif held.timeout_ms >= 0:
                self._settle(job_id, held, "nack", f"worker process {child.proc.pid} died "
                                                   f"({how}) while running the job")
        if child in self.retiring:
            self.retiring.remove(child)
            log_event(log, logging.INFO, "supervisor.process_stopped", pid=child.proc.pid,
                      reason=child.retiring, status=how)
            return
        self.slots[child.slot] = None
        if self.signals:
            return
        lived = now - child.born
        if code == EXIT_BAD_START and child.done == 0 and not child.held:
            log_event(log, logging.ERROR, "supervisor.bad_start", pid=child.proc.pid,
                      hint="a worker process exited 2 at start (see its message above)")
            self.exit_code = EXIT_BAD_START
            self.stop()
            return
        slot = child.slot
        self.quick_deaths[slot] = self.quick_deaths[slot] + 1 if lived < PROCESS_QUICK_DEATH_S \
            else 1
        deaths = self.quick_deaths[slot]
        if deaths >= PROCESS_CRASH_LOOP:
            log_event(log, logging.ERROR, "supervisor.crash_loop", slot=slot, deaths=deaths,
                      status=how, action="exit")
            self.exit_code = EXIT_CRASH_LOOP
            self.stop()
            return
        delay = min(PROCESS_RESTART_CAP_S, PROCESS_RESTART_BASE_S * 2 ** (deaths - 1))
        self.respawn_at[slot] = now + delay
        log_event(log, logging.WARNING, "supervisor.process_died", slot=slot,
                  pid=child.proc.pid, status=how, lived=f"{lived:.1f}s",
                  restart_in=f"{delay:.1f}s", quick_deaths=deaths)

    # -- the loop ---------------------------------------------------------------------------

    def stop(self) -> None:
        """Drains every process (SIGTERM) and replaces none."""
        self.signals = max(self.signals, 1)
        self.respawn_at.clear()

    def _forward_signals(self) -> None:
        if self.signals <= self._forwarded:
            return
        self._forwarded = self.signals
        for child in self._children():
            if child.retiring and self._forwarded > 1:  # a second signal: release at once
                self._signal(child, signal.SIGTERM)
            self._retire(child, "stop")

    def run(self) -> int:
        def on_signal(signum: int, _frame: Any) -> None:
            self.signals += 1
            log_event(log, logging.INFO, "supervisor.signal", signal=signal.Signals(signum).name,
                      action="drain" if self.signals == 1 else "release")

        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            for slot in range(self.processes):
                self._spawn(slot)
            log_event(log, logging.INFO, "supervisor.started", processes=self.processes)
            next_memory = time.monotonic() + PROCESS_MEMORY_CHECK_S
            while True:
                for key, _ in self.selector.select(PROCESS_CHECK_S):
                    self._read(key.data)
                now = time.monotonic()
                self._check_overruns(now)
                if now >= next_memory:
                    next_memory = now + PROCESS_MEMORY_CHECK_S
                    try:
                        self._check_memory()
                    except InvalidArgument as e:
                        log_event(log, logging.ERROR, "supervisor.bad_memory_limit",
                                  error=e.message)
                        print(f"relayq-worker: {e.message}", file=sys.stderr, flush=True)
                        self.exit_code = EXIT_BAD_START
                        self.stop()
                self._reap(now)
                self._forward_signals()
                if self.signals and not self._children():
                    break
                for slot, at in list(self.respawn_at.items()):
                    if self.signals:  # stopping: a process that died is not replaced
                        self.respawn_at.clear()
                    elif now >= at:
                        del self.respawn_at[slot]
                        self._spawn(slot)
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
            for child in self._children():  # only on an unexpected error of our own
                self._signal(child, signal.SIGKILL)
        log_event(log, logging.INFO, "supervisor.stopped", status=self.exit_code)
        return self.exit_code
