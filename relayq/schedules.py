"""Periodic schedules: checking a definition, evaluating its timetable, and firing due ticks.

A schedule belongs to a queue and makes jobs from a template on a timetable: a cron expression
(5 fields, or 6 with seconds first) read in an IANA time zone, or a fixed interval (`every_ms`).
Redis cannot evaluate cron, so the work is split (docs/periodic.md):

- this module checks a definition (the limits are relayq.limits') and computes ticks, with
  cronsim (the library Healthchecks.io runs its cron checks on; it follows Debian cron in DST
  gaps and repeats);
- lua/save_schedule.lua stores it (delete_, pause_ and trigger_schedule.lua the rest);
  lua/due_schedules.lua reads the due ones on the Redis clock;
- lua/fire_schedule.lua makes the jobs of the ticks this module computed and saves the next
  tick, atomically, as a compare-and-set on the revision and next tick it read. So any number
  of firers (every worker's maintenance loop, every relayq-server) may run `fire_due` at once:
  each tick becomes exactly one job.

`Queue` (relayq/queue.py) exposes the operations; nothing else calls the scripts.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from .errors import InvalidArgument
from .limits import (
    BATCH_LIMIT,
    MAX_CRON_BYTES,
    MAX_DURATION_MS,
    MAX_MISFIRE_JOBS,
    MAX_TIME_MS,
    MAX_TZ_BYTES,
    MIN_EVERY_MS,
    MISFIRE_GRACE_MS,
    SCHEDULE_ID_PATTERN,
)
from .options import JobOptions, check_int
from .rfc3339 import format_ms, to_epoch_ms

SCHEDULE_ID = re.compile(SCHEDULE_ID_PATTERN)
MISFIRE_POLICIES = ("once", "skip", "all")
# The job options a template may carry. delay_ms and run_at belong to the tick, and the
# idempotency of a tick's job is the schedule's own (a tick fires once).
TEMPLATE_OPTIONS = ("type", "priority", "max_attempts", "timeout_ms", "backoff_base_ms",
                    "backoff_cap_ms", "group")
ORIGIN_APP = "app"  # a schedule upserted by a worker from an @app.task


def check_schedule_id(value: object) -> str:
    if not isinstance(value, str) or not SCHEDULE_ID.fullmatch(value):
        raise InvalidArgument(f"invalid schedule id {value!r}: use 1-128 characters from "
                              "A-Z a-z 0-9 _ . : -")
    return value


def check_tz(value: object) -> ZoneInfo:
    if not isinstance(value, str) or not value or len(value) > MAX_TZ_BYTES:
        raise InvalidArgument(f"tz must be an IANA time zone name, got {value!r}")
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidArgument(f"unknown time zone {value!r} (an IANA name such as "
                              "'Europe/Paris')") from None


def check_cron(expr: object, tz: ZoneInfo) -> str:
    if not isinstance(expr, str) or not expr.strip() or len(expr) > MAX_CRON_BYTES:
        raise InvalidArgument(f"cron must be a cron expression, got {expr!r}")
    expr = " ".join(expr.split())
    if len(expr.split()) not in (5, 6):
        raise InvalidArgument(f"cron {expr!r} must have 5 fields (or 6, seconds first)")
    try:
        next(CronSim(expr, datetime.now(tz)))
    except CronSimError as e:
        raise InvalidArgument(f"invalid cron {expr!r}: {e}") from None
    except StopIteration:
        raise InvalidArgument(f"cron {expr!r} never fires") from None
    return expr


def _epoch_ms(value: datetime | int | None, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        value = to_epoch_ms(value)
    return check_int(value, name, 0, MAX_TIME_MS)


@dataclass(frozen=True)
class Definition:
    """What a schedule does: its timetable and its job template. Stored as canonical JSON, so
    that saving the same definition again is recognised and changes nothing."""

    cron: str | None
    every_ms: int | None
    tz: str
    start_at: int | None
    end_at: int | None
    misfire: str
    payload: str  # JSON text
    options: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps({"cron": self.cron, "every_ms": self.every_ms, "tz": self.tz,
                           "start_at": self.start_at, "end_at": self.end_at,
                           "misfire": self.misfire, "payload": self.payload,
                           "options": self.options}, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Definition:
        return cls(**json.loads(text))

    def template(self) -> list[str]:
        """The 12 job fields of lua/lib/jobs.lua that each tick's job is made from (no trace:
        a tick's job is no request's child)."""
        args = JobOptions(**self.options).script_args()
        return [self.payload, *args, ""]

    # -- the timetable --------------------------------------------------------------------

    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)

    def first_after(self, base_ms: int, after_ms: int) -> int | None:
        """The first tick strictly after `after_ms` (and not before start_at, nor after
        end_at); None when there is none. `base_ms`: the origin of an every_ms grid."""
        if self.start_at is not None:
            after_ms = max(after_ms, self.start_at - 1)
        if self.every_ms is not None:
            k = max(0, (after_ms - base_ms) // self.every_ms + 1)
            tick: int | None = base_ms + k * self.every_ms
        else:
            tick = self._cron_after(after_ms)
        if tick is None or (self.end_at is not None and tick > self.end_at):
            return None
        return tick

    def _cron_after(self, after_ms: int) -> int | None:
        assert self.cron is not None
        start = datetime.fromtimestamp(after_ms / 1000, UTC).astimezone(self.zone())
        # Within a repeated hour cronsim reads a fixed-time job's start as wall-clock time and
        # may answer the first pass of that hour, which is before `start`: read on.
        for moment in CronSim(self.cron, start):
            tick = to_epoch_ms(moment)
            if tick > after_ms:
                return tick
        return None

    def ticks(self, base_ms: int, first: int, until_ms: int, limit: int) -> list[int]:
        """Ticks from `first` (a tick) to `until_ms`, both included, the earliest `limit`."""
        out: list[int] = []
        tick: int | None = first
        while tick is not None and tick <= until_ms and len(out) < limit:
            out.append(tick)
            tick = self.first_after(base_ms, tick)
        return out

    def ticks_back(self, base_ms: int, first: int, until_ms: int, limit: int) -> list[int]:
        """The latest `limit` ticks from `first` to `until_ms` (both included), in order."""
        if self.end_at is not None:
            until_ms = min(until_ms, self.end_at)
        if self.every_ms is not None:
            if until_ms < first:
                return []
            last = first + (until_ms - first) // self.every_ms * self.every_ms
            start = max(first, last - (limit - 1) * self.every_ms)
            return list(range(start, last + 1, self.every_ms))
        assert self.cron is not None
        out: list[int] = []
        back = CronSim(self.cron, datetime.fromtimestamp((until_ms + 1) / 1000, UTC)
                       .astimezone(self.zone()), reverse=True)
        for moment in back:
            tick = to_epoch_ms(moment)
            if tick < first or len(out) >= limit:
                break
            if tick <= until_ms:
                out.append(tick)
        return out[::-1]


def check_definition(payload_text: str, *, cron: str | None = None,
                     every_ms: int | None = None, tz: str | None = None,
                     start_at: datetime | int | None = None,
                     end_at: datetime | int | None = None, misfire: str | None = None,
                     options: dict[str, Any] | None = None) -> Definition:
    """A checked definition (InvalidArgument names what is wrong). `payload_text` has been
    checked as an enqueue checks a payload; the options are checked as enqueue checks them."""
    if (cron is None) == (every_ms is None):
        raise InvalidArgument("give exactly one of cron and every_ms")
    zone = check_tz("UTC" if tz is None else tz)
    if cron is not None:
        cron = check_cron(cron, zone)
    else:
        check_int(every_ms, "every_ms", MIN_EVERY_MS, MAX_DURATION_MS)
        if tz is not None and tz != "UTC":
            raise InvalidArgument("tz is for cron schedules; every_ms counts real time")
    start, end = _epoch_ms(start_at, "start_at"), _epoch_ms(end_at, "end_at")
    if start is not None and end is not None and end <= start:
        raise InvalidArgument("end_at must be after start_at")
    misfire = "once" if misfire is None else misfire
    if misfire not in MISFIRE_POLICIES:
        raise InvalidArgument(f"misfire must be one of {', '.join(MISFIRE_POLICIES)}, "
                              f"got {misfire!r}")
    opts = {name: value for name, value in (options or {}).items() if value is not None}
    for name in opts:
        if name not in TEMPLATE_OPTIONS:
            raise InvalidArgument(f"{name} is not an option of a schedule's jobs (they take "
                                  f"{', '.join(TEMPLATE_OPTIONS)})")
    definition = Definition(cron, every_ms, zone.key, start, end, misfire, payload_text, opts)
    definition.template()  # the options checked exactly as an enqueue checks them
    return definition


class FireReport(NamedTuple):
    """One firing round of a queue: jobs made from ticks, ticks found missed, and when the
    earliest next tick is due (epoch ms on the Redis clock; None: no active schedule)."""

    fired: int
    missed: int
    next_due_ms: int | None


class Plan(NamedTuple):
    """What a firer does with a due schedule: the ticks to make jobs of, the next tick (None:
    none is left) and how many ticks were missed (found over MISFIRE_GRACE_MS late)."""

    ticks: list[int]
    next: int | None
    missed: int


def plan(definition: Definition, base_ms: int, after_ms: int, next_ms: int | None,
         now_ms: int) -> Plan:
    """The ticks due at `now_ms` under the misfire policy. `next_ms`: the stored next tick
    (None while it is still to be computed, from `after_ms`). Ticks at most MISFIRE_GRACE_MS
    late fire one job each; older ones were missed: `once` makes one job of the newest of
    them, `skip` none, `all` one each (the newest MAX_MISFIRE_JOBS)."""
    first = next_ms if next_ms is not None else definition.first_after(base_ms, after_ms)
    if first is None or first > now_ms:
        return Plan([], first, 0)
    late_until = now_ms - MISFIRE_GRACE_MS
    kept: list[int] = []
    missed = 0
    on_time_from: int | None = first
    if first <= late_until:
        keep = {"once": 1, "skip": 0, "all": MAX_MISFIRE_JOBS}[definition.misfire]
        # counted up to one past the cap (a cron of every second down for a day: no need to
        # walk all 86,400 ticks to know that the newest 1000 are kept)
        late = definition.ticks_back(base_ms, first, late_until, MAX_MISFIRE_JOBS + 1)
        missed = len(late)
        kept = late[len(late) - keep:] if keep else []
        # never a tick at or before `after_ms` (the change that started this timetable)
        on_time_from = definition.first_after(base_ms, max(late_until, after_ms))
    # at most MISFIRE_GRACE_MS / MIN_EVERY_MS (50) on-time ticks: within one call's batch
    on_time = ([] if on_time_from is None
               else definition.ticks(base_ms, on_time_from, now_ms, BATCH_LIMIT))
    fired = (kept + on_time)[-BATCH_LIMIT:]
    return Plan(fired, definition.first_after(base_ms, now_ms), missed)


@dataclass
class Schedule:
    """A stored schedule as the API shows it. Times in epoch ms."""

    id: str
    queue: str
    definition: Definition
    paused: bool
    revision: int
    origin: str | None
    next_run_at: int | None
    last_run_at: int | None
    last_tick_at: int | None
    last_job_id: str | None
    created_at: int
    updated_at: int
    base_ms: int = 0
    after_ms: int = 0
    raw_next: str = ""
    # what saving it did (created | updated | unchanged); None when it was only read
    outcome: str | None = None

    @classmethod
    def from_hash(cls, queue: str, schedule_id: str, h: dict[str, str]) -> Schedule:
        def ms(name: str) -> int | None:
            value = h.get(name)
            return int(value) if value and value.isdigit() else None

        last_job = h.get("last_job")
        return cls(schedule_id, queue, Definition.from_json(h["def"]), h.get("paused") == "1",
                   int(h["rev"]), h.get("origin") or None,
                   None if h.get("paused") == "1" else ms("next"), ms("last_run"),
                   ms("last_tick"), f"{queue}.{last_job}" if last_job else None,
                   ms("created") or 0, ms("updated") or 0, ms("base") or 0, ms("after") or 0,
                   h.get("next", ""))

    def to_dict(self) -> dict[str, Any]:
        d = self.definition
        return {"id": self.id, "queue": self.queue, "cron": d.cron, "every_ms": d.every_ms,
                "tz": d.tz, "start_at": format_ms(d.start_at), "end_at": format_ms(d.end_at),
                "misfire": d.misfire, "payload": json.loads(d.payload), **d.options,
                "paused": self.paused, "origin": self.origin, "revision": self.revision,
                "next_run_at": format_ms(self.next_run_at),
                "last_run_at": format_ms(self.last_run_at),
                "last_tick_at": format_ms(self.last_tick_at), "last_job_id": self.last_job_id,
                "created_at": format_ms(self.created_at),
                "updated_at": format_ms(self.updated_at)}
