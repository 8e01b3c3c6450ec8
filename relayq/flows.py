"""Flows: a whole graph of jobs in one call (docs/workflows.md), `POST /api/flows` and
`relayq.flow(...)`.

A flow is a list of jobs, each with a `ref` (its name within the flow), a `queue`, a `payload`,
the options of an enqueue and `depends_on`: refs of the flow's jobs, or ids of jobs that exist
already. The whole list is checked first (refs unique and resolved, no cycle, at most
MAX_FLOW_JOBS jobs, every option and payload as an enqueue checks it, existing parents exist):
a bad flow is refused naming the offending ref, with nothing written. Then the jobs are made
in dependency order, as few enqueue_deps.lua calls as the graph allows (the jobs of one queue
whose parents are made, or made in the same call, together; a call is atomic). A refusal that
only a script can see (a queue's own payload limit) after some calls were made cancels what
was made, best effort, before the error is raised.

The helpers build the list from Python: `FlowJob(queue, payload, **options)` is one job;
`chain(a, b, c)` runs a, then b, then c; `group([a, b], then=c)` runs a and b side by side,
then c once both succeeded (fan-out, fan-in). Chains and groups nest.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any, NamedTuple

from .codec import dumps
from .errors import InvalidArgument, RelayqError
from .job import parse_job_id
from .keys import QUEUES, QueueKeys, check_queue_name
from .limits import DEFAULT_MAX_PAYLOAD_BYTES, MAX_FLOW_JOBS, MAX_PARENTS
from .options import JobOptions, check_json_text, check_payload_size
from .protocol import Op, QueueCalls, Reads, Scripts
from .rfc3339 import parse_ms
from .workflows import check_on_parent_failure, enqueue_dependent

REF = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
# A flow's job takes every enqueue option (its parents come as refs or ids in depends_on).
OPTION_NAMES = tuple(f.name for f in fields(JobOptions) if f.name != "depends_on")


@dataclass(eq=False)
class FlowJob:
    """One job of a flow: its queue, payload and enqueue options (`type`, `priority`, ...,
    `on_parent_failure`); `ref` names it in the answer (made up when not given);
    `depends_on` adds parents outside the flow (job ids)."""

    queue: str
    payload: Any
    ref: str | None = None
    depends_on: list[str] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    after: list[FlowJob] = field(default_factory=list)  # parents within the flow

    def __init__(
        self,
        queue: str,
        payload: Any,
        *,
        ref: str | None = None,
        depends_on: Sequence[str] = (),
        **options: Any,
    ) -> None:
        self.queue, self.payload, self.ref = queue, payload, ref
        self.depends_on, self.options, self.after = list(depends_on), options, []

    @property
    def heads(self) -> list[FlowJob]:
        return [self]

    @property
    def tails(self) -> list[FlowJob]:
        return [self]

    @property
    def jobs(self) -> list[FlowJob]:
        return [self]


class Piece:
    """Part of a flow: its jobs, the ones it starts with (`heads`) and ends with (`tails`)."""

    def __init__(self, jobs: list[FlowJob], heads: list[FlowJob], tails: list[FlowJob]) -> None:
        self.jobs, self.heads, self.tails = jobs, heads, tails


def _link(before: Any, after: Any) -> None:
    for head in after.heads:
        head.after.extend(before.tails)


def chain(*parts: Any) -> Piece:
    """Each part runs after the one before it has succeeded."""
    if not parts:
        raise InvalidArgument("chain needs at least one job")
    for before, after in zip(parts, parts[1:]):
        _link(before, after)
    return Piece([j for p in parts for j in p.jobs], parts[0].heads, parts[-1].tails)


def group(parts: Sequence[Any], then: Any = None) -> Piece:
    """The parts run side by side; `then` (a job or a part) runs once all of them succeeded."""
    if not parts:
        raise InvalidArgument("group needs at least one job")
    jobs = [j for p in parts for j in p.jobs]
    heads = [h for p in parts for h in p.heads]
    tails = [t for p in parts for t in p.tails]
    if then is None:
        return Piece(jobs, heads, tails)
    for head in then.heads:
        head.after.extend(tails)
    return Piece(jobs + then.jobs, heads, then.tails)


def flow_spec(*parts: Any) -> list[dict[str, Any]]:
    """The JSON list of `POST /api/flows` for these parts (refs made up where not given)."""
    jobs: list[FlowJob] = []
    for part in parts:
        for job in part.jobs:
            if job not in jobs:
                jobs.append(job)
    taken = {job.ref for job in jobs if job.ref is not None}
    n = 0
    for job in jobs:
        while job.ref is None:
            n += 1
            if str(n) not in taken:
                job.ref = str(n)
    return [
        {
            "ref": job.ref,
            "queue": job.queue,
            "payload": job.payload,
            "depends_on": [*dict.fromkeys(p.ref for p in job.after), *job.depends_on],
            **job.options,
        }
        for job in jobs
    ]


@dataclass
class _Checked:
    ref: str
    queue: str
    fields: list[str]
    options: JobOptions
    refs: list[int]  # parents within the flow (indexes)
    ids: list[str]  # parents outside it (job ids)


def check_flow(items: Any, max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES) -> list[_Checked]:
    """The checked jobs of a flow (see the module's docstring), or InvalidArgument naming the
    offending ref."""
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_FLOW_JOBS:
        raise InvalidArgument(f"jobs must be a list of 1 to {MAX_FLOW_JOBS} jobs")
    index: dict[str, int] = {}
    for i, item in enumerate(items):
        ref = item.get("ref") if isinstance(item, dict) else None
        if not isinstance(ref, str) or not REF.fullmatch(ref):
            raise InvalidArgument(f"job {i + 1}: ref must match {REF.pattern}")
        if ref in index:
            raise InvalidArgument(f"job {ref}: ref used twice")
        index[ref] = i
    checked = []
    for item in items:
        ref = item["ref"]
        try:
            checked.append(_check_one(item, index, max_payload_bytes))
        except InvalidArgument as e:
            e.message = f"job {ref}: {e.message}"
            e.args = (e.message,)
            raise
    _no_cycle(checked)
    return checked


def _check_one(item: dict[str, Any], index: dict[str, int], max_payload_bytes: int) -> _Checked:
    unknown = set(item) - {"ref", "queue", "payload", "depends_on", *OPTION_NAMES}
    if unknown:
        raise InvalidArgument(f"unknown field {sorted(unknown)[0]}")
    if "payload" not in item:
        raise InvalidArgument("payload is required")
    queue = check_queue_name(item.get("queue"))
    options = {name: item[name] for name in OPTION_NAMES if name in item}
    for name, value in options.items():
        if value is None:
            raise InvalidArgument(f"{name} must not be null (leave it out instead)")
    if isinstance(options.get("run_at"), str):  # JSON: RFC 3339
        options["run_at"] = parse_ms(options["run_at"], "run_at")
    check_on_parent_failure(options.get("on_parent_failure"))
    depends_on = item.get("depends_on", [])
    if not isinstance(depends_on, list):
        raise InvalidArgument("depends_on must be a list of refs or job ids")
    if len(depends_on) > MAX_PARENTS:
        raise InvalidArgument(f"more than {MAX_PARENTS} parents")
    refs, ids = [], []
    for parent in dict.fromkeys(p if isinstance(p, str) else repr(p) for p in depends_on):
        if parent == item["ref"]:
            raise InvalidArgument("depends on itself")
        if parent in index:
            refs.append(index[parent])
        else:
            try:
                parse_job_id(parent)
            except InvalidArgument:
                raise InvalidArgument(f"unknown ref {parent}") from None
            ids.append(parent)
    job_options = JobOptions(**options)
    text = check_json_text(check_payload_size(dumps(item["payload"]), max_payload_bytes))
    return _Checked(
        item["ref"], queue, [text, *job_options.script_args(), ""], job_options, refs, ids
    )


def _no_cycle(jobs: list[_Checked]) -> None:
    state = [0] * len(jobs)  # 0 unseen, 1 on the path, 2 done
    for start in range(len(jobs)):
        if state[start]:
            continue
        stack = [(start, iter(jobs[start].refs))]
        state[start] = 1
        while stack:
            node, parents = stack[-1]
            for parent in parents:
                if state[parent] == 1:
                    raise InvalidArgument(
                        f"job {jobs[parent].ref}: depends on itself through a cycle"
                    )
                if state[parent] == 0:
                    state[parent] = 1
                    stack.append((parent, iter(jobs[parent].refs)))
                    break
            else:
                state[node] = 2
                stack.pop()


def create(
    items: Any, max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES
) -> Op[list[dict[str, Any]]]:
    """Checks and makes a flow (see the module's docstring): {"ref", "id", "state"} per job,
    in the order given."""
    jobs = check_flow(items, max_payload_bytes)
    outside = [(job.ref, parent) for job in jobs for parent in job.ids]
    if outside:  # parents outside the flow exist: checked before anything is written
        found = yield Reads(
            [
                ("EXISTS", QueueKeys(parse_job_id(parent)[0]).job(parse_job_id(parent)[1]))
                for _, parent in outside
            ]
        )
        for (ref, parent), exists in zip(outside, found):
            if not exists:
                raise InvalidArgument(f"job {ref}: unknown parent {parent}")
    made: dict[int, tuple[str, str | None]] = {}  # index -> (id, state)
    try:
        while len(made) < len(jobs):
            batch = _next_batch(jobs, made)
            queue = jobs[batch[0]].queue
            position = {j: k + 1 for k, j in enumerate(batch)}
            options = []
            for j in batch:
                parents = [
                    f"@{position[p]}" if p in position else made[p][0] for p in jobs[j].refs
                ] + jobs[j].ids
                options.append(
                    JobOptions(
                        **{
                            **{name: getattr(jobs[j].options, name) for name in OPTION_NAMES},
                            "depends_on": parents or None,
                        }
                    )
                )
            results = yield from enqueue_dependent(
                queue, [jobs[j].fields for j in batch], options, None
            )
            for j, result in zip(batch, results):
                made[j] = (result.id, result.state)
    except RelayqError:
        yield from _undo([job_id for job_id, _ in made.values()])
        raise
    yield Reads([("SADD", QUEUES, *dict.fromkeys(job.queue for job in jobs))])
    return [{"ref": job.ref, "id": made[i][0], "state": made[i][1]} for i, job in enumerate(jobs)]


def _next_batch(jobs: list[_Checked], made: dict[int, Any]) -> list[int]:
    """The next call's jobs: of the queue of the first job whose parents are all made, every
    job of that queue whose parents are made or in the call, in order (a topological order,
    the flow having no cycle)."""
    first = next(
        i for i, job in enumerate(jobs) if i not in made and all(p in made for p in job.refs)
    )
    queue, batch, taken = jobs[first].queue, [], set()
    progress = True
    while progress:
        progress = False
        for i, job in enumerate(jobs):
            if (
                i not in made
                and i not in taken
                and job.queue == queue
                and all(p in made or p in taken for p in job.refs)
            ):
                batch.append(i)
                taken.add(i)
                progress = True
    return batch


def _undo(job_ids: list[str]) -> Op[None]:
    """Cancels jobs a failed flow made (best effort: a cancel of a finished job is refused)."""
    calls = []
    for job_id in job_ids:
        queue, local = parse_job_id(job_id)
        calls.append(QueueCalls(queue).cancel(local))
    if calls:
        yield Scripts(calls)


class FlowResult(NamedTuple):
    """One job of a flow as made: its ref, id and state then."""

    ref: str
    id: str
    state: str | None


def flow(*parts: Any, redis: Any = None) -> list[FlowResult]:
    """Makes the flow of these parts (FlowJob, chain(...), group(...)) in one call, all or
    nothing on validation; `redis` a URL or client (default $RELAYQ_REDIS_URL)."""
    from .queue import Queue  # noqa: PLC0415 - relayq.queue imports this module's neighbours

    spec = flow_spec(*parts)
    driver: Queue[Any] = Queue(spec[0]["queue"], redis)
    return [FlowResult(**job) for job in driver._drive(create(spec))]
