"""Periodic schedules at the level of the evaluation and of the scripts (issue 13):

- the timetable across DST changes in two zones, against cronsim's own continuous answers and
  against what cron users expect (a fixed-time job in the spring gap runs once, at the end of
  the gap; in the autumn repeat once; an hourly job follows real time);
- the misfire plan (pure: once, skip, all, the grace, the cap);
- the scripts, on the real redis-server and on fakeredis: the upsert that changes nothing, the
  compare-and-set of a firing (a racing or retried call makes no second job), ticks never fired
  twice, pause, resume, trigger, delete."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import fakeredis
import pytest
from cronsim import CronSim

import relayq
import relayq.schedules
from relayq.limits import BATCH_LIMIT, MAX_MISFIRE_JOBS, MISFIRE_GRACE_MS
from relayq.rfc3339 import to_epoch_ms
from relayq.schedules import Definition, check_definition, plan
from relayq.tools.redis_process import RedisProcess
from tests.support.helpers import keyspace, wait_until

PARIS, NEW_YORK = "Europe/Paris", "America/New_York"


def cron(expr: str, tz: str, misfire: str = "once") -> Definition:
    return check_definition("{}", cron=expr, tz=tz, misfire=misfire)


def local(tz: str, *parts: int) -> int:
    return to_epoch_ms(datetime(*parts, tzinfo=ZoneInfo(tz)))


def iso(ms: int, tz: str) -> str:
    return datetime.fromtimestamp(ms / 1000, ZoneInfo(tz)).isoformat()


def walk(definition: Definition, after: int, n: int) -> list[int]:
    ticks = [definition.first_after(0, after)]
    while len(ticks) < n:
        ticks.append(definition.first_after(0, ticks[-1]))
    return ticks  # type: ignore[return-value]


CASES = [  # zone, cron, start (local), the ticks cron users expect
    (PARIS, "30 2 * * *", (2026, 3, 28, 12),    # spring: 02:00-03:00 does not exist
     ["2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"]),
    (PARIS, "30 2 * * *", (2026, 10, 24, 12),   # autumn: 02:00-03:00 twice, the job once
     ["2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"]),
    (PARIS, "0 * * * *", (2026, 10, 25, 0),     # hourly: every real hour, 02:00 twice
     ["2026-10-25T01:00:00+02:00", "2026-10-25T02:00:00+02:00", "2026-10-25T02:00:00+01:00",
      "2026-10-25T03:00:00+01:00"]),
    (NEW_YORK, "30 2 * * *", (2026, 3, 7, 12),
     ["2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"]),
    (NEW_YORK, "30 1 * * *", (2026, 10, 31, 12),
     ["2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"]),
    (NEW_YORK, "*/30 * * * *", (2026, 3, 8, 1, 10),
     ["2026-03-08T01:30:00-05:00", "2026-03-08T03:00:00-04:00", "2026-03-08T03:30:00-04:00"]),
    (NEW_YORK, "0 0 1 * * *", (2026, 11, 1, 0, 30),   # 6 fields: 01:00:00 every real pass
     ["2026-11-01T01:00:00-04:00", "2026-11-01T01:00:00-05:00", "2026-11-02T01:00:00-05:00"]),
]


@pytest.mark.parametrize(("tz", "expr", "start", "expected"), CASES)
def test_dst_ticks_are_cronsims_and_what_cron_users_expect(tz: str, expr: str, start: tuple,
                                                           expected: list[str]) -> None:
    definition = cron(expr, tz)
    after = local(tz, *start)
    ticks = walk(definition, after, len(expected))
    assert [iso(t, tz) for t in ticks] == expected
    # restarting from each tick (what a firer does) agrees with the library's own iteration
    library = CronSim(expr, datetime(*start, tzinfo=ZoneInfo(tz)))
    assert ticks == [to_epoch_ms(next(library)) for _ in expected]


def test_a_start_inside_the_repeated_hour_never_goes_back() -> None:
    definition = cron("30 2 * * *", PARIS)
    second_pass = local(PARIS, 2026, 10, 25, 2, 10) + 3_600_000  # 02:10+01:00
    assert iso(definition.first_after(0, second_pass), PARIS) == "2026-10-26T02:30:00+01:00"


def test_every_ms_counts_from_its_base_and_respects_start_and_end() -> None:
    d = check_definition("{}", every_ms=1000, start_at=10_000, end_at=13_000)
    assert d.first_after(10_000, 0) == 10_000
    assert d.first_after(10_000, 10_000) == 11_000
    assert d.ticks(10_000, 10_000, 99_999, 100) == [10_000, 11_000, 12_000, 13_000]
    assert d.first_after(10_000, 13_000) is None


def test_plan_on_time_ticks_each_fire() -> None:
    d = check_definition("{}", every_ms=200, misfire="skip")
    now = 1_000_000
    todo = plan(d, 0, 0, now - 1000, now)
    assert todo.ticks == list(range(now - 1000, now + 1, 200)) and todo.missed == 0
    assert todo.next == now + 200


@pytest.mark.parametrize(("policy", "kept"), [("once", 1), ("skip", 0), ("all", 26)])
def test_plan_misfire_policies(policy: str, kept: int) -> None:
    d = check_definition("{}", every_ms=200, misfire=policy)
    now = 10_000_000
    first = now - MISFIRE_GRACE_MS - 5000  # 5 s of ticks missed beyond the grace
    todo = plan(d, 0, 0, first, now)
    late = list(range(first, now - MISFIRE_GRACE_MS + 1, 200))
    on_time = list(range(late[-1] + 200, now + 1, 200))
    assert todo.missed == len(late) == 26
    assert todo.ticks == (late[len(late) - kept:] if kept else []) + on_time
    assert todo.next == now + 200


def test_plan_all_keeps_the_newest_1000() -> None:
    d = check_definition("{}", every_ms=100, misfire="all")
    now = 100_000_000
    todo = plan(d, 0, 0, 0, now)
    assert todo.missed == MAX_MISFIRE_JOBS + 1  # counted up to one past the cap
    assert len(todo.ticks) == 1000 and todo.ticks[-1] == now


def test_plan_of_a_cron_down_for_a_day_reads_back_only_what_it_keeps() -> None:
    d = cron("* * * * * *", "UTC", "once")
    now = local("UTC", 2026, 6, 1)
    todo = plan(d, 0, 0, now - 86_400_000, now)
    assert todo.missed == MAX_MISFIRE_JOBS + 1
    assert todo.ticks[0] == now - MISFIRE_GRACE_MS and todo.ticks[-1] == now


# -- the scripts ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def own_redis() -> Iterator[str]:
    with RedisProcess() as server:
        yield server.url


@pytest.fixture(params=["redis", "fakeredis"])
def any_r(request: pytest.FixtureRequest, own_redis: str) -> Iterator[Any]:
    """As tests/conftest.py's, on a redis-server of this module's own: these tests fire ticks
    by hand and fake downtime, and the session's relayq-server fires every queue it knows."""
    if request.param == "redis":
        client = relayq.connect(own_redis)
        yield client
        client.close()
    else:
        yield fakeredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True)


