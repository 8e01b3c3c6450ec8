"""relayq: a task queue for Python services built straight on Redis primitives.

Every job state transition is one atomic Lua script; workers claim jobs under leases and ack or
nack them; delivery is at-least-once. The public surface is exactly what this module exports.
"""

from .codec import Codec, DataclassCodec, JsonCodec
from .connection import connect
from .errors import (
    Conflict,
    Forbidden,
    InvalidArgument,
    InvalidJobId,
    InvalidPayload,
    InvalidQueueName,
    JobNotFound,
    LeaseLost,
    NotFound,
    NotReplicated,
    PayloadTooLarge,
    RedisBusy,
    RedisUnavailable,
    RelayqError,
    ScheduleNotFound,
    ServerBusy,
    ServerUnavailable,
    TooManyRequests,
    Unauthorized,
)
from .flows import FlowJob, FlowResult, chain, flow, group
from .job import Attempt, Job, parse_job_id
from .options import JobOptions
from .queue import Queue, list_queues
from .results import ClaimResult, EnqueueResult, NackResult, NewJob, QueueStats
from .schedules import Schedule
from .worker import App, Fail, Retry, Worker, WorkerEvents, current_job
from .worker_registry import WorkerEntry

__all__ = [
    "FlowJob", "FlowResult", "chain", "flow", "group",
    "App", "Fail", "Retry", "Worker", "WorkerEvents", "current_job",
    "Attempt", "ClaimResult", "Client", "Codec", "Conflict", "DataclassCodec", "EnqueueResult",
    "Forbidden",
    "InvalidArgument", "InvalidJobId", "InvalidPayload", "InvalidQueueName", "Job",
    "JobNotFound", "JobOptions", "JsonCodec", "LeaseLost", "NackResult", "NewJob", "NotFound",
    "NotReplicated", "PayloadTooLarge", "Queue", "QueueStats", "RedisBusy", "RedisUnavailable",
    "RelayqError", "Schedule", "ScheduleNotFound", "ServerBusy", "ServerUnavailable",
    "TooManyRequests", "Unauthorized",
    "WorkerEntry",
    "connect", "list_queues",
    "parse_job_id",
]


def __getattr__(name: str) -> object:
    """`relayq.Client` is imported on first use: the HTTP SDK pulls in urllib3, which workers
    and producers that talk to Redis directly never need (it adds a third to their start-up)."""
    if name == "Client":
        from .client import Client

        return Client
    raise AttributeError(f"module 'relayq' has no attribute {name!r}")
