"""Every code block of the README runs as written, in order, the way a newcomer meets them: in
the environment of a real `relayq dev` (its server, admin key and Redis, as its `export` line
gives them), in one project directory, with real processes.

How a block runs depends on it, and on an HTML comment on the line before it, which the reader
of the README's source sees too:
- a Python block whose first line is `# name.py` is a module of the reader's: written to that
  file (and imported by the blocks after it);
- any other Python block runs with `python -c`; a `sh` block with `bash -euo pipefail`; both
  must exit 0;
- `<!-- readme-test: background -->`: each line of the `sh` block is a long-running command
  (a worker, as in another terminal): started, left running to the end, then stopped with
  SIGTERM, which it must answer by exiting 0;
- `<!-- readme-test: not run: REASON -->`: not run, for the reason given (required).
Host ports in blocks are examples: 8080 is relayq dev's server, 9000 an S3 server (moto) this
test starts, any other a free port. No block may name the machine's Redis (6379).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

import relayq
from relayq.tools.redis_process import free_port
from tests.support.helpers import wait_until
from tests.support.server import ROOT

README = ROOT / "README.md"
MARKER = re.compile(r"<!-- readme-test: (background|not run: (.+?)) -->")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```\n", re.DOTALL | re.MULTILINE)
PORT = re.compile(r"\b(localhost|127\.0\.0\.1):(\d{4,5})\b")
EXPORT_LINE = re.compile(r"^\s*export (RELAYQ_SERVER=\S+ RELAYQ_API_KEY=\S+ RELAYQ_REDIS_URL=\S+)",
                         re.MULTILINE)


@dataclass
class Block:
    section: str
    language: str
    code: str
    marker: str | None  # "background", "not run: ...", or None
    line: int

    @property
    def module(self) -> str | None:
        """The file name of a block that is a module (`# tasks.py` on its first line)."""
        first = self.code.splitlines()[0] if self.code else ""
        found = re.fullmatch(r"# (\w+\.py)", first.strip())
        return found.group(1) if self.language == "python" and found else None


def readme_blocks() -> list[Block]:
    text = README.read_text()
    blocks = []
    for fence in FENCE.finditer(text):
        before = text[:fence.start()].rstrip("\n").rsplit("\n", 1)[-1]
        marker = MARKER.fullmatch(before.strip())
        sections = re.findall(r"^## (.+)$", text[:fence.start()], re.MULTILINE)
        blocks.append(Block(sections[-1] if sections else "", fence.group(1), fence.group(2),
                            marker.group(1) if marker else None,
                            text[:fence.start()].count("\n") + 1))
    return blocks


def test_every_block_is_runnable_or_says_why_not() -> None:
    blocks = readme_blocks()
    assert len(blocks) > 10
    for block in blocks:
        where = f"README.md:{block.line}"
        assert block.language in ("python", "sh"), f"{where}: a block without a language"
        if block.marker and block.marker.startswith("not run:"):
            assert len(block.marker) > len("not run: ") + 10, f"{where}: say why it is not run"
        if block.marker == "background":
            assert block.language == "sh", where
        assert "6379" not in block.code or block.marker, f"{where} names the machine's Redis"


def test_the_first_two_commands_are_relayq_dev_and_the_tests() -> None:
    """They are not run here (they install, and run the whole suite), so this keeps them
    true: the extras exist, `relayq dev` is the command this test runs, and pytest is the
    test command .ci/run runs."""
    first = readme_blocks()[0]
    lines = first.code.splitlines()
    assert lines[0].startswith("pip install -e '.[dev]' && relayq dev ")
    assert lines[1].startswith("pip install -e '.[test]' && python -m pytest ")
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    assert {"dev", "test"} <= set(extras)
    assert "python -m pytest" in (ROOT / ".ci" / "run").read_text()


class Ports:
    """The README's example ports, each mapped to a port of this test."""

    def __init__(self, dev_port: int, s3_port: int) -> None:
        self.map = {8080: dev_port, 9000: s3_port}

    def apply(self, code: str) -> str:
        def swap(match: re.Match[str]) -> str:
            port = self.map.setdefault(int(match.group(2)), free_port())
            return f"127.0.0.1:{port}"

        return PORT.sub(swap, code)


@contextmanager
def relayq_dev(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], dict[str, str]]]:
    """A real `relayq dev` (one demo worker, a light load: the machine is shared) and the
    environment its export line gives."""
    out = tmp_path / "dev.out"
    port = free_port()
    with out.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "relayq.cli.main", "dev", "--port", str(port),
             "--resp-port", "0", "--workers", "1", "--rate", "2"],
            cwd=tmp_path, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        def exported() -> Any:
            assert proc.poll() is None, out.read_text()
            return EXPORT_LINE.search(out.read_text())

        line = wait_until(exported, timeout=60, interval=0.1, message="relayq dev").group(1)
        env = dict(pair.split("=", 1) for pair in line.split())
        assert env["RELAYQ_SERVER"] == f"http://127.0.0.1:{port}"
        yield proc, env
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(60) == 0, out.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


@contextmanager
def s3_server(port: int) -> Iterator[None]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                     aws_access_key_id="relayq", aws_secret_access_key="relayq-secret",
                     ).create_bucket(Bucket="relayq-backups")
        yield
    finally:
        server.stop()


