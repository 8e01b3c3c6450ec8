"""Stateful property test: random sequences of operations run against the Lua scripts (through
`Queue`) and against a plain-Python model of the SPEC; everything observable must agree after
every step: what each call answers, which jobs a claim hands out and in what order, every
job's state, attempts and attempt history (and that the history expires with the job), the
queue's counts and lifetime totals, the listing of every state (the ready one in claim
order), and the queue's event log: one entry per transition call and new state, in order.

Cancels race with the settle scripts here: a running job's cancel is requested, then whichever
of ack, nack and release ends its attempt must end it cancelled (ack keeps the result), never
retried.

Workflows: jobs depend on random earlier jobs (a random DAG, parents in any state, some children
running anyway when a parent fails); every end of a parent (ack, nack to dead, cancel, a
requested cancel ending the attempt) settles its waiting children in the same call, as the
model's work list does, down the graph.

Fair queues (lua/lib/groups.lua) are in the model too: jobs of groups "a" and "b" (or none),
served in round robin (the jobs without a group as one member), each group within its
concurrency limit (the queue's default group_max_running, or its own), and the queue within
max_running; the slot is given back by ack, nack and release (the reaper's by its own test).

Time is kept out of the model: delays are 0 or ten minutes and leases last ten minutes, so
nothing falls due or expires during a run (those paths have their own tests with real
short leases). Runs on fakeredis (many examples) and on the real redis-server (fewer).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import fakeredis
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

import relayq
import relayq.limits
import relayq.results
from relayq import Conflict, JobNotFound, JobOptions, LeaseLost, NewJob, Queue, ScheduleNotFound
from relayq.limits import HISTORY_LIMIT

LONG_MS = 600_000
PRIORITIES = st.sampled_from([0, 0, 1, 7, 255])
IDEM_KEYS = st.sampled_from([None, None, None, "a", "b"])
GROUPS = st.sampled_from([None, None, "a", "b"])
SCHEDULE_IDS = st.sampled_from(["daily", "hourly"])


@dataclass
class ModelJob:
    id: str
    priority: int
    max_attempts: int
    state: str
    attempts: int = 0
    lease: str | None = None
    old_leases: list[str] = field(default_factory=list)
    # (outcome, error) of failed or lost attempts, newest first
    history: list[tuple[str, str]] = field(default_factory=list)
    cancel_requested: bool = False
    progress: float | None = None
    # workflows: parents (in the order given), the ones still to end, run when one fails,
    # children (waiting when linked), results of the succeeded parents
    parents: list[str] | None = None
    pending: set[str] = field(default_factory=set)
    run_anyway: bool = False
    delayed: bool = False
    children: set[str] = field(default_factory=set)
    parent_results: dict[str, Any] = field(default_factory=dict)
    group: str | None = None


class Model:
    """The SPEC's queue semantics, in plain Python."""

    def __init__(self) -> None:
        self.jobs: dict[str, ModelJob] = {}
        self.ready: dict[int, list[str]] = {}  # FIFO per priority
        self.idem: dict[str, str] = {}
        self.paused = False
        self.totals = dict.fromkeys(relayq.results.TOTALS, 0)
        # periodic schedules by id: definition (payload n, priority, misfire), paused, revision
        self.schedules: dict[str, dict[str, Any]] = {}
        self.log: list[tuple[str, list[str]]] = []  # (state, sorted ids) per entry, in order
        # fair queues: each group's ready lists, the round robin ("" for the jobs without a
        # group, once a group was seen), where each group is ("r" ring, "p" parked at its limit)
        self.gready: dict[str, dict[int, list[str]]] = {}
        self.ring: list[str] = []
        self.at: dict[str, str] = {}
        self.grunning: dict[str, int] = {}
        self.group_max: dict[str, int] = {}
        self.default_group_max = 0
        self.max_running = 0

    def emit(self, state: str, ids: list[str]) -> None:
        if ids:
            self.log.append((state, sorted(ids)))

    def cancel_attempt(self, job: ModelJob) -> None:
        """A running job whose cancel was requested ends its attempt: it ends cancelled."""
        job.state = "cancelled"
        self.totals["cancelled"] += 1
        self.emit("cancelled", [job.id])

    def push_ready(self, job: ModelJob, front: bool = False) -> None:
        job.state = "ready"
        lists = self.gready.setdefault(job.group, {}) if job.group else self.ready
        queue = lists.setdefault(job.priority, [])
        queue.insert(0, job.id) if front else queue.append(job.id)
        if job.group and job.group not in self.at:  # it had no ready job
            if not self.ring:
                self.ring.append("")
            self.at[job.group] = "p" if self.at_limit(job.group) else "r"
            if self.at[job.group] == "r":
                self.ring.append(job.group)

    def pop_ready(self, count: int, lists: dict[int, list[str]] | None = None) -> list[str]:
        lists = self.ready if lists is None else lists
        taken = []
        for priority in sorted(lists, reverse=True):
            while lists[priority] and len(taken) < count:
                taken.append(lists[priority].pop(0))
        return taken

    def apply(self, child: ModelJob, parent: str, outcome: str, done: dict[str, list[str]]
              ) -> bool:
        """The fact 'parent ended with outcome' for a child; True when it cancelled it."""
        if child.state != "waiting" or parent not in child.pending:
            return False
        child.pending.discard(parent)
        if outcome == "succeeded":
            child.parent_results[parent] = {"r": 1}
        elif not child.run_anyway:
            child.pending.clear()
            child.state = "cancelled"
            self.totals["cancelled"] += 1
            done["cancelled"].append(child.id)
            return True
        if not child.pending:
            if child.delayed:
                child.state = "scheduled"
                done["scheduled"].append(child.id)
            else:
                self.push_ready(child)
                done["ready"].append(child.id)
        return False

    def settle(self, job: ModelJob, outcome: str) -> None:
        """A job ended: its waiting children hear it, in creation order, down the graph."""
        done: dict[str, list[str]] = {"ready": [], "scheduled": [], "cancelled": []}
        work = [(job, outcome)]
        while work:
            parent, how = work.pop(0)
            for child_id in sorted(parent.children, key=_creation):
                child = self.jobs.get(child_id)
                if child and self.apply(child, parent.id, how, done) and child.children:
                    work.append((child, "cancelled"))
        for state in ("ready", "scheduled", "cancelled"):
            self.emit(state, done[state])

    # -- fair queues --

    def limit_of(self, group: str) -> int:
        return self.group_max.get(group, self.default_group_max)

    def at_limit(self, group: str) -> bool:
        limit = self.limit_of(group)
        return limit > 0 and self.grunning.get(group, 0) >= limit

    def group_ready(self, group: str) -> list[str]:
        lists = self.gready.get(group, {})
        return [i for p in sorted(lists, reverse=True) for i in lists[p]]

    def unpark(self, group: str) -> None:
        self.at[group] = "r"
        self.ring.append(group)

    def claim(self, count: int) -> list[str]:
        """What claim.lua hands out (nothing is due, nothing throttled in the model)."""
        if not self.ready_count():
            return []
        if self.max_running > 0:
            count = min(count, self.max_running - self.count("running"))
        if count <= 0 or not self.ring:
            return self.pop_ready(max(count, 0))
        taken: list[str] = []
        moved = True
        while len(taken) < count:
            group = self.ring.pop(0)
            self.ring.append(group)
            if group == "":
                got = self.pop_ready(1)
                if got:
                    taken += got
                    moved = True
                elif not moved or len(self.ring) == 1:
                    break
                else:
                    moved = False
                continue
            moved = True
            if not self.group_ready(group):  # emptied by a cancel
                self.ring.pop()
                del self.at[group]
                continue
            if self.at_limit(group):
                self.ring.pop()
                self.at[group] = "p"
                continue
            taken += self.pop_ready(1, self.gready[group])
            self.grunning[group] = self.grunning.get(group, 0) + 1
            if not self.group_ready(group):
                self.ring.pop()
                del self.at[group]
            elif self.at_limit(group):
                self.ring.pop()
                self.at[group] = "p"
        return taken

    def slot_freed(self, job: ModelJob) -> None:
        if job.group:
            self.grunning[job.group] -= 1
            if self.at.get(job.group) == "p" and not self.at_limit(job.group):
                self.unpark(job.group)

    def remove_ready(self, job: ModelJob) -> None:
        if not job.group:
            self.ready[job.priority].remove(job.id)
            return
        self.gready[job.group][job.priority].remove(job.id)
        if not self.group_ready(job.group) and self.at.get(job.group) == "p":
            del self.at[job.group]

    def ready_count(self) -> int:
        return self.count("ready")

    def ready_listing(self) -> list[str]:
        plain = [i for p in sorted(self.ready, reverse=True) for i in self.ready[p]]
        return plain + [i for g in sorted(self.gready) for i in self.group_ready(g)]

    def count(self, state: str) -> int:
        return sum(1 for j in self.jobs.values() if j.state == state)