def test_saving_the_same_definition_changes_nothing(any_q: relayq.Queue, any_r: Any) -> None:
    first = any_q.schedule("s", {"a": 1}, every_ms=60_000, type="t")
    assert first.outcome == "created" and first.revision == 1
    before = keyspace(any_r, any_q.name)
    again = any_q.schedule("s", {"a": 1}, every_ms=60_000, type="t")
    assert again.outcome == "unchanged" and again.revision == 1
    assert keyspace(any_r, any_q.name) == before
    changed = any_q.schedule("s", {"a": 2}, every_ms=60_000, type="t")
    assert changed.outcome == "updated" and changed.revision == 2


def redis_now(q: relayq.Queue) -> int:
    seconds, micros = q.redis.time()
    return int(seconds) * 1000 + int(micros) // 1000


def down_since(q: relayq.Queue, schedule_id: str, ms_ago: int) -> int:
    """Makes the schedule's next tick `ms_ago` old, as if nothing had fired it since: the
    state a schedule is in after every process was down that long. Its new next tick."""
    raw = q.redis.hgetall(q.keys.schedule(schedule_id))
    every = relayq.schedules.Definition.from_json(raw["def"]).every_ms
    tick = int(raw["next"]) - (ms_ago // every) * every
    q.redis.hset(q.keys.schedule(schedule_id), "next", tick)
    q.redis.zadd(q.keys.due_schedules, {schedule_id: tick})
    return tick


def test_firing_is_a_compare_and_set(any_q: relayq.Queue) -> None:
    any_q.schedule("s", {}, every_ms=60_000)
    tick = down_since(any_q, "s", 60_000)
    calls = any_q._calls
    raw = any_q.redis.hgetall(any_q.keys.schedule("s"))
    # a firer that read the schedule before its next tick was computed makes nothing
    assert relayq.protocol.run(any_q.redis, calls.fire_schedule(
        "s", raw["rev"], "", tick, [])).status == "conflict"
    call = calls.fire_schedule("s", raw["rev"], raw["next"], tick + 60_000, [tick])
    done = relayq.protocol.run(any_q.redis, call)
    assert done.status == "ok" and len(done.ids) == 1
    # the same call again (a retry after a lost reply, or a racing firer) is a no-op
    assert relayq.protocol.run(any_q.redis, call).status == "conflict"
    # a tick at or before the last one fired is refused even with the right revision and next
    raw = any_q.redis.hgetall(any_q.keys.schedule("s"))
    with pytest.raises(relayq.InvalidArgument):
        relayq.protocol.run(any_q.redis, calls.fire_schedule(
            "s", raw["rev"], raw["next"], int(raw["next"]) + 60_000, [tick]))
    # and a tick not due yet on the Redis clock too
    with pytest.raises(relayq.InvalidArgument):
        relayq.protocol.run(any_q.redis, calls.fire_schedule(
            "s", raw["rev"], raw["next"], redis_now(any_q) + 120_000,
            [redis_now(any_q) + 60_000]))
    assert any_q.stats().ready == 1
    job = any_q.claim()[0]
    assert (job.schedule_id, job.tick_at) == ("s", tick)


def test_a_firing_from_an_old_revision_does_nothing(any_q: relayq.Queue) -> None:
    any_q.schedule("s", {}, every_ms=60_000)
    down_since(any_q, "s", 60_000)
    raw = any_q.redis.hgetall(any_q.keys.schedule("s"))
    any_q.schedule("s", {"new": True}, every_ms=60_000)
    call = any_q._calls.fire_schedule("s", raw["rev"], raw["next"], int(raw["next"]) + 60_000,
                                      [int(raw["next"])])
    assert relayq.protocol.run(any_q.redis, call).status == "conflict"
    assert any_q.stats().ready == 0


def test_fire_pause_resume_trigger_delete(any_q: relayq.Queue) -> None:
    any_q.schedule("s", {"p": 1}, every_ms=1000, misfire="all", priority=4)
    down_since(any_q, "s", 3_600_000)  # an hour down: 3600 ticks missed
    report = any_q.fire_schedules()
    assert report.fired == BATCH_LIMIT  # one call: the newest 1000 ticks, on-time ones too
    assert report.missed == MAX_MISFIRE_JOBS + 1
    assert any_q.fire_schedules().fired == 0  # all taken: the next tick is a minute away
    paused = any_q.pause_schedule("s")
    assert paused.paused and paused.next_run_at is None
    job_id = any_q.trigger_schedule("s")  # even paused
    job = any_q.get(job_id)
    assert (job.schedule_id, job.priority, job.payload) == ("s", 4, {"p": 1})
    assert any_q.get_schedule("s").last_job_id == job_id
    resumed = any_q.resume_schedule("s")
    assert not resumed.paused and resumed.next_run_at is not None
    assert any_q.fire_schedules().fired == 0  # the ticks of the pause are not made up for
    any_q.unschedule("s")
    assert any_q.schedules() == []
    with pytest.raises(relayq.ScheduleNotFound):
        any_q.unschedule("s")
    with pytest.raises(relayq.ScheduleNotFound):
        any_q.trigger_schedule("s")


def test_a_schedule_that_ended_stops(any_q: relayq.Queue) -> None:
    start = redis_now(any_q) + 100
    any_q.schedule("s", {}, every_ms=100, start_at=start, end_at=start + 200)
    wait_until(lambda: redis_now(any_q) > start + 200, timeout=5)
    assert any_q.fire_schedules().fired == 3
    assert any_q.get_schedule("s").next_run_at is None
    assert [j.tick_at for j in any_q.claim(5)] == [start, start + 100, start + 200]


def test_a_queue_without_schedules_fires_nothing(any_q: relayq.Queue, any_r: Any) -> None:
    any_q.enqueue({})
    before = keyspace(any_r, any_q.name)
    assert any_q.fire_schedules() == (0, 0, None)
    assert keyspace(any_r, any_q.name) == before