class Terminal:
    """Runs blocks in one project directory, keeping what they print."""

    def __init__(self, directory: Path, env: dict[str, str], ports: Ports) -> None:
        self.directory = directory
        self.env = {**os.environ, **env, "PYTHONPATH": str(ROOT),
                    "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
        self.ports = ports
        self.background: list[tuple[str, subprocess.Popen[bytes], Path]] = []
        self.outputs: list[tuple[Block, str]] = []

    def run(self, block: Block) -> None:
        code = self.ports.apply(block.code)
        where = f"README.md:{block.line} ({block.section})"
        if block.module:
            (self.directory / block.module).write_text(code)
            return
        if block.marker == "background":
            for command in filter(None, (c.split(" #")[0].strip()
                                         for c in code.splitlines())):
                log = self.directory / f"background-{len(self.background)}.log"
                with log.open("wb") as sink:
                    self.background.append((command, subprocess.Popen(
                        ["bash", "-c", f"exec {command}"], cwd=self.directory, env=self.env,
                        stdout=sink, stderr=subprocess.STDOUT, start_new_session=True), log))
            return
        argv = ([sys.executable, "-c", code] if block.language == "python"
                else ["bash", "-euo", "pipefail", "-c", code])
        done = subprocess.run(argv, cwd=self.directory, env=self.env, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, f"{where} exited {done.returncode}:\n{code}\n" \
                                     f"--- stdout\n{done.stdout[-3000:]}\n--- stderr\n" \
                                     f"{done.stderr[-3000:]}"
        assert "Traceback" not in done.stderr, f"{where}:\n{done.stderr}"
        self.outputs.append((block, done.stdout))

    def output_of(self, section: str) -> str:
        return "".join(out for block, out in self.outputs if block.section == section)

    def check_background_alive(self) -> None:
        for command, proc, log in self.background:
            assert proc.poll() is None, f"`{command}` ended:\n{log.read_text()[-3000:]}"

    def stop_background(self) -> None:
        for _, proc, _ in self.background:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for command, proc, log in self.background:
            try:
                try:
                    code = proc.wait(30)
                except subprocess.TimeoutExpired:
                    code = None  # did not stop: its log says where it was
                assert code == 0, f"`{command}` ended with {code}:\n{log.read_text()[-3000:]}"
            finally:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(10)


def test_every_readme_block_runs_as_written(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    s3_port = free_port()
    with relayq_dev(tmp_path) as (_dev, env), s3_server(s3_port):
        terminal = Terminal(project, env, Ports(int(env["RELAYQ_SERVER"].rsplit(":", 1)[1]),
                                                s3_port))
        try:
            for block in readme_blocks():
                if block.marker is None or block.marker == "background" or block.module:
                    terminal.run(block)
            terminal.check_background_alive()
            check_outcomes(terminal, env["RELAYQ_REDIS_URL"])
        finally:
            terminal.stop_background()


def check_outcomes(terminal: Terminal, redis_url: str) -> None:
    """What the blocks did, seen in Redis: each promise the README's comments make."""
    redis = relayq.connect(redis_url)
    emails, billing = relayq.Queue("emails", redis), relayq.Queue("billing", redis)

    # Your first real worker: the job enqueued through the task ran in the reader's worker
    job_id = terminal.output_of("Your first real worker").split()[0]
    wait_until(lambda: emails.get(job_id).state == "succeeded", timeout=30,
               message="the first job to run")
    assert (emails.get(job_id).type, emails.get(job_id).result) == ("send_email", {"sent": True})
    assert "emails" in terminal.output_of("Your first real worker")  # relayq status emails

    # The client's 5,000 jobs carry the type of the README's task: none dies
    wait_until(lambda: (s := emails.stats()).ready == s.running == s.scheduled == 0,
               timeout=120, message="the reader's worker to drain emails")
    assert emails.stats().dead == 0 and emails.stats().totals["succeeded"] >= 5002

    # Python API: Fail is dead at once, Retry runs again, the batch succeeds; asyncio: one
    # charge more, awaited to its result
    wait_until(lambda: billing.stats().totals["succeeded"] == 5, timeout=30,
               message="the charges to succeed")
    (dead,), _ = billing.dead()
    assert dead.payload == {"amount": 0} and dead.attempts == 1 and "bad amount" in \
        dead.last_error
    assert billing.stats().totals["retried"] == 5  # each charge's first attempt
    assert "succeeded {'charged': 7}" in terminal.output_of("asyncio (FastAPI)")

    # Testing your tasks: the reader's own test file passed with the plugin, on its own Redis
    assert "2 passed" in terminal.output_of("Testing your tasks")

    # HTTP API: the walk-through claimed, acked and left no rate limit behind
    http = terminal.output_of("HTTP API")
    assert '{"state":"succeeded"}' in http and '"worker_id":"shell"' in http
    assert '"rate_limit":{"rate":50.0,"burst":100}' in http and '"status":"ready"' in http
    webhooks = relayq.Queue("webhooks", redis)
    assert webhooks.stats().rate_limit is None and not webhooks.stats().paused

    # Python HTTP client and Operator CLI: their jobs reached the states they say
    assert "{'sent': True}" in terminal.output_of("Python HTTP client")
    invoices = relayq.Queue("invoices", redis)
    assert invoices.stats().totals["cancelled"] == 1 and invoices.stats().rate_limit is None
    redis.close()


@pytest.mark.parametrize("module", ["tasks.py", "billing.py"])
def test_the_readme_modules_define_undefined_nothing(module: str, tmp_path: Path) -> None:
    """The README's modules import cleanly and every name they use is defined (the first
    README called an undefined `deliver()`)."""
    (block,) = [b for b in readme_blocks() if b.module == module]
    path = tmp_path / module
    path.write_text(block.code)
    checked = subprocess.run([sys.executable, "-m", "pyflakes", str(path)], capture_output=True,
                             text=True, timeout=60)
    if "No module named pyflakes" in checked.stderr:
        checked = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache",
                                  "--select", "F", str(path)], capture_output=True, text=True,
                                 timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
