"""Workflows: jobs that depend on other jobs (docs/workflows.md).

A job enqueued with `depends_on` is `waiting` until every parent has finished; the scripts of
lua/ (enqueue_deps, link, deps_apply, outbox_done; the logic in lua/lib/deps.lua) keep the
facts, this module makes the calls, without I/O, as generators (`Op`) that `Queue` and
`relayq.aio.Queue` drive:

- `enqueue_dependent`: the jobs of one queue, some with parents. Parents of the same queue are
  settled inside enqueue_deps.lua; each parent of another queue (another Cluster slot) is
  linked afterwards by link.lua in its own queue, and what it answers (the parent had already
  ended) is applied with deps_apply.lua. Until the links are done the child is listed in its
  queue's `linking` index, so that a crash in between is repaired by `relink`.
- `move_facts`: a queue's outbox (facts for children in other queues, written by the script
  that ended the parent) applied in each child's queue, then dropped: at least once, and the
  apply is idempotent, so each fact counts exactly once.
- `relink`: links left unfinished for RELINK_AFTER_MS (the enqueuing client died) are done again.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from . import scripts
from .errors import InvalidArgument
from .job import make_job_id, parse_job_id
from .keys import QueueKeys
from .limits import BATCH_LIMIT, MAX_PARENTS, OUTBOX_BATCH, RELINK_AFTER_MS
from .protocol import ENQUEUE_FIELDS, Call, Op, Reads, Scripts, refuse
from .results import EnqueueResult

ENQUEUE_DEPS, LINK, DEPS_APPLY, OUTBOX_DONE = (
    scripts.script(name) for name in ("enqueue_deps", "link", "deps_apply", "outbox_done")
)
ON_PARENT_FAILURE = ("cancel", "run")
ENQUEUE_DEPS_FIELDS = ENQUEUE_FIELDS + 2  # per job: enqueue.lua's, depends_on, on_parent_failure
LINK_BATCH = BATCH_LIMIT  # links or facts per script call


def _ok(reply: Sequence[Any]) -> Sequence[Any]:
    if reply[0] != "ok":
        refuse(reply)
    return reply


def check_parents(depends_on: Any, what: str = "depends_on") -> list[str]:
    """The parent ids of `depends_on` (a list of job ids, 1..MAX_PARENTS, duplicates dropped),
    or InvalidArgument naming the bad one."""
    if isinstance(depends_on, str) or not isinstance(depends_on, (list, tuple)):
        raise InvalidArgument(f"{what} must be a list of job ids")
    if not depends_on:
        raise InvalidArgument(f"{what} must name at least one parent")
    parents = list(dict.fromkeys(depends_on))
    if len(parents) > MAX_PARENTS:
        raise InvalidArgument(f"{what} names {len(parents)} parents, more than {MAX_PARENTS}")
    for parent in parents:
        try:
            parse_job_id(parent)
        except InvalidArgument:
            raise InvalidArgument(f"{what}: invalid parent id {parent!r}") from None
    return parents


def check_on_parent_failure(value: Any) -> str:
    if value is None:
        return ""
    if value not in ON_PARENT_FAILURE:
        raise InvalidArgument('on_parent_failure must be "cancel" or "run"')
    return str(value)


def has_dependencies(options: Iterable[Any]) -> bool:
    """Whether any of these JobOptions asks for workflow fields."""
    return any(o.depends_on is not None or o.on_parent_failure is not None for o in options)


# -- calls ---------------------------------------------------------------------------------


def _enqueue_call(queue: str, fields: Sequence[str]) -> Call[list[EnqueueResult]]:
    k = QueueKeys(queue)

    def parse(reply: Sequence[Any]) -> list[EnqueueResult]:
        it = iter(_ok(reply)[1:])
        return [
            EnqueueResult(make_job_id(queue, local), state or None, duplicate == 1)
            for local, state, duplicate in zip(it, it, it)
        ]

    return Call(
        ENQUEUE_DEPS,
        (k.meta, k.prios, k.scheduled, k.totals, k.seq, k.wake),
        (k.prefix, queue, str(len(fields) // ENQUEUE_DEPS_FIELDS), *fields),
        parse,
    )


def _link_call(queue: str, pairs: Sequence[tuple[str, str]]) -> Call[list[tuple[str, str]]]:
    """(parent local id, child full id) per link; (outcome, result) per link."""
    k = QueueKeys(queue)

    def parse(reply: Sequence[Any]) -> list[tuple[str, str]]:
        it = iter(_ok(reply)[1:])
        return list(zip(it, it))

    return Call(LINK, (k.meta,), (k.prefix, queue, *(x for pair in pairs for x in pair)), parse)


def apply_call(queue: str, facts: Sequence[tuple[str, str, str, str]]) -> Call[int]:
    """(child local id, parent full id, outcome, result JSON or '') per fact; facts applied."""
    k = QueueKeys(queue)
    return Call(
        DEPS_APPLY,
        (k.meta,),
        (k.prefix, queue, *(x for f in facts for x in f)),
        lambda reply: int(_ok(reply)[1]),
    )


def _outbox_done_call(queue: str, entry_ids: Sequence[str]) -> Call[int]:
    return Call(
        OUTBOX_DONE,
        (QueueKeys(queue).prefix + "outbox",),
        tuple(entry_ids),
        lambda reply: int(_ok(reply)[1]),
    )


def _chunks(items: Sequence[Any], size: int = LINK_BATCH) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


# -- operations ----------------------------------------------------------------------------


def enqueue_dependent(
    queue: str, fields: list[list[str]], options: Sequence[Any], wait: Any
) -> Op[list[EnqueueResult]]:
    """Enqueues jobs of `queue`: `fields` the checked enqueue fields of each
    (protocol.ENQUEUE_FIELDS), `options` its JobOptions (depends_on and on_parent_failure read
    here). A parent is a job id, or '@k': job k (1-based) of these same jobs, an earlier one
    (flows use them)."""
    rows: list[list[str]] = []
    cross: dict[str, set[str]] = {}  # parent queue -> parent local ids to check
    for i, (job_fields, opts) in enumerate(zip(fields, options)):
        try:
            parents = [] if opts.depends_on is None else _parents(opts.depends_on)
            opf = check_on_parent_failure(opts.on_parent_failure)
        except InvalidArgument as e:
            if len(fields) > 1:
                e.message = f"job {i + 1}: {e.message}"
                e.args = (e.message,)
            raise
        for parent in parents:
            if not parent.startswith("@"):
                pq, local = parse_job_id(parent)
                if pq != queue:
                    cross.setdefault(pq, set()).add(local)
        rows.append([*job_fields, ",".join(parents), opf])
    if len(rows) > BATCH_LIMIT and any("@" in row[-2] for row in rows):
        raise InvalidArgument(f"jobs refer to each other only within {BATCH_LIMIT} jobs")
    yield from _check_exist(cross)
    calls = [
        _enqueue_call(queue, [f for row in rows[start : start + BATCH_LIMIT] for f in row])
        for start in range(0, len(rows), BATCH_LIMIT)
    ]
    results = [r for rs in (yield Scripts(calls, wait)) for r in rs]
    links: list[tuple[str, str]] = []  # (child local id, parent full id)
    for result, row in zip(results, rows):
        if result.duplicate or not row[-2]:
            continue
        child = result.id.rpartition(".")[2]
        for parent in row[-2].split(","):
            if not parent.startswith("@") and parse_job_id(parent)[0] != queue:
                links.append((child, parent))
    if links:
        yield from link(queue, links)
        # the states may have moved on (a parent had already ended)
        states = yield Reads(
            [
                ("HGET", QueueKeys(queue).job(child), "s")
                for child in dict.fromkeys(c for c, _ in links)
            ]
        )
        now = dict(zip(dict.fromkeys(c for c, _ in links), states))
        results = [
            r._replace(state=now.get(r.id.rpartition(".")[2], r.state)) if not r.duplicate else r
            for r in results
        ]
    return results


def _parents(depends_on: Any) -> list[str]:
    """Checked parents: job ids, and '@k' tokens (job k of the same call: flows and batches)."""
    if isinstance(depends_on, (list, tuple)):
        refs = [p for p in depends_on if isinstance(p, str) and p.startswith("@")]
        if refs:
            rest = [p for p in depends_on if p not in refs]
            return [*dict.fromkeys(refs), *(check_parents(rest) if rest else [])]
    return check_parents(depends_on)


def _check_exist(parents: dict[str, set[str]]) -> Op[None]:
    """InvalidArgument for a parent of another queue that does not exist (the parents of the
    job's own queue are checked by enqueue_deps.lua)."""
    ordered = [(pq, local) for pq, locals_ in parents.items() for local in sorted(locals_)]
    if not ordered:
        return
    found = yield Reads([("EXISTS", QueueKeys(pq).job(local)) for pq, local in ordered])
    for (pq, local), exists in zip(ordered, found):
        if not exists:
            raise InvalidArgument(f"unknown parent {make_job_id(pq, local)}")


def link(queue: str, links: Sequence[tuple[str, str]]) -> Op[None]:
    """Links waiting children of `queue` to their parents in other queues: (child local id,
    parent full id) each. What a parent answers as already ended is applied here; then the
    children leave the `linking` index. Repeating it is harmless."""
    by_queue: dict[str, list[tuple[str, str, str]]] = {}
    for child, parent in links:
        pq, plocal = parse_job_id(parent)
        by_queue.setdefault(pq, []).append((plocal, child, parent))
    calls, owners = [], []
    for pq, items in by_queue.items():
        for chunk in _chunks(items):
            calls.append(_link_call(pq, [(p, make_job_id(queue, c)) for p, c, _ in chunk]))
            owners.append(chunk)
    facts: list[tuple[str, str, str, str]] = []
    for chunk, answers in zip(owners, (yield Scripts(calls))):
        for (_, child, parent), (outcome, result) in zip(chunk, answers):
            if outcome != "pending":
                facts.append((child, parent, outcome, result))
    if facts:
        yield Scripts([apply_call(queue, chunk) for chunk in _chunks(facts)])
    yield Reads(
        [("ZREM", QueueKeys(queue).prefix + "linking", *dict.fromkeys(child for child, _ in links))]
    )


def move_facts(queue: str, limit: int = OUTBOX_BATCH) -> Op[int]:
    """Applies up to `limit` facts of `queue`'s outbox in their children's queues, then drops
    them; the number moved."""
    outbox = QueueKeys(queue).prefix + "outbox"
    entries = (yield Reads([("XRANGE", outbox, "-", "+", "COUNT", limit)]))[0]
    if not entries:
        return 0
    by_queue: dict[str, list[tuple[str, str, str, str]]] = {}
    for _, fields in entries:
        cq, child = parse_job_id(fields["c"])
        by_queue.setdefault(cq, []).append((child, fields["p"], fields["o"], fields.get("r", "")))
    yield Scripts(
        [apply_call(cq, chunk) for cq, facts in by_queue.items() for chunk in _chunks(facts)]
    )
    yield Scripts([_outbox_done_call(queue, [entry_id for entry_id, _ in entries])])
    return len(entries)


def relink(queue: str, older_than_ms: int = RELINK_AFTER_MS) -> Op[int]:
    """Redoes the links of children of `queue` whose enqueue did not finish linking them
    (`older_than_ms` ago, on the Redis clock); the number of children."""
    k = QueueKeys(queue)
    seconds, micros = (yield Reads([("TIME",)]))[0]
    now = int(seconds) * 1000 + int(micros) // 1000
    children = (
        yield Reads(
            [
                (
                    "ZRANGEBYSCORE",
                    k.prefix + "linking",
                    "-inf",
                    now - older_than_ms,
                    "LIMIT",
                    0,
                    OUTBOX_BATCH,
                )
            ]
        )
    )[0]
    if not children:
        return 0
    pending = yield Reads([("SMEMBERS", k.prefix + "deps:" + child) for child in children])
    # parents of the child's own queue too: a restored child (lua/restore.lua) is linked to
    # every parent here; for a child of enqueue_deps.lua, linking one again is harmless
    links = [(child, parent) for child, parents in zip(children, pending)
             for parent in sorted(parents)]
    if links:
        yield from link(queue, links)
    else:
        yield Reads([("ZREM", k.prefix + "linking", *children)])
    return len(children)


def read_children(queue: str, local_id: str) -> Op[list[str]]:
    """The children of a job (full ids), sorted."""
    members = (yield Reads([("SMEMBERS", QueueKeys(queue).prefix + "children:" + local_id)]))[0]
    return sorted(members)
