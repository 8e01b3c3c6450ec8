"""The values `Queue` methods take and return: what an enqueue answered, a claim's jobs and
why it may be empty, how a worker finished a job, a queue's stats."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Generic, NamedTuple, TypeVar

from .job import Job
from .options import DEFAULT_OPTIONS, JobOptions

T = TypeVar("T")


class EnqueueResult(NamedTuple):
    id: str
    state: str | None  # None: a duplicate whose original job has already expired
    duplicate: bool


class NackResult(NamedTuple):
    state: str  # scheduled | ready | dead
    attempts: int
    run_at: int | None  # epoch ms when scheduled


class ClaimResult(list):  # type: ignore[type-arg]
    """The claimed jobs (a list), plus why there are none when it is empty:
    `status` is ok | empty | paused | throttled; `retry_in_ms` is when to ask again
    (the next scheduled job's due time, or when the rate limit has a token; None: no hint)."""

    def __init__(self, jobs: Iterable[Job[Any]] = (), status: str = "ok",
                 retry_in_ms: int | None = None) -> None:
        super().__init__(jobs)
        self.status = status
        self.retry_in_ms = retry_in_ms


@dataclass(slots=True)
class NewJob(Generic[T]):
    """A job to enqueue in a batch: its payload and options."""

    payload: T
    options: JobOptions = DEFAULT_OPTIONS


class Outcome(NamedTuple):
    """How a worker finished a job: `ack` (with its result as JSON text, '' for none), `nack`
    (with error, retry, delay_ms), or `release` (hand it back without spending an attempt)."""

    job_id: str
    lease: str
    kind: str
    result_json: str = ""
    error: str = ""
    retry: bool = True
    delay_ms: int | None = None


@dataclass(slots=True)
class QueueStats:
    queue: str
    ready: int
    scheduled: int
    running: int
    dead: int
    succeeded: int
    paused: bool
    rate_limit: dict[str, float] | None
    totals: dict[str, int]
    latency_ms: int  # age of the oldest ready job (since it became due), 0 when none
    waiting: int = 0  # jobs waiting for their parents (workflows)

    def to_dict(self) -> dict[str, Any]:
        return {
            "queue": self.queue, "ready": self.ready, "scheduled": self.scheduled,
            "running": self.running, "dead": self.dead, "succeeded": self.succeeded,
            "paused": self.paused, "rate_limit": self.rate_limit, "totals": self.totals,
            "latency_ms": self.latency_ms, "waiting": self.waiting,
        }


TOTALS = ("enqueued", "claimed", "succeeded", "failed", "retried", "dead", "reaped",
          "throttled", "cancelled")