def _creation(job_id: str) -> str:
    return job_id  # ids of one queue sort by creation (one length within a run)


class QueueMachine(RuleBasedStateMachine):
    client_factory: Any = None

    @initialize(group_max=st.sampled_from([0, 1, 1, 2]), max_running=st.sampled_from([0, 0, 3]))
    def setup(self, group_max: int, max_running: int) -> None:
        self.client = self.client_factory()
        self.queue: Queue[Any] = Queue(f"m-{uuid.uuid4().hex[:8]}", self.client)
        self.model = Model()
        if group_max or max_running:  # most runs start with limits: they are held all along
            self.queue.configure(group_max_running=group_max, max_running=max_running)
            self.model.default_group_max, self.model.max_running = group_max, max_running

    def teardown(self) -> None:
        if hasattr(self, "queue"):
            for key in self.client.scan_iter(match=f"relayq:{{{self.queue.name}}}:*"):
                self.client.delete(key)

    # -- producing ------------------------------------------------------------------------

    def _expect_enqueue(self, results: list[relayq.EnqueueResult],
                        batch: list[tuple[int, bool, str | None, int, str | None]]) -> None:
        created = [self._expect_one(result, *options)
                   for result, options in zip(results, batch, strict=True)]
        for state in ("ready", "scheduled"):
            self.model.emit(state, [job.id for job in created if job and job.state == state])

    def _expect_one(self, result: relayq.EnqueueResult, priority: int, delayed: bool,
                    idem: str | None, max_attempts: int, group: str | None) -> ModelJob | None:
        m = self.model
        if idem is not None and idem in m.idem:
            original = m.jobs.get(m.idem[idem])
            assert result.duplicate and result.id == m.idem[idem]
            assert result.state == (original.state if original else None)
            return None
        assert not result.duplicate and result.id not in m.jobs
        job = ModelJob(result.id, priority, max_attempts, "scheduled", group=group)
        m.jobs[job.id] = job
        if not delayed:
            m.push_ready(job)
        assert result.state == job.state
        if idem is not None:
            m.idem[idem] = job.id
        m.totals["enqueued"] += 1
        return job

    @rule(n=st.integers(0, 1000), priority=PRIORITIES, delayed=st.booleans(), idem=IDEM_KEYS,
          max_attempts=st.integers(1, 3), group=GROUPS)
    def enqueue(self, n: int, priority: int, delayed: bool, idem: str | None,
                max_attempts: int, group: str | None) -> None:
        result = self.queue.enqueue({"n": n}, priority=priority,
                                    delay_ms=LONG_MS if delayed else None,
                                    idempotency_key=idem, max_attempts=max_attempts, group=group)
        self._expect_enqueue([result], [(priority, delayed, idem, max_attempts, group)])

    @rule(batch=st.lists(st.tuples(PRIORITIES, st.booleans(), IDEM_KEYS, st.integers(1, 3),
                                   GROUPS), min_size=1, max_size=5))
    def enqueue_many(self, batch: list[tuple[int, bool, str | None, int, str | None]]) -> None:
        jobs = [NewJob({"b": i}, JobOptions(priority=p, delay_ms=LONG_MS if d else None,
                                            idempotency_key=k, max_attempts=a, group=g))
                for i, (p, d, k, a, g) in enumerate(batch)]
        self._expect_enqueue(self.queue.enqueue_many(jobs), batch)

    @precondition(lambda self: self.model.jobs)
    @rule(data=st.data(), run_anyway=st.booleans(), delayed=st.booleans(), idem=IDEM_KEYS)
    def enqueue_child(self, data: st.DataObject, run_anyway: bool, delayed: bool,
                      idem: str | None) -> None:
        """A job that depends on 1-3 existing jobs, whatever their states (a random DAG: a
        job's parents are always older than it)."""
        m = self.model
        parents = data.draw(st.lists(st.sampled_from(sorted(m.jobs)), min_size=1, max_size=3,
                                     unique=True), label="parents")
        result = self.queue.enqueue({"child": True}, depends_on=parents, idempotency_key=idem,
                                    on_parent_failure="run" if run_anyway else None,
                                    delay_ms=LONG_MS if delayed else None)
        if idem is not None and idem in m.idem:  # the original, whatever its parents
            original = m.jobs.get(m.idem[idem])
            assert result.duplicate and result.id == m.idem[idem]
            assert result.state == (original.state if original else None)
            return
        job = ModelJob(result.id, 0, relayq.limits.DEFAULT_MAX_ATTEMPTS, "waiting",
                       parents=parents, pending=set(parents), run_anyway=run_anyway,
                       delayed=delayed)
        m.jobs[job.id] = job
        m.totals["enqueued"] += 1
        if idem is not None:
            m.idem[idem] = job.id
        m.emit("waiting", [job.id])
        done: dict[str, list[str]] = {"ready": [], "scheduled": [], "cancelled": []}
        for parent in parents:  # the parents that already ended, in the order given
            p = m.jobs[parent]
            if p.state not in ("succeeded", "dead", "cancelled"):
                p.children.add(job.id)
        for parent in parents:
            p = m.jobs[parent]
            if p.state in ("succeeded", "dead", "cancelled") and m.apply(job, parent, p.state,
                                                                         done):
                break
        for state in ("ready", "scheduled", "cancelled"):
            m.emit(state, done[state])
        assert result.state == job.state

    # -- consuming ------------------------------------------------------------------------

    @rule(count=st.integers(1, 4))
    def claim(self, count: int) -> None:
        claimed = self.queue.claim(count, visibility_ms=LONG_MS)
        m = self.model
        if m.paused:
            assert list(claimed) == [] and claimed.status == "paused"
            return
        expected = m.claim(count)
        assert [j.id for j in claimed] == expected
        assert claimed.status == ("ok" if expected else "empty")
        assert [j.group for j in claimed] == [m.jobs[i].group for i in expected]
        for job in claimed:
            mj = m.jobs[job.id]
            if mj.lease:
                mj.old_leases.append(mj.lease)
            mj.state, mj.attempts, mj.lease = "running", mj.attempts + 1, job.lease
            assert job.attempts == mj.attempts and job.state == "running"
            assert job.lease and job.lease not in mj.old_leases
        m.totals["claimed"] += len(expected)
        m.emit("running", expected)

    def _held(self) -> list[str]:
        return sorted(j.id for j in self.model.jobs.values() if j.state == "running")

    def _any_lease(self, data: st.DataObject, job: ModelJob) -> tuple[str, bool]:
        """The job's lease, or a stale one (an earlier lease of it, or garbage)."""
        stale = job.old_leases + ["not-a-lease"]
        if job.lease and data.draw(st.booleans(), label="current lease"):
            return job.lease, True
        return data.draw(st.sampled_from(stale), label="stale lease"), False

    @precondition(lambda self: self._held())
    @rule(data=st.data())
    def ack(self, data: st.DataObject) -> None:
        job = self.model.jobs[data.draw(st.sampled_from(self._held()))]
        lease, valid = self._any_lease(data, job)
        if not valid:
            with pytest.raises(LeaseLost):
                self.queue.ack(job.id, lease, {"r": 1})
            return
        state = self.queue.ack(job.id, lease, {"r": 1})
        self.model.slot_freed(job)
        if job.cancel_requested:  # the cancel wins over a handler that finished anyway
            assert state == "cancelled"
            self.model.cancel_attempt(job)
            self.model.settle(job, "cancelled")
            return
        assert state == "succeeded"
        job.state = "succeeded"
        self.model.totals["succeeded"] += 1
        self.model.emit("succeeded", [job.id])
        self.model.settle(job, "succeeded")

    @precondition(lambda self: self._held())
    @rule(data=st.data(), retry=st.booleans(), later=st.booleans())
    def nack(self, data: st.DataObject, retry: bool, later: bool) -> None:
        job = self.model.jobs[data.draw(st.sampled_from(self._held()))]
        lease, valid = self._any_lease(data, job)
        delay = LONG_MS if later else 0
        if not valid:
            with pytest.raises(LeaseLost):
                self.queue.nack(job.id, lease, "boom", retry=retry, delay_ms=delay)
            return
        result = self.queue.nack(job.id, lease, "boom", retry=retry, delay_ms=delay)
        self.model.slot_freed(job)
        totals = self.model.totals
        if job.cancel_requested:  # never retried, whatever the failure
            job.history.insert(0, ("cancelled", "boom"))
            self.model.cancel_attempt(job)
            self.model.settle(job, "cancelled")
            assert (result.state, result.attempts) == ("cancelled", job.attempts)
            return
        totals["failed"] += 1
        job.history.insert(0, ("dead" if not retry or job.attempts >= job.max_attempts
                               else "retried", "boom"))
        if not retry or job.attempts >= job.max_attempts:
            job.state = "dead"
            totals["dead"] += 1
        elif later:
            job.state = "scheduled"
            totals["retried"] += 1
        else:
            self.model.push_ready(job)
            totals["retried"] += 1
        if job.state != "dead":
            job.progress = None  # the next attempt reports its own
        self.model.emit(job.state, [job.id])
        if job.state == "dead":
            self.model.settle(job, "dead")
        assert (result.state, result.attempts) == (job.state, job.attempts)

    @precondition(lambda self: self._held())
    @rule(data=st.data())
    def heartbeat(self, data: st.DataObject) -> None:
        job = self.model.jobs[data.draw(st.sampled_from(self._held()))]
        lease, valid = self._any_lease(data, job)
        if valid:
            assert self.queue.heartbeat(job.id, lease, LONG_MS) > 0
        else:
            with pytest.raises(LeaseLost):
                self.queue.heartbeat(job.id, lease, LONG_MS)

    @precondition(lambda self: self._held())
    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        job = self.model.jobs[data.draw(st.sampled_from(self._held()))]
        lease, valid = self._any_lease(data, job)
        expected = "cancelled" if valid and job.cancel_requested else "ok" if valid else \
            "lease_lost"
        assert self.queue.release_many([(job.id, lease)]) == [expected]
        if valid:
            self.model.slot_freed(job)
        if expected == "cancelled":
            self.model.cancel_attempt(job)
            self.model.settle(job, "cancelled")
        elif valid:
            job.attempts -= 1
            job.progress = None
            self.model.emit("ready", [job.id])
            job.old_leases.append(lease)
            job.lease = None
            self.model.push_ready(job, front=True)

    @precondition(lambda self: self._held())
    @rule(data=st.data())
    def lease_expires(self, data: st.DataObject) -> None:
        """A worker is lost: its job's lease deadline is moved into the past, and the reaper
        recovers it (back to the head of its ready list, or dead when its attempts are spent,
        or cancelled when its cancel was requested), settling the children of a job it ends."""
        job = self.model.jobs[data.draw(st.sampled_from(self._held()))]
        self.client.zadd(self.queue.keys.running, {self.queue.local_id(job.id): 1})
        m = self.model
        m.totals["reaped"] += 1
        if job.lease:
            job.old_leases.append(job.lease)
        job.lease = None
        if job.cancel_requested:
            expected, outcome = (0, 0), "cancelled"
            error = "lease expired after a cancel request: worker lost"
        elif job.attempts >= job.max_attempts:
            expected, outcome = (0, 1), "dead"
            error = "lease expired: worker lost (attempts spent)"
        else:
            expected, outcome, error = (1, 0), "reaped", "lease expired: worker lost"
        assert self.queue.reap() == expected
        m.slot_freed(job)  # the reaper gives the group's slot back (fair queues)
        job.history.insert(0, (outcome, error))
        if outcome == "reaped":
            job.progress = None
            m.push_ready(job, front=True)
            m.emit("ready", [job.id])
        else:
            job.state = outcome
            m.totals[outcome] += 1
            m.emit(outcome, [job.id])
            m.settle(job, outcome)

    @precondition(lambda self: self._held())
    @rule(data=st.data(), fraction=st.sampled_from([0.0, 0.5, 1.0]))
    def progress(self, data: st.DataObject, fraction: float) -> None:
        job = self.model.jobs[data.draw(st.sampled_from(self._held()))]
        lease, valid = self._any_lease(data, job)
        if not valid:
            with pytest.raises(LeaseLost):
                self.queue.progress(job.id, lease, fraction)
            return
        assert self.queue.progress(job.id, lease, fraction) == job.cancel_requested
        job.progress = fraction
        self.model.emit("progress", [job.id])

    # -- operating ------------------------------------------------------------------------

    @precondition(lambda self: self.model.jobs)
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        job = self.model.jobs[data.draw(st.sampled_from(sorted(self.model.jobs)))]
        if job.state in ("ready", "scheduled", "waiting"):
            assert self.queue.cancel(job.id) == "cancelled"
            if job.state == "ready":
                self.model.remove_ready(job)
            job.state = "cancelled"
            job.pending.clear()
            self.model.totals["cancelled"] += 1
            self.model.emit("cancelled", [job.id])
            self.model.settle(job, "cancelled")
        elif job.state == "running":  # requested: the attempt's end decides (ack, nack, ...)
            assert self.queue.cancel(job.id) == "running"
            if not job.cancel_requested:
                self.model.emit("cancel_requested", [job.id])
            job.cancel_requested = True
        else:
            with pytest.raises(Conflict):
                self.queue.cancel(job.id)

    def _dead(self) -> list[str]:
        return sorted(j.id for j in self.model.jobs.values() if j.state == "dead")

    @precondition(lambda self: self.model.jobs)
    @rule(data=st.data())
    def requeue_dead(self, data: st.DataObject) -> None:
        job = self.model.jobs[data.draw(st.sampled_from(sorted(self.model.jobs)))]
        if job.state != "dead":
            with pytest.raises(JobNotFound):
                self.queue.requeue_dead_job(job.id)
            return
        self.queue.requeue_dead_job(job.id)
        job.attempts = 0
        self.model.push_ready(job)
        self.model.emit("ready", [job.id])

    @rule()
    def requeue_all_dead(self) -> None:
        # Requeued oldest death first (ties in id order): read the order before the call.
        dead = sorted(self._dead(), key=lambda i: (self._died_at(i), self.queue.local_id(i)))
        assert self.queue.requeue_all_dead() == len(dead)
        for job_id in dead:
            job = self.model.jobs[job_id]
            job.attempts = 0
            self.model.push_ready(job)
        self.model.emit("ready", dead)

    def _died_at(self, job_id: str) -> int:
        local = self.queue.local_id(job_id)
        return int(self.client.zscore(self.queue.keys.dead, local))

    @precondition(lambda self: self._dead())
    @rule(data=st.data())
    def purge_dead(self, data: st.DataObject) -> None:
        job_id = data.draw(st.sampled_from(self._dead()))
        self.queue.purge_dead_job(job_id)
        del self.model.jobs[job_id]
        self.model.emit("deleted", [job_id])
        self.model.idem = {k: v for k, v in self.model.idem.items() if v != job_id}
        with pytest.raises(JobNotFound):
            self.queue.get(job_id)
        assert not self.client.exists(self.queue.keys.history(self.queue.local_id(job_id)))

    @rule(max_running=st.sampled_from([None, 0, 1, 2, 4]),
          group_max=st.sampled_from([None, 0, 1, 2]))
    def configure_limits(self, max_running: int | None, group_max: int | None) -> None:
        settings = {name: value for name, value in (("max_running", max_running),
                                                    ("group_max_running", group_max))
                    if value is not None}
        if not settings:
            return
        self.queue.configure(**settings)
        m = self.model
        if max_running is not None:
            m.max_running = max_running
        if group_max is not None:  # every parked group back into the ring, by name
            m.default_group_max = group_max
            for group in sorted(g for g, where in m.at.items() if where == "p"):
                m.unpark(group)

    @rule(group=st.sampled_from(["a", "b"]), max_running=st.sampled_from([None, 0, 1, 2]))
    def group_limits(self, group: str, max_running: int | None) -> None:
        m = self.model
        if max_running is None:
            self.queue.clear_group_limits(group)
            m.group_max.pop(group, None)
        else:
            self.queue.set_group_limits(group, max_running=max_running)
            m.group_max[group] = max_running
        if m.at.get(group) == "p":
            m.unpark(group)

    @rule(paused=st.booleans())
    def pause_or_resume(self, paused: bool) -> None:
        self.queue.pause() if paused else self.queue.resume()
        self.model.paused = paused

    @rule()
    def maintenance_finds_nothing_due(self) -> None:
        assert self.queue.reap() == (0, 0)
        assert self.queue.promote()[0] == 0
        assert self.queue.fire_schedules().fired == 0  # every period is ten minutes long

    # -- periodic schedules ---------------------------------------------------------------

    @rule(sid=SCHEDULE_IDS, n=st.integers(0, 2), priority=PRIORITIES,
          misfire=st.sampled_from(["once", "skip", "all"]),
          paused=st.sampled_from([None, None, True, False]))
    def schedule(self, sid: str, n: int, priority: int, misfire: str,
                 paused: bool | None) -> None:
        saved = self.queue.schedule(sid, {"s": n}, every_ms=LONG_MS, misfire=misfire,
                                    priority=priority, paused=paused)
        old = self.model.schedules.get(sid)
        definition = (n, priority, misfire)
        if old is None:
            expected = "created"
            self.model.schedules[sid] = {"def": definition, "paused": bool(paused), "rev": 1}
        elif old["def"] != definition or (paused is not None and paused != old["paused"]):
            expected = "updated"
            old.update({"def": definition, "rev": old["rev"] + 1})
            if paused is not None:
                old["paused"] = paused
        else:
            expected = "unchanged"
        assert saved.outcome == expected
        assert saved.revision == self.model.schedules[sid]["rev"]

    @rule(sid=SCHEDULE_IDS, pause=st.booleans())
    def pause_or_resume_schedule(self, sid: str, pause: bool) -> None:
        op = self.queue.pause_schedule if pause else self.queue.resume_schedule
        known = self.model.schedules.get(sid)
        if known is None:
            with pytest.raises(ScheduleNotFound):
                op(sid)
            return
        shown = op(sid)
        if known["paused"] != pause:
            known.update({"paused": pause, "rev": known["rev"] + 1})
        assert (shown.paused, shown.revision) == (known["paused"], known["rev"])
        assert (shown.next_run_at is None) == pause

    @rule(sid=SCHEDULE_IDS)
    def trigger_schedule(self, sid: str) -> None:
        known = self.model.schedules.get(sid)
        if known is None:
            with pytest.raises(ScheduleNotFound):
                self.queue.trigger_schedule(sid)
            return
        self._schedule_job(self.queue.trigger_schedule(sid), known)

    def _schedule_job(self, job_id: str, known: dict[str, Any]) -> None:
        assert job_id not in self.model.jobs
        job = ModelJob(job_id, known["def"][1], relayq.limits.DEFAULT_MAX_ATTEMPTS, "ready")
        self.model.jobs[job_id] = job
        self.model.push_ready(job)
        self.model.totals["enqueued"] += 1
        self.model.emit("ready", [job_id])  # made by the same code as an enqueue's jobs

    @rule(sid=SCHEDULE_IDS)
    def a_tick_is_missed(self, sid: str) -> None:
        """Nothing ran for one period: the next firing finds that tick missed, and makes of
        it what the misfire policy says (one job, or none with skip)."""
        known = self.model.schedules.get(sid)
        if known is None or known["paused"]:
            return
        skip = known["def"][2] == "skip"
        key = self.queue.keys.schedule(sid)
        seconds, micros = self.client.time()
        tick = int(seconds) * 1000 + int(micros) // 1000 - LONG_MS
        following = int(self.client.hget(key, "next"))
        self.client.hset(key, "next", tick)
        self.client.zadd(self.queue.keys.due_schedules, {sid: tick})
        report = self.queue.fire_schedules()
        # Another firer (the session's relayq-server fires every queue it knows) may take the
        # tick first: then this firing found it gone. Either way the schedule shows the result.
        assert (report.fired, report.missed) in ((0, 0), (0 if skip else 1, 1))
        shown = self.queue.get_schedule(sid)
        if skip:
            assert shown.last_tick_at != tick
        else:
            assert shown.last_tick_at == tick
            self._schedule_job(shown.last_job_id, known)
        assert self.queue.get_schedule(sid).next_run_at == following

    @rule(sid=SCHEDULE_IDS)
    def unschedule(self, sid: str) -> None:
        if self.model.schedules.pop(sid, None) is None:
            with pytest.raises(ScheduleNotFound):
                self.queue.unschedule(sid)
        else:
            self.queue.unschedule(sid)

    # -- what must always agree -----------------------------------------------------------

    @invariant()
    def counts_and_totals_agree(self) -> None:
        if not hasattr(self, "queue"):
            return
        stats = self.queue.stats()
        m = self.model
        assert (stats.ready, stats.scheduled, stats.running, stats.dead, stats.succeeded) == (
            m.count("ready"), m.count("scheduled"), m.count("running"), m.count("dead"),
            m.count("succeeded"))
        assert stats.paused == m.paused
        assert stats.totals == m.totals

    @invariant()
    def schedules_agree(self) -> None:
        if not hasattr(self, "queue"):
            return
        assert [(s.id, s.paused, s.revision) for s in self.queue.schedules()] == [
            (sid, known["paused"], known["rev"])
            for sid, known in sorted(self.model.schedules.items())]

    @invariant()
    def every_job_agrees(self) -> None:
        if not hasattr(self, "queue"):
            return
        for job in self.model.jobs.values():
            real = self.queue.get(job.id)
            assert (real.state, real.attempts, real.priority, real.max_attempts) == (
                job.state, job.attempts, job.priority, job.max_attempts), job.id
            assert real.lease == (job.lease if job.state == "running" else None)
            assert (real.cancel_requested, real.progress) == (job.cancel_requested,
                                                              job.progress), job.id
            assert [(a.outcome, a.error) for a in real.history] == job.history[:HISTORY_LIMIT], (
                job.id)
            assert real.depends_on == job.parents, job.id
            if job.parents is not None:
                assert real.parent_results == job.parent_results, job.id
            local = self.queue.local_id(job.id)
            if job.history:  # it lives exactly as long as the job's hash
                assert (self.client.pttl(self.queue.keys.history(local)) > 0) == (
                    self.client.pttl(self.queue.keys.job(local)) > 0), job.id

    @invariant()
    def groups_agree(self) -> None:
        if not hasattr(self, "queue"):
            return
        m = self.model
        page = self.queue.groups(1000)
        shown = {g.group: (g.ready, g.running) for g in page.groups if g.ready or g.running}
        expected = {g: (len(m.group_ready(g)), m.grunning.get(g, 0)) for g in ("a", "b")}
        assert shown == {g: counts for g, counts in expected.items() if any(counts)}
        assert page.limited == sum(1 for where in m.at.values() if where == "p")
        assert page.with_ready == sum(1 for g in ("a", "b") if m.group_ready(g))

    @invariant()
    def the_event_log_agrees(self) -> None:
        if not hasattr(self, "queue"):
            return
        events = self.queue.read_events("0-0", 200)
        assert [(e.type, sorted(e.job_ids)) for e in events] == self.model.log
        assert [e.id for e in events] == sorted({e.id for e in events},
                                                key=lambda i: tuple(map(int, i.split("-"))))

    @invariant()
    def every_listing_agrees(self) -> None:
        if not hasattr(self, "queue"):
            return
        m = self.model
        assert [j.id for j in self.queue.jobs("ready", 1000)[0]] == m.ready_listing()
        for state in ("scheduled", "running", "succeeded", "dead", "waiting"):
            listed = [j.id for j in self.queue.jobs(state, 1000)[0]]
            assert sorted(listed) == sorted(j.id for j in m.jobs.values() if j.state == state)


