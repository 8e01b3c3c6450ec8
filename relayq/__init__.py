"""relayq: a task queue for Python services built straight on Redis primitives.

Every job state transition is one atomic Lua script; workers claim jobs under leases and ack or
nack them; delivery is at-least-once. The public surface is exactly what this module exports.

Each name is imported on first use (PEP 562), so that a program that needs one part pays for
that part only: `relayq --help` or `relayq status` over HTTP never loads redis-py, the Lua
scripts or the worker, and a producer never loads the HTTP SDK's urllib3.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

# Public name -> the module (relative to this package) that defines it.
_EXPORTS = {
    **dict.fromkeys(["Codec", "DataclassCodec", "JsonCodec"], ".codec"),
    "Client": ".client",
    "connect": ".connection",
    **dict.fromkeys([
        "Conflict", "Forbidden", "InvalidArgument", "InvalidJobId", "InvalidPayload",
        "InvalidQueueName", "JobNotFound", "LeaseLost", "NotFound", "NotReplicated",
        "PayloadTooLarge", "RedisBusy", "RedisUnavailable", "RelayqError", "ScheduleNotFound",
        "ServerBusy", "ServerUnavailable", "TooManyRequests", "Unauthorized",
    ], ".errors"),
    **dict.fromkeys(["FlowJob", "FlowResult", "chain", "flow", "group"], ".flows"),
    **dict.fromkeys(["Attempt", "Job", "parse_job_id"], ".job"),
    "JobOptions": ".options",
    **dict.fromkeys(["Queue", "list_queues"], ".queue"),
    **dict.fromkeys(["ClaimResult", "EnqueueResult", "NackResult", "NewJob", "QueueStats"],
                    ".results"),
    "Schedule": ".schedules",
    **dict.fromkeys(["App", "Fail", "Retry", "Worker", "WorkerEvents", "current_job"], ".worker"),
    "WorkerEntry": ".worker_registry",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'relayq' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later lookups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # what type checkers and IDEs see: the same names, imported eagerly
    from .client import Client as Client
    from .codec import Codec as Codec
    from .codec import DataclassCodec as DataclassCodec
    from .codec import JsonCodec as JsonCodec
    from .connection import connect as connect
    from .errors import Conflict as Conflict
    from .errors import Forbidden as Forbidden
    from .errors import InvalidArgument as InvalidArgument
    from .errors import InvalidJobId as InvalidJobId
    from .errors import InvalidPayload as InvalidPayload
    from .errors import InvalidQueueName as InvalidQueueName
    from .errors import JobNotFound as JobNotFound
    from .errors import LeaseLost as LeaseLost
    from .errors import NotFound as NotFound
    from .errors import NotReplicated as NotReplicated
    from .errors import PayloadTooLarge as PayloadTooLarge
    from .errors import RedisBusy as RedisBusy
    from .errors import RedisUnavailable as RedisUnavailable
    from .errors import RelayqError as RelayqError
    from .errors import ScheduleNotFound as ScheduleNotFound
    from .errors import ServerBusy as ServerBusy
    from .errors import ServerUnavailable as ServerUnavailable
    from .errors import TooManyRequests as TooManyRequests
    from .errors import Unauthorized as Unauthorized
    from .flows import FlowJob as FlowJob
    from .flows import FlowResult as FlowResult
    from .flows import chain as chain
    from .flows import flow as flow
    from .flows import group as group
    from .job import Attempt as Attempt
    from .job import Job as Job
    from .job import parse_job_id as parse_job_id
    from .options import JobOptions as JobOptions
    from .queue import Queue as Queue
    from .queue import list_queues as list_queues
    from .results import ClaimResult as ClaimResult
    from .results import EnqueueResult as EnqueueResult
    from .results import NackResult as NackResult
    from .results import NewJob as NewJob
    from .results import QueueStats as QueueStats
    from .schedules import Schedule as Schedule
    from .worker import App as App
    from .worker import Fail as Fail
    from .worker import Retry as Retry
    from .worker import Worker as Worker
    from .worker import WorkerEvents as WorkerEvents
    from .worker import current_job as current_job
    from .worker_registry import WorkerEntry as WorkerEntry
