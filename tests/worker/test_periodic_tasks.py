"""Periodic tasks of an App (issue 13 #3): `@app.task(cron=...)` and `@app.task(every=...)`
are checked at import, saved by workers at start (several workers saving the same definition
change nothing), a schedule the app no longer defines is named, not deleted, unless
--prune-schedules; and a worker's maintenance loop fires them."""

from __future__ import annotations

import datetime
import logging
from typing import Any

import pytest

import relayq
from relayq import App, Queue, Worker
from relayq.errors import InvalidArgument
from relayq.worker.app import save_schedules
from tests.support.helpers import wait_until


def periodic_app(queue: str, **extra: Any) -> App:
    app = App("clock", queue=queue)

    @app.task(cron="0 9 * * *", tz="Europe/Paris", payload={"kind": "report"})
    def report(payload: Any) -> Any:
        return payload

    @app.task(every=datetime.timedelta(minutes=5), priority=2)
    def sweep(payload: Any) -> None:
        return None

    for name, every in extra.items():
        app.task(lambda payload: payload, name=name, every=every)
    return app


def test_bad_definitions_fail_at_import() -> None:
    app = App()
    for bad in ({"cron": "0 25 * * *"}, {"cron": "* * * * *", "tz": "Atlantis/Main"},
                {"every": 0.05}, {"every": "5m"}, {"tz": "UTC"},
                {"every": 60, "delay_ms": 5}, {"every": 60, "type": "other"}):
        with pytest.raises(InvalidArgument):
            app.task(lambda payload: payload, name="t", **bad)
    with pytest.raises(InvalidArgument):  # the schedule is named after the task
        app.task(lambda payload: payload, name="two words", every=60)


def test_workers_save_the_apps_schedules_once(q: Queue) -> None:
    app = periodic_app(q.name)
    assert save_schedules(app, [q]) == []
    first = {s.id: s for s in q.schedules()}
    assert set(first) == {"report", "sweep"}
    assert (first["report"].definition.cron, first["report"].definition.tz) == (
        "0 9 * * *", "Europe/Paris")
    assert first["sweep"].definition.every_ms == 300_000
    assert all(s.origin == "app" for s in first.values())
    for _ in range(3):  # more workers starting: nothing changes
        assert save_schedules(periodic_app(q.name), [q]) == []
    assert {s.id: s.revision for s in q.schedules()} == {"report": 1, "sweep": 1}


def test_a_schedule_the_app_dropped_is_named_then_pruned(q: Queue) -> None:
    save_schedules(periodic_app(q.name, old=60), [q])
    q.schedule("by-hand", {}, every_ms=60_000)  # not the app's: never pruned
    app = periodic_app(q.name)
    assert save_schedules(app, [q]) == [f"{q.name}/old"]
    assert "old" in {s.id for s in q.schedules()}  # still there, still firing
    assert save_schedules(app, [q], prune=True) == [f"{q.name}/old"]
    assert {s.id for s in q.schedules()} == {"report", "sweep", "by-hand"}


def test_a_worker_fires_its_apps_schedule_and_warns_of_a_stale_one(
        redis_url: str, q: Queue, caplog: pytest.LogCaptureFixture) -> None:
    save_schedules(periodic_app(q.name, gone=60), [q])
    app = App("ticks", queue=q.name)
    seen: list[tuple[str | None, int | None]] = []

    @app.task(every=0.1)
    def tick(payload: Any) -> None:
        job = relayq.current_job()
        seen.append((job.schedule_id, job.tick_at))

    worker = Worker([q.name], app, redis_url, maintenance_interval_s=0.2)
    with caplog.at_level(logging.WARNING, logger="relayq.worker"):
        worker.start()
        try:
            wait_until(lambda: len(seen) >= 3, timeout=10, message="three ticks run")
        finally:
            worker.stop(grace_s=2)
    ticks = sorted(t for _, t in seen)
    assert {sid for sid, _ in seen} == {"tick"}
    assert all(b - a == 100 for a, b in zip(ticks, ticks[1:]))
    stale = {r.fields["schedule"] for r in caplog.records  # type: ignore[attr-defined]
             if r.getMessage() == "schedule.not_in_app"}
    assert stale == {f"{q.name}/{name}" for name in ("gone", "report", "sweep")}