class GroupMachine(QueueMachine):
    """The same machine with only the rules that move jobs in and out of running and change
    limits, so that groups meet their limits (and get their slots back) in most runs."""

    heartbeat = progress = requeue_dead = requeue_all_dead = purge_dead = None  # type: ignore
    pause_or_resume = maintenance_finds_nothing_due = schedule = None  # type: ignore
    pause_or_resume_schedule = trigger_schedule = a_tick_is_missed = unschedule = None  # type: ignore


def _run(factory: Any, examples: int, base: type = QueueMachine) -> None:
    machine = type("Machine", (base,), {"client_factory": staticmethod(factory)})
    machine.TestCase.settings = settings(
        max_examples=examples, stateful_step_count=30, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    machine.TestCase().runTest()


def test_scripts_match_the_model_on_fakeredis() -> None:
    _run(lambda: fakeredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True), 150)


def test_scripts_match_the_model_on_redis(redis_url: str) -> None:
    _run(lambda: relayq.connect(redis_url), 40)


def test_groups_and_limits_match_the_model_on_fakeredis() -> None:
    _run(lambda: fakeredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True), 15,
         GroupMachine)


def test_groups_and_limits_match_the_model_on_redis(redis_url: str) -> None:
    _run(lambda: relayq.connect(redis_url), 60, GroupMachine)
