"""`relayq groups` and `relayq group-limits` (fair queues) and `enqueue --group`, against the
real server: --json for machines, a table for people, bad input a message and exit 2 or 1."""

from __future__ import annotations

from relayq import Queue
from tests.cli.test_cli import _server_env, run, run_json  # noqa: F401 (the autouse fixture)


def test_enqueue_with_a_group_list_groups_and_set_limits(capsys, q: Queue) -> None:
    for _ in range(3):
        run_json(capsys, "enqueue", q.name, "{}", "--group", "tenant-a")
    made = run_json(capsys, "enqueue", q.name, "{}", "--group", "tenant-b")
    assert q.get(made["id"]).group == "tenant-b"
    set_ = run_json(
        capsys,
        "group-limits",
        "set",
        q.name,
        "tenant-a",
        "--max-running",
        "1",
        "--rate",
        "5",
        "--burst",
        "10",
    )
    assert set_ == {
        "queue": q.name,
        "group": "tenant-a",
        "limits": {"max_running": 1, "rate": 5.0, "burst": 10},
    }
    page = run_json(capsys, "groups", q.name, "--limit", "1")
    assert [(g["group"], g["ready"], g["max_running"]) for g in page["groups"]] == [
        ("tenant-a", 3, 1)
    ]
    assert page["next_cursor"] == "1" and page["total"] == 2
    code, out, _ = run(capsys, "groups", q.name)
    lines = out.strip().splitlines()
    assert lines[0].split() == [
        "GROUP",
        "READY",
        "RUNNING",
        "MAX_RUNNING",
        "RATE",
        "BURST",
        "STATE",
    ]
    assert lines[1].split() == ["tenant-a", "3", "0", "1", "5", "10", "ready"]
    assert lines[2].split() == ["tenant-b", "1", "0", "-", "-", "-", "ready"]
    assert lines[-1].startswith("2 groups, 2 with ready jobs")
    cleared = run_json(capsys, "group-limits", "clear", q.name, "tenant-a")
    assert cleared["limits"] is None


def test_bad_group_input_is_a_message_and_a_non_zero_exit(capsys, q: Queue) -> None:
    for argv in (
        ("enqueue", q.name, "{}", "--group", "no spaces"),
        ("group-limits", "set", q.name, "a", "--max-running", "-1"),
        ("group-limits", "set", q.name, "a", "--rate", "3"),
        ("groups", q.name, "--limit", "0"),
    ):
        code, out, err = run(capsys, *argv)
        assert code != 0 and err.strip() and "Traceback" not in err, argv
    assert q.stats().totals["enqueued"] == 0
