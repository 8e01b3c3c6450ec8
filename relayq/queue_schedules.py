"""The periodic schedule operations of a queue (mixins, so that queue.py stays about jobs):
save, list, read, delete, pause, resume, trigger and fire. `ScheduleOps` holds them without I/O,
as generators yielding `Scripts` and `Reads` steps like QueueOps' (relayq/steps.py): each checks
its input with relayq/schedules.py and builds its script calls through relayq/protocol.py.
`ScheduleOperations` is the sync face `relayq.Queue` drives them with; relayq.aio.Queue has the
async twins. docs/periodic.md has the design."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from .errors import InvalidArgument, RelayqError, ScheduleNotFound
from .keys import SCHEDULED_QUEUES
from .limits import SWEEP_LIMIT
from .options import check_json_text, check_payload_size
from .protocol import Reads, Scripts
from .schedules import FireReport, Schedule, check_definition, check_schedule_id, plan

if TYPE_CHECKING:
    from .codec import Codec
    from .keys import QueueKeys
    from .protocol import Call, Op, QueueCalls

R = TypeVar("R")


class ScheduleOps:
    """The schedule operations without I/O; mixed into `relayq.queue.QueueOps`, whose
    attributes these are."""

    name: str
    codec: Codec[Any]
    keys: QueueKeys
    max_payload_bytes: int
    _calls: QueueCalls

    if TYPE_CHECKING:  # QueueOps' own
        def _register(self) -> Op[None]: ...

    @staticmethod
    def _one(call: Call[R]) -> Op[R]:
        return (yield Scripts((call,)))[0]  # type: ignore[no-any-return]

    def _schedule(self, schedule_id: str, payload: Any, cron: str | None, every_ms: int | None,
                  tz: str | None, start_at: Any, end_at: Any, misfire: str | None,
                  paused: bool | None, origin: str, options: dict[str, Any]) -> Op[Schedule]:
        check_schedule_id(schedule_id)
        if paused is not None and not isinstance(paused, bool):
            raise InvalidArgument("paused must be true or false")
        text = check_json_text(check_payload_size(self.codec.encode(payload),
                                                  self.max_payload_bytes))
        definition = check_definition(text, cron=cron, every_ms=every_ms, tz=tz,
                                      start_at=start_at, end_at=end_at, misfire=misfire,
                                      options=options)
        changed = yield from self._one(self._calls.save_schedule(
            schedule_id, definition.to_json(), definition.template(), definition.start_at,
            paused, origin))
        yield from self._register()  # after: a refused schedule lists nothing
        if changed.outcome == "created":  # relayq-server fires the queues of this set
            yield Reads([("SADD", SCHEDULED_QUEUES, self.name)])
        if changed.outcome != "unchanged":
            yield from self._fire_schedules([schedule_id])  # its first next tick, Redis clock
        saved = yield from self._get_schedule(schedule_id)
        saved.outcome = changed.outcome
        return saved

    def _schedules(self) -> Op[list[Schedule]]:
        ids = sorted((yield Reads([("SMEMBERS", self.keys.schedules)]))[0])
        if not ids:
            return []
        due = yield from self._one(self._calls.due_schedules(1, ids))
        return [Schedule.from_hash(self.name, sid, h) for sid, h in due.schedules.items() if h]

    def _get_schedule(self, schedule_id: str) -> Op[Schedule]:
        check_schedule_id(schedule_id)
        h = (yield from self._one(self._calls.due_schedules(1, [schedule_id]))
             ).schedules[schedule_id]
        if not h:
            raise ScheduleNotFound(f"no schedule {schedule_id} on queue {self.name}")
        return Schedule.from_hash(self.name, schedule_id, h)

    def _unschedule(self, schedule_id: str) -> Op[None]:
        yield from self._one(self._calls.delete_schedule(check_schedule_id(schedule_id)))

    def _pause_schedule(self, schedule_id: str, paused: bool) -> Op[Schedule]:
        """Pauses, or resumes (from its next tick after now: the ticks between are not made
        up for)."""
        changed = yield from self._one(self._calls.pause_schedule(
            check_schedule_id(schedule_id), paused))
        if not paused and changed.outcome != "unchanged":
            yield from self._fire_schedules([schedule_id])
        return (yield from self._get_schedule(schedule_id))

    def _trigger_schedule(self, schedule_id: str) -> Op[str]:
        fired = yield from self._one(self._calls.trigger_schedule(
            check_schedule_id(schedule_id)))
        return f"{self.name}.{fired.ids[0]}"

    def _fire_schedules(self, ids: Sequence[str]) -> Op[FireReport]:
        due = yield from self._one(self._calls.due_schedules(SWEEP_LIMIT, ids))
        fired = missed = 0
        failure: RelayqError | None = None
        for sid, h in due.schedules.items():
            if not h or h.get("paused") == "1" or h.get("next") == "end":
                continue
            schedule = Schedule.from_hash(self.name, sid, h)
            stored = int(schedule.raw_next) if schedule.raw_next else None
            todo = plan(schedule.definition, schedule.base_ms, schedule.after_ms, stored,
                        due.now_ms)
            if not todo.ticks and todo.next == stored:
                continue  # not due yet
            try:
                done = yield from self._one(self._calls.fire_schedule(
                    sid, h["rev"], schedule.raw_next, todo.next, todo.ticks))
            except RelayqError as e:
                failure = failure or e
                continue
            if done.status == "ok":  # else another firer took it: nothing to count
                fired += len(done.ids)
                missed += todo.missed
        if failure is not None:
            raise failure
        return FireReport(fired, missed, due.next_due_ms)


class ScheduleOperations:
    """The sync schedule methods of `relayq.Queue`, each driving its operation of
    `ScheduleOps` with redis-py (`_drive`)."""

    if TYPE_CHECKING:  # Queue's own (from QueueOps and ScheduleOps)
        def _drive(self, op: Op[R]) -> R: ...

        def _schedule(self, schedule_id: str, payload: Any, cron: str | None,
                      every_ms: int | None, tz: str | None, start_at: Any, end_at: Any,
                      misfire: str | None, paused: bool | None, origin: str,
                      options: dict[str, Any]) -> Op[Schedule]: ...

        def _schedules(self) -> Op[list[Schedule]]: ...

        def _get_schedule(self, schedule_id: str) -> Op[Schedule]: ...

        def _unschedule(self, schedule_id: str) -> Op[None]: ...

        def _pause_schedule(self, schedule_id: str, paused: bool) -> Op[Schedule]: ...

        def _trigger_schedule(self, schedule_id: str) -> Op[str]: ...

        def _fire_schedules(self, ids: Sequence[str]) -> Op[FireReport]: ...

    def schedule(self, schedule_id: str, payload: Any, *, cron: str | None = None,
                 every_ms: int | None = None, tz: str | None = None,
                 start_at: Any = None, end_at: Any = None, misfire: str | None = None,
                 paused: bool | None = None, origin: str = "", **options: Any) -> Schedule:
        """Saves the periodic schedule `schedule_id` (an upsert: saving the same definition
        again changes nothing): one job of `payload` per tick of `cron` (5 fields, or 6 with
        seconds first, read in `tz`, an IANA zone, default UTC) or of `every_ms` (at least
        MIN_EVERY_MS), from `start_at` to `end_at` (datetime or epoch ms). `misfire`: what
        ticks missed while nothing ran become: "once" (default: one job), "skip" or "all".
        `paused`: None keeps the schedule's state (a new one is active). `options`: the jobs'
        type, priority, max_attempts, timeout_ms, backoff_base_ms, backoff_cap_ms, checked as
        an enqueue checks them. `origin`: "app" marks a schedule a worker saved from an
        `@app.task` (only those are pruned by `relayq-worker --prune-schedules`). Returns the
        schedule with `outcome` created | updated | unchanged."""
        return self._drive(self._schedule(schedule_id, payload, cron, every_ms, tz, start_at,
                                          end_at, misfire, paused, origin, options))

    def schedules(self) -> list[Schedule]:
        """Every schedule of the queue, by id."""
        return self._drive(self._schedules())

    def get_schedule(self, schedule_id: str) -> Schedule:
        """The schedule `schedule_id`; ScheduleNotFound when there is none."""
        return self._drive(self._get_schedule(schedule_id))

    def unschedule(self, schedule_id: str) -> None:
        """Deletes a schedule (its jobs already made stay); ScheduleNotFound when unknown."""
        self._drive(self._unschedule(schedule_id))

    def pause_schedule(self, schedule_id: str) -> Schedule:
        """Stops a schedule's ticks until `resume_schedule` (the ticks between are not made up
        for)."""
        return self._drive(self._pause_schedule(schedule_id, True))

    def resume_schedule(self, schedule_id: str) -> Schedule:
        """Starts a paused schedule again, from its next tick after now."""
        return self._drive(self._pause_schedule(schedule_id, False))

    def trigger_schedule(self, schedule_id: str) -> str:
        """Makes one job of the schedule now (paused or not), outside its timetable; the job's
        id. Its tick_at is now; the timetable is unchanged."""
        return self._drive(self._trigger_schedule(schedule_id))

    def fire_schedules(self, ids: Sequence[str] = ()) -> FireReport:
        """Fires the due ticks of this queue's schedules (or of `ids`, whether due or not,
        computing a next tick still unknown): what every worker's maintenance loop and every
        relayq-server run. Any number may run at once: each tick becomes one job (the script
        is a compare-and-set). A schedule whose template the queue now refuses (its payload
        limit was lowered) does not hold up the others: the first such error is raised after
        them."""
        return self._drive(self._fire_schedules(ids))
