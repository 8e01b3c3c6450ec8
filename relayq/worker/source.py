"""The seam between the worker and its queues: what the components need from a queue
(`WorkQueue`) and how an idle worker waits for jobs (`Listener`), with the two ways to reach
them.

- Over Redis (the default, the hot path): the queues are `relayq.Queue` objects as they are, so
  the dispatcher, the lease keeper and maintenance call the scripts with no layer in between;
  an idle waker blocks on the queue's wake list with its claim behind the BLPOP
  (`TokenListener`), and hands what it claimed straight to the dispatcher.
- Over HTTP (`relayq-worker --server URL`): `HttpQueue` makes each operation one request to a
  relayq-server, which runs the same `Queue` operation (`POST /api/queues/{q}/settle`,
  `.../heartbeat`, `.../reap`, relayq.api.work), and keeps the worker's registry entry with
  PUT /api/workers/{id} (`HttpRegistryStore`); an idle waker long-polls the claim route
  (`ClaimListener`), woken by the server's wake hub as soon as a job is enqueued, and hands
  what it claimed straight to the dispatcher.

Only this module knows which is which: one dispatcher, one executor, one lease keeper.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from .. import tracing
from ..limits import MAX_CLAIM_COUNT, MAX_HTTP_CLAIM_COUNT, MAX_HTTP_OUTCOMES, MAX_WAIT_MS
from ..protocol import Heartbeat
from ..queue import Queue
from ..results import ClaimResult, Outcome
from ..schedules import FireReport
from ..wake import WakeListener
from ..worker_registry import WorkerEntry

if TYPE_CHECKING:  # the SDK (urllib3) is loaded only by a worker over HTTP
    from ..client import Client


class WorkQueue(Protocol):
    """The operations of a queue that a worker uses (`relayq.Queue` has them all)."""

    name: str

    def settle(self, outcomes: Sequence[Outcome], claim: int = 0, *, visibility_ms: int = ...,
               worker_id: str | None = None) -> tuple[list[str], ClaimResult | None]: ...

    def heartbeat_many(self, leases: Iterable[tuple[str, str]],
                       visibility_ms: int = ...) -> list[Heartbeat]: ...

    def progress(self, job_id: str, lease: str, fraction: float, info: Any = None) -> bool: ...

    def pass_wake(self) -> None: ...

    def reap(self) -> tuple[int, int]: ...

    def promote(self) -> tuple[int, int | None]: ...

    def fire_schedules(self) -> FireReport: ...


class Listener(Protocol):
    """How an idle waker waits: `wait` answers True (a wake-up token: claim now) or the jobs
    it claimed itself (a ClaimResult, empty when none came), False at the timeout.
    `interruptible`: `unblock` ends a wait under way (else a stopping waker does not wait for
    it)."""

    interruptible: bool

    def wait(self, timeout_s: float, count: int) -> bool | ClaimResult: ...

    def unblock(self) -> None: ...

    def close(self) -> None: ...


class TokenListener:
    """Over Redis: BLPOP on the queue's wake list with a claim of up to `count` jobs behind it
    in the same round trip (relayq.wake.WakeListener.wait_then_run); True (a token: claim now)
    only when Redis did not have the claim script yet."""

    interruptible = True

    def __init__(self, queue: Queue[Any], visibility_ms: int, worker_id: str) -> None:
        self._queue = queue
        self._listener = WakeListener(queue)
        self._visibility_ms = visibility_ms
        self._worker_id = worker_id

    def wait(self, timeout_s: float, count: int) -> bool | ClaimResult:
        call = self._queue.claim_call(max(1, min(count, MAX_CLAIM_COUNT)), self._visibility_ms,
                                      self._worker_id)
        started = tracing.clock()
        token, claimed = self._listener.wait_then_run(timeout_s, call)
        if claimed is None:
            return token
        if started:
            tracing.claimed(self._queue.name, claimed, started)
        return claimed

    def unblock(self) -> None:
        self._listener.unblock()

    def close(self) -> None:
        self._listener.close()


class HttpQueue:
    """A queue reached through a relayq-server: each operation one request of `client`."""

    def __init__(self, name: str, client: Client, *, visibility_ms: int,
                 worker_id: str) -> None:
        self.name = name
        self.client = client
        self.visibility_ms = visibility_ms  # for the long-poll claims of its listener
        self.worker_id = worker_id

    def __repr__(self) -> str:
        return f"HttpQueue({self.name!r}, {self.client.server!r})"

    def settle(self, outcomes: Sequence[Outcome], claim: int = 0, *,
               visibility_ms: int | None = None, worker_id: str | None = None
               ) -> tuple[list[str], ClaimResult | None]:
        """Outcomes over MAX_HTTP_OUTCOMES go in requests of their own before the last one,
        which also claims (at most MAX_HTTP_CLAIM_COUNT: the dispatcher sees a short claim
        and claims again at once)."""
        statuses: list[str] = []
        outcomes = list(outcomes)
        while len(outcomes) > MAX_HTTP_OUTCOMES:
            statuses += self.client.settle(self.name, outcomes[:MAX_HTTP_OUTCOMES])[0]
            del outcomes[:MAX_HTTP_OUTCOMES]
        last, claimed = self.client.settle(
            self.name, outcomes, min(claim, MAX_HTTP_CLAIM_COUNT),
            visibility_ms=visibility_ms, worker_id=worker_id)
        return statuses + last, claimed

    def heartbeat_many(self, leases: Iterable[tuple[str, str]],
                       visibility_ms: int | None = None) -> list[Heartbeat]:
        leases = list(leases)
        return [reply for start in range(0, len(leases), MAX_HTTP_OUTCOMES)
                for reply in self.client.heartbeat_many(
                    self.name, leases[start:start + MAX_HTTP_OUTCOMES], visibility_ms)]

    def progress(self, job_id: str, lease: str, fraction: float, info: Any = None) -> bool:
        return self.client.progress(job_id, lease, fraction, info)

    def pass_wake(self) -> None:
        """Nothing to do: this worker never takes a wake-up token (the server's wake hub hands
        each to one long poll, and passes on those nobody waits for)."""

    def reap(self) -> tuple[int, int]:
        return self.client.reap(self.name)

    def promote(self) -> tuple[int, int | None]:
        """Nothing to do: every claim promotes the due scheduled jobs on its way (claim.lua),
        and a waiting long poll claims again when the next one is due (its hint)."""
        return 0, None

    def fire_schedules(self) -> FireReport:
        """Nothing to do: relayq-server fires the due ticks of every queue with schedules."""
        return FireReport(0, 0, None)


class ClaimListener:
    """Over HTTP: a long-poll claim of up to `count` jobs (the dispatcher's free slots). A
    request under way cannot be cut short: `unblock` does nothing, and a worker that stops
    meanwhile hands back what the poll brings (relayq.worker.waker); a process that exits
    closes the connection, and the server then claims nothing more for it (relayq.api.wake_hub
    watches for a client that hung up). The longest poll is the waker's MAX_BLOCK_S."""

    interruptible = False

    def __init__(self, queue: HttpQueue) -> None:
        self.queue = queue

    def wait(self, timeout_s: float, count: int) -> ClaimResult:
        q = self.queue
        return q.client.claim(q.name, max(1, min(count, MAX_HTTP_CLAIM_COUNT)),
                              wait_ms=min(MAX_WAIT_MS, max(1, round(timeout_s * 1000))),
                              visibility_ms=q.visibility_ms, worker_id=q.worker_id)

    def unblock(self) -> None:
        pass

    def close(self) -> None:
        pass


class HttpRegistryStore:
    """The worker's registry entry through the server (PUT / DELETE /api/workers/{id}). At most
    MAX_HTTP_OUTCOMES of the ids it holds are listed."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def write(self, entry: WorkerEntry, ttl_ms: int) -> None:
        entry.jobs = entry.jobs[:MAX_HTTP_OUTCOMES]
        written = self.client.register_worker(entry, ttl_ms)
        entry.started_at, entry.last_seen_at = written.started_at, written.last_seen_at

    def remove(self, worker_id: str) -> None:
        self.client.remove_worker(worker_id)


def listener_for(queue: WorkQueue, visibility_ms: int, worker_id: str) -> Listener:
    """The way an idle worker waits for jobs of `queue` (and claims them, under leases of
    `visibility_ms` for `worker_id`)."""
    if isinstance(queue, HttpQueue):
        return ClaimListener(queue)
    assert isinstance(queue, Queue)
    return TokenListener(queue, visibility_ms, worker_id)
