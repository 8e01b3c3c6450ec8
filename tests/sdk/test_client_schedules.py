"""`relayq.Client`'s schedule methods against the real server: each operation, its
exceptions (ScheduleNotFound, InvalidArgument before or after sending), datetimes sent as
RFC 3339."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from relayq import Client, InvalidArgument, Queue, ScheduleNotFound


def test_every_schedule_operation(client: Client, q: Queue) -> None:
    start = datetime(2030, 1, 1, tzinfo=UTC)
    saved = client.schedule(q.name, "s", {"a": 1}, every_ms=60_000, start_at=start,
                            end_at=1_900_000_000_000, type="t", misfire="all")
    assert (saved["start_at"], saved["end_at"]) == ("2030-01-01T00:00:00.000Z",
                                                    "2030-03-17T17:46:40.000Z")
    assert saved["next_run_at"] == "2030-01-01T00:00:00.000Z"  # the first tick: start_at
    assert client.schedule(q.name, "s", {"a": 1}, every_ms=60_000, start_at=start,
                           end_at=1_900_000_000_000, type="t",
                           misfire="all")["revision"] == saved["revision"]
    assert [s["id"] for s in client.schedules(q.name)] == ["s"]
    assert client.get_schedule(q.name, "s")["misfire"] == "all"
    assert client.pause_schedule(q.name, "s")["paused"] is True
    assert client.resume_schedule(q.name, "s")["paused"] is False
    job_id = client.trigger_schedule(q.name, "s")
    assert client.get(job_id).schedule_id == "s"
    client.unschedule(q.name, "s")
    with pytest.raises(ScheduleNotFound):
        client.get_schedule(q.name, "s")
    with pytest.raises(ScheduleNotFound):
        client.unschedule(q.name, "s")


def test_bad_input(client: Client, q: Queue) -> None:
    with pytest.raises(InvalidArgument):
        client.schedule(q.name, "bad id", {}, every_ms=1000)  # refused before sending
    with pytest.raises(InvalidArgument):
        client.schedule(q.name, "s", {}, cron="* * * * *", tz="Mars/Base")  # by the server
    assert client.schedules(q.name) == []
