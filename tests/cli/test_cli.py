"""The operator CLI (`relayq ...`) against the real server (and, for `keys`, straight on Redis):
--json for machines, tables for people, exit codes 0/1/2, one-line errors, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

import relayq
from relayq import Queue
from relayq.auth import KeyStore
from relayq.cli.main import build_parser, main
from relayq.commandline import describe_redis
from relayq.tools.redis_process import free_port
from tests.support.helpers import wait_until
from tests.support.server import ROOT


@pytest.fixture(autouse=True)
def _server_env(monkeypatch, server, admin_key: str) -> None:
    monkeypatch.setenv("RELAYQ_SERVER", server.url)
    monkeypatch.setenv("RELAYQ_API_KEY", admin_key)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys, *argv: str) -> Any:
    code, out, err = run(capsys, *argv, "--json")
    assert code == 0, err
    return json.loads(out)


def test_enqueue_job_and_cancel(capsys, q: Queue) -> None:
    made = run_json(capsys, "enqueue", q.name, '{"to": "ada"}', "--type", "email",
                    "--priority", "7", "--delay-ms", "60000", "--idempotency-key", "k")
    assert made["state"] == "scheduled" and made["duplicate"] is False
    job = run_json(capsys, "job", made["id"])
    assert (job["payload"], job["type"], job["priority"]) == ({"to": "ada"}, "email", 7)
    code, out, _ = run(capsys, "enqueue", q.name, "{}", "--idempotency-key", "k")
    assert code == 0 and out.strip() == f"{made['id']} scheduled (duplicate)"
    code, out, _ = run(capsys, "job", made["id"])
    assert code == 0 and "state" in out and "scheduled" in out
    assert run_json(capsys, "cancel", made["id"]) == {"id": made["id"], "state": "cancelled",
                                                     "cancel_requested": False}
    assert q.get(made["id"]).state == "cancelled"
    running = q.enqueue({}).id
    q.claim()
    code, out, _ = run(capsys, "cancel", running)
    assert code == 0 and out.strip() == f"{running} is running: cancel requested"
    assert q.get(running).cancel_requested


def test_enqueue_at_an_rfc_3339_time(capsys, q: Queue) -> None:
    made = run_json(capsys, "enqueue", q.name, "{}", "--run-at", "2030-01-01T01:00:00.5+01:00")
    assert made["state"] == "scheduled"
    assert run_json(capsys, "job", made["id"])["run_at"] == "2030-01-01T00:00:00.500Z"


def test_claim_heartbeat_ack_and_nack(capsys, q: Queue) -> None:
    first, second = q.enqueue({"n": 1}).id, q.enqueue({"n": 2}).id
    jobs = run_json(capsys, "claim", q.name, "--count", "2", "--worker-id", "cli")["jobs"]
    assert [j["id"] for j in jobs] == [first, second]
    lease = jobs[0]["lease"]
    beat = run_json(capsys, "heartbeat", first, "--lease", lease, "--visibility-ms", "90000")
    assert beat["lease_deadline"] > jobs[0]["lease_deadline"]
    assert run_json(capsys, "ack", first, "--lease", lease, "--result", "[1]")["state"] == \
        "succeeded"
    assert q.get(first).result == [1]
    dead = run_json(capsys, "nack", second, "--lease", jobs[1]["lease"], "--error", "bad",
                    "--no-retry")
    assert dead["state"] == "dead" and q.get(second).last_error == "bad"
    code, out, _ = run(capsys, "claim", q.name)
    assert code == 0 and "nothing to claim" in out


def test_claim_prints_a_table_for_people(capsys, q: Queue) -> None:
    job_id = q.enqueue({"n": 1}, type="email").id
    code, out, _ = run(capsys, "claim", q.name)
    header, row = out.strip().splitlines()
    assert header.split() == ["ID", "TYPE", "PRIORITY", "ATTEMPTS", "LEASE", "LEASE_DEADLINE"]
    assert row.split()[:4] == [job_id, "email", "0", "1"]


def test_status_pause_resume_rate_limit(capsys, q: Queue) -> None:
    q.enqueue({"n": 1})
    assert run_json(capsys, "pause", q.name) == {"queue": q.name, "paused": True}
    stats = run_json(capsys, "status", q.name)
    assert stats["paused"] is True and stats["ready"] == 1
    assert run_json(capsys, "resume", q.name)["paused"] is False
    limited = run_json(capsys, "rate-limit", "set", q.name, "2.5", "--burst", "3")
    assert limited["rate_limit"] == {"rate": 2.5, "burst": 3}
    code, out, _ = run(capsys, "status")
    assert code == 0
    line = next(row for row in out.splitlines() if row.startswith(q.name + " "))
    assert line.split()[1:7] == ["1", "0", "0", "0", "0", "no"] and "2.5/s burst 3" in line
    assert run_json(capsys, "rate-limit", "clear", q.name)["rate_limit"] is None
    assert q.name in {s["queue"] for s in run_json(capsys, "status")["queues"]}


def test_settings_shown_and_changed(capsys, q: Queue) -> None:
    assert run_json(capsys, "settings", q.name) == {"queue": q.name, "settings": q.settings()}
    changed = run_json(capsys, "settings", q.name, "--set", "max_running=20",
                       "--set", "group_rate=1.5", "--set", "group_burst=2")["settings"]
    assert (changed["max_running"], changed["group_rate"], changed["group_burst"]) == (20, 1.5, 2)
    assert q.settings() == changed
    code, out, _ = run(capsys, "settings", q.name)
    assert code == 0 and any(line.split() == ["max_running", "20"] for line in out.splitlines())
    before = q.settings()
    for bad in ("max_running", "nope=1", "max_running=x", "max_running=-1"):
        code, _, err = run(capsys, "settings", q.name, "--set", bad)
        assert code != 0 and ("max_running" in err or "nope" in err), (bad, err)
    assert q.settings() == before


def test_dlq_list_requeue_purge(capsys, q: Queue) -> None:
    ids = [q.enqueue({"n": i}, max_attempts=1).id for i in range(3)]
    for job in q.claim(3):
        q.nack(job.id, job.lease or "", "fatal")
    listed = run_json(capsys, "dlq", "list", q.name, "--limit", "2")
    assert [j["id"] for j in listed["jobs"]] == ids[::-1][:2] and listed["next_cursor"]
    code, out, _ = run(capsys, "dlq", "list", q.name)
    assert code == 0 and out.count("fatal") == 3
    assert run_json(capsys, "dlq", "requeue", q.name, ids[0]) == {"requeued": 1}
    assert run_json(capsys, "dlq", "purge", q.name, "--all") == {"purged": 2}
    code, _, err = run(capsys, "dlq", "purge", q.name, ids[1])
    assert code == 1 and err.count("\n") == 1 and "no dead job" in err
    code, _, err = run(capsys, "dlq", "requeue", q.name)
    assert code == 2 and "--all" in err


def test_keys_straight_on_redis(capsys, redis_url: str, r) -> None:
    made = run_json(capsys, "keys", "create", "--name", "ci", "--scopes",
                    "jobs:write,jobs:read", "--redis", redis_url)
    assert set(made) == {"id", "key", "name", "scopes"}
    code, _, err = run(capsys, "keys", "list", "--redis", redis_url)
    assert code == 0 and err == f"relayq keys list: read from Redis at {redis_url} (--redis)\n"
    assert made["scopes"] == ["jobs:write", "jobs:read"]
    assert KeyStore(r).authenticate(made["key"]).name == "ci"
    listed = run_json(capsys, "keys", "list", "--redis", redis_url)["keys"]
    assert made["id"] in {k["id"] for k in listed} and made["key"] not in json.dumps(listed)
    assert run_json(capsys, "keys", "revoke", made["id"], "--redis", redis_url)["revoked"]
    code, _, err = run(capsys, "keys", "revoke", made["id"], "--redis", redis_url)
    assert code == 1 and "no API key" in err
    code, _, err = run(capsys, "keys", "create", "--name", "x", "--scopes", "root",
                       "--redis", redis_url)
    assert code == 2 and "bad scopes" in err


def test_keys_through_the_server(capsys, server) -> None:
    made = run_json(capsys, "keys", "create", "--name", "via-http", "--scopes", "jobs:read",
                    "--server", server.url)
    code, out, _ = run(capsys, "keys", "list", "--server", server.url)
    assert code == 0 and made["id"] in out and "via-http" in out
    assert run_json(capsys, "keys", "revoke", made["id"], "--server", server.url)["revoked"]


def test_job_wait_shows_progress_and_fails_when_unfinished(capsys, q: Queue) -> None:
    job_id = q.enqueue({"n": 1}).id
    code, out, err = run(capsys, "job", job_id, "--wait", "0.3")
    assert code == 1 and f"{job_id} is ready" in err and "still ready" in err
    (job,) = q.claim()
    q.ack(job_id, job.lease or "", "done")
    assert run_json(capsys, "job", job_id, "--wait", "5")["result"] == "done"


@pytest.mark.parametrize(("argv", "code", "says"), [
    (["job", "t-nope.1"], 1, "not found"),
    (["job", "not-an-id"], 2, "invalid job id"),
    (["enqueue", "bad name", "{}"], 2, "invalid queue name"),
    (["enqueue", "q", "{not json"], 2, "payload is not valid json"),
    (["enqueue", "q", "{}", "--priority", "999"], 2, "priority"),
    (["enqueue", "q", "{}", "--run-at", "2030-W01-1T00:00Z"], 2, "--run-at must be an rfc 3339"),
    (["enqueue", "q", "{}", "--run-at", "2040-01-01T00:00:00Z"], 2, "run_at must be between"),
    (["ack", "q.1", "--lease", "x"], 1, "refused: not_found"),
])
def test_failures_are_one_line_with_an_exit_code_scripts_can_trust(
        capsys, argv: list[str], code: int, says: str) -> None:
    got, out, err = run(capsys, *argv)
    assert got == code and out == ""
    assert err.count("\n") == 1 and says in err.lower() and "Traceback" not in err


def test_a_key_without_the_scope_fails_with_1(capsys, monkeypatch, scoped_keys, q) -> None:
    monkeypatch.setenv("RELAYQ_API_KEY", scoped_keys["jobs:read"])
    code, _, err = run(capsys, "enqueue", q.name, "{}")
    assert code == 1 and "lacks the scope 'jobs:write'" in err


def _subcommands() -> list[list[str]]:
    """Every command and sub-action, as argv prefixes."""
    found = []
    parser = build_parser()
    for name, sub in parser._subparsers._group_actions[0].choices.items():  # type: ignore
        nested = [a for a in sub._actions if a.__class__.__name__ == "_SubParsersAction"]
        if nested:
            found += [[name, action] for action in nested[0].choices]
        else:
            found.append([name])
    return found


@pytest.mark.parametrize("argv", _subcommands(), ids=" ".join)
def test_every_command_has_help(capsys, argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--help"])
    assert exit_info.value.code == 0 and "usage: relayq" in capsys.readouterr().out


def test_the_console_command_runs_as_a_process(server) -> None:
    unreachable = subprocess.run(
        [sys.executable, "-m", "relayq.cli.main", "status", "--server",
         f"http://127.0.0.1:{free_port()}"], cwd=ROOT, capture_output=True, text=True,
        timeout=60)
    assert unreachable.returncode == 1 and unreachable.stdout == ""
    assert unreachable.stderr.count("\n") == 1
    assert unreachable.stderr.startswith("relayq status: relayq-server at http://127.0.0.1:")
    assert unreachable.stderr.endswith(" is not answering (connection refused): is it running? "
                                       "set $RELAYQ_SERVER to use another\n")
    usage = subprocess.run([sys.executable, "-m", "relayq.cli.main", "claim"], cwd=ROOT,
                           capture_output=True, text=True, timeout=60)
    assert usage.returncode == 2 and "Traceback" not in usage.stderr


def test_keys_say_which_redis_they_wrote_to(capsys, monkeypatch, redis_url: str, r) -> None:
    """After `relayq dev` exports $RELAYQ_REDIS_URL, `relayq keys create` writes there and
    says so; without it, the default, and how to name another."""
    monkeypatch.setenv("RELAYQ_REDIS_URL", redis_url)
    code, out, err = run(capsys, "keys", "create", "--name", "env", "--scopes", "jobs:read")
    assert code == 0 and KeyStore(r).authenticate(out.split()[-1]).name == "env"
    assert err == f"relayq keys create: wrote to Redis at {redis_url} " \
                  "(from $RELAYQ_REDIS_URL)\n"
    monkeypatch.delenv("RELAYQ_REDIS_URL")  # (never run against the machine's own Redis)
    assert describe_redis("redis://localhost:6379/0") == (
        "Redis at redis://localhost:6379/0 (the default: --redis or $RELAYQ_REDIS_URL name "
        "another)")


def test_status_of_a_queue_never_used_says_so(capsys, q: Queue) -> None:
    q.enqueue({"n": 1})
    typo = q.name[:-1] + ("a" if q.name[-1] != "a" else "b")  # its last letter mistyped
    code, out, err = run(capsys, "status", typo)
    assert code == 1 and out == "" and err.count("\n") == 1
    assert err.startswith(f"relayq status: queue '{typo}' has never been used (did you mean ")
    assert q.name in err  # (other tests' queues may look alike too)
    code, _, err = run(capsys, "status", "never-seen-anywhere-zz")
    assert code == 1 and "has never been used" in err and err.count("\n") == 1
    assert run_json(capsys, "status", q.name)["ready"] == 1
    run(capsys, "pause", "listed-before-use")  # known to the server without a job: no error
    assert run_json(capsys, "status", "listed-before-use")["paused"] is True
    run(capsys, "resume", "listed-before-use")


def test_a_missing_api_key_says_which_variable_to_set(capsys, monkeypatch, server) -> None:
    monkeypatch.delenv("RELAYQ_API_KEY")
    code, out, err = run(capsys, "status")
    assert code == 1 and out == ""
    assert err == (f"relayq status: relayq-server at {server.url} wants an API key: "
                   "set $RELAYQ_API_KEY\n")
    monkeypatch.setenv("RELAYQ_API_KEY", "rq_" + "0" * 40)
    code, _, err = run(capsys, "status")
    assert code == 1 and err.endswith(": check $RELAYQ_API_KEY\n")


def test_a_closed_pipe_ends_quietly(server, admin_key: str, q: Queue, tmp_path) -> None:
    """`relayq dlq list q | head -5` through a real pipe: head leaves after five lines, relayq
    stops without a traceback, with 141 as if killed by SIGPIPE."""
    jobs = q.enqueue_many([{"n": i} for i in range(600)])
    assert len(jobs) == 600
    for job in q.claim(600):
        q.nack(job.id, job.lease or "", "smtp said no " * 30, retry=False)
    command = (f"{sys.executable} -m relayq.cli.main dlq list {q.name} --limit 1000 "
               "| head -5; echo \"status=${PIPESTATUS[0]}\" >&2")
    env = {**os.environ, "RELAYQ_SERVER": server.url, "RELAYQ_API_KEY": admin_key,
           "PYTHONPATH": str(ROOT)}
    done = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert len(done.stdout.splitlines()) == 5 and done.stdout.startswith("ID ")
    assert done.stderr == "status=141\n"


def test_jobs_of_a_state_as_json_and_as_a_table(capsys, q: Queue) -> None:
    ids = [q.enqueue(n, type="report").id for n in range(3)]
    listed = run_json(capsys, "jobs", q.name, "--state", "ready", "--limit", "2")
    assert [j["id"] for j in listed["jobs"]] == ids[:2] and listed["next_cursor"]
    rest = run_json(capsys, "jobs", q.name, "--state", "ready", "--cursor",
                    listed["next_cursor"])
    assert [j["id"] for j in rest["jobs"]] == ids[2:] and rest["next_cursor"] is None
    job = q.claim(worker_id="cli-worker")[0]
    code, out, _ = run(capsys, "jobs", q.name, "--state", "running")
    assert code == 0 and "WORKER" in out and "LEASE_DEADLINE" in out and "cli-worker" in out
    q.nack(job.id, job.lease, "Traceback ...\nKeyError: 'to'", retry=False)
    assert [j["id"] for j in run_json(capsys, "jobs", q.name, "--state", "dead", "--search",
                                      "keyerror")["jobs"]] == [job.id]
    code, out, _ = run(capsys, "job", job.id)
    assert code == 0 and "1 earlier attempt(s)" in out and "KeyError: 'to'" in out
    with pytest.raises(SystemExit) as exit_:
        main(["jobs", q.name, "--state", "nope"])
    assert exit_.value.code == 2 and "invalid choice" in capsys.readouterr().err


def test_workers_and_the_status_latency(capsys, q: Queue, redis_url: str) -> None:
    q.enqueue(1)
    code, out, _ = run(capsys, "status", q.name)
    assert code == 0 and "LATENCY" in out
    assert run_json(capsys, "status", q.name)["latency_ms"] >= 0
    worker = relayq.Worker([q.name], relayq.App(), redis_url, registry_interval_s=0.1)
    worker.start()
    try:
        mine = wait_until(lambda: [w for w in run_json(capsys, "workers")["workers"]
                                   if w["id"] == worker.worker_id], message="the worker")[0]
        assert mine["queues"] == [q.name] and mine["pid"] == os.getpid()
        code, out, _ = run(capsys, "workers")
        assert code == 0 and worker.worker_id in out and "BUSY" in out
    finally:
        worker.stop(grace_s=0)


def test_enqueue_with_depends_on(capsys, q: Queue) -> None:
    """Workflows: --depends-on (repeatable) and --on-parent-failure; a bad parent: one line,
    exit 2, nothing written."""
    parent = q.enqueue({}).id
    made = run_json(capsys, "enqueue", q.name, "{}", "--depends-on", parent,
                    "--on-parent-failure", "run")
    assert made["state"] == "waiting"
    job = run_json(capsys, "job", made["id"])
    assert job["depends_on"] == [parent] and job["on_parent_failure"] == "run"
    assert run_json(capsys, "job", parent)["children"] == [made["id"]]
    code, out, err = run(capsys, "enqueue", q.name, "{}", "--depends-on", f"{q.name}.77")
    assert code == 2 and out == "" and f"unknown parent {q.name}.77" in err
    assert len(err.strip().splitlines()) == 1
