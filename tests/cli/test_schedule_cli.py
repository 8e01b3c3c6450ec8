"""`relayq schedule set|list|show|rm|pause|resume|trigger` against the real server: --json for
machines, a table for people; bad input is one line on stderr, exit 2, nothing written; an
unknown schedule exits 1."""

from __future__ import annotations

import pytest

from relayq import Queue
from tests.cli.test_cli import _server_env, run, run_json  # noqa: F401 - the fixture too


def run_usage(capsys, *argv: str) -> tuple[int, str, str]:
    """`run`, for command lines that argparse itself may refuse (it exits)."""
    try:
        return run(capsys, *argv)
    except SystemExit as e:
        out, err = capsys.readouterr()
        return int(e.code or 0), out, err


def test_every_verb(capsys, q: Queue) -> None:
    s = run_json(capsys, "schedule", "set", q.name, "nightly", "--cron", "0 3 * * *", "--tz",
                 "America/New_York", "--payload", '{"k": 1}', "--type", "cleanup",
                 "--misfire", "skip")
    assert (s["cron"], s["tz"], s["misfire"], s["payload"]) == (
        "0 3 * * *", "America/New_York", "skip", {"k": 1})
    run_json(capsys, "schedule", "set", q.name, "often", "--every-ms", "60000", "--paused")
    listed = run_json(capsys, "schedule", "list", q.name)["schedules"]
    assert [x["id"] for x in listed] == ["nightly", "often"] and listed[1]["paused"]
    code, out, _ = run(capsys, "schedule", "list", q.name)
    assert code == 0 and "nightly" in out and "every 60000 ms" in out
    assert run_json(capsys, "schedule", "show", q.name, "nightly")["type"] == "cleanup"
    assert run_json(capsys, "schedule", "resume", q.name, "often")["paused"] is False
    assert run_json(capsys, "schedule", "pause", q.name, "often")["paused"] is True
    job_id = run_json(capsys, "schedule", "trigger", q.name, "nightly")["job_id"]
    assert q.get(job_id).schedule_id == "nightly"
    code, out, _ = run(capsys, "schedule", "rm", q.name, "often")
    assert code == 0 and "deleted" in out
    code, _, err = run(capsys, "schedule", "rm", q.name, "often")
    assert code == 1 and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("argv", [
    ["--cron", "0 25 * * *"],
    ["--cron", "* * * * *", "--tz", "Nowhere/Town"],
    ["--every-ms", "50"],
    ["--every-ms", "1000", "--start-at", "2030-01-02T00:00:00Z", "--end-at",
     "2030-01-01T00:00:00Z"],
    ["--every-ms", "1000", "--priority", "300"],
    ["--every-ms", "1000", "--payload", "{not json"],
    ["--cron", "* * * * *", "--every-ms", "1000"],
    [],
])
def test_bad_input_is_one_line_exit_2_and_nothing_written(capsys, q: Queue,
                                                          argv: list[str]) -> None:
    code, out, err = run_usage(capsys, "schedule", "set", q.name, "s", *argv)
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1, err
    assert q.schedules() == []


def test_a_bad_id_exits_2(capsys, q: Queue) -> None:
    code, _, err = run(capsys, "schedule", "set", q.name, "no spaces", "--every-ms", "1000")
    assert code == 2 and len(err.strip().splitlines()) == 1
